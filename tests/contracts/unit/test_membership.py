"""Membership: the admin allow-lists (with an optional expiry and an attested sample
allowance) and removes; allow-listed accounts enrol and leave; an expired authorisation can
no longer enrol or commit, finishes the epoch it committed to, and then gives up its seat
(at that epoch's settlement, or earlier through anyone's `releaseExpired`)."""

from brownie import ZERO_ADDRESS, chain

from tests.fixtures.deployments import ALLOWANCE, commitment
from tests.fixtures.errors import reverts_with

ACTIVE, NONE, SUSPENDED, REMOVED = 1, 0, 2, 3


def submit(swarm, node, epoch=1, samples=100):
    return swarm.submitUpdate(epoch, commitment(node, epoch), samples, {"from": node})


def test_admin_allow_lists_an_account_with_expiry_and_allowance(swarm, admin, nodes):
    expiry = chain.time() + 3600
    tx = swarm.authorize(nodes[0], expiry, 1234, {"from": admin})
    event = tx.events["AccountAuthorized"]
    assert (event["account"], event["expiry"], event["allowance"]) == (nodes[0], expiry, 1234)
    member = swarm.memberOf(nodes[0])
    assert member["allowListed"]
    assert member["expiry"] == expiry
    assert member["allowance"] == 1234
    assert member["status"] == NONE


def test_only_the_admin_can_allow_list(swarm, outsider):
    with reverts_with("OwnableUnauthorizedAccount", outsider):
        swarm.authorize(outsider, 0, ALLOWANCE, {"from": outsider})
    assert not swarm.memberOf(outsider)["allowListed"]


def test_allow_listing_the_zero_address_is_refused(swarm, admin):
    with reverts_with("ZeroAddress", "account"):
        swarm.authorize(ZERO_ADDRESS, 0, ALLOWANCE, {"from": admin})


def test_allow_listed_account_enrolls_with_its_base_uri(swarm, admin, nodes):
    swarm.authorize(nodes[0], 0, ALLOWANCE, {"from": admin})
    tx = swarm.enroll("https://node0.example/params/", {"from": nodes[0]})
    assert tx.events["NodeEnrolled"]["account"] == nodes[0]
    assert tx.events["NodeEnrolled"]["baseUri"] == "https://node0.example/params/"
    assert swarm.baseUriOf(nodes[0]) == "https://node0.example/params/"
    assert swarm.memberOf(nodes[0])["status"] == ACTIVE
    assert swarm.activeCount() == 1


def test_account_not_on_the_allow_list_cannot_enroll(swarm, outsider):
    with reverts_with("NotAllowListed", outsider):
        swarm.enroll("http://x", {"from": outsider})


def test_expired_authorisation_cannot_enroll(swarm, admin, nodes):
    expiry = chain.time() + 100
    swarm.authorize(nodes[0], expiry, ALLOWANCE, {"from": admin})
    chain.sleep(200)
    with reverts_with("AuthorizationExpired", nodes[0], expiry, ...):
        swarm.enroll("http://x", {"from": nodes[0]})


def test_enrolling_twice_is_refused(swarm, protocol, nodes):
    protocol.enroll(nodes[:1])
    with reverts_with("AlreadyEnrolled", nodes[0]):
        swarm.enroll("http://again", {"from": nodes[0]})
    assert swarm.activeCount() == 1


def test_enrolling_without_a_base_uri_is_refused(swarm, admin, nodes):
    swarm.authorize(nodes[0], 0, ALLOWANCE, {"from": admin})
    with reverts_with("InvalidSubmission", "empty baseUri"):
        swarm.enroll("", {"from": nodes[0]})


def test_enrolment_stops_at_max_peers(create_swarm, admin, nodes):
    swarm, _ = create_swarm(min_peers=2, max_peers=2)
    for node in nodes[:3]:
        swarm.authorize(node, 0, ALLOWANCE, {"from": admin})
    swarm.enroll("http://a", {"from": nodes[0]})
    swarm.enroll("http://b", {"from": nodes[1]})
    with reverts_with("MaxPeersReached", 2):
        swarm.enroll("http://c", {"from": nodes[2]})
    # A member leaving frees the seat.
    swarm.leave({"from": nodes[0]})
    swarm.enroll("http://c", {"from": nodes[2]})
    assert swarm.activeCount() == 2


def test_member_leaves_and_may_enroll_again(swarm, protocol, nodes):
    protocol.enroll(nodes[:2])
    tx = swarm.leave({"from": nodes[0]})
    assert tx.events["NodeLeft"]["account"] == nodes[0]
    assert swarm.memberOf(nodes[0])["status"] == NONE
    assert swarm.activeCount() == 1
    with reverts_with("NotActive", nodes[0], NONE):
        submit(swarm, nodes[0])
    swarm.enroll("http://back", {"from": nodes[0]})
    assert swarm.activeCount() == 2
    submit(swarm, nodes[0])


