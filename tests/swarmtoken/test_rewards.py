"""The Python reference reward rule: the properties DESIGN.md requires of any settlement,
the validators' aggregate (self ignored, trimmed mean), smoothing and good standing, the
quorum, the leader's verdict (contradicted merge, censored updates, a zero-hash majority),
the forfeit precedence (over-declaration last), and the packing of the five-field reports
settlement takes back."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmtoken.rewards import (
    BPS,
    ZERO_HASH,
    Forfeit,
    Participant,
    Report,
    Rule,
    forfeit_of,
    in_good_standing,
    is_quorate,
    judge_leader,
    lower_median,
    others_scores,
    settle,
    settle_arguments,
    smooth,
    strict_majority,
    strikes_after,
    trim_count,
    trimmed_mean,
    truncated_div,
)

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


@pytest.mark.parametrize("m, trim_bps, t", [(0, 2500, 0), (1, 2500, 0), (2, 2500, 0), (3, 2500, 1), (4, 2500, 1),
                                            (5, 2500, 2), (7, 2500, 2), (8, 2500, 2), (9, 2500, 3), (7, 0, 0),
                                            (7, 5000, 3), (112, 2500, 28)])
def test_trim_count_rounds_up_but_keeps_at_least_one_value(m, trim_bps, t):
    assert trim_count(m, trim_bps) == t


def test_trimmed_mean_drops_both_ends_and_truncates_toward_zero():
    assert trimmed_mean([7, 1, 2, 100, 3, -50, 4], 2500) == (truncated_div(2 + 3 + 4, 3), 2, 4)
    assert trimmed_mean([-1, -2], 2500) == (-1, -2, -1)  # -3 / 2 truncates to -1, not -2
    assert trimmed_mean([5, 5, 5, 9], 2500) == (5, 5, 5)
    assert trimmed_mean([], 2500) == (0, 0, 0)
    assert truncated_div(-7, 2) == -3 and truncated_div(7, 2) == 3


def test_a_reporters_score_for_itself_is_ignored():
    a, b, c = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20
    reports = [(a, [10**9, 1, 2]), (b.upper(), [3, 10**9, 4]), (c, [5, 6, 10**9])]
    assert others_scores(reports, [a, b, c]) == [[3, 5], [1, 6], [2, 4]]
    # A reporter that is not a participant (its update was left out) counts for everyone.
    assert others_scores(reports[:1], [b, c, "0x" + "dd" * 20]) == [[10**9], [1], [2]]


def test_one_liar_of_eight_moves_nobody_beyond_the_honest_spread():
    """Seven honest validators agree within 10 on each node; the liar gives itself the
    bound and everyone else minus the bound. With t = 2 trimmed per end, every honest
    node's score stays inside its honest scores' range, and the liar's self-score is ignored."""
    nodes = [f"0x{i:040x}" for i in range(1, 9)]
    honest = [[100 * (j + 1) + r for j in range(8)] for r in range(7)]
    liar = [-(10**9)] * 7 + [10**9]
    scores = settle(BUDGET, [Participant(100, node=n) for n in nodes],
                    [Report(0, v, valid=ALL, reporter=nodes[r]) for r, v in enumerate(honest)] + [Report(0, liar, valid=ALL, reporter=nodes[7])],
                    rule=unsmoothed(3000)).scores
    for j in range(7):
        others = [honest[r][j] for r in range(7) if r != j]
        assert min(others) <= scores[j] <= max(others)
    assert scores[7] == lower_median([honest[r][7] for r in range(7)])


def test_score_vector_of_wrong_length_is_refused():
    with pytest.raises(ValueError, match="expected 3"):
        others_scores([("", [1, 2])], ["a", "b", "c"])


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
    assert smooth(0, 101, 5000) == 50
    assert smooth(0, -101, 5000) == -50
    assert smooth(40, -101, 5000) == -30  # (-101 + 40) / 2 = -30.5
    assert smooth(40, 7, BPS) == 7  # no smoothing
    assert smooth(40, 7, 1) == 39  # 0.0001 * 7 + 0.9999 * 40 = 39.9967, truncated


def test_evidence_accumulates_so_one_bad_epoch_does_not_zero_an_honest_node():
    """A node that earned 100 before and scores -20 this epoch stays positive and is paid."""
    participants = [Participant(100, node="a", smoothed=100), Participant(100, node="b", smoothed=100)]
    result = settle(BUDGET, participants, [Report(0, [-20, 50], valid=ALL, reporter="c")] * 2,
                    rule=Rule(smoothing_bps=5000))
    assert result.scores == (-20, 50) and result.smoothed == (40, 75)
    assert result.standing == (True, True) and all(p > 0 for p in result.payouts)


def test_without_evidence_the_smoothed_score_stays_and_no_strike_is_due():
    """The only reporter is the participant itself: its own score does not count."""
    result = settle(BUDGET, [Participant(100, node="a", smoothed=-7)], [Report(0, [10**9], valid=ALL, reporter="a")])
    assert result.quorate and result.evidence == (False,) and result.scores == (0,) and result.smoothed == (-7,)
    assert result.struck == (False,) and strikes_after(1, result.struck[0]) == 0


