"""The layout's rules: no import circles among the project's modules, and model kinds named only in the registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vae_core", "app")
KIND_NAMES = re.compile(r"""["'](ae|vae|beta-vae|capacity-vae|beta-tcvae|cvae|vq-vae|vae-gan)["']""")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports, at the top or inside a function (both count: a lazy import is
    still a dependency)."""
    modules = _sources()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each once (as found by a depth-first search)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "vae_core.kinds" in graph["vae_core.config"]  # `from . import kinds`
    assert "vae_core.checkpoints" in graph["vae_core.family"]  # imported inside init_from


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_kind_and_objective_names_are_compared_only_in_the_registry():
    offenders = []
    tests = {p.stem: p for p in (ROOT / "tests").glob("*.py") if p.stem not in ("test_kinds", "test_layout")}
    for name, path in {**_sources(), **tests}.items():  # the tests ask the records too; the registry's own do not
        if name == "vae_core.kinds":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if KIND_NAMES.search(code) and ("==" in code or "!=" in code or " in (" in code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
