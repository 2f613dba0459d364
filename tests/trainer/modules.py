"""Small torch modules the trainer tests share."""

from __future__ import annotations

import torch


class Wrapped(torch.nn.Module):
    """The same network behind a custom module: code with a shortcut for a ``Sequential``
    that starts with ``nn.Linear`` must take its generic path."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
