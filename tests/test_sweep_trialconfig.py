"""A trial's config reused from the last trial's (dlx.sweeps.trialconfig) is the config
Hydra composes for it, and anything beyond new values is composed by Hydra in full."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

FIXED = ["model=mlp", "epochs=3", "log.graph=false"]


class Counting:
    """Hydra's loader, counting the trials it composed in full."""

    def __init__(self, loader):
        self.loader, self.composed = loader, 0

    def load_sweep_config(self, master, overrides):
        self.composed += 1
        return self.loader.load_sweep_config(master, overrides)


@pytest.fixture
def hydra_loader(tmp_path):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from dlx.config.compose import conf_dir, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="train"):
        loader = GlobalHydra.instance().config_loader()
        args = ["hparams_search=optuna", *FIXED, f"hydra.sweep.dir={tmp_path}"]
        yield loader, loader.load_configuration("config", args, RunMode.MULTIRUN)
    GlobalHydra.instance().clear()


def trial(n: int, lr: str, width: int, *more: str) -> list[str]:
    env = f"++hydra.job.env_set.DLX_OPTUNA_TRIAL={n}"
    return [f"opt.lr={lr}", f"model.width={width}", *FIXED, *more, env]


def test_reused_trial_configs_are_the_ones_hydra_composes(hydra_loader):
    from dlx.sweeps.trialconfig import TrialConfigs

    loader, master = hydra_loader
    counting = Counting(loader)
    fast = TrialConfigs(counting)
    trials = [
        trial(0, "0.001", 64),
        trial(1, "0.0301", 16),  # values only: reused
        trial(2, "'3e-4'", 128),  # a quoted value
        trial(3, "0.01", 32, "opt=sgd"),  # one more override: composed
        trial(4, "0.02", 32, "opt=adam"),  # another config group: composed
        trial(5, "0.03", 32, "opt=adam"),  # values only again
        trial(6, "0.03", 32, "reg=[l2,dropout]"),  # a list of choices: composed
        trial(7, "0.03", 32, "reg=l1"),  # a group, though Hydra records no list choice
        trial(8, "0.03", 32, "seed=5"),  # one more override: composed
        trial(9, "0.03", 32, "seed=6"),  # a top-level value: reused
    ]
    for overrides in trials:
        want = loader.load_sweep_config(master, overrides)
        got = fast.load_sweep_config(master, overrides)
        assert OmegaConf.to_container(got, resolve=False) == OmegaConf.to_container(
            want, resolve=False
        ), overrides
        assert got.hydra.job.override_dirname == want.hydra.job.override_dirname
        assert list(got.hydra.overrides.task) == [o for o in overrides if "hydra." not in o]
        got.hydra.job.id = 99  # what the launcher and the job write is not carried over
    assert counting.composed == 6, "trials 0, 3, 4, 6, 7 and 8 composed, 1, 2, 5 and 9 reused"
    assert fast.load_sweep_config(master, trial(10, "0.5", 8)).opt.lr == 0.5
    assert counting.composed == 7, "a different list of keys is composed in full"
    assert fast.load_sweep_config(master, trial(11, "0.25", 8)).hydra.job.get("id") is None


def test_a_bad_value_fails_as_hydra_fails(hydra_loader):
    from hydra.errors import ConfigCompositionException

    from dlx.sweeps.trialconfig import TrialConfigs

    loader, master = hydra_loader
    fast = TrialConfigs(loader)
    fast.load_sweep_config(master, trial(0, "0.001", 64, "hydra.job.chdir=false"))
    bad = trial(1, "0.1", 64, "hydra.job.chdir=sideways")  # not a bool
    with pytest.raises(ConfigCompositionException, match="sideways"):
        loader.load_sweep_config(master, bad)
    with pytest.raises(ConfigCompositionException, match="sideways"):
        fast.load_sweep_config(master, bad)


def test_while_a_multirun_runs_hydras_loader_reuses_and_then_is_itself_again(hydra_loader):
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from dlx.sweeps.trialconfig import reused_compositions

    loader, master = hydra_loader
    trials = [trial(0, "0.001", 64), trial(1, "0.02", 32), trial(2, "0.3", 32, "opt=sgd")]
    want = [OmegaConf.to_container(loader.load_sweep_config(master, t)) for t in trials]
    own = ConfigLoaderImpl.load_sweep_config
    with reused_compositions():
        assert ConfigLoaderImpl.load_sweep_config is not own
        got = [OmegaConf.to_container(loader.load_sweep_config(master, t)) for t in trials]
    assert ConfigLoaderImpl.load_sweep_config is own
    assert got == want


