"""The Python reference reward rule: the properties DESIGN.md requires of any settlement,
the validators' aggregate (self ignored, a vote per reporter, the liar's bound), smoothing,
data weights and strikes, the quorum, the leader's verdict (contradicted merge, censored
updates, a zero-hash majority), the forfeit precedence (over-declaration last), and the
packing of the five-field reports settlement takes back."""

from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from swarmtoken.rewards import (
    BPS,
    CLAIM_AFTER,
    CREDIT_SCALE,
    VOTE_CAP_BPS,
    VOTE_FLOOR,
    ZERO_HASH,
    Forfeit,
    Participant,
    Report,
    Rule,
    can_claim,
    clean_after,
    data_weights,
    epoch_credits,
    forfeit_of,
    is_quorate,
    judge_leader,
    lower_median,
    payout,
    settle,
    settle_arguments,
    smooth,
    strict_majority,
    strikes_after,
    truncated_div,
    vote_mass,
)
from swarmtoken.units import SCORE_SCALE
from tests.fixtures.scores import SCORE_UNIT

BUDGET = 1000 * 10**18
PUBLISHED = "11" * 32
OTHER = "22" * 32
THIRD = "33" * 32


ALL = 2**16 - 1
"""A valid bitmap that finds every committed update valid."""


def agreeing(scores, metric=0, valid=ALL):
    """A report that recomputed the published merge (and by default found every update valid)."""
    return Report(metric, scores, PUBLISHED, valid)


def test_lower_median_takes_the_lower_middle_for_even_counts():
    assert lower_median([4, 1, 3, 2]) == 2
    assert lower_median([5, -1, 3]) == 3
    with pytest.raises(ValueError):
        lower_median([])


def unsmoothed(beta_bps: int) -> Rule:
    """A rule that pays an epoch's scores as they are: no smoothing, no standing threshold."""
    return Rule(beta_bps=beta_bps, smoothing_bps=BPS, standing_bps=0)


# ---------------------------------------------------------------- the validators' aggregate


A, B, C = ("0x" + c * 40 for c in "abc")
OUTSIDER = "0x" + "ee" * 20
"""A reporter whose update was left out of the merge: not a participant, it rates everyone."""
U = SCORE_UNIT
"""The examples' reports hold at least VOTE_FLOOR of positive scores (a whole vote) unless
they say otherwise."""


def test_epoch_credits_by_hand():
    """Each report is one vote of CREDIT_SCALE split in proportion to the reporter's positive
    scores for the *others*; a participant's credit is the mean of its other reporters' votes.
    Scores in units U of 0.01. A's report: its 99 for itself is ignored, B holds 30 of 40 and
    C 10 of 40. B's report (its address in upper case is still B): A holds all of 20, exactly
    VOTE_FLOOR, but no one of B's two others gets more than 1.5 equal shares (3/4 of a vote);
    C's -5 counts as 0. C's report has no positive score for anyone else: it gives nothing,
    but still counts. The outsider splits its vote in three: floor(10^9 / 3) = 333_333_333
    each."""
    assert 20 * U == VOTE_FLOOR
    reports = [(A, [99 * U, 30 * U, 10 * U]), (B.upper().replace("0X", "0x"), [20 * U, 77 * U, -5 * U]),
               (C, [-3 * U, -4 * U, 99 * U]), (OUTSIDER, [20 * U, 20 * U, 20 * U])]
    credits, counts = epoch_credits(reports, [A, B, C])
    assert counts == [3, 3, 3]
    assert credits == [
        (750_000_000 + 0 + 333_333_333) // 3,  # 361_111_111, B's whole vote capped
        (750_000_000 + 0 + 333_333_333) // 3,  # 361_111_111, exactly the cap
        (250_000_000 + 0 + 333_333_333) // 3,  # 194_444_444, floor of ...444.33
    ] == [361_111_111, 361_111_111, 194_444_444]


