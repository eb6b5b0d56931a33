"""Models: AlexNet, ResNet transfer learning (pretrained weights, freezing, unfreezing),
weight init, activations, and the model summary. Tiny runs: digits with `data.limit`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import dlx
from conftest import FAST, all_tags, run_dlx
from dlx.config.compose import compose
from dlx.errors import UserError
from dlx.training.loop import build
from dlx.training.optim import build_optimizer

TINY = ["data.limit=64", "batch_size=64", *FAST]


def built(*overrides: str):
    return build(compose(list(overrides)))


def load_ckpt(run_dir: Path, name: str = "last.pt") -> dict:
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """A resnet18 state dict saved where torchvision caches its ImageNet weights, under
    torchvision's own file name: $TORCH_HOME/hub/checkpoints/resnet18-<hash>.pth.
    The values are random (seed 123), so they cannot match a fresh init by chance."""
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    path = home / "hub" / "checkpoints" / Path(url).name
    path.parent.mkdir(parents=True)
    g = torch.Generator().manual_seed(123)
    state = torchvision.models.resnet18().state_dict()
    for k, v in state.items():
        if k.endswith("running_var"):
            v.copy_(torch.rand(v.shape, generator=g) + 0.5)
        elif v.is_floating_point():
            v.copy_(torch.randn(v.shape, generator=g) * 0.05)
    torch.save(state, path)
    return home, state


@pytest.fixture
def offline_hub(imagenet_file, monkeypatch):
    """TORCH_HOME points at the fake cache; any download attempt would hit a closed port."""
    home, state = imagenet_file
    monkeypatch.setenv("TORCH_HOME", str(home))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    return state


def assert_backbone_equals(backbone_state: dict, expected: dict) -> None:
    """Every tensor of the torchvision ResNet but its fc, bit for bit."""
    keys = [k for k in expected if not k.startswith("fc.")]
    assert sorted(backbone_state) == sorted(keys)
    for k in keys:
        assert torch.equal(backbone_state[k], expected[k]), k


# ------------------------------------------------------------------------------ AlexNet


def test_alexnet_has_five_convs_three_fcs_pooling_and_dropout_in_the_classifier():
    m = built("model=alexnet").model
    convs = [x for x in m.features if isinstance(x, nn.Conv2d)]
    fcs = [x for x in m.classifier if isinstance(x, nn.Linear)]
    assert len(convs) == 5 and len(fcs) == 3
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.features) == 3
    assert sum(isinstance(x, nn.ReLU) for x in m.modules()) == 7
    drops = [x for x in m.classifier if isinstance(x, nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.5 for d in drops)
    assert fcs[-1].out_features == 10


def test_alexnet_trains_on_digits_resized_up_to_32x32(tmp_path):
    run = tmp_path / "run"
    m = dlx.train(["model=alexnet", "epochs=1", "data.limit=256", f"hydra.run.dir={run}"])
    assert m["status"] == "completed" and m["epochs_run"] == 1
    assert built("model=alexnet", "data.limit=8").data.in_shape == (1, 32, 32)
    tags = all_tags(run)
    assert tags["graph"], "the model graph is in TensorBoard"
    assert "model/summary/text_summary" in tags["tensors"]


# ------------------------------------------------------------------------------- ResNet


def test_resnet_from_scratch_trains_on_grayscale_digits(tmp_path):
    m = dlx.train(
        [
            "model=resnet",
            "model.pretrained=false",
            "epochs=1",
            *TINY,
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    assert m["status"] == "completed" and m["parameters"]["frozen"] == 0
    model = built("model=resnet", "data.limit=8").model
    assert model.head.out_features == 10
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10), "grayscale in, classes out"


def test_pretrained_true_loads_exactly_the_cached_torchvision_weights(offline_hub):
    model = built("model=resnet", "model.pretrained=true", "model.init=he", "data.limit=8").model
    assert_backbone_equals(model.backbone.state_dict(), offline_hub)
    assert "ResNet18_Weights" in model.weights_source
    assert model.head.out_features == 10, "a new head for the dataset's classes"


def test_pretrained_offline_with_nothing_cached_exits_2_naming_model_weights(tmp_path):
    proxy = "http://127.0.0.1:9"  # a closed port: no network, whatever the machine has
    env = {"TORCH_HOME": str(tmp_path / "empty"), "HTTPS_PROXY": proxy, "https_proxy": proxy}
    proc = run_dlx(
        [
            "train",
            "model=resnet",
            "model.pretrained=true",
            "epochs=1",
            *TINY,
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        env=env,
        check=2,
    )
    out = proc.stdout + proc.stderr
    assert "model.weights" in out and "resnet18-f37072fd.pth" in out
    assert "Traceback" not in out


def test_model_weights_path_loads_a_local_state_dict(offline_hub, tmp_path):
    path = tmp_path / "mine.pt"
    torch.save(offline_hub, path)
    model = built("model=resnet", f"model.weights={path}", "data.limit=8").model
    assert_backbone_equals(model.backbone.state_dict(), offline_hub)
    with pytest.raises(UserError) as err:
        built("model=resnet", f"model.weights={tmp_path / 'missing.pt'}", "data.limit=8")
    assert err.value.key == "model.weights"
    with pytest.raises(UserError, match="model.arch"):
        built("model=resnet", "model.arch=resnet34", f"model.weights={path}", "data.limit=8")


def test_freeze_backbone_keeps_every_backbone_tensor_and_trains_the_head(offline_hub, tmp_path):
    run = tmp_path / "run"
    args = ["model=resnet", "model.pretrained=true", "model.freeze=backbone", *TINY]
    start_head = {k: v.clone() for k, v in built(*args).model.head.state_dict().items()}
    m = dlx.train([*args, "epochs=1", f"hydra.run.dir={run}"])
    assert m["status"] == "completed"
    assert m["parameters"] == {"trainable": 5130, "frozen": 11176512}
    ckpt = load_ckpt(run)
    backbone = {
        k.removeprefix("backbone."): v
        for k, v in ckpt["model"].items()
        if k.startswith("backbone.")
    }
    assert_backbone_equals(backbone, offline_hub)  # weights and batch-norm statistics
    assert not torch.equal(ckpt["model"]["head.weight"], start_head["weight"]), "the head learned"
    groups = ckpt["optimizer"]["param_groups"]
    assert sum(len(g["params"]) for g in groups) == 2, "the optimizer holds the head only"
    log = (run / "train.log").read_text()
    assert "5,130 trainable, 11,176,512 frozen" in log and "backbone.layer4" in log


def test_frozen_parameters_get_no_gradient_and_are_not_given_to_the_optimizer():
    for freeze, trainable in [
        ("backbone", {"head"}),
        ("all_but_first_last", {"backbone.conv1", "backbone.bn1", "head"}),
    ]:
        b = built("model=resnet", f"model.freeze={freeze}", "data.limit=8")
        model = b.model
        opt = build_optimizer(b.cfg.opt, b.cfg.reg, model)
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        x, y = b.data.train.tensors
        b.loss_fn(model(x[:4]), y[:4]).backward()
        for name, p in model.named_parameters():
            train = name.rsplit(".", 1)[0] in trainable
            assert p.requires_grad == train and (id(p) in held) == train, name
            assert (p.grad is not None) == train, name


def test_unfreeze_at_epoch_fine_tunes_the_backbone_and_resumes_consistently(tmp_path):
    from dlx.launch.resume import resume

    run = tmp_path / "run"
    args = [
        "model=resnet",
        "model.freeze=backbone",
        "model.unfreeze_at_epoch=1",
        "opt.backbone_lr_mult=0.1",
        *TINY,
    ]
    start = built(*args).model.backbone.state_dict()
    dlx.train([*args, "epochs=1", f"hydra.run.dir={run}"])
    ckpt = load_ckpt(run)
    assert len(ckpt["optimizer"]["param_groups"]) == 1, "epoch 1: the head alone"
    assert torch.equal(ckpt["model"]["backbone.conv1.weight"], start["conv1.weight"])

    resume(str(run), ["epochs=2"])  # unfreezes at the start of epoch 2
    ckpt = load_ckpt(run)
    head, unfrozen = ckpt["optimizer"]["param_groups"]
    assert len(unfrozen["params"]) == 60 and unfrozen["lr"] == pytest.approx(0.1 * head["lr"])
    assert not torch.equal(ckpt["model"]["backbone.conv1.weight"], start["conv1.weight"])
    assert "Unfrozen at epoch 2" in (run / "train.log").read_text()

    m = resume(str(run), ["epochs=3"])  # past the unfreeze: the optimizer state must fit
    assert m["status"] == "completed" and m["epochs_run"] == 3
    assert m["parameters"]["frozen"] == 0
    assert len(load_ckpt(run)["optimizer"]["param_groups"]) == 2


def test_larger_resnets_build_with_a_new_head():
    from dlx.models.resnet import ResNet

    model = ResNet((3, 32, 32), 7, arch="resnet50", freeze="backbone")
    assert model.head.in_features == 2048 and model.head.out_features == 7
    assert all(not p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.freeze=head", "model.freeze"),
        ("model.arch=resnet101", "model.arch"),
        ("model.unfreeze_at_epoch=0", "model.unfreeze_at_epoch"),
    ],
)
def test_bad_resnet_options_are_refused_with_the_allowed_values(override, key, tmp_path):
    with pytest.raises(UserError) as err:
        dlx.train(["model=resnet", override, f"hydra.run.dir={tmp_path / 'run'}"])
    assert err.value.key == key and "Allowed" in str(err.value)
    assert not (tmp_path / "run").exists()


def test_experiment_transfer_learning_preset():
    cfg = compose(["experiment=transfer_learning"])
    assert cfg.model.arch == "resnet18" and cfg.model.pretrained is True
    assert cfg.model.freeze == "backbone" and cfg.model.unfreeze_at_epoch >= 1
    assert cfg.opt.backbone_lr_mult < 1


# --------------------------------------------------------------------- init, activations


def first_layer(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))


def fans(layer: nn.Module) -> tuple[int, int]:
    w = layer.weight
    receptive = w[0, 0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


@pytest.mark.parametrize("model", ["mlp", "alexnet"])
def test_init_he_and_xavier_give_the_lecture_standard_deviations(model):
    expected = {
        "he": lambda fi, fo: math.sqrt(2 / fi),
        "xavier": lambda fi, fo: math.sqrt(2 / (fi + fo)),
        "normal": lambda fi, fo: 1.0,
    }
    for scheme, std in expected.items():
        layer = first_layer(built(f"model={model}", f"model.init={scheme}", "data.limit=8").model)
        fan_in, fan_out = fans(layer)
        got = layer.weight.std().item()
        assert abs(got - std(fan_in, fan_out)) <= 0.1 * std(fan_in, fan_out), (scheme, got)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("model", ["mlp", "cnn", "alexnet"])
@pytest.mark.parametrize(
    "act, cls",
    [("gelu", nn.GELU), ("tanh", nn.Tanh), ("leaky_relu", nn.LeakyReLU), ("sigmoid", nn.Sigmoid)],
)
def test_activation_is_switchable(model, act, cls):
    m = built(f"model={model}", f"model.activation={act}", "data.limit=8").model
    assert any(isinstance(x, cls) for x in m.modules())
    assert not any(isinstance(x, nn.ReLU) for x in m.modules())


def test_mlp_depth_and_width_come_from_the_config():
    m = built("model=mlp", "model.depth=4", "model.width=32", "data.limit=8").model
    linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert len(linears) == 5 and [x.out_features for x in linears[:-1]] == [32] * 4


@pytest.mark.parametrize("model", ["mlp", "cnn", "alexnet"])
def test_batchnorm_sits_before_and_dropout_after_the_activation(model):
    for reg, norm in [("batchnorm", (nn.BatchNorm1d, nn.BatchNorm2d)), ("dropout", nn.Dropout)]:
        m = built(f"model={model}", f"reg={reg}", "model.activation=tanh", "data.limit=8").model
        seq = [x for x in m.modules() if not isinstance(x, nn.Sequential) and x is not m]
        hits = [i for i, x in enumerate(seq) if isinstance(x, norm)]
        assert hits, (model, reg)
        for i in hits:
            if reg == "batchnorm":
                assert isinstance(seq[i - 1], (nn.Linear, nn.Conv2d)) and isinstance(
                    seq[i + 1], nn.Tanh
                )
            else:
                assert isinstance(seq[i - 1], (nn.Tanh, nn.Flatten)), (model, seq[i - 1])
                assert seq[i].p == 0.3


def test_model_summary_lists_trainable_and_frozen():
    from dlx.tracking.visuals import block_summary, model_summary

    model = built("model=resnet", "model.freeze=all_but_first_last", "data.limit=8").model
    text = model_summary(model)
    assert "| backbone.conv1 | Conv2d | 9,408 | yes |" in text
    assert "| backbone.layer1.0.conv1 | Conv2d | 36,864 | no |" in text
    assert "| head | Linear | 5,130 | yes |" in text
    blocks = {b: (t, f) for b, t, f in block_summary(model)}
    assert blocks["backbone.conv1"] == (9408, 0) and blocks["backbone.layer4"][0] == 0


def test_the_default_cnn_has_batch_norm_and_the_lectures_lenet_is_one_override_away():
    """The default cnn: 16/32 filters and batch norm after every conv and hidden dense layer
    (the defaults that reach 0.98 on every seed); `model.channels=[6,16]
    model.batchnorm=false` is the lecture's LeNet-5, 21,386 parameters on digits."""
    model = built("data.limit=8").model
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32] and len(norms) == 4
    assert all(c.bias is None for c in convs), "batch norm's shift replaces the conv bias"
    lenet = built("data.limit=8", "model.channels=[6,16]", "model.batchnorm=false").model
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in lenet.modules())
    assert sum(p.numel() for p in lenet.parameters()) == 21386
    again = built("data.limit=8", "model.batchnorm=false", "reg=batchnorm").model
    assert any(isinstance(m, nn.BatchNorm2d) for m in again.modules()), "reg=batchnorm still on"
    with pytest.raises(UserError, match="model.batchnorm"):
        built("data.limit=8", "model.batchnorm=maybe")
