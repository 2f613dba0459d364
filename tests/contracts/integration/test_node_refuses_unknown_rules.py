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
