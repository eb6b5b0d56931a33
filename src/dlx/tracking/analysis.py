"""What a classifier gets wrong: per-class scores, the most-confused pairs, the top-loss
images, and Grad-CAM ("where the model looked") for conv nets.

`dlx eval` (runs/evaluate.py) calls these on a split's outputs; the figures go to TensorBoard
and to PNG files in the run folder.

Grad-CAM (Selvaraju et al. 2017) as the `grad-cam` package (pytorch-grad-cam 1.5) computes
it, held equal to it in tests/test_predict.py: the gradients of the target class's logit with
respect to the last conv layer's activations, averaged over space, weight those activations;
summed over channels, ReLU, scaled to [0, 1] per image (minus its min, over its max + 1e-7),
resized bilinearly to the input size and scaled again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

GRID = 16  # top-loss images shown


def per_class_scores(
    pred: torch.Tensor, target: torch.Tensor, classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class (scikit-learn, 0 where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        target.numpy(), pred.numpy(), labels=list(range(len(classes))), zero_division=0
    )
    return [
        {
            "class": c,
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, c in enumerate(classes)
    ]


def confused_pairs(matrix: torch.Tensor, classes: Sequence[str], n: int = 10) -> list[dict]:
    """The off-diagonal cells of a confusion matrix, largest first: true -> predicted, count."""
    m = matrix.clone()
    m.fill_diagonal_(0)
    flat = m.flatten()
    order = torch.argsort(flat, descending=True, stable=True)[:n]
    k = len(classes)
    return [
        {"true": classes[int(i) // k], "predicted": classes[int(i) % k], "count": int(flat[i])}
        for i in order
        if flat[i] > 0
    ]


def top_losses(outputs: torch.Tensor, targets: torch.Tensor, k: int = GRID) -> torch.Tensor:
    """Indices of the k samples with the largest cross-entropy, largest first."""
    losses = F.cross_entropy(outputs.float(), targets.long(), reduction="none")
    return torch.argsort(losses, descending=True, stable=True)[:k]


def last_conv(model: torch.nn.Module) -> torch.nn.Module | None:
    """The last Conv2d of a model (Grad-CAM's layer), None for a model without one."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[-1] if convs else None


def gradcam(
    model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """(N, H, W) heat maps in [0, 1]: where the class `target[i]` drew on for image i."""
    saved: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        # shares storage: an in-place ReLU after the layer rectifies it (as in grad-cam on
        # the CPU); the gradient is taken at the layer's output
        saved["a"] = output.detach()
        output.register_hook(lambda grad: saved.__setitem__("g", grad.detach()))

    handle = layer.register_forward_hook(keep)
    was = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            out = model(x)
            model.zero_grad(set_to_none=True)
            out.gather(1, target.view(-1, 1).to(out.device)).sum().backward()
    finally:
        handle.remove()
        model.train(was)
    a, g = saved["a"], saved["g"]
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))  # (N, h, w)
    cam = F.interpolate(_scaled(cam).unsqueeze(1), size=tuple(x.shape[-2:]), mode="bilinear")
    return _scaled(cam[:, 0])


def _scaled(cam: torch.Tensor) -> torch.Tensor:
    """Per map: minus its min, over its max + 1e-7 (pytorch-grad-cam's scale_cam_image)."""
    cam = cam - cam.flatten(1).min(1).values.view(-1, 1, 1)
    return cam / (1e-7 + cam.flatten(1).max(1).values.view(-1, 1, 1))


def displayable(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalized (N, C, H, W) back to pixels in [0, 1], (N, H, W, C) for imshow."""
    if mean:
        m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
        x = x * s + m
    return x.clamp(0, 1).permute(0, 2, 3, 1)


def _grid(n: int):
    from dlx.tracking.figures import _plt

    plt = _plt()
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def _show(ax, img: torch.Tensor) -> None:
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.numpy())


def top_losses_figure(images: torch.Tensor, labels: list[str]):
    """A grid of the top-loss images (N, H, W, C in [0, 1]) titled true/predicted/prob."""
    fig, axes = _grid(len(images))
    for ax, img, label in zip(axes, images, labels, strict=False):
        _show(ax, img)
        ax.set_title(label, fontsize=8)
    fig.suptitle("top losses: true / predicted / probability of the prediction", fontsize=9)
    fig.tight_layout()
    return fig


def gradcam_figure(images: torch.Tensor, cams: torch.Tensor, labels: list[str]):
    """The same images with their Grad-CAM heat over them (jet, half transparent)."""
    fig, axes = _grid(len(images))
    for ax, img, cam, label in zip(axes, images, cams, labels, strict=False):
        _show(ax, img)
        ax.imshow(cam.numpy(), cmap="jet", alpha=0.4, vmin=0, vmax=1, interpolation="bilinear")
        ax.set_title(label, fontsize=8)
    fig.suptitle("Grad-CAM: where the model looked for its prediction", fontsize=9)
    fig.tight_layout()
    return fig
