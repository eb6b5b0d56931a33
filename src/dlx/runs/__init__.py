"""Reading past runs back: load a folder (`load`), the `--filter`/`--sort` grammar (`query`),
the `dlx runs` table (`table`), `dlx compare`, and `dlx eval` (`evaluate`).

May import `config`, `record`, `launch`, `training`, `tracking`, `data`, `models`; never `cli`.
"""

import sys
import types


class _Callable(types.ModuleType):
    """`dlx.runs(ROOT, ...)` is the notebook query (`runs.frame`); importing this package
    binds it to `dlx.runs`, so the package itself answers the call."""

    def __call__(self, *args, **kwargs):
        from dlx.runs.frame import runs_frame

        return runs_frame(*args, **kwargs)


sys.modules[__name__].__class__ = _Callable
