"""torchvision's ResNet for transfer learning: pretrained backbone, new head, freezing.

The lecture's recipe: download a model trained on ImageNet, adjust it to the shape of
your input and output, train only the first and last layer, or more (fine-tuning).

- input: grayscale images are repeated to three channels (the pretrained first conv
  expects RGB); `min_input_size: 32` in conf/model/resnet.yaml makes the data pipeline
  resize smaller images up, so the five stride-2 stages still leave a feature map.
- output: torchvision's 1000-class `fc` is dropped; `head` is a new Linear for the
  dataset's classes (the optimizer gives it `opt.lr`, the backbone `opt.lr *
  opt.backbone_lr_mult`).
- weights: `pretrained=true` loads ImageNet weights through torchvision's weights API
  (downloaded once into the torch hub cache, $TORCH_HOME/hub/checkpoints); `weights=PATH`
  loads a local state dict instead.
- freeze: `backbone` trains the head only; `all_but_first_last` the first conv (and its
  batch norm) plus the head. Frozen parameters have `requires_grad=False` (no gradient,
  not given to the optimizer) and frozen batch norms keep their running statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx.config.choices import FREEZE_MODES, RESNET_ARCHS
from dlx.errors import UserError


class ResNet(nn.Module):
    """`backbone` (torchvision ResNet without its fc) -> [Dropout] -> `head` (Linear)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        out_dim: int,
        arch: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        freeze: str = "none",
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        import torchvision

        _check("model.arch", arch, RESNET_ARCHS)
        _check("model.freeze", freeze, FREEZE_MODES)
        if activation != "relu":
            raise UserError(
                f"`model.activation={activation}` is not available for model=resnet "
                "(torchvision's ResNet is built with ReLU). Allowed: relu.",
                key="model.activation",
            )
        channels = in_shape[0]
        self.backbone = torchvision.models.get_model(arch, weights=None)
        n_features = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.repeat_gray = channels == 1  # the same image on R, G and B
        if channels not in (1, 3):
            if pretrained or weights:
                raise UserError(
                    f"Pretrained ResNet weights expect 1 or 3 input channels; the data has "
                    f"{channels}. Use model.pretrained=false (a new first conv).",
                    key="model.pretrained",
                )
            self.backbone.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        self.weights_source: str | None = None
        if weights:
            self._load_backbone(load_local(weights, arch), "model.weights", str(weights))
            self.weights_source = str(weights)
        elif pretrained:
            state, name = load_imagenet(arch)
            self._load_backbone(state, "model.weights", name)
            self.weights_source = name
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(n_features, out_dim)
        self.freeze = freeze
        self._apply_freeze()

    # -- weights ------------------------------------------------------------------------
    def _load_backbone(self, state: dict[str, Any], key: str, source: str) -> None:
        """Load a torchvision ResNet state dict into the backbone (its fc / our head are not)."""
        state = {_strip(k): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "head.", "drop."))}
        try:
            self.backbone.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = [line.strip() for line in str(exc).splitlines() if line.strip()][:2]
            raise UserError(
                f"The weights from {source} do not fit this ResNet (check `model.arch` and "
                f"`{key}`): {' '.join(first)[:400]}",
                key=key,
            ) from None

    def init_roots(self) -> list[nn.Module]:
        """What `model.init` may re-initialize: never weights that were loaded."""
        return [self.head] if self.weights_source else [self]

    # -- freezing -----------------------------------------------------------------------
    def _apply_freeze(self) -> None:
        train_backbone = self.freeze == "none"
        for p in self.backbone.parameters():
            p.requires_grad_(train_backbone)
        if self.freeze == "all_but_first_last":  # the lecture: "train only first and last layer"
            for m in (self.backbone.conv1, self.backbone.bn1):
                for p in m.parameters():
                    p.requires_grad_(True)
        self.train(self.training)

    def unfreeze(self) -> None:
        """Fine-tune everything from now on (`model.unfreeze_at_epoch`)."""
        self.freeze = "none"
        self._apply_freeze()

    def train(self, mode: bool = True) -> ResNet:
        """As nn.Module.train, but a frozen batch norm stays in eval mode: its running
        mean and variance are part of what was frozen."""
        super().train(mode)
        if mode:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in m.parameters()
                ):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat_gray:
            x = x.expand(-1, 3, -1, -1)
        return self.head(self.drop(self.backbone(x)))


def _check(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(
            f"Invalid value for `{key}`: {value!r}. Allowed: {' | '.join(allowed)}.", key=key
        )


def _strip(key: str) -> str:
    for prefix in ("module.", "backbone."):  # DDP-saved, or saved from this wrapper
        key = key.removeprefix(prefix)
    return key


def imagenet_weights(arch: str):
    """torchvision's default ImageNet weights enum member for `arch`."""
    from torchvision.models import get_model_weights

    return get_model_weights(arch).DEFAULT


def hub_file(arch: str) -> Path:
    """Where torchvision caches `arch`'s ImageNet weights: $TORCH_HOME/hub/checkpoints/<file>."""
    url = imagenet_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_imagenet(arch: str) -> tuple[dict[str, Any], str]:
    """ImageNet weights through torchvision's weights API: from the hub cache, or downloaded
    into it once (with a progress bar). No network and no cached file is a UserError."""
    w = imagenet_weights(arch)
    name = f"torchvision {type(w).__name__}.{w.name}"
    cached = hub_file(arch)
    try:
        state = w.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except Exception as exc:  # URLError, HTTPError, hash mismatch, a truncated file, ...
        reason = str(getattr(exc, "reason", exc)).splitlines()[0][:200]
        if cached.is_file():
            raise UserError(
                f"The cached ImageNet weights {cached} could not be read ({reason}). Delete the "
                "file to download it again, or set `model.weights=PATH` to a local state dict.",
                key="model.weights",
            ) from None
        raise UserError(
            f"Could not download the ImageNet weights for {arch} ({name}) from {w.url}: "
            f"{reason}. Offline? Put that file at {cached}, or set `model.weights=PATH` to a "
            "local state dict, or use model.pretrained=false.",
            key="model.weights",
        ) from None
    return state, f"{name} ({cached})"


def load_local(path: str | Path, arch: str) -> dict[str, Any]:
    """A local state dict (a torchvision ResNet's, or a dlx checkpoint's `model`), loaded
    with weights_only=True: it can never run code."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(
            f"`model.weights={path}`: no such file. Give the path of a saved {arch} state dict "
            f"(e.g. torchvision's {Path(imagenet_weights(arch).url).name}).",
            key="model.weights",
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"`model.weights={path}` is not a readable state dict (weights_only=True): "
            f"{str(exc).splitlines()[0][:200]}",
            key="model.weights",
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a dlx checkpoint
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(
            f"`model.weights={path}` does not hold a state dict (name -> tensor).",
            key="model.weights",
        )
    return state
