"""The plugin hooks, each proven by a test plugin: notifications get the right run and version,
conversions log, use and load a custom type, fingerprints skip hashing, and a broken plugin
never breaks a run. Entry-point loading is checked in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

import plait
from plait.errors import PluginWarning
from plait.plugins import plugin_list, register, reset_plugin_manager, unregister


class Table:
    """A Python object plait knows nothing about without the plugin below."""

    def __init__(self, rows: list[dict], version: str) -> None:
        self.rows = rows
        self.version = version  # what a real library would expose as a cheap identity


class TablePlugin:
    """Implements every hook and remembers how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.converted = 0
        self.fingerprinted = 0

    @plait.hookimpl
    def plait_run_started(self, run):
        self.calls.append(("plait_run_started", run.name, run.id))

    @plait.hookimpl
    def plait_run_finished(self, run, error):
        self.calls.append(("plait_run_finished", run.name, run.status, type(error).__name__ if error else None))

    @plait.hookimpl
    def plait_artifact_used(self, run, version):
        self.calls.append(("plait_artifact_used", run.name, version.spec))

    @plait.hookimpl
    def plait_artifact_logged(self, run, version, created):
        self.calls.append(("plait_artifact_logged", run.name, version.spec, created))

    @plait.hookimpl
    def plait_object_to_artifact(self, obj, name, type, store):
        if not isinstance(obj, Table):
            return None
        self.converted += 1
        return plait.Artifact(name or "table", type=type or "table").add_json(obj.rows, "rows.json")

    @plait.hookimpl
    def plait_artifact_to_object(self, version, as_type):
        if as_type is not Table:
            return None
        return Table(json.loads(version.read_bytes("rows.json")), version=f"loaded-{version.spec}")

    @plait.hookimpl
    def plait_fingerprint(self, obj):
        if not isinstance(obj, Table):
            return None
        self.fingerprinted += 1
        return obj.version


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch):
    """The test plugin, registered on a plugin manager with only the built-ins besides."""
    monkeypatch.setenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugin_manager()
    p = TablePlugin()
    register(p, name="table-plugin")
    yield p
    reset_plugin_manager()


def test_plait_run_started_and_plait_run_finished_get_the_run(plugin, store):
    with plait.run("ok", store=store) as ok:
        pass
    with pytest.raises(RuntimeError):
        with plait.run("broken", store=store):
            raise RuntimeError("no")
    assert plugin.calls == [
        ("plait_run_started", "ok", ok.id),
        ("plait_run_finished", "ok", "finished", None),
        ("plait_run_started", "broken", store.runs(name="broken")[0].id),
        ("plait_run_finished", "broken", "failed", "RuntimeError"),
    ]


def test_plait_artifact_logged_and_plait_artifact_used_get_the_run_and_version(plugin, store):
    with plait.run("prepare", store=store):
        plait.log(b"clean", name="clean")
        plait.log(b"clean", name="clean")  # same content: the existing version, not created
    with plait.run("train", store=store):
        plait.use("clean:latest")
    events = [c for c in plugin.calls if c[0] in ("plait_artifact_logged", "plait_artifact_used")]
    assert events == [
        ("plait_artifact_logged", "prepare", "clean:v0", True),
        ("plait_artifact_logged", "prepare", "clean:v0", False),
        ("plait_artifact_used", "train", "clean:v0"),
    ]


def test_plait_object_to_artifact_and_plait_artifact_to_object_round_trip_a_custom_type(plugin, store):
    rows = [{"id": 1, "label": "cat"}, {"id": 2, "label": "dog"}]
    with plait.run("label", store=store) as run:
        version = run.log(Table(rows, version="t1"), name="labels")
    assert (version.spec, version.type, [e.path for e in version.files()]) == ("labels:v0", "table", ["rows.json"])
    assert json.loads(version.read_bytes("rows.json")) == rows
    with plait.run("train", store=store) as train:
        loaded = plait.load("labels:v0", Table)
    assert isinstance(loaded, Table) and loaded.rows == rows and loaded.version == "loaded-labels:v0"
    assert [v.spec for v in store.get_run(train.id).inputs] == ["labels:v0"]  # load records the use


def test_using_a_converted_object_links_the_version_with_the_same_content(plugin, store):
    rows = [{"id": 1}]
    with plait.run("label", store=store):
        plait.log(Table(rows, version="a"), name="labels")
    with plait.run("train", store=store) as train:
        used = train.use(Table(list(rows), version="b"), name="labels")  # other identity, same bytes
    assert used.spec == "labels:v0" and store.versions("labels") == [used]


