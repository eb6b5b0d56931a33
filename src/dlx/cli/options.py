"""The options several `dlx` commands share (their help texts, metavars, completion), made
by small functions so each command gets its own click object."""

from __future__ import annotations

import typer

from dlx.cli.help import complete_overrides

OVERRIDES_HELP = "Hydra overrides, e.g. model=cnn opt=adam opt.lr=3e-4 'reg=\\[l2,dropout]'"

TRUST_FLAG = "--trust-config"
TRUST_HELP = (
    "Build whatever the run folder's config names, even targets dlx does not ship: this RUNS "
    "CODE from the folder. Only for folders you made yourself."
)


def overrides_arg(help: str = OVERRIDES_HELP):
    return typer.Argument(None, help=help, show_default=False, autocompletion=complete_overrides)


def cfg_opt():
    return typer.Option(
        None,
        "--cfg",
        "-c",
        metavar="job|hydra|all",
        show_default=False,
        help="Print the composed config (job: dlx's keys; hydra: Hydra's; all) and exit: "
        "no run, no folder.",
    )


def resolve_opt():
    return typer.Option(False, "--resolve", help="With --cfg: resolve ${...} interpolations.")


def package_opt():
    return typer.Option(
        None, "--package", "-p", metavar="KEY", help="With --cfg: only this part, e.g. -p opt."
    )


def info_opt():
    import warnings

    with warnings.catch_warnings():  # Typer marks flag_value deprecated; click still has it
        warnings.simplefilter("ignore", DeprecationWarning)
        return info_option()


def info_option():
    return typer.Option(
        None,
        "--info",
        "-i",
        is_flag=False,
        flag_value="all",
        metavar="[WHAT]",
        show_default=False,
        help="Hydra's information about this app and exit; WHAT: all (default), config, "
        "defaults, defaults-tree, plugins, searchpath.",
    )


def config_dir_opt():
    return typer.Option(
        None, "--config-dir", metavar="DIR", help="Add your own config groups (Hydra search path)."
    )
