"""Deployment config: defaults deploy, every bad value gets a message naming the key."""

import pytest

from swarmtoken.config import ConfigError, SwarmConfig
from swarmtoken.units import METRIC_SCALE, to_fixed, tokens_to_wei


def test_shipped_config_file_loads(tmp_path):
    config = SwarmConfig.from_toml("config/swarm.toml")
    assert config.contract_tuple()[11] == 1000 * 10**18
    assert config.merge_rule == "fltrust_median" == SwarmConfig().merge_rule
    assert not config.keep_token_admin


def test_contract_tuple_scales_fractions():
    config = SwarmConfig(beta=0.25, target_metric=0.97, min_delta=0.001, merge_rule="median")
    values = config.contract_tuple()
    assert values[5] == 2500
    assert values[9] == round(0.97 * METRIC_SCALE)
    assert values[10] == 1000
    assert values[12] == b"median".ljust(32, b"\0")


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
    ],
)
def test_bad_values_are_refused_with_the_key_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        SwarmConfig.from_mapping(overrides)


def test_unknown_key_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="unknown key.*min_peer\\b"):
        SwarmConfig.from_mapping({"min_peer": 3})


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
