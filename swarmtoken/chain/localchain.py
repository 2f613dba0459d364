"""A local anvil chain for demos and single-machine swarms.

Started with the settings of brownie's development network (zero base fee, 12M gas limit,
ten funded accounts) so brownie attaches to it instead of launching its own, with
``--max-persisted-states 0`` so old block states are dropped rather than written to disk
(``--prune-history`` does the same but now and then loses a fresh receipt), and optionally with
``--state FILE`` so `swarm chain down` / `swarm chain up` keeps the chain's state.
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
    deadline = time.monotonic() + timeout
    while not is_listening(port):
        if process.poll() is not None:
            raise LocalChainError(f"anvil exited with code {process.returncode}" + (f"; see {log_file}" if log_file else ""))
        if time.monotonic() > deadline:
            process.kill()
            raise LocalChainError(f"anvil did not accept connections on port {port} within {timeout:.0f} s")
        time.sleep(0.05)
    return process


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
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)
