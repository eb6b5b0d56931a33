"""`dlx export`: TorchScript and ONNX files that run without dlx, checked against PyTorch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import FAST, run_dlx
from test_predict import new_images, write_folder

README = Path(__file__).resolve().parents[1] / "README.md"
HAS_ONNX = all(
    __import__("importlib").util.find_spec(p) for p in ("onnx", "onnxscript", "onnxruntime")
)
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="the export extra (onnx) is not installed")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    import dlx

    base = tmp_path_factory.mktemp("export")
    root = write_folder(base / "images")
    run_dir = base / "run"
    dlx.train(
        [
            "data=imagefolder",
            f"data.root={root}",
            "data.image_size=16",
            "model=cnn",
            "epochs=2",
            "opt=adam",
            "opt.lr=0.01",
            *FAST,
            f"hydra.run.dir={run_dir}",
        ]
    )
    return run_dir


def export(*args: str):
    from dlx.cli.app import app

    result = CliRunner().invoke(app, ["export", *map(str, args)])
    return result.exit_code, result.output


@pytest.mark.filterwarnings("ignore:.*torch.jit.*:FutureWarning")
def test_torchscript_export_matches_and_carries_the_metadata(image_run):
    code, text = export(image_run, "--format", "torchscript")
    assert code == 0, text
    path = image_run / "export" / "best.torchscript.pt"
    meta = json.loads((image_run / "export" / "best.torchscript.json").read_text())
    assert meta["classes"] == ["blue", "green", "red"] and meta["input_shape"] == [3, 16, 16]
    assert (
        meta["preprocess"]["mean"]
        == json.loads((image_run / "model.json").read_text())["preprocess"]["mean"]
    )
    assert meta["parity"]["max_abs_diff"] <= 1e-5 and "test split" in meta["parity"]["inputs"]
    assert "largest difference" in text and str(path.name) in text
    loaded = torch.jit.load(str(path))
    assert loaded(torch.zeros(3, 3, 16, 16)).shape == (3, 3)


def test_an_export_that_does_not_match_is_refused(image_run, tmp_path, monkeypatch):
    from dlx.infer import export as ex

    monkeypatch.setattr(ex, "run_torchscript", lambda path, x: torch.zeros(len(x), 3) + 5.0)
    out = tmp_path / "m.torchscript.pt"
    code, text = export(image_run, "--format", "torchscript", "--out", out)
    assert code == 1, text
    assert "does not match" in text and "Nothing was kept" in text
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_bad_format_and_missing_onnx_packages_exit_2(image_run, monkeypatch):
    code, text = export(image_run, "--format", "tflite")
    assert code == 2 and "torchscript | onnx" in text
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a)
    )
    code, text = export(image_run, "--format", "onnx")
    assert code == 2 and "onnxruntime" in text and "pip install" in text


def readme_onnx_example() -> str:
    text = README.read_text()
    block = text.split("<!-- onnx-example")[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@needs_onnx
def test_onnx_export_runs_with_onnxruntime_alone_as_the_readme_shows(image_run, tmp_path):
    """The README's ten lines (onnxruntime, numpy, PIL; no dlx, no torch) give dlx predict's
    top-1 on new files of mixed sizes and modes."""
    code, text = export(image_run, "--format", "onnx")
    assert code == 0, text
    meta = json.loads((image_run / "export" / "best.json").read_text())
    assert meta["parity"]["max_abs_diff"] <= 1e-4
    paths = new_images(tmp_path / "new")
    out = tmp_path / "p.json"
    run_dlx(
        ["predict", str(image_run), str(tmp_path / "new"), "--out", str(out)], cwd=tmp_path, check=0
    )
    want = {Path(r["file"]).name: r["class"] for r in json.loads(out.read_text())}
    script = tmp_path / "classify.py"
    no_torch = "import sys\nsys.modules['torch'] = None  # no torch, no dlx\n"
    script.write_text(no_torch + readme_onnx_example())
    for p in paths:
        proc = subprocess.run(
            [sys.executable, str(script), str(p)],
            cwd=image_run,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == want[p.name], p.name
