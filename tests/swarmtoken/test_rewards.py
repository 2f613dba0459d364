"""The Python reference reward rule: the properties DESIGN.md requires of any settlement."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmtoken.rewards import BPS, Participant, lower_median, median_scores, settle

BUDGET = 1000 * 10**18


def test_lower_median_takes_the_lower_middle_for_even_counts():
    assert lower_median([4, 1, 3, 2]) == 2
    assert lower_median([5, -1, 3]) == 3
    with pytest.raises(ValueError):
        lower_median([])


def test_one_lying_reporter_out_of_three_cannot_move_a_median():
    honest = [[10, 20, 30], [11, 19, 31]]
    liar = [[-(10**12), 10**12, -(10**12)]]
    assert median_scores(honest + liar, 3) == [10, 20, 30]


def test_score_vector_of_wrong_length_is_refused():
    with pytest.raises(ValueError, match="expected 3"):
        median_scores([[1, 2]], 3)


def test_non_positive_scores_are_paid_nothing():
    result = settle(BUDGET, [Participant(100)] * 3, [(0, [5, 0, -5])], beta_bps=5000, sample_cap=1000)
    assert result.payouts[1] == result.payouts[2] == 0
    assert result.payouts[0] == BUDGET


def test_pure_data_share_splits_by_capped_samples():
    participants = [Participant(100), Participant(300), Participant(10**9)]
    result = settle(BUDGET, participants, [(0, [1, 1, 1])], beta_bps=BPS, sample_cap=300)
    assert result.payouts == (BUDGET * 100 // 700, BUDGET * 300 // 700, BUDGET * 300 // 700)


def test_non_reporter_forfeits_to_the_carry_and_others_do_not_gain():
    everyone = settle(BUDGET, [Participant(100)] * 3, [(0, [1, 2, 3])], beta_bps=0, sample_cap=1000)
    lazy = settle(
        BUDGET,
        [Participant(100), Participant(100, reported=False), Participant(100)],
        [(0, [1, 2, 3])],
        beta_bps=0,
        sample_cap=1000,
    )
    assert lazy.payouts[1] == 0 and lazy.forfeited[1]
    assert lazy.payouts[0] == everyone.payouts[0] and lazy.payouts[2] == everyone.payouts[2]
    assert lazy.carried == everyone.carried + everyone.payouts[1]


def test_nobody_reporting_carries_the_whole_budget():
    result = settle(BUDGET, [Participant(100)] * 3, [], beta_bps=3000, sample_cap=1000)
    assert result.credited == 0 and result.carried == BUDGET and result.median_metric is None


@settings(max_examples=300, deadline=None)
@given(
    budget=st.integers(0, 10**30),
    samples=st.lists(st.integers(1, 2**64 - 1), min_size=1, max_size=16),
    data=st.data(),
    beta_bps=st.integers(0, BPS),
    cap=st.integers(1, 2**64 - 1),
)
def test_payouts_never_exceed_the_budget(budget, samples, data, beta_bps, cap):
    n = len(samples)
    scores = st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)
    reports = data.draw(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), scores), max_size=5))
    result = settle(budget, [Participant(s) for s in samples], reports, beta_bps=beta_bps, sample_cap=cap)
    assert sum(result.payouts) == result.credited <= budget
    assert result.carried == budget - result.credited >= 0
    assert all(p >= 0 for p in result.payouts)
    assert all(p == 0 for p, m in zip(result.payouts, result.medians) if m <= 0)


def test_a_full_epoch_settles_in_one_transaction_of_at_most_128_kib():
    """Settlement cannot skip a report, so the largest epoch the contract admits (MAX_PEERS
    participants, all reporting) must fit in one transaction that geth and reth txpools
    accept (131,072 bytes), with room for the signed envelope, even when every byte of every
    score is non-zero (the largest encoding)."""
    import json
    from pathlib import Path

    from web3 import Web3

    from swarmtoken.config import MAX_PEERS
    from swarmtoken.rewards import settle_arguments

    artifact = Path(__file__).resolve().parents[2] / "build" / "contracts" / "SwarmLearning.json"
    abi = json.loads(artifact.read_text())["abi"]
    worst = -0x0101010101010101  # 0xfefefefefefefeff: eight non-zero bytes
    reports = [(Web3.to_checksum_address("0x" + f"{i + 1:02x}" * 20), worst, [worst] * MAX_PEERS)
               for i in range(MAX_PEERS)]
    packed, medians, metric = settle_arguments(reports, MAX_PEERS)
    assert len(packed[2]) == MAX_PEERS * MAX_PEERS * 8
    calldata = bytes.fromhex(Web3().eth.contract(abi=abi).encode_abi("settle", args=[2**255, packed, medians,
                                                                                     metric])[2:])
    envelope = 300  # chain id, nonce, fees, gas, to, value, access list, signature: about 120
    assert len(calldata) + envelope <= 131_072