def test_a_smoothed_score_that_moved_to_zero_or_below_is_struck():
    """0 is no contribution: struck like a negative score; a positive one is not."""
    participants = [Participant(100, node=n) for n in "abc"]
    result = settle(BUDGET, participants, [Report(0, [0, -8, 8], valid=ALL, reporter=r) for r in "xyz"])
    assert result.smoothed == (0, -1, 1) and result.struck == (True, True, False)


def test_good_standing_needs_a_share_of_the_average_score_per_sample():
    """Three nodes of 100 samples with smoothed scores 100, 100 and 5: the average per
    sample over the positive ones is 205 / 300; the third has 5 / 100, below 20 % of it."""
    assert in_good_standing([100, 100, 5], [100, 100, 100], 2000) == [True, True, False]
    assert in_good_standing([100, 100, 5], [100, 100, 100], 0) == [True, True, True]
    assert in_good_standing([0, -3, 5], [1, 1, 1], 0) == [False, False, True]
    # Per sample: a node with a tenth of the data needs a tenth of the score.
    assert in_good_standing([100, 10], [1000, 100], 10_000) == [True, True]


def test_a_node_adding_noise_around_zero_is_paid_nothing_not_even_for_its_data():
    participants = [Participant(100, node=n) for n in "abc"]
    reports = [Report(0, [1000, 1000, 3], valid=ALL, reporter=r) for r in "xyz"]
    result = settle(BUDGET, participants, reports, rule=Rule(beta_bps=BPS))
    assert result.standing == (True, True, False) and result.payouts[2] == 0
    assert result.payouts[0] == result.payouts[1] == BUDGET // 2


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
    reports = [Report(900_000, [10, 20, 30], OTHER, 0b11111)] * 2
    result = settle(BUDGET, participants, reports, commits=5, participants_bitmap=0b00111,
                    published_hash=PUBLISHED)
    assert not result.quorate
    assert result.payouts == (0, 0, 0) and result.credited == 0 and result.carried == BUDGET
    assert result.scores == (10, 20, 30)  # scores are still taken, just not paid or smoothed
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
    (reporters, metrics, hashes, valids, packed), cuts, metric = settle_arguments(reports, ["", "", ""])
    assert reporters == [a, b]
    assert metrics == [700_000, 500_000]
    assert hashes == [bytes.fromhex(PUBLISHED), bytes(32)]
    assert all(isinstance(h, bytes) and len(h) == 32 for h in hashes)
    assert valids == [0b101, 0]
    # 8 bytes per score, big-endian two's complement, report after report.
    assert packed == bytes.fromhex(
        "0000000000000001" "ffffffffffffffff" "7fffffffffffffff"
        "8000000000000000" "0000000000000000" "0000000000000003"
    )
    # Two values each, none trimmed: the cuts are both values, in order.
    assert cuts == [-(2**63), 1, -1, 0, 3, 2**63 - 1]
    assert metric == 500_000
    # A reporter's own score is left out of its cuts.
    _, cuts, _ = settle_arguments(reports, [a, "", b])
    assert cuts == [-(2**63), -(2**63), -1, 0, 2**63 - 1, 2**63 - 1]


def test_settle_arguments_of_an_epoch_nobody_reported_in():
    assert settle_arguments([], [""] * 4) == (([], [], [], [], b""), [0] * 8, 0)


def test_settle_arguments_refuse_a_score_vector_of_the_wrong_length():
    with pytest.raises(ValueError, match="expected 2"):
        settle_arguments([("0x" + "aa" * 20, Report(0, [1, 2, 3]))], ["", ""])


# ---------------------------------------------------------------- properties


hashes = st.sampled_from([PUBLISHED, OTHER, ZERO_HASH])


@settings(max_examples=300, deadline=None)
@given(
    budget=st.integers(0, 4 * 10**30),
    samples=st.lists(st.integers(1, 2**64 - 1), min_size=1, max_size=16),
    data=st.data(),
    rule=st.builds(Rule, st.integers(0, BPS), st.integers(0, BPS // 2), st.integers(1, BPS), st.integers(0, BPS)),
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
    smoothed = data.draw(st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n))
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
    assert all(p == 0 for p, ok in zip(result.payouts, result.standing) if not ok)
    assert all(abs(e) <= 10**9 for e in result.smoothed)
    assert all(p == 0 for p, f in zip(result.payouts, result.forfeits) if f is not Forfeit.NONE)
    if not result.quorate:
        assert result.credited == 0 and result.verdict.fault is Forfeit.NONE


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
    packed, cuts, metric = settle_arguments(reports, [r for r, _ in reports])
    assert len(packed) == 5 and len(packed[4]) == MAX_PEERS * MAX_PEERS * 8
    calldata = bytes.fromhex(Web3().eth.contract(abi=abi).encode_abi("settle", args=[2**255, packed, cuts,
                                                                                     metric])[2:])
    envelope = 300  # chain id, nonce, fees, gas, to, value, access list, signature: about 120
    assert len(calldata) + envelope <= 131_072
