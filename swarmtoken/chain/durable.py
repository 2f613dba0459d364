"""A local chain that never loses what it told a client: anvil behind a persisting proxy.

anvil only writes its state on a graceful exit or every ``--state-interval`` seconds (whole
seconds, at least 1), so a hard crash rolls the chain back to the last dump and undoes
transactions whose receipts clients already acted on. Here a supervisor runs anvil on an
internal loopback port and serves the public port as a JSON-RPC proxy: a request that can
change the chain is forwarded, its transactions are waited for until mined, the whole state
is dumped (``anvil_dumpState``) and written atomically to the state file, and only then is
the client answered. Requests are ordered by a readers-writer lock, so no client can read a
block, receipt or log before the state holding it is on disk either. A restart loads that
file with ``--load-state``; blocks, receipts and logs come back, state at past blocks does not.

Run ``python -m swarmtoken.chain.durable --port P --state FILE``; ``start`` does it in the
background. The supervisor exits non-zero when anvil dies, so starting it again resumes from
the last dump. Stop it with ``localchain.stop_pid`` (the process group holds anvil too).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

from ..atomic import write_atomically
from .localchain import LocalChainError, anvil_command, is_listening, stop_pid, wait_listening

#: Method prefixes and names that never change the chain; everything else is persisted.
READ_ONLY_PREFIXES = ("net_", "web3_", "debug_", "trace_", "ots_", "txpool_", "erigon_")
READ_ONLY_METHODS = frozenset({
    "anvil_dumpState", "anvil_nodeInfo", "anvil_metadata", "hardhat_metadata", "anvil_getAutomine",
    "hardhat_getAutomine", "anvil_getIntervalMining", "eth_subscribe", "eth_unsubscribe",
})
RECEIPT_WAIT_S = 5.0


def changes_chain(method: Any) -> bool:
    """Whether a JSON-RPC method may change the chain (unknown methods are assumed to)."""
    if not isinstance(method, str):
        return True
    if method in READ_ONLY_METHODS or method.startswith(READ_ONLY_PREFIXES):
        return False
    return not method.startswith("eth_") or method.startswith("eth_send")


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers so it is not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._writers_waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


class Upstream:
    """JSON-RPC calls to the internal anvil, one keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._local = threading.local()

    def post(self, body: bytes, retry: bool = True) -> tuple[int, bytes]:
        """Send ``body``; on a dropped keep-alive connection resend once if ``retry`` (never for a
        request that may have changed the chain: it could run twice)."""
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt or not retry:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, params: list[Any]) -> Any:
        status, raw = self.post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode())
        reply = json.loads(raw)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


class DurableChain:
    """The proxy's state: the upstream anvil, the state file and the lock ordering requests."""

    def __init__(self, upstream: Upstream, state_file: Path) -> None:
        self.upstream = upstream
        self.state_file = state_file
        self.lock = ReadWriteLock()

    def persist(self) -> None:
        """Dump anvil's state and write it where ``--load-state`` reads it (plain JSON; the
        RPC returns it as hex-encoded gzip)."""
        dump = self.upstream.call("anvil_dumpState", [])
        # mode: as anvil writes it (mkstemp's 0600 would surprise a later reader)
        write_atomically(self.state_file, gzip.decompress(bytes.fromhex(dump.removeprefix("0x"))),
                         prefix=f".{self.state_file.name}.", mode=0o644, sync_dir=True)

    def wait_mined(self, requests: list[dict], replies: list[dict]) -> None:
        """With automine anvil mines a sent transaction right away but may answer first;
        wait for each receipt so the dump holds it (a transaction that stays pending, e.g.
        behind a nonce gap, is given up on after ``RECEIPT_WAIT_S``: the pool is not persisted)."""
        ids = {json.dumps(r.get("id")) for r in requests if str(r.get("method", "")).startswith("eth_send")}
        hashes = [r["result"] for r in replies if json.dumps(r.get("id")) in ids and isinstance(r.get("result"), str)]
        deadline = time.monotonic() + RECEIPT_WAIT_S
        for tx_hash in hashes:
            while self.upstream.call("eth_getTransactionReceipt", [tx_hash]) is None and time.monotonic() < deadline:
                time.sleep(0.002)

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """Forward one HTTP body; persist before answering if it can change the chain."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        requests = [r for r in (parsed if isinstance(parsed, list) else [parsed]) if isinstance(r, dict)]
        if not any(changes_chain(r.get("method")) for r in requests):
            self.lock.acquire_read()
            try:
                return self.upstream.post(body)
            finally:
                self.lock.release_read()
        self.lock.acquire_write()
        try:
            status, raw = self.upstream.post(body, retry=False)
            try:
                reply = json.loads(raw)
            except ValueError:
                reply = None
            self.wait_mined(requests, [r for r in (reply if isinstance(reply, list) else [reply]) if isinstance(r, dict)])
            try:
                self.persist()
            except Exception as exc:
                crash(f"could not write {self.state_file} ({exc})")
            return status, raw
        finally:
            self.lock.release_write()


def crash(reason: str) -> NoReturn:
    """Stop anvil and the supervisor at once, unanswered. Once anvil holds a change the state
    file lacks, serving on would let clients see it; dying rolls the chain back to the file,
    which is what `swarm chain up` then resumes from."""
    print(f"durable chain: {reason}; stopping so the chain restarts from the last state written",
          file=sys.stderr, flush=True)
    os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(1)


def error_reply(body: bytes, message: str) -> bytes:
    """A JSON-RPC error for every request in ``body`` (so the client does not take it as done)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    requests = parsed if isinstance(parsed, list) else [parsed]
    errors = [{"jsonrpc": "2.0", "id": r.get("id") if isinstance(r, dict) else None,
               "error": {"code": -32603, "message": message}} for r in requests]
    return json.dumps(errors if isinstance(parsed, list) else errors[0]).encode()


