"""Configs: where the groups live and how one is composed (`compose`), what values a config may
hold (`rules`, and the allowed values themselves in `choices`), which `model.*` keys each
model takes (`modelkeys`), Hydra's private APIs (`hydra_internals`, their only home) and the
trust boundary for configs and sweep overrides read back from a folder (`trust`,
`sweepcheck`).

May import `record`, `errors`; never `launch`, `sweeps`, `runs`, `cli`, `training`.
"""

from __future__ import annotations

from pathlib import Path


def shipped_conf() -> Path | None:
    """dlx's config groups: `dlx/conf` inside a wheel, `<repo>/conf` in a checkout (None: gone).
    Light on purpose (no OmegaConf): completion and `--help` call it."""
    package = Path(__file__).resolve().parents[1]  # .../dlx
    for candidate in (package / "conf", package.parents[1] / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    return None
