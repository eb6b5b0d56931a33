"""The values config keys may take where dlx decides them (activations, inits, pools, ResNet
architectures, ...): plain constants, no imports, so that the models that implement them and
the rules that check them (and completion) share one list without loading torch.
"""

from __future__ import annotations

import os

ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu")
INITS = ("default", "xavier", "he", "normal")
PRECISIONS = ("fp32", "bf16", "fp16")
LOSSES = ("auto", "cross_entropy", "bce", "mse")
POOLS = ("max", "avg", "none")
MONITORS = ("val/loss", "val/acc")
DEVICES = ("auto", "cpu", "cuda", "mps")
RESNET_ARCHS = ("resnet18", "resnet34", "resnet50")
FREEZE_MODES = ("none", "backbone", "all_but_first_last")
MAX_SEED = 2**63 - 2  # torch's generators take 64-bit seeds; the data draws from seed + 1
MAX_THREADS = max(64, 8 * (os.cpu_count() or 1))  # 100000 threads crash torch's thread pool
