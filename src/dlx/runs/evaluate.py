"""`dlx eval RUN_DIR`: reload a finished run and measure it again.

The model and data are rebuilt from the run's own `.hydra/config.yaml` by the training
code (`training.loop.build`), the weights come from its checkpoint, and the metrics from
the same `evaluate` the run used, so `dlx eval` on the test split reproduces the run's own
test metric. It adds what a single number hides: per-class scores, the confusion matrix,
the most-confused pairs, the top-loss images and Grad-CAM (classification, `runs/mistakes.py`)
or the fit against the true function (regression), in TensorBoard and as PNG files.
`--data-root DIR` evaluates on another image folder with the run's classes (`runs/dataroot.py`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from dlx.errors import UserError
from dlx.record import names
from dlx.record.atomic import write_bytes
from dlx.record.text import safe_text

CHECKPOINTS = ("best", "last")
SPLITS = ("test", "val")


def _run_metrics(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The run's own metrics.json, and a note when it is there but damaged (eval goes on
    without it: the checkpoint and the config are what it needs)."""
    path = names.metrics(run_dir)
    if not path.is_file():
        return {}, None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"{path} is damaged ({type(exc).__name__}); evaluating without it"
    if not isinstance(data, dict) or not isinstance(data.get("test") or {}, dict):
        return {}, f"{path} is not a dlx metrics file; evaluating without it"
    return data, None


def _writable(run_dir: Path) -> bool:
    """Can eval.json and TensorBoard events go into the run folder? (os.access sees a
    read-only mount even as root, where permission bits do not stop a write.)"""
    return os.access(run_dir, os.W_OK | os.X_OK)


@torch.no_grad()
def predict_split(model, loader, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, targets) over a whole split, on the CPU."""
    model.eval()
    outs, ys = [], []
    for xb, yb in loader:
        outs.append(model(xb.to(device)).float().cpu())
        ys.append(yb.cpu())
    return torch.cat(outs), torch.cat(ys)


def run_eval(
    run_dir: str | Path,
    checkpoint: str | None = None,
    split: str | None = None,
    device: str | None = None,
    config_dir: str | None = None,
    trust_config: bool = False,
    data_root: str | None = None,
) -> dict[str, Any]:
    """Evaluate RUN_DIR's checkpoint on a split; print, write eval.json, log to TensorBoard.

    `checkpoint=None` picks the checkpoint the run's own test used (metrics.json), else best.
    `device=None` uses the run's own `device`; another (auto|cpu|cuda|mps) evaluates a run
    trained on a GPU on a machine without one. The folder is opened by
    `launch.reopen.open_run`: its config is checked before anything is built from it (only
    what dlx ships, the targets of `config_dir`, or everything with `trust_config`). A
    read-only run folder is evaluated and nothing written. `data_root`: another image folder
    with the run's classes (`runs/dataroot.py`); `split` then defaults to `all` (every image).
    """
    from dlx.data.loader import make_loader
    from dlx.launch.reopen import open_run
    from dlx.tracking.console import console
    from dlx.training.loop import evaluate

    split = split or ("all" if data_root else "test")
    _checked(checkpoint, split, data_root)
    hint = "Evaluate it with `--device cpu` (or auto)."
    run = open_run(
        run_dir,
        config_dir=config_dir,
        trust_config=trust_config,
        device=device,
        device_hint=hint,
        edit=_on_data_root(run_dir, data_root),
    )
    run_dir, cfg = run.path, run.cfg
    run_metrics, note = _run_metrics(run_dir)
    if note:
        console.print(f"[yellow]note:[/] {note}")
    writable = _writable(run_dir)
    if not writable:
        console.print(
            f"[yellow]note:[/] {run_dir} is read-only: the metrics are printed, eval.json and "
            "the figures are not written"
        )
    run_test = run_metrics.get("test") or {}
    checkpoint = checkpoint or run_test.get("checkpoint") or "best"
    _checked(checkpoint, split, data_root)
    path = _checkpoint_file(run_dir, checkpoint)
    b, epoch = _built(cfg, path)
    dataset = _split(b, split)
    loader = make_loader(dataset, max(cfg.batch_size, 256), False, b.device)  # as in fit()
    metrics = evaluate(b.model, loader, b.loss_fn, b.data.task, b.device, cfg.precision)
    result: dict[str, Any] = {
        "run": str(run_dir),
        "checkpoint": checkpoint,
        "epoch": epoch,
        "split": split,
        "task": b.data.task,
        "metrics": metrics,
    }
    if data_root:
        result["data_root"] = str(cfg.data.root)
    elif split == "test" and run_test.get("checkpoint") == checkpoint:
        same = {k: run_test[k] for k in metrics if isinstance(run_test.get(k), (int, float))}
        diff = max((abs(metrics[k] - v) for k, v in same.items()), default=0.0)
        result["run_test"] = {"metrics": same, "max_abs_diff": diff}
    stem = _stem(checkpoint, split, data_root)
    _figures(b, dataset, loader, result, run_dir, writable, stem, epoch)
    # one file per checkpoint and split (a second eval of another split keeps the first);
    # eval.json is always the latest
    out = run_dir / f"{stem}.json"
    if writable:
        data = json.dumps(result, indent=2).encode()
        for path in (out, names.eval_json(run_dir)):
            write_bytes(path, data)
    print_result(result, out if writable else None)
    return result


def _checked(checkpoint: str | None, split: str, data_root: str | None = None) -> None:
    if checkpoint is not None and checkpoint not in CHECKPOINTS:
        raise UserError(
            f"`--checkpoint {checkpoint}`: unknown checkpoint. Allowed: {' | '.join(CHECKPOINTS)}.",
            key="--checkpoint",
        )
    allowed = (*SPLITS, "all") if data_root else SPLITS
    if split not in allowed:
        more = " (all: with --data-root)" if split == "all" else ""
        raise UserError(
            f"`--split {split}`: unknown split{more}. Allowed: {' | '.join(allowed)}.",
            key="--split",
        )


def _on_data_root(run_dir, data_root: str | None):
    """open_run's `edit`: the config pointed at --data-root (classes checked first)."""
    if not data_root:
        return None

    def edit(cfg):
        from dlx.infer.model import read_card
        from dlx.runs.dataroot import apply_data_root

        apply_data_root(cfg, data_root, Path(run_dir), read_card(Path(run_dir)))
        return cfg

    return edit


