"""Convolutional networks sized for small images."""

from __future__ import annotations

import torch
from torch import nn

from dlx.models.layers import hidden_conv, hidden_dense


class LeNet(nn.Module):
    """LeNet-5 style: [conv5 -> act -> maxpool2] x 2 -> fc -> fc -> classes.

    Convolutions are padded ("same") and pooling uses ceil mode, so any image size
    works, digits' 8x8 (-> 4x4 -> 2x2) as well as MNIST's 28x28 or CIFAR's 32x32.
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
    ) -> None:
        super().__init__()
        c_in = in_shape[0]
        feats: list[nn.Module] = []
        for c_out in channels:
            feats += hidden_conv(c_in, c_out, kernel_size, activation, batchnorm)
            feats.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = c_out
        self.features = nn.Sequential(*feats)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *in_shape)).numel()
        head: list[nn.Module] = [nn.Flatten()]
        n_in = n_flat
        for h in hidden:
            head += hidden_dense(n_in, h, activation, dropout, batchnorm)
            n_in = h
        head.append(nn.Linear(n_in, out_dim))
        self.classifier = nn.Sequential(*head)

    def forward(self, x):
        return self.classifier(self.features(x))
