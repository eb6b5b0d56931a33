"""An exponential moving average of the weights (`ema.decay`), torch's `AveragedModel`.

After every optimizer step: ema <- decay * ema + (1 - decay) * weights, buffers (batch
norm's running statistics) included. The average is smoother than the last step's weights
and usually generalizes a little better; with it on, validation, test and `best.pt` use the
averaged model, while training goes on with the raw weights. It averages over roughly
1 / (1 - decay) steps: 0.999 is ~1000 steps, so short runs want a smaller decay (0.99).
"""

from __future__ import annotations

from typing import Any

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.decay = float(decay)
        # a copy of the model on its device; foreach lerp over all tensors at once
        self.averaged = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        )
        self.averaged.eval()

    @property
    def module(self) -> torch.nn.Module:
        """The averaged model itself (what validation, test and best.pt use)."""
        return self.averaged.module

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """After an optimizer step (the first call copies the weights as they are)."""
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights (as the model's own keys) and how many steps they average."""
        return {"model": self.module.state_dict(), "n_averaged": self.averaged.n_averaged.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.averaged.n_averaged.copy_(state["n_averaged"])


def build_ema(cfg: Any, model: torch.nn.Module) -> EMA | None:
    decay = cfg.get("ema", {}).get("decay") if cfg.get("ema") is not None else None
    return EMA(model, decay) if decay else None
