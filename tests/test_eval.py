"""`dlx eval RUN_DIR`: rebuilds a finished run from its own folder and measures it again."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import FAST, all_tags, read_metrics, run_dlx

TINY = ["epochs=2", "data.limit=300", "opt.lr=0.01", *FAST]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import dlx

    run_dir = tmp_path_factory.mktemp("eval") / "run"
    dlx.train([*TINY, f"hydra.run.dir={run_dir}"])
    return run_dir


def eval_in_process(args: list[str]):
    from dlx.cli.app import app

    result = CliRunner().invoke(app, ["eval", *args])
    return result.exit_code, result.output


def test_eval_reproduces_the_runs_own_test_metric(run):
    proc = run_dlx(["eval", str(run)], cwd=run.parent, check=0)
    test = read_metrics(run)["test"]
    result = json.loads((run / "eval.json").read_text())
    assert result["checkpoint"] == test["checkpoint"] == "best" and result["split"] == "test"
    assert result["metrics"]["loss"] == pytest.approx(test["loss"], abs=1e-6)
    assert result["metrics"]["acc"] == pytest.approx(test["acc"], abs=1e-6)
    assert result["run_test"]["max_abs_diff"] <= 1e-6
    # a per-class table on the terminal and a confusion matrix that adds up to the split
    assert "per class" in proc.stdout and "precision" in proc.stdout and "recall" in proc.stdout
    matrix = result["confusion_matrix"]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == sum(
        r["support"] for r in result["per_class"]
    )
    correct = sum(matrix[i][i] for i in range(10))
    assert correct / sum(map(sum, matrix)) == pytest.approx(test["acc"], abs=1e-9)
    assert "confusion_matrix/test" in all_tags(run)["images"]


def test_eval_last_checkpoint_on_val_matches_the_last_epoch(run):
    code, out = eval_in_process([str(run), "--checkpoint", "last", "--split", "val"])
    assert code == 0, out
    result = json.loads((run / "eval.json").read_text())
    last_val = read_metrics(run)["history"][-1]["val"]
    assert result["checkpoint"] == "last" and result["split"] == "val" and result["epoch"] == 2
    assert result["metrics"]["loss"] == pytest.approx(last_val["loss"], abs=1e-6)
    assert "confusion_matrix/val" in all_tags(run)["images"]


def test_eval_defaults_to_the_checkpoint_the_run_tested_with(tmp_path):
    import dlx

    run_dir = tmp_path / "run"
    m = dlx.train([*TINY, "early_stopping.restore_best=false", f"hydra.run.dir={run_dir}"])
    assert m["test"]["checkpoint"] == "last"
    code, out = eval_in_process([str(run_dir)])
    assert code == 0, out
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["checkpoint"] == "last"
    assert result["metrics"]["loss"] == pytest.approx(m["test"]["loss"], abs=1e-6)


def test_eval_of_a_regression_run_logs_the_fit_figure(tmp_path):
    import dlx

    run_dir = tmp_path / "run"
    m = dlx.train(["data=function", "model=shallow", "epochs=2", *FAST, f"hydra.run.dir={run_dir}"])
    code, out = eval_in_process([str(run_dir)])
    assert code == 0, out
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["task"] == "regression" and "per_class" not in result
    assert result["metrics"]["mse"] == pytest.approx(m["test"]["mse"], abs=1e-6)
    assert "fit/test" in all_tags(run_dir)["images"]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--checkpoint", "newest"], "best | last"),
        (["--split", "train"], "test | val"),
        (["--device", "tpu"], "auto | cpu | cuda | mps"),
    ],
)
def test_eval_rejects_unknown_options_with_exit_2(run, args, says):
    code, out = eval_in_process([str(run), *args])
    assert code == 2 and says in out and "Traceback" not in out


def test_eval_of_a_folder_that_is_not_a_run_exits_2(tmp_path):
    code, out = eval_in_process([str(tmp_path)])
    assert code == 2 and "not a dlx run folder" in out


def test_eval_device_moves_a_gpu_run_to_this_machine(run, tmp_path):
    """A run trained with device=cuda, evaluated where there is no GPU: --device cpu."""
    import shutil

    import torch
    from omegaconf import OmegaConf

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    gpu_run = tmp_path / "gpu-run"
    shutil.copytree(run, gpu_run)
    cfg = OmegaConf.load(gpu_run / ".hydra" / "config.yaml")
    cfg.device.type = "cuda"
    cfg.precision = "fp16"  # a GPU-only setting: on the CPU the same weights run in fp32
    OmegaConf.save(cfg, gpu_run / ".hydra" / "config.yaml")
    code, out = eval_in_process([str(gpu_run)])
    assert code == 2 and "device=cuda" in out and "--device cpu" in out and "Traceback" not in out
    code, out = eval_in_process([str(gpu_run), "--device", "cuda"])
    assert code == 2 and "`--device cuda`" in out and "--device cpu" in out
    code, out = eval_in_process([str(gpu_run), "--device", "cpu"])
    assert code == 0, out
    result = json.loads((gpu_run / "eval.json").read_text())
    assert result["metrics"]["acc"] == pytest.approx(read_metrics(run)["test"]["acc"], abs=1e-6)
