"""Deployment: the config is checked field by field (in Python and again on chain), is
readable afterwards, the first epoch opens, and the owner hands over in two steps. The
reward per epoch is bounded so that the budget and its carry can never overflow."""

from dataclasses import replace

import pytest
from brownie import ZERO_ADDRESS, chain

from swarmtoken.config import MAX_PEERS, MAX_REWARD_WEI, ConfigError, SwarmConfig
from tests.fixtures.deployments import TEST_CONFIG, Protocol
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement

UINT64_MAX = 2**64 - 1
ABANDONED = 4

# Index of each field in the SwarmLearning.Config tuple (test_contract_accepts_config_at_the_bounds
# holds the contract's struct to this order).
FIELDS = list(TEST_CONFIG.contract_fields())
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
        ({"smoothingBps": 0}, "smoothingBps", 0),
        ({"smoothingBps": 10_001}, "smoothingBps", 10_001),
        ({"standingBps": 10_001}, "standingBps", 10_001),
        ({"maxEpochs": 0}, "maxEpochs", 0),
        ({"targetMetric": -5}, "targetMetric", 5),
        ({"targetMetric": 10**6 + 1}, "targetMetric", 10**6 + 1),
        ({"minDelta": -7}, "minDelta", 7),
        ({"targetMetric": -(2**63)}, "targetMetric", 2**63),  # no overflow negating int64's minimum
        ({"minDelta": -(2**63)}, "minDelta", 2**63),
        ({"rewardPerEpoch": 0}, "rewardPerEpoch", 0),
        ({"rewardPerEpoch": MAX_REWARD_WEI + 1}, "rewardPerEpoch", MAX_REWARD_WEI + 1),
        ({"rewardPerEpoch": 2**256 - 1}, "rewardPerEpoch", 2**256 - 1),
        ({"mergeRule": ZERO32}, "mergeRule", 0),
        ({"scorer": ZERO32}, "scorer", 0),
    ],
)
def test_contract_rejects_out_of_range_config_field(SwarmLearning, token, admin, fields, field, reported):
    with reverts_with("InvalidConfig", field, reported):
        SwarmLearning.deploy(raw_config(**fields), token, admin, {"from": admin})


def test_contract_config_struct_has_the_python_fields_in_order(SwarmLearning):
    """The ABI's Config components are SwarmConfig.contract_fields() in order (no trimBps
    since the vote replaced the trimmed mean)."""
    (config,) = [item for item in SwarmLearning.abi if item.get("name") == "config"]
    assert [c["name"] for c in config["outputs"][0]["components"]] == FIELDS == [
        "minPeers", "maxPeers", "commitWindow", "mergeWindow", "reportWindow", "betaBps", "smoothingBps",
        "standingBps", "suspendAfter", "maxEpochs", "patience", "targetMetric", "minDelta", "rewardPerEpoch",
        "mergeRule", "scorer",
    ]


def test_contract_accepts_config_at_the_bounds(SwarmLearning, token, admin):
    config = raw_config(
        minPeers=MAX_PEERS,
        maxPeers=MAX_PEERS,
        betaBps=10_000,
        smoothingBps=10_000,
        standingBps=10_000,
        suspendAfter=0,
        patience=0,
        targetMetric=10**6,
        minDelta=0,
        rewardPerEpoch=MAX_REWARD_WEI,
    )
    swarm = SwarmLearning.deploy(config, token, admin, {"from": admin})
    assert plain(swarm.config()) == plain(config)
    lowest = raw_config(minPeers=1, maxPeers=1, betaBps=0, smoothingBps=1, standingBps=0)
    assert plain(SwarmLearning.deploy(lowest, token, admin, {"from": admin}).config()) == plain(lowest)


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
        {"target_metric": 1.000001},
        {"reward_per_epoch": "1000000000000.000000000000000001"},  # 10**12 tokens + 1 wei
        {"reward_per_epoch": "1000000000001"},
        {"admin_delay": 3600},  # a delay only means something to an admin that stays
        {"suspend_after": 256},
        {"max_epochs": 0},
        {"patience": -1},
        {"target_metric": -0.5},
        {"min_delta": -0.01},
        {"min_delta": 10**13},  # 1e19 in fixed point: no int64 holds it
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
    assert bytes(config["mergeRule"]) == b"fltrust_median".ljust(32, b"\x00")
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
    # By default the deployer gave up the token's admin role: nobody can change minters.
    assert token.defaultAdmin() == ZERO_ADDRESS


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
        swarm.authorize(nodes[0], 0, 1000, {"from": new_owner})
    swarm.authorize(nodes[0], 0, 1000, {"from": admin})
    with reverts_with("OwnableUnauthorizedAccount", outsider):
        swarm.acceptOwnership({"from": outsider})

    tx = swarm.acceptOwnership({"from": new_owner})
    assert tx.events["OwnershipTransferred"]["previousOwner"] == admin
    assert tx.events["OwnershipTransferred"]["newOwner"] == new_owner
    assert swarm.owner() == new_owner
    assert swarm.pendingOwner() == ZERO_ADDRESS
    with reverts_with("OwnableUnauthorizedAccount", admin):
        swarm.authorize(nodes[1], 0, 1000, {"from": admin})
    swarm.authorize(nodes[1], 0, 1000, {"from": new_owner})


