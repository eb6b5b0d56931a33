"""`dlx runs [DIR]`: the table of past runs, read back from their folders."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import FAST


def runs_in_process(args: list[str]):
    from dlx.cli import app

    result = CliRunner().invoke(app, ["runs", *args], env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_runs_lists_finished_and_failed_runs_with_their_choices_and_metrics(tmp_path):
    import dlx

    root = tmp_path / "outputs"
    m = dlx.train(
        [
            "model=mlp",
            "opt=sgd",
            "epochs=2",
            "data.limit=300",
            *FAST,
            f"hydra.run.dir={root / '2030-01-01' / '10-00-00'}",
        ]
    )
    # a sweep trial that crashed: only Hydra's files and a failed metrics.json
    trial = root / "multirun" / "2030-01-02" / "09-00-00" / "0"
    (trial / ".hydra").mkdir(parents=True)
    (trial / ".hydra" / "config.yaml").write_text("epochs: 1\n")
    (trial / ".hydra" / "overrides.yaml").write_text("- opt.lr=1000000.0\n- reg=[l2,dropout]\n")
    (trial / "metrics.json").write_text(
        json.dumps(
            {"status": "failed", "error": "boom", "choices": {"model": "cnn", "opt": "adam"}}
        )
    )
    # something that is not a run folder is ignored
    (root / "notes").mkdir()

    code, out = runs_in_process([str(root)])
    assert code == 0, out
    assert "2 runs" in out
    lines = out.splitlines()
    finished = next(line for line in lines if "2030-01-01/10-00-00" in line)
    assert "model=mlp" in finished and "opt=sgd" in finished and "data=digits" in finished
    assert f"loss {m['best_value']:.4g}" in finished
    assert f"acc {m['test']['acc']:.4g}" in finished and "completed" in finished
    assert "epochs=2" in finished, "the command-line overrides"
    failed = next(line for line in lines if "multirun/2030-01-02/09-00-00/0" in line)
    assert "model=cnn" in failed and "opt.lr=1e+06" in failed and "failed" in failed
    assert "reg=[l2,dropout]" in failed, "a list choice is text, not rich markup"
    assert lines.index(finished) < lines.index(failed), "oldest first"


def test_runs_in_an_empty_folder_says_so(tmp_path):
    code, out = runs_in_process([str(tmp_path)])
    assert code == 0 and "No runs under" in out


def test_runs_in_a_missing_folder_exits_2(tmp_path):
    code, out = runs_in_process([str(tmp_path / "nope")])
    assert code == 2 and "No folder" in out
