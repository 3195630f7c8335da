"""The shape of the package: layers that import only downwards, no import cycles, SQL only in the
index, and integrations that use only the public API.

Every ``import`` counts, wherever it stands: at the top, inside a function, or under
``TYPE_CHECKING``. The layers are drawn in ``plait/__init__.py`` and the README.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "plait"

#: Module prefix -> layer; the longest matching prefix wins.
LAYERS = {
    "plait.errors": 0,
    "plait.base": 0,
    "plait.storage": 1,
    "plait.formats": 2,
    "plait.index": 3,
    "plait.store": 4,
    "plait.tracking": 5,
    "plait.ops": 6,
    "plait.hookspecs": 7,
    "plait.builtin": 7,
    "plait.plugins": 7,
    "plait.webhooks": 7,
    "plait.api": 8,
    "plait": 9,
    "plait.integrations": 10,
    "plait.cli": 10,
    "plait.ui": 10,
    "plait.demo": 10,
    "plait.__main__": 10,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> int:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def imports_of(module: str) -> set[str]:
    """Every plait module ``module`` imports, resolved to the module (not the name) it names."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "plait")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "plait":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    found.discard(module)
    return {m for m in found if m in MODULES}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer():
    assert all(isinstance(layer(m), int) for m in MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_below(module):
    back = sorted(f"{m} (layer {layer(m)})" for m in GRAPH[module] if layer(m) > layer(module))
    assert back == [], f"{module} (layer {layer(module)}) imports a higher layer"


def test_no_import_cycles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


_SQL = re.compile(r"\b(SELECT\s.+\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TEMP\s+)?(TABLE|INDEX))\b", re.S)


def test_sql_is_written_only_in_the_index_package():
    outside = []
    for module, path in MODULES.items():
        if module.startswith("plait.index"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.search(node.value):
                outside.append(f"{module}:{node.lineno}")
    assert outside == []


def test_no_row_is_read_by_position_outside_the_index():
    pattern = re.compile(r"\b(row|r)\[\d+\]")  # a column by its position in a result tuple
    found = [f"{m}:{i}" for m, p in MODULES.items() if not m.startswith("plait.index")
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("plait.integrations")))
def test_integrations_use_only_the_public_api(module):
    private = sorted(m for m in GRAPH[module] if m != "plait" and not m.startswith("plait.integrations"))
    assert private == [], f"{module} imports plait internals; use what `plait` exports"
