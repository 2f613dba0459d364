"""A local anvil chain for demos and single-machine swarms.

Started with the settings of brownie's development network (zero base fee, 12M gas limit,
ten funded accounts) so brownie attaches to it instead of launching its own, with
``--max-persisted-states 0`` so old block states are dropped rather than written to disk
(``--prune-history`` does the same but now and then loses a fresh receipt), and optionally with
``--state FILE``, which anvil writes only on a graceful exit: a crash loses everything since the
start. `swarm chain up` therefore runs anvil behind the persisting proxy of `durable`, which
writes the state file before it answers any request that changed the chain.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 8545


class LocalChainError(RuntimeError):
    """The local chain could not be started or stopped; the message says what to do."""


def anvil_executable() -> str:
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is None:
        raise LocalChainError("anvil is not installed; run `make install`")
    return found


def is_listening(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def anvil_command(port: int = DEFAULT_PORT, state_file: Path | None = None, accounts: int = 10) -> list[str]:
    cmd = [
        anvil_executable(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--block-base-fee-per-gas", "0",
        "--gas-limit", "12000000",
        "--accounts", str(accounts),
        "--max-persisted-states", "0",  # recent states in memory, older ones dropped, none on disk
        "--silent",
    ]
    if state_file is not None:
        cmd += ["--state", str(state_file)]
    return cmd


def start(port: int = DEFAULT_PORT, state_file: Path | None = None, log_file: Path | None = None,
          timeout: float = 15.0) -> subprocess.Popen:
    """Start anvil in the background and wait until it accepts connections."""
    if is_listening(port):
        raise LocalChainError(f"something already listens on 127.0.0.1:{port}; stop it (`swarm chain down`) or use --port")
    log = open(log_file, "ab") if log_file else subprocess.DEVNULL
    process = subprocess.Popen(anvil_command(port, state_file), stdout=log, stderr=log, start_new_session=True)
    wait_listening(process, port, timeout, log_file)
    return process


def wait_listening(process: subprocess.Popen, port: int, timeout: float, log_file: Path | None = None,
                   name: str = "anvil") -> None:
    """Wait until ``process`` accepts connections on ``port``; a one-line error if it exits or hangs."""
    deadline = time.monotonic() + timeout
    while not is_listening(port):
        if process.poll() is not None:
            raise LocalChainError(f"{name} exited with code {process.returncode}" + (f"; see {log_file}" if log_file else ""))
        if time.monotonic() > deadline:
            process.kill()
            raise LocalChainError(f"{name} did not accept connections on port {port} within {timeout:.0f} s")
        time.sleep(0.05)


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Stop anvil gracefully (SIGTERM lets it write its --state file). The npm launcher
    runs the real binary as a child in the session `start` created, so signal the whole
    process group: the binary must not outlive its launcher."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_running(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. An exited member its parent has not
    reaped yet (the caller's own Popen, say) still answers ``killpg(pgid, 0)``; it is ignored
    here, so stopping a chain one started does not wait out the whole timeout. A process
    counts as exited only once all its threads have: the main thread of a multi-threaded
    process shows as a zombie while the others still tear down, holding its sockets open."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return True
    for entry in entries:
        fields = _stat_fields(Path(f"/proc/{entry}/stat"))
        if fields is not None and int(fields[2]) == pgid and _threads_alive(Path(f"/proc/{entry}/task")):
            return True
    return False


def _stat_fields(stat: Path) -> list[str] | None:
    """The fields of a /proc stat file after the command name (state first), or None if gone."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _threads_alive(tasks: Path) -> bool:
    try:
        threads = os.listdir(tasks)
    except OSError:
        return False
    states = [_stat_fields(tasks / thread / "stat") for thread in threads]
    return any(fields is not None and fields[0] not in ("Z", "X") for fields in states)
