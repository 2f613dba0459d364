"""Report phase, settlement: validate once, then settle as soon as every committer
reported (staggered by commit index) or the report deadline passed."""

from __future__ import annotations

import time
from typing import Any

from ..chain.epochview import read_epoch
from .work import STAGGER_S, EpochWork, log


class SettlePhase:
    """Settlement in the report phase of :class:`~swarmtoken.node.runtime.Node`."""

    def _report_phase(self, epoch: int, state: Any, work: EpochWork) -> None:
        member = self._member()
        bit = 1 << int(member["commitIndex"])
        committed = int(member["lastSubmitEpoch"]) == epoch
        if committed and not int(state["reporters"]) & bit and time.time() <= int(state["deadline"]):
            if "reportValidation" in work.sent:  # reported, yet the chain no longer has it
                self._send_again(epoch, work, "reportValidation")
            elif not work.reported:
                self._validate(epoch, work)
        everyone = int(state["reporters"]).bit_count() == int(state["commitCount"])
        if everyone and work.all_reported_seen is None:
            work.all_reported_seen = time.time()
        due = (everyone and time.time() >= work.all_reported_seen + STAGGER_S * self._rank(epoch)) or \
            self._due(int(state["deadline"]), epoch)
        if due:
            with self._timed(epoch, "settle"):
                args = read_epoch(self.swarm, epoch, self.from_block).settlement_args()
                settled = self._send("settle", epoch, *args)
            if settled:
                log.info("epoch %d: settled", epoch)
