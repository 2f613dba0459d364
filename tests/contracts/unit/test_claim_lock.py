"""Claims wait for CLAIM_AFTER (2) consecutive quorate epochs without a strike, or for the
swarm's finish; a rejected update (left out of the merge, and no strict majority of the
reports found it valid) takes a strike; a suspension forfeits the unclaimed balance to the
carry: the swarm burns those tokens and the next budgets mint them again."""

from brownie import chain

from swarmtoken.audit import audit_swarm
from swarmtoken.chain.ledger import read_ledger
from swarmtoken.cli.views import REJECTED_PHRASE, membership_rows
from swarmtoken.units import wei_to_tokens
from tests.fixtures.deployments import Protocol
from tests.fixtures.errors import reverts_with

SUSPENDED = 2


def test_a_node_claims_after_two_clean_epochs(swarm, token, protocol, nodes):
    members = nodes[:4]
    protocol.enroll(members)
    assert swarm.CLAIM_AFTER() == 2
    protocol.run_epoch(members, [5, 5, 5, 5])
    assert [swarm.memberOf(node)["cleanEpochs"] for node in members] == [1] * 4
    first = swarm.claimable(members[0])
    assert first > 0
    with reverts_with("ClaimLocked", members[0], 1, 2):
        swarm.claim({"from": members[0]})
    assert swarm.claimable(members[0]) == first  # a refused claim loses nothing

    protocol.run_epoch(members, [5, 5, 5, 5])
    total = swarm.claimable(members[0])
    swarm.claim({"from": members[0]})
    assert token.balanceOf(members[0]) == total > first


def test_a_strike_restarts_the_count(swarm, protocol, nodes):
    """Rated below zero in epoch 1 (no vote: struck), then well: the clean epochs count
    from the first epoch without a strike."""
    members = nodes[:3]
    protocol.enroll(members)
    laggard = members[2]
    history = []
    for score in [-10, 30, 30]:
        protocol.run_epoch(members, [10, 20, score])
        member = swarm.memberOf(laggard)
        history.append((member["strikes"], member["cleanEpochs"]))
    assert history == [(1, 0), (0, 1), (0, 2)]
    assert swarm.claimable(laggard) > 0
    swarm.claim({"from": laggard})


def test_claims_open_when_the_swarm_finishes(create_swarm, admin, nodes):
    swarm, token = create_swarm(max_epochs=1)
    protocol = Protocol(swarm, admin)
    members = nodes[:3]
    protocol.enroll(members)
    tx = protocol.run_epoch(members, [5, 5, 5])
    assert "SwarmFinished" in tx.events and swarm.finished()
    assert swarm.memberOf(members[0])["cleanEpochs"] == 1
    amount = swarm.claimable(members[0])
    swarm.claim({"from": members[0]})
    assert token.balanceOf(members[0]) == amount > 0


def _reject(swarm, protocol, members, target, admin, after_commits=None):
    """One epoch in which every member commits (then ``after_commits`` runs) and the leader
    (never ``target``: a drawn ``target`` is failed over) leaves ``target``'s update out, and
    every reporter, ``target`` included, finds only the merged updates valid."""
    epoch = protocol.epoch
    protocol.submit(members)
    if after_commits:
        after_commits()
    protocol.elect()
    while protocol.leader() == target:
        chain.sleep(swarm.config()["mergeWindow"] + 1)
        swarm.failover(epoch, {"from": admin})
    bitmap = ((1 << len(members)) - 1) & ~(1 << members.index(target))
    protocol.publish(bitmap)
    for node in members:
        protocol.report(node, [5] * (len(members) - 1), valid=bitmap)
    return protocol.settle()


def test_a_rejected_update_takes_a_strike(swarm, protocol, nodes, admin):
    members = nodes[:4]
    target = members[1]
    protocol.enroll(members)
    tx = _reject(swarm, protocol, members, target, admin)
    assert [(e["epoch"], e["node"]) for e in tx.events["UpdateRejected"]] == [(1, target)]
    assert "UpdateCensored" not in tx.events
    member = swarm.memberOf(target)
    assert (member["strikes"], member["cleanEpochs"]) == (1, 0)
    assert [swarm.memberOf(node)["cleanEpochs"] for node in members if node != target] == [1] * 3


def test_an_update_left_out_that_a_majority_found_valid_is_censored_not_rejected(swarm, protocol, nodes):
    members = nodes[:4]
    protocol.enroll(members)
    protocol.submit(members)
    protocol.elect()
    leader = protocol.leader()
    target = next(node for node in members if node != leader)
    bitmap = 0b1111 & ~(1 << members.index(target))
    protocol.publish(bitmap)
    for node in members:
        protocol.report(node, [5, 5, 5])  # every committed update found valid
    tx = protocol.settle()
    assert "UpdateRejected" not in tx.events
    assert tx.events["UpdateCensored"]["node"] == target
    assert swarm.memberOf(target)["strikes"] == 0


