"""The lecture's "space folding" picture for 2-D data: the plane coloured by the class the model
predicts there, the points on top (coloured by their true class). A shallow network draws a
few straight cuts; a deeper one folds the plane around the spiral's arms.

Logged to TensorBoard as the image `decision_boundary` every few epochs (`BoundaryHook`),
and saved at the end of the run as `decision_boundary.png` in the run folder.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from dlx.record.atomic import write_bytes

FILE = "decision_boundary.png"
TAG = "decision_boundary"


def is_plane(data) -> bool:
    """2-D points with classes: what a decision-boundary figure can show."""
    return data.task == "classification" and tuple(data.in_shape) == (2,)


def _points(data, limit: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = data.train.tensors
    return x[:limit].float().cpu(), y[:limit].cpu()


@torch.no_grad()
def predicted_grid(
    model: nn.Module, x: torch.Tensor, device, steps: int = 120
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(xs, ys, classes (steps, steps)): the model's class at each point of a grid spanning
    the points with a margin."""
    lo, hi = x.min(0).values, x.max(0).values
    pad = (hi - lo).clamp_min(1e-3) * 0.1
    xs = torch.linspace(float(lo[0] - pad[0]), float(hi[0] + pad[0]), steps)
    ys = torch.linspace(float(lo[1] - pad[1]), float(hi[1] + pad[1]), steps)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    plane = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    was_training = model.training
    model.eval()
    try:
        out = torch.cat([model(chunk.to(device)).float().cpu() for chunk in plane.split(8192)])
    finally:
        model.train(was_training)
    return xs, ys, out.argmax(1).reshape(steps, steps)


def boundary_figure(model: nn.Module, data, device, title: str = ""):
    """The matplotlib figure: predicted classes as coloured regions, the points on top."""
    from dlx.tracking.figures import _plt

    plt = _plt()
    x, y = _points(data)
    xs, ys, classes = predicted_grid(model, x, device)
    n = max(int(data.num_classes or 2), 2)
    fig, ax = plt.subplots(figsize=(5, 5))
    cmap = plt.get_cmap("coolwarm" if n == 2 else "tab10", n)
    extent = (float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1]))
    ax.imshow(
        classes.numpy(),
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=-0.5,
        vmax=n - 0.5,
        alpha=0.35,
        aspect="auto",
        interpolation="nearest",
    )
    ax.scatter(
        x[:, 0],
        x[:, 1],
        c=y,
        cmap=cmap,
        vmin=-0.5,
        vmax=n - 0.5,
        s=9,
        edgecolors="k",
        linewidths=0.3,
    )
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title or "decision boundary: predicted class (regions), true class (points)")
    fig.tight_layout()
    return fig


def png_bytes(fig) -> bytes:
    """The figure as a PNG (drawn once; the figure is closed)."""
    from dlx.tracking.figures import _plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return buf.getvalue()


def log_boundary(tracker, model: nn.Module, data, device, step: int, title: str = "") -> bytes:
    """Draw the figure once, log it as the TensorBoard image `decision_boundary` at `step`;
    returns its PNG."""
    import numpy as np
    from PIL import Image

    png = png_bytes(boundary_figure(model, data, device, title))
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))  # (H, W, 3) uint8
    tracker.image(TAG, torch.from_numpy(rgb.copy()).permute(2, 0, 1), step)
    return png


def save_boundary(tracker, model: nn.Module, data, device, run_dir: Path, epoch: int) -> None:
    """The end of a run: the figure in TensorBoard and as `decision_boundary.png` (written
    whole, never through a link)."""
    title = f"decision boundary after epoch {epoch}"
    png = log_boundary(tracker, model, data, device, epoch, title)
    write_bytes(Path(run_dir) / FILE, png)


class BoundaryHook:
    """Every `every` epochs (and the first), the decision boundary as it is now. `run` is the
    training run (read when the epoch ends: its tracker exists by then)."""

    def __init__(self, run, every: int) -> None:
        self.run, self.every = run, max(1, every)

    def on_epoch_end(self, end) -> None:
        run = self.run
        tracker = run.tracker
        if tracker is None or not getattr(tracker, "enabled", True):
            return None
        if end.epoch == 1 or end.epoch % self.every == 0:
            title = f"decision boundary, epoch {end.epoch}"
            log_boundary(tracker, run.eval_model, run.data, run.device, end.epoch, title)
        return None


def every_n_epochs(epochs: int) -> int:
    """About six pictures over a run: every epoch for short runs, every 10 for 60 epochs."""
    return max(1, int(epochs) // 6)
