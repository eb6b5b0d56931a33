"""The end of a run: test the kept model, draw what it learned, and write metrics.json (and
the HParams dashboard's row) from the history the epochs left."""

from __future__ import annotations

import time
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from dlx.models import count_parameters
from dlx.record import names
from dlx.record import status as st
from dlx.record.metrics import flat_config, write_metrics
from dlx.record.text import safe_text
from dlx.tracking.baselines import loss_baselines
from dlx.tracking.boundary import is_plane, save_boundary
from dlx.tracking.diagnostics import diagnose, diagnosis_markdown
from dlx.tracking.tensorboard import run_hparams
from dlx.tracking.visuals import log_conv_layer
from dlx.training.debug import overfit_verdict
from dlx.training.run import Run, evaluate, predict


def finish(
    run: Run, status: str, error: str | None, t_start: float, choices: dict[str, str] | None
) -> dict[str, Any]:
    """Test (best.pt's weights when early_stopping.restore_best), figures, metrics.json."""
    cfg, state, stopper, tracker, data = run.cfg, run.state, run.stopper, run.tracker, run.data
    if run.knobs.profiler is not None:  # a run that ended inside the profiled steps
        run.knobs.profiler.close()
    test_stats = None
    model = run.eval_model  # the weight EMA when on
    if status in st.TESTED:  # a run that ended well gets its test
        test_ckpt = "last"
        if stopper.restore_best and run.best_weights is not None:
            model.load_state_dict(run.best_weights)
            test_ckpt = "best"
        test_stats = evaluate(
            model, run.test_loader, run.loss_fn, run.task, run.device, cfg.precision
        )
        test_stats["checkpoint"] = test_ckpt
        if status != st.PRUNED:  # a trial stopped on purpose gets its test, not its figures
            _figures(run, model)
    elif status == st.INTERRUPTED:
        run.console.print(
            "[yellow]interrupted:[/] the last completed epoch is saved in "
            f"{safe_text(run.ckpt_dir / names.LAST)}; continue with:\n"
            f"  dlx train --resume {safe_text(run.run_dir)}"
        )

    best_hist = next((h for h in state.history if h["epoch"] == stopper.best_epoch), None)
    trainable, frozen = count_parameters(run.model)
    metrics: dict[str, Any] = {
        "status": status,
        "epochs_run": state.epoch,
        "best_epoch": stopper.best_epoch,
        "monitor": stopper.monitor,
        "best_value": stopper.best if stopper.best_epoch else None,
        "early_stopping": {"fired": stopper.fired, "epoch": stopper.fired_epoch},
        "val": dict(best_hist["val"]) if best_hist else None,
        "test": test_stats,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
        "task": run.task,
        "data": data.name,
        "device": str(run.device),
        "parameters": {"trainable": trainable, "frozen": frozen},
        "choices": dict(choices or {}),
        **knob_metrics(run),  # perf and debug: summary fields, before the big ones
        "error": error,
        "config": flat_config(cfg),  # what `dlx runs --filter/--sort` and `dlx compare` read
        "diagnosis": diagnose(
            state.history,
            run.task,
            status,
            initial_loss=state.initial_loss,
            error=error,
            cfg=cfg,
            gradients=run.grads.found if run.grads is not None else None,
            run_dir=run.run_dir,
            baselines=loss_baselines(data),
            size={"parameters": trainable, "samples": _samples(data)},
            check=run.check,
        ),
        "history": state.history,  # last: `dlx runs` stops reading before it
    }
    if run.dist.is_main:
        tracker.text("diagnosis", diagnosis_markdown(metrics["diagnosis"]), state.epoch)
        hp, leading = run_hparams(cfg, choices or {}, flat_hparams(cfg))
        final = {"hparam/best_val_loss": best_hist["val"]["loss"] if best_hist else float("nan")}
        if test_stats:
            final["hparam/test_loss"] = test_stats["loss"]
            if "acc" in test_stats:
                final["hparam/test_acc"] = test_stats["acc"]
        tracker.hparams(hp, final, leading)
        write_metrics(run.run_dir, metrics)
    tracker.close()
    run.console.summary(metrics, str(run.run_dir))
    return metrics


def _samples(data: Any) -> int | None:
    try:
        return len(data.train)
    except TypeError:  # a stream without a length
        return None


def _figures(run: Run, model: torch.nn.Module) -> None:
    """What the kept model learned: its conv filters, and a function's curve or the
    decision boundary of 2-D points (fit.png, decision_boundary.png)."""
    data, epoch = run.data, run.state.epoch
    log_conv_layer(run.tracker, model, run.example, epoch)  # what the filters learned
    if data.true_fn is not None and run.dist.is_main:
        _fit_figure(run)
    if is_plane(data) and run.dist.is_main:  # 2-D points: decision_boundary.png
        save_boundary(run.tracker, model, data, run.device, run.run_dir, epoch)


def _fit_figure(run: Run) -> None:
    """data=function: the learned curve over the true one and the training points."""
    from dlx.tracking.figures import fit_figure

    x = torch.linspace(-1, 1, 512).unsqueeze(1)
    xt, yt = run.data.train.tensors
    fig = fit_figure(
        x.squeeze(1),
        run.data.true_fn(x).squeeze(1),
        predict(run.eval_model, x, run.device).squeeze(1),
        xt.squeeze(1),
        yt.squeeze(1),
    )
    run.tracker.figure("fit", fig, run.state.epoch, png="fit.png")


def knob_metrics(run: Run) -> dict[str, Any]:
    """Throughput, the batches each split ran, and under debug=overfit the verdict (printed)."""
    speeds = run.knobs.throughput  # this process's epochs (a resumed run measures its own)
    loaders = {"train": run.train_loader, "val": run.val_loader, "test": run.test_loader}
    out: dict[str, Any] = {
        "perf": {"samples_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None},
        "debug": {"batches": {k: len(v) for k, v in loaders.items()}},
    }
    if run.knobs.debug.overfit_batches:
        last = run.state.history[-1]["train"]["loss"] if run.state.history else None
        verdict = overfit_verdict(run.state.initial_loss, last, len(run.train_loader))
        out["debug"]["overfit"] = verdict
        run.console.print(f"[bold]{verdict['line']}[/]")
        run.tracker.text("debug/overfit", verdict["line"], run.state.epoch)
    return out


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The knobs a sweep turns, flattened for the HParams dashboard."""
    keys = [
        "opt.lr",
        "batch_size",
        "epochs",
        "seed",
        "reg.l1",
        "reg.weight_decay",
        "reg.dropout",
        "reg.batchnorm",
        "model.batchnorm",
        "model.activation",
        "model.init",
        "model.width",
        "model.depth",
    ]
    out: dict[str, Any] = {
        "opt": str(cfg.opt._target_).rsplit(".", 1)[-1],
        "model": str(cfg.model._target_).rsplit(".", 1)[-1],
    }
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            out[key] = value
    return out