# ---------------------------------------------------------------- reward bound

MAX_REWARD_TOKENS = "1000000000000"  # 10**12 tokens = MAX_REWARD_WEI


def test_contract_accepts_the_largest_reward_and_refuses_one_wei_more(SwarmLearning, token, admin):
    """rewardPerEpoch lies in (0, 1e30]: the bound that keeps reward + carry from ever
    overflowing."""
    swarm = SwarmLearning.deploy(raw_config(rewardPerEpoch=MAX_REWARD_WEI), token, admin, {"from": admin})
    assert swarm.config()["rewardPerEpoch"] == 10**30
    assert swarm.tx.events["EpochOpened"]["budget"] == 10**30
    with reverts_with("InvalidConfig", "rewardPerEpoch", 10**30 + 1):
        SwarmLearning.deploy(raw_config(rewardPerEpoch=10**30 + 1), token, admin, {"from": admin})
    with reverts_with("InvalidConfig", "rewardPerEpoch", 0):
        SwarmLearning.deploy(raw_config(rewardPerEpoch=0), token, admin, {"from": admin})


@pytest.mark.parametrize("amount", ["1000000000001", "1000000000000.000000000000000001", "1e13"])
def test_python_config_refuses_a_reward_above_ten_to_the_twelve_tokens(amount):
    """The same bound, checked before anything is sent, with a message naming the key."""
    with pytest.raises(ConfigError, match="reward_per_epoch must be > 0 and at most 1000000000000 tokens"):
        replace(TEST_CONFIG, reward_per_epoch=amount)
    assert replace(TEST_CONFIG, reward_per_epoch=MAX_REWARD_TOKENS).contract_tuple()[FIELDS.index("rewardPerEpoch")] \
        == MAX_REWARD_WEI


def test_python_config_refuses_an_admin_delay_without_an_admin_that_stays():
    """By default the deployer renounces the token admin, so a handover delay would be a
    setting that does nothing: refused rather than silently ignored."""
    with pytest.raises(ConfigError, match="admin_delay only applies with keep_token_admin"):
        SwarmConfig(admin_delay=1)
    assert SwarmConfig(keep_token_admin=True, admin_delay=1).admin_delay == 1
    assert SwarmConfig(keep_token_admin=True).admin_delay == 0
    assert not SwarmConfig().keep_token_admin


def test_carry_of_abandoned_epochs_at_the_largest_reward_does_not_overflow(create_swarm, admin, nodes):
    """At rewardPerEpoch = 1e30 every abandoned epoch carries its whole budget, so the
    budget grows by 1e30 an epoch; the announced budgets stay exact, and an epoch that then
    settles pays that grown budget by the reference rule to the wei, with every sample
    count and score at its bound."""
    swarm, token = create_swarm(reward_per_epoch=MAX_REWARD_TOKENS)
    window = swarm.config()["commitWindow"]
    protocol = Protocol(swarm, admin)
    members = nodes[:3]
    protocol.enroll(members, allowance=UINT64_MAX)
    for epoch in range(1, 6):
        at = swarm.epochState(epoch)["deadline"] + window
        if epoch == 1:
            # Two commits are not enough, but the epoch is not stalled until `at`.
            protocol.submit(members[:2])
            with reverts_with("EpochNotStalled", epoch, at):
                swarm.abandonEpoch(epoch, {"from": nodes[7]})
        chain.sleep(2 * window + 1)
        tx = swarm.abandonEpoch(epoch, {"from": nodes[7]})
        assert tx.events["EpochAbandoned"]["carried"] == epoch * MAX_REWARD_WEI == swarm.carry()
        assert tx.events["EpochOpened"]["epoch"] == epoch + 1
        assert tx.events["EpochOpened"]["budget"] == (epoch + 1) * MAX_REWARD_WEI
        assert swarm.epochState(epoch)["phase"] == ABANDONED
    assert token.totalSupply() == 0

    budget = 6 * MAX_REWARD_WEI
    scores = [10**9, 10**9 - 1, 1]
    tx = protocol.run_epoch(members, scores, samples=UINT64_MAX)
    expected = expected_settlement(budget, [Participant(samples=UINT64_MAX)] * 3, protocol.reports[6], swarm)
    assert_settled_as_expected(tx, swarm, members, [0, 0, 0], expected, budget)
    assert token.totalSupply() == expected.credited == budget - expected.carried
    assert tx.events["EpochOpened"]["budget"] == MAX_REWARD_WEI + expected.carried
