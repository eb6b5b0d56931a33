"""AlexNet (Krizhevsky 2012), sized for small images.

The original shape, scaled down: five conv layers (a wide first kernel, then 3x3),
ReLU, overlapping max pooling (3x3, stride 2) after conv 1, 2 and 5, and three fully
connected layers with dropout in front of the first two. The 11x11 stride-4 stem of
the 224x224 original becomes a 5x5 stride-1 conv, so a 32x32 image ends at 4x4 before
the classifier. The stem's `kernel_size`, `stride` and `padding` and the pooling (`pool`,
`pool_size`, `pool_stride`) are the lecture's knobs; a combination that shrinks a feature
map to nothing is refused naming the layer. `min_input_size: 32` in conf/model/alexnet.yaml
makes the data pipeline resize smaller images (digits' 8x8, MNIST's 28x28) up to 32x32.
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import UserError
from dlx.models.layers import hidden_conv, hidden_dense, pool_layer
from dlx.models.shapes import trace

# After these conv layers (0-based) comes a max pool, as in the original.
POOL_AFTER = (0, 1, 4)


class AlexNet(nn.Module):
    """features: 5 x (conv -> [BN] -> act) with pools; classifier: 3 fully connected."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_dim: int,
        channels: tuple[int, ...] = (32, 96, 128, 128, 96),
        hidden: tuple[int, ...] = (512, 512),
        kernel_size: int = 5,
        stride: int = 1,
        padding: int | str = "same",
        pool: str = "max",
        pool_size: int = 3,
        pool_stride: int | None = 2,
        head_dropout: float = 0.5,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        if len(channels) != 5 or len(hidden) != 2:
            raise UserError(
                "AlexNet has five conv layers and three fully connected ones: `model.channels` "
                f"needs 5 numbers (got {list(channels)}), `model.hidden` 2 (got {list(hidden)}).",
                key="model.channels" if len(channels) != 5 else "model.hidden",
            )
        c_in = in_shape[0]
        feats: list[nn.Module] = []
        for i, c_out in enumerate(channels):
            # the stem takes the knobs; the other four are 3x3 "same" convs
            k, s, pad = (kernel_size, stride, padding) if i == 0 else (3, 1, "same")
            feats += hidden_conv(c_in, c_out, k, activation, batchnorm, pad, s)
            if i in POOL_AFTER:  # overlapping pooling (3x3, stride 2, padded by 1)
                feats += pool_layer(pool, pool_size, pool_stride, padding=1, ceil_mode=False)
            c_in = c_out
        self.features = nn.Sequential(*feats)
        n_flat = trace(self.features, in_shape)
        # Dropout in front of the first two fully connected layers, as in the paper;
        # `reg=dropout` sets its rate (reg.dropout), otherwise `model.head_dropout` does.
        p = dropout if dropout > 0 else head_dropout
        head: list[nn.Module] = [nn.Flatten()]
        n_in = n_flat
        for h in hidden:
            if p > 0:
                head.append(nn.Dropout(p))
            head += hidden_dense(n_in, h, activation, 0.0, batchnorm)
            n_in = h
        head.append(nn.Linear(n_in, out_dim))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
