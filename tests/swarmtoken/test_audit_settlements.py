"""The settlement audit, chain-free: a ledger assembled from recorded events (as
`ledger.read_ledger` would read them) is recomputed with the reference rule, the smoothed
credits replayed epoch by epoch from 0, and every emitted field that disagrees is named."""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import replace

import pytest

from swarmtoken.audit import (SETTLEMENT_CONSTANTS, audit_balances, audit_constants, audit_settlements,
                             audit_smoothed_scores)
from swarmtoken.chain.ledger import Ledger, MembershipEvent
from swarmtoken.rewards import Forfeit, Rule, settle_arguments
from tests.fixtures.scores import in_units
from tests.swarmtoken.recorded import REWARD, RULE, A, B, C, D, RecordedSwarm, history


def audit(ledger: Ledger, rule: Rule = RULE):
    return audit_settlements(ledger, reward_per_epoch=REWARD, rule=rule)


def test_ledger_reads_the_new_settlement_fields():
    swarm = RecordedSwarm()
    swarm.enroll(A, B, C)
    result = swarm.settle_epoch(1, {A: 100, B: 200, C: 300}, {A: [5, 6, 7], B: [4, 6, 8], C: [6, 5, 9]})
    outcomes = swarm.ledger().epochs[1].outcomes
    assert [(o.node, o.score, o.smoothed, o.standing, o.payout, o.forfeit) for o in outcomes] == [
        (node, result.scores[j], result.smoothed[j], result.standing[j], result.payouts[j], result.forfeits[j])
        for j, node in enumerate((A, B, C))
    ]
    assert result.smoothed != result.scores  # smoothing from 0 halves: the two fields are not confused


