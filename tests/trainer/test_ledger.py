"""The simulator's money: the chain's state across epochs, settled by the reference rule."""

from __future__ import annotations

import numpy as np
import pytest

from swarmtoken.rewards import CREDIT_SCALE, Participant, Report, Rule, settle
from trainer.attacks import UnknownAttackError
from trainer.ledger import Economy, EconomyError, Ledger, SettlementInput, address, kept_payouts, replay

SAMPLES = [100, 50, 50, 200]
GOOD = np.array([[0.2, 0.1, 0.1, 0.4]] * 4)


def test_an_epoch_is_the_reference_rules_settlement_of_the_integer_reports() -> None:
    ledger = Ledger(SAMPLES, Economy())
    money = ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 2, [0, 1, 2, 3], GOOD)
    expected = settle(Economy().budget, [Participant(samples=s, node=address(i), leader=i == 2)
                                         for i, s in enumerate(SAMPLES)],
                      [Report(metric=0, scores=(200_000_000, 100_000_000, 100_000_000, 400_000_000), valid=0b1111,
                              reporter=address(r)) for r in range(4)], rule=Rule())
    assert money.settlement == expected and money.payouts == expected.payouts
    assert ledger.smoothed == list(expected.smoothed) and ledger.carry == expected.carried
    # the next epoch's budget adds what was not credited
    carried = ledger.carry
    assert ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD).budget == Economy().budget + carried


def test_carry_and_budget_add_up() -> None:
    ledger = Ledger(SAMPLES, Economy(budget=10**18))
    paid = 0
    for _ in range(3):
        money = ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD)
        paid += sum(money.payouts)
    assert paid + ledger.carry == 3 * 10**18


def test_scores_are_clipped_to_the_contract_bounds() -> None:
    money = Ledger(SAMPLES, Economy()).settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD * 1000)
    assert all(abs(v) <= 10**9 for report in money.reports for v in report)


def test_a_rejected_update_is_committed_but_neither_merged_nor_paid_and_takes_a_strike() -> None:
    ledger = Ledger(SAMPLES, Economy())
    money = ledger.settle([0, 1, 2, 3], [0, 2, 3], 0, [0, 1, 2, 3], GOOD[:, [0, 2, 3]])
    assert money.payouts[1] == 0 and money.participants == (0, 2, 3)
    assert all(f.name == "NONE" for f in money.settlement.forfeits)
    assert money.settlement.verdict.censored == () and money.settlement.rejected == (1,)
    assert money.strikes == (0, 1, 0, 0) and money.clean == (1, 0, 1, 1)


def test_pay_is_claimed_after_two_clean_epochs() -> None:
    ledger = Ledger(SAMPLES, Economy())
    first = ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD)
    assert first.claimed == (0, 0, 0, 0) and ledger.claimable == list(first.payouts) and all(first.payouts)
    second = ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD)
    assert second.claimed == tuple(a + b for a, b in zip(first.payouts, second.payouts, strict=True))
    assert ledger.claimable == [0] * 4 and kept_payouts([first, second]) == [list(first.payouts), list(second.payouts)]


def test_a_node_paid_then_rejected_until_suspended_forfeits_what_it_could_not_claim() -> None:
    """Honest in epoch 0, then rejected twice: suspended before it could claim, its epoch-0
    pay is forfeited to the carry and it keeps nothing; the others claimed theirs."""
    economy = Economy(suspend_after=2)
    ledger = Ledger(SAMPLES, economy)
    epochs = [ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD)]
    earned = epochs[0].payouts[1]
    for _ in range(2):
        epochs.append(ledger.settle([0, 1, 2, 3], [0, 2, 3], 0, [0, 1, 2, 3], GOOD[:, [0, 2, 3]]))
    assert epochs[1].strikes[1] == 1 and not epochs[1].suspended[1] and epochs[1].forfeited == (0, 0, 0, 0)
    assert epochs[2].suspended[1] and epochs[2].forfeited == (0, earned, 0, 0) and earned > 0
    assert ledger.carry == epochs[2].settlement.carried + earned
    kept = kept_payouts(epochs)
    assert [row[1] for row in kept] == [0, 0, 0]
    assert [row[0] for row in kept] == [e.payouts[0] for e in epochs]
    assert sum(map(sum, kept)) + sum(ledger.claimable) + ledger.carry == 3 * economy.budget


def test_strikes_accumulate_and_suspend() -> None:
    bad = GOOD.copy()
    bad[:, 1] = -0.01
    ledger = Ledger(SAMPLES, Economy(suspend_after=2))
    first = ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], bad)
    assert first.strikes == (0, 1, 0, 0) and not any(first.suspended)
    second = ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], bad)
    assert second.strikes[1] == 2 and second.suspended == (False, True, False, False)
    with pytest.raises(EconomyError, match=r"suspended nodes \[1\] cannot take part"):
        ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], bad)
    never = Ledger(SAMPLES, Economy(suspend_after=0))
    for _ in range(4):
        money = never.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], bad)
    assert money.strikes[1] == 4 and not any(money.suspended)


