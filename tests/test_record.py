"""The run folder format (`dlx.record`): atomic writes that never follow a link, the temp
files a killed writer leaves cleaned by the next lock holder, the status vocabulary and its
exit codes, and the run lock as a reader sees it."""

from __future__ import annotations

import json
import os

import pytest

from dlx.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UserError
from dlx.record import atomic, names, status
from dlx.record.lock import held_locks, is_locked, run_lock
from dlx.record.metrics import flatten, read_metrics, write_metrics


def test_writers_replace_the_whole_file_and_leave_no_temp(tmp_path):
    path = tmp_path / "run" / "eval.json"
    atomic.write_json(path, {"a": 1, "p": tmp_path})  # what JSON does not know: its str
    assert json.loads(path.read_text()) == {"a": 1, "p": str(tmp_path)}
    atomic.write_text(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["eval.json"]


def test_a_failed_write_keeps_the_old_file_and_names_it(tmp_path):
    path = tmp_path / "metrics.json"
    atomic.write_text(path, "old")

    def broken(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as caught:
        atomic.atomic_write(path, broken)
    assert caught.value.filename == str(path)
    assert path.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_a_library_writes_by_name_into_atomic_path(tmp_path):
    out = tmp_path / "figure.png"
    with atomic.atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".png") and tmp != out
        tmp.write_bytes(b"png bytes")  # as savefig(tmp) would
        assert not out.exists()  # nothing in place until the block ends
    assert out.read_bytes() == b"png bytes" and list(tmp_path.iterdir()) == [out]
    with pytest.raises(RuntimeError), atomic.atomic_path(out) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("the library failed")
    assert out.read_bytes() == b"png bytes" and list(tmp_path.iterdir()) == [out]


def test_no_write_goes_through_a_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        write_metrics(run, {"status": "completed"})
    (run / "checkpoints").symlink_to(tmp_path)  # a folder dlx writes in, pointing elsewhere
    with pytest.raises(UserError, match="symbolic link"):
        atomic.write_bytes(names.last(run), b"x")
    assert victim.read_text() == "mine" and not (tmp_path / "last.pt").exists()


def test_taking_the_lock_removes_a_killed_writers_temp_files_only(tmp_path):
    run = tmp_path / "run"
    ckpt = names.checkpoints(run)
    ckpt.mkdir(parents=True)
    stale = [ckpt / ".last.pt.ab12.dlx.tmp", ckpt / ".best.pt.cd34.dlx.tmp.pt"]
    stale.append(run / ".metrics.json.ef56.dlx.tmp")
    kept = [ckpt / "notes.tmp", run / ".other.abc.dlx.tmp"]  # not names dlx writes
    for p in stale + kept:
        p.write_text("x")
    with run_lock(run):
        assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_a_reader_sees_the_lock_while_a_writer_holds_it(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        assert is_locked(run, held_locks()) and is_locked(run, None)
        with pytest.raises(UserError, match="in use by another dlx process"):
            with run_lock(run):  # a second writer (here the same process, a new open)
                pass
    assert not is_locked(run, held_locks()) and not is_locked(run, None)


def test_one_status_vocabulary_decides_tests_tables_and_exit_codes():
    assert status.exit_code(status.COMPLETED) == status.exit_code(status.STOPPED_EARLY) == EXIT_OK
    assert status.exit_code(status.INTERRUPTED) == EXIT_INTERRUPTED
    for s in (status.DIVERGED, status.FAILED, "nonsense", None):
        assert status.exit_code(s) == EXIT_FAILED
    assert set(status.OK) <= set(status.FINAL) <= set(status.WRITTEN)
    assert status.PRUNED in status.TESTED and status.DIVERGED not in status.TESTED
    assert status.RUNNING not in status.WRITTEN and status.DAMAGED not in status.WRITTEN


def test_metrics_round_trip_and_flatten(tmp_path):
    write_metrics(tmp_path, {"status": "completed", "val": {"loss": 0.5}})
    assert read_metrics(tmp_path) == {"status": "completed", "val": {"loss": 0.5}}
    assert flatten({"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "x": {}}) == {
        "opt.lr": 0.1,
        "opt.betas": [0.9, 0.99],
        "x": {},
    }
    (tmp_path / names.METRICS).write_text("[1, 2")  # truncated
    assert read_metrics(tmp_path) is None
    assert read_metrics(tmp_path / "nothing") is None


def test_names_say_where_a_run_keeps_its_files(tmp_path):
    assert names.last(tmp_path) == tmp_path / "checkpoints" / "last.pt"
    assert names.checkpoint(tmp_path, "best") == names.best(tmp_path)
    assert names.config(tmp_path) == tmp_path / ".hydra" / "config.yaml"
    assert not names.is_run_folder(tmp_path) and not names.has_run(tmp_path)
    names.config(tmp_path).parent.mkdir()
    names.config(tmp_path).write_text("{}")
    assert names.is_run_folder(tmp_path)
    assert os.path.basename(names.lock(tmp_path)) == ".lock"
