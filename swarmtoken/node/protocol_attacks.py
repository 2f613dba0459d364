"""Rogue behaviours against the protocol rather than the model, so demos and end-to-end
tests can show the defences at work (the model attacks live in `trainer.attacks`).

- ``copycat``: trains nothing; commits the first commitment another node made this epoch
  and, once that node reveals its file, serves the same bytes under the copied commitment.
  The commitment binds its sender, so every validator finds the file does not open it.
- ``inflate_samples``: trains honestly but declares ``INFLATE_FACTOR`` times its sample
  count. The contract counts at most the allowance the admin attested.
- ``withhold_after_merge``: trains honestly and serves each committed file once (the
  leader's download), then answers 404 for it: to its peers, a node killed right after
  the leader merged its update. Validators check the merge with the leader's copy. In
  an epoch it leads, it serves its file on.
- ``swap_after_merge``: the same, but then serves another file (the global model) under
  the commitment: a file corrupted, or swapped by a hostile node, after the merge.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry below is read by `swarm --help`, which must not load torch
    from ..store import ParameterStore

PROTOCOL_ATTACKS: dict[str, str] = {
    "copycat": "commits another node's commitment and serves that node's file",
    "inflate_samples": "declares ten times its sample count",
    "withhold_after_merge": "serves each committed file once, then no more",
    "swap_after_merge": "serves each committed file once, then another file under its commitment",
}
INFLATE_FACTOR = 10


def after_first_download(attack: str, store: ParameterStore, own: Collection[str],
                         decoy: Callable[[], str]) -> Callable[[str], None] | None:
    """The `ParameterServer` ``on_served`` hook of the ``*_after_merge`` rogues (None for
    any other node): once one of its ``own`` commitments' files was downloaded, withdraw it
    or bind the commitment to the released file ``decoy()`` returns. (As leader it goes on
    serving the copies it keeps of the others' files.)"""
    if attack not in ("withhold_after_merge", "swap_after_merge"):
        return None
    from ..store.commitments import COMMIT_ROUTE
    from .work import log

    def served(path: str) -> None:
        commitment = path[len(COMMIT_ROUTE):]
        if not path.startswith(COMMIT_ROUTE) or commitment not in own:
            return
        if attack == "withhold_after_merge":
            store.unbind_commitment(commitment)
            log.info("rogue: withholding the file of commitment %s from now on", commitment[:12])
        else:
            store.bind_commitment(commitment, decoy())
            log.info("rogue: serving another file under commitment %s from now on", commitment[:12])

    return served
