"""Notebook views: versions, runs, lineage graphs, diffs and histories render as inline HTML with
no script, everything escaped, and read as short plain reprs."""

from __future__ import annotations

import re

import pytest

import plait

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


@pytest.fixture
def made(file_store):
    with plait.run("prepare", store=file_store, kind="<b>kind</b>", config={"lr": 0.1}) as run:
        raw = run.log(b"a,b\n1,2\n", name="raw", type="dataset", metadata={"note": "<script>x</script>"},
                      description="<img src=x onerror=alert(1)>")
        changed = run.log(b"a,b\n1,2\n3,4\n", name="raw", type="dataset", aliases=["prod"])
        run.finish(summary={"rows": 2})
    return file_store, raw, changed, run


def no_markup_from_data(html: str) -> None:
    assert "<script" not in html and "<img" not in html and "<b>" not in html


def test_a_version_is_a_card_and_a_short_repr(made):
    _, raw, changed, run = made
    html = raw._repr_html_()
    no_markup_from_data(html)
    assert "raw:v0" in html and "&lt;script&gt;x&lt;/script&gt;" in html and "&lt;img src=x" in html
    assert repr(changed) == "<ArtifactVersion raw:v1 dataset, 12 B in 1 files, aliases: latest, prod>"
    assert ">prod</span>" in changed._repr_html_()
    tagged = changed.add_tags("eu", "reviewed")
    assert repr(tagged) == "<ArtifactVersion raw:v1 dataset, 12 B in 1 files, aliases: latest, prod, tags: eu, reviewed>"
    assert ">eu</span>" in tagged._repr_html_() and ">reviewed</span>" in tagged._repr_html_()
    assert f"prepare (finished) {run.id}" in html


def test_a_version_card_names_its_preferred_producer_and_counts_the_others(file_store):
    with pytest.raises(RuntimeError), plait.run("train", store=file_store) as failed:
        failed.log(b"w", name="model")
        raise RuntimeError("boom")
    with plait.run("train", store=file_store) as rerun:
        version = rerun.log(b"w", name="model")
    html = version._repr_html_()
    assert f"train (finished) {rerun.id}" in html and "and 1 other run<" in html


def test_a_run_shows_config_summary_inputs_and_outputs(made):
    store, _, _, run = made
    record = store.get_run(run.id)
    html = record._repr_html_()
    no_markup_from_data(html)
    assert "&lt;b&gt;kind&lt;/b&gt;" in html and ">lr<" in html and ">rows<" in html and "raw:v1" in html
    assert ">finished</span>" in html


def test_a_lineage_graph_is_the_dashboards_drawing_inline(made):
    store, _, changed, run = made
    graph = store.lineage(changed.spec, direction="both")
    html = graph._repr_html_()
    no_markup_from_data(html)
    assert html.count("<svg") == 1 and "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert re.search(r'data-id="raw:v1"', html) and re.search(rf'data-id="run:{run.id}"', html)
    assert graph.to_svg().startswith("<svg") and repr(graph).startswith("<LineageGraph of raw:v1 (both): 1 versions, 1 runs, 1 edges")


def test_a_diff_and_a_history_are_tables(made):
    _, raw, changed, _ = made
    d = plait.diff(raw, changed)
    assert repr(d) == "<Diff raw:v0 -> raw:v1: 0 added, 0 removed, 1 modified, 0 unchanged>"
    assert "1 modified" in d._repr_html_() and "<table" in d._repr_html_()
    history = changed.history()
    assert isinstance(history, list) and [h.kind for h in history] == ["version.logged", "alias.set"]
    html = history._repr_html_()
    assert html.index("alias") < html.index("logged")  # newest first