def make_handler(chain: DurableChain) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one handler thread per client connection
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, raw = chain.handle(body)
            except Exception as exc:  # anvil gone or state not written: the request is not done
                status, raw = 200, error_reply(body, f"local chain could not complete the request: {exc}")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def free_loopback_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(port: int, state_file: Path, accounts: int = 10) -> int:
    """Run anvil and the proxy until anvil exits (code 1) or SIGTERM arrives (code 0)."""
    internal = free_loopback_port()
    cmd = anvil_command(internal, accounts=accounts)
    if state_file.exists():
        cmd += ["--load-state", str(state_file)]
    anvil = subprocess.Popen(cmd)  # same process group: stopping the supervisor's group stops anvil
    try:
        wait_listening(anvil, internal, timeout=30.0)
    except LocalChainError as exc:
        print(f"durable chain: {exc}", file=sys.stderr)
        return 1
    chain = DurableChain(Upstream(internal), state_file)
    try:
        chain.persist()  # the state file exists and is writable before anyone is told the chain is up
        server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(chain))
    except Exception as exc:
        crash(f"{type(exc).__name__}: {exc}")
    server.daemon_threads = True

    stopping = threading.Event()

    def stop(code: int) -> None:
        chain.lock.acquire_write()  # let a state write in progress finish
        os._exit(code)

    def on_sigterm(*_: Any) -> None:
        stopping.set()
        stop(0)

    def watch_anvil() -> None:
        code = anvil.wait()
        time.sleep(0.2)  # `swarm chain down` signals anvil and us together: let SIGTERM be seen first
        if not stopping.is_set():
            print(f"durable chain: anvil exited with code {code}; the state file holds everything answered",
                  file=sys.stderr, flush=True)
            stop(1)

    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=watch_anvil, daemon=True).start()
    print(f"durable chain: 127.0.0.1:{port} -> anvil on {internal}; state in {state_file}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def check_state_file(state_file: Path) -> None:
    """Refuse, in one line, a state file anvil could not load or a folder it cannot be written to."""
    if state_file.exists():
        try:
            state = json.loads(state_file.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise LocalChainError(f"{state_file} is not a readable chain state ({type(exc).__name__}); "
                                  "move it away to start a fresh chain") from None
        if not isinstance(state, dict) or "accounts" not in state:
            raise LocalChainError(f"{state_file} is not a chain state (no accounts); move it away to start a fresh chain")
    state_file.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(state_file.parent, os.W_OK):
        raise LocalChainError(f"cannot write the chain state into {state_file.parent}; use --state with a writable path")


def start(port: int, state_file: Path, log_file: Path | None = None, timeout: float = 30.0) -> subprocess.Popen:
    """Start the supervisor in its own session and wait until the public port answers."""
    if is_listening(port):
        raise LocalChainError(f"something already listens on 127.0.0.1:{port}; stop it (`swarm chain down`) or use --port")
    state_file = Path(state_file).resolve()
    check_state_file(state_file)
    log = open(log_file, "ab") if log_file else subprocess.DEVNULL
    cmd = [sys.executable, "-m", "swarmtoken.chain.durable", "--port", str(port), "--state", str(state_file)]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True, env=env)
    try:
        wait_listening(process, port, timeout, log_file, name="the local chain")
    except LocalChainError as exc:
        stop_pid(process.pid, timeout=5.0)  # anvil may be up already; it is in the supervisor's group
        raise LocalChainError(f"{exc}{last_line(log_file)}") from None
    return process


def last_line(log_file: Path | None) -> str:
    """``": <last line of the log>"`` (where anvil and the supervisor say why they stopped), or ``""``."""
    try:
        lines = [line for line in Path(log_file).read_text(errors="replace").splitlines() if line.strip()] \
            if log_file else []
    except OSError:
        return ""
    return f": {lines[-1].strip()}" if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="public JSON-RPC port on 127.0.0.1")
    parser.add_argument("--state", type=Path, required=True, help="state file: loaded at start, rewritten on every change")
    parser.add_argument("--accounts", type=int, default=10)
    args = parser.parse_args(argv)
    return serve(args.port, args.state, args.accounts)


if __name__ == "__main__":
    raise SystemExit(main())
