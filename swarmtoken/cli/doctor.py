"""`swarm doctor`: checks every piece of the toolchain and names the one command that
fixes what is missing. Runs without importing brownie, web3 or torch (it checks that
they are installed, not that they work), so it answers in about a second."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_DISTRIBUTIONS = ("eth-brownie", "torch", "numpy", "scipy", "scikit-learn", "click", "rich", "safetensors")
CONTRACTS = ("SwarmToken", "SwarmLearning")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def pinned_solc_version(root: Path = ROOT) -> str | None:
    """The compiler version brownie-config.yaml pins (the single source of truth)."""
    text = (root / "brownie-config.yaml").read_text()
    match = re.search(r"^\s*version:\s*([0-9]+\.[0-9]+\.[0-9]+)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def _run(cmd: list[str]) -> tuple[bool, str]:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return out.returncode == 0, (out.stdout or out.stderr).strip()


def check_python() -> Check:
    ok = sys.version_info[:2] == (3, 11)
    return Check("python", ok, sys.version.split()[0], "" if ok else "use Python 3.11: make install PYTHON=python3.11")


def check_distributions() -> list[Check]:
    checks = []
    for dist in REQUIRED_DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(dist)
            checks.append(Check(dist, True, version))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(dist, False, "not installed", "make install"))
    return checks


def check_node() -> Check:
    node = shutil.which("node")
    if not node:
        return Check("node", False, "not on PATH", "install Node.js 20+ and npm (e.g. apt install nodejs npm)")
    ok, out = _run([node, "--version"])
    return Check("node", ok, out)


def check_node_packages(root: Path = ROOT) -> list[Check]:
    locked = json.loads((root / "package.json").read_text())["devDependencies"]
    checks = []
    for name, version in locked.items():
        manifest = root / "node_modules" / name / "package.json"
        if not manifest.exists():
            checks.append(Check(name, False, "not installed", "make install"))
            continue
        found = json.loads(manifest.read_text())["version"]
        ok = found == version
        checks.append(Check(name, ok, found, "" if ok else "make install (package-lock.json changed)"))
    return checks


def check_anvil(root: Path = ROOT) -> Check:
    anvil = root / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        return Check("anvil", False, "not installed", "make install")
    ok, out = _run([str(anvil), "--version"])
    return Check("anvil", ok, out.splitlines()[0] if out else "no output", "" if ok else "make install")


def check_compiler(root: Path = ROOT) -> list[Check]:
    pinned = pinned_solc_version(root)
    if pinned is None:
        return [Check("solc pin", False, "brownie-config.yaml has no compiler.solc.version", "restore brownie-config.yaml")]
    npm_pin = json.loads((root / "package.json").read_text())["devDependencies"].get("solc")
    checks = [
        Check(
            "solc pin",
            npm_pin == pinned,
            f"brownie-config.yaml {pinned}, package.json {npm_pin}",
            "" if npm_pin == pinned else "make both pins the same version",
        )
    ]
    folder = Path(os.environ.get("SOLCX_BINARY_PATH", root / ".solcx"))
    adapter = folder / f"solc-v{pinned}"
    if not adapter.exists():
        checks.append(Check("compiler adapter", False, f"{adapter.name} missing", "make install"))
        return checks
    ok, out = _run([str(adapter), "--version"])
    ok = ok and f"Version: {pinned}+" in out
    checks.append(Check("compiler adapter", ok, out.splitlines()[-1] if out else "no output", "" if ok else "make install"))
    return checks


def check_build(root: Path = ROOT) -> list[Check]:
    """Compiled artifacts exist and were built from the current sources (brownie records
    each source's sha1 in the artifact)."""
    checks = []
    for name in CONTRACTS:
        artifact = root / "build" / "contracts" / f"{name}.json"
        if not artifact.exists():
            checks.append(Check(f"{name} build", False, "not compiled", "make compile"))
            continue
        data = json.loads(artifact.read_text())
        source = (root / "contracts" / f"{name}.sol").read_bytes()
        fresh = data.get("sha1") == hashlib.sha1(source).hexdigest()
        checks.append(Check(f"{name} build", fresh, "up to date" if fresh else "stale", "" if fresh else "make compile"))
    return checks


def run_checks(root: Path = ROOT) -> list[Check]:
    return [
        check_python(),
        *check_distributions(),
        check_node(),
        *check_node_packages(root),
        check_anvil(root),
        *check_compiler(root),
        *check_build(root),
    ]
