"""Building blocks shared by the models: activations and the lecture's hidden block."""

from __future__ import annotations

from torch import nn

from dlx.config.choices import ACTIVATIONS, POOLS
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
    padding: int | str | None = None,
    stride: int = 1,
) -> list[nn.Module]:
    """Conv -> [BatchNorm2d] -> activation. `padding`: an int, or "same"/None (kernel // 2)."""
    kernel = positive("model.kernel_size", kernel)
    pad = conv_padding(padding, kernel)
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, bias=not batchnorm)
    ]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(act))
    return layers


def positive(key: str, value: object) -> int:
    """A knob that must be an integer >= 1 (`model.kernel_size`), or a UserError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"Invalid value for `{key}`: {value!r}. Allowed: an integer >= 1.", key=key)
    return value


def conv_padding(padding: int | str | None, kernel: int) -> int:
    """`model.padding`: "same" (or None) pads kernel // 2 on each side, which keeps the size of
    the feature map at stride 1 (odd kernels); an int pads that many zeros."""
    if padding is None or padding == "same":
        return kernel // 2
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise UserError(
            f"Invalid value for `model.padding`: {padding!r}. Allowed: same | an integer >= 0.",
            key="model.padding",
        )
    return padding


def pool_layer(
    kind: str, size: int, stride: int | None, padding: int = 0, ceil_mode: bool = True
) -> list[nn.Module]:
    """`model.pool`: max or avg pooling over `size` x `size` windows `stride` apart (None: the
    window's size, no overlap), by default in ceil mode (a last partial window counts);
    none: no layer."""
    if kind not in POOLS:
        raise UserError(
            f"Invalid value for `model.pool`: {kind!r}. Allowed: {' | '.join(POOLS)}.",
            key="model.pool",
        )
    if kind == "none":
        return []
    step = stride or size
    pad = min(padding, size // 2)  # torch allows at most half the window
    if kind == "max":
        return [nn.MaxPool2d(size, step, padding=pad, ceil_mode=ceil_mode)]
    return [nn.AvgPool2d(size, step, padding=pad, ceil_mode=ceil_mode, count_include_pad=False)]
