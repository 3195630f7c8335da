"""End to end in a real headless Chromium: the pages draw what the store holds, notes are edited
in the page and an injection through a note stays inert. Screenshots go to tests/ui/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("chromium")]
expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser tests").expect


@pytest.fixture
def served(demo, serve_app) -> Iterator[tuple[str, object, dict]]:
    """The demo store served with --allow-edit by uvicorn on a free loopback port."""
    from plait.ui.app import LOOPBACK_HOSTS, create_app

    store, marks = demo
    with serve_app(create_app(store, allow_edit=True, trusted_hosts=LOOPBACK_HOSTS)) as url:
        yield url, store, marks


def test_browse_edit_notes_and_see_the_graph(served, page, screenshots):
    url, store, marks = served
    page.goto(url + "/")
    rows = page.locator("#artifact-list tbody tr")
    rows.first.wait_for()
    names = rows.locator("a.name").all_text_contents()
    assert names == sorted(["clean", "eval-05", "eval-10", "eval-15", "ft", "instructions", "model", "raw"])
    assert page.locator("#edit-mode").text_content() == "editing on"

    page.fill("#search", "ev")
    expect(rows).to_have_count(3)
    page.fill("#search", "")
    page.select_option("#type-filter", "model")
    expect(rows).to_have_count(2)
    page.screenshot(path=str(screenshots / "artifacts.png"))

    page.click("#artifact-list a.name:text-is('ft')")
    page.locator("#version-list tbody tr").first.wait_for()
    assert page.locator("#version-list tbody tr").count() == 20
    page.click("#version-list a.name:text-is('v19')")
    expect(page.locator("h1").first).to_contain_text("ft:v19")
    page.locator("#graph svg g.node").first.wait_for()

    # the upstream graph of the last fine-tuning stage holds the whole chain back to the raw data
    ids = set(page.locator("#graph svg g.node").evaluate_all("ns => ns.map(n => n.getAttribute('data-id'))"))
    assert {f"ft:v{i}" for i in range(20)} <= ids
    assert {"raw:v1", "clean:v0", "model:v0", "instructions:v0", "instructions:v1"} <= ids
    assert {f"run:{s}" for s in marks["stages"]} <= ids
    assert page.locator("#graph g.node.root").get_attribute("data-id") == "ft:v19"
    graph = store.lineage("ft:v19", direction="both")
    assert ids == set(graph.versions) | {f"run:{r}" for r in graph.runs}
    assert page.locator("#graph g.node.run").count() == len(graph.runs) == 24  # ingest, prepare, train, collect-instructions and 20 stages
    assert "release" in page.locator("#graph g.node.root text.aliases").text_content()
    # drawn left to right: every edge goes from a node to one further right
    boxes = page.locator("#graph g.node").evaluate_all(
        "ns => Object.fromEntries(ns.map(n => [n.getAttribute('data-id'), n.transform.baseVal[0].matrix.e]))")
    edges = page.locator("#graph path.edge.used, #graph path.edge.produced").evaluate_all(
        "es => es.map(e => [e.getAttribute('data-source'), e.getAttribute('data-target')])")
    assert len(edges) == len([e for e in graph.edges if e[2] != "parent"]) and all(boxes[s] < boxes[t] for s, t in edges)
    assert page.locator("#graph svg").get_attribute("data-crossings") == "0"

    # notes: edit in the page, see them rendered, and find the change in the history
    page.click("#notes-edit")
    page.fill("#notes-editor", "## Release candidate\n\nTrained on **instructions:v1**.\n\n| metric | value |\n|---|---|\n| loss | 0.05 |")
    page.click("#notes-save")
    page.locator("#notes h2").wait_for()
    assert page.locator("#notes h2").text_content() == "Release candidate"
    assert page.locator("#notes strong").text_content() == "instructions:v1"
    assert page.locator("#notes td").all_text_contents() == ["loss", "0.05"]
    page.locator("#history td:text-is('changed description')").wait_for()
    assert store.get("ft:v19").description.startswith("## Release candidate")
    page.screenshot(path=str(screenshots / "version.png"), full_page=True)

    # nodes are links: the producing run of ft:v19 opens its run page
    page.click(f"#graph g.node[data-id='run:{marks['stages'][-1]}']")
    page.locator("#run-config").wait_for()
    assert page.locator("h1").first.text_content().startswith("finetune-19")
    assert page.locator("#run-config td").all_text_contents() == ["stage", "19"]
    assert page.dialogs == [] and page.errors == []


def test_full_page_graph_of_the_twenty_stage_chain(served, page, screenshots):
    url, _, marks = served
    page.goto(url + "/lineage?spec=model:v0&direction=downstream")
    page.locator("#graph svg g.node").first.wait_for()
    assert page.locator("#graph g.node.run").count() == 20
    labels = page.locator("#graph g.node.version text.label").all_text_contents()
    assert "ft:v0" in labels and "eval-10:v0" in labels
    page.screenshot(path=str(screenshots / "lineage.png"))
    assert page.errors == []


def test_previews_in_the_page(served, page):
    url, _, _ = served
    page.goto(url + "/v/raw/1")
    page.click("button[data-table='data.csv']")
    page.locator("#table-view table").wait_for()
    assert page.locator("#table-view th").all_text_contents() == ["idint64", "textstring", "labelint64"]
    assert page.locator("#table-view tbody tr").nth(2).locator("td").all_text_contents() == ["3", "a, quoted", "0"]
    page.click("#file-list a.folder[data-folder='images']")
    page.click("button[data-path='images/pixel.png']")
    page.locator("#file-view img").wait_for()
    expect(page.locator("#file-view img")).to_have_js_property("naturalWidth", 4)
    page.fill("#diff-against", "v0")
    page.click("#diff-result >> xpath=.. >> button[type=submit]")
    page.locator("#diff-result table").wait_for()
    assert "1 added, 1 removed, 1 modified, 3 unchanged" in page.locator("#diff-result p").text_content()


def test_injection_through_a_note_stays_inert(served, page, screenshots):
    url, store, _ = served
    attack = ('<img src=x onerror="alert(1)"><script>alert(2)</script>\n\n'
              '[click](javascript:alert(3)) <svg onload=alert(4)>\n\n<a href="#" onclick="alert(5)">x</a>')
    page.goto(url + "/v/clean/0")
    page.click("#notes-edit")
    page.fill("#notes-editor", attack)
    page.click("#notes-save")
    page.locator("#notes p").first.wait_for()
    page.wait_for_timeout(300)
    assert page.dialogs == [] and page.errors == []
    assert page.locator("#notes img, #notes script, #notes svg, #notes [onerror], #notes [onclick]").count() == 0
    assert page.locator("#notes a[href^='javascript']").count() == 0
    text = page.locator("#notes").text_content()
    assert '<img src=x onerror="alert(1)">' in text and "<script>alert(2)</script>" in text
    assert store.get("clean:v0").description == attack  # stored as written, shown as text
    page.reload()
    page.locator("#notes p").first.wait_for()
    page.wait_for_timeout(300)
    assert page.dialogs == [] and page.errors == []
    page.screenshot(path=str(screenshots / "injection.png"))


def test_read_only_dashboard_has_no_editor(demo, browser, serve_app):
    from plait.ui.app import create_app

    with serve_app(create_app(demo[0])) as url:
        pg = browser.new_page()
        pg.goto(f"{url}/v/model/0")
        pg.locator("#notes").wait_for()
        assert pg.locator("#notes-edit, #meta-form, #tag-form, #alias-form").count() == 0
        assert pg.locator("#edit-mode").text_content() == "read-only"
        pg.close()


def test_a_rerun_is_credited_and_every_producer_can_be_drawn(file_store, page, serve_app, screenshots):
    """A version made by a failed run and again by its rerun: the page names both, the drawing
    follows the rerun, and "all producers" with failed runs ticked draws the failed one too, marked."""
    import plait
    from plait.ui.app import LOOPBACK_HOSTS, create_app

    with pytest.raises(RuntimeError), plait.run("train", store=file_store) as failed:
        failed.log(b"weights", name="model", type="model")
        raise RuntimeError("out of memory")
    with plait.run("train", store=file_store) as rerun:
        rerun.log(b"weights", name="model", type="model")
    with serve_app(create_app(file_store, trusted_hosts=LOOPBACK_HOSTS)) as url:
        page.goto(f"{url}/v/model/0")
        expect(page.locator("#producers")).to_have_text(f"train · {rerun.id[-8:]} finished; also train · {failed.id[-8:]} failed")
        expect(page.locator(f"#graph g.node[data-id='run:{rerun.id}']")).to_have_count(1)
        assert page.locator(f"#graph g.node[data-id='run:{failed.id}']").count() == 0
        page.select_option("select[aria-label=producers]", "all")
        expect(page.locator("#graph-hidden")).to_have_text("(1 failed run hidden)")
        page.check("#show-failed")
        expect(page.locator(f"#graph g.node.failed[data-id='run:{failed.id}']")).to_have_count(1)
        expect(page.locator(f"#graph path.edge.produced-also[data-source='run:{failed.id}']")).to_have_count(1)
        page.screenshot(path=str(screenshots / "version-producers.png"), full_page=True)
        assert page.errors == []
