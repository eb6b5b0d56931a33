"""The lecture's slides as switches: convolution and pooling knobs (and the shapes they make),
2-D toy data with its decision boundary, binary cross-entropy, every conv layer's feature maps.
Tiny runs: digits with `data.limit`, toy sets with a few hundred points."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dlx
from conftest import FAST, all_tags, read_metrics, run_dlx
from dlx.config.compose import compose
from dlx.errors import UserError
from dlx.training.loop import build

TINY = ["data.limit=64", "batch_size=64", *FAST]


def built(*overrides: str):
    return build(compose(list(overrides)))


# ------------------------------------------------------------ kernel size, stride, padding


def test_stride_pool_and_padding_change_the_shapes_the_layers_make():
    from dlx.models.shapes import output_shapes

    lenet = ("model.channels=[6,16]", "model.batchnorm=false")  # the lecture's LeNet-5

    def shapes(*args):
        model = built("data.limit=8", *lenet, *args).model
        return output_shapes(model, torch.zeros(1, 1, 8, 8))

    base = shapes()
    assert base["features.0"] == (6, 8, 8) and base["features.2"] == (6, 4, 4)  # same, max 2
    strided = shapes("model.stride=2", "model.pool=avg")
    assert strided["features.0"] == (6, 4, 4), "stride 2 halves the 8x8 digit"
    assert strided["features.2"] == (6, 2, 2)
    model = built("data.limit=8", *lenet, "model.stride=2", "model.pool=avg").model
    assert isinstance(model.features[2], nn.AvgPool2d)
    valid = shapes("model.kernel_size=3", "model.padding=0")
    assert valid["features.0"] == (6, 6, 6), "a 3x3 filter without padding loses a pixel a side"
    none = shapes("model.pool=none", "model.kernel_size=3")
    pools = (nn.MaxPool2d, nn.AvgPool2d)
    assert none["features.2"] == (16, 8, 8)
    assert not any(isinstance(m, pools) for m in built("model.pool=none").model.modules())
    overlap = shapes("model.pool_size=3", "model.pool_stride=1")
    assert overlap["features.2"] == (6, 6, 6)


def test_the_model_table_shows_each_layers_output_shape(tmp_run):
    run_dir, where = tmp_run
    proc = run_dlx(
        ["train", "model.stride=2", "model.pool=avg", "epochs=1", *TINY, where],  # the default
        cwd=run_dir.parent,
        check=0,
    )
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    assert lines["input"][-1] == "1x8x8"
    assert lines["features.0"][1:4] == ["Conv2d", "16x4x4", "400"]  # 16 5x5 filters, no bias
    assert lines["features.1"][1:3] == ["BatchNorm2d", "16x4x4"]
    assert lines["features.3"][1:3] == ["AvgPool2d", "16x2x2"]
    assert lines["classifier.7"][1:3] == ["Linear", "10"]  # flatten, (linear, bn, relu) x 2
    assert read_metrics(run_dir)["status"] == "completed"


def test_a_combination_that_shrinks_the_image_to_nothing_exits_2_naming_the_layer(tmp_path):
    proc = run_dlx(["train", "model.padding=0", *TINY], cwd=tmp_path, check=2)
    assert "features.4" in proc.stderr and "Conv2d 5x5" in proc.stderr, proc.stderr
    assert "16x2x2" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists(), "refused before a run folder was made"
    with pytest.raises(UserError, match="features.0") as err:
        built("model=alexnet", "model.kernel_size=40", "model.padding=0", "data.limit=8")
    assert err.value.key == "model.kernel_size"
    with pytest.raises(UserError, match=r"features.5 \(MaxPool2d 9x9") as err:
        built("model=alexnet", "model.pool_size=9", "model.pool_stride=9", "data.limit=8")
    assert err.value.key == "model.pool_size"
    for bad, key in [
        ("model.padding=half", "model.padding"),
        ("model.pool=median", "model.pool"),
        ("model.stride=0", "model.stride"),
        ("model.kernel_size=0", "model.kernel_size"),
    ]:
        with pytest.raises(UserError, match=key.replace(".", r"\.")):
            built(bad)


def test_alexnet_stem_knobs_reach_its_first_conv_and_the_pooling():
    model = built(
        "model=alexnet", "model.kernel_size=3", "model.stride=2", "model.pool=avg", "data.limit=8"
    ).model
    stem = model.features[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (2, 2) and stem.padding == (1, 1)
    pools = [m for m in model.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert len(pools) == 3 and all(isinstance(p, nn.AvgPool2d) for p in pools)


# ------------------------------------------------------------------- space folding (2-D data)

QUICK = ["num_threads=1", "log.graph=false", "log.grad_norm_every=0"]


@pytest.mark.parametrize("name", ["moons", "circles", "spiral"])
def test_two_d_toy_sets_are_made_offline_with_noise_and_size(name):
    b = built(f"data={name}", "data.n_samples=200", "data.noise=0.05")
    x, y = b.data.train.tensors
    assert b.data.in_shape == (2,) and b.data.num_classes == 2 and x.shape[1] == 2
    total = sum(len(s) for s in (b.data.train, b.data.val, b.data.test))
    assert total == 200 and set(y.tolist()) == {0, 1}
    assert type(b.model).__name__ == "MLP", "points pick model=mlp (a conv net needs images)"
    again = built(f"data={name}", "data.n_samples=200", "data.noise=0.05").data.train.tensors[0]
    assert torch.equal(x, again), "the same seed makes the same points"
    clean = built(f"data={name}", "data.n_samples=200", "data.noise=0").data.train.tensors[0]
    assert not torch.equal(x, clean), "data.noise jitters the points"


def test_spiral_arms_interleave_by_formula():
    from dlx.data.toy2d import spiral

    x, y = spiral(400, 0.0, 1.5, torch.Generator().manual_seed(0))
    radius = x.norm(dim=1)
    assert radius.max() <= 1.0 + 1e-6 and radius.min() >= 0.05 - 1e-6
    # the two arms are the same curve turned by pi: point for point, x0 = -x1
    assert torch.allclose(x[y == 0], -x[y == 1], atol=1e-5)


def test_deeper_mlp_folds_the_spiral_and_both_draw_the_decision_boundary(tmp_path):
    from PIL import Image

    mean = {}
    for depth in (1, 4):
        accs = []
        for seed in (0, 1, 2):
            run = tmp_path / f"d{depth}s{seed}"
            m = dlx.train(
                [
                    "data=spiral",
                    "model=mlp",
                    f"model.depth={depth}",
                    "epochs=30",
                    f"seed={seed}",
                    "data.n_samples=240",
                    "batch_size=32",
                    "debug.checkpoints=false",
                    *QUICK,
                    f"hydra.run.dir={run}",
                ]
            )
            accs.append(m["val"]["acc"])
            if seed == 0:
                png = run / "decision_boundary.png"
                assert png.is_file() and not png.is_symlink()
                with Image.open(png) as img:
                    assert img.format == "PNG" and min(img.size) >= 300
                tags = all_tags(run)["images"]
                assert "decision_boundary" in tags
        mean[depth] = sum(accs) / len(accs)
    assert mean[4] > mean[1] + 0.15, mean
    assert mean[4] > 0.85, mean


def test_decision_boundary_colours_the_plane_by_the_predicted_class():
    from dlx.tracking.boundary import predicted_grid

    class RightHalf(nn.Module):  # class 1 where x1 > 0
        def forward(self, x):
            return torch.stack([-x[:, 0], x[:, 0]], dim=1)

    pts = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    xs, ys, classes = predicted_grid(RightHalf(), pts, "cpu", steps=50)
    assert classes.shape == (50, 50)
    assert (classes[:, xs > 0] == 1).all() and (classes[:, xs < 0] == 0).all()


def test_presets_depth_vs_width_pair_has_one_budget_and_space_folding_is_deep():
    deep = built("experiment=depth_vs_width")
    wide = built("experiment=depth_vs_width", "model.depth=1")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert deep.cfg.model.width == 32 and wide.cfg.model.width == 666
    assert abs(count(deep.model) - count(wide.model)) < 50, "the same parameter budget"
    assert deep.data.name == "spiral"
    folding = built("experiment=space_folding")
    assert folding.data.name == "spiral" and folding.cfg.model.depth == 4
    from dlx.config.compose import compose as compose_hydra

    cfg = compose_hydra(["experiment=depth_vs_width"], with_hydra=True)
    assert str(cfg.hydra.sweeper.params["model.depth"]) == "1,4", "sweep-ready: the pair"


# ------------------------------------------------------------------ binary cross-entropy


def test_bce_trains_one_output_unit_and_dlx_eval_works_on_it(tmp_run):
    run_dir, where = tmp_run
    b = built("data=moons", "loss=bce", "data.n_samples=200")
    last = [m for m in b.model.modules() if isinstance(m, nn.Linear)][-1]
    assert last.out_features == 1, "one output unit"
    x, y = b.data.train.tensors
    out = b.model(x[:8])
    z = out[:, 1]
    assert torch.equal(out[:, 0], torch.zeros(8)), "shown as the logits [0, z]"
    expected = nn.functional.binary_cross_entropy_with_logits(z, y[:8].float())
    assert torch.allclose(b.loss_fn(out, y[:8]), expected)
    assert torch.equal(out.argmax(1), (torch.sigmoid(z) > 0.5).long()), "threshold 0.5"
    proc = run_dlx(
        ["train", "data=moons", "loss=bce", "epochs=8", "data.n_samples=300", *QUICK, where],
        cwd=run_dir.parent,
        check=0,
    )
    assert "net.5" in proc.stdout and read_metrics(run_dir)["test"]["acc"] > 0.75
    ckpt = torch.load(run_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt["model"]["net.5.weight"].shape == (1, 128)
    ev = run_dlx(["eval", str(run_dir)], cwd=run_dir.parent, check=0)
    assert "acc" in ev.stdout and "Traceback" not in ev.stderr
    assert (run_dir / "eval.json").is_file()
    (run_dir.parent / "points.csv").write_text("1.0,-0.5\n-1.0,0.5\n")
    pred = run_dlx(["predict", str(run_dir), "points.csv"], cwd=run_dir.parent, check=0)
    rows = [line.split() for line in pred.stdout.splitlines() if "points.csv:" in line]
    assert [r[3] for r in rows] == ["1", "0"], pred.stdout  # below / above the moons


def test_bce_on_more_than_two_classes_exits_2_naming_loss(tmp_path):
    proc = run_dlx(["train", "loss=bce", *TINY], cwd=tmp_path, check=2)
    assert "loss=bce" in proc.stderr and "10 classes" in proc.stderr, proc.stderr


# ------------------------------------------------------------- every conv layer's feature maps


class Images:
    enabled = True

    def __init__(self) -> None:
        self.images: dict[str, torch.Tensor] = {}

    def image(self, tag, img, step=0):
        self.images[tag] = img


@pytest.mark.parametrize(("model", "convs"), [("cnn", 2), ("alexnet", 5)])
def test_feature_maps_of_every_conv_layer(model, convs):
    from dlx.tracking.visuals import log_conv_layer

    b = built(f"model={model}", "data.limit=8")
    rec = Images()
    x = b.data.val.tensors[0][:4]
    x = nn.functional.interpolate(x, size=b.data.in_shape[-1]) if x.shape[-1] < 8 else x
    log_conv_layer(rec, b.model, x, 0)
    names = [n for n, m in b.model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(names) == convs
    assert {f"feature_maps/{n}" for n in names} <= set(rec.images)
    assert (
        f"filters/{names[0]}" in rec.images and len([t for t in rec.images if "filters" in t]) == 1
    )


def test_a_cnn_run_logs_feature_maps_of_both_conv_layers_at_start_and_end(tmp_run):
    run_dir, where = tmp_run
    dlx.train(["epochs=1", *TINY, "num_threads=1", where])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    acc.Reload()
    for layer in ("features.0", "features.4"):  # conv, batch norm, relu, pool; conv, ...
        steps = [e.step for e in acc.Images(f"feature_maps/{layer}")]
        assert steps == [0, 1], (layer, steps)
