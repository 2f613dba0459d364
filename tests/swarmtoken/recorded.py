"""Recorded SwarmLearning events for chain-free tests: scripted epochs settled with the
reference rule, in the shape `ledger.assemble` reads (what `read_ledger` gets from brownie)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarmtoken.chain.ledger import Ledger, assemble
from swarmtoken.rewards import Participant, Report, Rule, Settlement, settle
from tests.fixtures.scores import in_units

A, B, C, D = ("0x" + c * 40 for c in "abcd")
MERGED = "11" * 32
REWARD = 1000 * 10**18
RULE = Rule(beta_bps=3000, smoothing_bps=5000, standing_bps=2000)


@dataclass
class Log:
    """What `assemble` reads of a decoded log."""

    args: dict[str, Any]
    blockNumber: int
    logIndex: int


@dataclass
class RecordedSwarm:
    """Records the events SwarmLearning emits for scripted epochs, settling each with the
    reference rule and keeping every member's smoothed credit as the contract does (never
    reset, not even by leaving). ``forget_on_enrol`` makes it a faulty contract that resets
    a re-enrolling member's smoothed credit."""

    rule: Rule = RULE
    forget_on_enrol: bool = False
    entries: list[tuple[str, Log]] = field(default_factory=list)
    smoothed: dict[str, int] = field(default_factory=dict)
    carry: int = 0
    block: int = 1

    def emit(self, name: str, **args: Any) -> None:
        self.entries.append((name, Log(args, self.block, len(self.entries))))

    def enroll(self, *nodes: str) -> None:
        for node in nodes:
            self.emit("NodeEnrolled", account=node)
            if self.forget_on_enrol:
                self.smoothed.pop(node, None)

    def leave(self, node: str) -> None:
        self.emit("NodeLeft", account=node)

    def abandon(self, epoch: int) -> None:
        self.carry += REWARD
        self.emit("EpochAbandoned", epoch=epoch, carried=self.carry)
        self.block += 1

    def settle_epoch(self, epoch: int, samples: dict[str, int], scores: dict[str, list[int]]) -> Settlement:
        """Every node in ``samples`` commits (in that order) and is merged by the first;
        ``scores`` maps each reporter to its score vector over them."""
        nodes = list(samples)
        everyone = (1 << len(nodes)) - 1
        for index, node in enumerate(nodes):
            self.emit("UpdateSubmitted", epoch=epoch, index=index, node=node, commitment="ab" * 32,
                      declaredSamples=samples[node], samples=samples[node])
        self.emit("LeaderElected", epoch=epoch, leader=nodes[0])
        self.emit("MergePublished", epoch=epoch, mergedHash=MERGED, participants=everyone)
        reports = []
        for reporter, vector in scores.items():
            self.emit("ValidationReported", epoch=epoch, reporter=reporter, metric=900_000, scores=vector,
                      mergedHash=MERGED, valid=everyone)
            reports.append(Report(900_000, vector, MERGED, everyone, reporter))
        budget = REWARD + self.carry
        participants = [Participant(samples=samples[node], reported=node in scores, leader=index == 0, node=node,
                                    smoothed=self.smoothed.get(node, 0)) for index, node in enumerate(nodes)]
        result = settle(budget, participants, reports, rule=self.rule, published_hash=MERGED)
        for j, node in enumerate(nodes):
            self.emit("ParticipantSettled", epoch=epoch, node=node, samples=samples[node], score=result.scores[j],
                      smoothedScore=result.smoothed[j], standing=result.standing[j], payout=result.payouts[j],
                      forfeit=int(result.forfeits[j]))
        self.smoothed.update(zip(nodes, result.smoothed))
        self.emit("EpochSettled", epoch=epoch, budget=budget, credited=result.credited, carried=result.carried,
                  medianMetric=result.median_metric or 0, reporters=len(reports), quorate=result.quorate,
                  modelHash=result.verdict.model_hash)
        self.carry = result.carried
        self.block += 1
        return result

    def ledger(self) -> Ledger:
        return assemble(self.entries)


def history(swarm: RecordedSwarm) -> RecordedSwarm:
    """Four epochs: D leaves after epoch 1 and re-enrols for epoch 4; epoch 3 is abandoned.
    D's evidence from epoch 1 must carry into epoch 4 across both. In epoch 2 both other
    reporters rate B and C below zero (A's report has no positive score for anyone and gives
    nothing): their credit is 0 and their smoothed credit halves. B keeps full weight, but
    C, with less credit per sample, falls below the standing line and is paid for only part
    of its data. A and D rate themselves 0.9 in epoch 1 (and D in epoch 4): ignored. Every
    report's positive scores for the others reach VOTE_FLOOR: each is a whole vote."""
    def scaled(unit: int, scores: dict[str, list[int]]) -> dict[str, list[int]]:
        return {node: in_units(vector, unit) for node, vector in scores.items()}

    swarm.enroll(A, B, C, D)
    swarm.settle_epoch(1, {A: 100, B: 200, C: 300, D: 400}, scaled(10**7, {
        A: [90, 40, 10, 20], B: [50, 40, 10, 20], C: [60, 35, 25, 25], D: [40, 30, 10, 90]}))
    swarm.leave(D)
    swarm.settle_epoch(2, {A: 100, B: 200, C: 300}, scaled(10**7, {
        A: [10, -5, -40], B: [30, -4, -38], C: [30, -6, 7]}))
    swarm.abandon(3)
    swarm.enroll(D)
    swarm.settle_epoch(4, {D: 400, A: 100, B: 200, C: 300}, scaled(10**8, {
        D: [9, 5, 6, 7], A: [3, 4, 5, 6], B: [1, 6, 4, 5], C: [2, 5, 5, 8]}))
    return swarm
