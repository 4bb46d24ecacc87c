"""docs/architecture.md's table of layers is the law: every import between avadet's packages
is an arrow of that table, and every arrow of the table is used.

The table is read from the document itself, so the map and its enforcement cannot drift
apart: a change that needs a new arrow changes the document (with the reason) and nothing
else here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "avadet"
DOC = REPO / "docs" / "architecture.md"
# Entry points that tie the package together rather than belong to a layer.
ROOT_MODULES = {"__init__", "__main__"}


def layer_table() -> dict[str, set[str]]:
    """``{layer: layers it may import}`` from the doc's table rows
    ``| `layer` | owns | `a`, `b` |``."""
    table = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            table[cells[0].strip("`")] = set(re.findall(r"`([a-z_]+)`", cells[2]))
    return table


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def imported_layers(path: Path) -> set[tuple[str, int]]:
    """Layers of avadet that ``path`` imports (at any depth: lazy imports count), with the
    line of the first import of each."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = ([f"avadet.{a.name}" for a in node.names] if node.module == "avadet"
                     else [node.module])
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "avadet" and len(parts) > 1 and parts[1] != "__version__":
                found.setdefault(parts[1], node.lineno)
    return set(found.items())


def all_imports() -> dict[tuple[str, str], list[str]]:
    """``{(layer, imported layer): ["file:line", ...]}`` over every module of avadet."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = layer_of(path)
        if layer in ROOT_MODULES:
            continue
        for target, line in imported_layers(path):
            if target != layer:
                out.setdefault((layer, target), []).append(f"{path.relative_to(REPO)}:{line}")
    return out


def test_the_table_names_every_layer_of_the_package():
    table = layer_table()
    layers = {layer_of(p) for p in PACKAGE.rglob("*.py")} - ROOT_MODULES
    assert layers == set(table), "add the layer to docs/architecture.md (or remove it there)"
    for layer, allowed in table.items():
        assert allowed <= set(table), f"{layer} may import unknown layers {allowed - set(table)}"


def test_every_import_is_an_arrow_of_the_table():
    table = layer_table()
    illegal = {f"{a} -> {b}": where for (a, b), where in all_imports().items()
               if b not in table.get(a, set())}
    assert not illegal, f"imports outside docs/architecture.md: {illegal}"


def test_every_arrow_of_the_table_is_used():
    used = set(all_imports())
    unused = [f"{a} -> {b}" for a, allowed in layer_table().items() for b in sorted(allowed)
              if (a, b) not in used]
    assert not unused, f"arrows in docs/architecture.md that no import uses: {unused}"


def test_the_layers_form_no_cycle():
    table = layer_table()
    state: dict[str, str] = {}

    def visit(layer: str, path: tuple[str, ...]) -> None:
        if state.get(layer) == "done":
            return
        if state.get(layer) == "open":
            pytest.fail(f"import cycle: {' -> '.join(path + (layer,))}")
        state[layer] = "open"
        for target in sorted(table[layer]):
            visit(target, path + (layer,))
        state[layer] = "done"

    for layer in sorted(table):
        visit(layer, ())


def test_the_checker_sees_a_forbidden_import(tmp_path):
    # The check itself must be able to fail: a lazy import inside a function counts.
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from avadet.engine import train\n    import avadet.models\n")
    assert imported_layers(module) == {("engine", 2), ("models", 3)}
