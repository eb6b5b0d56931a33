"""`dlx.load_run(DIR)`: a finished run in a notebook.

    run = dlx.load_run("outputs/2026-01-01/12-00-00")
    run.config["opt"]["lr"], run.metrics["test"]["acc"], run.history[-1]
    model = run.model()                      # torch module, eval mode, best.pt
    run.predict(["new/cat.png", "new/"])     # rows as `dlx predict --out x.json` writes them

Reading is data only (JSON, safe YAML); the model is built through the same trust check as
`dlx eval` (`config_dir=`, `trust_config=` as on the command line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlx.errors import UserError
from dlx.record import names


class LoadedRun:
    """A run folder: its config, metrics, per-epoch history, model card, model, predictions."""

    def __init__(
        self, path: str | Path, config_dir: str | None = None, trust_config: bool = False
    ) -> None:
        self.path = Path(path)
        if not names.is_run_folder(self.path):
            raise UserError(
                f"{self.path} is not a dlx run folder (no .hydra/config.yaml).", key="RUN_DIR"
            )
        self.config_dir, self.trust_config = config_dir, trust_config
        self._opened: dict[tuple[str, str], Any] = {}
        self._metrics: dict[str, Any] | None = None

    def __repr__(self) -> str:
        status = self.metrics.get("status", "no metrics")
        return f"LoadedRun({str(self.path)!r}, status={status!r})"

    @property
    def config(self) -> dict[str, Any]:
        """The run's composed config (`.hydra/config.yaml`) as nested dicts."""
        import yaml

        return yaml.safe_load(names.config(self.path).read_text()) or {}

    def _all_metrics(self) -> dict[str, Any]:
        if self._metrics is None:
            path = names.metrics(self.path)
            try:
                data = json.loads(path.read_text()) if path.is_file() else {}
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise UserError(f"{path} is damaged ({type(exc).__name__}).") from None
            self._metrics = data if isinstance(data, dict) else {}
        return self._metrics

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json without its history (status, val, test, best_epoch, ...); {} while the
        run has not finished."""
        return {k: v for k, v in self._all_metrics().items() if k != "history"}

    @property
    def history(self) -> list[dict[str, Any]]:
        """One dict per epoch: epoch, train {loss, acc}, val {loss, acc}, lr."""
        h = self._all_metrics().get("history")
        return list(h) if isinstance(h, list) else []

    @property
    def card(self) -> dict[str, Any]:
        """model.json: classes, input shape, preprocessing (derived for older runs)."""
        return self._open("best" if self._has("best") else "last", "cpu").card

    def _has(self, checkpoint: str) -> bool:
        return names.checkpoint(self.path, checkpoint).is_file()

    def _open(self, checkpoint: str, device: str):
        from dlx.infer.model import open_model

        key = (checkpoint, device)
        if key not in self._opened:
            self._opened[key] = open_model(
                self.path, checkpoint, device, self.config_dir, self.trust_config
            )
        return self._opened[key]

    def model(self, checkpoint: str = "best", device: str = "cpu"):
        """The trained torch module (eval mode) from checkpoints/CHECKPOINT.pt."""
        return self._open(checkpoint, device).model

    def predict(
        self,
        inputs: Any,
        checkpoint: str = "best",
        top_k: int = 1,
        device: str = "cpu",
        batch_size: int = 256,
    ) -> list[dict[str, Any]]:
        """Rows as `dlx predict --out FILE.json` writes them: file, class, prob, top_k
        (classification) or file, prediction (regression). Inputs: paths (files, folders,
        globs) or numbers, one or a list. Unusable inputs raise UserError naming them."""
        from dlx.infer.predict import predict_inputs

        items = [inputs] if isinstance(inputs, (str, Path, int, float)) else list(inputs)
        rows, skipped, _ = predict_inputs(self._open(checkpoint, device), items, top_k, batch_size)
        if skipped:
            listed = "; ".join(f"{n} ({why})" for n, why in skipped)
            raise UserError(f"{len(skipped)} input(s) could not be used: {listed}")
        return rows
