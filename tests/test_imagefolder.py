"""Image folders: the decode cache (built once, reused, rebuilt when a file changes, shared by
two runs at once), the same batches as reading the files, memory-mapped serving with bounded
resident pages, and bad files named before training."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DLX, FAST, read_metrics, run_dlx


def write_folder(root: Path, per_class: int = 10, classes=("cats", "dogs"), size=(20, 26)):
    """Small RGB PNGs, each class its own colour; sizes vary (some need a resize)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = size[0] + i % 5, size[1] + i % 3
            img = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
            img[..., c % 3] += 150
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def build(root: Path, *overrides: str, seed: int = 0):
    from dlx.config.compose import compose
    from dlx.data import build_data

    cfg = compose(["data=imagefolder", f"data.root={root}", "data.image_size=16", *overrides])
    return build_data(cfg.data, seed)


def caches(root: Path) -> list[Path]:
    return sorted(root.glob(".dlx-cache-*.u8"))


def batches(data, split: str, shuffle: bool):
    from dlx.data.loader import make_loader

    loader = make_loader(
        getattr(data, split), 8, shuffle, torch.device("cpu"), torch.Generator().manual_seed(3)
    )
    return list(loader)


# ---------------------------------------------------------------------------- the cache


def test_cache_is_reused_unchanged_and_rebuilt_when_a_file_changes(tmp_path, capsys):
    from PIL import Image

    root = write_folder(tmp_path / "pets")
    a = build(root)
    out = capsys.readouterr().out
    assert "decode cache memory" in out and "cache built now" in out
    assert len(caches(root)) == 1 and not list(root.glob("*.tmp"))
    first = caches(root)[0]

    b = build(root)
    assert "cache reused" in capsys.readouterr().out
    assert caches(root) == [first]
    assert torch.equal(a.train.batch(slice(0, 4)), b.train.batch(slice(0, 4)))

    # touch one file: a new key, a rebuild, the stale cache gone
    target = root / "cats" / "3.png"
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    build(root)
    assert "cache built now" in capsys.readouterr().out
    assert len(caches(root)) == 1 and caches(root) != [first]

    # change its pixels: the cache holds the new ones
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(target)
    c = build(root)
    assert "cache built now" in capsys.readouterr().out
    k = sorted(str(p) for p in root.glob("*/*.png")).index(str(target))
    assert (c.train.pixels.x[k] == 7).all()
    assert c.train.pixels.x.shape == (20, 3, 16, 16) and c.train.pixels.x.dtype == torch.uint8


def test_the_image_size_is_part_of_the_key_and_a_matching_size_is_not_resized(tmp_path):
    from PIL import Image

    root = tmp_path / "same"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((16, 16, 3), 40 * i + (c == "b"), np.uint8)).save(
                root / c / f"{i}.png"
            )
    d = build(root)
    assert d.in_shape == (3, 16, 16)
    values = sorted(int(v) for v in d.train.pixels.x[:, 0, 0, 0])
    assert values == sorted(40 * i + j for i in range(4) for j in (0, 1))  # exact pixels
    d32 = build(root, "data.image_size=32")
    assert d32.in_shape == (3, 32, 32) and len(caches(root)) == 2


def test_image_size_auto_is_the_median_shorter_side_capped_at_64_and_said(tmp_path, capsys):
    """A folder of ~20x26 images trains at 22x22 by default, not upscaled to 64x64."""
    d = build(write_folder(tmp_path / "small"), "data.image_size=auto")
    assert d.in_shape == (3, 22, 22)  # shorter sides 20..24: the median is 22
    assert (
        "data.image_size=auto: 22 (the median shorter side of 20 sampled" in capsys.readouterr().out
    )
    big = build(write_folder(tmp_path / "big", per_class=3, size=(90, 100)), "data.image_size=auto")
    assert big.in_shape == (3, 64, 64)


