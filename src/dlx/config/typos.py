"""The two slips a person makes most on the override line, answered with the fix:
`opt.lr 0.01` (a space where `=` goes) and `model=CNN` (an option in the wrong case)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from dlx.errors import UserError


def missing_equals(overrides: Sequence[str]) -> UserError | None:
    """`dlx train opt.lr 0.01`: Hydra reads two overrides, `opt.lr` and `0.01`, and stops at
    the first with "missing EQUAL". Say which word lacks its `=`, and the line that was meant."""
    for i, word in enumerate(overrides):
        if "=" in word or word.startswith("~") or not word.strip():
            continue  # `~key` deletes a key: no value, no `=`
        after = overrides[i + 1] if i + 1 < len(overrides) else None
        if after is not None and "=" not in after:
            fix = f"{word}={after}"
            said = f"`{word} {after}`"
        else:
            fix, said = f"{word}=VALUE", f"`{word}`"
        return UserError(
            f"{said}: an override is written key=value, with no spaces. Did you mean `{fix}`?",
            key=word.lstrip("+"),
        )
    return None


def nearest_option(option: str, options: Sequence[str]) -> str | None:
    """`CNN` -> `cnn`; `resnt` -> `resnet`: the option meant, if one is near enough."""
    same = [o for o in options if o.lower() == option.lower()]
    if same:
        return same[0]
    near = difflib.get_close_matches(option.lower(), list(options), n=1, cutoff=0.6)
    return near[0] if near else None
