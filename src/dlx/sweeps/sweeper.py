"""What dlx's Hydra sweeper does (hydra_plugins/dlx_sweeper is only its plugin shell).

Two ways to pick trials, one way to run them:
- Optuna (`hparams_search=optuna`, `hydra/sweeper=optuna`): each batch of `n_jobs` trials is
  asked from the study, launched through whatever launcher is configured (basic, joblib, Ray,
  submitit), and told its outcome from the trial's own metrics.json (completed, pruned or
  failed).
- Grid (`hydra/sweeper=dlx_grid`, and `--resume` of a plain grid sweep): every combination of
  the a,b,c sweeps in the order Hydra's own grid sweeper runs them, so trial N is the same
  folder N; with a pruner, each grid point is a trial of a study too (successive halving over
  the grid).

Trial N lives in SWEEP_DIR/N. `resume: true` keeps every trial folder that holds a final
metrics.json, relaunches the interrupted ones (the job continues from its own
checkpoints/last.pt: dlx.launch.hydra_app.task) and runs those never started.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from dlx.errors import UserError
from dlx.record import names
from dlx.record import status as st
from dlx.record.atomic import write_text
from dlx.sweeps.groups import override_key
from dlx.sweeps.repeats import outcome, repeat_extras, without_keys
from dlx.sweeps.summary import folder_state, objective_direction, read_trial_metrics

log = logging.getLogger("dlx")


def _name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _override_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def pruned_grid(overrides: list[str]) -> list[str]:
    """`dlx sweep opt=adam,sgd hydra.sweeper.pruner=asha`: a grid that prunes runs through
    dlx's grid sweeper (Hydra's own has no pruner)."""
    keys = {o.lstrip("+~").partition("=")[0].strip() for o in overrides}
    if "hydra.sweeper.pruner" in keys and not keys & {"hparams_search", "hydra/sweeper"}:
        return [*overrides, "hydra/sweeper=dlx_grid"]
    return overrides


def run_sweep(plugin, arguments: list[str]) -> list[Any]:
    opts = plugin.options
    config = plugin.config
    sweep_dir = Path(config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    resume = bool(opts.get("resume"))
    if not (resume and (sweep_dir / names.MULTIRUN).is_file()):
        write_text(sweep_dir / names.MULTIRUN, OmegaConf.to_yaml(config))  # never via a link
    params = [f"{k}={v}" for k, v in (opts.get("params") or {}).items()] + list(arguments)
    pruner = _name(opts.get("pruner") or "none")
    monitor = OmegaConf.select(config, "early_stopping.monitor", default="val/loss")
    direction = _name(opts.get("direction") or "auto")
    if direction == "auto":
        direction = objective_direction(monitor)
    run = _Run(plugin, sweep_dir, pruner, direction, resume)
    swept = {override_key(p) for p in params}
    run.extras = repeat_extras(config, int(opts.get("repeat") or 1), swept)
    if opts.get("grid"):
        run.grid(params)
    else:
        run.optuna(params)
    return run.returns


class _Run:
    def __init__(self, plugin, sweep_dir: Path, pruner: str, direction: str, resume: bool):
        self.plugin, self.opts = plugin, plugin.options
        self.sweep_dir, self.pruner, self.direction, self.resume = (
            sweep_dir,
            pruner,
            direction,
            resume,
        )
        self.study = None
        self.spec = ""
        self.returns: list[Any] = []
        self.failures = 0
        self.launched = 0
        self.fixed: list[str] = []
        self.extras: list[list[str]] = [[]]  # repeat r of a configuration adds extras[r]
        self.folders: dict[int, list[Path]] = {}  # trial number -> its repeats' folders
        self.mine = str(sweep_dir.resolve())  # a study (hydra.sweeper.storage) may hold others
        self.validated = False  # the first batch sent to a launcher in other processes

    def basic(self) -> bool:
        """Hydra's basic launcher: one job at a time, in this process."""
        return "BasicLauncher" in type(self.plugin.launcher).__name__

    def trials(self) -> list[Any]:
        """This sweep's trials of the study (several sweeps can share one study)."""
        return [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.user_attrs.get("sweep_dir") == self.mine
        ]

    # -- the study -------------------------------------------------------------------------
    def open_study(self, space: dict[str, Any], sampler: Any = None):
        import optuna

        from dlx.sweeps import study as st

        st.quiet_optuna()
        self.spec = st.storage_spec(self.opts.get("storage"), self.sweep_dir)
        self.name = str(self.opts.get("study_name") or "dlx")
        self.space = space
        study = optuna.create_study(
            study_name=self.name,
            storage=st.open_storage(self.spec),
            direction=self.direction,
            load_if_exists=True,
            pruner=st.make_pruner(self.pruner, self.opts.get("pruning")),
            sampler=sampler or st.make_sampler(self.opts.get("sampler"), 0, space),
        )
        if study.direction.name.lower() != self.direction:
            raise UserError(
                f"The study `{self.name}` in {self.spec} was made to "
                f"{study.direction.name.lower()}, this sweep would {self.direction} "
                f"(early_stopping.monitor / hydra.sweeper.direction).",
                key="hydra.sweeper.direction",
            )
        study.set_user_attr("pruner", self.pruner)
        study.set_user_attr("pruning", OmegaConf.to_container(self.opts.get("pruning") or {}))
        self.study = study
        return study

    def ask(self, job: int, overrides: list[str] | None = None, params=None):
        """A new trial for folder `job`: sampled (Optuna) or given (a grid point)."""
        from dlx.sweeps.study import make_sampler

        study = self.study
        if params is not None:
            study.enqueue_trial(params)
        else:
            study.sampler = make_sampler(self.opts.get("sampler"), job, self.space)
        trial = study.ask(self.space)
        repeat = 1
        if overrides is None:
            overrides = [f"{k}={_override_value(v)}" for k, v in trial.params.items()]
            overrides += without_keys(self.fixed, self.extras[0])
            repeat = len(self.extras)
        self.folders[trial.number] = [self.sweep_dir / str(job + r) for r in range(repeat)]
        trial.set_user_attr("job", job)
        trial.set_user_attr("repeat", repeat)
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("sweep_dir", self.mine)
        return trial.number, overrides

    def tell(self, number: int, folders: list[Path]) -> None:
        from optuna.trial import TrialState

        state, value = outcome(folders)
        try:
            if state == "complete":
                self.study.tell(number, value, skip_if_finished=True)
            else:
                state = TrialState.PRUNED if state == "pruned" else TrialState.FAIL
                self.study.tell(number, state=state, skip_if_finished=True)
        except RuntimeError as exc:  # the grid sampler stops the study once the grid is done
            if "Study.stop" not in str(exc):
                raise

    # -- running trials --------------------------------------------------------------------
    def launch(self, jobs: list[tuple[int, list[str], int | None]]) -> None:
        """Run (folder index, overrides, trial number) jobs; consecutive folders go to the
        launcher together (it numbers a batch's jobs from initial_job_idx)."""
        from dlx.sweeps.study import trial_env

        groups: list[list[tuple[int, list[str], int | None]]] = []
        for job in jobs:
            if groups and groups[-1][-1][0] + 1 == job[0]:
                groups[-1].append(job)
            else:
                groups.append([job])
        for group in groups:
            batch = [
                [*ov, *(trial_env(self.spec, self.name, n) if n is not None else [])]
                for _, ov, n in group
            ]
            if not self.validated and not self.basic():
                # Hydra's check composes each job's config once more (~0.1 s): the first batch
                # tells; the basic launcher composes in this process and fails the same way.
                self.plugin.validate_batch_is_legal(batch)
                self.validated = True
            results = self.plugin.launcher.launch(batch, initial_job_idx=group[0][0])
            self.returns.append(results)
            for (job, _, _n), ret in zip(group, results, strict=True):
                folder = self.sweep_dir / str(job)
                with_result = read_trial_metrics(folder) or {}
                if _name(ret.status) != "COMPLETED" or with_result.get("status") not in st.FINAL:
                    self.failures += 1
                self.launched += 1
            told = dict.fromkeys(n for _, _, n in group if n is not None)
            for number in told if self.study is not None else ():
                self.tell(number, self.folders.get(number) or [])

    def too_many_failures(self) -> bool:
        rate = float(self.opts.get("max_failure_rate", 1.0))
        if self.launched and self.failures / self.launched > rate:
            log.error(
                "%d of %d trials failed, more than max_failure_rate=%g: the search stops.",
                self.failures,
                self.launched,
                rate,
            )
            return True
        return False

    def pending(self) -> list[tuple[int, list[str], int]]:
        """Resume: the study's trials that never got their outcome (the sweep was killed)."""
        from optuna.trial import TrialState

        out = []
        for t in self.trials():
            if t.state not in (TrialState.RUNNING, TrialState.WAITING):
                continue
            job, overrides = t.user_attrs.get("job"), t.user_attrs.get("overrides")
            if job is None or overrides is None:  # not one of dlx's: cannot be rerun
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                continue
            repeat = int(t.user_attrs.get("repeat", 1))
            folders = [self.sweep_dir / str(int(job) + r) for r in range(repeat)]
            self.folders[t.number] = folders
            todo = [r for r, f in enumerate(folders) if folder_state(f) != "finished"]
            if not todo:  # ran to its end; the tell was lost
                self.tell(t.number, folders)
            extras = self.extras if repeat > 1 else [[]]
            out += [(int(job) + r, [*overrides, *extras[r]], t.number) for r in todo]
        return sorted(out)

    # -- the two searches -------------------------------------------------------------------
    def optuna(self, params: list[str]) -> None:
        from dlx.sweeps.report import write_results
        from dlx.sweeps.study import distributions, grid_space

        space, self.fixed = distributions(params)
        if not space:
            raise UserError(
                "hparams_search=optuna: nothing to search. Give a search space, e.g. "
                "'opt.lr=tag(log, interval(1e-4, 1e-1))' or 'batch_size=choice(32, 64)', "
                "or hydra.sweeper.params.KEY=... .",
                key="hydra.sweeper.params",
            )
        self.open_study(space)
        n_trials = int(self.opts.get("n_trials") or 0)
        sampler = self.opts.get("sampler") or {}
        if str(sampler.get("_target_", "")).endswith("GridSampler"):
            size = math.prod(len(v) for v in grid_space(space).values())
            n_trials = min(n_trials, size) if n_trials else size
        n_jobs = max(1, int(self.opts.get("n_jobs") or 1))
        if self.resume:
            todo = self.pending()
            for i in range(0, len(todo), n_jobs):
                self.launch(todo[i : i + n_jobs])
        while not self.too_many_failures():
            left = n_trials - len(self.trials())
            if left <= 0:
                break
            batch = []
            for _ in range(min(n_jobs, left)):
                job = len(self.trials()) * len(self.extras)  # a trial is its repeats' folders
                number, overrides = self.ask(job)
                batch += [(job + r, [*overrides, *x], number) for r, x in enumerate(self.extras)]
            self.launch(batch)
        write_results(self.study, self.name, self.spec, self.sweep_dir)

    def grid(self, params: list[str]) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = OverridesParser.create(config_loader=self.plugin.hydra_context.config_loader)
        parsed = parser.parse_overrides(params)
        (combos,) = BasicSweeper.split_arguments(parsed, None)
        n_trials = int(self.opts.get("n_trials") or 0)
        combos = combos[:n_trials] if n_trials > 0 else combos
        if len(self.extras) > 1:  # each grid point, repeated with the seeds of the repeats
            combos = [[*without_keys(c, x), *x] for c in combos for x in self.extras]
        swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
        with_study = self.pruner != "none"
        by_job: dict[int, int] = {}
        if with_study:
            from optuna.distributions import CategoricalDistribution
            from optuna.samplers import RandomSampler

            values: dict[str, list[str]] = {}
            for combo in combos:
                for o in combo:
                    key, _, value = o.partition("=")
                    if key in swept and value not in values.setdefault(key, []):
                        values[key].append(value)
            space = {k: CategoricalDistribution(v) for k, v in values.items()}
            self.open_study(space, sampler=RandomSampler(seed=0))  # the grid gives the params
            for t in self.trials():
                if t.user_attrs.get("job") is not None:
                    by_job[int(t.user_attrs["job"])] = t.number
        todo = []
        for job, combo in enumerate(combos):
            folder = self.sweep_dir / str(job)
            if self.resume and folder_state(folder) == "finished":
                if with_study and job in by_job:
                    self.folders[by_job[job]] = [folder]
                    self.tell(by_job[job], [folder])
                continue
            todo.append((job, list(combo)))
        # Told after each batch: the basic launcher runs one trial at a time, so a pruner sees
        # each finished trial; parallel launchers get the whole grid at once, as Hydra's does.
        step = 1 if self.basic() or not todo else len(todo)
        for i in range(0, len(todo), step):
            if self.too_many_failures():
                break
            jobs = []
            for job, combo in todo[i : i + step]:
                number = None
                if with_study:
                    number = by_job.get(job)
                    self.folders[number] = [self.sweep_dir / str(job)]
                    if number is None:
                        params_of = {
                            o.partition("=")[0]: o.partition("=")[2]
                            for o in combo
                            if o.partition("=")[0] in swept
                        }
                        number, _ = self.ask(job, overrides=combo, params=params_of)
                jobs.append((job, combo, number))
            self.launch(jobs)
        if with_study:
            from dlx.sweeps.report import write_results

            write_results(self.study, self.name, self.spec, self.sweep_dir)
