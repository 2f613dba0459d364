"""Contribution scoring: the coalition utility of one epoch and Shapley-style scorers.

``make_utility`` builds ``u(S)`` (validation performance of the model the swarm's merge
rule makes of coalition ``S``: the previous global model moved by ``merge(rule, ...)``
with the nodes outside ``S`` sending nothing new; by default the swarm's ``fltrust_median``);
``ValidatorUtilities`` gives every validator its own ``u_v`` at the cost of one;
``score`` runs a registered scorer of ``SCORERS`` on it. The math is in the docstrings of
:mod:`trainer.scoring.utility`, :mod:`trainer.scoring.coalition_merge` and
:mod:`trainer.scoring.estimators`.
"""

from trainer.scoring.coalition_merge import ABSENT, swarm_absent
from trainer.scoring.errors import (
    CoalitionError,
    ParticipantCountError,
    ScoringError,
    ScoringInputError,
    UnknownScorerError,
)
from trainer.scoring.estimators import RECOMMENDED, SCORERS, register_scorer, score
from trainer.scoring.game import CachedGame, SetFunctionGame
from trainer.scoring.utility import DEFAULT_METRIC, METRICS, Utility, ValidatorUtilities, make_utility

__all__ = [
    "ABSENT",
    "DEFAULT_METRIC",
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
    "ValidatorUtilities",
    "make_utility",
    "register_scorer",
    "score",
    "swarm_absent",
]
