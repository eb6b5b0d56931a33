"""`dlx eval`: what the model gets wrong (per class, confused pairs, top losses, Grad-CAM),
as PNGs in the run folder too; `--data-root` on another folder with the same classes."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import FAST, all_tags
from test_predict import CLASSES, write_folder

HAS_GRADCAM = __import__("importlib").util.find_spec("pytorch_grad_cam") is not None


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    import dlx

    base = tmp_path_factory.mktemp("mistakes")
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
            "data.test_fraction=0.3",
            *FAST,
            f"hydra.run.dir={run_dir}",
        ]
    )
    return run_dir


def dlx_cli(*args):
    from dlx.cli.app import app

    result = CliRunner().invoke(app, [*map(str, args)])
    return result.exit_code, result.output


def test_eval_writes_what_the_model_gets_wrong(image_run):
    code, text = dlx_cli("eval", image_run)
    assert code == 0, text
    result = json.loads((image_run / "eval_best_test.json").read_text())
    n = sum(r["support"] for r in result["per_class"])
    assert [r["class"] for r in result["per_class"]] == list(CLASSES)
    assert len(result["top_losses"]) == min(16, n)
    assert result["gradcam_layer"] == "features.4"  # the cnn's last conv layer
    matrix = torch.tensor(result["confusion_matrix"])
    off = matrix.sum() - matrix.trace()
    assert sum(p["count"] for p in result["confused_pairs"]) == off
    for kind in ("confusion", "top_losses", "gradcam"):
        png = image_run / f"eval_best_test_{kind}.png"
        with Image.open(png) as img:
            assert img.format == "PNG" and img.size[0] > 200
    tags = all_tags(image_run)["images"]
    assert {"confusion_matrix/test", "top_losses/test", "gradcam/test"} <= set(tags)
    assert "per class" in text


@pytest.mark.skipif(not HAS_GRADCAM, reason="grad-cam (pytorch-grad-cam) is not installed")
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (3, 32, 32)])
def test_gradcam_equals_the_grad_cam_package(shape):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from dlx.models.cnn import LeNet
    from dlx.models.resnet import ResNet
    from dlx.tracking.analysis import gradcam, last_conv

    torch.manual_seed(0)
    models = [LeNet(in_shape=shape, out_dim=5)]
    if shape[-1] >= 32:
        models.append(ResNet(in_shape=shape, out_dim=5, arch="resnet18"))
    for model in models:
        model.eval()
        x = torch.randn(6, *shape)
        target = model(x).argmax(1)
        mine = gradcam(model, last_conv(model), x, target)
        with GradCAM(model=model, target_layers=[last_conv(model)]) as cam:
            ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in target])
        assert torch.allclose(mine, torch.from_numpy(ref), atol=1e-5), type(model).__name__


def corner_images(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 noise; the class is the direction of the stripes in the top-left 6x6 corner."""
    x = torch.rand(n, 1, 16, 16, generator=gen) * 0.6
    y = torch.randint(0, 2, (n,), generator=gen)
    stripes = torch.zeros(2, 6, 6)
    stripes[0, ::2, :] = 1.0  # horizontal
    stripes[1, :, ::2] = 1.0  # vertical
    x[:, 0, :6, :6] = stripes[y] * 0.8 + 0.1
    return x, y


def test_gradcam_heat_is_highest_over_the_informative_corner():
    """A conv net with a global-average-pooled head (ResNet's kind) trained where one corner
    decides the class: for every image the heat is highest over that corner. (Measured: with
    LeNet's flatten + dense head, Grad-CAM marks the corner for one class only, the other
    being learned as the absence of the first.)"""
    from torch import nn

    from dlx.tracking.analysis import gradcam, last_conv

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 2),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        x, y = corner_images(64, gen)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = corner_images(128, gen)
    model.eval()
    pred = model(x).argmax(1)
    assert (pred == y).float().mean() > 0.95
    cams = gradcam(model, last_conv(model), x, pred)
    corner = cams[:, :8, :8].mean(dim=(1, 2))
    rest = torch.stack(
        [cams[:, :8, 8:].mean((1, 2)), cams[:, 8:, :8].mean((1, 2)), cams[:, 8:, 8:].mean((1, 2))]
    )
    for c in (0, 1):
        assert (corner > rest.max(0).values)[y == c].float().mean() >= 0.95
    peak = cams.flatten(1).argmax(1)
    assert ((peak // 16 < 8) & (peak % 16 < 8)).float().mean() >= 0.95  # the hottest pixel too


def test_eval_on_another_folder_with_the_same_classes(image_run, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(image_run.parent / "images", moved, ignore=shutil.ignore_patterns(".dlx-*"))
    code, text = dlx_cli("eval", image_run, "--data-root", moved, "--split", "test")
    assert code == 0, text
    own = json.loads((image_run / "metrics.json").read_text())["test"]
    result = json.loads((image_run / "eval_best_moved_test.json").read_text())
    assert result["data_root"] == str(moved)
    assert abs(result["metrics"]["loss"] - own["loss"]) < 1e-6
    code, text = dlx_cli("eval", image_run, "--data-root", moved)
    assert code == 0, text
    result = json.loads((image_run / "eval_best_moved_all.json").read_text())
    assert sum(r["support"] for r in result["per_class"]) == 3 * 12
    assert (image_run / "eval_best_moved_all_gradcam.png").is_file()


def test_a_folder_with_other_classes_is_refused_naming_the_difference(image_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(image_run.parent / "images", other, ignore=shutil.ignore_patterns(".dlx-*"))
    (other / "red").rename(other / "purple")
    code, text = dlx_cli("eval", image_run, "--data-root", other)
    assert code == 2
    assert "missing red" in text and "not in the run: purple" in text


def test_data_root_is_for_image_folder_runs(tmp_path):
    import dlx

    run_dir = tmp_path / "run"
    dlx.train(["data=function", "model=mlp", "epochs=1", *FAST, f"hydra.run.dir={run_dir}"])
    assert (run_dir / "fit.png").is_file()  # the fit figure as a PNG, not only in TensorBoard
    code, text = dlx_cli("eval", run_dir)
    assert code == 0, text
    assert (run_dir / "eval_best_test_fit.png").is_file()
    code, text = dlx_cli("eval", run_dir, "--data-root", tmp_path)
    assert code == 2 and "data=imagefolder" in text
