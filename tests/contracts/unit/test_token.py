"""SwarmToken: ERC-20 with permit; only the swarm mints. By default the deployer renounces
the token's admin role, so nobody can ever grant, revoke or mint: the supply is exactly
what the swarm credited. A deployment that opts out (keep_token_admin) keeps an admin
that hands over in two delayed steps. The optional cap holds for direct mints and for
settlement."""

import pytest
from brownie import ZERO_ADDRESS, accounts, chain
from eth_account import Account
from eth_account.messages import encode_typed_data

from swarmtoken.config import ConfigError, SwarmConfig
from tests.fixtures.deployments import TEST_CONFIG, Protocol
from tests.fixtures.errors import reverts_with
from tests.fixtures.ledger import Participant, assert_settled_as_expected, expected_settlement

TOKEN = 10**18
DEFAULT_ADMIN_ROLE = bytes(32)


def raw(value) -> bytes:
    """A bytes32 as plain bytes, however brownie or web3 returned it."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


@pytest.fixture(scope="module")
def kept(create_swarm):
    """A swarm deployed with the documented opt-out: the deployer keeps the token admin."""
    return create_swarm(keep_token_admin=True)


@pytest.fixture
def kept_token(kept):
    return kept[1]


def test_token_metadata(token):
    assert token.name() == "Swarm Token"
    assert token.symbol() == "SWARM"
    assert token.decimals() == 18
    assert token.totalSupply() == 0
    assert token.cap() == 0
    assert token.mintable() == 2**256 - 1


def test_only_the_swarm_holds_the_minter_role(swarm, token, admin, nodes, outsider):
    minter = token.MINTER_ROLE()
    assert token.hasRole(minter, swarm)
    for account in [admin, outsider, *nodes]:
        assert not token.hasRole(minter, account)
        with reverts_with("AccessControlUnauthorizedAccount", account, ...):
            token.mint(account, 1, {"from": account})
    assert token.totalSupply() == 0


def test_default_deployment_leaves_nobody_holding_the_token_admin(swarm, token, admin, nodes, outsider):
    """``deploy`` with the default config (keep_token_admin = False) hands the admin role to
    the zero address and renounces it: no account, not even the deployer, holds it, and no
    transfer to anyone is pending."""
    assert not TEST_CONFIG.keep_token_admin and not SwarmConfig().keep_token_admin
    assert token.defaultAdmin() == ZERO_ADDRESS
    assert token.owner() == ZERO_ADDRESS  # ERC-5313 view of the same role
    pending, schedule = token.pendingDefaultAdmin()
    assert (pending, int(schedule)) == (ZERO_ADDRESS, 0)
    for account in [admin, swarm, outsider, *nodes]:
        assert not token.hasRole(DEFAULT_ADMIN_ROLE, account)


def test_the_swarm_is_the_only_minter_ever_granted(swarm, token, admin):
    """AccessControl keeps no list of holders, so the token's own events tell who was
    ever granted a role: the deployer the admin role (constructor), then the swarm the
    minter role, then the admin role went to nobody and was renounced."""
    logs = token.events.get_sequence(token.tx.block_number)
    granted = [(raw(e.args["role"]), e.args["account"]) for e in logs["RoleGranted"]]
    revoked = [(raw(e.args["role"]), e.args["account"]) for e in logs["RoleRevoked"]]
    assert granted == [(DEFAULT_ADMIN_ROLE, admin.address), (raw(token.MINTER_ROLE()), swarm.address)]
    assert revoked == [(DEFAULT_ADMIN_ROLE, admin.address)]
    assert [e.args["newAdmin"] for e in logs["DefaultAdminTransferScheduled"]] == [ZERO_ADDRESS]
    assert token.hasRole(token.MINTER_ROLE(), swarm)


def test_former_admin_can_neither_grant_nor_revoke_nor_mint(swarm, token, admin):
    """Once renounced, the deployer is an ordinary account: it cannot make itself a minter,
    cannot stop the swarm minting (which would halt settlement), cannot mint, and cannot
    take the admin role back."""
    minter = token.MINTER_ROLE()
    with reverts_with("AccessControlUnauthorizedAccount", admin, DEFAULT_ADMIN_ROLE):
        token.grantRole(minter, admin, {"from": admin})
    with reverts_with("AccessControlUnauthorizedAccount", admin, DEFAULT_ADMIN_ROLE):
        token.revokeRole(minter, swarm, {"from": admin})
    with reverts_with("AccessControlBadConfirmation"):
        token.renounceRole(minter, swarm, {"from": admin})
    with reverts_with("AccessControlUnauthorizedAccount", admin, raw(minter)):
        token.mint(admin, 1, {"from": admin})
    with reverts_with("AccessControlUnauthorizedAccount", admin, DEFAULT_ADMIN_ROLE):
        token.beginDefaultAdminTransfer(admin, {"from": admin})
    with reverts_with("AccessControlInvalidDefaultAdmin", admin):
        token.acceptDefaultAdminTransfer({"from": admin})
    assert token.hasRole(minter, swarm) and not token.hasRole(minter, admin)
    assert token.defaultAdmin() == ZERO_ADDRESS
    assert token.totalSupply() == 0


def test_supply_is_always_what_the_swarm_credited(swarm, token, admin, nodes, protocol):
    """With nobody able to mint but the swarm, after every settled epoch the supply is the
    sum of every EpochSettled credit, held by the swarm until claimed."""
    members = nodes[:4]
    protocol.enroll(members)
    credited = 0
    # The fourth node over-declares (2000 > 1000) and, in epoch 2, does not report either.
    for scores, reporters in [([30, 20, 10, 5], None), ([1, 2, 3, -4], members[:3]), ([5, 5, 5, 5], None)]:
        tx = protocol.run_epoch(members, scores, samples=[100, 200, 300, 2000], reporters=reporters)
        settled = tx.events["EpochSettled"]
        assert settled["credited"] == sum(e["payout"] for e in tx.events["ParticipantSettled"]) > 0
        credited += settled["credited"]
        assert token.totalSupply() == credited == token.balanceOf(swarm) == sum(swarm.claimable(m) for m in members)
    swarm.claim({"from": members[0]})
    assert token.totalSupply() == credited == token.balanceOf(swarm) + token.balanceOf(members[0])


def test_keeping_the_token_admin_is_an_explicit_opt_out(create_swarm, admin, outsider):
    """keep_token_admin = true (with a handover delay) keeps the deployer as the token's
    default admin, with that delay, able to grant MINTER_ROLE: documented, not the default."""
    swarm, token = create_swarm(keep_token_admin=True, admin_delay=3600)
    assert token.defaultAdmin() == admin
    assert token.hasRole(DEFAULT_ADMIN_ROLE, admin)
    assert token.defaultAdminDelay() == 3600
    pending, schedule = token.pendingDefaultAdmin()
    assert (pending, int(schedule)) == (ZERO_ADDRESS, 0)
    assert token.hasRole(token.MINTER_ROLE(), swarm)
    token.grantRole(token.MINTER_ROLE(), outsider, {"from": admin})
    assert token.hasRole(token.MINTER_ROLE(), outsider)


def test_an_admin_delay_without_keeping_the_admin_is_refused_before_deploying(create_swarm):
    before = chain.height
    with pytest.raises(ConfigError, match="admin_delay only applies with keep_token_admin"):
        create_swarm(admin_delay=3600)
    assert chain.height == before


def test_only_the_default_admin_grants_roles(kept_token, admin, outsider):
    token = kept_token
    minter = token.MINTER_ROLE()
    with reverts_with("AccessControlUnauthorizedAccount", outsider, DEFAULT_ADMIN_ROLE):
        token.grantRole(minter, outsider, {"from": outsider})
    with reverts_with("AccessControlEnforcedDefaultAdminRules"):
        token.grantRole(DEFAULT_ADMIN_ROLE, outsider, {"from": admin})
    tx = token.grantRole(minter, outsider, {"from": admin})
    assert tx.events["RoleGranted"]["account"] == outsider
    token.revokeRole(minter, outsider, {"from": admin})
    assert not token.hasRole(minter, outsider)


def test_default_admin_hands_over_in_two_delayed_steps(create_swarm, admin, nodes, outsider):
    _, token = create_swarm(keep_token_admin=True, admin_delay=3600)
    new_admin = nodes[7]
    minter = token.MINTER_ROLE()
    with reverts_with("AccessControlUnauthorizedAccount", outsider, DEFAULT_ADMIN_ROLE):
        token.beginDefaultAdminTransfer(outsider, {"from": outsider})
    tx = token.beginDefaultAdminTransfer(new_admin, {"from": admin})
    schedule = tx.events["DefaultAdminTransferScheduled"]["acceptSchedule"]
    assert schedule == tx.timestamp + 3600
    assert token.pendingDefaultAdmin() == (new_admin, schedule)

    with reverts_with("AccessControlEnforcedDefaultAdminDelay", schedule):
        token.acceptDefaultAdminTransfer({"from": new_admin})
    chain.sleep(3601)
    with reverts_with("AccessControlInvalidDefaultAdmin", outsider):
        token.acceptDefaultAdminTransfer({"from": outsider})
    token.acceptDefaultAdminTransfer({"from": new_admin})
    assert token.defaultAdmin() == new_admin
    assert not token.hasRole(DEFAULT_ADMIN_ROLE, admin)
    with reverts_with("AccessControlUnauthorizedAccount", admin, DEFAULT_ADMIN_ROLE):
        token.grantRole(minter, admin, {"from": admin})
    token.grantRole(minter, outsider, {"from": new_admin})
    assert token.hasRole(minter, outsider)


def test_direct_mint_past_the_cap_is_refused(create_swarm, admin):
    _, token = create_swarm(token_cap="1500", keep_token_admin=True)
    cap = 1500 * TOKEN
    assert token.cap() == cap == token.mintable()
    token.grantRole(token.MINTER_ROLE(), admin, {"from": admin})
    token.mint(admin, cap - 1, {"from": admin})
    assert token.mintable() == 1
    with reverts_with("SwarmTokenCapExceeded", cap + 1, cap):
        token.mint(admin, 2, {"from": admin})
    token.mint(admin, 1, {"from": admin})
    assert token.totalSupply() == cap
    assert token.mintable() == 0
    with reverts_with("SwarmTokenCapExceeded", cap + 1, cap):
        token.mint(admin, 1, {"from": admin})


def test_settlement_near_the_cap_credits_only_up_to_the_cap(create_swarm, admin, nodes):
    cap = 1500 * TOKEN
    reward = 1000 * TOKEN
    swarm, token = create_swarm(token_cap="1500")
    protocol = Protocol(swarm, admin)
    members = nodes[:3]
    protocol.enroll(members)
    samples = [100, 300, 700]
    # Every node's credit per sample backs all of its samples: every smoothed credit stays
    # positive and at full data weight, so all three are paid in every epoch.
    scores = [50, 30, 20]
    carry = 0
    budgets = []
    for epoch in (1, 2, 3):
        budget = min(reward + carry, cap - token.totalSupply())
        budgets.append(budget)
        before = [swarm.claimable(node) for node in members]
        tx = protocol.run_epoch(members, scores, samples)
        expected = expected_settlement(
            budget, [Participant(samples=s) for s in samples], protocol.reports[epoch], swarm
        )
        assert_settled_as_expected(tx, swarm, members, before, expected, budget)
        carry = expected.carried
        assert all(expected.standing)
        assert token.totalSupply() <= cap
        assert tx.events["EpochOpened"]["budget"] == min(reward + carry, cap - token.totalSupply())
    assert budgets[0] == reward
    assert budgets[1] < reward  # the cap bites in the second epoch
    assert token.totalSupply() == sum(swarm.claimable(node) for node in members) == token.balanceOf(swarm)
    assert token.mintable() == cap - token.totalSupply()


def test_settlement_with_the_cap_reached_credits_nothing_and_does_not_revert(create_swarm, admin, nodes):
    swarm, token = create_swarm(token_cap="1000", beta=0.0)
    protocol = Protocol(swarm, admin)
    members = nodes[:4]
    protocol.enroll(members)
    tx = protocol.run_epoch(members, [7, 7, 7, 7])
    # Equal scores, beta 0: 1000 tokens split evenly, nothing carried, the cap is reached.
    assert tx.events["EpochSettled"]["credited"] == 1000 * TOKEN
    assert token.mintable() == 0
    assert tx.events["EpochOpened"]["budget"] == 0

    tx = protocol.run_epoch(members, [7, 7, 7, 7])
    settled = tx.events["EpochSettled"]
    assert (settled["budget"], settled["credited"], settled["carried"]) == (0, 0, 0)
    assert [e["payout"] for e in tx.events["ParticipantSettled"]] == [0] * 4
    assert token.totalSupply() == 1000 * TOKEN
    for node in members:
        assert swarm.claimable(node) == 250 * TOKEN


def _permit_signature(token, owner, spender, value, nonce, deadline):
    domain = token.eip712Domain()
    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": domain[1],
            "version": domain[2],
            "chainId": domain[3],
            "verifyingContract": token.address,
        },
        "message": {
            "owner": owner.address,
            "spender": spender.address,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=message), owner.private_key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


@pytest.fixture
def token_with_holder(kept_token, admin):
    """A token (whose admin stayed, so it can mint here) and a local key (no ether)
    holding 100 of it."""
    token = kept_token
    owner = accounts.add()
    token.grantRole(token.MINTER_ROLE(), admin, {"from": admin})
    token.mint(owner, 100 * TOKEN, {"from": admin})
    return token, owner


def test_permit_lets_a_holder_without_ether_approve_by_signature(token_with_holder, nodes, outsider):
    token, holder = token_with_holder
    spender = nodes[0]
    deadline = chain.time() + 3600
    assert token.nonces(holder) == 0
    v, r, s = _permit_signature(token, holder, spender, 40 * TOKEN, 0, deadline)
    tx = token.permit(holder, spender, 40 * TOKEN, deadline, v, r, s, {"from": outsider})
    assert tx.events["Approval"]["owner"] == holder
    assert token.allowance(holder, spender) == 40 * TOKEN
    assert token.nonces(holder) == 1
    assert holder.balance() == 0

    token.transferFrom(holder, outsider, 40 * TOKEN, {"from": spender})
    assert token.balanceOf(outsider) == 40 * TOKEN
    assert token.balanceOf(holder) == 60 * TOKEN

    # The same signature cannot be used twice: the nonce moved on.
    with reverts_with("ERC2612InvalidSigner", ...):
        token.permit(holder, spender, 40 * TOKEN, deadline, v, r, s, {"from": outsider})


def test_permit_refuses_expired_or_forged_signatures(token_with_holder, nodes, outsider):
    token, holder = token_with_holder
    spender = nodes[0]
    past = chain.time() - 10
    v, r, s = _permit_signature(token, holder, spender, TOKEN, 0, past)
    with reverts_with("ERC2612ExpiredSignature", past):
        token.permit(holder, spender, TOKEN, past, v, r, s, {"from": outsider})

    deadline = chain.time() + 3600
    v, r, s = _permit_signature(token, holder, spender, TOKEN, 0, deadline)
    with reverts_with("ERC2612InvalidSigner", ..., holder):
        token.permit(holder, spender, 2 * TOKEN, deadline, v, r, s, {"from": outsider})
    assert token.allowance(holder, spender) == 0
    assert token.nonces(holder) == 0
