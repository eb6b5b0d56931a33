"""Data and augmentation: real datasets from files on disk, the lecture's transforms, the fast
in-memory path, and what a user sees when the files are missing."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from conftest import FAST, all_tags, read_metrics, run_dlx

CONF = Path(__file__).resolve().parents[1] / "conf"
# A proxy nobody listens on: every download fails at once, as on an offline machine.
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "no_proxy": "",
}


# ---------------------------------------------------------------------------- fake files


def digit_images(n: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size) images whose class is where a bright bar sits, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 40, (n, size, size)).astype(np.uint8)
    for i, k in enumerate(y):
        x[i, 2 + 2 * k : 4 + 2 * k, 4:24] = 255
    return x, y


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """MNIST's idx format: a big-endian magic (0, 0, 0x08 = ubyte, ndim), the dims, the bytes."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def write_mnist(root: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """root/MNIST/raw/: the training files gzipped (as downloaded), the test files extracted."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, gz, seed in (("train", n_train, True, 0), ("t10k", n_test, False, 1)):
        x, y = digit_images(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y, gz)
    return root


def write_image_folder(root: Path, per_class: int = 12) -> Path:
    """Two classes of small RGB PNGs of different sizes: reddish vs bluish."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = 20 + i % 5, 24 + i % 3
            img = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
            img[..., 0 if c == 0 else 2] += 150
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


class FakeCIFAR10:
    """torchvision's CIFAR10 as dlx uses it: `.data` (N, 32, 32, 3) uint8, `.targets`."""

    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]

    def __init__(self, root, train=True, download=False, transform=None):
        rng = np.random.default_rng(0 if train else 1)
        n = 200 if train else 60
        self.data = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
        self.targets = rng.integers(0, 10, n).tolist()


# ---------------------------------------------------------------------------- real datasets


def test_mnist_trains_from_raw_idx_files_offline(tmp_path, tmp_run):
    root = write_mnist(tmp_path / "data")
    run_dir, where = tmp_run
    run_dlx(
        [
            "train",
            "data=mnist",
            f"data.root={root}",
            "data.download=false",
            "epochs=1",
            where,
            *FAST,
        ],
        cwd=tmp_path,
        check=0,
    )
    m = read_metrics(run_dir)
    assert m["status"] == "completed" and m["data"] == "mnist"
    assert 0.0 <= m["test"]["acc"] <= 1.0
    raw = root / "MNIST" / "raw"
    assert (raw / "train-images-idx3-ubyte").is_file(), "the .gz a user dropped in is extracted"
    assert "aug/train_samples" not in all_tags(run_dir)["images"], "aug=none: no augmentation grid"


def test_mnist_missing_with_download_off_says_where_to_put_the_files(tmp_path):
    import dlx
    from dlx.errors import UserError

    root = tmp_path / "nothing"
    with pytest.raises(UserError) as err:
        dlx.train(
            [
                "data=mnist",
                f"data.root={root}",
                "data.download=false",
                f"hydra.run.dir={tmp_path / 'run'}",
                *FAST,
            ]
        )
    msg = str(err.value)
    assert str(root / "MNIST" / "raw") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "data.download=true" in msg
    assert not root.exists(), "nothing is created in data.root"