def test_only_an_active_member_can_leave(swarm, admin, nodes, outsider):
    with reverts_with("NotActive", outsider, NONE):
        swarm.leave({"from": outsider})
    swarm.authorize(nodes[0], 0, ALLOWANCE, {"from": admin})
    with reverts_with("NotActive", nodes[0], NONE):
        swarm.leave({"from": nodes[0]})


def test_admin_removes_a_node_which_can_no_longer_take_part(swarm, protocol, admin, nodes):
    protocol.enroll(nodes[:3])
    tx = swarm.removeNode(nodes[0], {"from": admin})
    assert tx.events["NodeRemoved"]["account"] == nodes[0]
    member = swarm.memberOf(nodes[0])
    assert member["status"] == REMOVED
    assert not member["allowListed"]
    assert swarm.activeCount() == 2

    with reverts_with("NotActive", nodes[0], REMOVED):
        submit(swarm, nodes[0])
    with reverts_with("NotAllowListed", nodes[0]):
        swarm.enroll("http://again", {"from": nodes[0]})
    with reverts_with("NotActive", nodes[0], REMOVED):
        swarm.leave({"from": nodes[0]})
    with reverts_with("NotActive", nodes[0], REMOVED):
        swarm.removeNode(nodes[0], {"from": admin})


def test_removing_an_allow_listed_but_not_enrolled_account(swarm, admin, nodes):
    swarm.authorize(nodes[0], 0, ALLOWANCE, {"from": admin})
    swarm.removeNode(nodes[0], {"from": admin})
    assert swarm.memberOf(nodes[0])["status"] == REMOVED
    assert swarm.activeCount() == 0
    with reverts_with("NotAllowListed", nodes[0]):
        swarm.enroll("http://x", {"from": nodes[0]})


def test_removing_an_unknown_account_is_refused(swarm, admin, outsider):
    with reverts_with("UnknownNode", outsider):
        swarm.removeNode(outsider, {"from": admin})


def test_only_the_admin_can_remove(swarm, protocol, nodes, outsider):
    protocol.enroll(nodes[:1])
    with reverts_with("OwnableUnauthorizedAccount", outsider):
        swarm.removeNode(nodes[0], {"from": outsider})
    with reverts_with("OwnableUnauthorizedAccount", nodes[0]):
        swarm.removeNode(nodes[0], {"from": nodes[0]})
    assert swarm.memberOf(nodes[0])["status"] == ACTIVE


def test_authorising_a_removed_node_again_lets_it_rejoin(swarm, protocol, admin, nodes):
    protocol.enroll(nodes[:1])
    swarm.removeNode(nodes[0], {"from": admin})
    swarm.authorize(nodes[0], 0, ALLOWANCE, {"from": admin})
    member = swarm.memberOf(nodes[0])
    assert member["status"] == NONE
    assert member["allowListed"]
    swarm.enroll("http://back", {"from": nodes[0]})
    submit(swarm, nodes[0])
    assert swarm.memberOf(nodes[0])["lastSubmitEpoch"] == 1


def test_expired_authorisation_cannot_submit(swarm, admin, nodes):
    expiry = chain.time() + 30
    swarm.authorize(nodes[0], expiry, ALLOWANCE, {"from": admin})
    swarm.enroll("http://x", {"from": nodes[0]})
    chain.sleep(60)
    with reverts_with("AuthorizationExpired", nodes[0], expiry, ...):
        submit(swarm, nodes[0])
    assert swarm.epochState(1)["commitCount"] == 0

    # Renewing the authorisation (the admin's decision) lets it submit again.
    swarm.authorize(nodes[0], 0, ALLOWANCE, {"from": admin})
    submit(swarm, nodes[0])
    assert swarm.epochState(1)["commitCount"] == 1


def test_authorisation_is_valid_until_its_expiry(swarm, admin, nodes):
    expiry = chain.time() + 3600
    swarm.authorize(nodes[0], expiry, ALLOWANCE, {"from": admin})
    swarm.enroll("http://x", {"from": nodes[0]})
    tx = submit(swarm, nodes[0])
    assert tx.timestamp < expiry
    assert tx.events["UpdateSubmitted"]["node"] == nodes[0]


