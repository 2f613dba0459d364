"""Re-check every token the swarm paid, from the chain alone.

For every settled epoch the audit recomputes the settlement from the on-chain reports
with the Python reference rule (`swarmtoken.rewards`) and compares medians, payouts,
forfeits, credited total and carry with what the contract emitted. It then checks the
money identities: the budget of each epoch is the reward plus the previous carry (within
the token cap); the token supply equals everything credited; the swarm holds exactly the
unclaimed credits; every account's claimable balance equals its credits minus its claims.
Optionally it fetches every parameter file still reachable and checks its on-chain hash.
The first discrepancy is reported by name, so an operator knows where to look.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .ledger import EpochRecord, Ledger
from .rewards import Participant, settle


@dataclass
class AuditReport:
    checks: int = 0
    discrepancies: list[str] = field(default_factory=list)
    files_checked: int = 0
    files_unreachable: int = 0

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def expect(self, condition: bool, message: str) -> None:
        self.checks += 1
        if not condition:
            self.discrepancies.append(message)


def _recompute(record: EpochRecord, ledger: Ledger, beta_bps: int, sample_cap: int) -> Any:
    by_index = {c.index: c for c in record.commits}
    reporters = {r.reporter for r in record.reports}
    skipped = set(record.skipped)
    participants = [
        Participant(
            samples=by_index[i].samples,
            reported=by_index[i].node in reporters,
            skipped_leader=by_index[i].node in skipped,
            removed=ledger.removed_at(by_index[i].node, record.settled_at),
        )
        for i in record.participants
    ]
    reports = [(r.metric, r.scores) for r in record.reports]
    return settle(record.budget, participants, reports, beta_bps=beta_bps, sample_cap=sample_cap)


def audit_settlements(ledger: Ledger, *, reward_per_epoch: int, beta_bps: int, sample_cap: int,
                      capped: bool = False, report: AuditReport | None = None) -> AuditReport:
    """Recompute each settled epoch and the carry chain between epochs. Under a token cap
    a budget may be smaller than reward + carry (the cap ends emission), never larger."""
    report = report or AuditReport()
    carry = 0

    def check_budget(number: int, budget: int) -> None:
        expected = reward_per_epoch + carry
        ok = budget <= expected if capped else budget == expected
        report.expect(ok, f"epoch {number}: budget {budget}, reward {reward_per_epoch} + carry {carry} = {expected}")

    for number in sorted(ledger.epochs):
        record = ledger.epochs[number]
        if record.abandoned:
            check_budget(number, record.carried)
            carry = record.carried
            continue
        if record.settled_at is None:
            continue
        check_budget(number, record.budget)
        expected = _recompute(record, ledger, beta_bps, sample_cap)
        nodes = record.participant_nodes()
        report.expect([o.node for o in record.outcomes] == nodes,
                      f"epoch {number}: settled participants {[o.node for o in record.outcomes]} != published {nodes}")
        for outcome, median, payout, forfeited in zip(record.outcomes, expected.medians, expected.payouts, expected.forfeited):
            report.expect(outcome.median_score == median,
                          f"epoch {number}: {outcome.node} median score {outcome.median_score}, reference {median}")
            report.expect(outcome.payout == payout,
                          f"epoch {number}: {outcome.node} paid {outcome.payout}, reference rule gives {payout}")
            report.expect(outcome.forfeited == forfeited,
                          f"epoch {number}: {outcome.node} forfeited={outcome.forfeited}, reference says {forfeited}")
        report.expect(record.credited == expected.credited,
                      f"epoch {number}: credited {record.credited}, reference {expected.credited}")
        report.expect(record.carried == expected.carried,
                      f"epoch {number}: carried {record.carried}, reference {expected.carried}")
        report.expect(record.median_metric == expected.median_metric,
                      f"epoch {number}: median metric {record.median_metric}, reference {expected.median_metric}")
        carry = record.carried
    return report


def audit_balances(ledger: Ledger, *, total_supply: int, swarm_balance: int,
                   claimable: Callable[[str], int], report: AuditReport | None = None) -> AuditReport:
    """Supply = all credits; swarm holds the unclaimed ones; each account's claimable
    balance = its credits - its claims."""
    report = report or AuditReport()
    credited: dict[str, int] = defaultdict(int)
    for record in ledger.epochs.values():
        for outcome in record.outcomes:
            credited[outcome.node] += outcome.payout
    claimed: dict[str, int] = defaultdict(int)
    for account, amount in ledger.claims:
        claimed[account] += amount
    total_credited = sum(credited.values())
    total_claimed = sum(claimed.values())
    report.expect(total_supply == total_credited,
                  f"token supply {total_supply} != total credited {total_credited}")
    report.expect(swarm_balance == total_credited - total_claimed,
                  f"swarm holds {swarm_balance}, unclaimed credits are {total_credited - total_claimed}")
    for account in sorted(set(credited) | set(claimed)):
        owed = credited[account] - claimed[account]
        onchain = claimable(account)
        report.expect(onchain == owed, f"{account}: claimable {onchain}, credits - claims = {owed}")
    return report


def audit_files(ledger: Ledger, download: Callable[..., bytes] | None = None,
                report: AuditReport | None = None) -> AuditReport:
    """Every parameter file still served must hash to its on-chain commitment.

    ``download(uri, expected_sha256, timeout=, retries=)`` is the store's size-capped
    `swarmtoken.store.download` unless given: an unreachable file is counted, not a
    discrepancy (nodes may stop serving old epochs); a mismatch or an oversized answer is."""
    from .store import FetchError, UnreachableError
    from .store import download as store_download

    download = download or store_download
    report = report or AuditReport()
    for number in sorted(ledger.epochs):
        record = ledger.epochs[number]
        files = [(c.uri, c.param_hash, f"epoch {number} commit of {c.node}") for c in record.commits]
        if record.merged_uri:
            files.append((record.merged_uri, record.merged_hash, f"epoch {number} merged model"))
        for uri, expected, label in files:
            try:
                download(uri, expected, timeout=5.0, retries=0)
            except UnreachableError:
                report.files_unreachable += 1
                continue
            except FetchError as exc:
                report.files_checked += 1
                report.expect(False, f"{label}: file at {exc}")
                continue
            report.files_checked += 1
            report.expect(True, label)
    return report


def audit_swarm(swarm: Any, token: Any, *, from_block: int = 0, check_files: bool = False) -> AuditReport:
    """Run every audit against a deployed swarm (brownie contracts). Events and balances
    are all read at one block, so claims landing meanwhile cannot look like a mismatch."""
    from brownie import web3

    from .ledger import read_ledger

    block = web3.eth.block_number
    config = swarm.config()
    ledger = read_ledger(swarm, from_block, block)
    report = audit_settlements(ledger, reward_per_epoch=int(config["rewardPerEpoch"]),
                               beta_bps=int(config["betaBps"]), sample_cap=int(config["sampleCap"]),
                               capped=token.cap() != 0)
    audit_balances(ledger, total_supply=token.totalSupply(block_identifier=block),
                   swarm_balance=token.balanceOf(swarm, block_identifier=block),
                   claimable=lambda account: swarm.claimable(account, block_identifier=block), report=report)
    if check_files:
        audit_files(ledger, report=report)
    return report