def test_two_runs_started_together_share_one_valid_cache(tmp_path):
    root = write_folder(tmp_path / "pets", per_class=700, size=(12, 14))  # 1,400: a decode pool
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    args = ["train", "data=imagefolder", f"data.root={root}", "data.image_size=12", "epochs=1"]
    procs = [
        subprocess.Popen(
            [*DLX, *args, f"hydra.run.dir={tmp_path / f'run{i}'}", *FAST],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    built = [o for o in outs if "cache built now" in o]
    assert len(built) == 1, outs  # one decoded, the other waited and reused it
    assert any("filled by another run" in o or "cache reused" in o for o in outs), outs
    assert len(caches(root)) == 1 and not list(root.glob("*.tmp"))
    meta = json.loads(caches(root)[0].with_suffix(".json").read_text())
    assert meta["shape"] == [1400, 3, 12, 12] and meta["bad"] == []
    assert caches(root)[0].stat().st_size == 1400 * 3 * 12 * 12
    a, b = (read_metrics(tmp_path / f"run{i}") for i in range(2))
    assert a["test"] == b["test"]  # the same data, the same run


# ---------------------------------------------------------------------------- same batches


@pytest.mark.parametrize("mode", ["memory", "mmap"])
def test_cached_batches_are_bit_identical_to_reading_the_files(tmp_path, mode):
    root = write_folder(tmp_path / "pets", per_class=15)
    cached = build(root, f"data.cache={mode}")
    plain = build(root, "data.cache=none")
    assert type(plain.train).__name__ == "ImageFiles"
    assert cached.mean == plain.mean and cached.std == plain.std
    for split, shuffle in (("train", True), ("val", False), ("test", False)):
        got, want = batches(cached, split, shuffle), batches(plain, split, shuffle)
        assert len(got) == len(want)
        for (xa, ya), (xb, yb) in zip(got, want, strict=True):
            assert xa.dtype == xb.dtype == torch.float32
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_mmap_serves_the_file_with_bounded_resident_pages(tmp_path, capsys):
    smaps = Path("/proc/self/smaps")
    if not smaps.is_file():
        pytest.skip("needs Linux's /proc/self/smaps")
    root = write_folder(tmp_path / "big", per_class=750, size=(64, 64))
    # 1,500 images x 3 x 64 x 64 = 18 MiB of pixels; budget 1 MiB: auto picks mmap
    d = build(root, "data.image_size=64", "data.memory_limit_mb=1")
    assert "decode cache mmap (auto: 18 MiB of pixels > budget 1 MiB" in capsys.readouterr().out
    px = d.train.pixels
    px.window = 2 * 2**20  # hand pages back every 2 MiB read (the test's small case)
    path = str(caches(root)[0])

    def resident_kb() -> int:
        """Resident pages of the cache file's mapping (smaps: a header line per mapping)."""
        rss, inside = 0, False
        for line in smaps.read_text().splitlines():
            head = line.split()
            if len(head) >= 5 and "-" in head[0] and len(head[1]) == 4:  # a mapping's header
                inside = line.rstrip().endswith(path)
            elif inside and head[0] == "Rss:":
                rss += int(head[1])
        return rss

    peak = 0
    for split, shuffle in (("train", True), ("val", False), ("train", True)):
        from dlx.data.loader import make_loader

        for _xb, _yb in make_loader(
            getattr(d, split), 16, shuffle, torch.device("cpu"), torch.Generator().manual_seed(0)
        ):
            peak = max(peak, resident_kb())
    total_kb = 1500 * 3 * 64 * 64 // 1024
    one_batch_kb = 16 * (3 * 64 * 64 + 128 * 1024) // 1024  # images + the kernel's fault-around
    assert 0 < peak <= 2 * 1024 + one_batch_kb, (peak, total_kb)
    assert peak < total_kb / 3
    memory = build(root, "data.image_size=64", "data.cache=memory")
    assert torch.equal(d.test.batch(slice(0, 50)), memory.test.batch(slice(0, 50)))


# ---------------------------------------------------------------------------- bad files


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\0" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def write_bad_files(root: Path) -> dict[str, Path]:
    good = (root / "cats" / "0.png").read_bytes()
    bad = {
        "truncated": root / "cats" / "truncated.png",
        "empty": root / "dogs" / "empty.png",
        "fake": root / "dogs" / "notes.jpg",
        "bomb": root / "cats" / "bomb.png",
    }
    bad["truncated"].write_bytes(good[: len(good) // 2])
    bad["empty"].write_bytes(b"")
    bad["fake"].write_text("this is a text file, not a JPEG\n")
    _png_header_only(bad["bomb"], 20000, 20000)  # 400 M pixels: over twice PIL's limit
    return bad


def test_bad_files_are_skipped_counted_and_named_before_training(tmp_path, tmp_run):
    root = write_folder(tmp_path / "pets")
    bad = write_bad_files(root)
    run_dir, at = tmp_run
    proc = run_dlx(
        ["train", "data=imagefolder", f"data.root={root}", "data.image_size=16", "epochs=1", at]
        + FAST,
        tmp_path,
        check=0,
    )
    out = proc.stdout + proc.stderr
    assert "skipped 4 of 24 files" in out and "data.bad_files=skip" in out
    assert str(bad["bomb"]) in out and "decompression bomb" in out
    assert str(bad["empty"]) in out and "and 1 more" in out
    assert "skipped 4 of 24" in (run_dir / "train.log").read_text()
    meta = json.loads(caches(root)[0].with_suffix(".json").read_text())
    assert {Path(p).name for p, _ in meta["bad"]} == {p.name for p in bad.values()}
    assert meta["shape"][0] == 20


@pytest.mark.parametrize("cache", ["auto", "none"])
def test_bad_files_refused_name_the_file_and_exit_2(tmp_path, cache):
    root = write_folder(tmp_path / "pets")
    (root / "dogs" / "notes.jpg").write_text("not a JPEG")
    proc = run_dlx(
        [
            "train",
            "data=imagefolder",
            f"data.root={root}",
            "data.image_size=16",
            "data.bad_files=refuse",
            f"data.cache={cache}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert str(root / "dogs" / "notes.jpg") in out and "data.bad_files" in out
    assert "Traceback" not in out


def test_a_folder_with_one_class_is_refused(tmp_path):
    root = write_folder(tmp_path / "one", classes=("cats",))
    proc = run_dlx(
        ["train", "data=imagefolder", f"data.root={root}", f"hydra.run.dir={tmp_path / 'r'}"],
        tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "one class folder (cats)" in out and "data.root" in out
    assert "Traceback" not in out


def test_bad_cache_settings_are_refused_with_the_allowed_values(tmp_path):
    from dlx.errors import UserError

    root = write_folder(tmp_path / "pets")
    for key, value in (("cache", "disk"), ("bad_files", "ignore")):
        with pytest.raises(UserError, match="Allowed") as err:
            build(root, f"data.{key}={value}")
        assert err.value.key == f"data.{key}"


# ---------------------------------------------------------------------------- uncached path


def test_cache_none_reads_the_files_through_a_dataloader(tmp_path, tmp_run):
    root = write_folder(tmp_path / "pets")
    run_dir, at = tmp_run
    run_dlx(
        ["train", "data=imagefolder", f"data.root={root}", "data.image_size=16", "data.cache=none"]
        + ["aug=flip", "epochs=1", at, *FAST],
        tmp_path,
        check=0,
    )
    log = (run_dir / "train.log").read_text()
    assert "read from disk every epoch (data.cache=none" in log
    assert "per sample in the DataLoader" in log
    assert not caches(root)


def test_a_read_only_folder_caches_under_the_user_cache(tmp_path, monkeypatch, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    root = write_folder(tmp_path / "pets")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    os.chmod(root, 0o555)
    try:
        build(root)
    finally:
        os.chmod(root, 0o755)
    assert "cache built now" in capsys.readouterr().out
    assert not caches(root) and list((tmp_path / "xdg" / "dlx").glob("imagefolder-pets-*.u8"))