def test_settlement_args_are_the_reports_as_emitted_and_self_scores_move_nobody():
    """The settler sends every report as emitted, a reporter's score for itself included
    (the contract, like the reference, ignores it): rating itself 10^9 moves no credit."""
    def epoch(self_score):
        swarm = RecordedSwarm()
        swarm.enroll(A, B, C, D)
        result = swarm.settle_epoch(1, {A: 100, B: 100, C: 100, D: 100},
                                    {A: [self_score, *in_units([1, 2, 3], 10**8)], B: in_units([5, 2, 3, 4], 10**8),
                                     C: in_units([6, 3, 4, 5], 10**8), D: in_units([7, 4, 5, 6], 10**8)})
        return swarm, result

    swarm, vain = epoch(10**9)
    assert vain.scores == epoch(0)[1].scores
    # A's votes: 5 of B's 12, 6 of C's 14, 7 of D's 16 (each of CREDIT_SCALE), floored, then averaged.
    assert vain.scores[0] == (5 * 10**9 // 12 + 6 * 10**9 // 14 + 7 * 10**9 // 16) // 3 == 427_579_364
    record = swarm.ledger().epochs[1]
    packed, metric = record.settlement_args()
    assert (packed, metric) == settle_arguments([(r.reporter, r.as_report()) for r in record.reports], 4)
    assert packed[0] == [A, B, C, D] and metric == 900_000
    assert len(packed[4]) == 4 * 4 * 8 and packed[4][:8] == (10**9).to_bytes(8, "big")


def test_audit_replays_smoothed_scores_across_leaving_and_abandoned_epochs():
    swarm = history(RecordedSwarm())
    ledger = swarm.ledger()
    report = audit(ledger)
    assert report.ok, report.discrepancies
    assert report.smoothed == swarm.smoothed
    # The replay mattered: D comes back to epoch 4 with epoch 1's evidence, and settling
    # epoch 4 from scratch would have given it another smoothed score.
    assert ledger.epochs[1].outcomes[3].smoothed > 0
    # C fell below the standing line in epoch 2: the history exercises partial weight.
    poor = ledger.epochs[2].outcomes[2]
    assert (poor.node, poor.score, poor.standing, poor.forfeit) == (C, 0, False, Forfeit.NONE) and poor.payout > 0
    fresh = audit(Ledger({4: ledger.epochs[4]}, ledger.claims, ledger.membership))
    assert any("smoothed score" in d for d in fresh.discrepancies)


def test_a_contract_that_resets_smoothed_scores_on_enrolment_is_caught_where_it_matters():
    ledger = history(RecordedSwarm(forget_on_enrol=True)).ledger()
    report = audit(ledger)
    assert not report.ok
    assert report.discrepancies[0].startswith(f"epoch 4: {D} smoothed score ")
    assert not any(d.startswith(("epoch 1:", "epoch 2:")) for d in report.discrepancies)


def test_audit_recomputes_with_the_swarms_rule_not_a_default():
    ledger = history(RecordedSwarm(rule=replace(RULE, smoothing_bps=10_000))).ledger()
    assert audit(ledger, rule=replace(RULE, smoothing_bps=10_000)).ok
    assert not audit(ledger).ok


@pytest.mark.parametrize("field_name, value, message", [
    ("score", 12345, f"epoch 2: {B} score 12345, reference "),
    ("smoothed", 12345, f"epoch 2: {B} smoothed score 12345, reference "),
    ("standing", False, f"epoch 2: {B} in good standing=False, reference says True"),
    ("payout", 1, f"epoch 2: {B} paid 1, reference rule gives "),
    ("forfeit", Forfeit.NOT_REPORTED, f"epoch 2: {B} forfeit NOT_REPORTED, reference says NONE"),
])
def test_audit_names_each_settled_field_that_the_reports_do_not_justify(field_name, value, message):
    ledger = copy.deepcopy(history(RecordedSwarm()).ledger())
    outcome = ledger.epochs[2].outcomes[1]
    assert outcome.node == B and outcome.standing and outcome.payout > 0
    setattr(outcome, field_name, value)
    report = audit(ledger)
    assert report.discrepancies[0].startswith(message), report.discrepancies


def test_a_forfeit_without_a_suspension_and_a_rejection_the_reports_do_not_justify_are_named():
    """A balance forfeited must go with a suspension of its account in that epoch and into
    the carry; an UpdateRejected must name exactly the committers the reference rejects."""
    ledger = copy.deepcopy(history(RecordedSwarm()).ledger())
    record = ledger.epochs[2]
    assert audit(ledger).ok and record.rejected == []
    record.forfeits.append((B, 5))
    record.rejected.append(C)
    carried = record.carried
    report = audit(ledger)
    assert report.discrepancies == [
        f"epoch 2: rejected updates of [{C!r}], reference rejects []",
        f"epoch 2: {B} forfeited 5 without a suspension",
        f"epoch 2: carried {carried}, reference {carried} + forfeited 5",
    ]
    # with the suspension on record, the forfeit must be B's whole unclaimed balance (its
    # credits of epochs 1 and 2: nothing claimed), and the carry must include it
    record.rejected.clear()
    ledger.membership.append(MembershipEvent("suspended", B, (record.settled_at[0], 99), epoch=2, strikes=3))
    balance = sum(o.payout for number in (1, 2) for o in ledger.epochs[number].outcomes if o.node == B)
    record.owed_at_suspension[B] = balance - record.outcomes[1].payout  # epoch 2's payout is settled after
    assert audit(ledger).discrepancies == [
        f"epoch 2: {B}'s suspension forfeited 5, its unclaimed balance was {balance}",
        f"epoch 2: carried {carried}, reference {carried} + forfeited 5",
    ]
    record.forfeits[0] = (B, balance)
    record.carried += balance
    assert audit(ledger).discrepancies[0] == f"epoch 3: budget {ledger.epochs[3].carried}, reward {REWARD} + " \
        f"carry {carried + balance} = {REWARD + carried + balance}"  # the next (abandoned) epoch's budget now
    # a suspension of a member holding a balance without a BalanceForfeited is named too
    record.forfeits.clear()
    assert f"epoch 2: {B}'s suspension forfeited 0, its unclaimed balance was {balance}" in audit(ledger).discrepancies


def test_balances_count_a_forfeit_as_burned_and_no_longer_owed():
    ledger = copy.deepcopy(history(RecordedSwarm()).ledger())
    owed: dict[str, int] = defaultdict(int)
    for record in ledger.epochs.values():
        for outcome in record.outcomes:
            owed[outcome.node] += outcome.payout
    total, lost = sum(owed.values()), owed[C]
    assert lost > 0
    ledger.epochs[4].forfeits.append((C, lost))
    kept = {**owed, C: 0}
    assert audit_balances(ledger, total_supply=total - lost, swarm_balance=total - lost,
                          claimable=kept.__getitem__).ok
    report = audit_balances(ledger, total_supply=total, swarm_balance=total, claimable=owed.__getitem__)
    assert report.discrepancies == [f"token supply {total} != total credited - forfeited {total - lost}",
                                    f"swarm holds {total}, unclaimed credits are {total - lost}",
                                    f"{C}: claimable {lost}, credits - claims - forfeits = 0"]


def test_on_chain_smoothed_scores_must_equal_the_replay():
    swarm = history(RecordedSwarm())
    ledger = swarm.ledger()
    newcomer = "0x" + "e" * 40
    ledger.membership.append(MembershipEvent("enrolled", newcomer, (swarm.block, 0)))  # never settled: 0 on chain
    replayed = audit(ledger).smoothed
    on_chain = {**swarm.smoothed, newcomer: 0}
    assert audit_smoothed_scores(ledger, replayed, on_chain.__getitem__).ok
    for account in (C, newcomer):
        skewed = {**on_chain, account: on_chain[account] + 1}
        report = audit_smoothed_scores(ledger, replayed, skewed.__getitem__)
        assert report.discrepancies == [f"{account}: smoothed score {skewed[account]} on chain, the replay of every "
                                        f"settled epoch gives {on_chain[account]}"]


def test_a_contract_settling_by_other_constants_is_named_before_any_epoch():
    """The reference hard-codes the contract's settlement constants; a swarm deployed by a
    version without the vote floor, or with another cap, settles by another rule, and the
    audit says so instead of blaming every epoch."""
    ours = dict(SETTLEMENT_CONSTANTS)
    assert audit_constants(ours.get).ok and audit_constants(ours.get).checks == len(ours) == 6
    older = audit_constants({**ours, "VOTE_FLOOR": None}.get)
    assert older.discrepancies == [f"the contract has no VOTE_FLOOR (this version's reference rule uses "
                                   f"{ours['VOTE_FLOOR']}): an older version of swarm deployed it; audit it with "
                                   "that version"]
    other = audit_constants({**ours, "VOTE_CAP_BPS": 20_000}.get)
    assert other.discrepancies == ["the contract's VOTE_CAP_BPS is 20000, this version's reference rule uses 15000: another "
                                   "version of swarm deployed it; audit it with that version"]
