"""A node joins only a swarm whose agreed merge rule and scorer it can run: the ids are
read from the deployed contract, and an unknown one stops the node with one clear line
before it trains, serves or sends anything."""

import pytest

from swarmtoken.chain.connection import SwarmHandles
from swarmtoken.node.runtime import Node, NodeError
from swarmtoken.node.config import NodeConfig, NodeSection


@pytest.mark.parametrize("field, text", [("merge_rule", "the swarm's merge rule: unknown 'krum-v9'"),
                                         ("scorer", "the swarm's scorer: unknown 'krum-v9'")])
def test_node_refuses_a_swarm_whose_rule_it_does_not_know(create_swarm, nodes, tmp_path, field, text):
    swarm, token = create_swarm(**{field: "krum-v9"})
    handles = SwarmHandles(swarm=swarm, token=token, record={"block": 0})
    with pytest.raises(NodeError, match="known: ") as refused:
        Node(NodeConfig(base_dir=tmp_path), nodes[0], handles)
    assert text in str(refused.value) and "cannot take part" in str(refused.value)
    assert not any(tmp_path.iterdir())  # nothing written: no store, no checkpoint


def test_node_refuses_an_unknown_attack(create_swarm, nodes, tmp_path):
    swarm, token = create_swarm()
    handles = SwarmHandles(swarm=swarm, token=token, record={"block": 0})
    config = NodeConfig(node=NodeSection(attack="teleport"), base_dir=tmp_path)
    with pytest.raises(NodeError, match=r"\[node\] attack: unknown 'teleport'; known: .*sign_flip"):
        Node(config, nodes[0], handles)


def test_node_refuses_a_keystore_another_process_uses(create_swarm, nodes, tmp_path):
    from swarmtoken.node.lock import KeystoreLock

    swarm, token = create_swarm()
    config = NodeConfig(base_dir=tmp_path)
    held = KeystoreLock(config.path(config.chain.keystore)).acquire()
    try:
        with pytest.raises(NodeError, match=r"already in use by another node process .*one process per key"):
            Node(config, nodes[0], SwarmHandles(swarm=swarm, token=token, record={"block": 0}))
    finally:
        held.release()
    assert not (tmp_path / config.store.dir).exists()  # refused before its store was touched


def test_node_refuses_a_store_folder_it_cannot_write(create_swarm, nodes, tmp_path):
    from swarmtoken.node.config import StoreSection

    swarm, token = create_swarm()
    (tmp_path / "blocked").write_text("a file where the store folder should be")
    config = NodeConfig(store=StoreSection(dir="blocked/store"), base_dir=tmp_path)
    with pytest.raises(NodeError, match=r"store folder .*blocked/store is not writable .*set \[store\] dir"):
        Node(config, nodes[0], SwarmHandles(swarm=swarm, token=token, record={"block": 0}))


def test_node_removes_unfinished_writes_from_its_store_at_start(create_swarm, nodes, tmp_path):
    swarm, token = create_swarm()
    config = NodeConfig(base_dir=tmp_path)
    store = tmp_path / config.store.dir
    store.mkdir(parents=True)
    (store / ".partial-killed").write_bytes(b"half")
    node = Node(config, nodes[0], SwarmHandles(swarm=swarm, token=token, record={"block": 0}))
    node.lock.release()
    assert not list(store.glob(".partial-*"))
