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
    return Deployment(token=token, swarm=swarm, block=tx.block_number)


def renounce_token_admin(token: Any, admin: Any, timeout_s: float = 30.0) -> Any:
    """Give up the token's default admin role for good: OpenZeppelin's two steps, a
    transfer to the zero address, then the renunciation once the schedule has passed
    (strictly after the first step's block, with a zero delay). Returns the last
    transaction."""
    from brownie.exceptions import VirtualMachineError

    token.beginDefaultAdminTransfer(ZERO_ADDRESS, {"from": admin}, silent=True)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return token.renounceRole(token.DEFAULT_ADMIN_ROLE(), admin, {"from": admin}, silent=True)
        except VirtualMachineError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # the schedule passes with the next block's timestamp


def write_record(path: str | Path, *, network: str, chain_id: int, deployment: Deployment, config: SwarmConfig) -> Path:
    """Write the JSON record (network, chain id, addresses, config, block)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "network": network,
        "chain_id": chain_id,
        "token": deployment.token.address,
        "swarm": deployment.swarm.address,
        "block": deployment.block,
        "config": config.as_dict(),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


class DeploymentRecordError(ValueError):
    """A deployment record is missing or malformed."""


def read_record(path: str | Path) -> dict[str, Any]:
    """Read a record written by `write_record`, with a message that says what to do."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeploymentRecordError(f"{path}: no deployment record; run `swarm deploy` first") from None
    except json.JSONDecodeError as exc:
        raise DeploymentRecordError(f"{path}: not a deployment record ({exc})") from None
    missing = [k for k in ("network", "chain_id", "token", "swarm", "block", "config") if k not in record]
    if missing:
        raise DeploymentRecordError(f"{path}: deployment record lacks {', '.join(missing)}")
    return record
