"""Figures a person would rather look at than read (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no window). A character the font lacks
    (a class or folder name in another script) draws as a box: matplotlib's "Glyph N missing
    from font(s)" warning says nothing a user can act on, so that one is silenced."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from (current )?font")
    return plt


_plt = pyplot


def sig4(value) -> str:
    """A value for a label: floats to 4 significant digits (`0.4356`, not 0.43564649850770354),
    control characters (from a folder name) as `?`: matplotlib has no glyph for them."""
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float):
        value = f"{value:.4g}"
    text = str(value)
    return "".join(c if c.isprintable() else "?" for c in text)


def integer_epochs(ax) -> None:
    """Epoch ticks at whole epochs only (no 1.25)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def legend_below(fig, ax, fontsize: float = 8) -> None:
    """The legend under the axes, across the figure: it covers no curve and no label. Call
    after `tight_layout`: the figure grows at the bottom to hold it."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    longest = max(len(label) for label in labels)
    ncol = max(1, min(len(labels), int(fig.get_figwidth() * 72 / (fontsize * 0.62 * longest + 40))))
    rows = -(-len(labels) // ncol)
    height = fig.get_figheight()
    extra = (rows * fontsize * 1.6 + 10) / 72  # inches for the legend's rows
    fig.set_figheight(height + extra)
    fig.subplots_adjust(bottom=(fig.subplotpars.bottom * height + extra) / (height + extra))
    fig.subplots_adjust(top=1 - (1 - fig.subplotpars.top) * height / (height + extra))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False)


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
    fig.tight_layout()
    legend_below(fig, ax)
    return fig


def confusion_figure(matrix, classes: Sequence[str]):
    """Classification: a confusion matrix with counts (rows: true, columns: predicted)."""
    from dlx.record.text import plain_text

    plt = _plt()
    n = len(classes)
    classes = [plain_text(c, 60).replace("$", r"\$") for c in classes]  # names from disk
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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    legend_below(fig, ax)
    return fig
