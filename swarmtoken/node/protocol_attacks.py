"""Rogue behaviours against the protocol rather than the model, so demos and end-to-end
tests can show the defences at work (the model attacks live in `trainer.attacks`).

- ``copycat``: trains nothing; commits the first commitment another node made this epoch
  and, once that node reveals its file, serves the same bytes under the copied commitment.
  The commitment binds its sender, so every validator finds the file does not open it.
- ``inflate_samples``: trains honestly but declares ``INFLATE_FACTOR`` times its sample
  count. The contract counts at most the allowance the admin attested.
"""

from __future__ import annotations

PROTOCOL_ATTACKS: dict[str, str] = {
    "copycat": "commits another node's commitment and serves that node's file",
    "inflate_samples": "declares ten times its sample count",
}
INFLATE_FACTOR = 10
