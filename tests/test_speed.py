"""The speed knobs on a machine without a GPU: `precision=bf16` and `channels_last=true` run on
the CPU, a knob that changes nothing or costs more than it saves gets a note, one that cannot
work is refused with its reason (exit 2, no run folder), and the GPU benchmark says it needs
CUDA instead of failing somewhere inside. (fp16 on the CPU: tests/test_bad_input.py.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import FAST, read_metrics, run_dlx

TINY = [*FAST, "device=cpu", "num_threads=1", "data.limit=128", "epochs=1"]
REPO = Path(__file__).resolve().parent.parent


def test_bf16_with_channels_last_trains_on_the_cpu_and_says_what_bf16_does_there(tmp_run, capsys):
    import dlx
    from dlx.training import checkpoint

    run_dir, where = tmp_run
    m = dlx.train([*TINY, "model=cnn", "precision=bf16", "channels_last=true", where])
    assert m["status"] == "completed" and 0.0 <= m["test"]["acc"] <= 1.0
    assert read_metrics(run_dir)["status"] == "completed"
    assert "precision=bf16 on the CPU" in capsys.readouterr().out
    weights = checkpoint.load(run_dir / "checkpoints" / "last.pt")["model"]
    conv = next(w for w in weights.values() if w.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)  # the model was kept NHWC
    assert conv.dtype == torch.float32  # autocast: the weights themselves stay fp32


def test_channels_last_on_data_that_is_not_images_is_a_note_not_an_error(tmp_run, capsys):
    import dlx

    _, where = tmp_run
    m = dlx.train([*TINY, "data=function", "model=shallow", "channels_last=true", where])
    assert m["status"] == "completed"
    assert "channels_last=true changes nothing here" in capsys.readouterr().out


def test_compile_without_a_compiler_is_refused_before_the_run_with_the_reason(tmp_path):
    run_dir = tmp_path / "run"
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    proc = run_dlx(
        ["train", *TINY, "compile=true", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env={"PATH": str(empty_path), "CXX": "no-such-c++"},
        check=2,
    )
    assert "compile=true" in proc.stderr and "C++ compiler" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()


def test_compile_where_it_works_is_announced_as_slow_to_start():
    from dlx.training.device import speed_notes

    cfg = OmegaConf.create({"precision": "fp32", "channels_last": False, "compile": True})
    notes = speed_notes(cfg, torch.device("cpu"), is_image=True)
    assert any("compile=true" in n and "first steps" in n for n in notes)
    assert speed_notes(OmegaConf.merge(cfg, {"compile": False}), torch.device("cpu"), True) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_gpu_benchmark_says_it_needs_cuda_and_how_to_smoke_test_it(tmp_path):
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "benchmarks" / "gpu.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "needs a CUDA GPU" in proc.stderr and "--device cpu --quick" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_digits_load_without_importing_scikit_learn_and_match_its_loader():
    """Importing scikit-learn costs about a second of every digits run's start."""
    import subprocess

    code = (
        "import sys\n"
        "from dlx.data.digits import read_digits\n"
        "images, labels = read_digits()\n"
        "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'\n"
        "from sklearn.datasets import load_digits\n"
        "d = load_digits()\n"
        "assert (images == d.images).all() and (labels == d.target).all()\n"
        "assert images.shape == (1797, 8, 8)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_a_default_digits_run_never_imports_torchvision(tmp_path):
    """torchvision costs a short run's start-up 0.1 s (and over a second more in a process where
    nothing has imported torch._dynamo yet: the first optimizer step does)."""
    import subprocess

    code = (
        "import sys\n"
        "import dlx\n"
        f"m = dlx.train(['log.graph=false', 'epochs=1', 'data.limit=128', "
        f"'hydra.run.dir={tmp_path / 'run'}'])\n"
        "assert m['status'] == 'completed'\n"
        "assert 'torchvision' not in sys.modules, 'torchvision was imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize(
    "shape,nrow", [((5, 1, 8, 8), 3), ((8, 3, 6, 10), 8), ((2, 3, 4, 4), 8), ((1, 1, 5, 5), 8)]
)
def test_image_grid_draws_what_torchvision_make_grid_draws(shape, nrow):
    from torchvision.utils import make_grid

    from dlx.tracking.visuals import image_grid

    x = torch.rand(shape)
    expected = make_grid(x, nrow=nrow, padding=2, pad_value=1.0)
    assert torch.equal(image_grid(x, nrow=nrow), expected)
    assert torch.equal(image_grid(list(x), nrow=nrow), expected)
