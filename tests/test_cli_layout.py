"""The CLI package stays easy to change (issue 28): no module over 250 lines, and no import
cycle: the shared modules import no command module, and no command module imports the package's
``__init__`` (which imports every command module)."""

from __future__ import annotations

import ast
from pathlib import Path

import deepsampler.cli

PACKAGE = Path(deepsampler.cli.__file__).parent
SHARED = {"_common", "_extras"}


def _imports(path: Path) -> set[str]:
    """The ``deepsampler.cli`` modules a file imports (``""`` for the package itself)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == "deepsampler.cli" or name.startswith("deepsampler.cli."):
                found.add(name.removeprefix("deepsampler.cli").lstrip("."))
    return found


def test_no_module_over_250_lines():
    lengths = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > 250} == {}


def test_no_import_cycle():
    graph = {
        p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")
    }
    for name in SHARED:
        assert graph[name] <= SHARED - {name}, f"{name} imports {graph[name]}"
    for name, deps in graph.items():
        assert "" not in deps, f"{name} imports the package __init__"

    def reach(start: str, node: str, seen: set[str]) -> None:
        for dep in graph.get(node, ()):
            assert dep != start, f"import cycle through {start} and {node}"
            if dep not in seen:
                seen.add(dep)
                reach(start, dep, seen)

    for name in graph:
        reach(name, name, set())
