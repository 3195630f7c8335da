"""The run and lineage commands: lineage, runs, run show, plugins, compact, reindex — and history, which
replays every alias and metadata change with its time, run and old/new values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import plait
from plait.cli import main


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A store where ``prepare`` made clean:v0 from raw:v0 and ``train`` made model:v0 (alias best)."""
    monkeypatch.setenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    from plait.plugins import reset_plugin_manager

    reset_plugin_manager()
    store = plait.Store(str(tmp_path / "store"))
    store.log(b"raw", name="raw", type="dataset")
    with plait.run("prepare", store=store, config={"split": 0.9}) as prepare:
        prepare.use("raw:v0")
        prepare.log(b"clean", name="clean", type="dataset")
    with plait.run("train", store=store, kind="lightning.fit") as train:
        train.use("clean:v0")
        train.log(b"weights", name="model", type="model", aliases=["best"])
    yield store, prepare, train
    reset_plugin_manager()


def cli(store: plait.Store, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, ["--store", store.url, *args], catch_exceptions=False)
    assert result.exit_code == code, (args, result.output, result.stderr)
    return result


@pytest.mark.parametrize("flag", ["--up", "--down", "--both"])
def test_lineage_json_is_the_graph_of_the_api(pipeline, flag):
    store, _, _ = pipeline
    direction = {"--up": "upstream", "--down": "downstream", "--both": "both"}[flag]
    out = cli(store, "lineage", "clean:v0", flag, "--format", "json").output
    assert json.loads(out) == json.loads(store.lineage("clean:v0", direction=direction).to_json())


def test_lineage_tree_dot_and_mermaid(pipeline):
    store, prepare, train = pipeline
    tree = cli(store, "lineage", "model:best").output.splitlines()
    assert tree[0] == "model:v0 (best)" and "<- train [lightning.fit, finished]" in tree[1]
    assert "<- raw:v0" in tree[4]
    assert cli(store, "lineage", "model:best", "-f", "dot").output.startswith("digraph lineage {")
    mermaid = cli(store, "lineage", "model:best", "--format", "mermaid").output
    assert mermaid.startswith("flowchart LR") and '(["clean:v0"])' in mermaid


def test_lineage_depth_limits_the_runs(pipeline):
    store, _, train = pipeline
    graph = json.loads(cli(store, "--json", "lineage", "model:v0", "--depth", "1").output)
    assert [n["run_id"] for n in graph["nodes"] if n["type"] == "run"] == [train.id]
    assert cli(store, "lineage", "model:v0", "--depth", "-1", code=2).exit_code == 2


def test_lineage_of_an_unknown_spec_is_one_line(pipeline):
    store, _, _ = pipeline
    result = cli(store, "lineage", "model:v9", code=3)
    assert result.stderr.strip() == "plait: error: 'model' has no version v9 (it has v0, aliases: best)"


def test_runs_lists_and_filters(pipeline):
    store, prepare, train = pipeline
    text = cli(store, "runs").output.splitlines()
    assert text[0].split() == ["ID", "NAME", "KIND", "STATUS", "STARTED", "IN", "OUT"]
    assert [line.split()[1] for line in text[1:]] == ["train", "prepare", store.get("raw:v0").produced_by.name]
    assert [r["id"] for r in json.loads(cli(store, "--json", "runs", "--name", "prepare").output)] == [prepare.id]
    assert [r["name"] for r in json.loads(cli(store, "--json", "runs", "--kind", "lightning.fit").output)] == ["train"]
    assert cli(store, "runs", "--name", "nothing").output.strip() == "no runs yet"


def test_run_show_prints_config_environment_inputs_and_outputs(pipeline):
    store, prepare, _ = pipeline
    text = cli(store, "run", "show", prepare.id[:20]).output
    assert text.splitlines()[0] == f"prepare  [manual]  finished  {prepare.id}"
    assert 'config    {"split": 0.9}' in text
    assert "input     raw:v0" in text and "output    clean:v0" in text
    data = json.loads(cli(store, "--json", "run", "show", prepare.id).output)
    assert (data["inputs"], data["outputs"], data["status"]) == (["raw:v0"], ["clean:v0"], "finished")
    assert cli(store, "run", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", code=3).stderr.startswith("plait: error: no run")


def test_plugins_lists_the_loaded_plugins(pipeline):
    store, _, _ = pipeline
    assert json.loads(cli(store, "--json", "plugins").output) == [
        {"name": "plait.builtin", "module": str(Path(plait.__file__).parent / "builtin.py")},
        {"name": "plait.webhooks", "module": str(Path(plait.__file__).parent / "webhooks.py")},
    ]
    assert cli(store, "plugins").output.split()[:3] == ["PLUGIN", "MODULE", "plait.builtin"]


def test_reindex_rebuilds_the_index_and_keeps_the_graph(pipeline):
    store, _, _ = pipeline
    before = store.lineage("model:best", direction="both").to_json()
    assert cli(store, "reindex").output.strip() == "indexed 3 versions"
    assert plait.Store(store.url).lineage("model:best", direction="both").to_json() == before


def test_compact_packs_old_days_and_the_rebuilt_index_is_the_same(pipeline):
    import time

    from ulid import ULID

    from plait.base.ids import ulid_time, utcnow
    from plait.formats import records as R

    store, _, _ = pipeline
    three_days_ago = str(ULID.from_timestamp(time.time() - 3 * 86_400))
    store.append_event(R.Event(id=three_days_ago, kind=R.ALIAS_SET, time=utcnow(), user="past",
                               data={"name": "raw", "alias": "first", "number": 0, "old": None}))
    before = store.lineage("model:best", direction="both").to_json()
    report = json.loads(cli(store, "--json", "compact").output)
    day = f"{ulid_time(three_days_ago):%Y-%m-%d}"
    assert report["days"] == [day] and report["events"] == report["deleted"] == 1
    assert cli(store, "compact").output.startswith("packed 0 events of 0 days")
    assert cli(store, "reindex").output.strip() == "indexed 3 versions"
    fresh = plait.Store(store.url)
    assert fresh.get("raw:first").spec == "raw:v0"
    assert fresh.lineage("model:best", direction="both").to_json() == before


def test_history_replays_alias_and_metadata_changes_with_time_run_and_old_new(pipeline):
    store, _, train = pipeline
    with plait.run("promote", store=store) as promote:
        store.get("model:v0").update(description="first model", metadata={"acc": 0.91})
        store.get("model:v0").update(metadata={"acc": 0.93})
    store.log(b"weights 2", name="model")
    store.set_alias("model:v1", "best")
    entries = store.get("model:v0").history()
    assert [e.kind for e in entries] == ["version.logged", "alias.set", "version.updated", "version.updated", "alias.set"]
    assert [e.run for e in entries[:4]] == [train.id, train.id, promote.id, promote.id]
    assert entries[2].detail["old"] == {"description": "", "metadata": {}}
    assert entries[2].detail["new"] == {"description": "first model", "metadata": {"acc": 0.91}}
    assert entries[3].detail == {"number": 0, "old": {"metadata": {"acc": 0.91}}, "new": {"metadata": {"acc": 0.93}}}
    assert entries[4].detail == {"alias": "best", "number": 1, "old": 0}  # the alias moved away
    assert all(a.time <= b.time for a, b in zip(entries, entries[1:]))
    replay = json.loads(cli(store, "--json", "history", "model:v0").output)
    assert [(h["kind"], h["run"], h["detail"]) for h in replay] == [(e.kind, e.run, e.detail) for e in entries]
    assert "alias 'best' set" in cli(store, "history", "model:v0").output
