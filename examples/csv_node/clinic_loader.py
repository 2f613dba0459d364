"""An organisation's data loader, named in its node.toml as a plug-in:

    [data]
    loader = "clinic_loader:load"
    path = "../org-0.csv"

Each organisation exports its records in its own column order; the loader reads the
header, puts the feature columns in the order the consortium agreed (``f0`` .. ``f63``),
takes the ``diagnosis`` column as the label, and splits rows by the ``split`` column the
organisation keeps (``train`` or ``validation``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

N_FEATURES = 64


def load(path: str, label_column: str = "diagnosis") -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [f"f{i}" for i in range(N_FEATURES)]
    missing = [c for c in [*columns, label_column, "split"] if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")

    def part(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = [r for r in rows if r["split"] == name]
        X = torch.tensor([[float(r[c]) for c in columns] for r in chosen], dtype=torch.float32)
        y = torch.tensor([int(r[label_column]) for r in chosen], dtype=torch.int64)
        return X, y

    return part("train"), part("validation")
