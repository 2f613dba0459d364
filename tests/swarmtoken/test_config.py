"""Deployment config: defaults deploy, every bad value gets a message naming the key."""

import pytest

from swarmtoken import rewards
from swarmtoken.config import ConfigError, SwarmConfig, chain_rule
from swarmtoken.rewards import Rule
from swarmtoken.units import METRIC_SCALE, to_fixed, tokens_to_wei

STRUCT_ORDER = ["minPeers", "maxPeers", "commitWindow", "mergeWindow", "reportWindow", "betaBps", "smoothingBps",
                "standingBps", "suspendAfter", "maxEpochs", "patience", "targetMetric", "minDelta", "rewardPerEpoch",
                "mergeRule", "scorer"]
"""`SwarmLearning.Config`'s fields in declaration order: the constructor takes a tuple."""


def test_shipped_config_file_loads(tmp_path):
    config = SwarmConfig.from_toml("config/swarm.toml")
    assert config.contract_fields()["rewardPerEpoch"] == 1000 * 10**18
    assert config.merge_rule == "fltrust_median" == SwarmConfig().merge_rule
    assert not config.keep_token_admin


def test_settlement_defaults_are_the_reference_rules_everywhere():
    """SwarmConfig, the shipped file and the contract tuple all carry `rewards`' defaults."""
    assert SwarmConfig().rule() == Rule() == SwarmConfig.from_toml("config/swarm.toml").rule()
    fields = SwarmConfig().contract_fields()
    assert (fields["betaBps"], fields["smoothingBps"], fields["standingBps"]) == (
        rewards.DEFAULT_BETA_BPS, rewards.DEFAULT_SMOOTHING_BPS, rewards.DEFAULT_STANDING_BPS)


def test_contract_tuple_is_the_struct_in_order_with_fractions_scaled():
    config = SwarmConfig(beta=0.25, smoothing=0.75, standing=0.05, target_metric=0.97, min_delta=0.001,
                         merge_rule="median")
    assert list(config.contract_fields()) == STRUCT_ORDER
    values = dict(zip(STRUCT_ORDER, config.contract_tuple()))
    assert (values["betaBps"], values["smoothingBps"], values["standingBps"]) == (2500, 7500, 500)
    assert values["targetMetric"] == round(0.97 * METRIC_SCALE)
    assert values["minDelta"] == 1000
    assert values["mergeRule"] == b"median".ljust(32, b"\0")


def test_the_rule_read_back_from_chain_is_the_deployed_one():
    """What the audit and the settler read from `config()` is what was deployed."""
    config = SwarmConfig(beta=0.4, smoothing=0.3, standing=0.1)
    assert chain_rule(config.contract_fields()) == config.rule() == Rule(4000, 3000, 1000)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"smoothing": 0}, r"smoothing must be in \[0.0001, 1\] \(the weight of an epoch's credit"),
        ({"smoothing": 0.00004}, r"smoothing must be in \[0.0001, 1\]"),  # rounds to 0 bps
        ({"smoothing": 1.01}, r"smoothing must be in \[0.0001, 1\]"),
        ({"standing": 1.5}, r"standing must be in \[0, 1\] \(the fraction of the average smoothed credit"),
        ({"standing": -0.01}, r"standing must be in \[0, 1\]"),
        ({"beta": -0.1}, r"beta must be in \[0, 1\]"),
    ],
)
def test_bad_settlement_parameters_are_refused_with_the_range_and_meaning(overrides, message):
    with pytest.raises(ConfigError, match=r"^swarm.toml: " + message):
        SwarmConfig.from_mapping(overrides, source="swarm.toml")


@pytest.mark.parametrize("overrides", [{"smoothing": 0.0001}, {"smoothing": 1.0}, {"standing": 0.0}, {"standing": 1.0}])
def test_settlement_parameters_at_their_bounds_deploy(overrides):
    rule = SwarmConfig(**overrides).rule()  # the reference rule accepts what the config accepts
    assert chain_rule(SwarmConfig(**overrides).contract_fields()) == rule


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"min_peers": 0}, "min_peers"),
        ({"min_peers": 9, "max_peers": 8}, "min_peers"),
        ({"max_peers": 257}, "max_peers"),
        ({"commit_window": 0}, "commit_window"),
        ({"beta": 1.5}, "beta"),
        ({"max_peers": 113}, "max_peers"),
        ({"target_metric": 1.5}, "target_metric"),
        ({"reward_per_epoch": str(10**12 + 1)}, "reward_per_epoch"),
        ({"admin_delay": 60}, "keep_token_admin"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"reward_per_epoch": "0"}, "reward_per_epoch"),
        ({"reward_per_epoch": "abc"}, "not a token amount"),
        ({"merge_rule": "x" * 33}, "merge_rule"),
        ({"model": ""}, "model must name a model"),
        ({"n_classes": 1, "n_features": 64}, "n_classes must be 0"),
        ({"n_classes": 10, "n_features": 0}, "n_classes must be 0"),
        ({"n_features": -1}, "n_classes must be 0"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        SwarmConfig.from_mapping(overrides)


def test_unknown_key_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="unknown key.*min_peer\\b"):
        SwarmConfig.from_mapping({"min_peer": 3})


def test_a_config_that_still_sets_trim_is_refused():
    """The validators' aggregate is a vote now, with no trimming parameter: an old file that
    sets ``trim`` must fail loudly rather than deploy a rule its author did not mean."""
    with pytest.raises(ConfigError, match=r"unknown key\(s\) trim;"):
        SwarmConfig.from_mapping({"trim": 0.25})
    assert "trim" not in SwarmConfig().as_dict() and "trimBps" not in SwarmConfig().contract_fields()


def test_missing_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        SwarmConfig.from_toml(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("min_peers = = 3")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        SwarmConfig.from_toml(bad)


def test_token_amounts_are_exact_and_fixed_point_clamps():
    assert tokens_to_wei("0.000000000000000001") == 1
    with pytest.raises(ValueError):
        tokens_to_wei("0.0000000000000000001")
    assert to_fixed(1e30, 10**9) == 2**63 - 1
    with pytest.raises(ValueError):
        to_fixed(float("nan"), 10**6)