def test_a_participant_with_no_other_reporter_has_no_credit_and_no_count():
    """The only report is A's own: its score for itself is not a vote, so A has m = 0 and
    credit 0, while B gets A's whole vote. An anonymous report ("") rates everyone."""
    assert epoch_credits([(A, [5 * U, 70 * U])], [A, B]) == ([0, CREDIT_SCALE], [0, 1])
    assert epoch_credits([("", [50 * U, 50 * U])], [A, B]) == ([CREDIT_SCALE // 2] * 2, [1, 1])
    assert epoch_credits([], [A, B]) == ([0, 0], [0, 0])


def test_negative_scores_withhold_a_vote_and_nothing_more():
    """A reporter rating a victim -10^9 gives it what rating it 0 would: nothing. It cannot
    push the victim's credit below what the other reporters give it."""
    honest = [(A, [0, 40 * U, 40 * U]), (B, [40 * U, 0, 40 * U])]
    for low in (0, -1, -(10**9)):
        credits, _ = epoch_credits(honest + [(C, [40 * U, low, 0])], [A, B, C])
        # C's whole vote for A is capped at 1.5 equal shares of its two others: 3/4 of a vote.
        assert credits == [(CREDIT_SCALE // 2 + 3 * CREDIT_SCALE // 4) // 2, CREDIT_SCALE // 2 // 2, CREDIT_SCALE // 2]


def test_a_specialist_supported_by_one_validator_keeps_a_positive_credit():
    """Non-IID data: node 0 holds classes only validator 1 holds, so validator 1 rates it
    highest and the three others rate it below zero. Any order statistic of its scores is
    set by the three (the median is -10 U, and so is the mean trimmed of one at each end), so
    the old aggregate paid it nothing; the vote keeps validator 1's support: 60 of the 100
    it scores the others, capped at one and a half equal shares (1.5/4 of a vote), a quarter
    of it in the mean over 4 reporters, and full weight."""
    nodes = [f"0x{i:040x}" for i in range(1, 6)]
    vectors = [[v * U for v in row] for row in ([99, 30, 30, 30, 30], [60, 99, 20, 10, 10], [-10, 30, 99, 30, 30],
                                                [-10, 30, 30, 99, 30], [-10, 30, 30, 30, 99])]
    assert lower_median([v[0] for v in vectors[1:]]) == -10 * U
    result = settle(BUDGET, [Participant(100, node=n) for n in nodes],
                    [Report(0, v, valid=ALL, reporter=n) for n, v in zip(nodes, vectors, strict=True)])
    assert result.scores[0] == min(600_000_000, 15 * CREDIT_SCALE // 40) // 4 == 93_750_000
    assert result.smoothed[0] > 0 and result.payouts[0] > 0 and result.standing[0] and not result.struck[0]


def test_a_report_gives_one_participant_at_most_one_and_a_half_equal_shares():
    """A liar rating one accomplice +1 and everyone else 0 gives it 1.5/k of a vote, not the
    whole vote (k = 5 others here, and 2); with one other the cap is more than a whole vote."""
    nodes = [f"0x{i:040x}" for i in range(1, 7)]
    credits, counts = epoch_credits([(nodes[0], [0, 10**9, 0, 0, 0, 0])], nodes)
    assert VOTE_CAP_BPS == 15_000 and credits[1] == 3 * CREDIT_SCALE // 10 and counts[1] == 1
    assert epoch_credits([(nodes[0], [0, VOTE_FLOOR, 0])], nodes[:3])[0] == [0, 3 * CREDIT_SCALE // 4, 0]
    assert epoch_credits([(nodes[0], [0, VOTE_FLOOR])], nodes[:2])[0] == [0, CREDIT_SCALE]


def test_a_report_below_the_vote_floor_gives_that_fraction_of_a_vote():
    """Near convergence a validator's scores are noise of a few thousandths. A report whose
    positive scores for the others sum to 0.006 gives 0.004 / 0.2 and 0.002 / 0.2 of a vote,
    not the whole vote to whoever drew the positive noise; at VOTE_FLOOR or above the report
    is a whole vote again, shared in proportion."""
    noise = [(C, [4 * SCORE_SCALE // 1000, 2 * SCORE_SCALE // 1000, 0]),
             (A, [0, -SCORE_SCALE // 1000, 6 * SCORE_SCALE // 1000])]
    credits, counts = epoch_credits(noise, [A, B, C])
    assert counts == [1, 2, 1]
    assert credits == [20_000_000, 10_000_000 // 2, 30_000_000]
    credits, _ = epoch_credits([(C, [VOTE_FLOOR // 2, VOTE_FLOOR // 2, 0])], [A, B, C])
    assert credits == [CREDIT_SCALE // 2, CREDIT_SCALE // 2, 0]
    credits, _ = epoch_credits([(C, [VOTE_FLOOR // 4, VOTE_FLOOR // 4, 0])], [A, B, C])
    assert credits == [CREDIT_SCALE // 4, CREDIT_SCALE // 4, 0]


def test_noise_epochs_keep_the_evidence_of_measurable_ones():
    """Two nodes earned equal credit while improvements were measurable; then 20 epochs are
    noise in which B sees +0.002 for A and A sees -0.002 for B. With whole votes A took B's
    whole vote each epoch and B, with none, lost full weight after 8 epochs and was struck
    from the 11th on; with the floor each noise epoch moves a hundredth of a vote, and
    both keep full weight throughout."""
    participants = [Participant(100, node=A, smoothed=CREDIT_SCALE // 2),
                    Participant(100, node=B, smoothed=CREDIT_SCALE // 2)]
    tiny = 2 * SCORE_SCALE // 1000
    reports = [Report(0, [0, -tiny], valid=ALL, reporter=A), Report(0, [tiny, 0], valid=ALL, reporter=B)]
    for _ in range(20):
        result = settle(BUDGET, participants, reports)
        assert result.scores == (CREDIT_SCALE // 100, 0)
        participants = [replace(p, smoothed=e) for p, e in zip(participants, result.smoothed, strict=True)]
        assert result.standing == (True, True) and result.struck == (False, False)
    assert result.smoothed[1] < result.smoothed[0] < CREDIT_SCALE // 2


def test_no_report_gives_more_of_a_vote_than_the_median_report():
    """A noise epoch of four reporters: three honest ones measured +0.004 for one other node
    each, and D, lying, rates its accomplice C +1 (a whole vote under the floor alone, 1/2
    of one after the cap). The vote mass M is the upper median of min(P_r, VOTE_FLOOR):
    0.004, so D gives C 0.004 / 0.2 of a vote, as much as an honest reporter gives anyone.
    In an epoch of measurable improvements (the median report at the floor) nothing is
    capped but the per-participant share."""
    D = "0x" + "dd" * 20
    nodes = [A, B, C, D]
    tiny = 4 * SCORE_SCALE // 1000
    honest = [(A, [0, tiny, 0, 0]), (B, [0, 0, tiny, 0]), (C, [tiny, 0, 0, 0])]
    boosting = (D, [0, 0, SCORE_SCALE, 0])
    assert vote_mass([*honest, boosting], nodes) == tiny
    fraction = tiny * CREDIT_SCALE // VOTE_FLOOR  # 20_000_000: 0.004 / 0.2 of a vote
    credits, counts = epoch_credits([*honest, boosting], nodes)
    assert counts == [3, 3, 3, 3]
    assert credits == [fraction // 3, fraction // 3, 2 * fraction // 3, 0]
    loud = [(A, [0, VOTE_FLOOR, 0, 0]), (B, [0, 0, VOTE_FLOOR, 0]), (C, [VOTE_FLOOR, 0, 0, 0])]
    assert vote_mass([*loud, boosting], nodes) == VOTE_FLOOR
    assert epoch_credits([*loud, boosting], nodes)[0][2] == 2 * (CREDIT_SCALE // 2) // 3  # B's and D's capped votes


def test_half_the_reports_with_nothing_positive_do_not_zero_the_epoch():
    """Two deflating liars of four (every other node below 0) against two honest reports:
    the upper median is an honest report's mass, so the honest votes count in full; three of
    four would set it to 0."""
    D = "0x" + "dd" * 20
    nodes = [A, B, C, D]
    honest = [(A, [0, U * 30, U * 30, 0]), (B, [U * 30, 0, 0, U * 30])]
    liars = [(C, [-U, -U, SCORE_SCALE, -U]), (D, [-U, -U, -U, SCORE_SCALE])]
    assert vote_mass([*honest, *liars], nodes) == VOTE_FLOOR
    credits, _ = epoch_credits([*honest, *liars], nodes)
    assert credits == [CREDIT_SCALE // 2 // 3] * 4
    third = (A, [0, -U, -U, -U])
    assert vote_mass([third, honest[1], *liars], nodes) == 0
    assert epoch_credits([third, honest[1], *liars], nodes)[0] == [0, 0, 0, 0]


def test_vote_mass_is_the_upper_median_of_the_capped_positive_totals():
    nodes = [A, B, C]
    assert vote_mass([], nodes) == 0
    assert vote_mass([(A, [SCORE_SCALE, 0, 5])], nodes) == 5  # its own score is not counted
    assert vote_mass([(A, [0, 3, 0]), (B, [0, 0, SCORE_SCALE])], nodes) == VOTE_FLOOR  # the larger of two
    assert vote_mass([(A, [0, 3, 0]), (B, [0, 0, 9]), (C, [7, 0, 0])], nodes) == 7


@settings(max_examples=200, deadline=None)
@given(vector=st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=8))
def test_no_report_gives_one_participant_more_than_the_cap(vector):
    """An outsider's report is each participant's only vote: none exceeds VOTE_CAP_BPS / (BPS * k) of
    CREDIT_SCALE (nor CREDIT_SCALE), and the shares add up to at most one vote."""
    nodes = [f"0x{j + 1:040x}" for j in range(len(vector))]
    credits, _ = epoch_credits([(OUTSIDER, vector)], nodes)
    assert all(0 <= c <= min(CREDIT_SCALE, VOTE_CAP_BPS * CREDIT_SCALE // (BPS * len(vector))) for c in credits)
    assert sum(credits) <= CREDIT_SCALE


def test_score_vector_of_wrong_length_is_refused():
    with pytest.raises(ValueError, match="expected 3"):
        epoch_credits([("", [1, 2])], ["a", "b", "c"])


score_bound = st.integers(-(10**9), 10**9)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_one_reporter_moves_any_credit_by_at_most_its_vote_over_m(data):
    """The liar's bound: replacing one report by any other moves the vote mass M only between
    the other reports' masses next to their median, and a participant with m other reporters
    by at most CREDIT_SCALE / m (rounded up: the mean is floored) plus what that move of M
    does to each other vote, CREDIT_SCALE * |M' - M| / VOTE_FLOOR (rounded up); the credits'
    total by at most n times that; the liar's own credit not at all, nor anybody's count of
    reporters."""
    n = data.draw(st.integers(1, 8))
    nodes = [f"0x{j + 1:040x}" for j in range(n)]
    vector = st.lists(score_bound, min_size=n, max_size=n)
    reports = data.draw(st.lists(st.tuples(st.sampled_from(nodes + [OUTSIDER, ""]), vector), min_size=1,
                                 max_size=10))
    liar = data.draw(st.integers(0, len(reports) - 1))
    forged_reports = list(reports)
    forged_reports[liar] = (reports[liar][0], data.draw(vector))
    credits, counts = epoch_credits(reports, nodes)
    forged, forged_counts = epoch_credits(forged_reports, nodes)
    assert forged_counts == counts
    mass, forged_mass = vote_mass(reports, nodes), vote_mass(forged_reports, nodes)
    others = sorted(vote_mass([report], nodes) for r, report in enumerate(reports) if r != liar)
    k = len(reports)
    # M' is element k // 2 of all k masses: at least the other masses' element k // 2 - 1,
    # at most their element k // 2 (which exists from three reports on).
    if k >= 2:
        assert others[k // 2 - 1] <= forged_mass
    if k >= 3:
        assert forged_mass <= others[k // 2]
    drift = -(-CREDIT_SCALE * abs(forged_mass - mass) // VOTE_FLOOR) + 1
    for j in range(n):
        assert 0 <= credits[j] <= CREDIT_SCALE and 0 <= forged[j] <= CREDIT_SCALE
        if counts[j]:
            assert abs(forged[j] - credits[j]) <= -(-CREDIT_SCALE // counts[j]) + drift
        if nodes[j] == reports[liar][0] and mass == forged_mass:
            assert forged[j] == credits[j]
    if any(counts):
        assert abs(sum(forged) - sum(credits)) <= CREDIT_SCALE // min(c for c in counts if c) + n * (drift + 1)


def test_non_positive_scores_are_paid_nothing():
    result = settle(BUDGET, [Participant(100)] * 3, [agreeing([5, 0, -5])] * 2, rule=unsmoothed(5000))
    assert result.payouts[1] == result.payouts[2] == 0
    assert result.payouts[0] == BUDGET
    # Paid nothing for a non-positive score is not a forfeit: nothing was held back.
    assert result.forfeits == (Forfeit.NONE,) * 3


def test_pure_data_share_splits_by_the_samples_that_count():
    """Samples arrive already capped by the allowance (the contract records them so)."""
    participants = [Participant(100), Participant(300), Participant(300)]
    result = settle(BUDGET, participants, [agreeing([1, 1, 1])] * 2, rule=unsmoothed(BPS))
    assert result.payouts == (BUDGET * 100 // 700, BUDGET * 300 // 700, BUDGET * 300 // 700)


def test_non_reporter_forfeits_to_the_carry_and_others_do_not_gain():
    reports = [agreeing([1, 2, 3])] * 2
    everyone = settle(BUDGET, [Participant(100)] * 3, reports, rule=unsmoothed(0))
    lazy = settle(
        BUDGET,
        [Participant(100), Participant(100, reported=False), Participant(100)],
        reports,
        rule=unsmoothed(0),
    )
    assert lazy.payouts[1] == 0 and lazy.forfeits[1] is Forfeit.NOT_REPORTED
    assert lazy.payouts[0] == everyone.payouts[0] and lazy.payouts[2] == everyone.payouts[2]
    assert lazy.carried == everyone.carried + everyone.payouts[1]


def test_nobody_reporting_carries_the_whole_budget():
    result = settle(BUDGET, [Participant(100, reported=False)] * 3, [])
    assert result.credited == 0 and result.carried == BUDGET and result.median_metric is None
    assert not result.quorate
    assert result.forfeits == (Forfeit.NOT_REPORTED,) * 3


# ---------------------------------------------------------------- smoothing and standing


def test_the_smoothed_score_is_an_integer_moving_average_truncated_toward_zero():
    assert truncated_div(-7, 2) == -3 and truncated_div(7, 2) == 3 and truncated_div(7, -2) == -3
    assert smooth(0, 101, 5000) == 50
    assert smooth(0, -101, 5000) == -50
    assert smooth(40, -101, 5000) == -30  # (-101 + 40) / 2 = -30.5
    assert smooth(40, 7, BPS) == 7  # no smoothing
    assert smooth(40, 7, 1) == 39  # 0.0001 * 7 + 0.9999 * 40 = 39.9967, truncated


def test_evidence_accumulates_so_one_bad_epoch_does_not_zero_an_honest_node():
    """A node that earned half the scale before and that every validator rates below zero
    this epoch (credit 0) keeps half of its smoothed credit, its full weight, and is paid (the
    other gets the outsider's whole vote, capped at 1.5 equal shares of two)."""
    half = CREDIT_SCALE // 2
    participants = [Participant(100, node="a", smoothed=half), Participant(100, node="b", smoothed=half)]
    result = settle(BUDGET, participants, [Report(0, [-20 * U, 50 * U], valid=ALL, reporter="c")] * 2,
                    rule=Rule(smoothing_bps=5000))
    most = 3 * CREDIT_SCALE // 4
    assert result.scores == (0, most) and result.smoothed == (half // 2, (most + half) // 2)
    assert result.standing == (True, True) and all(p > 0 for p in result.payouts)
    assert result.struck == (False, False)


def test_without_evidence_the_smoothed_score_stays_and_no_strike_is_due():
    """The only reporter is the participant itself: its own score does not count. With no
    other reporter its credit is 0 but does not move its smoothed credit, and though its
    smoothed credit of 0 gives it no weight, nobody judged it: no strike."""
    for before in (0, 7):
        result = settle(BUDGET, [Participant(100, node="a", smoothed=before)],
                        [Report(0, [10**9], valid=ALL, reporter="a")])
        assert result.quorate and result.evidence == (False,) and result.scores == (0,)
        assert result.smoothed == (before,) and result.weights == ((100,) if before else (0,))
        assert result.struck == (False,) and strikes_after(1, result.struck[0]) == 0


def test_a_node_whose_evidence_backs_less_than_half_its_data_is_struck():
    """Struck when 2 w < d: the weight decides, not the sign of the smoothed credit. With
    standing at the average (standing_bps = BPS) and no smoothing, every report splits its
    vote 6:2:1:0, the first share capped at one and a half of four equal shares, so D+ = 300,
    S+ = 708_333_333 and w = min(100, e * 300 / S+): 158 -> 100 (full weight), 94, 47 and 0
    (no positive credit). The third is struck although it is paid for its credit; the fourth
    is struck and paid nothing."""
    rule = Rule(smoothing_bps=BPS, standing_bps=BPS)
    participants = [Participant(100, node=n) for n in "abcd"]
    result = settle(BUDGET, participants, [Report(0, [60 * U, 20 * U, 10 * U, 0], valid=ALL, reporter=r) for r in "xyz"], rule=rule)
    assert result.scores == result.smoothed == (15 * CREDIT_SCALE // 40, 222_222_222, 111_111_111, 0)
    assert result.weights == (100, 94, 47, 0) and result.standing == (True, False, False, False)
    assert result.struck == (False, False, True, True)
    assert result.payouts[2] > 0 and result.payouts[3] == 0
    # Exactly half its data backed (2 w = d) is not struck: 3:1 gives w = 250_000_000 * 200 / 10^9 = 50.
    half = settle(BUDGET, participants[:2], [Report(0, [30 * U, 10 * U], valid=ALL, reporter=r) for r in "xy"], rule=rule)
    assert half.weights == (100, 50) and half.struck == (False, False)


def test_an_epoch_that_credits_nobody_strikes_nobody_for_low_credit():
    """Every validator rates every update harmful (as on an imbalanced table while the model
    first learns the majority class): no participant holds credit, low credit singles nobody
    out, and nobody is struck. Once one participant holds credit, the others are."""
    participants = [Participant(100, node=n) for n in "abc"]
    harmful = [Report(0, [-5 * U, -3 * U, -1 * U], valid=ALL, reporter=n) for n in "abc"]
    result = settle(BUDGET, participants, harmful)
    assert result.quorate and result.evidence == (True,) * 3 and result.smoothed == (0, 0, 0)
    assert result.payouts == (0, 0, 0) and result.struck == (False,) * 3
    one = [Report(0, [-5 * U, -3 * U, 10 * U], valid=ALL, reporter=n) for n in "abc"]
    assert settle(BUDGET, participants, one).struck == (True, True, False)
    # a fault still strikes in an epoch that credits nobody
    invalid = [Report(0, [-5 * U, -3 * U, -1 * U], valid=0b011, reporter=n) for n in "abc"]
    assert settle(BUDGET, participants, invalid).struck == (False, False, True)


def test_data_weights_by_hand():
    """Three nodes of 100 samples with smoothed credits 100, 100 and 5: D+ = 300, S+ = 205.
    At standing 20 % the third's weight is floor(5 * 300 * 10_000 / (2_000 * 205)) = 36."""
    assert data_weights([100, 100, 5], [100, 100, 100], 2000) == [100, 100, 36]
    assert data_weights([100, 100, 5], [100, 100, 100], 0) == [100, 100, 100]  # no line: full weight
    assert data_weights([0, -3, 5], [1, 1, 1], 0) == [0, 0, 1]  # no positive credit, no weight
    # Per sample: a node with a tenth of the data needs a tenth of the credit.
    assert data_weights([100, 10], [1000, 100], 10_000) == [1000, 100]
    assert data_weights([100, 9], [1000, 100], 10_000) == [1000, 90]


def test_data_weight_ramps_continuously_up_to_the_standing_line():
    """A node of 100 samples beside two of 100 samples and smoothed credit 1000, at standing
    20 %: w = min(100, floor(1500 e / (2000 + e))). One unit of credit more moves the weight
    by at most one sample (never down), and full weight starts exactly at the standing line,
    1500 e >= 100 (2000 + e), i.e. e >= 143; the two others keep full weight throughout."""
    ramp = []
    for credit in range(300):
        weights = data_weights([1000, 1000, credit], [100, 100, 100], 2000)
        assert weights[:2] == [100, 100]
        ramp.append(weights[2])
    assert ramp[0] == 0 and ramp[1] == 0
    assert all(0 <= later - earlier <= 1 for earlier, later in zip(ramp, ramp[1:]))
    assert ramp[142] == 99 and ramp[143:] == [100] * (300 - 143)
    assert ramp[100] == 1500 * 100 // 2100 == 71


@settings(max_examples=300, deadline=None)
@given(data=st.data(), standing_bps=st.integers(0, BPS))
def test_someone_always_has_full_weight(data, standing_bps):
    """W > 0 whenever someone has a positive smoothed credit: a node with at least the
    average credit per sample has full weight, and every weight is within [0, d]."""
    n = data.draw(st.integers(1, 12))
    smoothed = data.draw(st.lists(st.integers(-5, CREDIT_SCALE), min_size=n, max_size=n))
    samples = data.draw(st.lists(st.integers(1, 2**64 - 1), min_size=n, max_size=n))
    weights = data_weights(smoothed, samples, standing_bps)
    positive = [j for j in range(n) if smoothed[j] > 0]
    assert all(0 <= w <= d for w, d in zip(weights, samples, strict=True))
    assert all(weights[j] == 0 for j in range(n) if j not in positive)
    total_data, total_credit = sum(samples[j] for j in positive), sum(smoothed[j] for j in positive)
    for j in positive:
        if smoothed[j] * total_data >= samples[j] * total_credit:
            assert weights[j] == samples[j]
    assert (sum(weights) > 0) == bool(positive)


def test_a_node_adding_noise_around_zero_is_paid_for_almost_none_of_its_data():
    """Three validators score it 0.0003 beside 0.1 and 0.1: its credit is floor(3 * 10^9 / 2003)
    = 1_497_753, smoothed at 20 % to 299_550 against 99_850_224 for the others, so its
    weight is floor(299_550 * 300 * 10_000 / (2_000 * 199_999_998)) = 2 of its 100 samples.
    With the whole budget split by data it gets 2 / 202 of it, and it is struck."""
    participants = [Participant(100, node=n) for n in "abc"]
    reports = [Report(0, [10**8, 10**8, 3 * 10**5], valid=ALL, reporter=r) for r in "xyz"]
    result = settle(BUDGET, participants, reports, rule=Rule(beta_bps=BPS))
    assert result.smoothed == (99_850_224, 99_850_224, 299_550) and result.weights == (100, 100, 2)
    assert result.standing == (True, True, False) and result.struck == (False, False, True)
    assert result.payouts == (BUDGET * 100 // 202, BUDGET * 100 // 202, BUDGET * 2 // 202)


# ---------------------------------------------------------------- payouts


def test_payout_by_hand():
    """R (beta w / W + (1 - beta) e / S), floored: 1000 * (0.3 * 1 / 4 + 0.7 * 3 / 5) = 495."""
    assert payout(1000, 1, 3, 4, 5, 3000) == 495
    assert payout(1000, 1, 3, 4, 5, BPS) == 250 and payout(1000, 1, 3, 4, 5, 0) == 600
    assert payout(999, 1, 1, 3, 3, 5000) == 333


@settings(max_examples=300, deadline=None)
@given(budget=st.integers(0, 4 * 10**30), beta_bps=st.integers(0, BPS),
       paid=st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(1, CREDIT_SCALE)), min_size=1, max_size=16))
def test_payouts_sum_to_the_budget_less_rounding(budget, beta_bps, paid):
    """The shares sum to one, so the floored payouts never exceed the budget and leave less
    than one wei each in the carry."""
    total_weight, total_score = sum(w for w, _ in paid), sum(e for _, e in paid)
    assume(total_weight > 0)  # settle never pays with W = 0 (test_someone_always_has_full_weight)
    credited = sum(payout(budget, w, e, total_weight, total_score, beta_bps) for w, e in paid)
    assert budget - len(paid) < credited <= budget


# ---------------------------------------------------------------- quorum


@pytest.mark.parametrize(
    "reports, commits, quorate",
    [(0, 0, False), (0, 1, False), (1, 1, True), (1, 2, False), (2, 3, True), (2, 4, False), (3, 4, True),
     (56, 112, False), (57, 112, True)],
)
def test_an_epoch_is_quorate_when_a_strict_majority_of_committers_reported(reports, commits, quorate):
    assert is_quorate(reports, commits) is quorate


def test_non_quorate_epoch_pays_nothing_and_judges_nobody():
    """Two of five committers reported: their scores and their contradicting hashes do
    not count; the budget is carried whole and the published hash stays the model. Who did
    not report is still recorded as a forfeit."""
    participants = [Participant(100, leader=True), Participant(100), Participant(100, reported=False)]
    reports = [Report(900_000, [10 * U, 20 * U, 30 * U], OTHER, 0b11111)] * 2
    result = settle(BUDGET, participants, reports, commits=5, participants_bitmap=0b00111,
                    published_hash=PUBLISHED)
    assert not result.quorate
    assert result.payouts == (0, 0, 0) and result.credited == 0 and result.carried == BUDGET
    # Credits are still taken (10, 20 and 30 of 60 U), just not paid or smoothed.
    assert result.scores == (166_666_666, 333_333_333, 500_000_000)
    assert result.smoothed == (0, 0, 0) and result.evidence == (False,) * 3
    assert result.median_metric == 900_000
    assert result.verdict.model_hash == PUBLISHED and result.verdict.fault is Forfeit.NONE
    assert result.verdict.censored == ()
    assert result.forfeits == (Forfeit.NONE, Forfeit.NONE, Forfeit.NOT_REPORTED)

    # One more report makes it quorate: now the majority is heard and the epoch pays.
    quorate = settle(BUDGET, participants, reports * 2, commits=5, participants_bitmap=0b00111,
                     published_hash=PUBLISHED)
    assert quorate.quorate and quorate.credited > 0
    assert quorate.verdict.fault is Forfeit.MERGE_CONTRADICTED


# ---------------------------------------------------------------- leader's verdict


@pytest.mark.parametrize(
    "values, majority",
    [
        ([], None),
        (["a"], "a"),
        (["a", "b"], None),  # half is not a strict majority
        (["a", "a", "b"], "a"),
        (["a", "b", "a", "b"], None),
        (["a", "b", "c", "a", "a"], "a"),
        (["b", "a", "c", "a"], None),  # plurality, not majority
        # The candidate Boyer-Moore ends on ("c") is not a majority: the count rejects it.
        (["a", "a", "b", "b", "c"], None),
    ],
)
def test_strict_majority_needs_more_than_half(values, majority):
    assert strict_majority(values) == majority


def test_leader_standing_keeps_its_hash_as_the_model():
    verdict = judge_leader(PUBLISHED, 0b111, 3, [agreeing([1], valid=0b111)] * 3)
    assert (verdict.model_hash, verdict.fault, verdict.censored) == (PUBLISHED, Forfeit.NONE, ())


def test_leader_contradicted_by_a_strict_majority_loses_the_model():
    reports = [Report(0, [1], OTHER), Report(0, [1], OTHER), Report(0, [1], PUBLISHED)]
    verdict = judge_leader(PUBLISHED, 0b111, 3, reports)
    assert (verdict.model_hash, verdict.fault) == (OTHER, Forfeit.MERGE_CONTRADICTED)


def test_split_reporters_do_not_contradict_the_leader():
    reports = [Report(0, [1], OTHER), Report(0, [1], THIRD), Report(0, [1], PUBLISHED), Report(0, [1], OTHER)]
    verdict = judge_leader(PUBLISHED, 0b111, 4, reports)
    assert (verdict.model_hash, verdict.fault) == (PUBLISHED, Forfeit.NONE)


def test_a_zero_hash_majority_is_no_contradiction():
    """Reporters that could not recompute the merge report the zero hash; however many
    they are, they cannot replace the model or blame the leader."""
    reports = [Report(0, [1], ZERO_HASH)] * 3 + [Report(0, [1], OTHER)]
    verdict = judge_leader(PUBLISHED, 0b111, 4, reports)
    assert (verdict.model_hash, verdict.fault, verdict.censored) == (PUBLISHED, Forfeit.NONE, ())


def test_left_out_update_a_strict_majority_found_valid_is_censored():
    """Commits 0-4; the leader merged 0, 1 and 3. Update 2 is valid for two of three
    reporters (censored); update 4 for only one (fairly left out). A participant's bit
    counts for nothing either way."""
    reports = [
        agreeing([1, 1, 1], valid=0b10111),
        agreeing([1, 1, 1], valid=0b00101),
        agreeing([1, 1, 1], valid=0b01000),
    ]
    verdict = judge_leader(PUBLISHED, 0b01011, 5, reports)
    assert (verdict.model_hash, verdict.fault, verdict.censored) == (PUBLISHED, Forfeit.CENSORED, (2,))


def test_an_update_left_out_that_no_strict_majority_found_valid_is_rejected():
    """The same epoch settled: update 2 was censored (the leader's fault, not its
    committer's); update 4, valid for one reporter of three, is rejected: a strike for its
    committer. Without quorum (two reports of five commits) nobody is rejected."""
    participants = [Participant(samples=100, node=f"n{i}") for i in (0, 1, 3)]
    reports = [
        agreeing([1, 1, 1], valid=0b10111),
        agreeing([1, 1, 1], valid=0b00101),
        agreeing([1, 1, 1], valid=0b01000),
    ]
    outcome = settle(10**18, participants, reports, commits=5, participants_bitmap=0b01011, published_hash=PUBLISHED)
    assert (outcome.verdict.censored, outcome.rejected) == ((2,), (4,))
    outcome = settle(10**18, participants, reports[:2], commits=5, participants_bitmap=0b01011,
                     published_hash=PUBLISHED)
    assert not outcome.quorate and outcome.rejected == ()


def test_clean_epochs_count_until_a_strike_and_unlock_claims():
    assert CLAIM_AFTER == 2
    assert [clean_after(c, s) for c, s in [(0, False), (1, False), (7, True), (255, False)]] == [1, 2, 0, 255]
    assert [can_claim(c, finished=False) for c in range(4)] == [False, False, True, True]
    assert can_claim(0, finished=True)


def test_half_of_the_reporters_finding_an_update_valid_is_not_censorship():
    reports = [agreeing([1, 1, 1], valid=0b1000), agreeing([1, 1, 1], valid=0)]
    assert judge_leader(PUBLISHED, 0b0111, 4, reports).fault is Forfeit.NONE


def test_a_contradicted_merge_outranks_censorship_but_both_are_found():
    reports = [Report(0, [1, 1, 1], OTHER, 0b1111)] * 2 + [agreeing([1, 1, 1], valid=0)]
    verdict = judge_leader(PUBLISHED, 0b0111, 4, reports)
    assert (verdict.model_hash, verdict.fault, verdict.censored) == (OTHER, Forfeit.MERGE_CONTRADICTED, (3,))


def test_leader_at_fault_forfeits_and_is_struck():
    """Only the leader pays for its fault; every other participant is paid as before."""
    participants = [Participant(100), Participant(100, leader=True), Participant(100)]
    honest = [agreeing([5, 5, 5], valid=0b111)] * 3
    contradicted = [Report(0, [5, 5, 5], OTHER, 0b111)] * 3
    fine = settle(BUDGET, participants, honest, published_hash=PUBLISHED)
    faulted = settle(BUDGET, participants, contradicted, published_hash=PUBLISHED)
    assert fine.forfeits == (Forfeit.NONE,) * 3 and fine.payouts[1] > 0
    assert faulted.forfeits == (Forfeit.NONE, Forfeit.MERGE_CONTRADICTED, Forfeit.NONE)
    assert faulted.payouts == (fine.payouts[0], 0, fine.payouts[2])
    assert faulted.carried == fine.carried + fine.payouts[1]
    assert faulted.verdict.model_hash == OTHER
    # A positive smoothed score does not save a leader at fault from its strike.
    assert faulted.struck == (False, True, False) and fine.struck == (False,) * 3
    assert strikes_after(1, True) == 2 and strikes_after(1, False) == 0
    assert strikes_after(255, True) == 255  # uint8's maximum


def test_a_censoring_leader_forfeits_as_censored():
    participants = [Participant(100, leader=True), Participant(100), Participant(100)]
    reports = [agreeing([5, 5, 5], valid=0b1111)] * 3
    result = settle(BUDGET, participants, reports, commits=4, participants_bitmap=0b0111,
                    published_hash=PUBLISHED)
    assert result.verdict.censored == (3,)
    assert result.forfeits == (Forfeit.CENSORED, Forfeit.NONE, Forfeit.NONE)
    assert result.payouts[0] == 0 and result.payouts[1] > 0


def test_a_participant_no_majority_found_valid_cannot_live_on_its_past_score():
    """A node with a good record whose update this epoch does not open (a copy the leader
    merged anyway): two of three reporters call it invalid. It forfeits and is struck."""
    participants = [Participant(100, node="a", smoothed=10**6), Participant(100, node="b", smoothed=10**6)]
    reports = [agreeing([0, 50], valid=0b10)] * 2 + [agreeing([0, 50], valid=0b11)]
    result = settle(BUDGET, participants, reports)
    assert result.forfeits == (Forfeit.INVALID, Forfeit.NONE) and result.payouts[0] == 0
    assert result.smoothed[0] > 0 and result.struck == (True, False)
    assert result.carried == BUDGET - result.payouts[1] > 0


# ---------------------------------------------------------------- forfeit precedence


@pytest.mark.parametrize(
    "participant, fault, reason",
    [
        (Participant(1), Forfeit.NONE, Forfeit.NONE),
        (Participant(1, reported=False), Forfeit.NONE, Forfeit.NOT_REPORTED),
        # A leader fault only applies to the leader.
        (Participant(1, reported=False), Forfeit.CENSORED, Forfeit.NOT_REPORTED),
        (Participant(1, leader=True, reported=False), Forfeit.CENSORED, Forfeit.CENSORED),
        (Participant(1, leader=True, reported=False), Forfeit.MERGE_CONTRADICTED, Forfeit.MERGE_CONTRADICTED),
        (Participant(1, leader=True, reported=False), Forfeit.NONE, Forfeit.NOT_REPORTED),
        (Participant(1, leader=True, skipped_leader=True), Forfeit.MERGE_CONTRADICTED, Forfeit.LEADER_TIMED_OUT),
        (Participant(1, skipped_leader=True, reported=False), Forfeit.NONE, Forfeit.LEADER_TIMED_OUT),
        (Participant(1, removed=True, skipped_leader=True, leader=True, reported=False), Forfeit.CENSORED,
         Forfeit.REMOVED),
        (Participant(1, removed=True), Forfeit.NONE, Forfeit.REMOVED),
        # Declaring more than the allowance comes last.
        (Participant(1, over_declared=True), Forfeit.NONE, Forfeit.OVER_DECLARED),
        (Participant(1, over_declared=True, reported=False), Forfeit.NONE, Forfeit.NOT_REPORTED),
        (Participant(1, over_declared=True, leader=True), Forfeit.CENSORED, Forfeit.CENSORED),
        (Participant(1, over_declared=True, leader=True), Forfeit.NONE, Forfeit.OVER_DECLARED),
        (Participant(1, over_declared=True, removed=True), Forfeit.NONE, Forfeit.REMOVED),
    ],
)
def test_forfeit_precedence_is_removed_then_timed_out_then_leader_fault_then_not_reported(participant, fault, reason):
    assert forfeit_of(participant, fault) is reason


@pytest.mark.parametrize(
    "participant, fault, reason",
    [
        (Participant(1), Forfeit.NONE, Forfeit.INVALID),
        (Participant(1, over_declared=True), Forfeit.NONE, Forfeit.INVALID),
        (Participant(1, reported=False), Forfeit.NONE, Forfeit.NOT_REPORTED),
        (Participant(1, leader=True), Forfeit.CENSORED, Forfeit.CENSORED),
    ],
)
def test_an_invalid_update_forfeits_after_not_reporting_and_before_over_declaring(participant, fault, reason):
    assert forfeit_of(participant, fault, valid=False) is reason


def test_over_declaring_forfeits_but_its_capped_samples_still_weigh_in_the_shares():
    """The over-declarer's capped samples stay in D (its share is carried, not handed to
    the others): the honest participants are paid exactly as if it had declared honestly."""
    honest = settle(BUDGET, [Participant(100), Participant(300)], [agreeing([1, 3])] * 2, rule=unsmoothed(5000))
    inflated = settle(BUDGET, [Participant(100), Participant(300, over_declared=True)], [agreeing([1, 3])] * 2,
                      rule=unsmoothed(5000))
    assert inflated.forfeits == (Forfeit.NONE, Forfeit.OVER_DECLARED)
    assert inflated.payouts == (honest.payouts[0], 0)
    assert inflated.carried == honest.carried + honest.payouts[1]


def test_forfeit_is_recorded_even_when_nothing_would_have_been_paid():
    participants = [Participant(100, reported=False), Participant(100, removed=True), Participant(100)]
    result = settle(BUDGET, participants, [agreeing([-1, 0, 7])] * 3, commits=4)
    assert result.payouts == (0, 0, BUDGET)
    assert result.forfeits == (Forfeit.NOT_REPORTED, Forfeit.REMOVED, Forfeit.NONE)


# ---------------------------------------------------------------- settle's arguments


def test_settle_arguments_pack_the_five_fields_in_emission_order():
    a, b = "0x" + "aa" * 20, "0x" + "bb" * 20
    reports = [
        (a, Report(700_000, [1, -1, 2**63 - 1], PUBLISHED, 0b101)),
        (b, Report(500_000, [-(2**63), 0, 3], ZERO_HASH, 0)),
    ]
    (reporters, metrics, hashes, valids, packed), metric = settle_arguments(reports, 3)
    assert reporters == [a, b]
    assert metrics == [700_000, 500_000]
    assert hashes == [bytes.fromhex(PUBLISHED), bytes(32)]
    assert all(isinstance(h, bytes) and len(h) == 32 for h in hashes)
    assert valids == [0b101, 0]
    # 8 bytes per score, big-endian two's complement, report after report; a reporter's
    # score for itself is sent like any other (the contract ignores it, as epoch_credits does).
    assert packed == bytes.fromhex(
        "0000000000000001" "ffffffffffffffff" "7fffffffffffffff"
        "8000000000000000" "0000000000000000" "0000000000000003"
    )
    # The lower median of the metrics: a hint the contract checks instead of sorting.
    assert metric == 500_000
    assert settle_arguments(reports + [(a, Report(600_000, [0, 0, 0]))], 3)[1] == 600_000


def test_settle_arguments_of_an_epoch_nobody_reported_in():
    assert settle_arguments([], 4) == (([], [], [], [], b""), 0)


def test_settle_arguments_refuse_a_score_vector_of_the_wrong_length():
    """One score per participant or the contract could not read the packed scores: any
    report of another length is refused, even after good ones."""
    good = ("0x" + "bb" * 20, Report(0, [1, 2]))
    with pytest.raises(ValueError, match="has 3 entries, expected 2"):
        settle_arguments([good, ("0x" + "aa" * 20, Report(0, [1, 2, 3]))], 2)
    with pytest.raises(ValueError, match="has 1 entries, expected 2"):
        settle_arguments([good, ("0x" + "aa" * 20, Report(0, [1]))], 2)


# ---------------------------------------------------------------- properties


hashes = st.sampled_from([PUBLISHED, OTHER, ZERO_HASH])


@settings(max_examples=300, deadline=None)
@given(
    budget=st.integers(0, 4 * 10**30),
    samples=st.lists(st.integers(1, 2**64 - 1), min_size=1, max_size=16),
    data=st.data(),
    rule=st.builds(Rule, st.integers(0, BPS), st.integers(1, BPS), st.integers(0, BPS)),
)
def test_payouts_never_exceed_the_budget(budget, samples, data, rule):
    n = len(samples)
    commits = data.draw(st.integers(n, 20))
    bitmap = sum(1 << i for i in data.draw(st.permutations(range(commits)))[:n])
    scores = st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n)
    reports = data.draw(st.lists(
        st.builds(Report, st.integers(0, 10**6), scores, hashes, st.integers(0, 2**commits - 1)), max_size=commits))
    flags = data.draw(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
                               min_size=n, max_size=n))
    leader = data.draw(st.integers(0, n - 1))
    smoothed = data.draw(st.lists(st.integers(0, CREDIT_SCALE), min_size=n, max_size=n))
    participants = [Participant(s, reported=r, skipped_leader=k, removed=x, leader=j == leader, over_declared=o,
                                node=f"0x{j:040x}", smoothed=e)
                    for j, (s, (r, k, x, o), e) in enumerate(zip(samples, flags, smoothed))]
    reporters = data.draw(st.lists(st.integers(0, commits), min_size=len(reports), max_size=len(reports)))
    reports = [replace(r, reporter=f"0x{i:040x}") for r, i in zip(reports, reporters)]
    result = settle(budget, participants, reports, rule=rule, commits=commits, participants_bitmap=bitmap,
                    published_hash=PUBLISHED)
    assert sum(result.payouts) == result.credited <= budget
    assert result.carried == budget - result.credited >= 0
    assert all(p >= 0 for p in result.payouts)
    assert all(p == 0 for p, e in zip(result.payouts, result.smoothed) if e <= 0)
    assert all(0 <= a <= CREDIT_SCALE for a in result.scores)
    assert all(0 <= e <= CREDIT_SCALE for e in result.smoothed)
    assert all(0 <= w <= d for w, d in zip(result.weights, samples))
    assert result.standing == tuple(w > 0 and w == d for w, d in zip(result.weights, samples))
    assert all(p == 0 for p, f in zip(result.payouts, result.forfeits) if f is not Forfeit.NONE)
    # W > 0 whenever someone is paid: the payout's denominator never vanishes.
    paid = [j for j in range(n) if result.quorate and result.smoothed[j] > 0]
    assert not paid or sum(result.weights[j] for j in paid) > 0
    if not result.quorate:
        assert result.credited == 0 and result.verdict.fault is Forfeit.NONE and not any(result.struck)


def test_a_full_epoch_settles_in_one_transaction_of_at_most_128_kib():
    """Settlement cannot skip a report, so the largest epoch the contract admits (MAX_PEERS
    participants, all reporting) must fit in one transaction that geth and reth txpools
    accept (131,072 bytes), with room for the signed envelope, even when every byte of every
    score is non-zero (the largest encoding)."""
    import json
    from pathlib import Path

    from web3 import Web3

    from swarmtoken.config import MAX_PEERS

    artifact = Path(__file__).resolve().parents[2] / "build" / "contracts" / "SwarmLearning.json"
    abi = json.loads(artifact.read_text())["abi"]
    worst = -0x0101010101010101  # 0xfefefefefefefeff: eight non-zero bytes
    reports = [(Web3.to_checksum_address("0x" + f"{i + 1:02x}" * 20),
                Report(10**6, [worst] * MAX_PEERS, "fe" * 32, 2**MAX_PEERS - 1))
               for i in range(MAX_PEERS)]
    packed, metric = settle_arguments(reports, MAX_PEERS)
    assert len(packed) == 5 and len(packed[4]) == MAX_PEERS * MAX_PEERS * 8
    calldata = bytes.fromhex(Web3().eth.contract(abi=abi).encode_abi("settle", args=[2**255, packed, metric])[2:])
    envelope = 300  # chain id, nonce, fees, gas, to, value, access list, signature: about 120
    assert len(calldata) + envelope <= 131_072