def test_cifar10_offline_exits_2_and_leaves_nothing_in_data_root(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_dlx(
        ["train", "data=cifar10", f"data.root={empty}", f"hydra.run.dir={tmp_path / 'r'}"],
        cwd=tmp_path,
        env=OFFLINE,
        check=2,
    )
    out = proc.stdout + proc.stderr
    assert "cifar-10-python.tar.gz" in out and str(empty) in out, out
    assert "Traceback" not in out
    assert list(empty.iterdir()) == [], "no half-written download is left behind"


def test_fake_cifar10_trains_in_memory_with_the_lecture_augmentation(tmp_path, monkeypatch):
    """CIFAR's HWC uint8 `.data` becomes one NCHW tensor; aug=cifar runs on whole batches."""
    import torchvision

    import dlx
    from dlx.data.download import SOURCES

    root = tmp_path / "data"
    folder = root / SOURCES["cifar10"].folder
    folder.mkdir(parents=True)
    for name in SOURCES["cifar10"].files:
        (folder / name).touch()
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    run_dir = tmp_path / "run"
    m = dlx.train(
        [
            "data=cifar10",
            f"data.root={root}",
            "data.download=false",
            "aug=cifar",
            "epochs=1",
            "batch_size=50",
            f"hydra.run.dir={run_dir}",
            *FAST,
        ]
    )
    assert m["status"] == "completed" and m["data"] == "cifar10"
    log = (run_dir / "train.log").read_text()
    assert "RandomCrop, RandomHorizontalFlip, ToTensor, Normalize (whole batches" in log
    assert "differs from" not in log, "cifar10's normalization is the lecture's"
    assert "aug/train_samples" in all_tags(run_dir)["images"]


MODELS = ["cnn", "resnet"]


@pytest.mark.parametrize("model", MODELS)
def test_imagefolder_trains_with_a_seeded_split(tmp_path, model):
    if not (CONF / "model" / f"{model}.yaml").is_file():
        pytest.skip(f"model={model} is not in conf/model yet")
    import dlx

    root = write_image_folder(tmp_path / "pets")
    extra = ["model.pretrained=false"] if model == "resnet" else []
    run_dir = tmp_path / "run"
    m = dlx.train(
        [
            "data=imagefolder",
            f"data.root={root}",
            "data.image_size=32",
            f"model={model}",
            *extra,
            "aug=flip",
            "epochs=1",
            "batch_size=16",
            f"hydra.run.dir={run_dir}",
            *FAST,
        ]
    )
    assert m["status"] == "completed" and m["data"] == "imagefolder"
    assert "whole batches" in (run_dir / "train.log").read_text()  # the decode cache's fast path
    assert "aug/train_samples" in all_tags(run_dir)["images"]


def test_imagefolder_splits_are_seeded_and_sized(tmp_path):
    from dlx.config.compose import compose
    from dlx.data import build_data

    root = write_image_folder(tmp_path / "pets")
    cfg = compose(["data=imagefolder", f"data.root={root}", "data.image_size=24"])
    a, b = build_data(cfg.data, 0), build_data(cfg.data, 0)
    c = build_data(cfg.data, 1)
    assert a.classes == ["cats", "dogs"] and a.in_shape == (3, 24, 24)
    assert a.train.indices == b.train.indices and a.test.indices == b.test.indices
    assert a.train.indices != c.train.indices
    assert len(a.train) + len(a.val) + len(a.test) == 24
    assert a.train[0][0].shape == (3, 24, 24)


def test_imagefolder_without_class_folders_is_a_clear_error(tmp_path):
    from dlx.config.compose import compose
    from dlx.data import build_data
    from dlx.errors import UserError

    (tmp_path / "flat").mkdir()
    cfg = compose(["data=imagefolder", f"data.root={tmp_path / 'flat'}"])
    with pytest.raises(UserError, match="one sub-folder per class") as err:
        build_data(cfg.data, 0)
    assert err.value.key == "data.root"


# ---------------------------------------------------------------------------- splits, normalization


def test_splits_are_seeded_limit_trims_train_and_every_split_is_normalized(tmp_path):
    from dlx.config.compose import compose
    from dlx.data import build_data

    root = write_mnist(tmp_path / "data")
    base = ["data=mnist", f"data.root={root}", "data.download=false"]
    a = build_data(compose(base).data, 0)
    b = build_data(compose(base).data, 0)
    c = build_data(compose(base).data, 1)
    assert torch.equal(a.val.tensors[0], b.val.tensors[0]) and torch.equal(
        a.train.tensors[1], b.train.tensors[1]
    )
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])
    assert len(a.train) == 270 and len(a.val) == 30 and len(a.test) == 100  # official test set
    limited = build_data(compose([*base, "data.limit=50"]).data, 0)
    assert len(limited.train) == 50 and torch.equal(limited.val.tensors[0], a.val.tensors[0])
    # normalization: MNIST's published mean/std, the same for every split (test included)
    raw_test = torch.tensor(digit_images(100, 1)[0], dtype=torch.float32).unsqueeze(1) / 255
    assert torch.allclose(a.test.tensors[0], (raw_test - 0.1307) / 0.3081, atol=1e-5)
    assert a.mean == (0.1307,) and a.in_shape == (1, 28, 28)


