"""`swarm demo --dashboard` in a real headless browser (Debian's Chromium, installed here
when missing and possible): a short demo runs with its dashboard; one page, opened right
after deployment and never reloaded, shows the settled epoch count grow through server-sent
events while the swarm runs; once the demo is over (chain and page kept up), a fresh load
shows the settled epoch count and each node's total payout matching the ledger
(`earned_by(read_ledger(...))`, as the demo's summary.json records it, and the ledger read
independently by `swarm ledger --json`), the CSV download carries the same payouts, and a
screenshot is written under the test's temp folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from swarmtoken.cli.demo import free_port
from swarmtoken.dashboard.data import tokens

SWARM = str(Path(sys.executable).with_name("swarm"))
EPOCHS = 8  # a few seconds of swarm (an epoch of this demo settles in about half a second)
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                  "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get where it is missing and we are root."""
    found = find_chromium()
    if found is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=900)
        found = find_chromium()
    if found is None:
        pytest.skip("no Chromium here and it cannot be installed (needs root and apt-get with a package source)")
    return found


class Demo:
    """`swarm demo --dashboard` in a subprocess, its output collected line by line."""

    def __init__(self, out: Path) -> None:
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        # three honest nodes: a rogue among three is suspended after three strikes, and the two
        # left are too few to settle a fourth epoch
        self.chain_port = free_port()
        self.process = subprocess.Popen(
            [SWARM, "demo", "--nodes", "3", "--rogue", "0", "--epochs", str(EPOCHS), "--port", str(self.chain_port),
             "--out", str(out), "--dashboard"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            assert self.process.poll() is None, f"the demo exited ({self.process.returncode}):\n{self.output}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout:.0f} s:\n{self.output}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # the demo stops its nodes and chain
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                self.process.wait(timeout=30)
        return self.process.returncode


class Page:
    """One page in headless Chromium, driven over the DevTools protocol (websockets, pinned
    as a web3 dependency): navigate once, then read the live DOM as often as needed."""

    def __init__(self, chromium: str, profile: Path) -> None:
        from websockets.sync.client import connect

        self.browser = subprocess.Popen([chromium, *CHROMIUM_FLAGS, "--remote-debugging-port=0",
                                         f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            line = self.browser.stderr.readline()
            if not line and self.browser.poll() is not None:
                break
            found = re.search(r"DevTools listening on ws://([^/]+)/", line)
            endpoint = found and found.group(1)
        assert endpoint, "Chromium did not start its DevTools endpoint"
        threading.Thread(target=lambda: [None for _ in self.browser.stderr], daemon=True).start()  # drain
        targets = json.loads(urllib.request.urlopen(f"http://{endpoint}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.calls = 0

    def call(self, method: str, **params: object) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.calls:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            os.killpg(self.browser.pid, signal.SIGTERM)
            self.browser.wait(timeout=20)


READ = ("[document.getElementById('epochs-settled').textContent, document.getElementById('phase').textContent,"
        " document.body.dataset.updates || '0', document.getElementById('live').textContent]")


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_dashboard_of_a_demo_in_a_headless_browser(chromium, tmp_path):
    started = time.monotonic()
    out = tmp_path / "demo"
    demo = Demo(out)
    page = None
    try:
        url = demo.wait_for(r"dashboard: (http://127\.0\.0\.1:\d+/)", timeout=120).group(1)
        page = Page(chromium, tmp_path / "profile-live")
        page.call("Page.enable")
        page.call("Page.navigate", url=url)

        # live: the same page, never reloaded, follows the swarm while it runs
        seen: list[tuple[int, str, int]] = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            value = page.evaluate(READ)
            if value and value[0].isdigit():
                entry = (int(value[0]), value[1], int(value[2]))
                if not seen or entry != seen[-1]:
                    seen.append(entry)
                if entry[1] == "Finished":
                    break
            time.sleep(0.3)
        print("page states (settled epochs, phase, renders):", seen)
        assert seen and seen[-1][:2] == (EPOCHS, "Finished"), seen
        counts = [s[0] for s in seen]
        assert counts == sorted(counts) and counts[0] < EPOCHS, seen
        assert any(0 < s[0] < EPOCHS and s[1] != "Finished" for s in seen), f"no update seen mid-run: {seen}"
        assert seen[-1][2] > seen[0][2], f"the page was not re-rendered by server-sent events: {seen}"
        assert page.evaluate("document.getElementById('live').textContent") == "live"

        # finished: the demo keeps its chain and dashboard up until Ctrl-C
        demo.wait_for(r"stay up until Ctrl-C", timeout=120)
        summary = json.loads((out / "summary.json").read_text())
        dom = dump_dom(chromium, url, tmp_path / "profile-dump")
        settled = re.search(r'id="epochs-settled">(\d+)<', dom)
        assert settled and int(settled.group(1)) == summary["epochs_settled"] == EPOCHS
        shown = dict(re.findall(r'<td class="num earned" data-node="(0x[0-9a-fA-F]{40})">([0-9.]+)</td>', dom))
        expected = {node["address"]: tokens(node["earned"]) for node in summary["nodes"]}  # earned_by(read_ledger)
        assert shown == expected, (shown, expected)
        assert sum(node["earned"] for node in summary["nodes"]) > 0
        # every node claimed mid-run once two clean epochs unlocked its credits ([node]
        # claim_every, 5 epochs), then the rest at the finish: all it earned, nothing forfeited
        for i, node in enumerate(summary["nodes"]):
            log = (out / f"node-{i}" / "node.log").read_text()
            assert re.search(r"epoch [5-8]: claimed", log), log[-2000:]
            assert node["claimed"] == node["earned"] and node["forfeited"] == 0, node

        # the ledger read again, independently of the demo and the dashboard
        done = subprocess.run([SWARM, "ledger", "--json", "--deployment", str(out / "deployment.json"), "--port",
                               str(demo.chain_port)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)["epochs"]
        assert len({row["epoch"] for row in rows}) == EPOCHS
        by_ledger: dict[str, Decimal] = {}
        for row in rows:
            by_ledger[row["node"]] = by_ledger.get(row["node"], Decimal(0)) + Decimal(row["payout_tokens"])
        assert {node: tokens(int(total * 10**18)) for node, total in by_ledger.items()} == expected

        # `swarm dashboard` on its own, on the same finished swarm
        http_port = free_port()
        board = subprocess.Popen([SWARM, "dashboard", "--deployment", str(out / "deployment.json"), "--port",
                                  str(demo.chain_port), "--http-port", str(http_port)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            state, deadline = None, time.monotonic() + 60
            while state is None and time.monotonic() < deadline and board.poll() is None:
                try:
                    state = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/state",
                                                              timeout=10).read())
                except OSError:
                    time.sleep(0.3)
            assert state is not None, board.communicate(timeout=10)[0] if board.poll() is not None else "no page"
            assert (state["epochs_settled"], state["phase"]) == (EPOCHS, "Finished")
            assert {n["address"]: n["earned"] for n in state["nodes"]} == expected
        finally:
            board.send_signal(signal.SIGINT)
            output = board.communicate(timeout=30)[0]
        assert board.returncode == 0 and "read-only; Ctrl-C to stop" in output, output

        csv_text = urllib.request.urlopen(url + "ledger.csv", timeout=10).read().decode()
        header, *lines = csv_text.strip().splitlines()
        assert header.split(",")[:2] == ["epoch", "node"] and len(lines) == len(rows)

        screenshot = tmp_path / "dashboard.png"
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile-shot'}",
                        f"--screenshot={screenshot}", "--window-size=1280,1600", url],
                       capture_output=True, timeout=60, check=True)
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
        print(f"screenshot: {screenshot}")
    finally:
        if page is not None:
            page.close()
        code = demo.stop()
    assert code == 0, demo.output
    assert "audit ok" in demo.output
    print(f"dashboard test took {time.monotonic() - started:.0f} s")
