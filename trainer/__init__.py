"""Swarm's learning core: data and partitions, models, local training, merges, scoring, simulation.

Pure ML: this package never imports chain code; the simulator's money model
(:mod:`trainer.ledger`) calls the pure-Python reference rule ``swarmtoken.rewards``.
scikit-learn is imported inside the functions that need it, so ``import trainer`` stays
cheap for the CLI.

The entry points a user meets first are re-exported here: ``trainer.simulate(...)`` runs a
whole swarm in process, ``SwarmCallback`` joins a swarm from one's own training loop.
"""

from trainer.callback import InProcessSwarm, SwarmBackend, SwarmCallback
from trainer.data import Dataset, NodeData, SwarmSplit, load_dataset, load_node_file, split_swarm
from trainer.models import MODELS, build_model, register_model
from trainer.simulate import SimulationResult, simulate
from trainer.training import Metrics, TrainConfig, evaluate, train_local

__all__ = [
    "MODELS",
    "Dataset",
    "InProcessSwarm",
    "Metrics",
    "NodeData",
    "SimulationResult",
    "SwarmBackend",
    "SwarmCallback",
    "SwarmSplit",
    "TrainConfig",
    "build_model",
    "evaluate",
    "load_dataset",
    "load_node_file",
    "register_model",
    "simulate",
    "split_swarm",
    "train_local",
]
