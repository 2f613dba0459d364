"""Node config files: round trip, path resolution, and a clear error for every mistake."""

import pytest

from swarmtoken.config import ConfigError
from swarmtoken.node.localdata import load_local_data
from swarmtoken.node.config import DataSection, NodeConfig, NodeSection


def test_written_config_reads_back_identically(tmp_path):
    config = NodeConfig(data=DataSection(shard=2, shards=5, alpha=0.3), node=NodeSection(attack="sign_flip"),
                        train={"lr": 0.1, "steps": 5}, base_dir=tmp_path)
    path = tmp_path / "node.toml"
    path.write_text(config.to_toml())
    again = NodeConfig.from_toml(path)
    assert again == config


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "n1").mkdir()
    path = tmp_path / "n1" / "node.toml"
    path.write_text('[chain]\nkeystore = "keys/k.json"\n')
    config = NodeConfig.from_toml(path)
    assert config.path(config.chain.keystore) == tmp_path / "n1" / "keys" / "k.json"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[chian]\nnetwork = 'x'\n", "unknown section"),
        ("[chain]\nnetwrok = 'x'\n", r"unknown key\(s\) in \[chain\]: netwrok"),
        ("[data]\nshard = 5\nshards = 5\n", "shard must be in"),
        ("[node]\npoll_interval = 0\n", "poll_interval"),
        ("[chain\n", "not valid TOML"),
    ],
)
def test_mistakes_get_a_message_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        NodeConfig.from_toml(path)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        NodeConfig.from_toml(tmp_path / "absent.toml")


def test_node_loads_only_its_own_shard_of_the_seeded_split(tmp_path):
    first = load_local_data(NodeConfig(data=DataSection(dataset="wine", shard=0, shards=3, partition="iid")))
    again = load_local_data(NodeConfig(data=DataSection(dataset="wine", shard=0, shards=3, partition="iid")))
    other = load_local_data(NodeConfig(data=DataSection(dataset="wine", shard=1, shards=3, partition="iid")))
    assert first.n_classes == 3 and first.n_features == 13
    assert (first.node.X_train == again.node.X_train).all()
    assert first.node.X_train.shape != other.node.X_train.shape or not (first.node.X_train == other.node.X_train).all()


def test_node_can_bring_its_own_csv(tmp_path):
    rows = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(40)]
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n")
    config = NodeConfig(data=DataSection(file="mine.csv", label_column="label"), base_dir=tmp_path)
    local = load_local_data(config)
    assert local.n_features == 2 and local.n_classes == 2
    assert local.node.n_train + len(local.node.y_val) == 40
