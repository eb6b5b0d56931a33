"""What a user of Hydra and Typer apps types at dlx: --cfg/--resolve/--info, --help with the
config groups, --version, unknown flags, `+key` additions, hydra.verbose, shell completion,
and help/error text that prints brackets as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import DLX, FAST, run_dlx

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def shipped_groups() -> dict[str, list[str]]:
    return {
        d.name: sorted(p.stem for p in d.glob("*.yaml"))
        for d in sorted(CONF.iterdir())
        if d.is_dir() and d.name != "hydra"
    }


def test_cfg_job_prints_the_config_and_makes_no_run_folder(tmp_path):
    proc = run_dlx(["train", "--cfg", "job", "model=mlp", "opt=sgd"], tmp_path, check=0)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["model"]["_target_"] == "dlx.models.mlp.MLP"
    assert cfg["opt"]["_target_"] == "torch.optim.SGD" and "hydra" not in cfg
    assert list(tmp_path.iterdir()) == []  # no outputs/, nothing at all


def test_cfg_hydra_resolve_package_and_info(tmp_path):
    hydra = run_dlx(["train", "--cfg", "hydra"], tmp_path, check=0).stdout
    assert "${dlx_suffix:${name}}" in yaml.safe_load(hydra)["hydra"]["run"]["dir"]
    resolved = run_dlx(["train", "-c", "hydra", "--resolve", "name=try1"], tmp_path, check=0)
    run_dir = yaml.safe_load(resolved.stdout)["hydra"]["run"]["dir"]
    assert run_dir.startswith("outputs/") and run_dir.endswith("_try1") and "${" not in run_dir
    both = yaml.safe_load(run_dlx(["train", "--cfg", "all"], tmp_path, check=0).stdout)
    assert "hydra" in both and "epochs" in both
    opt = run_dlx(["train", "--cfg", "job", "-p", "opt", "opt=sgd", "opt.lr=0.5"], tmp_path)
    assert yaml.safe_load(opt.stdout)["lr"] == 0.5, opt.stdout
    info = run_dlx(["train", "--info", "defaults", "model=mlp"], tmp_path, check=0).stdout
    assert "Defaults List" in info and "model/mlp" in info
    sweep = run_dlx(["sweep", "--cfg", "job", "opt=sgd,adam"], tmp_path, check=0)
    assert yaml.safe_load(sweep.stdout)["opt"]["_target_"] == "torch.optim.SGD"
    assert "the first of 2 trials" in sweep.stderr
    assert list(tmp_path.iterdir()) == []


def test_cfg_refuses_what_a_run_refuses(tmp_path):
    bad = run_dlx(["train", "--cfg", "job", "model=nosuch"], tmp_path, check=2)
    assert "mlp" in bad.stderr and "Traceback" not in bad.stderr
    assert "job, hydra or all" in run_dlx(["train", "--cfg", "jobs"], tmp_path, check=2).stderr
    alone = run_dlx(["train", "--resolve"], tmp_path, check=2)
    assert "--resolve` goes with --cfg" in alone.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_help_lists_every_group_with_its_options_and_the_keys(tmp_path):
    out = run_dlx(["train", "--help"], tmp_path, check=0).stdout
    lines = out.splitlines()
    for group, options in shipped_groups().items():
        row = next((line for line in lines if line.strip("│ ").startswith(group + " ")), None)
        assert row is not None, f"no row for {group}:\n{out}"
        at = lines.index(row)  # options may wrap onto the next line(s)
        text = " ".join(lines[at : at + 3])
        for option in options:
            assert option in text, f"{group}: {option} missing from --help"
    for key in ("epochs", "batch_size", "seed", "early_stopping.*", "log.*"):
        assert key in out
    assert "'reg=[l2,dropout]'" in out  # rich markup did not eat the brackets
    assert "Usage: dlx train" in out


def test_train_help_includes_a_config_dirs_groups(tmp_path):
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "tiny.yaml").write_text("_target_: x.Tiny\n")
    out = run_dlx(["train", "--config-dir", str(tmp_path / "mine"), "--help"], tmp_path).stdout
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("model "))
    assert "tiny" in row and "mlp" in row


def test_version(tmp_path):
    out = run_dlx(["--version"], tmp_path, check=0).stdout
    assert out.startswith("dlx 0.1.0") and "hydra-core 1.3" in out


def test_an_unknown_flag_is_one_line_with_the_close_matches(tmp_path):
    proc = run_dlx(["train", "--nosuch"], tmp_path, check=2)
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "No such option: --nosuch" in proc.stderr and "^" not in proc.stderr
    near = run_dlx(["train", "--resum", "outputs/x"], tmp_path, check=2)
    assert "Did you mean --resume" in near.stderr
    assert "No such option: --cfgg" in run_dlx(["sweep", "--cfgg"], tmp_path, check=2).stderr
    assert list(tmp_path.iterdir()) == []


def test_plus_keys_nothing_reads_are_refused_like_unknown_keys(tmp_path):
    typo = run_dlx(["train", "+epoch=5"], tmp_path, check=2)
    assert "Unknown key `epoch`. Did you mean `epochs`?" in typo.stderr
    assert "nothing in dlx reads it" in typo.stderr
    assert "Unknown key `foo`" in run_dlx(["train", "+foo=1"], tmp_path, check=2).stderr
    block = run_dlx(["train", "+early_stopping.patiense=3"], tmp_path, check=2)
    assert "early_stopping.patience" in block.stderr
    exp = run_dlx(["train", "+experiment=overfitting"], tmp_path, check=2)
    assert "dlx train experiment=overfitting" in exp.stderr and "override" not in exp.stderr
    assert list(tmp_path.iterdir()) == []


def test_hydras_list_hint_prints_its_brackets(tmp_path):
    proc = run_dlx(["train", "reg=l2,dropout"], tmp_path, check=2)
    assert "key=[value1,value2]" in proc.stderr


def test_hydra_verbose_shows_dlx_debug_lines(tmp_path):
    run = tmp_path / "run"
    args = ["train", "hydra.verbose=true", "epochs=1", f"hydra.run.dir={run}", *FAST]
    proc = run_dlx(args, tmp_path, check=0)
    assert "[dlx][DEBUG] composed config:" in proc.stderr
    assert "[DEBUG] composed config:" in (run / "train.log").read_text()
    quiet = run_dlx(["train", "epochs=1", f"hydra.run.dir={tmp_path / 'q'}", *FAST], tmp_path)
    assert "DEBUG" not in quiet.stdout + quiet.stderr


# --- shell completion: Typer's protocol, as the installed bash/zsh function calls it ---------


def complete(line: str, cwd, env=None) -> tuple[list[str], bool]:
    """What dlx's bash script gets back for the line `line` (the cursor at its end): the text
    to put after bash's last word break (`=`), and whether torch was imported to answer."""
    code = (
        "import sys\nfrom dlx.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n"
    )
    e = {**os.environ, "_DLX_COMPLETE": "complete_bash", "_DLX_LINE": line}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**e, **(env or {})},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split(), "NO-TORCH" in proc.stderr


