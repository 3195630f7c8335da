"""Team mode in a real headless Chromium: logging in and out, what each role may do (the page and
the API), CSRF and Host checks on a non-loopback bind, and the pages a team reads: a flow's
whole subtree, metrics, the table viewer, the gallery, usage snippets, comparisons. Screenshots
of each page go to tests/ui/screenshots/ for review."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("chromium")]
expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser tests").expect
pytest.importorskip("argon2", reason="logins need the ui extra: pip install 'plait[ui]'")

PASSWORDS = {"vera": "viewer-pass-1", "ed": "editor-pass-1", "ada": "admin-pass-1"}


@pytest.fixture(scope="module")
def users_template(tmp_path_factory):
    from plait.ui.users import UsersFile

    path = tmp_path_factory.mktemp("team-users") / "users.json"
    users = UsersFile(path)
    for (name, password), role in zip(PASSWORDS.items(), ("viewer", "editor", "admin")):
        users.add(name, role, password)
    return path


@pytest.fixture
def team_server(team_demo, users_template, tmp_path, serve_app):
    """The team store served with logins, bound to every address, answering only to plait.test and 127.0.0.1."""
    from plait.ui.app import create_app
    from plait.ui.auth import AuthConfig
    from plait.ui.users import UsersFile

    path = tmp_path / "users.json"
    shutil.copy(users_template, path)
    store, marks = team_demo
    app = create_app(store, trusted_hosts=("plait.test", "127.0.0.1"), auth=AuthConfig(mode="users", users=UsersFile(path)))
    with serve_app(app, host="0.0.0.0") as url:
        yield url.replace("127.0.0.1", "plait.test"), store, marks


def login(page, url: str, name: str) -> None:
    page.goto(url + "/login")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORDS[name])
    page.click("#login-submit")
    expect(page.locator("#who-name")).to_have_text(name)


def test_login_and_logout(team_server, page, screenshots):
    url, _, _ = team_server
    page.goto(url + "/v/raw/1")
    expect(page).to_have_url(url + "/login?next=%2Fv%2Fraw%2F1")
    page.fill("#login-name", "ed")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("wrong user name or password")
    page.screenshot(path=str(screenshots / "login.png"))
    page.fill("#login-password", PASSWORDS["ed"])
    page.click("#login-submit")
    expect(page.locator("h1").first).to_contain_text("raw:v1")  # back where they were going
    assert page.locator("#who-role").text_content() == "editor"
    cookie = next(c for c in page.context.cookies() if c["name"] == "plait_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # a script cannot read the session
    page.click("#logout")
    expect(page).to_have_url(url + "/login")
    assert page.evaluate("fetch('/api/artifacts').then(r => r.status)") == 401
    assert page.errors == []


def test_a_viewer_cannot_edit_in_the_page_nor_through_the_api(team_server, page):
    url, store, _ = team_server
    login(page, url, "vera")
    page.goto(url + "/v/raw/1")
    page.locator("#notes").wait_for()
    assert page.locator("#notes-edit, #meta-form, #alias-form, #tag-form, [data-move], [data-remove], [data-untag]").count() == 0
    assert page.locator("#edit-mode").text_content() == "read-only"
    # the page hides the buttons; the API refuses the write itself, with the session's own CSRF token
    status = page.evaluate("""() => fetch('/api/session').then(r => r.json()).then(s => fetch('/api/versions/raw/1/description', {
        method: 'PUT', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf}, body: JSON.stringify({description: 'mine'})
    }).then(r => r.json().then(b => [r.status, b.error])))""")
    assert status == [403, "vera is a viewer; to change notes takes an editor (ask an admin: `plait users role NAME editor`)"]
    assert store.get("raw:v1").description == ""


def test_an_editor_moves_an_alias_and_edits_a_note(team_server, page, screenshots):
    url, store, _ = team_server
    login(page, url, "ed")
    page.goto(url + "/v/raw/0")
    page.click("[data-move='prod']")
    expect(page.locator("#alias-history tbody tr").first).to_contain_text("moved v1 \u2192 v0")
    assert page.locator("#alias-history tbody tr").first.locator("td").nth(3).text_content() == "ed"
    assert store.get("raw:prod").number == 0
    page.click("#notes-edit")
    page.fill("#notes-editor", "Rolled **back**: v1 had duplicates.")
    page.click("#notes-save")
    expect(page.locator("#notes strong")).to_have_text("back")
    page.fill("#meta-key", "reviewed")
    page.fill("#meta-value", "true")
    page.click("#meta-set")
    expect(page.locator("#metadata")).to_contain_text('"reviewed": true')
    assert [(h.kind, h.user) for h in store.get("raw:v0").history()][-3:] == [
        ("alias.set", "ed"), ("version.updated", "ed"), ("version.updated", "ed")]
    expect(page.locator("#history")).to_contain_text("ed")
    page.screenshot(path=str(screenshots / "version-edited.png"), full_page=True)
    assert page.errors == []


def test_an_editor_tags_versions_and_the_listings_filter_by_tag(team_server, page, screenshots):
    url, store, _ = team_server
    store.get("raw:v0").add_tags("archived")
    login(page, url, "ed")
    page.goto(url + "/v/raw/1")
    expect(page.locator("#tags")).to_contain_text("No tags.")
    page.fill("#tag-name", "reviewed, eu")
    page.click("#tag-add")
    expect(page.locator("#tags .badge.tag")).to_have_text(["eu", "reviewed"])
    expect(page.locator("#version-tags .badge.tag")).to_have_text(["eu", "reviewed"])
    expect(page.locator("#history tbody tr").first).to_contain_text("tags +eu +reviewed")
    assert page.locator("#history tbody tr").first.locator("td").nth(3).text_content() == "ed"
    page.click("[data-untag='eu']")
    expect(page.locator("#tags .badge.tag")).to_have_text(["reviewed"])
    expect(page.locator("#history tbody tr").first).to_contain_text("tags \u2212eu")
    page.fill("#tag-name", "not a tag!")
    page.click("#tag-add")
    expect(page.locator("#tag-status")).to_contain_text("tag")
    assert store.get("raw:v1").tags == ("reviewed",)
    assert [(h.kind, h.user, h.detail["added"], h.detail["removed"]) for h in store.get("raw:v1").history()
            if h.kind == "tags.changed"] == [
        ("tags.changed", "ed", ["eu", "reviewed"], []), ("tags.changed", "ed", [], ["eu"])]
    page.screenshot(path=str(screenshots / "version-tags.png"), full_page=True)
    # the artifact's versions show their tags and filter by one; a tag badge opens that filter
    page.click("#tags a")
    expect(page).to_have_url(url + "/a/raw?tag=reviewed")
    expect(page.locator("#version-list tbody tr")).to_have_count(1)
    expect(page.locator("#version-list tbody tr").first).to_contain_text("reviewed")
    page.select_option("#tag-filter", "archived")
    expect(page.locator("#version-list tbody tr")).to_have_count(1)
    expect(page.locator("#version-list tbody tr").first).to_contain_text("v0")
    page.select_option("#tag-filter", "")
    expect(page.locator("#version-list tbody tr")).to_have_count(2)
    # the artifacts list filters to the names with a version carrying the tag
    page.goto(url + "/?tag=reviewed")
    expect(page.locator("#artifact-list tbody tr")).to_have_count(1)
    expect(page.locator("#artifact-list tbody tr").first).to_contain_text("raw")
    page.select_option("#tag-filter", "")
    expect(page.locator("#artifact-list tbody tr")).not_to_have_count(1)
    assert page.errors == []


def test_only_an_admin_moves_a_protected_alias(team_server, page, browser, screenshots):
    url, store, _ = team_server
    store.set_setting("aliases.protected", ["prod"])
    login(page, url, "ed")
    page.goto(url + "/v/raw/0")
    expect(page.locator(".aliases .badge.protected")).to_have_text("protected")
    expect(page.locator("[data-move='prod']")).to_be_disabled()
    expect(page.locator("[data-remove='prod']")).to_be_disabled()
    # a disabled button is the page's courtesy: the API itself refuses the editor
    status = page.evaluate("""() => fetch('/api/session').then(r => r.json()).then(s => fetch('/api/artifacts/raw/aliases', {
        method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf}, body: JSON.stringify({alias: 'prod', number: 0})
    }).then(r => r.json().then(b => [r.status, b.error])))""")
    assert status[0] == 403 and "raw:prod is protected" in status[1]
    assert store.get("raw:prod").number == 1
    admin = browser.new_page()
    login(admin, url, "ada")
    admin.goto(url + "/v/raw/0")
    admin.click("[data-move='prod']")
    expect(admin.locator("#alias-history tbody tr").first).to_contain_text("moved v1 \u2192 v0 (protected)")
    expect(admin.locator("#history")).to_contain_text("alias \u201cprod\u201d set (moved from v1) (protected)")
    assert admin.locator("#alias-history tbody tr").first.locator("td").nth(3).text_content() == "ada"
    assert store.get("raw:prod").number == 0
    admin.screenshot(path=str(screenshots / "protected-alias.png"), full_page=True)
    admin.close()
    assert page.errors == []


def test_csrf_and_host_checks_hold_off_loopback(team_server, page, browser):
    url, store, _ = team_server
    login(page, url, "ed")
    # the session cookie without the CSRF token (a forged form or script elsewhere) changes nothing
    status = page.evaluate("""() => fetch('/api/versions/raw/1/description', {method: 'PUT',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({description: 'forged'})}).then(r => r.status)""")
    assert status == 403 and store.get("raw:v1").description == ""
    # a request with the session and its token but from another site's page is refused by its Origin
    import httpx

    port = url.rsplit(":", 1)[1]
    token = page.evaluate("fetch('/api/session').then(r => r.json()).then(s => s.csrf)")
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "plait_session")
    r = httpx.put(f"http://127.0.0.1:{port}/api/versions/raw/1/description", json={"description": "x"},
                  headers={"Host": f"plait.test:{port}", "X-CSRF-Token": token, "Origin": "http://evil.example",
                           "Cookie": f"plait_session={cookie}"})
    assert r.status_code == 403 and "a page from http://evil.example may not change" in r.json()["error"]
    assert store.get("raw:v1").description == ""
    # another name for this machine (DNS rebinding) is not answered
    other = browser.new_context().new_page()
    other.goto(f"http://localhost:{port}/api/session")
    assert "this dashboard answers only to" in other.content()
    other.close()


def test_a_flow_run_shows_its_whole_subtree_and_metrics(team_server, page, screenshots):
    url, _, marks = team_server
    login(page, url, "vera")
    page.goto(f"{url}/r/{marks['flow']}")
    page.locator("#subtree").wait_for()
    assert page.locator("#subtree-inputs li").evaluate_all("ls => ls.map(l => l.dataset.spec)") == ["raw:v1"]
    outputs = page.locator("#subtree-outputs li").evaluate_all("ls => ls.map(l => l.dataset.spec)")
    assert outputs[0] == "team-data:v0" and "team-metrics:v0" in outputs and len(outputs) == 14
    expect(page.locator("#subtree-outputs li[data-spec='team-data:v0'] .badge.inner")).to_have_text("intermediate")
    # the flow is a box around its tasks; the failed attempt and the checkpoints nobody used stay out of the way
    page.locator("#graph svg g.group").first.wait_for()
    assert page.locator(f"#graph g.group[data-run='{marks['flow']}']").count() == 1
    assert page.locator(f"#graph g.node[data-id='run:{marks['failed']}']").count() == 0
    expect(page.locator("#graph-hidden")).to_have_text("(1 failed run hidden)")
    assert page.locator(f"#graph g.node.cluster[data-id='cluster:run:{marks['train']}:classifier']").count() == 1
    page.screenshot(path=str(screenshots / "flow-run.png"), full_page=True)
    page.check("#show-failed")
    expect(page.locator(f"#graph g.node.failed[data-id='run:{marks['failed']}']")).to_have_count(1)
    page.click("#graph-collapse-all")
    expect(page.locator(f"#graph g.node.group[data-id='group:{marks['flow']}']")).to_have_count(1)
    page.click(f"#graph g.node.group[data-id='group:{marks['flow']}']")  # a collapsed flow expands on a click
    expect(page.locator(f"#graph g.group[data-run='{marks['flow']}']")).to_have_count(1)
    page.goto(f"{url}/r/{marks['train']}")
    page.locator("#run-metrics").wait_for()
    assert page.locator("#run-metrics td").all_text_contents() == ["val_acc", "0.91", "val_loss", "0.0833"]
    page.screenshot(path=str(screenshots / "run.png"), full_page=True)
    assert page.errors == []


def test_tables_gallery_usage_and_comparison(team_server, page, screenshots):
    url, _, marks = team_server
    login(page, url, "vera")
    page.goto(url + "/v/team-data/0")
    page.locator("#file-list").wait_for()
    page.click("button[data-table='features.parquet']")
    page.locator("#table-view table").wait_for()
    assert page.locator("#table-view th").count() == 12  # 65 columns, shown twelve at a time
    assert page.locator("#table-view th").first.text_content() == "feature_00double"
    box = page.locator("#table-view").bounding_box()
    assert box["width"] <= 1360 and page.evaluate("document.documentElement.scrollWidth") <= 1360  # the page does not widen
    page.click("#table-next")
    expect(page.locator("#table-rows")).to_have_text("rows 51\u2013100")
    page.screenshot(path=str(screenshots / "table.png"), full_page=True)
    page.click("#file-list a.folder[data-folder='images']")
    page.click("#open-gallery")
    expect(page.locator("#gallery img")).to_have_count(6)
    page.screenshot(path=str(screenshots / "gallery.png"), full_page=True)
    assert 'plait.get("team-data:v0")' in page.locator("#usage").text_content()
    assert "plait get team-data:v0 team-data/" in page.locator("#usage").text_content()
    if "hf" in marks:
        page.goto(url + "/v/reviews-hf/0")
        page.click("#open-dataset")
        page.locator("#table-view table").wait_for()
        assert page.locator("#table-view tbody tr").first.locator("td").all_text_contents() == ["review 0", "0"]
        assert "from plait.integrations.huggingface import load" in page.locator("#usage").text_content()
    page.goto(url + "/a/classifier")
    page.locator("#version-list input.pick").first.wait_for()
    page.locator("#version-list input.pick").nth(0).check()
    page.locator("#version-list input.pick").nth(11).check()
    page.click("#compare-selected")
    page.locator("table.compare").first.wait_for()
    differs = page.locator("table.compare[data-section='Metadata'] tr.differs td:first-child").all_text_contents()
    assert differs == ["epoch", "val_loss"]
    for section in ("Facts", "Metadata", "Metrics", "Config"):  # every table names its versions
        heads = page.locator(f"table.compare[data-section='{section}'] th").all_text_contents()
        assert heads[1].startswith("classifier:v") and heads[2].startswith("classifier:v"), section
    page.screenshot(path=str(screenshots / "compare.png"), full_page=True)
    page.goto(url + "/a/classifier")
    page.locator("#graph svg g.node").first.wait_for()
    page.screenshot(path=str(screenshots / "artifact.png"), full_page=True)
    assert page.errors == []
