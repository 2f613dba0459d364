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

from .confirmation import wait_for_receipts_first
from .deployment import block_hash, local_endpoint, read_record, record_endpoint

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_ENV = "SWARM_KEYSTORE_PASSWORD"
#: Where `swarm chain up` records the local chain it started (pid, port, state), per folder.
CHAIN_FILE = Path(".swarm") / "chain.json"
DEFAULT_NETWORK = "development"


class ChainError(RuntimeError):
    """A chain-side problem the user can fix; the message says how."""


@dataclass(frozen=True)
class SwarmHandles:
    swarm: Any
    token: Any
    record: dict[str, Any]


def connect(network: str = DEFAULT_NETWORK, port: int | None = None, origin: str | None = None) -> dict[str, Any]:
    """Attach to ``network`` (any id brownie knows), silencing brownie's per-transaction
    printing. ``port`` moves a local network (one brownie would launch) to another port,
    so several local chains can run side by side; ``origin`` says where the endpoint came
    from (for the message when nothing listens there). Raises ChainError with the fix when
    the network is unknown or not running. Returns the endpoint reached, as a deployment
    record stores it (`deployment.local_endpoint` for a local chain)."""
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
            where = f" ({origin})" if origin else ""
            start = "swarm chain up" if port == 8545 else f"swarm chain up --port {port}"
            raise ChainError(f"no chain is running on 127.0.0.1:{port}{where}; start one with `{start}`")
        endpoint = local_endpoint(network, port)
    else:
        endpoint = {"network": network}
    try:
        brownie_network.connect(network, launch_rpc=False)
    except Exception as exc:  # brownie raises bare ConnectionError/RPCRequestError variants
        raise ChainError(f"cannot connect to network {network!r}: {exc}") from None
    # brownie's development settings give every transaction the whole block's gas. With
    # several nodes sending at once, anvil's automine then fits one per block and leaves
    # the others pending until some later transaction arrives, which at the end of an
    # epoch may be never: estimate gas instead, so concurrent transactions share a block.
    brownie_network.gas_limit("auto")
    steady_connection()
    return endpoint


def steady_connection() -> None:
    """What every brownie connection of this project gets, whoever opened it (`connect`, or
    brownie's pytest plugin in the contract tests): the chain id answered from a cache, since
    web3's validation middleware asks for it before every call (two extra requests per
    eth_call, half a read's cost; 46 % of the contract tests' requests) and a connection's
    chain id does not change; and confirmations that wait for the receipt
    (`confirmation.wait_for_receipts_first`)."""
    from brownie import web3

    web3.provider.cacheable_requests = {"eth_chainId", "net_version"}
    web3.provider.cache_allowed_requests = True
    wait_for_receipts_first()