def test_suspension_forfeits_the_unclaimed_balance_to_the_next_budgets(swarm, token, protocol, nodes, admin):
    """Paid in epoch 1 (one clean epoch: locked), rejected in epochs 2 and 3: suspended at
    the second strike (suspendAfter = 2), its epoch-1 credit goes to the carry, is burned,
    and epoch 4 pays it to the others."""
    members = nodes[:4]
    target = members[3]
    protocol.enroll(members)
    protocol.run_epoch(members, [5, 5, 5, 5])
    owed = swarm.claimable(target)
    assert owed > 0
    _reject(swarm, protocol, members, target, admin)
    assert swarm.claimable(target) == owed and swarm.memberOf(target)["strikes"] == 1
    supply = token.totalSupply()

    tx = _reject(swarm, protocol, members, target, admin)
    settled = tx.events["EpochSettled"]
    assert (tx.events["NodeSuspended"]["account"], swarm.memberOf(target)["status"]) == (target, SUSPENDED)
    forfeited = tx.events["BalanceForfeited"]
    assert (forfeited["account"], forfeited["epoch"], forfeited["amount"]) == (target, 3, owed)
    assert swarm.claimable(target) == 0
    with reverts_with("NothingToClaim", target):
        swarm.claim({"from": target})
    assert settled["carried"] == settled["budget"] - settled["credited"] + owed == swarm.carry()
    assert token.totalSupply() == supply + settled["credited"] - owed
    assert token.balanceOf(swarm) == sum(swarm.claimable(node) for node in members) == token.totalSupply()
    reward = swarm.config()["rewardPerEpoch"]
    assert tx.events["EpochOpened"]["budget"] == reward + swarm.carry()

    tx = protocol.run_epoch(members[:3], [5, 5, 5])
    assert tx.events["EpochSettled"]["budget"] == reward + settled["carried"]

    # swarm ledger --membership names both strikes and what the suspension took
    report = audit_swarm(swarm, token)  # the forfeit, carry, supply and balances from events alone
    assert report.ok, report.discrepancies
    suspension = next(row for row in membership_rows(read_ledger(swarm)) if row["event"] == "suspended")
    assert suspension["reason"] == (f"2 consecutive strikes, the last in epoch 3 (epoch 2: {REJECTED_PHRASE}; "
                                    f"epoch 3: {REJECTED_PHRASE}); forfeited its unclaimed {wei_to_tokens(owed)} tokens")


def test_a_member_that_left_stays_locked_when_its_last_epoch_struck_it(swarm, protocol, nodes, admin):
    """Leaving must not unlock credits early: a member that commits, leaves and has that
    update rejected is struck, and stays locked (until the finish, or its suspension)."""
    members = nodes[:4]
    target = members[1]
    protocol.enroll(members)
    protocol.run_epoch(members, [5, 5, 5, 5])
    owed = swarm.claimable(target)

    def leave():
        swarm.leave({"from": target})
        with reverts_with("ClaimLocked", target, 1, 2):  # its commitment of epoch 2 is pending
            swarm.claim({"from": target})

    _reject(swarm, protocol, members, target, admin, after_commits=leave)
    member = swarm.memberOf(target)
    assert (member["strikes"], member["cleanEpochs"], member["status"]) == (1, 0, 0)
    assert not swarm.claimUnlocked(target)
    with reverts_with("ClaimLocked", target, 0, 2):
        swarm.claim({"from": target})
    assert swarm.claimable(target) == owed


def test_a_departed_member_with_one_clean_epoch_claims_after_it_settles(swarm, token, protocol, nodes):
    members = nodes[:4]
    protocol.enroll(members)
    leaver = members[0]
    protocol.submit(members)
    swarm.leave({"from": leaver})
    protocol.elect()
    protocol.publish()
    for node in members:
        protocol.report(node, [5, 5, 5, 5])
    protocol.settle()
    member = swarm.memberOf(leaver)
    assert (member["cleanEpochs"], member["strikes"], member["status"]) == (1, 0, 0)
    amount = swarm.claimable(leaver)
    swarm.claim({"from": leaver})
    assert token.balanceOf(leaver) == amount > 0


def test_a_forfeit_larger_than_the_epochs_credits_is_burned_and_frees_room_under_the_cap(create_swarm, admin, nodes):
    """Under a cap of 1,500 tokens (1,000 a epoch), epoch 3 has almost nothing to credit, so
    the suspension's forfeit exceeds it: the swarm burns the difference from the tokens it
    holds, and the next budget counts the room that frees."""
    swarm, token = create_swarm(token_cap="1500")
    protocol = Protocol(swarm, admin)
    members = nodes[:4]
    target = members[3]
    protocol.enroll(members)
    protocol.run_epoch(members, [5, 5, 5, 5])
    owed = swarm.claimable(target)
    _reject(swarm, protocol, members, target, admin)
    supply = token.totalSupply()

    tx = _reject(swarm, protocol, members, target, admin)
    settled = tx.events["EpochSettled"]
    assert tx.events["BalanceForfeited"]["amount"] == owed > settled["credited"]
    burned = owed - settled["credited"]
    burn = [e for e in tx.events["Transfer"] if e["to"] == "0x" + "0" * 40]
    assert [(e["from"], e["value"]) for e in burn] == [(swarm.address, burned)]
    assert token.totalSupply() == supply - burned
    assert token.balanceOf(swarm) == sum(swarm.claimable(node) for node in members) == token.totalSupply()
    reward = swarm.config()["rewardPerEpoch"]
    assert tx.events["EpochOpened"]["budget"] == min(reward + swarm.carry(), token.mintable()) > 0
    report = audit_swarm(swarm, token)
    assert report.ok, report.discrepancies


def test_only_the_swarm_burns(token, nodes):
    with reverts_with("AccessControlUnauthorizedAccount", nodes[0], ...):
        token.burn(1, {"from": nodes[0]})