# ------------------------------------------------------------------ expiry
def test_expired_member_finishes_the_epoch_it_committed_to(swarm, token, protocol, admin, nodes, outsider):
    """Its authorisation ends after it committed: it cannot commit again, but it reports,
    is paid for the epoch, and settlement releases its seat (NodeExpired)."""
    members = nodes[:4]
    expiring = members[0]
    protocol.enroll(members[1:])
    expiry = chain.time() + 30
    protocol.enroll([expiring], expiry=expiry)
    protocol.submit(members)
    protocol.elect()  # the commit window (61 s) outlasts the authorisation
    assert chain.time() > expiry
    protocol.publish()
    tx = protocol.report(expiring, [10, 10, 10, 10])
    assert tx.events["ValidationReported"]["reporter"] == expiring
    for node in members[1:]:
        protocol.report(node, [10, 10, 10, 10])
    assert swarm.activeCount() == 4
    tx = protocol.settle()

    paid = tx.events["ParticipantSettled"][0]
    assert (paid["node"], paid["forfeit"]) == (expiring, 0)
    assert paid["payout"] == swarm.claimable(expiring) > 0
    assert tx.events["NodeExpired"]["account"] == expiring
    assert len(tx.events["NodeExpired"]) == 1
    assert swarm.memberOf(expiring)["status"] == NONE
    assert swarm.activeCount() == 3

    with reverts_with("NotActive", expiring, NONE):
        submit(swarm, expiring, epoch=2)
    with reverts_with("AuthorizationExpired", expiring, expiry, ...):
        swarm.enroll("http://again", {"from": expiring})
    with reverts_with("NotActive", expiring, NONE):
        swarm.releaseExpired(expiring, {"from": outsider})
    # Its credits stay, and it claims them: its seat is gone and its last epoch settled
    # without a strike (one clean epoch would lock an active member's).
    assert swarm.claimUnlocked(expiring) and swarm.memberOf(expiring)["cleanEpochs"] == 1
    swarm.claim({"from": expiring})
    assert token.balanceOf(expiring) == paid["payout"]


def test_seat_released_early_does_not_cost_the_expired_member_its_epoch(swarm, protocol, nodes, outsider):
    """Anyone may free the seat as soon as the authorisation ends, mid-epoch; the member
    still reports and is paid for the epoch it committed to, and is not released twice."""
    members = nodes[:4]
    expiring = members[0]
    protocol.enroll([expiring], expiry=chain.time() + 30)
    protocol.enroll(members[1:])
    protocol.submit(members)
    protocol.elect()
    tx = swarm.releaseExpired(expiring, {"from": outsider})
    assert tx.events["NodeExpired"]["account"] == expiring
    assert swarm.activeCount() == 3
    protocol.publish()
    for node in members:
        protocol.report(node, [10, 10, 10, 10])
    tx = protocol.settle()
    assert "NodeExpired" not in tx.events
    assert tx.events["ParticipantSettled"][0]["forfeit"] == 0
    assert swarm.claimable(expiring) > 0
    assert swarm.activeCount() == 3


def test_anyone_releases_the_seat_of_an_expired_member(swarm, protocol, nodes, outsider):
    expiry = chain.time() + 30
    protocol.enroll(nodes[:2], expiry=expiry)
    chain.sleep(60)
    tx = swarm.releaseExpired(nodes[0], {"from": outsider})
    assert tx.events["NodeExpired"]["account"] == nodes[0]
    assert swarm.memberOf(nodes[0])["status"] == NONE
    assert swarm.memberOf(nodes[1])["status"] == ACTIVE
    assert swarm.activeCount() == 1
    with reverts_with("NotActive", nodes[0], NONE):
        swarm.releaseExpired(nodes[0], {"from": outsider})


def test_seat_of_a_member_not_yet_expired_is_not_released(swarm, protocol, nodes, outsider):
    expiry = chain.time() + 3600
    protocol.enroll(nodes[:1], expiry=expiry)
    protocol.enroll(nodes[1:2])
    with reverts_with("AuthorizationNotExpired", nodes[0], expiry):
        swarm.releaseExpired(nodes[0], {"from": outsider})
    with reverts_with("AuthorizationNotExpired", nodes[1], 0):  # 0 = never expires
        swarm.releaseExpired(nodes[1], {"from": outsider})
    with reverts_with("NotActive", outsider, NONE):
        swarm.releaseExpired(outsider, {"from": outsider})
    assert swarm.activeCount() == 2


def elect_leader_other_than(swarm, protocol, avoid):
    """Draw the leader; while the draw picks ``avoid``, replay the election from the same
    chain state one block later (a new closing block hash, hence a new draw)."""
    for _ in range(32):
        protocol.elect()
        if swarm.leaderOf(protocol.epoch) != avoid.address:
            return
        chain.undo(2)
        chain.mine()
    raise AssertionError("the draw kept picking the same node")


def test_expired_committer_left_out_of_the_merge_is_released_at_settlement(swarm, protocol, nodes):
    """The expiry rule releases an expired committer's seat at the settlement of the epoch
    it committed to, whether or not the leader merged its update."""
    members = nodes[:4]
    expiring = members[3]
    protocol.enroll(members[:3])
    expiry = chain.time() + 30
    protocol.enroll([expiring], expiry=expiry)
    protocol.submit(members)
    elect_leader_other_than(swarm, protocol, expiring)
    assert chain.time() > expiry
    bitmap = 0b0111  # the expiring node's update (index 3) found invalid and left out
    protocol.publish(bitmap)
    for node in members:
        protocol.report(node, [10, 10, 10], valid=bitmap)
    tx = protocol.settle()
    assert "UpdateCensored" not in tx.events
    assert swarm.memberOf(expiring)["status"] == NONE
    assert swarm.activeCount() == 3
    assert tx.events["NodeExpired"]["account"] == expiring
