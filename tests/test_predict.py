"""`dlx predict`, model.json and `dlx.load_run`: using a trained run on new inputs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import FAST, run_dlx

CLASSES = ("blue", "green", "red")


def write_folder(root: Path, per_class: int = 12, size=(18, 22)) -> Path:
    """RGB PNGs, one colour per class (red, green, blue channel lit), sizes vary."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in CLASSES:
        channel = {"red": 0, "green": 1, "blue": 2}[name]
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 80, (size[0] + i % 5, size[1] + i % 3, 3)).astype(np.uint8)
            img[..., channel] += 160
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def new_images(folder: Path) -> list[Path]:
    """Ten new files: PNG and JPEG, mixed sizes, one grayscale, one RGBA."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(10):
        h, w = 12 + 3 * i, 30 - i
        img = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
        img[..., i % 3] += 160
        pil = Image.fromarray(img)
        if i == 3:
            pil = pil.convert("L")
        if i == 4:
            pil = pil.convert("RGBA")
        path = folder / f"new{i}.{'jpg' if i % 2 else 'png'}"
        if i == 4:
            path = folder / "new4.png"
        pil.save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    import dlx

    base = tmp_path_factory.mktemp("predict")
    root = write_folder(base / "images")
    run_dir = base / "run"
    dlx.train(
        [
            "data=imagefolder",
            f"data.root={root}",
            "data.image_size=16",
            "model=cnn",
            "epochs=3",
            "opt=adam",
            "opt.lr=0.01",
            *FAST,
            f"hydra.run.dir={run_dir}",
        ]
    )
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    import dlx

    run_dir = tmp_path_factory.mktemp("predict_digits") / "run"
    dlx.train(["epochs=1", "data.limit=300", *FAST, f"hydra.run.dir={run_dir}"])
    return run_dir


@pytest.fixture(scope="module")
def function_run(tmp_path_factory):
    import dlx

    run_dir = tmp_path_factory.mktemp("predict_function") / "run"
    dlx.train(["data=function", "model=mlp", "epochs=1", *FAST, f"hydra.run.dir={run_dir}"])
    return run_dir


def predict(*args: str):
    from dlx.cli.app import app

    result = CliRunner().invoke(app, ["predict", *map(str, args)])
    return result.exit_code, result.output


def test_a_run_describes_itself_in_model_json_and_its_checkpoints(image_run):
    card = json.loads((image_run / "model.json").read_text())
    assert card["task"] == "classification" and card["classes"] == list(CLASSES)
    assert card["input_shape"] == [3, 16, 16] and card["data"] == "imagefolder"
    pre = card["preprocess"]
    assert pre["decode_size"] == 16 and pre["channels"] == 3 and len(pre["mean"]) == 3
    assert card["model"]["_target_"] == "dlx.models.cnn.LeNet"
    for name in ("best.pt", "last.pt"):
        saved = torch.load(image_run / "checkpoints" / name, weights_only=True)
        assert saved["card"] == card


def test_predict_new_files_top_k_and_csv(image_run, tmp_path):
    """The issue's acceptance: 10 new files (mixed sizes, one grey, one RGBA), a folder."""
    paths = new_images(tmp_path / "new")
    out = tmp_path / "p.csv"
    proc = run_dlx(
        ["predict", str(image_run), "new/", "--top-k", "3", "--out", str(out)],
        cwd=tmp_path,
        check=0,
    )
    rows = list(csv.DictReader(out.open()))
    assert sorted(Path(r["file"]).name for r in rows) == sorted(p.name for p in paths)
    for r in rows:
        assert r["class"] in CLASSES and r["class"] == r["class_1"]
        assert abs(sum(float(r[f"prob_{i}"]) for i in (1, 2, 3)) - 1) < 1e-5
        assert Path(r["file"]).name in proc.stdout
    # the colour decides the class: the lit channel of each new file (grey one aside)
    right = sum(
        r["class"] == ("red", "green", "blue")[int(Path(r["file"]).stem[3:]) % 3]
        for r in rows
        if Path(r["file"]).stem != "new3"
    )
    assert right >= 7


