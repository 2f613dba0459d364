"""Deploy a swarm from a TOML config and write its deployment record.

    brownie run scripts/deploy.py main config/swarm.toml deployments/development.json

On the development network the admin is brownie's first account; on any other network
set SWARM_ADMIN_ACCOUNT to the id of a brownie account (`brownie accounts list`), whose
keystore password brownie prompts for.
"""

import os

from brownie import accounts, chain, network, project

from swarmtoken.config import SwarmConfig
from swarmtoken.chain.deployment import deploy, write_record


def _admin():
    if network.show_active() == "development":
        return accounts[0]
    account_id = os.environ.get("SWARM_ADMIN_ACCOUNT")
    if not account_id:
        raise SystemExit("set SWARM_ADMIN_ACCOUNT to the brownie account id of the consortium admin")
    return accounts.load(account_id)


def main(config_path: str = "config/swarm.toml", out: str | None = None) -> None:
    config = SwarmConfig.from_toml(config_path)
    active = network.show_active()
    deployment = deploy(project.get_loaded_projects()[0], config, _admin())
    record = write_record(
        out or f"deployments/{active}.json",
        network=active,
        chain_id=chain.id,
        deployment=deployment,
        config=config,
    )
    print(f"SwarmToken    {deployment.token.address}")
    print(f"SwarmLearning {deployment.swarm.address}")
    print(f"record        {record}")