def test_completion_of_a_groups_options_without_torch(tmp_path):
    got, light = complete("dlx train model=", tmp_path)
    assert got == shipped_groups()["model"]  # bash puts them after the `=`: no `model==`
    assert "mlp" in got and "cnn" in got
    assert light, "completion imported torch"
    assert complete("dlx train model=m", tmp_path)[0] == ["mlp"]
    assert complete("dlx train opt=sgd model=", tmp_path)[0] == got


def test_completion_of_keys_groups_and_a_config_dir(tmp_path):
    keys, _ = complete("dlx train opt.", tmp_path)
    assert "opt.lr=" in keys
    sgd, _ = complete("dlx train opt=sgd opt.", tmp_path)
    assert "opt.lr=" in sgd and "opt.betas=" not in sgd  # SGD has no betas; Adam does
    es, _ = complete("dlx train early_stopping.pa", tmp_path)
    assert es == ["early_stopping.patience="]
    top, _ = complete("dlx train ", tmp_path)
    assert {"model=", "opt=", "epochs=", "early_stopping."} <= set(top)
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "tiny.yaml").write_text("_target_: x.Tiny\nwidth: 4\n")
    mine, _ = complete("dlx train --config-dir mine model=", tmp_path)
    assert "tiny" in mine and "mlp" in mine
    tiny, _ = complete("dlx train --config-dir mine model=tiny model.", tmp_path)
    assert "model.width=" in tiny
    assert complete("dlx tr", tmp_path)[0] == ["train"]


def test_install_and_show_completion_are_there(tmp_path):
    # Typer finds the shell among the command's parents, as for a user typing it in bash.
    proc = subprocess.run(
        ["bash", "-c", f"{' '.join(DLX)} --show-completion; exit $?"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "_DLX_COMPLETE=complete_bash" in out and "_DLX_LINE=" in out  # dlx's own script
    assert "--install-completion" in run_dlx(["--help"], tmp_path, check=0).stdout


def test_a_piped_cfg_into_head_ends_quietly(tmp_path):
    proc = subprocess.run(
        f"{' '.join(DLX)} train --info all | head -1",
        shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr, proc.stderr


def readme_block(heading: str) -> str:
    """The first ```bash block after `heading` in README.md."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(heading) :]
    start = after.index("```bash\n") + len("```bash\n")
    return after[start : after.index("\n```", start)]


def test_the_readmes_own_model_example_runs_as_written(tmp_path):
    script = readme_block("### Your own model")
    # `dlx` as this test's interpreter runs it (the worktree's dlx, wherever it is installed)
    prelude = f'dlx() {{ "{sys.executable}" -m dlx "$@"; }}\nset -e\n'
    proc = subprocess.run(
        ["bash", "-c", prelude + script], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = tmp_path.glob("outputs/*/*_tiny")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] in ("completed", "stopped_early") and metrics["epochs_run"] >= 1
    # the model got its own key from the command line and dropout from reg=[dropout]
    assert "model Tiny" in proc.stdout
    width = 64
    assert metrics["parameters"]["trainable"] == 64 * width + width + width * 10 + 10
    cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert cfg["model"]["width"] == width and cfg["reg"]["dropout"] > 0
