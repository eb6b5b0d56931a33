"""`data.root` of a config read back from a run folder (`dlx eval`, `--resume`).

The folder's sender wrote that path. dlx reads the data there (that is what evaluating the
run means) but never writes there on the folder's word: no decode cache is built or pruned
in it (it goes to the user's cache dir, `~/.cache/dlx`), and no dataset is downloaded into
it, unless it is the user's own data folder (`$DLX_DATA`, default `~/.cache/dlx/data`).
`--data-root DIR` points the run at the data where it is on this machine (the data moved,
or the folder came from elsewhere): a folder the user named, so it is treated as theirs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dlx.errors import UserError


def own_data_dir() -> Path:
    """Where dlx's own datasets live (what `${oc.env:DLX_DATA,...}` of conf/data resolves to)."""
    return Path(os.environ.get("DLX_DATA") or "~/.cache/dlx/data").expanduser()


def resolve_data_root(cfg: Any, data_root: str | None = None) -> None:
    """Set `data.root` of a run folder's config (in place) for eval/resume: `data_root`
    (`--data-root DIR`) when given, else the folder's own path, then read-only unless it is
    the user's own data folder (see the module doc)."""
    from omegaconf import open_dict

    data = cfg.get("data")
    if data is None or "root" not in data:
        return
    with open_dict(cfg):
        if data_root is not None:
            path = Path(data_root).expanduser()
            if not path.is_dir():
                raise UserError(
                    f"`--data-root {data_root}`: no such folder. Give the folder that holds "
                    f"this run's data (data={data.get('name', '?')}).",
                    key="--data-root",
                )
            cfg.data.root = str(path)
            return
        root = data.get("root")
        if root is None:
            return
        path = Path(str(root)).expanduser()
        mine = path.resolve() == own_data_dir().resolve()
        if str(data.get("_target_", "")).endswith("imagefolder.load") and not path.is_dir():
            raise UserError(
                f"`data.root` of this run ({root}) is not a folder on this machine. If the "
                "images moved, give their folder: `--data-root DIR`.",
                key="data.root",
            )
        if not mine:
            cfg.data.cache_in_root = False  # imagefolder: the cache goes to ~/.cache/dlx
            if "download" in data:
                cfg.data.download = False  # nothing is fetched into a folder it names
