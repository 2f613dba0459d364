"""Connecting a process to the swarm's chain through brownie, with errors a user can act on.

Node processes and CLI commands attach to an existing chain (`launch_rpc=False`): a node
must never silently start a private chain of its own. Contracts are bound from the ABIs in
`build/contracts`, so no compilation happens at run time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .deployment import read_record

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_ENV = "SWARM_KEYSTORE_PASSWORD"


class ChainError(RuntimeError):
    """A chain-side problem the user can fix; the message says how."""


@dataclass(frozen=True)
class SwarmHandles:
    swarm: Any
    token: Any
    record: dict[str, Any]


def connect(network: str = "development", port: int | None = None) -> None:
    """Attach to ``network`` (any id brownie knows), silencing brownie's per-transaction
    printing. ``port`` moves a local network (one brownie would launch) to another port,
    so several local chains can run side by side. Raises ChainError with the fix when the
    network is unknown or not running."""
    from brownie import network as brownie_network
    from brownie._config import CONFIG

    CONFIG.argv["silent"] = True
    if brownie_network.is_connected():
        # Always reconnect: the same network id may now mean another chain (another port),
        # and brownie's transaction history must not carry over from the old one.
        brownie_network.disconnect(kill_rpc=False)
    if network not in CONFIG.networks:
        raise ChainError(f"unknown network {network!r}; `brownie networks list` shows the known ones")
    settings = CONFIG.networks[network]
    if "cmd" in settings:
        from .localchain import is_listening

        if port is not None:
            settings.setdefault("cmd_settings", {})["port"] = port
        port = int(settings.get("cmd_settings", {}).get("port", 8545))
        if not is_listening(port):
            raise ChainError(f"no chain is running on 127.0.0.1:{port}; start one with `swarm chain up`")
    try:
        brownie_network.connect(network, launch_rpc=False)
    except Exception as exc:  # brownie raises bare ConnectionError/RPCRequestError variants
        raise ChainError(f"cannot connect to network {network!r}: {exc}") from None
    # brownie's development settings give every transaction the whole block's gas. With
    # several nodes sending at once, anvil's automine then fits one per block and leaves
    # the others pending until some later transaction arrives, which at the end of an
    # epoch may be never: estimate gas instead, so concurrent transactions share a block.
    brownie_network.gas_limit("auto")
    # web3's validation middleware asks for the chain id before every call (two extra
    # requests per eth_call, half a read's cost); a connection's chain id does not change.
    from brownie import web3

    web3.provider.cacheable_requests = {"eth_chainId", "net_version"}
    web3.provider.cache_allowed_requests = True


def artifact_abi(name: str) -> list[dict[str, Any]]:
    path = ROOT / "build" / "contracts" / f"{name}.json"
    if not path.exists():
        raise ChainError(f"{path.name} is not compiled; run `make compile`")
    return json.loads(path.read_text())["abi"]


def bind(record_path: str | Path) -> SwarmHandles:
    """Bind the deployed contracts named in a deployment record, after checking that the
    connected chain is the one the record was written for."""
    from brownie import Contract, chain

    record = read_record(record_path)
    if chain.id != record["chain_id"]:
        raise ChainError(
            f"{record_path} is for chain id {record['chain_id']}, but the connected chain has id {chain.id}"
        )
    swarm = Contract.from_abi("SwarmLearning", record["swarm"], artifact_abi("SwarmLearning"))
    token = Contract.from_abi("SwarmToken", record["token"], artifact_abi("SwarmToken"))
    from brownie import web3

    if web3.eth.get_code(record["swarm"]) in (b"", None):
        raise ChainError(f"no contract at {record['swarm']} on this chain; was it restarted without its state? redeploy with `swarm deploy`")
    return SwarmHandles(swarm=swarm, token=token, record=record)


def load_account(keystore: str | Path, password: str | None = None) -> Any:
    """Unlock an encrypted keystore (eth-account format). The password comes from the
    argument, else the SWARM_KEYSTORE_PASSWORD environment variable, else a prompt."""
    from brownie import accounts

    path = Path(keystore).expanduser()
    if not path.exists():
        raise ChainError(f"keystore {path} not found; create one with `swarm account new {path}`")
    password = password if password is not None else os.environ.get(PASSWORD_ENV)
    if password is None:
        import click

        password = click.prompt(f"password for {path.name}", hide_input=True)
    try:
        return accounts.load(str(path), password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc) or "password" in str(exc).lower():
            raise ChainError(f"wrong password for keystore {path}") from None
        raise ChainError(f"{path} is not a valid keystore: {exc}") from None


def create_keystore(path: str | Path, password: str, private_key: bytes | None = None) -> str:
    """Write a new encrypted keystore (scrypt) and return its address."""
    from eth_account import Account

    account = Account.from_key(private_key) if private_key else Account.create()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(account.key, password)))
    path.chmod(0o600)
    return account.address


def load_project() -> Any:
    """The brownie project at the repository root (compiled artifacts are reused).
    brownie resolves remapped imports against the working directory, so load from the
    root whatever folder the user runs `swarm` in."""
    from brownie import project

    loaded = project.get_loaded_projects()
    if loaded:
        return loaded[0]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return project.load(str(ROOT), name="SwarmProject")
    finally:
        os.chdir(cwd)


def keystore_address(keystore: str | Path) -> str:
    """The address in a keystore, read without unlocking it."""
    path = Path(keystore)
    try:
        address = json.loads(path.read_text())["address"]
    except (OSError, ValueError, KeyError):
        raise ChainError(f"{path} is not a readable keystore") from None
    from eth_utils import to_checksum_address

    return to_checksum_address(address)
