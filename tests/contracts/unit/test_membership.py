"""Membership: the admin allow-lists (with an optional expiry) and removes; allow-listed
accounts enrol and leave; an expired authorisation can no longer submit."""

from brownie import ZERO_ADDRESS, chain

from tests.fixtures.deployments import param_hash
from tests.fixtures.errors import reverts_with

ACTIVE, NONE, SUSPENDED, REMOVED = 1, 0, 2, 3


def submit(swarm, node, epoch=1, samples=100):
    return swarm.submitUpdate(epoch, param_hash(node, epoch), "http://127.0.0.1/p", samples, {"from": node})


def test_admin_allow_lists_an_account_with_expiry(swarm, admin, nodes):
    expiry = chain.time() + 3600
    tx = swarm.authorize(nodes[0], expiry, {"from": admin})
    assert tx.events["AccountAuthorized"]["account"] == nodes[0]
    assert tx.events["AccountAuthorized"]["expiry"] == expiry
    member = swarm.memberOf(nodes[0])
    assert member["allowListed"]
    assert member["expiry"] == expiry
    assert member["status"] == NONE


def test_only_the_admin_can_allow_list(swarm, outsider):
    with reverts_with("OwnableUnauthorizedAccount", outsider):
        swarm.authorize(outsider, 0, {"from": outsider})
    assert not swarm.memberOf(outsider)["allowListed"]


def test_allow_listing_the_zero_address_is_refused(swarm, admin):
    with reverts_with("ZeroAddress", "account"):
        swarm.authorize(ZERO_ADDRESS, 0, {"from": admin})


def test_allow_listed_account_enrolls_with_its_base_uri(swarm, admin, nodes):
    swarm.authorize(nodes[0], 0, {"from": admin})
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
    swarm.authorize(nodes[0], expiry, {"from": admin})
    chain.sleep(200)
    with reverts_with("AuthorizationExpired", nodes[0], expiry, ...):
        swarm.enroll("http://x", {"from": nodes[0]})


def test_enrolling_twice_is_refused(swarm, protocol, nodes):
    protocol.enroll(nodes[:1])
    with reverts_with("AlreadyEnrolled", nodes[0]):
        swarm.enroll("http://again", {"from": nodes[0]})
    assert swarm.activeCount() == 1


def test_enrolling_without_a_base_uri_is_refused(swarm, admin, nodes):
    swarm.authorize(nodes[0], 0, {"from": admin})
    with reverts_with("InvalidSubmission", "empty baseUri"):
        swarm.enroll("", {"from": nodes[0]})


def test_enrolment_stops_at_max_peers(create_swarm, admin, nodes):
    swarm, _ = create_swarm(min_peers=2, max_peers=2)
    for node in nodes[:3]:
        swarm.authorize(node, 0, {"from": admin})
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
    swarm.authorize(nodes[0], 0, {"from": admin})
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
    swarm.authorize(nodes[0], 0, {"from": admin})
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
    swarm.authorize(nodes[0], 0, {"from": admin})
    member = swarm.memberOf(nodes[0])
    assert member["status"] == NONE
    assert member["allowListed"]
    swarm.enroll("http://back", {"from": nodes[0]})
    submit(swarm, nodes[0])
    assert swarm.memberOf(nodes[0])["lastSubmitEpoch"] == 1


def test_expired_authorisation_cannot_submit(swarm, admin, nodes):
    expiry = chain.time() + 30
    swarm.authorize(nodes[0], expiry, {"from": admin})
    swarm.enroll("http://x", {"from": nodes[0]})
    chain.sleep(60)
    with reverts_with("AuthorizationExpired", nodes[0], expiry, ...):
        submit(swarm, nodes[0])
    assert swarm.epochState(1)["commitCount"] == 0

    # Renewing the authorisation (the admin's decision) lets it submit again.
    swarm.authorize(nodes[0], 0, {"from": admin})
    submit(swarm, nodes[0])
    assert swarm.epochState(1)["commitCount"] == 1


def test_authorisation_is_valid_until_its_expiry(swarm, admin, nodes):
    expiry = chain.time() + 3600
    swarm.authorize(nodes[0], expiry, {"from": admin})
    swarm.enroll("http://x", {"from": nodes[0]})
    tx = submit(swarm, nodes[0])
    assert tx.timestamp < expiry
    assert tx.events["UpdateSubmitted"]["node"] == nodes[0]
