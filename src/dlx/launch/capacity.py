"""Sizes nobody can allocate are bad input: refuse them before anything is built.

`check_capacity(cfg, device)` builds the model on PyTorch's meta device (shapes, no memory),
counts one sample's activations, and adds up what a training step needs: the parameters with
their gradients and optimizer state, and the batch's activations (kept for backward). A model
of up to REAL_BYTES of weights runs one zeroed sample through it on the CPU (a few ms; a
forward on the meta device costs ~1 s of one-off imports on every start); a bigger one is
sized on the meta device, so nothing the machine cannot hold is ever allocated. Above
what the machine has available, the run is refused (exit 2) with the estimate and the keys
that make it big, instead of dying in the allocator (or being killed by the OS) minutes in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dlx.errors import UserError, _size

# What dlx's own data loaders produce, known without loading anything: (C, H, W) or (features,)
NATIVE = {
    "digits": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "function": ((1,), None),
    "moons": ((2,), 2),
    "circles": ((2,), 2),
    "spiral": ((2,), 2),
}
REAL_BYTES = 256 * 2**20  # weights up to this size: one real sample forward, not the meta device
SIZE_KEYS = ("data.image_size", "model.width", "model.hidden", "model.channels", "model.depth")


def _shape(data: Any, min_size: int | None) -> tuple[tuple[int, ...], int | None] | None:
    """(in_shape, classes or None for regression) of dlx's own data groups; None: unknown."""
    name = str(data.get("name", ""))
    target = str(data.get("_target_", ""))
    if target == "dlx.data.imagefolder.load":
        size = data.get("image_size")
        if not size:
            return None  # refused later with its own message
        root = Path(str(data.get("root") or "."))
        classes = sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 2
        s = max(64 if size == "auto" else int(size), min_size or 0)  # auto: at most 64
        return (3, s, s), max(classes, 2)
    if name not in NATIVE or not target.startswith("dlx.data."):
        return None
    shape, classes = NATIVE[name]
    if len(shape) == 3:
        size = data.get("image_size") or shape[-1]
        size = max(int(size), min_size or 0)
        shape = (shape[0], size, size)
    return shape, classes


