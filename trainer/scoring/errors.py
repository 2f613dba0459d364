"""Typed errors of the scoring package: each names the offending input."""

from __future__ import annotations


class ScoringError(ValueError):
    """Base class of every scoring error (a ``ValueError``: it is always bad input)."""


class ScoringInputError(ScoringError):
    """Malformed utility inputs: no updates, bad weights, bad validation rows, unknown metric."""


class CoalitionError(ScoringError):
    """A coalition names an update index outside ``0 .. n-1``."""


class UnknownScorerError(ScoringError):
    """The requested scorer is not in ``SCORERS``; the message lists the known names."""


class ParticipantCountError(ScoringError):
    """``n`` does not match the number of updates the utility was built over."""
