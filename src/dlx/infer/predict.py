"""`dlx predict RUN_DIR INPUT...`: the run's model on new inputs, with its own preprocessing.

Inputs are gathered and prepared by `infer/sources.py` (training's own decode, resize and
normalization); the model runs in batches; a classification run gives the top-k classes with
their probabilities (softmax), a regression run the predicted value. The terminal gets a table,
`--out FILE.csv|.json` one row per input. Unusable inputs are named and skipped (exit 0 with a
count); when none is usable, exit 2.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch

from dlx.errors import UserError
from dlx.infer.model import Opened
from dlx.infer.sources import gather

SHOW_SKIPPED = 5
OUT_FORMATS = (".csv", ".json")
PROGRESS_ABOVE = 512  # inputs: a progress bar in a terminal


@torch.no_grad()
def outputs(model: torch.nn.Module, x: torch.Tensor, device, batch_size: int) -> torch.Tensor:
    """The model's outputs over `x`, in batches, on the CPU (float32)."""
    model.eval()
    outs = [
        model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)
    ]
    return torch.cat(outs) if outs else torch.empty(0)


def rows_of(
    opened: Opened, names: list[str], out: torch.Tensor, top_k: int
) -> list[dict[str, Any]]:
    """One dict per input: file, class, prob, top_k [{class, prob}] (regression: prediction)."""
    if opened.card["task"] != "classification":
        return [{"file": n, "prediction": float(v)} for n, v in zip(names, out[:, 0], strict=True)]
    classes = opened.classes
    probs = torch.softmax(out, dim=1)
    k = max(1, min(top_k, probs.shape[1]))
    top_p, top_i = probs.topk(k, dim=1)
    rows = []
    for n, ps, ix in zip(names, top_p.tolist(), top_i.tolist(), strict=True):
        top = [{"class": classes[i], "prob": p} for p, i in zip(ps, ix, strict=True)]
        rows.append({"file": n, "class": top[0]["class"], "prob": top[0]["prob"], "top_k": top})
    return rows


def predict_inputs(
    opened: Opened, inputs: list[Any], top_k: int = 1, batch_size: int = 256, show=None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]], int]:
    """(rows, skipped, given): what `dlx predict` and `LoadedRun.predict` compute."""
    if top_k < 1:
        raise UserError(f"`--top-k {top_k}`: must be 1 or more.", key="--top-k")
    if batch_size < 1:
        raise UserError(f"`--batch-size {batch_size}`: must be 1 or more.", key="--batch-size")
    batch = gather(inputs, opened.pre, str(opened.card.get("data", "")), show)
    if batch.x is None:
        return [], batch.skipped, batch.given
    out = outputs(opened.model, batch.x, opened.device, batch_size)
    return rows_of(opened, batch.names, out, top_k), batch.skipped, batch.given


def write_out(path: Path, rows: list[dict[str, Any]], top_k: int) -> None:
    from dlx.record.atomic import write_bytes

    if path.suffix.lower() == ".json":
        data = json.dumps(rows, indent=2).encode()
    else:
        buf = io.StringIO()
        if rows and "prediction" in rows[0]:
            fields = ["file", "prediction"]
            flat = rows
        else:
            fields = ["file", "class", "prob"]
            for i in range(1, top_k + 1):
                fields += [f"class_{i}", f"prob_{i}"]
            flat = []
            for r in rows:
                row = {"file": r["file"], "class": r["class"], "prob": r["prob"]}
                for i, t in enumerate(r["top_k"], 1):
                    row.update({f"class_{i}": t["class"], f"prob_{i}": t["prob"]})
                flat.append(row)
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(flat)
        data = buf.getvalue().encode()
    try:
        write_bytes(path, data)
    except OSError as exc:
        raise UserError(
            f"`--out {path}`: cannot write it ({exc.strerror or exc}).", key="--out"
        ) from None


def _progress(total: int):
    """A decode progress bar for long inputs in a terminal; nothing otherwise."""
    import contextlib

    from dlx.tracking.console import console
    from dlx.tracking.decodebar import decode_bar

    if total < PROGRESS_ABOVE or not console.is_terminal:
        return contextlib.nullcontext(None)
    return decode_bar(console, total)


def run_predict(
    run_dir: str | Path,
    inputs: list[str],
    checkpoint: str = "best",
    top_k: int = 1,
    out: str | None = None,
    device: str | None = None,
    batch_size: int = 256,
    config_dir: str | None = None,
    trust_config: bool = False,
) -> list[dict[str, Any]]:
    """The command: predict, print the table and the skipped inputs, write --out."""
    from dlx.infer.model import open_model
    from dlx.tracking.console import console

    out_path = Path(out) if out else None
    if out_path is not None and out_path.suffix.lower() not in OUT_FORMATS:
        raise UserError(
            f"`--out {out}`: the file name must end in {' or '.join(OUT_FORMATS)}.", key="--out"
        )
    if not inputs:
        raise UserError("dlx predict needs at least one INPUT (a file, folder or glob).")
    opened = open_model(run_dir, checkpoint, device, config_dir, trust_config)
    from dlx.infer.sources import expand

    with _progress(len(expand(inputs)[0])) as advance:
        rows, skipped, given = predict_inputs(opened, inputs, top_k, batch_size, advance)
    show_rows(opened, rows, top_k)
    if skipped:
        listed = "; ".join(f"{n} ({why})" for n, why in skipped[:SHOW_SKIPPED])
        more = f" and {len(skipped) - SHOW_SKIPPED} more" if len(skipped) > SHOW_SKIPPED else ""
        console.print(
            f"[yellow]skipped {len(skipped)} of {given} input(s)[/] that could not be used: "
            f"{listed}{more}",
            soft_wrap=True,
            highlight=False,
        )
    if not rows:
        raise UserError(f"None of the {given} input(s) could be used: nothing was predicted.")
    if out_path is not None:
        write_out(out_path, rows, top_k)
        console.print(f"written: {out_path} ({len(rows)} row(s))", highlight=False)
    return rows


def printable(text: str) -> str:
    """A name as it can be shown: control characters (a file name may hold any) as '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def show_rows(opened: Opened, rows: list[dict[str, Any]], top_k: int) -> None:
    from rich.table import Table
    from rich.text import Text

    from dlx.infer.sources import display
    from dlx.tracking.console import console

    title = f"dlx predict {opened.run_dir}  checkpoint {opened.checkpoint} (epoch {opened.epoch})"
    table = Table(title=printable(title), title_justify="left")
    table.add_column("input")
    if opened.card["task"] != "classification":
        table.add_column("prediction", justify="right")
        for r in rows:
            table.add_row(Text(printable(display(r["file"]))), f"{r['prediction']:.6g}")
    else:
        table.add_column("class")
        table.add_column("prob", justify="right")
        if top_k > 1:
            table.add_column(f"top {top_k}")
        for r in rows:
            cells = [Text(printable(display(r["file"]))), Text(printable(r["class"]))]
            cells.append(f"{r['prob']:.3f}")
            if top_k > 1:
                rest = ", ".join(f"{printable(t['class'])} {t['prob']:.3f}" for t in r["top_k"])
                cells.append(Text(rest))
            table.add_row(*cells)
    console.print(table)
