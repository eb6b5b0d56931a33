"""The lecture's slides as switches: convolution and pooling knobs (and the shapes they make),
2-D toy data with its decision boundary, binary cross-entropy, every conv layer's feature maps.
Tiny runs: digits with `data.limit`, toy sets with a few hundred points."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import FAST, read_metrics, run_dlx
from dlx.config.compose import compose
from dlx.errors import UserError
from dlx.training.loop import build

TINY = ["data.limit=64", "batch_size=64", *FAST]


def built(*overrides: str):
    return build(compose(list(overrides)))


# ------------------------------------------------------------ kernel size, stride, padding


def test_stride_pool_and_padding_change_the_shapes_the_layers_make():
    from dlx.models.shapes import output_shapes

    def shapes(*args):
        model = built("data.limit=8", *args).model
        return output_shapes(model, torch.zeros(1, 1, 8, 8))

    base = shapes()
    assert base["features.0"] == (6, 8, 8) and base["features.2"] == (6, 4, 4)  # same, max 2
    strided = shapes("model.stride=2", "model.pool=avg")
    assert strided["features.0"] == (6, 4, 4), "stride 2 halves the 8x8 digit"
    assert strided["features.2"] == (6, 2, 2)
    model = built("data.limit=8", "model.stride=2", "model.pool=avg").model
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
        ["train", "model.stride=2", "model.pool=avg", "epochs=1", *TINY, where],
        cwd=run_dir.parent,
        check=0,
    )
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    assert lines["input"][-1] == "1x8x8"
    assert lines["features.0"][1:4] == ["Conv2d", "6x4x4", "156"]
    assert lines["features.2"][1:3] == ["AvgPool2d", "6x2x2"]
    assert lines["classifier.5"][1:3] == ["Linear", "10"]
    assert read_metrics(run_dir)["status"] == "completed"


def test_a_combination_that_shrinks_the_image_to_nothing_exits_2_naming_the_layer(tmp_path):
    proc = run_dlx(["train", "model.padding=0", *TINY], cwd=tmp_path, check=2)
    assert "features.3" in proc.stderr and "Conv2d 5x5" in proc.stderr, proc.stderr
    assert "6x2x2" in proc.stderr and "Traceback" not in proc.stderr
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
