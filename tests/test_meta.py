"""Tests that guard the architecture: a light ``import plait``, a sorted and documented public
API, and a test for every hook."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import plait
from plait import hookspecs

HEAVY = ("torch", "lightning", "pytorch_lightning", "prefect", "datasets", "fastapi", "uvicorn", "rich", "s3fs")
TESTS = Path(__file__).parent


def test_import_plait_imports_no_framework_and_no_cli_library():
    code = f"import json, sys, plait; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


#: What a reading command never needs: network clients, the ULID library (its import reads every
#: installed package's metadata), notebook HTML.
NOT_FOR_READING = ("plait.tracking.html", "urllib.request", "asyncio", "ulid", "importlib.metadata")


def test_show_and_diff_import_nothing_they_do_not_use(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("one")
    store = str(tmp_path / "store")
    code = """if True:
        import json, sys
        from plait.cli import main
        try:
            main(sys.argv[1:])
        except SystemExit:
            pass
        print(json.dumps([m for m in {names!r} if m in sys.modules]), file=sys.stderr)
    """.format(names=list(NOT_FOR_READING))
    subprocess.run([sys.executable, "-m", "plait", "--store", store, "log", str(data), "--name", "ds"], check=True,
                   capture_output=True)
    (data / "a.txt").write_text("two")
    subprocess.run([sys.executable, "-m", "plait", "--store", store, "log", str(data), "--name", "ds"], check=True,
                   capture_output=True)
    for command in (["show", "ds:v1"], ["diff", "ds:v0", "ds:v1"]):
        done = subprocess.run([sys.executable, "-c", code, "--store", store, *command], capture_output=True, text=True)
        assert "a.txt" in done.stdout, done.stderr
        assert json.loads(done.stderr.strip().splitlines()[-1]) == [], command


def test_import_plait_loads_no_plugin():
    code = "import plait, plait.plugins as p; print(p._manager is None)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"


def test_loading_the_plugins_imports_each_integrations_plugin_module_and_nothing_else_of_it():
    code = """if True:
        import json, sys, plait.plugins as p
        p.get_plugin_manager()
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("plait.integrations."))))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [f"plait.integrations.{name}{part}" for name in ("huggingface", "lightning", "prefect")
                               for part in ("", ".plugin")]


@pytest.mark.parametrize("module, names", [
    ("plait.integrations.prefect", ["PrefectTrackingWarning", "TrackError", "TrackOptions", "track"]),
    ("plait.integrations.huggingface", ["TRANSFORM_KIND", "load", "load_dataset", "track"]),
    ("plait.integrations.lightning", ["checkpoint_path"]),
])
def test_each_integrations_names_are_there_on_first_access(module, names):
    code = f"import {module} as m; print([callable(getattr(m, n)) or isinstance(getattr(m, n), str) for n in {names!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr([True] * len(names))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        getattr(importlib.import_module(module), "nope")


def test_all_is_sorted_and_complete():
    assert plait.__all__ == sorted(plait.__all__)
    assert len(set(plait.__all__)) == len(plait.__all__)
    for name in plait.__all__:
        assert hasattr(plait, name), name


@pytest.mark.parametrize("name", plait.__all__)
def test_every_public_name_has_a_docstring(name):
    obj = getattr(plait, name)
    doc = inspect.getdoc(obj) if not isinstance(obj, str) else "constant"
    if name == "hookimpl":  # a pluggy marker instance: documented where it is defined
        doc = inspect.getsource(sys.modules["plait.hookspecs"]).split("hookimpl = ", 1)[1].split('"""')[1]
    assert doc and doc.strip(), f"plait.{name} has no docstring"


def _hookspec_names() -> list[str]:
    return sorted(n for n, f in vars(hookspecs).items() if n.startswith("plait_") and callable(f))


@pytest.mark.parametrize("hook", _hookspec_names())
def test_every_hookspec_is_documented_per_the_style(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook))
    params = [p for p in inspect.signature(getattr(hookspecs, hook)).parameters]
    assert doc and doc.splitlines()[0].strip()
    for param in params:
        assert f":param {param}:" in doc, f"{hook} does not document {param}"
    if getattr(getattr(hookspecs, hook), "plait_spec", {}).get("firstresult"):
        assert "first non-" in doc and ":returns:" in doc


def _names_used_in_tests() -> set[str]:
    """Every identifier and string literal in the test sources (datasette's trick)."""
    found: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                found.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.add(node.name)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(node.value.replace("(", " ").replace(",", " ").split())
    return found


def test_every_hookspec_has_a_test():
    used = _names_used_in_tests()
    untested = [hook for hook in _hookspec_names() if hook not in used]
    assert _hookspec_names() and untested == []
