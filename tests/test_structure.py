"""The shape of the code base: no import circle among dlx's modules, no module too long to read.

An import circle (a imports b, b imports a, directly or round a loop) makes the import order
matter and hides which module a concept belongs to; a function-level import closes a circle
as much as a top-level one does, so both count (only `if TYPE_CHECKING:` blocks do not).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 350
# Known, owned, being split by their writers; strict: an entry that is fixed must go from here.
KNOWN_LONG: set[str] = set()
KNOWN_CIRCLES: set[frozenset[str]] = set()


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
    found = circles(import_graph())
    new = [" -> ".join(sorted(c)) for c in found - KNOWN_CIRCLES]
    assert not new, f"import circles: {new}"
    gone = [sorted(c) for c in KNOWN_CIRCLES - found]
    assert not gone, f"fixed, so take them out of KNOWN_CIRCLES: {gone}"


def test_no_module_is_longer_than_a_few_screens():
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    long = {name for name, n in sizes.items() if n > MAX_LINES}
    new = {name: sizes[name] for name in sorted(long - KNOWN_LONG)}
    assert not new, f"modules over {MAX_LINES} lines (split them): {new}"
    gone = sorted(KNOWN_LONG - long)
    assert not gone, f"now short enough, so take them out of KNOWN_LONG: {gone}"