def local_chain_port(folder: str | Path = ".") -> int | None:
    """The port of the local chain `swarm chain up` started from ``folder`` (its
    ``.swarm/chain.json``), or None when there is none or the file is unreadable."""
    try:
        port = json.loads((Path(folder) / CHAIN_FILE).read_text())["port"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return port if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535 else None


def is_local_network(network: str) -> bool:
    """Whether brownie would launch ``network`` itself (a local chain with a port)."""
    from brownie._config import CONFIG

    return "cmd" in CONFIG.networks.get(network, {})


def resolve_endpoint(network: str | None, port: int | None, record: dict[str, Any] | None = None,
                     record_path: str | Path | None = None, folder: str | Path = ".") -> tuple[str, int | None, str]:
    """Which chain a command reaches: ``(network, port, origin)``. ``--network`` and
    ``--port`` (``network``, ``port``; None when not given) win; else the deployment
    record's endpoint; else (no record, or an old one without a port) the local chain
    `swarm chain up` started from ``folder``; else brownie's default. ``origin`` names the
    source, for messages."""
    recorded_network, recorded_port = record_endpoint(record) if record is not None else (None, None)
    if network is None and port is None:
        if recorded_port is not None:
            return recorded_network, recorded_port, f"the chain {record_path or 'the deployment record'} records"
        network = recorded_network or DEFAULT_NETWORK
        chain_port = local_chain_port(folder) if is_local_network(network) else None
        if chain_port is not None:
            return network, chain_port, f"the chain `swarm chain up` started from this folder, {Path(folder) / CHAIN_FILE}"
        return network, None, ""
    if network is None:  # --port alone: the record's network if it is a local one
        network = recorded_network if recorded_network and is_local_network(recorded_network) else DEFAULT_NETWORK
        return network, port, "--port"
    if port is None and network == recorded_network:
        return network, recorded_port, f"--network, on the port {record_path or 'the deployment record'} records"
    return network, port, "--network" if port is None else "--network/--port"


def artifact_abi(name: str) -> list[dict[str, Any]]:
    path = ROOT / "build" / "contracts" / f"{name}.json"
    if not path.exists():
        raise ChainError(f"{path.name} is not compiled; run `make compile`")
    return json.loads(path.read_text())["abi"]


def bind(record_path: str | Path) -> SwarmHandles:
    """Bind the deployed contracts named in a deployment record, after checking that the
    connected chain is the one the record was written for: its chain id, code at the
    swarm's address and, for a record that has it, the deployment block's hash (every fresh
    anvil gives a swarm the same addresses, so code alone does not tell two chains apart)."""
    from brownie import Contract, chain, web3

    record = read_record(record_path)
    reached = f"the chain reached at {_endpoint_uri(web3)}"
    fix = f"use the record's chain ({_describe_endpoint(record)}: the default without --network/--port)" \
        " or redeploy on this one with `swarm deploy --force`"
    if chain.id != record["chain_id"]:
        raise ChainError(f"{record_path} is for chain id {record['chain_id']}, but {reached} has id {chain.id}; {fix}")
    if web3.eth.get_code(record["swarm"]) in (b"", None):
        raise ChainError(f"{record_path}: no contract at {record['swarm']} on {reached}; was it restarted without "
                         f"its state, or is it another chain? {fix}")
    expected = record.get("block_hash")
    if expected:
        found = block_hash(int(record["block"]))
        if found is None or found.lower() != str(expected).lower():
            number, expected = record["block"], _short(str(expected))
            seen = f"its block {number} is {_short(found)}, not" if found else f"it has no block {number},"
            raise ChainError(f"{record_path} names a swarm on another chain: {reached} has code at its addresses "
                             f"(every fresh anvil deploys to the same ones) but {seen} the record's deployment block "
                             f"{expected}; {fix}")
    swarm = Contract.from_abi("SwarmLearning", record["swarm"], artifact_abi("SwarmLearning"))
    token = Contract.from_abi("SwarmToken", record["token"], artifact_abi("SwarmToken"))
    return SwarmHandles(swarm=swarm, token=token, record=record)


def _endpoint_uri(web3: Any) -> str:
    uri = getattr(web3.provider, "endpoint_uri", None)
    return str(uri) if uri else "the connected chain"


def _describe_endpoint(record: dict[str, Any]) -> str:
    endpoint = record.get("endpoint") or {}
    if endpoint.get("rpc_url"):
        return f"{endpoint['rpc_url']}, network {endpoint.get('network', record['network'])}"
    return f"network {endpoint.get('network', record['network'])}"


def _short(block_hash: str) -> str:
    return f"{block_hash[:10]}…" if len(block_hash) > 12 else block_hash


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


def create_keystore(path: str | Path, password: str, private_key: bytes | None = None,
                    work_factor: int | None = None) -> str:
    """Write a new encrypted keystore (scrypt) and return its address. ``work_factor`` is
    scrypt's n (eth-account's default, 2^18, when None: about 0.7 s of CPU to unlock)."""
    from eth_account import Account

    account = Account.from_key(private_key) if private_key else Account.create()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(account.key, password, kdf="scrypt", iterations=work_factor)))
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
