"""Deployment: the config is checked field by field (in Python and again on chain), is
readable afterwards, the first epoch opens, and the owner hands over in two steps."""

import pytest
from brownie import ZERO_ADDRESS, chain

from swarmtoken.config import MAX_PEERS
from tests.fixtures.deployments import TEST_CONFIG
from tests.fixtures.errors import reverts_with

# Index of each field in the SwarmLearning.Config tuple.
FIELDS = [
    "minPeers",
    "maxPeers",
    "commitWindow",
    "mergeWindow",
    "reportWindow",
    "betaBps",
    "suspendAfter",
    "maxEpochs",
    "patience",
    "sampleCap",
    "targetMetric",
    "minDelta",
    "rewardPerEpoch",
    "mergeRule",
    "scorer",
]
ZERO32 = b"\x00" * 32


def plain(values):
    """A config tuple as plain Python values (brownie's return types compare awkwardly)."""
    return [bytes(v) if isinstance(v, bytes) else v if isinstance(v, str) else int(v) for v in values]


def raw_config(**fields):
    """TEST_CONFIG as the raw constructor tuple, with some fields replaced, bypassing
    SwarmConfig's own checks so the contract's checks are exercised."""
    values = list(TEST_CONFIG.contract_tuple())
    for name, value in fields.items():
        values[FIELDS.index(name)] = value
    return tuple(values)


@pytest.mark.parametrize(
    "fields, field, reported",
    [
        ({"maxPeers": 0}, "maxPeers", 0),
        ({"maxPeers": MAX_PEERS + 1}, "maxPeers", MAX_PEERS + 1),
        ({"minPeers": 0}, "minPeers", 0),
        ({"minPeers": 9, "maxPeers": 8}, "minPeers", 9),
        ({"commitWindow": 0}, "commitWindow", 0),
        ({"mergeWindow": 0}, "mergeWindow", 0),
        ({"reportWindow": 0}, "reportWindow", 0),
        ({"betaBps": 10_001}, "betaBps", 10_001),
        ({"sampleCap": 0}, "sampleCap", 0),
        ({"maxEpochs": 0}, "maxEpochs", 0),
        ({"targetMetric": -5}, "targetMetric", 5),
        ({"minDelta": -7}, "minDelta", 7),
        ({"rewardPerEpoch": 0}, "rewardPerEpoch", 0),
        ({"mergeRule": ZERO32}, "mergeRule", 0),
        ({"scorer": ZERO32}, "scorer", 0),
    ],
)
def test_contract_rejects_out_of_range_config_field(SwarmLearning, token, admin, fields, field, reported):
    with reverts_with("InvalidConfig", field, reported):
        SwarmLearning.deploy(raw_config(**fields), token, admin, {"from": admin})


def test_contract_accepts_config_at_the_bounds(SwarmLearning, token, admin):
    config = raw_config(
        minPeers=MAX_PEERS, maxPeers=MAX_PEERS, betaBps=10_000, suspendAfter=0, patience=0, targetMetric=0, minDelta=0
    )
    swarm = SwarmLearning.deploy(config, token, admin, {"from": admin})
    assert plain(swarm.config()) == plain(config)
    zero_beta = raw_config(minPeers=1, maxPeers=1, betaBps=0)
    assert SwarmLearning.deploy(zero_beta, token, admin, {"from": admin}).config()["betaBps"] == 0


def test_contract_rejects_zero_token_address(SwarmLearning, admin):
    with reverts_with("ZeroAddress", "token"):
        SwarmLearning.deploy(raw_config(), ZERO_ADDRESS, admin, {"from": admin})


def test_contract_rejects_zero_admin(SwarmLearning, token, admin):
    with reverts_with("OwnableInvalidOwner", ZERO_ADDRESS):
        SwarmLearning.deploy(raw_config(), token, ZERO_ADDRESS, {"from": admin})


@pytest.mark.parametrize(
    "override",
    [
        {"max_peers": 0},
        {"max_peers": MAX_PEERS + 1},
        {"min_peers": 0},
        {"min_peers": 9},
        {"commit_window": 0},
        {"merge_window": 0},
        {"report_window": 0},
        {"beta": 1.01},
        {"beta": -0.1},
        {"sample_cap": 0},
        {"suspend_after": 256},
        {"max_epochs": 0},
        {"patience": -1},
        {"target_metric": -0.5},
        {"min_delta": -0.01},
        {"reward_per_epoch": "0"},
        {"merge_rule": ""},
        {"scorer": "x" * 33},
        {"token_cap": "-1"},
        {"admin_delay": -1},
    ],
)
def test_create_swarm_refuses_bad_config_before_deploying(create_swarm, override):
    before = chain.height
    # ConfigError for every range check; an unparsable token amount is a plain ValueError.
    with pytest.raises(ValueError):
        create_swarm(**override)
    assert chain.height == before


def test_config_is_readable_and_first_epoch_opens(swarm, token, admin):
    assert plain(swarm.config()) == plain(TEST_CONFIG.contract_tuple())
    config = swarm.config()
    assert bytes(config["mergeRule"]) == b"fltrust".ljust(32, b"\x00")
    assert bytes(config["scorer"]) == b"auto".ljust(32, b"\x00")
    assert swarm.token() == token
    assert swarm.owner() == admin
    assert swarm.currentEpoch() == 1
    assert not swarm.finished()
    assert swarm.carry() == 0
    assert swarm.activeCount() == 0

    opened = swarm.tx.events["EpochOpened"]
    deployed_at = chain[swarm.tx.block_number].timestamp
    assert opened["epoch"] == 1
    assert opened["commitDeadline"] == deployed_at + 60
    assert opened["budget"] == 1000 * 10**18
    state = swarm.epochState(1)
    assert state["phase"] == 0
    assert state["deadline"] == deployed_at + 60


def test_deploy_grants_minter_role_to_the_swarm_only(swarm, token, admin, nodes, outsider):
    minter = token.MINTER_ROLE()
    assert token.hasRole(minter, swarm)
    for account in [admin, outsider, *nodes]:
        assert not token.hasRole(minter, account)
    assert token.defaultAdmin() == admin


def test_only_owner_can_start_an_ownership_transfer(swarm, nodes, outsider):
    with reverts_with("OwnableUnauthorizedAccount", outsider):
        swarm.transferOwnership(nodes[0], {"from": outsider})


def test_ownership_moves_only_when_the_new_owner_accepts(swarm, admin, nodes, outsider):
    new_owner = nodes[7]
    tx = swarm.transferOwnership(new_owner, {"from": admin})
    assert tx.events["OwnershipTransferStarted"]["newOwner"] == new_owner
    assert swarm.owner() == admin
    assert swarm.pendingOwner() == new_owner

    # Until it accepts, the pending owner has no rights and the old owner keeps them.
    with reverts_with("OwnableUnauthorizedAccount", new_owner):
        swarm.authorize(nodes[0], 0, {"from": new_owner})
    swarm.authorize(nodes[0], 0, {"from": admin})
    with reverts_with("OwnableUnauthorizedAccount", outsider):
        swarm.acceptOwnership({"from": outsider})

    tx = swarm.acceptOwnership({"from": new_owner})
    assert tx.events["OwnershipTransferred"]["previousOwner"] == admin
    assert tx.events["OwnershipTransferred"]["newOwner"] == new_owner
    assert swarm.owner() == new_owner
    assert swarm.pendingOwner() == ZERO_ADDRESS
    with reverts_with("OwnableUnauthorizedAccount", admin):
        swarm.authorize(nodes[1], 0, {"from": admin})
    swarm.authorize(nodes[1], 0, {"from": new_owner})
