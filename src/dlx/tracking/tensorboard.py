"""The run's TensorBoard writer. Only rank 0 writes; every other rank gets a no-op tracker.

Event files go straight into the run folder, so a run is one TensorBoard run (a resumed
run appends to it, a sweep trial's hparams live inside its own folder).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from dlx.record import names

ES_TAG = "early_stopping/"  # SPEC: early stopping's events live under early_stopping*


def _swept(hc) -> list[str]:
    """The keys this multirun varies: its sweeper's `params` and the sweep overrides
    (`opt=adam,sgd`, `opt.lr=range(...)`) of the command that started it (multirun.yaml)."""
    from omegaconf import OmegaConf

    keys = [str(k) for k in (OmegaConf.select(hc, "sweeper.params", default=None) or {})]
    started = Path(str(hc.sweep.dir)) / names.MULTIRUN
    try:
        stat = started.stat()
        keys += _sweep_keys(str(started), stat.st_mtime_ns, stat.st_size)
    except Exception:  # no multirun.yaml (another sweeper): what this job was given
        keys += [str(o).lstrip("+~").partition("=")[0] for o in hc.overrides.task]
    return [k for k in dict.fromkeys(keys) if not k.startswith("hydra")]


@functools.lru_cache(maxsize=8)
def _sweep_keys(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The keys the sweep overrides of multirun.yaml vary, read once a sweep per process
    (every trial in it asks; the file is ~20 KB of YAML)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    task = OmegaConf.select(OmegaConf.load(path), "hydra.overrides.task") or []
    parsed = OverridesParser.create().parse_overrides([str(o) for o in task])
    return tuple(o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override())


def run_hparams(
    cfg: Any, choices: dict[str, str], flat: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """(hparams, leading): the group choices (`opt`: `adam`) and the flat knobs, with the keys
    a sweep varies first (a single run: the keys typed on its command line)."""
    from omegaconf import OmegaConf

    leading: list[str] = []
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized():
            hc = HydraConfig.get()
            if hc.mode == RunMode.MULTIRUN:
                leading = _swept(hc)
            else:
                leading = [str(o).lstrip("+~").partition("=")[0] for o in hc.overrides.task]
                leading = [k for k in leading if not k.startswith("hydra")]
    except Exception:  # outside Hydra (a resumed run): no order to give
        leading = []
    hp: dict[str, Any] = {}
    for key in leading:
        value = choices.get(key, OmegaConf.select(cfg, key, default=None))
        if value is not None:
            hp[key] = value
    for key, value in [*choices.items(), *flat.items()]:  # `opt`: the choice, not the class
        hp.setdefault(key, value)
    return hp, [k for k in leading if k in hp]


class Tracker:
    def __init__(
        self, log_dir: str | Path, enabled: bool = True, purge_step: int | None = None
    ) -> None:
        """`purge_step`: a resumed run hides the events the interrupted one wrote at steps >= it."""
        self.enabled = enabled
        self.log_dir = Path(log_dir)
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

    def figure(self, tag: str, fig, step: int = 0, png: str | None = None) -> None:
        """The figure in TensorBoard; `png`: also a PNG file of that name in the run folder
        (for a report without TensorBoard), written atomically, never through a link."""
        if self.writer and png:
            from dlx.record.atomic import atomic_path

            with atomic_path(self.log_dir / png) as tmp:
                fig.savefig(tmp, dpi=110)
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
        """One chart overlaying train and val loss (and accuracy): the overfitting picture.
        Early stopping's marker (`early_stopping`) lands on the chart of what it monitors."""
        if self.writer:
            self.writer.add_custom_scalars(
                {
                    "train vs val": {
                        "loss": ["Multiline", ["loss/train", "loss/val", ES_TAG + "val_loss"]],
                        "accuracy": ["Multiline", ["acc/train", "acc/val", ES_TAG + "val_acc"]],
                    }
                }
            )

    def early_stopping(self, epoch: int, best_epoch: int, best: float, monitor: str) -> None:
        """Early stopping as one flat segment at the best value, from the best epoch to the
        epoch it fired: on the train-vs-val chart it sits on the val curve where it stopped
        improving and ends where training stopped (one chart, not three one-dot charts)."""
        tag = ES_TAG + monitor.replace("/", "_")
        self.scalar(tag, best, best_epoch)
        self.scalar(tag, best, epoch)

    def hparams(
        self, hparams: dict[str, Any], metrics: dict[str, float], leading: list[str] = ()
    ) -> None:
        """Fill the HParams dashboard inside this run's own folder (SummaryWriter.add_hparams
        would make a stray sub-run; writing the three summaries here keeps it in place).

        `leading`: the keys a sweep varies. TensorBoard orders the columns by `differs`, then
        by name, from one run's experiment summary: these are marked as differing, so they
        come first (not batch_size, aug, data... which never change in a sweep). String
        values get no fixed domain: a domain of this run's one value would hide the others."""
        if not self.writer:
            return
        from tensorboard.plugins.hparams import plugin_data_pb2
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        clean = {
            k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()
        }
        exp, ssi, sei = hparams_summary(clean, metrics)
        meta = exp.value[0].metadata.plugin_data
        content = plugin_data_pb2.HParamsPluginData.FromString(meta.content)
        infos = list(content.experiment.hparam_infos)
        first = {k: i for i, k in enumerate(leading)}
        infos.sort(key=lambda h: first.get(h.name, len(first)))  # stable: the rest keep order
        for info in infos:
            info.differs = info.name in first
            if isinstance(clean.get(info.name), str):
                info.ClearField("domain_discrete")
        del content.experiment.hparam_infos[:]
        content.experiment.hparam_infos.extend(infos)
        meta.content = content.SerializeToString()
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
