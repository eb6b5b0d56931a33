"""The advice benchmark's situations, each labelled with what is wrong (or "good fit"), and
their split into a tuning half and a held-out half.

The split was drawn ONCE, by `random.Random(SPLIT_SEED).shuffle` of the case names in the
order below, before any verdict rule was changed against these cases, and is frozen here
(`HELD_OUT`): verdict rules may be tuned on the tuning half only; the held-out half is what
the README reports as the honest figure. A new case goes to the half the same shuffle puts
it in (`split()`), never moved afterwards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

LR_LARGE = "underfitting: lr too large|diverged: lr too large"
LR_SMALL = "underfitting: lr too small"
INIT = "underfitting: exploding gradients"
SPLIT_SEED = 27
# The situations were written (and split) when `model=cnn` was the lecture's LeNet-5 (6 and 16
# filters, no batch norm). The default cnn now has 16/32 filters and batch norm; the cases
# that use the default cnn pin the LeNet they were written with, so each situation is the
# same one it was at the split ("the defaults" alone follows the defaults).
LENET = ["model.channels=[6,16]", "model.batchnorm=false"]


@dataclass
class Case:
    name: str
    overrides: list[str]
    label: str  # "verdict" or "verdict: cause"; alternatives separated by "|"
    index: int = 0
    results: dict = field(default_factory=dict)

    def accepts(self, verdict: str) -> bool:
        return verdict in self.label.split("|")

    @property
    def good(self) -> bool:
        return self.label == "good fit"


CASES = [
    # the lecture's presets
    Case("preset overfitting", ["experiment=overfitting"], "overfitting"),
    Case("preset regularized", ["experiment=regularized"], "good fit"),
    Case("preset underfitting", ["experiment=underfitting"], "underfitting: capacity"),
    Case("preset lr_too_high (SGD)", ["experiment=lr_too_high"], LR_LARGE),
    Case("preset lr_too_low (SGD)", ["experiment=lr_too_low"], "underfitting: lr too small"),
    Case("preset naive_init", ["experiment=naive_init"], "underfitting: saturated gradients"),
    Case("preset universal_approximation", ["experiment=universal_approximation"], "good fit"),
    # the learning rate, every optimizer
    Case("SGD lr too small (cnn)", [*LENET, "opt=sgd", "opt.lr=0.01", "epochs=10"], LR_SMALL),
    Case("Adam lr too small (cnn)", [*LENET, "opt.lr=1e-5", "epochs=10"], LR_SMALL),
    Case("SGD lr too large (cnn)", [*LENET, "opt=sgd", "opt.lr=1.0", "epochs=10"], LR_LARGE),
    Case("Adam lr too large (cnn)", [*LENET, "opt.lr=0.1", "epochs=10"], LR_LARGE),
    Case("SGD lr 1, 15 epochs (cnn)", [*LENET, "opt=sgd", "opt.lr=1", "epochs=15"], LR_LARGE),
    Case("Adam lr 0.5 (cnn)", [*LENET, "opt.lr=0.5", "epochs=10"], LR_LARGE),
    Case(
        "momentum lr too small (mlp)",
        ["model=mlp", "opt=momentum", "opt.lr=1e-4", "epochs=10"],
        LR_SMALL,
    ),
    Case(
        "RMSprop lr too large (mlp)",
        ["model=mlp", "opt=rmsprop", "opt.lr=0.1", "epochs=10"],
        LR_LARGE,
    ),
    Case("Adagrad, its default lr (mlp)", ["model=mlp", "opt=adagrad", "epochs=30"], "good fit"),
    Case("AdamW, its default lr (mlp)", ["model=mlp", "opt=adamw", "epochs=30"], "good fit"),
    Case("AlexNet, Adam lr 0.01", ["model=alexnet", "opt.lr=0.01", "epochs=4"], LR_LARGE),
    Case(
        "ResNet18, SGD lr 1e-4",
        ["model=resnet", "opt=sgd", "opt.lr=1e-4", "epochs=3"],
        LR_SMALL,
    ),
    # too few epochs
    Case("too few epochs (cnn)", [*LENET, "epochs=3"], "underfitting: too few epochs"),
    Case("SGD, 3 epochs (cnn)", [*LENET, "opt=sgd", "epochs=3"], "underfitting: too few epochs"),
    Case(
        "SGD, 3 epochs (mlp)", ["model=mlp", "opt=sgd", "epochs=3"], "underfitting: too few epochs"
    ),
    Case(
        "augmentation (overfitting + aug=mnist)",
        ["experiment=overfitting", "aug=mnist"],
        "underfitting: too few epochs",
    ),
    # initialization
    Case(
        "MLP depth 5, N(0,1) init (relu)",
        ["model=mlp", "model.depth=5", "model.init=normal", "epochs=15"],
        INIT,
    ),
    Case("CNN, N(0,1) init", [*LENET, "model.init=normal", "epochs=10"], INIT),
    Case(
        "MLP tanh, N(0,1) init",
        ["model=mlp", "model.activation=tanh", "model.init=normal", "epochs=10"],
        "underfitting: saturated gradients",
    ),
    # capacity
    Case(
        "too little capacity (regression)",
        ["data=function", "model=mlp", "model.width=3", "model.depth=1", "epochs=100"],
        "underfitting: capacity",
    ),
    Case(
        "4 hidden units (regression)",
        ["experiment=universal_approximation", "model.hidden=4", "epochs=150"],
        "underfitting: capacity",
    ),
    Case(
        "tiny LeNet",
        ["model.channels=[1,1]", "model.batchnorm=false", "model.hidden=[3,3]", "epochs=30"],
        "underfitting: capacity",
    ),
    # regression learning rates
    Case(
        "regression, Adam lr 1e-5",
        ["experiment=universal_approximation", "opt.lr=1e-5", "epochs=100"],
        LR_SMALL,
    ),
    Case(
        "regression, Adam lr 0.3",
        ["experiment=universal_approximation", "opt.lr=0.3", "epochs=100"],
        LR_LARGE,
    ),
    Case(
        "regression, SGD lr 2 (mlp)",
        ["data=function", "model=mlp", "opt=sgd", "opt.lr=2", "epochs=100"],
        LR_LARGE,
    ),
    # overfitting
    Case(
        "CNN on 100 images, no early stop",
        [*LENET, "data.limit=100", "epochs=40", "early_stopping.enabled=false"],
        "overfitting",
    ),
    Case(
        "regression, 40 noisy points",
        [
            "experiment=universal_approximation",
            "data.limit=40",
            "data.noise=0.1",
            "epochs=400",
            "early_stopping.enabled=false",
        ],
        "overfitting",
    ),
    # good fits
    Case("the defaults (cnn on digits)", [], "good fit"),
    Case("solved task (one bright pixel)", [*LENET, "data=bench_easy", "epochs=30"], "good fit"),
    Case(
        "regression, deeper MLP",
        [
            "data=function",
            "model=mlp",
            "model.width=64",
            "model.depth=3",
            "opt.lr=0.003",
            "epochs=300",
        ],
        "good fit",
    ),
]


def split(cases: list[Case], seed: int = SPLIT_SEED) -> tuple[list[str], list[str]]:
    """(tuning, held-out) names: a seeded shuffle, the first half tuning."""
    names = [c.name for c in cases]
    random.Random(seed).shuffle(names)
    half = len(names) // 2
    return names[:half], names[half:]


# drawn by split(CASES) when the cases above were first committed; frozen
HELD_OUT = frozenset(
    {
        "the defaults (cnn on digits)",
        "preset underfitting",
        "Adagrad, its default lr (mlp)",
        "augmentation (overfitting + aug=mnist)",
        "SGD lr too small (cnn)",
        "preset naive_init",
        "regression, 40 noisy points",
        "SGD lr 1, 15 epochs (cnn)",
        "regression, deeper MLP",
        "Adam lr too large (cnn)",
        "solved task (one bright pixel)",
        "too little capacity (regression)",
        "Adam lr too small (cnn)",
        "CNN on 100 images, no early stop",
        "preset lr_too_low (SGD)",
        "Adam lr 0.5 (cnn)",
        "ResNet18, SGD lr 1e-4",
        "AlexNet, Adam lr 0.01",
        "regression, Adam lr 0.3",
    }
)
