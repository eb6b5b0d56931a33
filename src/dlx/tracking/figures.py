"""Figures a person would rather look at than read (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fit_figure(x, y_true, y_pred, x_train=None, y_train=None):
    """Regression: the model's curve against the true function (the lecture's plot)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    if x_train is not None:
        ax.scatter(x_train, y_train, s=4, alpha=0.3, color="gray", label="training points")
    ax.plot(x, y_true, "-.", lw=2, alpha=0.6, label="true f(x)")
    ax.plot(x, y_pred, lw=2, label="model")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.tight_layout()
    return fig


def confusion_figure(matrix, classes: Sequence[str]):
    """Classification: a confusion matrix with counts (rows: true, columns: predicted)."""
    plt = _plt()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * n, 1 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=90)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(1, int(matrix.max()))
    for i in range(n):
        for j in range(n):
            v = int(matrix[i][j])
            ax.text(
                j,
                i,
                v,
                ha="center",
                va="center",
                color="white" if v > top / 2 else "black",
                fontsize=7,
            )
    fig.tight_layout()
    return fig


def curve_figure(x, y, xlabel: str, ylabel: str, logx: bool = False, mark_x: float | None = None):
    """A simple line plot (e.g. loss vs learning rate)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, y, lw=2)
    if logx:
        ax.set_xscale("log")
    if mark_x is not None:
        ax.axvline(mark_x, color="red", ls="--", label=f"suggested {mark_x:.2g}")
        ax.legend()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig
