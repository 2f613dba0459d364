"""Contribution scoring: the coalition utility of one epoch and Shapley-style scorers.

``make_utility`` builds ``u(S)`` (validation performance of the previous global
model moved by the sample-weighted mean of the deltas in ``S``); ``score`` runs a
registered scorer of ``SCORERS`` on it. The math is in the docstrings of
:mod:`trainer.scoring.utility` and :mod:`trainer.scoring.estimators`.
"""

from trainer.scoring.errors import (
    CoalitionError,
    ParticipantCountError,
    ScoringError,
    ScoringInputError,
    UnknownScorerError,
)
from trainer.scoring.estimators import RECOMMENDED, SCORERS, register_scorer, score
from trainer.scoring.game import CachedGame, SetFunctionGame
from trainer.scoring.utility import METRICS, Utility, make_utility

__all__ = [
    "METRICS",
    "RECOMMENDED",
    "SCORERS",
    "CachedGame",
    "CoalitionError",
    "ParticipantCountError",
    "ScoringError",
    "ScoringInputError",
    "SetFunctionGame",
    "UnknownScorerError",
    "Utility",
    "make_utility",
    "register_scorer",
    "score",
]
