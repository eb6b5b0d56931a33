"""Building blocks shared by the models: activations and the lecture's hidden block."""

from __future__ import annotations

from torch import nn

from dlx.config.rules import ACTIVATIONS
from dlx.errors import UserError

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise UserError(
            f"Invalid value for `model.activation`: {name!r}. Allowed: {' | '.join(ACTIVATIONS)}.",
            key="model.activation",
        )
    return _ACTIVATIONS[name]()


def hidden_dense(
    n_in: int, n_out: int, act: str, dropout: float = 0.0, batchnorm: bool = False
) -> list[nn.Module]:
    """Linear -> [BatchNorm] -> activation -> [Dropout]: batch norm just before the
    activation, dropout on the activation's output (the lecture's placement)."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(activation(act))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def hidden_conv(
    c_in: int,
    c_out: int,
    kernel: int,
    act: str,
    batchnorm: bool = False,
    padding: int | None = None,
) -> list[nn.Module]:
    """Conv -> [BatchNorm2d] -> activation."""
    pad = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=pad, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(act))
    return layers
