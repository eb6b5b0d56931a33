"""The terminal side of a run: a rich progress bar with live loss/accuracy, one line per
epoch, and a summary table at the end. Disabled on every rank but 0."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dlx.record import status as st
from dlx.tracking.width import columns_within_the_terminal, command_lines


class _Stdout:
    """sys.stdout as rich's file. When the reader goes away (`dlx train | head -2`), the rest
    of the output goes to /dev/null, quietly, and the run stops as after Ctrl-C: it is saved
    and recorded as interrupted, instead of dying of BrokenPipeError half-written."""

    reader_gone = False

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            self._gone()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(sys.stdout, name)

    def _gone(self) -> None:
        from dlx.training.signals import active, request_stop

        if not _Stdout.reader_gone:
            _Stdout.reader_gone = True
            try:  # what is still buffered, and every later write, lands in /dev/null
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, sys.stdout.fileno())
                os.close(null)
            except (OSError, ValueError):
                pass
            if active():  # a run stops, and says why; `dlx runs | head` just ends
                log.warning("the reader of the output went away: stopping the run (interrupted)")
        request_stop()


def quiet_when_reader_goes_away() -> None:
    """Loggers that write to stdout (Hydra's own, `--info`) meet the closed pipe too: their
    handler's error is the same quiet end, not a `--- Logging error ---` traceback each."""
    original = logging.Handler.handleError
    if getattr(original, "_dlx", False):
        return

    def handle_error(self: logging.Handler, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            _Stdout()._gone()
            return
        original(self, record)

    handle_error._dlx = True  # type: ignore[attr-defined]
    logging.Handler.handleError = handle_error  # type: ignore[method-assign]


columns_within_the_terminal()
# Piped into a file or CI log, a pipe has no width: tables take the width of their content
# (rich would assume 80 columns and fold them); long texts keep their own column widths.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 1000
console = Console(file=_Stdout(), highlight=False, width=_WIDTH)  # type: ignore[arg-type]
err_console = Console(stderr=True, highlight=False)
log = logging.getLogger("dlx")  # the run's plain-text log (train.log in the run folder)


def _plain(markup: str) -> str:
    return Text.from_markup(markup).plain


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class _DebugToStderr(logging.Handler):
    """`hydra.verbose=true` (or `hydra.verbose=dlx`): dlx's debug lines on the terminal too,
    not only in train.log (its INFO lines are already there, drawn by rich)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno <= logging.DEBUG:
            try:
                sys.stderr.write(self.format(record) + "\n")  # sys.stderr now: rich's, live
            except Exception:
                self.handleError(record)


def show_debug_lines() -> None:
    if log.isEnabledFor(logging.DEBUG) and not any(
        isinstance(h, _DebugToStderr) for h in log.handlers
    ):
        handler = _DebugToStderr(logging.DEBUG)
        handler.setFormatter(logging.Formatter("[%(name)s][DEBUG] %(message)s"))
        log.addHandler(handler)


class RunConsole:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        if enabled:
            show_debug_lines()
        self.progress: Progress | None = None
        self._task = None
        self._epochs = 0
        self._first_step, self._drawn = True, 0.0

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.enabled:
            # a terminal: wrapped between words at its width; a pipe: one line as written
            console.print(*args, soft_wrap=not console.is_terminal, **kwargs)
            log.info(" ".join(_plain(str(a)) for a in args))

    def warn(self, message: str) -> None:
        if self.enabled:
            from dlx.record.text import plain_text, safe_text

            shown = safe_text(message, 20000, True)  # names from disk: no markup, no escapes
            console.print(f"[yellow]warning:[/] {shown}", soft_wrap=not console.is_terminal)
            log.warning(plain_text(message, 20000, True))

    @contextmanager
    def live(self, epochs: int, steps_per_epoch: int):
        if not self.enabled:
            yield self
            return
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[acc]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._epochs = epochs
        self._task = self.progress.add_task(
            "train", total=steps_per_epoch, epoch=0, epochs=epochs, loss="-", acc=""
        )
        try:
            with self.progress:
                yield self
        finally:
            self.progress = None

    def epoch_start(self, epoch: int) -> None:
        if self.progress is not None:
            # reset() replaces the task's fields: give all of them again
            self.progress.reset(self._task, epoch=epoch, epochs=self._epochs, loss="-", acc="")
            self._first_step = True

    def tick(self) -> None:
        """One optimizer step done: the bar's count moves (host-side, no device sync). It is
        drawn at an epoch's first step and then at most every 1/20 s, so that a short epoch
        (digits: 20 steps in a fraction of a second) is still seen moving."""
        if self.progress is None:
            return
        self.progress.advance(self._task)
        now = time.monotonic()
        if self._first_step or now - self._drawn >= 0.05:
            self._first_step, self._drawn = False, now
            self.progress.refresh()

    def show(self, loss: float, acc: float | None = None) -> None:
        """The running loss (and accuracy) the loop has just read back from the device."""
        if self.progress is None:
            return
        fields: dict[str, Any] = {"loss": f"{loss:.4f}"}
        if acc is not None:
            fields["acc"] = f"acc {acc:.3f}"
        self.progress.update(self._task, **fields)

    def epoch_end(
        self, epoch: int, epochs: int, train: dict, val: dict, lr: float, best: bool
    ) -> None:
        if not self.enabled:
            return
        out = self.progress.console if self.progress else console
        forms = epoch_lines(epoch, epochs, train, val, lr, best)
        # the form is chosen as if the line were marked best: every epoch takes the same one
        fits = [
            len(_plain(f)) <= out.width for f in epoch_lines(epoch, epochs, train, val, lr, True)
        ]
        line = forms[fits.index(True)] if True in fits else forms[-1]
        out.print(line, soft_wrap=True)
        log.info(_plain(forms[0]))  # train.log: always the whole line

    def summary(self, metrics: dict[str, Any], run_dir: str) -> None:
        if not self.enabled:
            return
        table = Table(title="dlx run summary", show_header=False, title_justify="left")
        table.add_column(style="bold", no_wrap=True)
        # a long run folder folds over rows, never cut; a long evidence wraps at 100 columns
        table.add_column(overflow="fold", max_width=100)
        status = metrics["status"]
        color = "green" if status in st.OK else "red" if status == st.DIVERGED else "yellow"
        table.add_row("status", f"[{color}]{status}[/]")
        table.add_row("epochs run", str(metrics["epochs_run"]))
        table.add_row(
            "best epoch",
            f"{metrics['best_epoch']} ({metrics['monitor']} = {_fmt(metrics['best_value'])})",
        )
        es = metrics["early_stopping"]
        table.add_row(
            "early stopping", f"fired at epoch {es['epoch']}" if es["fired"] else "did not fire"
        )
        for split in ("val", "test"):
            if metrics.get(split):
                table.add_row(
                    split,
                    "  ".join(
                        f"{k} {_fmt(v)}"
                        for k, v in metrics[split].items()
                        if isinstance(v, (int, float))
                    ),
                )
        diag = metrics.get("diagnosis")
        if diag:
            hue = {"good fit": "green", "diverged": "red"}.get(diag["verdict"], "yellow")
            cause = f" ({diag['cause']})" if diag.get("cause") else ""
            table.add_row("verdict", f"[bold {hue}]{diag['verdict']}[/]{escape(cause)}")
            table.add_row("evidence", escape(diag.get("evidence", "")))
            if diag.get("try"):  # printed below the table, whole: a folded line cannot be pasted
                n = len(diag["try"])
                table.add_row("try", f"{n} command{'s' * (n > 1)}, below (one per line)")
        table.add_row("wall time", f"{metrics['wall_time_s']:.1f} s")
        table.add_row("run folder", run_dir)
        console.print(table)
        for row in zip(*(c.cells for c in table.columns), strict=True):
            log.info("%s: %s", *(_plain(str(c)) for c in row))
        for head, cmds in advice_lines(diag, run_dir):
            # a terminal: wrapped between words (the run folder in it stays whole)
            console.print(escape(head), soft_wrap=not console.is_terminal, highlight=False)
            for cmd in cmds:  # each alternative a complete command, on its own line
                for part in command_lines(cmd, console.width):
                    console.print(part, soft_wrap=True, highlight=False, markup=False)
                log.info("%s %s", head.split(" ")[0], cmd)
        sys.stdout.flush()


def epoch_lines(
    epoch: int, epochs: int, train: dict, val: dict, lr: float, best: bool
) -> list[str]:
    """An epoch's line, from the whole form to the most compact: the terminal shows the first
    that fits its width (80 columns take the second), so no line wraps."""
    at = f"{epoch:>{len(str(epochs))}}/{epochs}"
    t_loss, v_loss = f"{train['loss']:.4f}", f"{val['loss']:.4f}"
    t_acc = f"{train['acc']:.3f}" if "acc" in train else ""
    v_acc = f"{val['acc']:.3f}" if "acc" in val else ""
    mark = "[green]* best[/]" if best else ""
    star = "[green]*[/]" if best else ""

    def join(*parts: str) -> str:
        return " ".join(p for p in parts if p)

    tr, va = (f"acc {t_acc}" if t_acc else ""), (f"acc {v_acc}" if v_acc else "")
    losses = join("train loss", t_loss, tr, "| val loss", v_loss, va, f"| lr {lr:.3g}")
    return [
        join(f"epoch {at} ", losses, " " + mark if mark else ""),
        join(f"epoch {at}", losses, star),
        join(at, losses, star),
        join(at, "train", t_loss, t_acc, "| val", v_loss, v_acc, f"| lr {lr:.2g}", star),
        join(at, t_loss, t_acc, "|", v_loss, v_acc, star),
    ]


def _from_here(path: str) -> str:
    """`path` relative to the working folder when it lies below it (what to type here)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith("..") and len(rel) < len(path) else path


def advice_lines(diag: dict[str, Any] | None, run_dir: str) -> list[tuple[str, list[str]]]:
    """What to run next, under the summary: the suggestions (untested unless `dlx advise`
    measured them) or, after a good fit, the next steps."""
    if not diag:
        return []
    out = []
    if diag.get("try"):
        head = "try:"
        if not diag.get("tested", True):
            # a terminal: the folder as typed from here, short enough to stay on one line
            here = _from_here(run_dir) if console.is_terminal else run_dir
            head = f"try (untested guesses; `dlx advise {here}` measures which help):"
        out.append((head, list(diag["try"])))
    if diag.get("next"):
        out.append(("next:", list(diag["next"])))
    return out


def error(message: str) -> None:
    """One clear message on stderr (the CLI exits 2 after it)."""
    from dlx.record.text import safe_text

    # escaped: a message quotes what the user (or a run folder) wrote, e.g. `[/x]` or `[l2]`
    # or a folder name holding terminal control characters (shown as \x1b)
    # on a terminal it wraps between words; through a pipe it stays one line per line
    wrap = not err_console.is_terminal
    err_console.print(f"[bold red]Error:[/] {safe_text(message, 20000, True)}", soft_wrap=wrap)
