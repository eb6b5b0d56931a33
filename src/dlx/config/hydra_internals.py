"""Hydra's private APIs (`hydra._internal`), used here and nowhere else in dlx's own code: a
Hydra upgrade that moves them breaks this module only. Nothing here imports the training
loop, so preflight can use it without an import circle.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dlx.config.compose import hydra_error


@contextlib.contextmanager
def no_mode_probe(overrides: list[str], config_dir: str | None) -> Iterator[None]:
    """hydra.main composes the whole config once only to read `hydra.mode`, then composes it
    again to run (~0.2 s of every start). dlx's own configs never set `hydra.mode`, so where
    neither an override nor a user's --config-dir can set it, the probe's answer is known: unset
    (None), and Hydra goes on exactly as after its probe."""
    if config_dir or any("hydra.mode" in o for o in overrides):
        yield
        return
    from hydra._internal.hydra import Hydra

    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = probe


def sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Expand grid sweeps (`a=1,2 b=x,y`) into the trials' override lists, for preflight."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise hydra_error(exc, overrides) from None
    try:
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # interval()/tag() sweeps: validate the fixed part only
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    return [list(combo) for batch in batches for combo in batch]
