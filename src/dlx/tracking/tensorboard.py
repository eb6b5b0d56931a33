"""The run's TensorBoard writer. Only rank 0 writes; every other rank gets a no-op tracker.

Event files go straight into the run folder, so a run is one TensorBoard run (a resumed
run appends to it, a sweep trial's hparams live inside its own folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Tracker:
    def __init__(
        self, log_dir: str | Path, enabled: bool = True, purge_step: int | None = None
    ) -> None:
        """`purge_step`: a resumed run hides the events the interrupted one wrote at steps >= it."""
        self.enabled = enabled
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer:
            self.writer.add_scalar(tag, value, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer:
            self.writer.add_text(tag, text, step)

    def figure(self, tag: str, fig, step: int = 0) -> None:
        if self.writer:
            self.writer.add_figure(tag, fig, step, close=True)
        else:
            import matplotlib.pyplot as plt

            plt.close(fig)

    def image(self, tag: str, img, step: int = 0) -> None:
        if self.writer:
            self.writer.add_image(tag, img, step)

    def histogram(self, tag: str, values, step: int) -> None:
        if self.writer:
            self.writer.add_histogram(tag, values, step)

    def graph(self, model, example) -> None:
        if self.writer:
            self.writer.add_graph(model, example)

    def loss_layout(self) -> None:
        """One chart overlaying train and val loss (and accuracy): the overfitting picture."""
        if self.writer:
            self.writer.add_custom_scalars(
                {
                    "train vs val": {
                        "loss": ["Multiline", ["loss/train", "loss/val"]],
                        "accuracy": ["Multiline", ["acc/train", "acc/val"]],
                    }
                }
            )

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """Fill the HParams dashboard inside this run's own folder (SummaryWriter.add_hparams
        would make a stray sub-run; writing the three summaries here keeps it in place)."""
        if not self.writer:
            return
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        clean = {
            k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()
        }
        exp, ssi, sei = hparams_summary(clean, metrics)
        fw = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            fw.add_summary(summary)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value)

    def flush(self) -> None:
        if self.writer:
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
            self.writer = None
