"""dlx: a command-line experiment runner for deep learning (Hydra + PyTorch + TensorBoard).

The Python API mirrors the CLI:

    import dlx
    metrics = dlx.train(overrides=["model=cnn", "opt=adam", "epochs=5"])
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


__all__ = ["train", "__version__"]
