"""The answers `dlx` gives without running anything: the config groups in `--help`, Hydra's
`--cfg` / `--resolve` / `--package` / `--info`, `--version`, an unknown `--flag`, and shell
completion of overrides. All of it stays light: no torch (help and completion must be quick).
"""

from __future__ import annotations

import difflib
import sys

import typer
from typer.core import TyperCommand

from dlx.errors import EXIT_OK, UserError

CFG_CHOICES = ("job", "hydra", "all")
INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


class GroupsHelp(TyperCommand):
    """`--help` that ends, as a Hydra app's does, with the config groups and their options
    and the top-level keys (read from conf/, and from a `--config-dir` on the same line)."""

    def format_help(self, ctx, formatter) -> None:
        super().format_help(ctx, formatter)
        from rich import box
        from rich.console import Console
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        from dlx.cli import confindex as confindex

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for name, value in confindex.help_rows(confindex._config_dir_in(sys.argv)):
            grid.add_row(Text(name), Text(value))  # Text: brackets print as written
        Console(highlight=False).print(
            Panel(
                grid,
                title="Config groups (GROUP=OPTION, * the default) and keys",
                title_align="left",
                border_style="dim",
                box=box.ROUNDED,
            )
        )


def refuse_flags(ctx: typer.Context, overrides: list[str]) -> None:
    """An unknown `--flag` lands among the overrides (they pass through to Hydra): say so in
    one line, with the nearest options, instead of Hydra's override-grammar error."""
    for word in overrides:
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            known = sorted({o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts)})
            near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(near)}?" if near else ""
            raise UserError(
                f"No such option: {name}.{hint} (`dlx {ctx.info_name} --help` lists the options; "
                "overrides are written key=value, without dashes)",
                key=name,
            )


def show_config(
    overrides: list[str],
    multirun: bool,
    config_dir: str | None,
    cfg: str | None,
    resolve: bool,
    package: str | None,
    info: str | None,
) -> int:
    """Hydra's own `--cfg job|hydra|all` (`--resolve`, `--package`) and `--info`: the config
    is composed and checked as for a run (bad input: exit 2), then Hydra prints it. Nothing
    runs and no run folder is made."""
    if cfg is not None and cfg not in CFG_CHOICES:
        raise UserError(f"`--cfg {cfg}`: it takes job, hydra or all.", key="--cfg")
    if info is not None and info not in INFO_CHOICES:
        raise UserError(f"`--info {info}`: it takes {', '.join(INFO_CHOICES)}.", key="--info")
    if (resolve or package) and cfg is None:
        flag = "--resolve" if resolve else "--package"
        raise UserError(f"`{flag}` goes with --cfg, e.g. `dlx train --cfg job {flag}`.", key=flag)
    from omegaconf import OmegaConf, open_dict

    from dlx.config.compose import compose
    from dlx.config.hydra_internals import sweep_combinations
    from dlx.config.rules import validate
    from dlx.launch.hydra_app import run_hydra

    combos = sweep_combinations(overrides) if multirun else [overrides]
    for combo in combos[:64]:
        validate(compose(combo, config_dir))
    if multirun and len(combos) > 1:  # one config is shown: a sweep's first trial
        print(f"# the first of {len(combos)} trials: {' '.join(combos[0])}", file=sys.stderr)
    if info:
        run_hydra(["--info", info, *combos[0]], False, config_dir)  # Hydra's own report
        return EXIT_OK
    # --cfg as Hydra prints it, composed here: Hydra's own `--cfg hydra --resolve` fails on
    # dlx's run folder (its ${name} lives outside the hydra node it shows)
    full = compose(combos[0], config_dir, with_hydra=True)
    if resolve:
        OmegaConf.resolve(full)
    if cfg == "job":
        with open_dict(full):
            del full["hydra"]
    elif cfg == "hydra":
        full = OmegaConf.create({"hydra": full.hydra})
    if package:
        node = OmegaConf.select(full, package, default=None)
        if node is None:
            raise UserError(f"`--package {package}`: no such key in the config.", key=package)
        print(f"# @package {package}")
        full = node
    print(OmegaConf.to_yaml(full) if OmegaConf.is_config(full) else full, end="")
    return EXIT_OK


def show_version(value: bool) -> None:
    """`dlx --version`: dlx's, and the versions of what it runs on (read, not imported)."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    from dlx import __version__

    parts = [f"dlx {__version__}"]
    for dist in ("hydra-core", "torch", "torchvision"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    typer.echo(", ".join(parts))
    raise typer.Exit(EXIT_OK)


def complete_overrides(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
    """Shell completion of an override: `model=<TAB>` (the options), `opt.<TAB>` (the keys),
    `<TAB>` (groups and top-level keys), with a `--config-dir`'s groups. conf/ is read as YAML."""
    from dlx.cli import confindex as confindex

    params = ctx.params or {}
    # Typer hands no args here: the words typed so far are the parsed overrides
    words = [*(params.get("overrides") or []), *(ctx.args or []), *args]
    return confindex.complete(words, incomplete, params.get("config_dir"))