def available_memory(device: Any) -> int | None:
    """Bytes free for this run on `device`: the GPU's free memory, or the machine's
    MemAvailable (what can be allocated without swapping). None when unknown."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # noqa: BLE001 (no estimate is better than a failed start)
            return None
    if getattr(device, "type", "cpu") != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def estimate(cfg: DictConfig) -> dict[str, int] | None:
    """{'parameters', 'parameter_bytes', 'activation_bytes'} of one training step, from the
    model built on the meta device; None when the data or model is not one dlx can size."""
    import torch

    from dlx.data import DataBundle
    from dlx.models import build_model, min_input_size

    found = _shape(cfg.data, min_input_size(cfg.model))
    if found is None:
        return None
    in_shape, classes = found
    fake = DataBundle(
        train=None,  # type: ignore[arg-type]
        val=None,  # type: ignore[arg-type]
        test=None,  # type: ignore[arg-type]
        task="classification" if classes else "regression",
        in_shape=in_shape,
        num_classes=classes,
    )
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    if isinstance(model_cfg, dict):  # no downloads: the weights' size is the same
        for key in ("pretrained",):
            if key in model_cfg:
                model_cfg[key] = False
        if "weights" in model_cfg:
            model_cfg["weights"] = None
    try:
        with torch.device("meta"):
            binary = cfg.get("loss") == "bce"  # one output unit
            model = build_model(OmegaConf.create(model_cfg), cfg.reg, fake, binary=binary)
    except UserError:
        raise
    except Exception:  # noqa: BLE001 (building it for real gives the real message)
        return None
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # weights, plus for what trains: its gradient and (Adam-style) two optimizer moments
    param_bytes = 4 * params + 3 * 4 * trainable
    batch = int(cfg.batch_size)
    # each activation is kept for backward, and its gradient is as big
    activation_bytes = 2 * 4 * batch * _sample_outputs(model, in_shape, 4 * params)
    return {
        "parameters": params,
        "parameter_bytes": param_bytes,
        "activation_bytes": activation_bytes,
    }


def _sample_outputs(model: Any, in_shape: tuple[int, ...], weight_bytes: int) -> int:
    """Numbers one sample puts through `model` (built on the meta device): its input and every
    leaf module's output. Small models run a zeroed sample on the CPU in eval mode (the same
    shapes; batch norm takes one sample there); big ones a meta sample."""
    import torch

    real = weight_bytes <= REAL_BYTES
    if real:
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for t in (*model.parameters(), *model.buffers()):
                t.zero_()
    outputs = [int(torch.Size(in_shape).numel())]

    def count(_module, _inputs, out) -> None:
        if isinstance(out, torch.Tensor):
            outputs.append(out[0].numel() if out.dim() else 1)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.zeros((1, *in_shape), device="cpu" if real else "meta"))
    except Exception:  # noqa: BLE001 (a shape the model refuses: building it says so)
        outputs = outputs[:1]
    finally:
        for h in handles:
            h.remove()
    return sum(outputs)


_ESTIMATES: dict[str, dict[str, int] | None] = {}  # recent estimates, by what they read


def _estimate_once(cfg: DictConfig) -> dict[str, int] | None:
    """`estimate`, once for each size this process checks (a sweep's seeds and learning rates,
    a run's suggestions: the same model, data and batch), by what `estimate` reads of `cfg`."""
    key = size_key(cfg)
    if key is None:
        return estimate(cfg)
    if key not in _ESTIMATES:
        _ESTIMATES[key] = estimate(cfg)
        while len(_ESTIMATES) > 32:
            del _ESTIMATES[next(iter(_ESTIMATES))]
    return _ESTIMATES[key]


def size_key(cfg: DictConfig) -> str | None:
    """What `estimate` reads of a config, resolved (None: unreadable, estimated afresh)."""
    try:
        keys = [k for k in ("data", "model", "reg", "loss", "batch_size") if k in cfg]
        plain = {
            k: OmegaConf.to_container(cfg[k], resolve=True)
            if OmegaConf.is_config(cfg[k])
            else cfg[k]
            for k in keys
        }
        if isinstance(plain.get("data"), dict):  # the split's seed moves samples, not shapes
            plain["data"] = {k: v for k, v in plain["data"].items() if k != "seed"}
        return repr(plain)
    except Exception:  # noqa: BLE001
        return None


def check_capacity(cfg: DictConfig, device: Any) -> None:
    """Refuse (exit 2) a run whose parameters and one batch need more memory than `device`
    has available, naming the keys that size it."""
    est = _estimate_once(cfg)  # also refuses (exit 2) a conv stack that shrinks the image away
    free = available_memory(device)
    if est is None or free is None:
        return
    need = est["parameter_bytes"] + est["activation_bytes"]
    if need <= free:
        return
    present = [k for k in SIZE_KEYS if OmegaConf.select(cfg, k, default=None) is not None]
    if est["activation_bytes"] > est["parameter_bytes"]:
        present.insert(1 if present[:1] == ["data.image_size"] else 0, "batch_size")
    key = present[0] if present else "model"
    values = ", ".join(f"{k}={OmegaConf.select(cfg, k)}" for k in present[:4])
    raise UserError(
        f"This run needs about {_size(need)} of memory, more than the {_size(free)} available "
        f"on {getattr(device, 'type', device)}: {est['parameters']:,} parameters "
        f"({_size(est['parameter_bytes'])} with gradients and optimizer state) and one batch of "
        f"{cfg.batch_size} ({_size(est['activation_bytes'])} of activations). "
        f"Make it smaller ({values}).",
        key=key,
    )