def _test_files(run_dir: Path) -> list[str]:
    """The run's own test split, as files: the split its config makes of the folder."""
    from dlx.config.trust import load_run_config
    from dlx.data import build_data
    from dlx.data.imagefolder import scan

    cfg = load_run_config(run_dir)
    data = build_data(cfg.data, cfg.seed)
    _, files = scan(Path(cfg.data.root))
    return [str(Path(cfg.data.root) / files[k][0]) for k in data.test.rows.tolist()], data


def test_predict_on_the_runs_own_test_images_equals_eval(image_run):
    """Same preprocessing code as training: the files give the test split's exact outputs."""
    import dlx
    from dlx.data.loader import make_loader
    from dlx.infer.model import open_model
    from dlx.runs.evaluate import predict_split

    files, data = _test_files(image_run)
    opened = open_model(image_run, "best", "cpu")
    loader = make_loader(data.test, 256, False, torch.device("cpu"))
    outputs, _ = predict_split(opened.model, loader, torch.device("cpu"))
    rows = dlx.load_run(image_run).predict(files, top_k=3)
    want = torch.softmax(outputs, 1)
    assert [r["class"] for r in rows] == [CLASSES[i] for i in want.argmax(1).tolist()]
    got = torch.tensor([r["prob"] for r in rows])
    assert torch.equal(got, want.max(1).values)


def test_python_api_equals_the_cli(image_run, tmp_path):
    import dlx

    paths = new_images(tmp_path / "new")
    out = tmp_path / "p.json"
    code, text = predict(image_run, tmp_path / "new", "--top-k", "2", "--out", out)
    assert code == 0, text
    cli = json.loads(out.read_text())
    run = dlx.load_run(image_run)
    api = run.predict([str(p) for p in sorted(paths)], top_k=2)
    assert sorted(cli, key=lambda r: r["file"]) == sorted(api, key=lambda r: r["file"])
    assert run.metrics["status"] == "completed" and "history" not in run.metrics
    assert [h["epoch"] for h in run.history] == [1, 2, 3]
    assert run.config["model"]["_target_"] == "dlx.models.cnn.LeNet"
    assert isinstance(run.model(), torch.nn.Module)


def test_dlx_runs_has_one_row_a_run(image_run, digits_run):
    import dlx

    root = image_run.parent.parent
    rows = dlx.runs(root)
    paths = list(rows["path"]) if hasattr(rows, "columns") else [r["path"] for r in rows]
    assert str(image_run) in paths and str(digits_run) in paths
    assert len(paths) == len(set(paths))
    picked = dlx.runs(root, filter="data=imagefolder")
    paths = list(picked["path"]) if hasattr(picked, "columns") else [r["path"] for r in picked]
    assert str(image_run) in paths and str(digits_run) not in paths


def test_digits_take_8x8_images_npy_and_csv_rows(digits_run, tmp_path):
    from PIL import Image

    from dlx.data.digits import read_digits

    images, labels = read_digits()
    np.save(tmp_path / "five.npy", images[:5])
    np.savetxt(tmp_path / "three.csv", images[5:8].reshape(3, -1), delimiter=",")
    Image.fromarray((images[0] * 255 / 16).astype(np.uint8)).save(tmp_path / "zero.png")
    out = tmp_path / "p.json"
    code, text = predict(
        digits_run,
        tmp_path / "five.npy",
        tmp_path / "three.csv",
        tmp_path / "zero.png",
        "--out",
        out,
    )
    assert code == 0, text
    rows = json.loads(out.read_text())
    assert [Path(r["file"]).name for r in rows] == [
        *(f"five.npy:{i}" for i in range(1, 6)),
        *(f"three.csv:{i}" for i in (1, 2, 3)),
        "zero.png",
    ]
    # the rows are the training values themselves: the model's own outputs on them
    from dlx.infer.model import open_model

    opened = open_model(digits_run, "best", "cpu")
    pre = opened.pre
    x = torch.tensor(images[:8], dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - pre["mean"][0]) / pre["std"][0]
    want = torch.softmax(opened.model(x), 1).max(1).values
    assert torch.allclose(torch.tensor([r["prob"] for r in rows[:8]]), want, atol=1e-6)