def test_plait_fingerprint_skips_converting_and_hashing_an_object_seen_before(plugin, store):
    table = Table([{"id": 1}], version="fp-1")
    with plait.run("a", store=store) as run:
        first = run.log(table, name="labels")
        again = run.log(table, name="labels")
        used = run.use(table)
    assert first == again == used
    assert (plugin.converted, plugin.fingerprinted) == (1, 3)
    changed = Table([{"id": 2}], version="fp-2")
    with plait.run("b", store=store) as run:
        assert run.log(changed, name="labels").spec == "labels:v1"
        back = run.log(table, name="labels")  # an old fingerprint: that version again, now latest
        assert back.spec == "labels:v0" and "latest" in back.aliases
    assert plugin.converted == 2
    assert [r.name for r in store.get("labels:v0").producers] == ["a", "b"]


def test_a_plugin_raising_in_a_notification_hook_is_a_warning_not_a_failure(plugin, store):
    class Broken:
        @plait.hookimpl
        def plait_artifact_logged(self, run, version, created):
            raise ValueError("plugin bug")

    register(Broken(), name="broken")
    with pytest.warns(PluginWarning, match="a plait plugin failed in plait_artifact_logged: ValueError: plugin bug"):
        with plait.run("r", store=store) as run:
            version = run.log(b"data", name="data")
    assert store.get_run(run.id).status == "finished" and version.read_bytes("data") == b"data"


def test_logging_or_using_an_object_no_plugin_converts_names_its_type(plugin, store):
    class Unknown:
        pass

    with plait.run("r", store=store) as run:
        with pytest.raises(plait.ConversionError, match=r"does not know how to log a .*Unknown: pass a path"):
            run.log(Unknown())
        with pytest.raises(plait.ConversionError, match=r"does not know how to log a .*Unknown"):
            run.use(Unknown())
        run.log(b"x", name="x")
    with pytest.raises(plait.ConversionError, match=r"no plugin turns x:v0 \(result\) into a .*Unknown"):
        plait.load("x:v0", Unknown, store=store)


def test_the_built_in_conversions_load_a_path_or_bytes(plugin, store):
    store.log(b"payload", name="blob")
    path = plait.load("blob:v0", store=store)
    assert Path(path).read_bytes() == b"payload"
    assert plait.load("blob:v0", bytes, store=store) == b"payload"
    assert isinstance(plait.load("blob:v0", Path, store=store), Path)


def test_a_misspelled_hook_fails_loudly(plugin):
    class Typo:
        @plait.hookimpl
        def plait_run_startd(self, run):
            pass

    with pytest.raises(pluggy.PluginValidationError, match="plait_run_startd"):
        register(Typo(), name="typo")
    unregister(name="typo")


def test_plugin_list_names_the_registered_plugins(plugin):
    names = [n for n, _ in plugin_list()]
    assert "plait.builtin" in names and "table-plugin" in names