def test_big_resized_sets_stay_native_in_memory_and_resize_per_batch(monkeypatch):
    from omegaconf import OmegaConf

    from dlx.data import splits
    from dlx.data.loader import make_loader

    monkeypatch.setattr(splits, "MAX_RESIZED_BYTES", 1000)
    cfg = OmegaConf.create({"val_fraction": 0.2, "test_fraction": 0.2, "image_size": 16})
    x, y = torch.rand(50, 1, 8, 8), torch.randint(0, 3, (50,))
    train, val, test, _, _ = splits.image_splits(x, y, cfg, 0, None)
    assert train.tensors[0].shape[-1] == 8 and train.size == 16
    assert splits.image_shape(train) == (1, 16, 16) and train[0][0].shape == (1, 16, 16)
    xb, _ = next(iter(make_loader(train, 10, True, torch.device("cpu"), torch.Generator())))
    assert xb.shape == (10, 1, 16, 16)


def test_fast_path_and_dataloader_give_the_same_batches_for_the_same_seed():
    from dlx.data.loader import TensorLoader, make_loader

    class PerSample(Dataset):
        def __init__(self, ds):
            self.ds = ds

        def __len__(self):
            return len(self.ds)

        def __getitem__(self, i):
            return self.ds[i]

    data = TensorDataset(torch.arange(100.0).view(100, 1), torch.arange(100))
    fast = make_loader(data, 16, True, torch.device("cpu"), torch.Generator().manual_seed(3))
    slow = make_loader(
        PerSample(data),
        16,
        True,
        torch.device("cpu"),
        torch.Generator().manual_seed(3),
        num_workers=0,
    )
    assert isinstance(fast, TensorLoader) and not isinstance(slow, TensorLoader)
    for _ in range(2):  # two epochs: the generator moves on the same way
        for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
            assert torch.equal(xf, xs) and torch.equal(yf, ys)


# ---------------------------------------------------------------------------- augmentation


def test_aug_cifar_is_the_lecture_pipeline():
    from torchvision import transforms

    from dlx.config.compose import compose
    from dlx.data.augment import build_transform

    lecture = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
        ]
    )
    built = build_transform(compose(["aug=cifar"]).aug)

    def plain(v):
        return tuple(plain(x) for x in v) if isinstance(v, (list, tuple)) else v

    def describe(t):
        return type(t), {k: plain(v) for k, v in vars(t).items() if not k.startswith("_")}

    assert [describe(t) for t in built.transforms] == [describe(t) for t in lecture.transforms]


def test_batch_crop_and_flip_draw_per_sample_and_pad_with_black():
    from torchvision import transforms as T

    from dlx.data.augment import BatchAugment

    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    white = (torch.ones(3) - torch.tensor(mean)) / torch.tensor(std)
    x = white.view(1, 3, 1, 1).expand(64, 3, 8, 8).clone()
    x[:, :, :, 0] = 0.0  # a marked left column shows flips
    aug = BatchAugment.build(
        [T.RandomCrop(8, padding=2), T.RandomHorizontalFlip()], mean, std, torch.device("cpu")
    )
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    black = (-torch.tensor(mean) / torch.tensor(std)).view(1, 3, 1, 1)
    padded = torch.isclose(out, black.expand_as(out), atol=1e-5).all(dim=1)  # (N, H, W)
    assert padded.any() and not padded.all(), "padding is the normalized value of a black pixel"
    assert len({tuple(p.flatten().tolist()) for p in padded}) > 10, "each sample its own crop"
    assert not torch.equal(aug(x, torch.Generator().manual_seed(1)), out)
    assert torch.equal(aug(x, torch.Generator().manual_seed(0)), out), "seeded draws repeat"


def test_batch_affine_matches_torchvision_for_the_same_draw():
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF

    from dlx.data.augment import BatchAugment

    x = torch.rand(2, 3, 12, 16)
    fixed = T.RandomAffine(degrees=(20, 20), scale=(1.1, 1.1), shear=(8, 8, 4, 4), fill=0.25)
    ours = BatchAugment.build([fixed], (0.0,) * 3, (1.0,) * 3, torch.device("cpu"))(x)
    assert torch.allclose(ours, TF.affine(x, 20, [0, 0], 1.1, [8, 4], fill=[0.25]), atol=1e-5)
    rot = T.RandomRotation((15, 15))
    ours = BatchAugment.build([rot], (0.0,) * 3, (1.0,) * 3, torch.device("cpu"))(x)
    assert torch.allclose(ours, TF.rotate(x, 15), atol=1e-5)


