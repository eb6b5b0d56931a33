"""What a loss should be compared with, computed once per run from its data: the loss of a
blind guess (classification: ln(classes), uniform probabilities) and, for regression, the
validation MSE of the simplest fits made on the training split (the mean, a line, a cubic
polynomial). A network whose best val loss is no better than these has not learned more than
they do, however far its loss fell from the first step."""

from __future__ import annotations

import math
from typing import Any

POLY_DEGREE = 3


def _tensors(dataset: Any) -> tuple[Any, Any] | None:
    tensors = getattr(dataset, "tensors", None)
    if tensors is None or len(tensors) != 2:
        return None
    return tensors


def _features(x: Any, degree: int) -> Any:
    import torch

    x = x.reshape(len(x), -1).double()
    cols = [torch.ones(len(x), 1, dtype=x.dtype)] + [x**p for p in range(1, degree + 1)]
    return torch.cat(cols, dim=1)


def _fit_mse(xt: Any, yt: Any, xv: Any, yv: Any, degree: int) -> tuple[float, float] | None:
    """The val MSE of a least-squares polynomial fitted on the training split, and its MSE on
    that split (how well it fits the points it was fitted to)."""
    import torch

    a = _features(xt, degree)
    if a.shape[1] >= len(a):  # more coefficients than points: no honest fit
        return None
    target = yt.reshape(len(yt), -1).double()
    coef = torch.linalg.lstsq(a, target).solution
    pred = _features(xv, degree) @ coef
    val = float(((pred - yv.reshape(len(yv), -1).double()) ** 2).mean())
    return val, float(((a @ coef - target) ** 2).mean())


def loss_baselines(data: Any) -> dict[str, float]:
    """{chance} for classification; {mean, linear, cubic} val MSEs for regression (the ones the
    data allows: a polynomial only for inputs of a few features), each with its MSE on the
    training split as NAME_train. Empty when unknown."""
    if getattr(data, "task", None) == "classification":
        classes = getattr(data, "num_classes", None)
        return {"chance": math.log(classes)} if classes and classes > 1 else {}
    train, val = _tensors(getattr(data, "train", None)), _tensors(getattr(data, "val", None))
    if train is None or val is None or len(val[0]) == 0:
        return {}
    (xt, yt), (xv, yv) = train, val
    yt2 = yt.reshape(len(yt), -1).double()
    out = {"mean": float(((yv.reshape(len(yv), -1).double() - yt2.mean(0)) ** 2).mean())}
    out["mean_train"] = float(((yt2 - yt2.mean(0)) ** 2).mean())
    try:
        fits = {"linear": _fit_mse(xt, yt, xv, yv, 1)}
        if xt[0].numel() <= 4:  # a low-degree polynomial of a few inputs
            fits["cubic"] = _fit_mse(xt, yt, xv, yv, POLY_DEGREE)
        for name, fit in fits.items():
            if fit is not None:
                out[name], out[f"{name}_train"] = fit
    except RuntimeError:  # a singular fit: the mean is still a baseline
        pass
    return {k: float(f"{v:.6g}") for k, v in out.items()}


def best_baseline(baselines: dict[str, float]) -> tuple[str, float] | None:
    """The lowest regression baseline, with its name: ("cubic", 0.0167)."""
    reg = {k: v for k, v in baselines.items() if k in ("mean", "linear", "cubic")}
    if not reg:
        return None
    name = min(reg, key=reg.get)
    return name, reg[name]


NAMES = {
    "mean": "predicting the training mean",
    "linear": "a straight line fitted to the training split",
    "cubic": "a cubic polynomial fitted to the training split",
}
