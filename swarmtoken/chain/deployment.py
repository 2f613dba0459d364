"""Deploying a swarm (token + swarm contract + minter grant) and the deployment record
the CLI reads afterwards."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SwarmConfig
from ..units import tokens_to_wei

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class Deployment:
    token: Any  # brownie ProjectContract of SwarmToken
    swarm: Any  # brownie ProjectContract of SwarmLearning
    block: int
    block_hash: str | None = None  # the hash of ``block``: tells this chain from a fresh one with the same addresses


def deploy(project: Any, config: SwarmConfig, admin: Any) -> Deployment:
    """Deploy SwarmToken and SwarmLearning from ``project`` (a loaded brownie project or
    anything with the two contract containers) and give the swarm the sole minter role.
    ``admin`` becomes the swarm's owner. Unless ``config.keep_token_admin``, it then
    renounces the token's admin role, so no account but the swarm can ever mint and nobody
    can revoke the swarm's minter role (which would halt settlement)."""
    token = project.SwarmToken.deploy(
        config.token_name,
        config.token_symbol,
        admin,
        config.admin_delay,
        tokens_to_wei(config.token_cap),
        {"from": admin},
        silent=True,
    )
    swarm = project.SwarmLearning.deploy(config.contract_tuple(), token, admin, {"from": admin}, silent=True)
    tx = token.grantRole(token.MINTER_ROLE(), swarm, {"from": admin}, silent=True)
    if not config.keep_token_admin:
        tx = renounce_token_admin(token, admin)
    return Deployment(token=token, swarm=swarm, block=tx.block_number, block_hash=block_hash(tx.block_number))


def block_hash(number: int) -> str | None:
    """The hash of block ``number`` on the connected chain ("0x..."), or None if it has none."""
    from brownie import web3

    try:
        block = web3.eth.get_block(number)
    except Exception:  # web3's BlockNotFound, or a node that refuses the request
        return None
    return web3.to_hex(block["hash"]) if block and block.get("hash") is not None else None


def renounce_token_admin(token: Any, admin: Any, timeout_s: float = 30.0) -> Any:
    """Give up the token's default admin role for good: OpenZeppelin's two steps, a
    transfer to the zero address, then the renunciation once the schedule has passed
    (strictly after the first step's block, with a zero delay). Returns the last
    transaction."""
    from brownie.exceptions import VirtualMachineError
    from web3.exceptions import ContractLogicError

    token.beginDefaultAdminTransfer(ZERO_ADDRESS, {"from": admin}, silent=True)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return token.renounceRole(token.DEFAULT_ADMIN_ROLE(), admin, {"from": admin}, silent=True)
        # On a live network brownie's gas estimate meets the revert first (web3's error).
        except (VirtualMachineError, ContractLogicError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the schedule passes with the next block's timestamp
            # The estimate runs on the latest block, whose timestamp is the schedule's until
            # another block is mined; on an idle chain none would be: mine one (an empty
            # transfer to itself).
            admin.transfer(admin, 0, silent=True)


def local_endpoint(network: str, port: int) -> dict[str, Any]:
    """The endpoint of a local chain (one brownie's ``network`` would launch) on ``port``."""
    return {"network": network, "port": int(port), "rpc_url": f"http://127.0.0.1:{int(port)}"}


def write_record(path: str | Path, *, network: str, chain_id: int, deployment: Deployment, config: SwarmConfig,
                 endpoint: dict[str, Any] | None = None, overwrite: bool = True) -> Path:
    """Write the JSON record: network, chain id, where the chain was reached (``endpoint``:
    network, and for a local chain its port and RPC URL), addresses, config, the deployment
    block and its hash. With ``overwrite=False`` an existing file is refused
    (:class:`DeploymentRecordExists`)."""
    path = Path(path)
    if not overwrite:
        refuse_overwrite(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "network": network,
        "chain_id": chain_id,
        "endpoint": dict(endpoint) if endpoint is not None else {"network": network},
        "token": deployment.token.address,
        "swarm": deployment.swarm.address,
        "block": deployment.block,
        "block_hash": deployment.block_hash,
        "config": config.as_dict(),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


class DeploymentRecordError(ValueError):
    """A deployment record is missing or malformed."""


class DeploymentRecordExists(DeploymentRecordError):
    """`swarm deploy` would overwrite a record (the swarm it names would be forgotten)."""


def refuse_overwrite(path: str | Path) -> None:
    """Raise :class:`DeploymentRecordExists` if a deployment record is already at ``path``."""
    path = Path(path)
    if path.exists():
        raise DeploymentRecordExists(f"{path} already holds a deployment record; pass --force to overwrite it "
                                     "(the swarm it names is then forgotten), or --out another file")


def read_record(path: str | Path) -> dict[str, Any]:
    """Read a record written by `write_record`, with a message that says what to do."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeploymentRecordError(f"{path}: no deployment record; run `swarm deploy` first") from None
    except json.JSONDecodeError as exc:
        raise DeploymentRecordError(f"{path}: not a deployment record ({exc})") from None
    if not isinstance(record, dict):
        raise DeploymentRecordError(f"{path}: not a deployment record (a JSON object is expected)")
    missing = [k for k in ("network", "chain_id", "token", "swarm", "block", "config") if k not in record]
    if missing:
        raise DeploymentRecordError(f"{path}: deployment record lacks {', '.join(missing)}")
    endpoint = record.get("endpoint")
    if endpoint is not None and not (isinstance(endpoint, dict) and isinstance(endpoint.get("network", ""), str)
                                     and _optional_port(endpoint.get("port"))):
        raise DeploymentRecordError(f"{path}: its endpoint is malformed; redeploy or restore the record")
    return record


def record_endpoint(record: dict[str, Any]) -> tuple[str, int | None]:
    """The network and (local chain) port a record was deployed to; a record written
    before endpoints were recorded gives its network and no port."""
    endpoint = record.get("endpoint") or {}
    port = endpoint.get("port")
    return str(endpoint.get("network") or record["network"]), int(port) if port is not None else None


def _optional_port(port: Any) -> bool:
    return port is None or (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535)
