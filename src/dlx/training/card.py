"""The model card: what inference needs to use a run without its training data.

`model.json` beside `checkpoints/` (and the same dict in `best.pt`/`last.pt` under "card"),
written when training starts, so an interrupted run has it too:

- task, class names in label order, the input shape the model takes;
- the preprocessing (`data/inputs.py` applies it with training's own functions): how files
  are decoded (RGB, shorter side resized to `decode_size` bilinear, centre-cropped square;
  luminance for one-channel sets), the resize to the model's `size`, the divisor (`scale`:
  255 for pixels; `array_scale` for `.npy`/`.csv` rows, 16 for digits), and the per-channel
  mean/std as the run measured or configured them;
- the model's config (`model` group and the `reg` keys that shape it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlx.config.rules import to_plain
from dlx.data import DataBundle
from dlx.record.atomic import write_json
from dlx.record.names import MODEL_CARD

FORMAT = "dlx-model/1"
FILE = MODEL_CARD
ARRAY_SCALE = {"digits": 16.0}  # .npy/.csv rows at the data set's own scale (else 0..255)


def preprocessing(data: DataBundle) -> dict[str, Any]:
    if not data.is_image:
        return {"kind": "features", "features": int(data.in_shape[0])}
    c, h, _ = (int(v) for v in data.in_shape)
    decode = int(data.native_size[0]) if data.native_size else h
    return {
        "kind": "image",
        "channels": c,
        "decode": f"RGB{' -> luminance' if c == 1 else ''}, shorter side to {decode} "
        f"(bilinear), centre crop {decode}x{decode}",
        "decode_size": decode,
        "size": h,
        "scale": 255.0,
        "array_scale": ARRAY_SCALE.get(data.name, 255.0),
        "mean": [float(v) for v in data.mean],
        "std": [float(v) for v in data.std],
    }


def describe(cfg: Any, data: DataBundle) -> dict[str, Any]:
    """The card of a run built from `cfg` with `data` (plain JSON types only: it also goes
    into checkpoints, which are read back with `weights_only=True`)."""
    classes = list(data.classes)
    if data.task == "classification" and not classes:
        classes = [str(i) for i in range(int(data.num_classes or 0))]
    reg = cfg.get("reg") or {}
    return {
        "format": FORMAT,
        "task": data.task,
        "data": data.name,
        "classes": [str(c) for c in classes],
        "input_shape": [int(v) for v in data.in_shape],
        "out_dim": int(data.out_dim),
        "preprocess": preprocessing(data),
        "model": to_plain(cfg.model),
        "reg": {
            "dropout": float(reg.get("dropout", 0.0) or 0.0),
            "batchnorm": bool(reg.get("batchnorm", False))
            or bool(cfg.model.get("batchnorm", False)),
        },
    }


def write(run_dir: Path, card: dict[str, Any]) -> None:
    """model.json, atomically and never through a link."""
    write_json(Path(run_dir) / FILE, card)
