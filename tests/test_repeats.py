"""Is it really better? `data.seed` (one split for every repeat), repeats grouped by
configuration with mean ± std and Welch's t-test, cross-validation folds, `compare --group`."""

from __future__ import annotations

import torch


def _split(overrides: list[str]):
    from dlx.config.compose import compose
    from dlx.data import build_data, data_seed
    from dlx.data.splits import split_indices

    cfg = compose(overrides)
    seed = data_seed(cfg)
    _, _, test = split_indices(1797, cfg.data.val_fraction, cfg.data.test_fraction, seed)
    return test, build_data(cfg.data, seed).test.tensors[0]


def test_data_seed_fixes_the_split_and_seed_alone_does_not_move_it():
    base_idx, base_x = _split(["data.seed=7", "seed=0"])
    other_idx, other_x = _split(["data.seed=7", "seed=3"])
    assert torch.equal(base_idx, other_idx), "seed alone must not move the test set"
    assert torch.equal(base_x, other_x)
    moved_idx, moved_x = _split(["data.seed=8", "seed=0"])
    assert not torch.equal(base_idx, moved_idx) and not torch.equal(base_x, moved_x)
    # by default data.seed follows seed: a single run is split as before
    follows_idx, _ = _split(["seed=7"])
    assert torch.equal(follows_idx, base_idx)
