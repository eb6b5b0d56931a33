"""The shape of the code base: the folder names are the architecture, and the tests keep them so.

- Layers: `record` (the run folder format) and `config` import nothing from `launch`, `sweeps`,
  `runs` or `cli`; `training`, `tracking`, `data` and `models` import nothing from those
  either; `record` imports no other dlx package but `errors` (every layer reads and writes
  run folders); `launch` and `sweeps` never import `runs`, and only `cli` imports `cli`.
- No import circle among dlx's modules: a circle makes the import order matter and hides
  which module a concept belongs to. A function-level import counts as much as a top-level
  one (only `if TYPE_CHECKING:` blocks do not).
- No module over 350 lines, no function over 80: long ones are split into named steps.
- At most 6 top-level modules in `src/dlx` beside its packages.
Strict: there is no list of known exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 350
MAX_FUNCTION_LINES = 80
MAX_TOP_LEVEL_MODULES = 6
UPPER = ("launch", "sweeps", "runs", "cli")
# package -> the dlx packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "record": ("config", "launch", "sweeps", "runs", "cli", "training", "tracking", "data",
               "models", "infer"),
    "config": (*UPPER, "training", "tracking", "infer"),
    "training": (*UPPER, "infer"),
    "tracking": (*UPPER, "infer"),
    "data": (*UPPER, "infer"),
    "models": (*UPPER, "infer", "training", "tracking"),
    "launch": ("runs", "cli", "infer"),
    "sweeps": ("runs", "cli", "infer"),
    "runs": ("cli",),
    "infer": ("cli",),
}  # fmt: skip


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "dlx").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (never run)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph() -> dict[str, set[str]]:
    """module -> the dlx modules it imports (at any level of the file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_only(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x, from .a import b
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in node.names:  # `from dlx.data import augment` names a module
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_finds_a_circle_and_resolves_dlx_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    # a top-level import, a function-level one, and `from package import module`
    assert "dlx.training.step" in graph["dlx.training.loop"]
    assert "dlx.training.loop" in graph["dlx.launch.hydra_app"]
    assert "dlx.training.checkpoint" in graph["dlx.training.loop"]


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Every import circle, as the set of modules on it (cut one edge of each, look again)."""
    graph = {k: set(v) for k, v in graph.items()}
    found = set()
    while (cycle := find_cycle(graph)) is not None:
        found.add(frozenset(cycle))
        graph[cycle[0]].discard(cycle[1])
    return found


def test_no_import_circle_among_dlx_modules():
    found = [" -> ".join(sorted(c)) for c in circles(import_graph())]
    assert not found, f"import circles: {found}"


def test_no_module_is_longer_than_a_few_screens():
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    long = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def _package(module: str) -> str:
    """dlx.training.loop -> training; dlx.errors -> errors; dlx -> dlx."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that runs against the layers, as `importer -> imported`."""
    bad = []
    for module, targets in sorted(graph.items()):
        banned = FORBIDDEN.get(_package(module), ())
        bad += [f"{module} -> {t}" for t in sorted(targets) if _package(t) in banned]
    return bad


def test_the_layer_checker_finds_an_upward_import():
    graph = {
        "dlx.record.names": set(),
        "dlx.training.finish": {"dlx.record.names", "dlx.runs.load"},  # the writer reads up
        "dlx.runs.load": {"dlx.record.names"},
        "dlx.cli.app": {"dlx.runs.load", "dlx.training.finish"},
    }
    assert layer_violations(graph) == ["dlx.training.finish -> dlx.runs.load"]
    graph["dlx.training.finish"] = {"dlx.record.names"}
    assert layer_violations(graph) == []
    assert layer_violations({"dlx.record.lock": {"dlx.config.trust"}}) == [
        "dlx.record.lock -> dlx.config.trust"
    ]


def test_no_import_runs_against_the_layers():
    bad = layer_violations(import_graph())
    assert not bad, "imports against the layers (see the module doc): " + "; ".join(bad)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """name (Class.method) -> length in lines, for every function longer than `limit`."""
    out: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                length = child.end_lineno - first + 1
                if length > limit:
                    out[f"{prefix}{child.name}"] = length
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source), "")
    return out


def test_the_function_checker_measures_a_long_function():
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert long_functions("def short():\n    pass\n") == {}
    short = "".join(body.splitlines(keepends=True)[:-2])
    fits = f"class A:\n    @staticmethod\n    def f():\n{short}"
    assert long_functions(fits) == {}
    long = f"class A:\n    def f(self):\n{body}        return 1\n"
    assert long_functions(long) == {"A.f": MAX_FUNCTION_LINES + 2}


def test_no_function_is_longer_than_a_screen():
    found = {
        f"{name}.{fn}": n
        for name, path in _modules().items()
        for fn, n in long_functions(path.read_text()).items()
    }
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines (split into steps): {found}"


def test_the_top_level_holds_packages_and_a_few_modules():
    top = sorted(p.name for p in (SRC / "dlx").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"top-level modules beside the packages: {top}"
    for package in ("cli", "config", "record", "launch", "sweeps", "runs", "training"):
        doc = ast.get_docstring(ast.parse((SRC / "dlx" / package / "__init__.py").read_text()))
        assert doc and "import" in doc, f"dlx/{package}/__init__.py: say what it owns and imports"


@pytest.mark.parametrize("package", ["record", "config"])
def test_the_lower_layers_load_without_torch(package):
    import subprocess
    import sys

    code = (
        f"import pkgutil, importlib, sys, dlx.{package} as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        f"    importlib.import_module('dlx.{package}.' + m.name)\n"
        "assert 'torch' not in sys.modules, 'torch loaded'\n"
    )
    env_path = str(SRC)
    import os

    env = {**os.environ, "PYTHONPATH": env_path}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
