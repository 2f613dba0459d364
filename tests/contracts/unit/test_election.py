"""Leader election in two steps. `electLeader` closes the commits and records its own block
as the draw block; `drawLeader`, in a later block, draws the leader from that block's hash:
seed = keccak256(abi.encode(blockhash(drawBlock), epoch, swarm)). No member can know the
seed while it can still commit, and the draw does not read prevrandao (constant on PoA and
QBFT chains). Until the draw there is no leader: nobody can publish or be failed over."""

import pytest
from brownie import ZERO_ADDRESS, chain, web3
from eth_abi import encode

from tests.fixtures.deployments import MERGED, commitment
from tests.fixtures.errors import reverts_with

COMMIT, MERGE = 0, 1


@pytest.fixture
def committed(nodes, protocol):
    """Four members committed to epoch 1."""
    protocol.enroll(nodes[:4])
    protocol.submit(nodes[:4])
    return nodes[:4]


@pytest.fixture
def closed(swarm, committed, protocol, admin):
    """Epoch 1's commits closed (the `electLeader` transaction); the leader is not drawn."""
    protocol.close_commit()
    return swarm.electLeader(1, {"from": admin})


def expected_seed(swarm, epoch: int, draw_block: int) -> int:
    """The seed recomputed off chain from the draw block's hash alone."""
    block_hash = bytes(web3.eth.get_block(draw_block).hash)
    encoded = encode(["bytes32", "uint256", "address"], [block_hash, epoch, swarm.address])
    return int.from_bytes(web3.keccak(encoded), "big")


def commitments(nodes, epoch=1):
    return [(node, commitment(node, epoch)) for node in nodes]


def selector(signature: str) -> bytes:
    return bytes(web3.keccak(text=signature))[:4]


def test_closing_the_commits_records_the_draw_block_and_draws_nobody(swarm, committed, protocol, outsider):
    """Anyone closes the commits; the leader stays undrawn until a later block."""
    protocol.close_commit()
    tx = swarm.electLeader(1, {"from": outsider})
    event = tx.events["CommitsClosed"]
    assert (event["epoch"], event["drawBlock"]) == (1, tx.block_number)
    assert "LeaderElected" not in tx.events
    state = swarm.epochState(1)
    assert state["phase"] == MERGE
    assert state["drawBlock"] == tx.block_number
    assert not state["drawn"]
    assert swarm.leaderOf(1) == ZERO_ADDRESS


def test_anyone_draws_the_leader_from_the_closing_block_hash(swarm, closed, committed, outsider):
    draw_block = closed.events["CommitsClosed"]["drawBlock"]
    tx = swarm.drawLeader(1, {"from": outsider})
    event = tx.events["LeaderElected"]
    seed = expected_seed(swarm, 1, draw_block)
    state = swarm.epochState(1)
    assert tx.block_number > draw_block
    assert event["epoch"] == 1
    assert event["seed"] == seed
    assert state["leaderIndex"] == seed % 4
    assert event["leader"] == committed[seed % 4] == swarm.leaderOf(1)
    assert state["drawn"]
    assert state["phase"] == MERGE
    # The merge window starts at the draw, not at the close.
    assert event["deadline"] == tx.timestamp + 60 == state["deadline"]


def test_the_leader_is_drawn_once_and_a_second_draw_changes_nothing(swarm, closed, outsider, admin):
    """Whoever closed the commits draws at once and the others stand by; a late draw from
    one of them is refused and leaves the drawn leader and its deadline as they were."""
    swarm.drawLeader(1, {"from": outsider})
    state = swarm.epochState(1)
    with reverts_with("LeaderAlreadyDrawn", 1):
        swarm.drawLeader(1, {"from": admin})
    assert swarm.epochState(1) == state


def test_leader_cannot_be_drawn_in_the_block_that_closes_the_commits(swarm, committed, protocol, admin):
    """With automine off, `electLeader` and `drawLeader` land in one block: the draw reverts
    with LeaderNotDrawn (the block's hash is unknown inside it), and a later draw succeeds."""
    protocol.close_commit()
    nonce = web3.eth.get_transaction_count(admin.address)

    def send(data, offset):
        tx = {"from": admin.address, "to": swarm.address, "data": data, "gas": 1_000_000, "nonce": nonce + offset}
        return web3.eth.send_transaction(tx)

    web3.provider.make_request("evm_setAutomine", [False])
    try:
        close_hash = send(swarm.electLeader.encode_input(1), 0)
        draw_hash = send(swarm.drawLeader.encode_input(1), 1)
        web3.provider.make_request("evm_mine", [])
    finally:
        web3.provider.make_request("evm_setAutomine", [True])
    close = web3.eth.get_transaction_receipt(close_hash)
    draw = web3.eth.get_transaction_receipt(draw_hash)
    assert close.blockNumber == draw.blockNumber
    assert (close.status, draw.status) == (1, 0)
    trace = web3.provider.make_request("debug_traceTransaction", [draw_hash.hex(), {"tracer": "callTracer"}])
    revert = selector("LeaderNotDrawn(uint256,uint64)") + encode(["uint256", "uint64"], [1, close.blockNumber])
    assert trace["result"]["output"] == "0x" + revert.hex()
    assert not swarm.epochState(1)["drawn"]
    assert swarm.leaderOf(1) == ZERO_ADDRESS

    tx = swarm.drawLeader(1, {"from": admin})
    assert tx.events["LeaderElected"]["seed"] == expected_seed(swarm, 1, close.blockNumber)