_PLUGIN = textwrap.dedent(
    """
    import sys
    import plait

    @plait.hookimpl
    def plait_run_started(run):
        print("hello from the plugin:", run.name, file=sys.stderr)
    """
)

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import plait
    before = "myplug" in sys.modules
    from plait.plugins import plugin_list
    names = [n for n, _ in plugin_list()]
    with plait.run("demo", store=sys.argv[1]):
        pass
    print(json.dumps({"imported_by_import_plait": before, "names": names}))
    """
)


def _site(tmp_path: Path, body: str) -> Path:
    """A folder that holds an installed-looking distribution with a ``plait`` entry point."""
    site = tmp_path / "site"
    (site / "myplug-0.1.dist-info").mkdir(parents=True)
    (site / "myplug.py").write_text(body)
    (site / "myplug-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (site / "myplug-0.1.dist-info" / "entry_points.txt").write_text("[plait]\nmyplug = myplug\n")
    return site


def _run(site: Path, store: str, **env: str) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if k != "PLAIT_TRACE_PLUGINS"}
    environ.update({"PYTHONPATH": str(site), "PLAIT_DISABLE_PLUGIN_AUTOLOAD": "", **env})
    return subprocess.run([sys.executable, "-c", _SCRIPT, store], capture_output=True, text=True, env=environ, check=True)


def test_plugins_load_lazily_from_the_entry_point_group(tmp_path):
    done = _run(_site(tmp_path, _PLUGIN), str(tmp_path / "store"))
    out = json.loads(done.stdout)
    assert out["imported_by_import_plait"] is False  # import plait loads no plugin
    assert "myplug" in out["names"]
    assert "hello from the plugin: demo" in done.stderr


def test_plait_disable_plugin_autoload_loads_no_entry_point(tmp_path):
    done = _run(_site(tmp_path, _PLUGIN), str(tmp_path / "store"), PLAIT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert json.loads(done.stdout)["names"] == ["plait.builtin", "plait.webhooks"]
    assert "hello from the plugin" not in done.stderr


def test_plait_trace_plugins_prints_every_hook_call(tmp_path):
    done = _run(_site(tmp_path, _PLUGIN), str(tmp_path / "store"), PLAIT_TRACE_PLUGINS="1")
    assert "plait_run_started" in done.stderr and "plait_run_finished" in done.stderr


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning(tmp_path):
    done = _run(_site(tmp_path, "raise ImportError('needs a missing library')\n"), str(tmp_path / "store"))
    assert "myplug" not in json.loads(done.stdout)["names"]
    assert "the plait plugin 'myplug' (myplug) failed to load and is skipped: ImportError: needs a missing library" in done.stderr


_LIST = textwrap.dedent(
    """
    import json
    from plait.plugins import plugin_list
    print(json.dumps([n for n, _ in plugin_list()]))
    """
)


def _list(site: Path, tmp_path: Path) -> list[str]:
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("PLAIT_TRACE_PLUGINS", "PLAIT_DISABLE_PLUGIN_AUTOLOAD")}
    # no __pycache__ beside myplug.py: its folder's time would change on the first import (an
    # installed plugin is compiled when installed)
    environ.update({"PYTHONPATH": str(site), "PLAIT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONDONTWRITEBYTECODE": "1"})
    # the test runs in tmp_path, which is on sys.path (as the folder of `python -c`): making the
    # cache folder in it would change its time too
    (tmp_path / "cache").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", _LIST], capture_output=True, text=True, env=environ, check=True)
    return json.loads(done.stdout)


def _kept(tmp_path: Path) -> Path:
    (kept,) = (tmp_path / "cache").glob("entry-points-*.json")
    return kept


def test_the_plugin_list_is_kept_until_a_distribution_is_installed_or_removed(tmp_path):
    site = _site(tmp_path, _PLUGIN)
    assert "myplug" in _list(site, tmp_path)
    kept = json.loads(_kept(tmp_path).read_text())
    assert ["myplug", "myplug"] in kept["plait"]
    kept["plait"].append(["from-the-kept-list", "json"])  # marks the kept list: no scan would find it
    _kept(tmp_path).write_text(json.dumps(kept))
    assert {"myplug", "from-the-kept-list"} <= set(_list(site, tmp_path))  # the distributions were not read again
    (site / "other-1.0.dist-info").mkdir()  # installing one adds a folder to a folder on sys.path
    (site / "otherplug.py").write_text(_PLUGIN)
    (site / "other-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: other\nVersion: 1.0\n")
    (site / "other-1.0.dist-info" / "entry_points.txt").write_text("[plait]\nother = otherplug\n")
    installed = set(_list(site, tmp_path))
    assert {"myplug", "other"} <= installed and "from-the-kept-list" not in installed
    import shutil

    shutil.rmtree(site / "myplug-0.1.dist-info")  # uninstalled
    removed = _list(site, tmp_path)
    assert "myplug" not in removed and "other" in removed


def test_a_damaged_plugin_list_is_read_again_from_the_distributions(tmp_path):
    site = _site(tmp_path, _PLUGIN)
    _list(site, tmp_path)
    _kept(tmp_path).write_text('{"key": [], "plait": 7')
    assert "myplug" in _list(site, tmp_path)


@pytest.mark.parametrize("value, expected", [
    ("json", lambda: json), ("json:dumps", lambda: json.dumps), ("json : dumps [extra]", lambda: json.dumps),
    ("os.path:join", lambda: __import__("os").path.join),
])
def test_an_entry_point_value_names_a_module_or_an_attribute_of_one(value, expected):
    from plait.plugins import _load

    assert _load(value) is expected()


@pytest.mark.parametrize("value", ["", "not a module!", "json:", "json:dumps:again"])
def test_a_malformed_entry_point_value_is_refused_by_name(value):
    from plait.plugins import _load

    with pytest.raises(ValueError, match="is not a module or module:attribute"):
        _load(value)