def test_a_transform_without_a_batch_version_runs_per_sample(tmp_path):
    """A user's own YAML transform (ColorJitter) falls back to the DataLoader path."""
    import dlx

    run_dir = tmp_path / "run"
    jitter = "aug.transforms=[{_target_:torchvision.transforms.ColorJitter,brightness:0.8}]"
    m = dlx.train([jitter, "epochs=1", "data.limit=100", f"hydra.run.dir={run_dir}", *FAST])
    assert m["status"] == "completed"
    assert "ColorJitter (per sample in the DataLoader" in (run_dir / "train.log").read_text()


def test_per_sample_fallback_changes_only_the_training_split():
    from dlx.config.compose import compose
    from dlx.data import build_data
    from dlx.data.augment import AugmentedTensors, build_batch_augment
    from dlx.data.loader import make_loader

    cfg = compose(["aug.transforms=[{_target_:torchvision.transforms.ColorJitter,brightness:0.9}]"])
    data = build_data(cfg.data, 0)
    val_before = data.val
    assert build_batch_augment(cfg.aug, data, torch.device("cpu")) is None
    assert isinstance(data.train, AugmentedTensors) and data.val is val_before
    x0, _ = data.train[0]
    assert x0.shape == data.in_shape and not torch.equal(x0, data.train.base[0][0])
    xb, yb = next(
        iter(
            make_loader(
                data.train,
                32,
                True,
                torch.device("cpu"),
                torch.Generator().manual_seed(0),
                num_workers=0,
            )
        )
    )
    assert xb.shape == (32, *data.in_shape) and yb.shape == (32,)


def test_augmentation_that_changes_the_image_size_is_refused():
    from dlx.config.compose import compose
    from dlx.data import build_data
    from dlx.data.augment import build_batch_augment
    from dlx.errors import UserError

    cfg = compose(["aug=cifar"])  # 32x32 crops of digits' 8x8 images
    data = build_data(cfg.data, 0)
    with pytest.raises(UserError) as err:
        build_batch_augment(cfg.aug, data, torch.device("cpu"))
    assert err.value.key == "aug.transforms"


def test_augmentation_needs_images():
    from dlx.config.compose import compose
    from dlx.data import build_data
    from dlx.data.augment import build_batch_augment
    from dlx.errors import UserError

    cfg = compose(["data=function", "aug=flip"])
    with pytest.raises(UserError, match="aug=none"):
        build_batch_augment(cfg.aug, build_data(cfg.data, 0), torch.device("cpu"))


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.std=[0.0]", "data.std"),
        ("data.download=maybe", "data.download"),
        ("aug.transforms=[{p:0.5}]", "aug.transforms"),
    ],
)
def test_bad_data_and_aug_values_name_the_key(override, key):
    from dlx.config.compose import compose
    from dlx.config.rules import validate
    from dlx.errors import UserError

    with pytest.raises(UserError) as err:
        validate(compose(["data=mnist", override]))
    assert err.value.key == key


def test_the_download_is_staged_and_moved_into_place_only_when_complete(tmp_path):
    from dlx.data.download import staging

    root = tmp_path / "new" / "root"
    with pytest.raises(KeyboardInterrupt), staging(root) as tmp:
        (tmp / "MNIST").mkdir()
        (tmp / "MNIST" / "half").write_bytes(b"x")
        raise KeyboardInterrupt
    assert not (tmp_path / "new").exists(), "an interrupted download leaves nothing"
    with staging(root) as tmp:
        (tmp / "MNIST").mkdir()
        (tmp / "MNIST" / "done").write_bytes(b"x")
    assert sorted(os.listdir(root)) == ["MNIST"] and (root / "MNIST" / "done").is_file()


def test_a_normalize_that_differs_from_the_dataset_gets_a_warning():
    from torchvision import transforms as T

    from dlx.data import DataBundle
    from dlx.data.augment import normalize_notes

    ds = TensorDataset(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    data = DataBundle(ds, ds, ds, "classification", (1, 8, 8), 2, mean=(0.1307,), std=(0.3081,))
    assert normalize_notes([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))], data) == []
    (note,) = normalize_notes([T.Normalize((0.5, 0.5, 0.5), (0.2, 0.2, 0.2))], data)
    assert "every split uses the dataset's values" in note