def test_function_run_takes_numbers_and_a_one_column_csv(function_run, tmp_path):
    (tmp_path / "x.csv").write_text("0.1\n0.5\n-0.25\n")
    out = tmp_path / "p.csv"
    # `--` before a negative number (else it reads as an option)
    code, text = predict(function_run, "--out", out, "--", "0.0", "-1", tmp_path / "x.csv")
    assert code == 0, text
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows][:2] == ["0.0", "-1"] and len(rows) == 5
    assert all(np.isfinite(float(r["prediction"])) for r in rows)


def test_a_regression_run_given_images_is_refused(function_run, image_run):
    img = next((image_run.parent / "images" / "red").glob("*.png"))
    code, text = predict(function_run, img)
    assert code == 2, text
    assert "takes numbers" in text and img.name in text and "None of the 1 input" in text


def test_bad_inputs_are_named_and_skipped(image_run, tmp_path):
    good = next((image_run.parent / "images" / "red").glob("*.png"))
    (tmp_path / "notes.png").write_text("not an image")
    code, text = predict(image_run, good, tmp_path / "notes.png", tmp_path / "gone.png")
    assert code == 0, text
    assert "skipped 2 of 3 input(s)" in text
    assert "gone.png (no such file or folder)" in text and "notes.png (not an image" in text
    code, text = predict(image_run, tmp_path / "notes.png", tmp_path / "gone.png")
    assert code == 2 and "None of the 2 input(s) could be used" in text


def test_wrong_channels_in_an_array_are_named(digits_run, tmp_path):
    np.save(tmp_path / "rgb.npy", np.zeros((2, 3, 8, 8), dtype=np.float32))
    code, text = predict(digits_run, tmp_path / "rgb.npy")
    assert code == 2
    assert "rgb.npy" in text and "1x8x8 = 64 values per row" in text


def test_a_run_without_a_checkpoint_is_refused(digits_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    shutil.rmtree(copy / "checkpoints")
    code, text = predict(copy, "x.png")
    assert code == 2 and "No checkpoint at" in text and "saved no weights" in text
    code, text = predict(digits_run, "x.png", "--out", tmp_path / "p.txt")
    assert code == 2 and "--out" in text and ".csv or .json" in text


def test_an_old_run_without_model_json_derives_it(digits_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    (copy / "model.json").unlink()
    for name in ("best.pt", "last.pt"):
        path = copy / "checkpoints" / name
        saved = torch.load(path, weights_only=True)
        saved.pop("card")
        torch.save(saved, path)
    np.save(tmp_path / "one.npy", np.zeros((8, 8)))
    from dlx.infer.model import open_model

    assert open_model(copy, "best", "cpu").card == open_model(digits_run, "best", "cpu").card
    code, text = predict(copy, tmp_path / "one.npy")
    assert code == 0, text


def test_many_files_decode_in_parallel_with_the_same_results(image_run, tmp_path, monkeypatch):
    """Over PARALLEL_ABOVE files the decode cache's process pool reads them: same rows."""
    from PIL import Image

    import dlx
    from dlx.data import inputs

    rng = np.random.default_rng(2)
    folder = tmp_path / "many"
    folder.mkdir()
    n = inputs.PARALLEL_ABOVE + 44
    for i in range(n):
        img = rng.integers(0, 255, (16, 16, 3)).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i:04d}.png", compress_level=1)
    run = dlx.load_run(image_run)
    pooled = run.predict([folder])
    monkeypatch.setattr(inputs, "PARALLEL_ABOVE", 10**9)
    assert run.predict([folder]) == pooled and len(pooled) == n
