"""Re-check every token the swarm paid, from the chain alone.

For every settled epoch, in epoch order, the audit recomputes the settlement from the
on-chain reports with the Python reference rule (`swarmtoken.rewards`, with the swarm's
deployed `Rule`) and compares each participant's score, smoothed score, good standing,
payout and forfeit reason, the leader's verdict (disputed merge, censored updates, the
epoch's model hash), credited total and carry with what the contract emitted. The
smoothed scores are replayed, not read back: each epoch starts from the smoothed scores
the reference itself computed in earlier epochs (0 for a node never settled; leaving and
re-enrolling keep it, as on chain), so a contract that lost, reset or skewed one is
caught in the first epoch it matters, and at the end every member's on-chain smoothed
score must equal the replayed one. It then checks the money identities: the budget of
each epoch is the reward plus the previous carry (within the token cap); each epoch's
rejected updates are the reference's, and every balance forfeited went with a suspension of
its account in that epoch and into the carry; the token supply equals everything credited
minus everything forfeited (burned); the swarm holds exactly the unclaimed credits; every
account's claimable balance equals its credits minus its claims and forfeits. Optionally it fetches
every parameter file still reachable from under its committer's enrolled base URI and
checks it opens its on-chain commitment; a file that does not, or that two commitments
resolve to, is a *finding* (misbehaviour the protocol handled), and a discrepancy only
if its committer was paid for it. Declared sample counts above the allowance are
findings too. Each discrepancy is reported by name, so an operator knows where to look.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chain.ledger import EpochRecord, Ledger
from .rewards import (CLAIM_AFTER, CREDIT_SCALE, VOTE_CAP_BPS, VOTE_FLOOR, VOTE_RULE_REVISION, Participant, Rule,
                      Settlement, settle)
from .units import SCORE_SCALE

#: The contract constants the reference rule hard-codes too (``SwarmLearning`` getter ->
#: the reference's value): a contract deployed by another version of this package settles
#: by another rule, and recomputing it with this one would blame every epoch.
SETTLEMENT_CONSTANTS = {"SCORE_BOUND": SCORE_SCALE, "CREDIT_SCALE": CREDIT_SCALE, "VOTE_CAP_BPS": VOTE_CAP_BPS,
                        "VOTE_FLOOR": VOTE_FLOOR, "VOTE_RULE_REVISION": VOTE_RULE_REVISION,
                        "CLAIM_AFTER": CLAIM_AFTER}


@dataclass
class AuditReport:
    checks: int = 0
    discrepancies: list[str] = field(default_factory=list)
    files_checked: int = 0
    files_unreachable: int = 0
    findings: list[str] = field(default_factory=list)
    #: Each node's smoothed score after the last settled epoch, as `audit_settlements`
    #: replayed it with the reference rule.
    smoothed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def expect(self, condition: bool, message: str) -> None:
        self.checks += 1
        if not condition:
            self.discrepancies.append(message)

    def summary(self) -> str:
        """What was checked, one line."""
        return f"{self.checks} checks, {self.files_checked} files verified, {self.files_unreachable} unreachable"

    def discrepancy_lines(self) -> list[str]:
        """Every discrepancy, numbered, one line each (what `swarm audit --all` prints)."""
        total = len(self.discrepancies)
        return [f"discrepancy {i}/{total}: {message}" for i, message in enumerate(self.discrepancies, 1)]

    def failure(self, *, listed: bool = False) -> str:
        """The verdict of a failed audit, one line: the first discrepancy and how to see the
        rest, or (``listed``: `discrepancy_lines` were printed) how many there are."""
        total = len(self.discrepancies)
        plural = "discrepancy" if total == 1 else "discrepancies"
        if listed:
            return f"audit failed: {total} {plural}, listed above"
        if total == 1:
            return f"audit failed: {self.discrepancies[0]} (the only discrepancy)"
        return (f"audit failed: {self.discrepancies[0]} ({total} {plural} in all; "
                "`swarm audit --all` lists them)")


def audit_constants(read: Callable[[str], int | None], report: AuditReport | None = None) -> AuditReport:
    """Check that the contract's settlement constants are the reference's; ``read(name)``
    returns the contract's value, or None when the contract has no such getter (it predates
    the constant)."""
    report = report or AuditReport()
    for name, ours in SETTLEMENT_CONSTANTS.items():
        theirs = read(name)
        if theirs is None:
            report.expect(False, f"the contract has no {name} (this version's reference rule uses {ours}): "
                                 "an older version of swarm deployed it; audit it with that version")
        else:
            report.expect(theirs == ours, f"the contract's {name} is {theirs}, this version's reference rule uses "
                                          f"{ours}: another version of swarm deployed it; audit it with that version")
    return report


def _recompute(record: EpochRecord, ledger: Ledger, rule: Rule, smoothed: Mapping[str, int]) -> Settlement:
    """The reference settlement of ``record``, each participant starting from its smoothed
    score in ``smoothed`` (0 if absent)."""
    by_index = {c.index: c for c in record.commits}
    reporters = {r.reporter for r in record.reports}
    skipped = set(record.skipped)
    participants = [
        Participant(
            samples=by_index[i].samples,
            reported=by_index[i].node in reporters,
            skipped_leader=by_index[i].node in skipped,
            removed=ledger.removed_at(by_index[i].node, record.settled_at),
            leader=by_index[i].node == record.leader,
            over_declared=by_index[i].declared > by_index[i].samples,
            node=by_index[i].node,
            smoothed=smoothed.get(by_index[i].node, 0),
        )
        for i in record.participants
    ]
    return settle(record.budget, participants, [r.as_report() for r in record.reports], rule=rule,
                  commits=len(record.commits), participants_bitmap=sum(1 << i for i in record.participants),
                  published_hash=record.merged_hash or "")


def audit_settlements(ledger: Ledger, *, reward_per_epoch: int, rule: Rule,
                      capped: bool = False, report: AuditReport | None = None) -> AuditReport:
    """Recompute each settled epoch with ``rule`` (the swarm's, see `config.chain_rule`),
    replaying the smoothed scores from the first epoch of ``ledger`` (so the ledger must
    start at the deployment), and the carry chain between epochs. Under a token cap a
    budget may be smaller than reward + carry (the cap ends emission), never larger. The
    replayed smoothed scores are left in ``report.smoothed``."""
    report = report or AuditReport()
    carry = 0
    smoothed = report.smoothed

    def check_budget(number: int, budget: int) -> None:
        expected = reward_per_epoch + carry
        ok = budget <= expected if capped else budget == expected
        report.expect(ok, f"epoch {number}: budget {budget}, reward {reward_per_epoch} + carry {carry} = {expected}")

    for number in sorted(ledger.epochs):
        record = ledger.epochs[number]
        for commit in record.commits:
            if commit.declared > commit.samples:
                report.findings.append(f"epoch {number}: {commit.node} declared {commit.declared} samples, "
                                       f"its allowance counts {commit.samples}")
        if record.abandoned:
            check_budget(number, record.carried)
            carry = record.carried
            continue
        if record.settled_at is None:
            continue
        check_budget(number, record.budget)
        expected = _recompute(record, ledger, rule, smoothed)
        report.findings.extend(f"epoch {number}: {dispute}" for dispute in record.disputes)
        nodes = record.participant_nodes()
        smoothed.update(zip(nodes, expected.smoothed))
        report.expect([o.node for o in record.outcomes] == nodes,
                      f"epoch {number}: settled participants {[o.node for o in record.outcomes]} != published {nodes}")
        for outcome, score, after, standing, payout, forfeit in zip(record.outcomes, expected.scores, expected.smoothed,
                                                                   expected.standing, expected.payouts,
                                                                   expected.forfeits):
            report.expect(outcome.score == score,
                          f"epoch {number}: {outcome.node} score {outcome.score}, reference {score}")
            report.expect(outcome.smoothed == after,
                          f"epoch {number}: {outcome.node} smoothed score {outcome.smoothed}, reference {after}")
            report.expect(outcome.standing == standing, f"epoch {number}: {outcome.node} in good "
                          f"standing={outcome.standing}, reference says {standing}")
            report.expect(outcome.payout == payout,
                          f"epoch {number}: {outcome.node} paid {outcome.payout}, reference rule gives {payout}")
            report.expect(outcome.forfeit == forfeit,
                          f"epoch {number}: {outcome.node} forfeit {outcome.forfeit.name}, reference says {forfeit.name}")
        verdict = expected.verdict
        report.expect(record.model_hash == verdict.model_hash,
                      f"epoch {number}: model {record.model_hash}, reference {verdict.model_hash}")
        report.expect(len(record.disputes) == len(verdict.censored) + (verdict.model_hash != record.merged_hash),
                      f"epoch {number}: {len(record.disputes)} disputes emitted, reference finds "
                      f"{len(verdict.censored) + (verdict.model_hash != record.merged_hash)}")
        report.expect(record.quorate == expected.quorate,
                      f"epoch {number}: quorate={record.quorate}, reference says {expected.quorate}")
        report.expect(record.credited == expected.credited,
                      f"epoch {number}: credited {record.credited}, reference {expected.credited}")
        committers = {c.index: c.node for c in record.commits}
        rejected = [committers[i] for i in expected.rejected]
        report.expect(record.rejected == rejected,
                      f"epoch {number}: rejected updates of {record.rejected}, reference rejects {rejected}")
        report.findings.extend(f"epoch {number}: {node}'s update was rejected (left out; no strict majority found it "
                               "valid)" for node in record.rejected)
        suspended = {event.account for event in ledger.membership if event.kind == "suspended" and event.epoch == number}
        for account, amount in record.forfeits:
            report.expect(account in suspended, f"epoch {number}: {account} forfeited {amount} without a suspension")
        # a suspension forfeits exactly the unclaimed balance: earlier credits, and the
        # epoch's own payout (its ParticipantSettled follows the suspension in the log)
        paid = {o.node: o.payout for o in record.outcomes}
        taken = dict(record.forfeits)
        for account in sorted(suspended):
            balance = record.owed_at_suspension.get(account, 0) + paid.get(account, 0)
            report.expect(taken.get(account, 0) == balance,
                          f"epoch {number}: {account}'s suspension forfeited {taken.get(account, 0)}, its "
                          f"unclaimed balance was {balance}")
        forfeited = sum(amount for _, amount in record.forfeits)
        report.expect(record.carried == expected.carried + forfeited,
                      f"epoch {number}: carried {record.carried}, reference {expected.carried} + forfeited {forfeited}")
        report.expect(record.median_metric == expected.median_metric,
                      f"epoch {number}: median metric {record.median_metric}, reference {expected.median_metric}")
        carry = record.carried
    return report


def audit_smoothed_scores(ledger: Ledger, smoothed: Mapping[str, int], smoothed_of: Callable[[str], int],
                          report: AuditReport | None = None) -> AuditReport:
    """Every account the ledger knows (member events or settlements) holds on chain
    (``smoothed_of(account)``, i.e. ``memberOf(account).smoothedScore``) the smoothed score
    the replay left it (``smoothed``, from `audit_settlements`; 0 if never settled): the
    state the next epoch's payouts and strikes start from."""
    report = report or AuditReport()
    for account in sorted(set(smoothed) | {event.account for event in ledger.membership}):
        on_chain, replayed = smoothed_of(account), smoothed.get(account, 0)
        report.expect(on_chain == replayed, f"{account}: smoothed score {on_chain} on chain, the replay of every "
                      f"settled epoch gives {replayed}")
    return report


def audit_balances(ledger: Ledger, *, total_supply: int, swarm_balance: int,
                   claimable: Callable[[str], int], report: AuditReport | None = None) -> AuditReport:
    """Supply = all credits - all forfeits (burned); swarm holds the unclaimed ones; each
    account's claimable balance = its credits - its claims - its forfeits."""
    report = report or AuditReport()
    credited: dict[str, int] = defaultdict(int)
    forfeited: dict[str, int] = defaultdict(int)
    for record in ledger.epochs.values():
        for outcome in record.outcomes:
            credited[outcome.node] += outcome.payout
        for account, amount in record.forfeits:
            forfeited[account] += amount
    claimed: dict[str, int] = defaultdict(int)
    for account, amount in ledger.claims:
        claimed[account] += amount
    total_credited = sum(credited.values()) - sum(forfeited.values())
    total_claimed = sum(claimed.values())
    report.expect(total_supply == total_credited,
                  f"token supply {total_supply} != total credited - forfeited {total_credited}")
    report.expect(swarm_balance == total_credited - total_claimed,
                  f"swarm holds {swarm_balance}, unclaimed credits are {total_credited - total_claimed}")
    for account in sorted(set(credited) | set(claimed) | set(forfeited)):
        owed = credited[account] - claimed[account] - forfeited[account]
        onchain = claimable(account)
        report.expect(onchain == owed, f"{account}: claimable {onchain}, credits - claims - forfeits = {owed}")
    return report


def audit_files(ledger: Ledger, base_uri_of: Callable[[str], str], download: Callable[..., bytes] | None = None,
                report: AuditReport | None = None) -> AuditReport:
    """Every committed file still served under its committer's base URI, or else in the
    copy the epoch's leader keeps of what it merged, must open its commitment; no two
    commitments may resolve to one file; and every epoch's model must still hash to its
    on-chain hash where the leader serves it.

    ``download(url, timeout=, retries=)`` is the store's size-capped
    `swarmtoken.store.download_any` unless given. An unreachable file is counted, not a
    discrepancy (nodes may stop serving old epochs), and an unreachable commitment is named
    in the findings. A file that does not open its
    commitment, or one committed twice, is a finding, and a discrepancy if its committer
    was paid that epoch."""
    from .store import FetchError, UnreachableError, commit_url, commitment_of, sha256_hex, shared_files
    from .store.client import download_any
    from .store.server import ROUTE

    download = download or download_any
    report = report or AuditReport()

    def get(url: str, label: str) -> bytes | None:
        try:
            data = download(url, timeout=5.0, retries=0)
        except UnreachableError:
            report.files_unreachable += 1
            return None
        except FetchError as exc:
            report.files_checked += 1
            report.findings.append(f"{label}: {exc}")
            return None
        report.files_checked += 1
        return data

    for number in sorted(ledger.epochs):
        record = ledger.epochs[number]
        paid = {o.node for o in record.outcomes if o.payout > 0}
        bad: dict[str, str] = {}
        opened: dict[str, str] = {}
        participants = set(record.participant_nodes())
        for commit in record.commits:
            label = f"epoch {number} commit of {commit.node}"
            data = get(commit_url(base_uri_of(commit.node), commit.commitment), label)
            if data is not None and commitment_of(commit.node, number, sha256_hex(data)) == commit.commitment:
                opened[commit.node] = sha256_hex(data)
                continue
            problem = ("not served (its committer's store did not answer)" if data is None
                       else "the served file does not open its commitment")
            if commit.node in participants and record.leader not in (None, commit.node):
                # The leader keeps what it merged: if its copy opens the commitment, the
                # update was the committed one and paying for it was right.
                copy = get(commit_url(base_uri_of(record.leader), commit.commitment), label)
                if copy is not None and commitment_of(commit.node, number, sha256_hex(copy)) == commit.commitment:
                    report.findings.append(f"{label}: {problem}; the leader's copy opens it")
                    opened[commit.node] = sha256_hex(copy)
                    continue
            if data is None:
                report.findings.append(f"{label}: {problem}")
            else:
                bad[commit.node] = f"{label}: {problem}"
        for sha, nodes in shared_files(opened).items():
            for node in nodes:
                bad.setdefault(node, f"epoch {number}: {', '.join(nodes)} committed the same file {sha[:12]}")
        for node, finding in bad.items():
            report.findings.append(finding)
            report.expect(node not in paid, f"{finding}, yet {node} was paid")
        if record.model_hash and record.leader:
            label = f"epoch {number} model"
            holders = list(dict.fromkeys([record.leader] + [r.reporter for r in record.reports
                                                            if r.merged_hash == record.model_hash]))
            for holder in holders:
                data = get(f"{base_uri_of(holder)}{ROUTE}{record.model_hash}", label)
                if data is not None:
                    report.expect(sha256_hex(data) == record.model_hash,
                                  f"{label}: {holder} serves a file that does not hash to {record.model_hash[:12]}")
                    break
            else:
                report.findings.append(f"{label} {record.model_hash[:12]} is served by nobody (asked the leader "
                                       f"and {len(holders) - 1} reporter(s) that recomputed it)")
    return report


def audit_swarm(swarm: Any, token: Any, *, from_block: int = 0, check_files: bool = False) -> AuditReport:
    """Run every audit against a deployed swarm (brownie contracts). Events and balances
    are all read at one block, so claims landing meanwhile cannot look like a mismatch."""
    from brownie import web3
    from brownie.exceptions import VirtualMachineError

    from .config import chain_rule
    from .chain.ledger import read_ledger

    def constant(name: str) -> int | None:
        try:
            return int(getattr(swarm, name)())
        except VirtualMachineError:  # no such getter: the call reverts
            return None

    block = web3.eth.block_number
    config = swarm.config()
    ledger = read_ledger(swarm, from_block, block)
    report = audit_settlements(ledger, reward_per_epoch=int(config["rewardPerEpoch"]), rule=chain_rule(config),
                               capped=token.cap() != 0, report=audit_constants(constant))
    audit_smoothed_scores(ledger, report.smoothed,
                          lambda account: int(swarm.memberOf(account, block_identifier=block)["smoothedScore"]),
                          report=report)
    audit_balances(ledger, total_supply=token.totalSupply(block_identifier=block),
                   swarm_balance=token.balanceOf(swarm, block_identifier=block),
                   claimable=lambda account: swarm.claimable(account, block_identifier=block), report=report)
    if check_files:
        audit_files(ledger, swarm.baseUriOf, report=report)
    return report