def _split(b, split: str):
    if split == "all":
        from dlx.runs.dataroot import whole

        return whole(b.data)
    return b.data.test if split == "test" else b.data.val


def _stem(checkpoint: str, split: str, data_root: str | None) -> str:
    """eval_best_test; with --data-root, the folder's name too: eval_best_newset_all."""
    if not data_root:
        return f"eval_{checkpoint}_{split}"
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(data_root).name)
    return f"eval_{checkpoint}_{name or 'data'}_{split}"


def _checkpoint_file(run_dir: Path, checkpoint: str) -> Path:
    path = names.checkpoint(run_dir, checkpoint)
    if not path.is_file():
        hint = (
            " (the run ended before its first validation, e.g. it diverged.) Try --checkpoint last."
            if checkpoint == "best"
            else ""
        )
        raise UserError(f"No checkpoint at {path}.{hint}", key="--checkpoint")
    return path


def _built(cfg, path: Path):
    """The run rebuilt by the training code (same data split, same model class), with the
    checkpoint's weights: last.pt of an EMA run holds the raw weights training goes on from
    and the average beside them; the average is what validation and the run's test used."""
    from dlx.training import checkpoint as ckpt
    from dlx.training.loop import build

    b = build(cfg)
    state = ckpt.load(path, map_location=b.device)
    ckpt.load_model_state(b.model, ckpt.weights_of(state, path), path)
    return b, ckpt.epoch_of(state)


def _figures(b, dataset, loader, result, run_dir: Path, writable: bool, stem: str, epoch: int):
    """Classification: what it gets wrong (runs/mistakes.py); regression: the fit figure.
    In the run's own TensorBoard run and as PNGs in the run folder."""
    from dlx.tracking.tensorboard import Tracker

    tracker = Tracker(run_dir, enabled=writable)  # appends to the run's own TensorBoard run
    tag = stem.removeprefix(f"eval_{result['checkpoint']}_")
    tracker.scalars({f"eval/{tag}/{k}": v for k, v in result["metrics"].items()}, epoch)
    if b.data.task == "classification":
        from dlx.runs.mistakes import analyse

        outputs, targets = predict_split(b.model, loader, b.device)
        result.update(
            analyse(b.model, b.data, dataset, outputs, targets, b.device, tracker, stem, tag, epoch)
        )
    elif b.data.true_fn is not None:
        from dlx.tracking.figures import fit_figure
        from dlx.training.loop import predict

        x = torch.linspace(-1, 1, 512).unsqueeze(1)
        xs, ys = dataset.tensors
        fig = fit_figure(
            x.squeeze(1),
            b.data.true_fn(x).squeeze(1),
            predict(b.model, x, b.device).squeeze(1),
            xs.squeeze(1),
            ys.squeeze(1),
        )
        tracker.figure(f"fit/{tag}", fig, epoch, png=f"{stem}_fit.png")
    tracker.close()


def print_result(result: dict[str, Any], out: Path | None) -> None:
    from rich.table import Table

    from dlx.tracking.console import console

    console.print(
        f"[bold]dlx eval[/] {result['run']}  checkpoint [bold]{result['checkpoint']}[/] "
        f"(epoch {result['epoch']}), split [bold]{result['split']}[/]"
    )
    console.print("  ".join(f"{k} [bold]{v:.6g}[/]" for k, v in result["metrics"].items()))
    if "run_test" in result:
        rt = result["run_test"]
        own = "  ".join(f"{k} {v:.6g}" for k, v in rt["metrics"].items())
        console.print(f"the run's own test: {own}  (largest difference {rt['max_abs_diff']:.1e})")
    if result.get("per_class"):
        table = Table(title="per class", title_justify="left")
        for col in ("class", "precision", "recall", "f1", "support"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for r in result["per_class"]:
            table.add_row(
                safe_text(r["class"], 200),  # a class folder's name, from disk
                f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
                f"{r['f1']:.3f}",
                str(r["support"]),
            )
        console.print(table)
        from dlx.runs.mistakes import print_mistakes

        print_mistakes(result, console)
    if out is not None:
        console.print(
            f"written: {out}  (figure in TensorBoard: dlx board {Path(result['run']).parent})"
        )
