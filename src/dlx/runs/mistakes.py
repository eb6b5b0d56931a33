"""`dlx eval` on a classifier: what it gets wrong, in numbers and pictures.

Per-class precision/recall/F1 (scikit-learn), the most-confused pairs, the confusion matrix,
a grid of the top-loss images (true / predicted / probability) and, for conv nets, Grad-CAM
over those same images (`tracking/analysis.py`). Every figure goes to TensorBoard and to a PNG
in the run folder (`eval_CHECKPOINT_SPLIT_confusion.png`, `..._top_losses.png`,
`..._gradcam.png`), so a report needs no TensorBoard.
"""

from __future__ import annotations

from typing import Any

import torch

from dlx.tracking import analysis as an


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts, rows: true class, columns: predicted class."""
    index = target.long() * num_classes + pred.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _inputs(dataset, idx: torch.Tensor) -> torch.Tensor:
    """The model inputs of samples `idx` of a split, as training fed them."""
    return torch.stack([dataset[int(i)][0] for i in idx]).float()


def analyse(
    model,
    data,
    dataset,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    device,
    tracker,
    stem: str,
    tag: str,
    epoch: int,
) -> dict[str, Any]:
    """The classification part of eval.json; the figures logged (and saved as PNGs)."""
    from dlx.tracking.figures import confusion_figure

    classes = list(data.classes) or [str(i) for i in range(data.num_classes)]
    pred = outputs.argmax(1)
    matrix = confusion_matrix(pred, targets, len(classes))
    result: dict[str, Any] = {
        "classes": classes,
        "confusion_matrix": matrix.tolist(),
        "per_class": an.per_class_scores(pred, targets, classes),
        "confused_pairs": an.confused_pairs(matrix, classes),
    }
    tracker.figure(
        f"confusion_matrix/{tag}",
        confusion_figure(matrix.numpy(), classes),
        epoch,
        png=f"{stem}_confusion.png",
    )
    idx = an.top_losses(outputs, targets)
    probs = torch.softmax(outputs[idx].float(), 1)
    labels, rows = [], []
    for j, i in enumerate(idx.tolist()):
        t, p = int(targets[i]), int(pred[i])
        prob = float(probs[j, p])
        labels.append(f"{classes[t]} / {classes[p]} / {prob:.2f}")
        rows.append({"index": i, "true": classes[t], "predicted": classes[p], "prob": prob})
    result["top_losses"] = rows
    if not data.is_image or not len(idx):
        return result
    x = _inputs(dataset, idx)
    images = an.displayable(x, data.mean, data.std)
    tracker.figure(
        f"top_losses/{tag}",
        an.top_losses_figure(images, labels),
        epoch,
        png=f"{stem}_top_losses.png",
    )
    layer = an.last_conv(model)
    if layer is not None:
        cams = an.gradcam(model, layer, x.to(device), pred[idx]).cpu()
        tracker.figure(
            f"gradcam/{tag}",
            an.gradcam_figure(images, cams, labels),
            epoch,
            png=f"{stem}_gradcam.png",
        )
        result["gradcam_layer"] = next(n for n, m in model.named_modules() if m is layer)
    return result


def print_mistakes(result: dict[str, Any], console) -> None:
    pairs = result.get("confused_pairs") or []
    if pairs:
        shown = ", ".join(f"{p['true']} -> {p['predicted']} ({p['count']})" for p in pairs[:5])
        console.print(f"most confused (true -> predicted): {shown}", highlight=False)
