"""A node joins only a swarm whose agreed merge rule and scorer it can run: the ids are
read from the deployed contract, and an unknown one stops the node with one clear line
before it trains, serves or sends anything."""

import pytest

from swarmtoken.chain.connection import SwarmHandles
from swarmtoken.node.errors import NodeError
from swarmtoken.node.runtime import Node
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


def test_a_running_node_re_enrols_once_the_admin_authorises_it_again(create_swarm, nodes, admin, tmp_path, caplog):
    """A suspended or removed member used to stay out for good while its process kept
    running: now it says so once, and re-enrols by itself after `swarm authorize`."""
    import logging

    swarm, token = create_swarm()
    node_account = nodes[0]
    swarm.authorize(node_account, 0, 100, {"from": admin})
    node = Node(NodeConfig(base_dir=tmp_path), node_account, SwarmHandles(swarm=swarm, token=token, record={"block": 0}))
    try:
        caplog.set_level(logging.INFO, logger="swarm.node")
        node._check_membership()
        assert int(swarm.memberOf(node_account)["status"]) == 1  # enrolled
        swarm.removeNode(node_account, {"from": admin})
        node._check_membership()
        node._check_membership()
        waiting = [r.getMessage() for r in caplog.records if "not an active member" in r.getMessage()]
        assert len(waiting) == 1 and "status removed" in waiting[0] and "swarm authorize" in waiting[0]
        swarm.authorize(node_account, 0, 100, {"from": admin})
        node._check_membership()
        assert int(swarm.memberOf(node_account)["status"]) == 1
        assert any("re-enrolled" in r.getMessage() for r in caplog.records)
    finally:
        node.lock.release()


def test_a_node_says_once_when_too_few_members_are_active_to_elect(create_swarm, nodes, admin, tmp_path, caplog):
    import logging

    swarm, token = create_swarm(min_peers=3)
    node = Node(NodeConfig(base_dir=tmp_path), nodes[0], SwarmHandles(swarm=swarm, token=token, record={"block": 0}))
    try:
        caplog.set_level(logging.INFO, logger="swarm.node")
        for epoch in (1, 1, 2):
            node._check_quorum(epoch)
        stalled = [r.getMessage() for r in caplog.records if "no leader can be elected" in r.getMessage()]
        assert stalled == ["only 0 active member(s), min_peers is 3: no leader can be elected; the admin "
                           "can `swarm authorize` a suspended or new member (a running node re-enrols by itself)"]
        for account in nodes[1:4]:
            swarm.authorize(account, 0, 100, {"from": admin})
            swarm.enroll("http://127.0.0.1:1", {"from": account})
        node._check_quorum(3)
        assert caplog.records[-1].getMessage() == "epoch 3: 3 active members again, min_peers 3: the swarm goes on"
    finally:
        node.lock.release()


def test_node_whose_data_does_not_fit_the_swarms_model_is_refused_before_it_enrols(create_swarm, nodes, admin,
                                                                                     tmp_path):
    """A node with 2-class data used to enrol, get elected, fail to merge anyone's 10-class
    update and stall every epoch; the deployment record now says what the model is."""
    from swarmtoken.node.config import DataSection

    swarm, token = create_swarm()
    swarm.authorize(nodes[0], 0, 100, {"from": admin})
    rows = ["a,b,c,label"] + [f"{i % 7},{i % 5},{i % 3},{i % 2}" for i in range(60)]
    (tmp_path / "two_classes.csv").write_text("\n".join(rows) + "\n")
    config = NodeConfig(data=DataSection(dataset="", file="two_classes.csv"), base_dir=tmp_path)
    record = {"block": 0, "config": {"model": "mlp", "n_features": 64, "n_classes": 10}}
    with pytest.raises(NodeError, match=r"cannot join the swarm: this node's data has 2 classes, the swarm's model "
                                        r"has 10"):
        Node(config, nodes[0], SwarmHandles(swarm=swarm, token=token, record=record))
    assert int(swarm.memberOf(nodes[0])["status"]) == 0  # never enrolled
