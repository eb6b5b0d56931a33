"""dlx: a command-line experiment runner for deep learning (Hydra + PyTorch + TensorBoard).

The Python API mirrors the CLI:

    import dlx
    metrics = dlx.train(overrides=["model=cnn", "opt=adam", "epochs=5"])
    table = dlx.runs("outputs", filter="status=completed", sort="test.acc")
    run = dlx.load_run(table["path"][0])     # .config .metrics .history .model() .predict()

`import dlx` stays light: torch and the rest load when a function is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def train(overrides: list[str] | None = None, config_dir: str | None = None) -> dict[str, Any]:
    """Run `dlx train OVERRIDES` in this process and return the run's metrics dict.

    Raises `dlx.errors.UserError` for bad config (what the CLI turns into exit 2).
    """
    from dlx.launch.entry import train_once

    return train_once(list(overrides or []), config_dir=config_dir)


def load_run(path: str, config_dir: str | None = None, trust_config: bool = False):
    """A run folder in Python: `.config`, `.metrics`, `.history`, `.card`, `.model(checkpoint=
    "best")`, `.predict(inputs)` (the rows `dlx predict --out x.json` writes)."""
    from dlx.infer.api import LoadedRun

    return LoadedRun(path, config_dir=config_dir, trust_config=trust_config)


def runs(
    root: str = "outputs",
    filter: str | list[str] | None = None,  # noqa: A002 - the CLI's word
    sort: str | None = None,
    descending: bool | None = None,
) -> Any:
    """The runs under ROOT, the query `dlx runs --filter ... --sort ...` makes: one row per run
    (flat keys, as `dlx runs --format json`). A pandas DataFrame when pandas is installed,
    else a list of dicts. (Once `dlx.runs` the package is imported, it answers this call.)"""
    from dlx.runs.frame import runs_frame

    return runs_frame(root, filter=filter, sort=sort, descending=descending)


__all__ = ["train", "load_run", "runs", "__version__"]
