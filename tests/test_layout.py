"""The layout's rules, read from the source: trainables/ has no import cycle and never imports orchestrator/.

Imports inside functions count too: a cycle hidden behind a lazy import is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str) -> set[str]:
    """Modules of `package` that the file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == package or name.startswith(package + ".")}


def _graph(package: str) -> dict[str, set[str]]:
    files = {_module(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: {m for m in _imports(path, package) if m in files and m != name} for name, path in files.items()}


def test_trainables_has_no_import_cycle():
    graph = _graph("trainables")
    done, stack = set(), []

    def visit(node: str) -> None:
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in done:
            return
        stack.append(node)
        for child in sorted(graph[node]):
            visit(child)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_trainables_never_imports_orchestrator():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "trainables").rglob("*.py") if _imports(p, "orchestrator")]
    assert offenders == []
