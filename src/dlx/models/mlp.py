"""Fully connected networks: the lecture's ShallowNN and a configurable MLP."""

from __future__ import annotations

import math

from torch import nn

from dlx.models.layers import hidden_dense


class MLP(nn.Module):
    """Flatten -> `depth` x (Linear -> [BN] -> act -> [Dropout]) -> Linear(out_dim)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_dim: int,
        width: int = 128,
        depth: int = 2,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = math.prod(in_shape)
        for _ in range(depth):
            layers += hidden_dense(n_in, width, activation, dropout, batchnorm)
            n_in = width
        layers.append(nn.Linear(n_in, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class ShallowNN(nn.Module):
    """The lecture's universal approximator: Linear(1, 2000) -> ReLU -> Linear(2000, 1)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_dim: int,
        hidden: int = 2000,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.regressor = nn.Sequential(
            nn.Flatten(),
            *hidden_dense(math.prod(in_shape), hidden, activation, dropout, batchnorm),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x):
        return self.regressor(x)