def test_preflight_checks_every_generated_grid_trial_as_composed(monkeypatch):
    """Preflight sizes and validates each grid trial from the first trial's config with the
    trial's values applied (and composes what changes a group): generated grids give, trial
    by trial, the config Hydra composes, and a bad value anywhere is refused (exit 2)."""
    import random

    from dlx.config.compose import compose
    from dlx.config.hydra_internals import sweep_combinations
    from dlx.errors import UserError
    from dlx.launch import preflight as pf

    seen: list = []
    real_validate = pf.validate
    monkeypatch.setattr(pf, "validate", lambda cfg: (seen.append(cfg), real_validate(cfg)))
    choices = {
        "opt.lr": ["0.1", "0.003", "1e-4"],
        "seed": ["0", "1", "7"],
        "batch_size": ["32", "64"],
        "model.width": ["16", "64"],
        "reg.weight_decay": ["0.0", "1e-4"],
        "data.seed": ["0", "3"],
        "opt": ["adam", "sgd"],  # a config group: composed
        "reg": ["l2", "dropout"],
    }
    rng = random.Random(26)
    for _ in range(6):
        keys = rng.sample(sorted(choices), 3)
        sweep = [f"{k}={','.join(rng.sample(choices[k], 2))}" for k in keys]
        seen.clear()
        pf.preflight_with_folders(["model=mlp", "epochs=2", *sweep], True, None)
        combos = sweep_combinations(["model=mlp", "epochs=2", *sweep])
        assert len(seen) == len(combos)
        for got, combo in zip(seen, combos, strict=True):
            want = compose(combo)
            assert OmegaConf.to_container(got, resolve=False) == OmegaConf.to_container(
                want, resolve=False
            ), combo
    with pytest.raises(UserError) as bad:
        pf.preflight_with_folders(["model=mlp", "opt.lr=0.1,0.01", "epochs=3,-1"], True, None)
    assert "epochs" in str(bad.value)


def test_a_suggestions_check_reuses_the_runs_config_and_judges_as_composing(monkeypatch):
    """`passes_preflight` (each printed suggestion is checked with it) starts from a config
    composed lately when the suggestion only adds or changes values: generated suggestions
    on generated runs get the config Hydra composes and the same yes/no as composing."""
    import random

    from dlx.config.compose import compose
    from dlx.launch import preflight as pf

    reused, recent = [0], pf._recent

    def counted(*args):
        cfg = recent(*args)
        reused[0] += cfg is not None
        return cfg

    monkeypatch.setattr(pf, "_recent", counted)
    values = {
        "opt.lr": ["0.03", "1e-4", "-1", "abc"],
        "epochs": ["5", "0", "40"],
        "batch_size": ["16", "0", "128"],
        "model.init": ["he", "xavier", "bogus"],
        "reg.batchnorm": ["true", "false"],
        "model.width": ["64", "-3"],
        "grad_clip": ["1.0", "null"],
        "no_such.key": ["1"],
        "opt": ["sgd", "nope"],  # a config group: composed
        "+extra": ["1"],
    }
    runs = [["model=mlp", "epochs=3"], ["epochs=2", "opt=sgd", "opt.lr=0.01"], ["model=mlp"]]
    rng = random.Random(27)
    for _ in range(30):
        base = rng.choice(runs)
        pf._COMPOSED.clear()
        pf.preflight_with_folders([*base, "hydra.run.dir=/tmp/x"], False, None)  # the run's own
        key = rng.choice(sorted(values))
        new = [o for o in base if not o.startswith(key.lstrip("+") + "=")]
        new.append(f"{key}={rng.choice(values[key])}")
        fast = pf.passes_preflight(new, None)
        pf._COMPOSED.clear()
        full = pf.passes_preflight(new, None)
        assert fast == full, new
        if full:
            pf._COMPOSED.clear()
            pf.preflight_with_folders([*base, "hydra.run.dir=/tmp/x"], False, None)
            got, _ = pf.preflight_with_folders(new, False, None, reuse=True)
            assert OmegaConf.to_container(got, resolve=False) == OmegaConf.to_container(
                compose(new), resolve=False
            ), new
    assert reused[0] >= 10, "most suggestions are values only: not composed again"


def test_a_size_is_estimated_once_and_a_new_size_afresh(monkeypatch):
    """check_capacity estimates a model's memory once for each size (data, model, reg, loss,
    batch): a sweep's seeds and learning rates and a run's lr suggestions reuse it; another
    width or batch is estimated, and a refusal still comes whatever was estimated before."""
    import torch

    from dlx.config.compose import compose
    from dlx.errors import UserError
    from dlx.launch import capacity

    calls = []
    real = capacity.estimate
    monkeypatch.setattr(capacity, "estimate", lambda cfg: (calls.append(1), real(cfg))[1])
    capacity._ESTIMATES.clear()
    cpu = torch.device("cpu")
    for extra in (["seed=1"], ["seed=2", "opt.lr=0.1"], ["opt=sgd"]):
        capacity.check_capacity(compose(["model=mlp", "model.width=48", *extra]), cpu)
    assert len(calls) == 1
    capacity.check_capacity(compose(["model=mlp", "model.width=48", "batch_size=32"]), cpu)
    capacity.check_capacity(compose(["model=mlp", "model.width=96"]), cpu)
    assert len(calls) == 3
    monkeypatch.setattr(capacity, "available_memory", lambda device: 1000)
    with pytest.raises(UserError):
        capacity.check_capacity(compose(["model=mlp", "model.width=48"]), cpu)
    assert len(calls) == 3
