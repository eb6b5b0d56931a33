"""`dlx export RUN_DIR --format torchscript|onnx`: the model as a file that runs without dlx.

Next to the exported model goes its metadata (`NAME.json`: the model card's classes, input
shape and preprocessing, which checkpoint, the parity check), and the export is checked
before it is kept: the exported file is loaded back and run (TorchScript by torch.jit, ONNX
by onnxruntime) on a real batch of the run's own test split, beside the PyTorch model; the
largest absolute difference of the outputs is printed, and above the tolerance (1e-5
TorchScript, 1e-4 ONNX) the export is refused (exit 1) and the file removed.

ONNX needs the `export` extra (onnx, onnxscript, onnxruntime); without it, exit 2 naming
the pip command.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path
from typing import Any

import torch

from dlx.errors import RunFailed, UserError
from dlx.infer.model import Opened

FORMATS = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}
TOLERANCE = {"torchscript": 1e-5, "onnx": 1e-4}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
PIP = 'pip install "dlx[export]"  (or: pip install onnx onnxscript onnxruntime)'
BATCH = 64  # test inputs in the parity batch


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UserError(
            f"`--format {fmt}`: unknown format. Allowed: {' | '.join(FORMATS)}.", key="--format"
        )
    if fmt == "onnx":
        missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            raise UserError(
                f"`--format onnx` needs {', '.join(missing)}, not installed here. Install the "
                f"export extra: {PIP}",
                key="--format",
            )


def test_batch(opened: Opened) -> tuple[torch.Tensor, str]:
    """Up to BATCH inputs of the run's own test split, as training fed them; random inputs of
    the right shape (said so) when the run's data cannot be read here."""
    from dlx.data import build_data
    from dlx.data.loader import make_loader
    from dlx.models import min_input_size

    cfg = opened.cfg
    try:
        data = build_data(cfg.data, cfg.seed, min_input_size(cfg.model))
        xb, _ = next(iter(make_loader(data.test, BATCH, False, torch.device("cpu"))))
        return xb.float(), f"{len(xb)} inputs of the run's test split"
    except UserError as exc:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(BATCH, *opened.card["input_shape"], generator=gen)
        return x, f"{BATCH} random inputs (the run's data cannot be read here: {exc})"


def _quiet():
    """torch.onnx prints its progress on stdout: kept off the screen (errors still raise)."""
    return contextlib.redirect_stdout(io.StringIO())


@contextlib.contextmanager
def _no_jit_deprecation():
    """torch 2.9+ marks torch.jit deprecated (FutureWarning): TorchScript is what was asked."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.*")
        yield


def write_torchscript(model: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    from dlx.record.atomic import atomic_path

    with _no_jit_deprecation(), torch.no_grad():
        traced = torch.jit.trace(model, x[:2], check_trace=False)
    with atomic_path(path) as tmp:
        with _no_jit_deprecation():
            torch.jit.save(traced, str(tmp))


def run_torchscript(path: Path, x: torch.Tensor) -> torch.Tensor:
    with _no_jit_deprecation():
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return loaded(x).float()


def write_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    from dlx.record.atomic import atomic_path

    batch = torch.export.Dim("batch", min=1)
    with atomic_path(path) as tmp, _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (x[:2],),
            str(tmp),
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
        )


def run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0]).float()


def export(opened: Opened, fmt: str, path: Path) -> dict[str, Any]:
    """Write, load back, compare; the metadata dict (with the parity check), or RunFailed."""
    model = opened.model.cpu().eval()
    x, source = test_batch(opened)
    with torch.no_grad():
        want = model(x).float()
    write, run = (
        (write_torchscript, run_torchscript) if fmt == "torchscript" else (write_onnx, run_onnx)
    )
    try:
        write(model, x, path)
    except Exception as exc:  # noqa: BLE001 - the exporter's own error, in one line
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise RunFailed(
            f"{fmt} export of {opened.card['model'].get('_target_')} failed: "
            f"{type(exc).__name__}: {first}"
        ) from None
    got = run(path, x)
    diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
    tol = TOLERANCE[fmt]
    parity = {"max_abs_diff": diff, "tolerance": tol, "inputs": source}
    if not diff <= tol:
        path.unlink(missing_ok=True)
        raise RunFailed(
            f"The {fmt} export does not match the PyTorch model: largest difference {diff:.3g} "
            f"> {tol:g} on {source}. Nothing was kept."
        )
    card = opened.card
    return {
        "format": fmt,
        "file": path.name,
        "run": str(opened.run_dir),
        "checkpoint": opened.checkpoint,
        "epoch": opened.epoch,
        "task": card["task"],
        "classes": card.get("classes") or [],
        "input_shape": card["input_shape"],
        "input_name": "input",
        "output": "logits (softmax gives the probabilities)"
        if card["task"] == "classification"
        else "the predicted value",
        "preprocess": card["preprocess"],
        "parity": parity,
    }


def run_export(
    run_dir: str | Path,
    fmt: str,
    checkpoint: str = "best",
    out: str | None = None,
    config_dir: str | None = None,
    trust_config: bool = False,
) -> dict[str, Any]:
    """The command: export, check, write the metadata, print where and how close."""
    from dlx.infer.model import open_model
    from dlx.record.atomic import write_json
    from dlx.tracking.console import console

    check_format(fmt)
    opened = open_model(run_dir, checkpoint, "cpu", config_dir, trust_config)
    path = Path(out) if out else opened.run_dir / "export" / f"{checkpoint}{FORMATS[fmt]}"
    if path.is_dir() or (out and out.endswith(("/", "\\"))):  # a folder: the default name in it
        path = path / f"{checkpoint}{FORMATS[fmt]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"`--out {path}`: cannot make its folder ({exc.strerror}).") from None
    meta = export(opened, fmt, path)
    meta_path = metadata_path(path)
    write_json(meta_path, meta)
    p = meta["parity"]
    console.print(
        f"[bold]dlx export[/] {opened.run_dir}  checkpoint {checkpoint} (epoch {opened.epoch}) "
        f"-> {fmt}\nparity: largest difference [bold]{p['max_abs_diff']:.2e}[/] "
        f"(<= {p['tolerance']:g}) on {p['inputs']}\nwritten: {path}\n         {meta_path}",
        highlight=False,
        soft_wrap=True,
    )
    return meta


def metadata_path(path: Path) -> Path:
    """best.onnx -> best.json; best.torchscript.pt -> best.torchscript.json."""
    return path.with_suffix(".json")
