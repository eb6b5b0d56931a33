"""After an Optuna sweep: the study in numbers, parameter importances, the optimisation
history figure, the dashboard command, and optimization_results.yaml (the best trial)."""

from __future__ import annotations

from pathlib import Path

from dlx.record.atomic import atomic_path, write_text
from dlx.sweeps.study import load, storage_spec


def study_report(config, sweep_dir: Path) -> list[str]:
    """After the sweep: the study in numbers, Optuna's parameter importances
    (param_importances.json), the optimisation history (optimization_history.png) and the
    optuna-dashboard command. Lines for the end of the ranked table."""
    import shlex

    from optuna.trial import TrialState

    sweeper = config.hydra.sweeper
    spec = storage_spec(sweeper.get("storage"), sweep_dir)
    if "://" not in spec and not Path(spec).is_file():
        return []
    try:
        study = load(spec, str(sweeper.get("study_name") or "dlx"))
    except Exception:  # not a study dlx can read: the table is still the record
        return []
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines = [
        f"study: {len(trials)} trials ({count[TrialState.COMPLETE]} complete, "
        f"{count[TrialState.PRUNED]} pruned, {count[TrialState.FAIL]} failed) in {spec}"
    ]
    lines.append(importance_line(study, count[TrialState.COMPLETE], Path(sweep_dir)))
    if count[TrialState.COMPLETE] >= 1:
        figure = Path(sweep_dir) / "optimization_history.png"
        try:
            history_figure(study, figure)
            lines.append(f"optimisation history: {figure}")
        except Exception as exc:
            lines.append(f"optimisation history: not drawn ({exc})")
    target = spec if "://" in spec else shlex.quote(spec)
    lines.append(f"dashboard: optuna-dashboard {target}  (pip install 'dlx[dashboard]')")
    return lines


IMPORTANCE_MIN = 8  # complete trials before importances say more than which trial won


def importance_line(study, complete: int, sweep_dir: Path) -> str:
    """Optuna's PED-ANOVA parameter importances (param_importances.json), from
    IMPORTANCE_MIN complete trials on: PED-ANOVA compares the top 10% of the trials with all
    of them, so fewer trials would rank the parameters by one lucky trial. The line names the
    evaluator and the trials it read, or why there are none."""
    import json

    if complete < IMPORTANCE_MIN:
        return (
            f"parameter importances: not computed ({complete} complete trial"
            f"{'' if complete == 1 else 's'}; PED-ANOVA needs {IMPORTANCE_MIN})"
        )
    importance = _import_importance()
    try:
        importances = importance.get_param_importances(
            study, evaluator=importance.PedAnovaImportanceEvaluator()
        )
    except Exception as exc:  # e.g. every complete trial had the same params
        return f"parameter importances: not available ({exc})"
    write_text(sweep_dir / "param_importances.json", json.dumps(importances, indent=2))
    shown = ", ".join(f"{k} {v:.2f}" for k, v in importances.items())
    return f"parameter importances (PED-ANOVA, {complete} complete trials): {shown or '-'}"


def _import_importance():
    """optuna.importance without scikit-learn: the package imports it eagerly (~0.6 s) for
    fANOVA's random forest, which PED-ANOVA does not use. fANOVA stays unavailable in this
    process when sklearn was not loaded yet (dlx uses PED-ANOVA only)."""
    import sys

    if "optuna.importance" in sys.modules or "sklearn" in sys.modules:
        import optuna.importance

        return optuna.importance
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` fails fast
    try:
        import optuna.importance
    finally:
        del sys.modules["sklearn"]
    return optuna.importance


def history_figure(study, path: Path) -> None:
    """Optuna's optimisation-history plot (each trial's value, the best so far), with the
    pruned trials' last reported values added, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization.matplotlib import plot_optimization_history

    ax = plot_optimization_history(study)
    pruned = [
        (t.number, t.intermediate_values[t.last_step])
        for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if t.last_step is not None
    ]
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), marker="x", color="grey", label="pruned (last)")
        ax.legend()
    with atomic_path(path) as tmp:  # whole or not at all, never through a link
        ax.figure.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)


def write_results(study, name: str, spec: str, sweep_dir: Path) -> None:
    """optimization_results.yaml, as hydra-optuna-sweeper wrote it: the best trial."""
    from omegaconf import OmegaConf

    try:
        best = study.best_trial
    except ValueError:  # no trial completed
        return
    write_text(
        Path(sweep_dir) / "optimization_results.yaml",
        OmegaConf.to_yaml(
            {
                "name": "optuna",
                "study": name,
                "storage": spec,
                "best_trial": best.number,
                "best_params": {k: v for k, v in best.params.items()},
                "best_value": best.value,
            }
        ),
    )
