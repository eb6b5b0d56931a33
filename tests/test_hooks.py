"""The per-epoch hook list: a registered hook can stop a run with its own status."""

from __future__ import annotations

import dlx
from conftest import FAST, read_metrics
from dlx.training import hooks


class StopAt:
    def __init__(self, epoch: int) -> None:
        self.epoch, self.seen = epoch, []

    def on_epoch_end(self, end: hooks.EpochEnd) -> str | None:
        self.seen.append(
            (end.epoch, end.monitor, end.value, (end.run_dir / "checkpoints").is_dir())
        )
        return "pruned" if end.epoch == self.epoch else None


def test_a_hook_sees_every_epoch_and_can_stop_the_run(tmp_run, monkeypatch):
    run_dir, where = tmp_run
    hook = StopAt(2)
    monkeypatch.setattr(hooks, "_FACTORIES", [lambda cfg: hook, lambda cfg: None])
    m = dlx.train([where, *FAST, "epochs=5", "early_stopping.enabled=false"])
    assert [s[0] for s in hook.seen] == [1, 2]
    assert all(s[1] == "val/loss" and s[2] > 0 and s[3] for s in hook.seen)
    assert m["status"] == "pruned" and m["epochs_run"] == 2
    assert read_metrics(run_dir)["status"] == "pruned"