def test_a_lying_reporter_only_withholds_its_vote() -> None:
    """The liar rates itself +1 (ignored) and every other node -1 (counted as 0): its report
    has no positive score for anyone, so it gives nobody anything but still counts among each
    node's 3 other reporters. Every honest node loses exactly the liar's vote, at most a
    third of CREDIT_SCALE; the liar's own credit is what the honest reports give it."""
    honest = Ledger(SAMPLES, Economy()).settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD)
    lied = Ledger(SAMPLES, Economy()).settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD, {3: "lying"})
    assert lied.reports[3] == (-10**9, -10**9, -10**9, 10**9)
    # Node 0 holds 20 of the 70 that reporters 1 and 2 score the others, and 20 of reporter 3's 40.
    assert honest.settlement.scores[0] == (2 * (2 * CREDIT_SCALE // 7) + CREDIT_SCALE // 2) // 3
    assert lied.settlement.scores[0] == 2 * (2 * CREDIT_SCALE // 7) // 3
    for j in range(3):
        assert 0 < honest.settlement.scores[j] - lied.settlement.scores[j] <= -(-CREDIT_SCALE // 3)
    assert lied.settlement.scores[3] == honest.settlement.scores[3]


def test_replay_is_exact_until_the_suspensions_differ() -> None:
    inputs = [SettlementInput((0, 1, 2, 3), (0, 1, 2, 3), 0, (0, 1, 2, 3), GOOD) for _ in range(3)]
    economy = Economy(suspend_after=1)
    run = Ledger(SAMPLES, economy)
    epochs = [run.settle(i.committed, i.participants, i.leader, i.reporters, i.scores) for i in inputs]
    suspended = [e.suspended for e in epochs]
    same = replay(SAMPLES, inputs, suspended, economy, {})
    assert same.diverged is None and same.totals() == [sum(e.payouts[i] for e in epochs) for i in range(4)]
    # Two liars of four cannot zero anyone: node 1 keeps node 2's vote, so nobody is struck.
    two = replay(SAMPLES, inputs, suspended, economy, {0: "lying", 3: "lying"})
    assert two.diverged is None and all(e > 0 for e in two.epochs[0].settlement.smoothed)
    # Three liars of four leave no vote mass (the upper median report has none): nobody is
    # credited, so low credit singles nobody out and nobody is struck.
    three = replay(SAMPLES, inputs, suspended, economy, {0: "lying", 1: "lying", 2: "lying"})
    assert three.diverged is None and three.epochs[0].settlement.scores == (0, 0, 0, 0)
    assert not any(three.epochs[0].settlement.struck)
    # Node 2 sees nothing in node 3's update: two liars withhold the only votes node 3 had.
    # It gets credit 0 while the others hold credit, is struck and suspended, so the replay
    # diverges.
    scores = GOOD.copy()
    scores[2, 3] = 0.0
    inputs = [SettlementInput((0, 1, 2, 3), (0, 1, 2, 3), 0, (0, 1, 2, 3), scores) for _ in range(3)]
    run = Ledger(SAMPLES, economy)
    suspended = [run.settle(i.committed, i.participants, i.leader, i.reporters, i.scores).suspended for i in inputs]
    assert not any(any(epoch) for epoch in suspended)
    two = replay(SAMPLES, inputs, suspended, economy, {0: "lying", 1: "lying"})
    assert two.epochs[0].settlement.scores[3] == 0 and two.epochs[0].settlement.scores[0] > 0
    assert two.diverged == 0 and len(two.epochs) == 1 and two.epochs[0].suspended[3]
    with pytest.raises(EconomyError, match="diverged after epoch 0"):
        two.totals()


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": -1}, "budget must be a non-negative int"),
    ({"budget": 1.5}, "budget must be a non-negative int"),
    ({"suspend_after": 256}, r"suspend_after must be an int in \[0, 255\]"),
])
def test_bad_economies_are_refused(kwargs, message) -> None:
    with pytest.raises(EconomyError, match=message):
        Economy(**kwargs)


def test_bad_settlement_inputs_are_refused() -> None:
    ledger = Ledger(SAMPLES, Economy())
    with pytest.raises(EconomyError, match=r"scores has shape \(4, 3\), expected \(4 reporters, 4 participants\)"):
        ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD[:, :3])
    with pytest.raises(EconomyError, match="scores must be finite"):
        ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD * np.nan)
    with pytest.raises(EconomyError, match=r"participants \[3\] did not commit"):
        ledger.settle([0, 1, 2], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD)
    with pytest.raises(UnknownAttackError, match="unknown report attack 'flattering'"):
        ledger.settle([0, 1, 2, 3], [0, 1, 2, 3], 0, [0, 1, 2, 3], GOOD, {1: "flattering"})