def test_nobody_publishes_or_fails_over_before_the_draw(swarm, closed, committed):
    """Before the draw there is no leader: every committer's publish is refused, and
    fail-over is refused even once the merge window of the close has passed."""
    draw_block = closed.events["CommitsClosed"]["drawBlock"]
    for node in committed:
        with reverts_with("LeaderNotDrawn", 1, draw_block):
            swarm.publishMerge(1, bytes.fromhex(MERGED), 0b1111, {"from": node})
    chain.sleep(swarm.config()["mergeWindow"] + 1)
    with reverts_with("LeaderNotDrawn", 1, draw_block):
        swarm.failover(1, {"from": committed[0]})
    assert swarm.epochState(1)["failovers"] == 0


def test_leader_is_drawn_once(swarm, closed, committed, admin):
    swarm.drawLeader(1, {"from": admin})
    leader = swarm.leaderOf(1)
    with reverts_with("LeaderAlreadyDrawn", 1):
        swarm.drawLeader(1, {"from": committed[0]})
    assert swarm.leaderOf(1) == leader


def test_draw_before_the_commits_close_is_refused(swarm, committed, protocol):
    protocol.close_commit()
    with reverts_with("WrongPhase", 1, COMMIT, MERGE):
        swarm.drawLeader(1, {"from": committed[0]})


def test_seed_is_unknown_while_members_can_commit(swarm, nodes, protocol, admin):
    """The draw block is the block of `electLeader`, after every commit's block (a late
    commit included), so no committer could have read its hash."""
    protocol.enroll(nodes[:4])
    commits = [swarm.submitUpdate(1, c, 100, {"from": n}) for n, c in commitments(nodes[:3])]
    protocol.close_commit()
    commits += [swarm.submitUpdate(1, c, 100, {"from": n}) for n, c in commitments(nodes[3:4])]  # late
    closed = swarm.electLeader(1, {"from": admin})
    draw_block = closed.events["CommitsClosed"]["drawBlock"]
    assert draw_block == closed.block_number > max(tx.block_number for tx in commits)
    drawn = swarm.drawLeader(1, {"from": admin})
    assert drawn.events["LeaderElected"]["seed"] == expected_seed(swarm, 1, draw_block)


def test_draw_depends_on_the_closing_block_hash_not_on_prevrandao(swarm, committed, protocol, admin):
    """anvil 1.7.1 has no RPC to fix prevrandao (anvil_setPrevRandao and evm_setPrevRandao
    answer "Method not found"), so this replays the same epoch from one chain state, closed
    at two different blocks: each draw's seed is recomputed from the closing block's hash,
    epoch and swarm alone, and the two differ."""
    draws = []
    for extra_blocks in (0, 3):
        chain.mine(extra_blocks)
        protocol.close_commit()  # again in the replay: reverting the chain rewinds its clock
        closed = swarm.electLeader(1, {"from": admin})
        drawn = swarm.drawLeader(1, {"from": admin})
        draw_block = closed.events["CommitsClosed"]["drawBlock"]
        seed = drawn.events["LeaderElected"]["seed"]
        assert seed == expected_seed(swarm, 1, draw_block)
        assert drawn.events["LeaderElected"]["leader"] == committed[seed % 4]
        draws.append((draw_block, bytes(web3.eth.get_block(draw_block).hash), seed))
        chain.undo(2)  # back to the same state, commits still open
        assert swarm.epochState(1)["phase"] == COMMIT
    (block_a, hash_a, seed_a), (block_b, hash_b, seed_b) = draws
    assert block_b == block_a + 3
    assert hash_a != hash_b
    assert seed_a != seed_b


@pytest.mark.parametrize("blocks_later, moved", [(255, False), (256, True)])
def test_draw_moves_to_a_later_block_once_the_closing_hash_is_gone(swarm, closed, committed, admin, blocks_later, moved):
    """blockhash only reaches 256 blocks back: a draw that can no longer read the closing
    block's hash re-closes at its own block (CommitsClosed again) instead of drawing from a
    zero hash; the next draw uses the new block."""
    draw_block = closed.events["CommitsClosed"]["drawBlock"]
    chain.mine(blocks_later)
    tx = swarm.drawLeader(1, {"from": admin})
    assert tx.block_number == draw_block + blocks_later + 1
    if not moved:
        assert tx.events["LeaderElected"]["seed"] == expected_seed(swarm, 1, draw_block)
        return
    assert "LeaderElected" not in tx.events
    assert tx.events["CommitsClosed"]["drawBlock"] == tx.block_number
    state = swarm.epochState(1)
    assert (state["drawBlock"], state["drawn"]) == (tx.block_number, False)
    assert swarm.leaderOf(1) == ZERO_ADDRESS
    redrawn = swarm.drawLeader(1, {"from": admin})
    assert redrawn.events["LeaderElected"]["seed"] == expected_seed(swarm, 1, tx.block_number)
