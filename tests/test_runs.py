"""`dlx runs [DIR]` and `dlx compare`: past runs read back from their folders, filtered,
sorted, as csv/json; damaged folders next to good ones; what differs between runs."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FAST, read_metrics

T0 = 1_900_000_000  # folder times, one minute apart, in the order they are made below


def dlx_in_process(args: list[str]):
    from dlx.cli.app import app

    result = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    return result.exit_code, result.output


def runs_in_process(args: list[str]):
    return dlx_in_process(["runs", *args])


def stamp(run: Path, i: int) -> None:
    os.utime(run / ".hydra" / "overrides.yaml", (T0 + 60 * i, T0 + 60 * i))


def copy_run(src: Path, dst: Path, metrics) -> Path:
    """A run folder with `src`'s .hydra and the given metrics.json (bytes, text or data)."""
    (dst / "checkpoints").mkdir(parents=True)
    shutil.copytree(src / ".hydra", dst / ".hydra")
    if isinstance(metrics, bytes):
        (dst / "metrics.json").write_bytes(metrics)
    elif isinstance(metrics, str):
        (dst / "metrics.json").write_text(metrics)
    elif metrics is not ...:
        (dst / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return dst


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Single runs, a sweep, synthetic runs and damaged folders under one outputs/."""
    import dlx

    root = tmp_path_factory.mktemp("tree") / "outputs"
    tiny = ["model=mlp", "data.limit=300", *FAST]
    a = root / "2030-01-01" / "10-00-00"
    dlx.train(["opt=adam", "epochs=3", *tiny, f"hydra.run.dir={a}"])
    s = root / "2030-01-01" / "11-00-00"
    dlx.train(["opt=sgd", "epochs=2", *tiny, f"hydra.run.dir={s}"])
    sweep = root / "multirun" / "2030-01-02" / "09-00-00"
    code, out = dlx_in_process(
        ["sweep", "opt=adam,sgd", "opt.lr=0.05,0.01", "epochs=2", *tiny, f"hydra.sweep.dir={sweep}"]
    )
    assert code == 0, out
    good = read_metrics(a)
    names = {"A": a, "S": s, **{f"sw{i}": sweep / str(i) for i in range(4)}}
    made = root / "2030-01-03"
    names["C"] = copy_run(a, made / "best-copy", {**good, "test": {**good["test"], "acc": 0.99}})
    regression = {
        **good,
        "task": "regression",
        "monitor": "val/loss",
        "val": {"loss": 0.01},
        "test": {"loss": 0.002, "mse": 0.002},
    }
    names["R"] = copy_run(a, made / "regression", regression)
    names["list"] = copy_run(s, made / "as-list", [1, 2])
    old = {k: v for k, v in good.items() if k != "config"}  # before metrics.json held the config
    names["O"] = copy_run(a, made / "old-format", old)
    names["markup"] = copy_run(s, made / "markup", {"status": "[bold red]pwned[/]"})
    names["null"] = copy_run(s, made / "null", "null")
    names["string"] = copy_run(s, made / "string", '"completed"')
    whole = (a / "metrics.json").read_bytes()
    names["truncated"] = copy_run(s, made / "truncated", whole[: len(whole) * 2 // 3])
    names["dir"] = copy_run(s, made / "dir", ...)
    (names["dir"] / "metrics.json").mkdir()  # unreadable as a file
    names["types"] = copy_run(s, made / "types", {**read_metrics(s), "test": "abc"})
    names["killed"] = copy_run(s, made / "killed", ...)  # checkpoints/, no metrics.json
    order = ["A", "S", "sw0", "sw1", "sw2", "sw3", "C", "R", "list", "O", "markup", "null"]
    order += ["string", "truncated", "dir", "types", "killed"]
    for i, key in enumerate(order):
        stamp(names[key], i)
    (root / "notes").mkdir()  # not a run folder: ignored
    return root, names


def row_of(out: str, run: Path, root: Path) -> str:
    name = run.relative_to(root).as_posix()
    hits = [line for line in out.splitlines() if f" {name} " in line]
    assert len(hits) == 1, (name, out)
    return hits[0]


def test_runs_lists_good_runs_next_to_damaged_ones(tree):
    root, n = tree
    code, out = runs_in_process([str(root)])
    assert code == 0, out
    assert "17 runs" in out and "(7 damaged)" in out
    for key in ("list", "null", "string", "truncated", "dir", "types", "markup"):
        assert "damaged" in row_of(out, n[key], root), key
    assert "holds list" in row_of(out, n["list"], root)
    assert "holds null" in row_of(out, n["null"], root)
    assert "holds str" in row_of(out, n["string"], root)
    assert "not valid JSON" in row_of(out, n["truncated"], root)
    assert "cannot read" in row_of(out, n["dir"], root)
    assert "test is str" in row_of(out, n["types"], root)
    assert "'[bold" in row_of(out, n["markup"], root) and "pwned[/]'" in out, "markup as text"
    assert "killed" in row_of(out, n["killed"], root)
    a = read_metrics(n["A"])
    first = row_of(out, n["A"], root)
    assert "model=mlp" in first and "opt=adam" in first and "epochs=3" in first
    assert f"loss {a['best_value']:.4g}" in first and f"acc {a['test']['acc']:.4g}" in first
    r = row_of(out, n["R"], root)
    assert "mse 0.002" in r and "acc" not in r, "a regression run's MSE never reads as accuracy"
    lines = out.splitlines()
    assert lines.index(first) < lines.index(row_of(out, n["sw0"], root)), "oldest first"


def test_sort_filter_last_on_single_runs_and_sweeps(tree):
    root, n = tree
    code, out = runs_in_process(
        [str(root), "--sort", "test.acc", "--filter", "opt=adam", "--last", "5"]
    )
    assert code == 0, out
    assert "5 runs" in out and "by test.acc (high first)" in out
    shown = ["C", "sw0", "sw1", "O", "R"]  # the 5 most recent adam runs; A is older
    assert f" {n['A'].relative_to(root).as_posix()} " not in out
    acc = {k: read_metrics(n[k])["test"].get("acc") for k in shown}
    expected = sorted(shown[:-1], key=lambda k: -acc[k]) + ["R"]  # no accuracy: last
    lines = out.splitlines()
    assert [lines.index(row_of(out, n[k], root)) for k in expected] == sorted(
        lines.index(row_of(out, n[k], root)) for k in expected
    ), expected
    assert "S" not in shown and "opt=sgd" not in out


def test_csv_has_one_row_per_run_with_flat_keys(tree):
    root, n = tree
    code, out = runs_in_process([str(root), "--format", "csv"])
    assert code == 0, out
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO(out))}
    assert len(rows) == 17
    name = {k: p.relative_to(root).as_posix() for k, p in n.items()}
    sw0 = rows[name["sw0"]]
    assert sw0["opt"] == "adam" and float(sw0["opt.lr"]) == 0.05 and sw0["status"] == "completed"
    assert float(sw0["test.acc"]) == read_metrics(n["sw0"])["test"]["acc"]
    assert rows[name["O"]]["opt.lr"] == "0.001", "an older run's config read from its YAML"
    assert rows[name["R"]]["test.acc"] == "" and rows[name["R"]]["test.mse"] == "0.002"
    assert rows[name["list"]]["status"] == "damaged" and "list" in rows[name["list"]]["problem"]


def test_json_filters_on_config_and_metric_keys(tree):
    root, n = tree
    code, out = runs_in_process(
        [
            str(root),
            "--format",
            "json",
            "--filter",
            "opt.lr<0.02",
            "--filter",
            "opt.lr>=0.005",
            "--filter",
            "status=completed",
        ]
    )
    assert code == 0, out
    rows = json.loads(out)
    names = {r["run"] for r in rows}
    assert names == {n[k].relative_to(root).as_posix() for k in ("sw1", "sw3")}
    assert all(r["opt.lr"] == 0.01 and r["epochs"] == 2 for r in rows)
    both = ["--filter", "opt=adam,sgd", "--filter", "status!=damaged"]
    code, out = runs_in_process([str(root), "--format", "json", *both])
    assert len(json.loads(out)) == 10, "a list of values: any of them"
    code, out = runs_in_process([str(root), "--format", "json", "--sort", "-opt.lr"])
    lrs = [r.get("opt.lr") for r in json.loads(out) if r.get("opt.lr") is not None]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == 0.1 and lrs[-1] == 0.001


def test_sweep_option_shows_the_swept_keys(tree):
    root, n = tree
    sweep = n["sw0"].parent
    code, out = runs_in_process([str(root), "--sweep", str(sweep), "--sort", "val.loss"])
    assert code == 0, out
    assert "4 runs" in out
    header = next(line for line in out.splitlines() if "config" in line)
    assert " opt " in header and " opt.lr " in header, "a column per swept key"
    rows = [line for line in out.splitlines() if "completed" in line]
    assert len(rows) == 4 and all(line.count("completed") == 1 for line in rows), out
    assert all(line.count("│") == header.count("┃") for line in rows), "a cell per column"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--filter", "opt"], "--filter"),
        (["--filter", "opt.lr<abc"], "compares numbers"),
        (["--filter", "opt.lrr=0.1"], "opt.lr"),  # the nearest key
        (["--sort", "nope"], "--sort nope"),
        (["--last", "0"], "--last"),
        (["--format", "xml"], "--format"),
        (["--sweep", "nowhere"], "--sweep"),
    ],
)
def test_bad_options_exit_2_naming_them(tree, args, named):
    root, _ = tree
    code, out = runs_in_process([str(root), *args])
    assert code == 2, out
    assert named in out and "Traceback" not in out


def test_added_deleted_and_changed_runs_show_next_time(tree, tmp_path):
    root, n = tree
    mine = tmp_path / "outputs"
    copy_run(n["S"], mine / "one", read_metrics(n["S"]))
    code, out = runs_in_process([str(mine), "--format", "json"])
    assert [r["status"] for r in json.loads(out)] == ["completed"]
    two = copy_run(n["S"], mine / "two", {**read_metrics(n["S"]), "status": "interrupted"})
    code, out = runs_in_process([str(mine), "--format", "json"])
    assert sorted(r["status"] for r in json.loads(out)) == ["completed", "interrupted"]
    (two / "metrics.json").write_text(json.dumps({**read_metrics(two), "status": "completed"}))
    shutil.rmtree(mine / "one")
    code, out = runs_in_process([str(mine), "--format", "json"])
    assert [(r["run"], r["status"]) for r in json.loads(out)] == [("two", "completed")]


def test_a_run_being_resumed_shows_as_running(tree, tmp_path):
    root, n = tree
    run = copy_run(
        n["S"], tmp_path / "outputs" / "r", {**read_metrics(n["S"]), "status": "interrupted"}
    )
    code, out = runs_in_process([str(run.parent), "--format", "json"])
    assert json.loads(out)[0]["status"] == "interrupted"
    holder = subprocess.Popen(  # the lock `dlx train --resume` holds while it writes the folder
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from dlx.record.lock import run_lock\n"
            f"with run_lock(Path({str(run)!r})):\n    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out = runs_in_process([str(run.parent)])
        assert code == 0 and "running" in out, out
    finally:
        holder.communicate("", timeout=60)
    code, out = runs_in_process([str(run.parent), "--format", "json"])
    assert json.loads(out)[0]["status"] == "interrupted", "the lock is gone with its process"


def test_compare_two_trials_of_a_sweep_names_exactly_the_swept_keys(tree, tmp_path):
    from dlx.runs.compare import compare

    _, n = tree
    t0, t1, t3 = (str(n[k]) for k in ("sw0", "sw1", "sw3"))
    assert compare([t0, t3], out=str(tmp_path / "a.png"))["differ"] == ["opt", "opt.lr"]
    assert compare([t0, t1], out=None)["differ"] == ["opt.lr"]
    four = [str(n[f"sw{i}"]) for i in range(4)]
    assert compare(four, out=None)["differ"] == ["opt", "opt.lr"], "what varies across them"
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out = dlx_in_process(["compare", t0, t3, "--out", str(tmp_path / "b.png")])
    assert code == 0 and "2 config keys differ" in out and "adam" in out and "sgd" in out
    assert "test acc" in out and str(tmp_path / "b.png") in out.replace("\n", "")


def test_compare_writes_the_figure_in_the_current_folder(tree, tmp_path, monkeypatch):
    _, n = tree
    monkeypatch.chdir(tmp_path)
    code, out = dlx_in_process(["compare", str(n["A"]), str(n["S"]), str(n["O"])])
    assert code == 0, out
    assert "compare.png" in out and (tmp_path / "compare.png").is_file()
    assert "opt" in out and "epochs" in out, "A and S differ in opt and epochs"


def test_compare_refuses_what_is_not_a_run(tree, tmp_path):
    _, n = tree
    code, out = dlx_in_process(["compare", str(n["A"]), str(tmp_path)])
    assert code == 2 and "not a dlx run folder" in out
    code, out = dlx_in_process(["compare", str(n["A"])])
    assert code == 2 and "two run folders" in out


def test_hparams_lead_with_the_swept_keys_and_early_stopping_sits_on_the_loss_chart(tree):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.hparams import metadata

    _, n = tree
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(n["sw0"].parent))
    mux.Reload()
    content = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    for run in mux.Runs():
        exp = metadata.parse_experiment_plugin_data(content[run]["_hparams_/experiment"])
        infos = list(exp.hparam_infos)
        assert [h.name for h in infos[:2]] == ["opt", "opt.lr"], run
        assert [h.name for h in infos if h.differs] == ["opt", "opt.lr"]
        start = metadata.parse_session_start_info_plugin_data(
            content[run]["_hparams_/session_start_info"]
        )
        assert start.hparams["opt"].string_value in ("adam", "sgd")
    acc = mux.GetAccumulator("0")
    layout = layout_pb2.Layout.FromString(
        acc.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert "early_stopping/val_loss" in charts["loss"]


def test_metrics_json_keeps_its_summary_before_the_history(tree):
    _, n = tree
    m = read_metrics(n["A"])
    assert m["config"]["opt.lr"] == 0.001 and m["config"]["model._target_"].endswith("MLP")
    keys = list(m)
    assert keys[-1] == "history" and keys.index("config") < keys.index("history")


def test_runs_in_an_empty_folder_says_so(tmp_path):
    code, out = runs_in_process([str(tmp_path)])
    assert code == 0 and "No runs under" in out


def test_runs_in_a_missing_folder_exits_2(tmp_path):
    code, out = runs_in_process([str(tmp_path / "nope")])
    assert code == 2 and "No folder" in out


def test_many_runs_are_one_aligned_plain_table(tree, tmp_path):
    from dlx.runs.table import RICH_ROWS

    _, n = tree
    good = read_metrics(n["S"])
    many = tmp_path / "outputs"
    for i in range(RICH_ROWS + 5):
        run = copy_run(n["S"], many / f"r{i:03d}", {**good, "epochs_run": i})
        stamp(run, i)
    code, out = runs_in_process([str(many), "--last", str(RICH_ROWS + 1), "--sort", "-epochs_run"])
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"{RICH_ROWS + 1} runs under") and lines[1].split()[:2] == [
        "run",
        "config",
    ]
    body = lines[3:]
    assert len(body) == RICH_ROWS + 1 and body[0].split()[0] == f"r{RICH_ROWS + 4:03d}"
    assert body[-1].split()[0] == "r004", "the last N, sorted"
    assert len({line.index("completed") for line in body}) == 1, "one status column"
