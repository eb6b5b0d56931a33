"""What each layer makes of the image: the shapes of the feature maps, layer by layer.

`trace(features, in_shape)` sends one (zero) image through a conv stack a layer at a time, on
whatever device the model is built on (PyTorch's meta device in the preflight: shapes, no
memory), and refuses a stack whose kernel, stride, padding or pooling shrinks a feature map
to nothing, naming the layer and the shape it got. `output_shapes(model, x)` is what the
model table at the start of a run prints: each layer's output shape for a real batch.
"""

from __future__ import annotations

import torch
from torch import nn

from dlx.errors import UserError


def shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    """(6, 8, 8) -> '6x8x8' (one sample: no batch dimension)."""
    return "x".join(str(int(s)) for s in shape)


def describe(layer: nn.Module) -> str:
    """'Conv2d 5x5, stride 1, padding 0' / 'MaxPool2d 2x2, stride 2'."""
    k = getattr(layer, "kernel_size", None)
    if k is None:
        return type(layer).__name__
    k, s = _pair(k), _pair(getattr(layer, "stride", 1) or k)
    pad = _pair(getattr(layer, "padding", 0))
    text = f"{type(layer).__name__} {k[0]}x{k[1]}, stride {s[0]}"
    return text + (f", padding {pad[0]}" if isinstance(layer, nn.Conv2d) or pad[0] else "")


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _expected(layer: nn.Module, h: int, w: int) -> str:
    """What the layer's size formula gives for an h x w input: floor((n + 2p - k) / s) + 1 (ceil
    for pooling in ceil mode)."""
    k, s = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
    p = _pair(layer.padding)
    ceil = bool(getattr(layer, "ceil_mode", False))
    out = []
    for n, ki, si, pi in ((h, k[0], s[0], p[0]), (w, k[1], s[1], p[1])):
        span = n + 2 * pi - ki
        out.append((-(-span // si) if ceil else span // si) + 1)
    return f"{out[0]}x{out[1]}"


def collapse_key(layer: nn.Module) -> str:
    return "model.kernel_size" if isinstance(layer, nn.Conv2d) else "model.pool_size"


def trace(features: nn.Sequential, in_shape: tuple[int, ...], prefix: str = "features") -> int:
    """The number of values `features` outputs for one image of `in_shape` (what the first
    fully connected layer takes); a UserError naming the layer whose output has no pixels."""
    x = torch.zeros(1, *in_shape)
    was_training = features.training
    features.eval()  # batch norm takes one image in eval mode, even a 1x1 feature map
    with torch.no_grad():
        try:
            return _trace(features, x, prefix)
        finally:
            features.train(was_training)


def _trace(features: nn.Sequential, x: torch.Tensor, prefix: str) -> int:
    with torch.no_grad():
        for i, layer in enumerate(features):
            before = tuple(x.shape[1:])
            try:
                x = layer(x)
                empty = x.shape[-1] < 1 or x.shape[-2] < 1
            except RuntimeError:
                empty = True
            if empty:
                raise collapse_error(f"{prefix}.{i}", layer, before)
    return int(x[0].numel())


def collapse_error(name: str, layer: nn.Module, before: tuple[int, ...]) -> UserError:
    h, w = before[-2], before[-1]
    out = _expected(layer, h, w) if hasattr(layer, "kernel_size") else "nothing"
    return UserError(
        f"Layer {name} ({describe(layer)}) gets a {shape_text(before)} feature map and would "
        f"make it {out}: the image has shrunk to nothing. Make `model.kernel_size`, "
        "`model.stride` or `model.pool_size` smaller, pad more (`model.padding=same`), "
        "use `model.pool=none`, fewer conv layers (`model.channels`), or a larger "
        "`data.image_size`.",
        key=collapse_key(layer),
    )


def table_modules(model: nn.Module, max_rows: int = 40) -> list[tuple[str, nn.Module]]:
    """The modules the model table shows: two name levels deep (`features.0`,
    `backbone.layer1`), or one when that would be too many rows."""
    for depth in (2, 1):
        rows = []
        for name, m in model.named_modules():
            level = name.count(".") + 1
            if name and (level == depth or (level < depth and not list(m.children()))):
                rows.append((name, m))
        if len(rows) <= max_rows:
            break
    return rows


@torch.no_grad()
def output_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """{layer name: output shape of one sample} for the model table's rows, from one forward
    pass of `x` in eval mode (the model's mode is put back). {} when the forward fails."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in table_modules(model):

        def hook(_m, _i, out, name=name) -> None:
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, tuple(out.shape[1:]))

        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(x[:1])
    except Exception:  # noqa: BLE001 (an exotic model: the table goes without shapes)
        return {}
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return shapes
