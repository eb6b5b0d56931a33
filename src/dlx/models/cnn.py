"""Convolutional networks sized for small images."""

from __future__ import annotations

from torch import nn

from dlx.models.layers import hidden_conv, hidden_dense, pool_layer
from dlx.models.shapes import trace


class LeNet(nn.Module):
    """LeNet-5 style: [conv -> act -> pool] x len(channels) -> fc -> fc -> classes.

    The lecture's convolution knobs are arguments: `kernel_size`, `stride`, `padding` ("same":
    kernel_size // 2, which keeps the size at stride 1; or an int) for every conv layer, and
    `pool` (max | avg | none), `pool_size`, `pool_stride` (None: the window's size) for the
    pooling after each. The defaults (5x5 "same" convs, 2x2 max pooling in ceil mode) work on
    any image size, digits' 8x8 (-> 4x4 -> 2x2) as well as MNIST's 28x28 or CIFAR's 32x32;
    a combination that shrinks a feature map to nothing is refused naming the layer.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_dim: int,
        channels: tuple[int, ...] = (6, 16),
        hidden: tuple[int, ...] = (120, 84),
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        kernel_size: int = 5,
        stride: int = 1,
        padding: int | str = "same",
        pool: str = "max",
        pool_size: int = 2,
        pool_stride: int | None = None,
    ) -> None:
        super().__init__()
        c_in = in_shape[0]
        feats: list[nn.Module] = []
        for c_out in channels:
            feats += hidden_conv(c_in, c_out, kernel_size, activation, batchnorm, padding, stride)
            feats += pool_layer(pool, pool_size, pool_stride)
            c_in = c_out
        self.features = nn.Sequential(*feats)
        n_flat = trace(self.features, in_shape)
        head: list[nn.Module] = [nn.Flatten()]
        n_in = n_flat
        for h in hidden:
            head += hidden_dense(n_in, h, activation, dropout, batchnorm)
            n_in = h
        head.append(nn.Linear(n_in, out_dim))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))
