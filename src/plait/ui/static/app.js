/* plait dashboard: draws each page from the URL with data from /api/ (helpers in core.js). */
(function () {
  "use strict";
  var P = window.Plait;
  var h = P.h, add = P.add, link = P.link, clear = P.clear, enc = P.enc, size = P.size, when = P.when, badges = P.badges,
    versionHref = P.versionHref, runHref = P.runHref, runLink = P.runLink, api = P.api, fail = P.fail, section = P.section,
    table = P.table, pager = P.pager, query = P.query, setQuery = P.setQuery;
  var main = document.getElementById("main");
  var info = { allow_edit: false, types: [], run_kinds: [], tags: [] };
  var PAGE = 50;

  // -- artifacts -------------------------------------------------------------------------------
  function artifactsPage() {
    var q = query(), state = { type: q.get("type") || "", q: q.get("q") || "", tag: q.get("tag") || "", offset: +(q.get("offset") || 0) };
    var typeSel = h("select", { id: "type-filter", "aria-label": "type", onchange: function () { state.type = typeSel.value; state.offset = 0; load(); } },
      h("option", { value: "" }, "all types"),
      info.types.map(function (t) { return h("option", { value: t.type, selected: t.type === state.type }, t.type + " (" + t.artifacts + ")"); }));
    var tagSel = tagFilter(info.tags, state.tag, function (t) { state.tag = t; state.offset = 0; load(); });
    var timer = null;
    var search = h("input", { id: "search", type: "search", placeholder: "search names", value: state.q, "aria-label": "search",
      oninput: function () { clearTimeout(timer); timer = setTimeout(function () { state.q = search.value; state.offset = 0; load(); }, 200); } });
    var out = h("div", { id: "artifact-list" });
    add(clear(main), [h("h1", {}, "Artifacts"), h("div", { "class": "controls" }, search, typeSel, tagSel), out]);
    function load() {
      setQuery({ type: state.type, q: state.q, tag: state.tag, offset: state.offset || "" });
      api("/api/artifacts?limit=" + PAGE + "&offset=" + state.offset + "&type=" + enc(state.type) + "&q=" + enc(state.q) + "&tag=" + enc(state.tag)).then(function (page) {
        var rows = page.items.map(function (a) {
          return [link("/a/" + enc(a.name), a.name, "name"), h("span", { "class": "type" }, a.type), a.versions,
            link(versionHref(a.name, a.latest_number), a.latest), badges(a.aliases, "alias"), size(a.size), when(a.updated_at)];
        });
        add(clear(out), [page.items.length ? table(["Name", "Type", "Versions", "Latest", "Aliases", "Size", "Updated"], rows)
          : h("p", { "class": "muted" }, "No artifacts match."), pager(page, function (o) { state.offset = o; load(); })]);
      }).catch(fail(out));
    }
    load();
  }

  // -- one artifact's versions -----------------------------------------------------------------
  function artifactPage(name) {
    var out = h("div", { id: "version-list" }), offset = +(query().get("offset") || 0), tag = query().get("tag") || "";
    var filter = h("span", {});
    var aliases = section("Aliases"), graph = section("Lineage of the latest version");
    var compareBtn = h("button", { type: "button", id: "compare-selected", disabled: true, onclick: function () {
      var specs = Array.prototype.map.call(out.querySelectorAll("input.pick:checked"), function (c) { return "specs=" + enc(c.value); });
      navigate("/compare?" + specs.join("&"));
    } }, "compare selected");
    add(clear(main), [h("p", { "class": "crumbs" }, link("/", "Artifacts"), " / "), h("h1", {}, name), h("div", { "class": "controls" }, compareBtn, filter), out, aliases, graph]);
    api("/api/tags?name=" + enc(name)).then(function (tags) {
      add(clear(filter), tagFilter(tags, tag, function (t) { tag = t; offset = 0; load(); }));
    }).catch(fail(filter));
    function load() {
      setQuery({ tag: tag, offset: offset || "" });
      api("/api/artifacts/" + enc(name) + "/versions?limit=" + PAGE + "&offset=" + offset + "&tag=" + enc(tag)).then(function (page) {
        var rows = page.items.map(function (v) {
          var pick = h("input", { type: "checkbox", "class": "pick", value: v.spec, "aria-label": "compare " + v.spec, onchange: function () {
            compareBtn.disabled = out.querySelectorAll("input.pick:checked").length < 2;
          } });
          return [pick, link(versionHref(name, v.number), v.version, "name"), badges(v.aliases), badges(v.tags, "tag"), size(v.size), v.file_count, runLink(v.run), when(v.created_at)];
        });
        add(clear(out), [page.items.length ? table(["", "Version", "Aliases", "Tags", "Size", "Files", "Produced by", "Created"], rows)
          : h("p", { "class": "muted" }, "No version carries tag \u201c" + tag + "\u201d."), pager(page, function (o) { offset = o; load(); })]);
      }).catch(fail(out));
    }
    load();
    drawAliases(aliases.body, name, null);
    drawGraph(graph.body, name + ":latest");
  }

  /* A select of tags (each with how many versions carry it) that calls pick(tag) on a change; "" is every tag. */
  function tagFilter(tags, current, pick) {
    if (!tags.length && !current) return null;
    var known = tags.some(function (t) { return t.tag === current; });
    var sel = h("select", { id: "tag-filter", "aria-label": "tag", onchange: function () { pick(sel.value); } },
      h("option", { value: "" }, "all tags"),
      current && !known ? h("option", { value: current, selected: true }, current + " (0)") : null,
      tags.map(function (t) { return h("option", { value: t.tag, selected: t.tag === current }, t.tag + " (" + t.versions + ")"); }));
    return sel;
  }

  /* An artifact's aliases, where each points, and every move (window.PlaitEdit adds the editing). */
  function drawAliases(body, name, version) {
    /* after a change: a version page is drawn again (its badges, lineage and history change too) */
    function changed() { if (version) versionPage(name, version.number); else drawAliases(body, name, version); }
    api("/api/artifacts/" + enc(name) + "/aliases").then(function (a) {
      var rows = a.aliases.map(function (x) {
        return [h("span", { "class": "badge alias" }, x.alias), x.protected ? h("span", { "class": "badge protected", title: "only an admin moves it" }, "protected") : "",
          link(versionHref(name, x.number), x.version), window.PlaitEdit ? window.PlaitEdit.aliasActions(x, name, version, changed) : ""];
      });
      var hist = a.history.slice(0, 50).map(function (e) {
        var what = e.kind === "set" ? (e.old !== null && e.old !== undefined ? "moved v" + e.old + " \u2192 v" + e.number : "set on v" + e.number) : "removed from v" + e.number;
        return [when(e.time), h("span", { "class": "badge alias" }, e.alias), what + (e.protected ? " (protected)" : ""), e.user, e.run ? link(runHref(e.run), e.run.slice(-8)) : "-"];
      });
      add(clear(body), [
        rows.length ? table(["Alias", "", "Version", ""], rows, "grid aliases") : h("p", { "class": "muted" }, "No aliases."),
        window.PlaitEdit ? window.PlaitEdit.aliasForm(name, version, changed) : null,
        hist.length ? [h("h3", {}, "Alias history"), h("div", { id: "alias-history" }, table(["Time", "Alias", "Change", "By", "Run"], hist))] : null]);
    }).catch(fail(body));
  }

  // -- one version -----------------------------------------------------------------------------
  function versionPage(name, number) {
    var base = "/api/versions/" + enc(name) + "/" + number;
    api(base).then(function (v) {
      var notes = section("Notes"), meta = section("Metadata"), files = section("Files"), hist = section("History"),
        diff = section("Diff and compare"), graph = section("Lineage"), use = section("Use it"), aliases = section("Aliases"), tags = section("Tags");
      add(clear(main), [
        h("p", { "class": "crumbs" }, link("/", "Artifacts"), " / ", link("/a/" + enc(name), name), " / "),
        h("h1", {}, v.spec, " ", h("span", { "class": "type" }, v.type), " ", badges(v.aliases), " ", h("span", { id: "version-tags" }, badges(v.tags, "tag"))),
        h("dl", { "class": "facts" },
          h("dt", {}, "Digest"), h("dd", { "class": "mono" }, v.digest),
          h("dt", {}, "Size"), h("dd", {}, size(v.size) + " in " + v.file_count + " files"),
          h("dt", {}, "Created"), h("dd", {}, when(v.created_at)),
          h("dt", {}, "Produced by"), h("dd", { id: "producers" }, runLink(v.run), v.run ? [" ", h("span", { "class": "status " + v.run.status }, v.run.status)] : "",
            v.producers.filter(function (r) { return !v.run || r.id !== v.run.id; }).map(function (r, i) {
              return [i ? ", " : "; also ", runLink(r), " ", h("span", { "class": "status " + r.status }, r.status)];
            })),
          h("dt", {}, "Used by"), h("dd", {}, v.used_by.length ? v.used_by.map(function (r, i) { return [i ? ", " : "", runLink(r)]; }) : "-")),
        use, notes, meta, tags, graph, files, aliases, diff, hist]);
      drawUsage(use.body, v.usage);
      drawNotes(notes.body, v, base);
      drawMetadata(meta.body, v, base);
      drawTags(tags.body, v, base);
      window.PlaitFiles.browse(files.body, base, "");
      drawAliases(aliases.body, name, v);
      drawHistory(hist.body, base);
      drawDiff(diff.body, base, name, number);
      drawGraph(graph.body, v.spec);
    }).catch(fail(main));
  }

  function drawUsage(body, usage) {
    add(body, h("div", { "class": "usage", id: "usage" }, usage.map(function (u) {
      return h("div", { "class": "snippet" }, h("div", { "class": "snippet-head" }, h("strong", {}, u.label), P.copyButton(u.code)), h("pre", {}, u.code));
    })));
  }

  function drawMetadata(body, v, base) {
    add(clear(body), Object.keys(v.metadata).length ? h("pre", { id: "metadata" }, JSON.stringify(v.metadata, null, 2)) : h("p", { "class": "muted" }, "No metadata."));
    if (window.PlaitEdit) add(body, window.PlaitEdit.metadataForm(v, base, function (nv) {
      v.metadata = nv.metadata; drawMetadata(body, v, base);
      var hist = document.getElementById("history");
      if (hist) drawHistory(hist.parentNode, base);
    }));
  }

  /* A version's tags; an editor adds and removes them (window.PlaitEdit), and the history shows who did. */
  function drawTags(body, v, base) {
    var list = (v.tags || []).map(function (t) {
      return h("span", { "class": "tag-item" }, link("/a/" + enc(v.name) + "?tag=" + enc(t), h("span", { "class": "badge tag" }, t)),
        window.PlaitEdit ? window.PlaitEdit.tagRemove(t, base, changed) : null);
    });
    function changed(nv) {
      v.tags = nv.tags; drawTags(body, v, base);
      add(clear(document.getElementById("version-tags")), badges(nv.tags, "tag"));
      var hist = document.getElementById("history");
      if (hist) drawHistory(hist.parentNode, base);
    }
    add(clear(body), [h("div", { id: "tags", "class": "tags" }, list.length ? list : h("span", { "class": "muted" }, "No tags.")),
      window.PlaitEdit ? window.PlaitEdit.tagForm(base, changed) : null]);
  }

  function drawNotes(body, v, base) {
    var view = h("div", { id: "notes", "class": "note" });
    function show(html) {
      clear(view);
      if (html) view.innerHTML = html;  // sanitised by the server (markdown-it without raw HTML, then nh3)
      else view.appendChild(h("p", { "class": "muted" }, "No notes yet."));
    }
    show(v.description_html);
    add(clear(body), view);
    if (!info.can_edit) {
      add(body, h("p", { "class": "muted small" }, info.auth === "none" ? "Read-only: start with `plait ui --allow-edit` to edit notes." : "Read-only: your role cannot edit."));
      return;
    }
    var current = v.description;
    var area = h("textarea", { id: "notes-editor", rows: 8, "aria-label": "notes (Markdown)" });
    var status = h("span", { "class": "muted", id: "notes-status", role: "status" });
    var editor = h("div", { "class": "editor", hidden: true }, area, h("div", { "class": "buttons" },
      h("button", { type: "button", id: "notes-save", onclick: save }, "Save"),
      h("button", { type: "button", onclick: function () { editor.hidden = true; edit.hidden = false; } }, "Cancel"), status));
    var edit = h("button", { type: "button", id: "notes-edit", onclick: function () { area.value = current; editor.hidden = false; edit.hidden = true; area.focus(); } }, "Edit notes");
    add(body, [edit, editor]);
    function save() {
      status.textContent = "saving\u2026";
      P.send(base + "/description", "PUT", { description: area.value })
        .then(function (nv) {
          current = nv.description; show(nv.description_html); editor.hidden = true; edit.hidden = false; status.textContent = "";
          var hist = document.getElementById("history");
          if (hist) drawHistory(hist.parentNode, base);
        }).catch(function (err) { status.textContent = err.message; status.className = "error"; });
    }
  }

  function drawHistory(body, base) {
    api(base + "/history").then(function (items) {
      var rows = items.slice().reverse().map(function (e) {
        var d = e.detail || {}, what = e.kind;
        if (e.kind === "alias.set") what = "alias \u201c" + d.alias + "\u201d set" + (d.old !== null && d.old !== undefined ? " (moved from v" + d.old + ")" : "");
        else if (e.kind === "alias.removed") what = "alias \u201c" + d.alias + "\u201d removed";
        else if (e.kind === "tags.changed") what = "tags " + (d.added || []).map(function (t) { return "+" + t; }).concat((d.removed || []).map(function (t) { return "\u2212" + t; })).join(" ");
        else if (e.kind === "expiry.set") what = d.expires_at ? "expires " + when(d.expires_at) : "expiry cleared";
        else if (e.kind === "version.deleted") what = "deleted" + (d.reason ? " (" + d.reason + ")" : "");
        else if (e.kind === "version.updated") what = "changed " + Object.keys(d.new || {}).join(", ");
        else if (e.kind === "version.logged") what = "logged";
        else if (e.kind === "version.used") what = "used";
        else if (e.kind === "version.produced") what = "produced again (same content)";
        if (d.protected) what += " (protected)";
        return [when(e.time), e.version, what, e.user, e.run ? link(runHref(e.run), e.run.slice(-8)) : "-"];
      });
      add(clear(body), h("div", { id: "history" }, table(["Time", "Version", "Change", "By", "Run"], rows)));
    }).catch(fail(body));
  }

  function drawDiff(body, base, name, number) {
    var input = h("input", { id: "diff-against", type: "text", placeholder: "another version: v" + Math.max(0, number - 1) + ", " + name + ":best, other:v2", value: number > 0 ? "v" + (number - 1) : "" });
    var out = h("div", { id: "diff-result" });
    function run() {
      api(base + "/diff?against=" + enc(input.value.trim())).then(function (d) {
        var rows = [].concat(
          d.added.map(function (f) { return [h("span", { "class": "add" }, "+"), f.path, size(f.size)]; }),
          d.removed.map(function (f) { return [h("span", { "class": "del" }, "\u2212"), f.path, size(f.size)]; }),
          d.modified.map(function (f) { return [h("span", { "class": "mod" }, "M"), f.path, size(f.old_size) + " \u2192 " + size(f.new_size)]; }));
        add(clear(out), [h("p", {}, d.old + " \u2192 " + d.new + ": " + d.added_count + " added, " + d.removed_count + " removed, " + d.modified_count + " modified, " + d.unchanged + " unchanged"),
          rows.length ? table(["", "Path", "Size"], rows) : null]);
      }).catch(fail(out));
    }
    function compare() {
      var other = input.value.trim();
      if (/^v\d+$/.test(other)) other = name + ":" + other;
      navigate("/compare?specs=" + enc(name + ":v" + number) + "&specs=" + enc(other));
    }
    add(clear(body), [h("form", { "class": "controls", onsubmit: function (ev) { ev.preventDefault(); run(); } }, input,
      h("button", { type: "submit" }, "Diff files"), h("button", { type: "button", id: "compare-side", onclick: compare }, "Compare side by side")), out]);
  }

  // -- lineage ---------------------------------------------------------------------------------
  /* The lineage of a version or run, drawn by the server (the same drawing as a notebook's);
   * state holds what the toolbar chose: direction, collapsed flows, deleted and failed shown. */
  function drawGraph(body, spec, state) {
    state = state || { direction: "both", producers: "preferred", collapsed: [], show_deleted: false, show_failed: false };
    var holder = h("div", { "class": "graph", id: "graph" });
    var zoom = null;
    function again(change) { drawGraph(body, spec, Object.assign({}, state, change)); }
    var dirSel = h("select", { "aria-label": "direction", onchange: function () { again({ direction: dirSel.value }); } },
      ["both", "upstream", "downstream"].map(function (d) { return h("option", { value: d, selected: d === state.direction }, d); }));
    var prodSel = h("select", { "aria-label": "producers", onchange: function () { again({ producers: prodSel.value }); } },
      [["preferred", "preferred producer"], ["all", "all producers"]].map(function (p) { return h("option", { value: p[0], selected: p[0] === state.producers }, p[1]); }));
    function check(id, key, label) {
      return h("label", { "class": "check" }, h("input", { type: "checkbox", id: id, checked: state[key], onchange: function (ev) {
        var c = {}; c[key] = ev.target.checked; again(c);
      } }), " " + label);
    }
    var hidden = h("span", { "class": "muted small", id: "graph-hidden" });
    var tools = h("div", { "class": "controls graph-tools" }, dirSel, prodSel,
      h("button", { type: "button", title: "zoom in", onclick: function () { if (zoom) zoom.zoom(1.25); } }, "+"),
      h("button", { type: "button", title: "zoom out", onclick: function () { if (zoom) zoom.zoom(0.8); } }, "\u2212"),
      h("button", { type: "button", id: "graph-fit", onclick: function () { if (zoom) zoom.fit(); } }, "fit"),
      h("button", { type: "button", id: "graph-collapse-all", onclick: function () { again({ collapsed: ["*"] }); } }, "collapse flows"),
      h("button", { type: "button", id: "graph-expand-all", onclick: function () { again({ collapsed: [] }); } }, "expand flows"),
      check("show-deleted", "show_deleted", "deleted"), check("show-failed", "show_failed", "failed"), hidden,
      link("/lineage?spec=" + enc(spec) + "&direction=" + state.direction + "&producers=" + state.producers, "open full page"),
      h("span", { "class": "legend" }, h("span", { "class": "key version" }, "version"), h("span", { "class": "key run" }, "run"),
        h("span", { "class": "key flow" }, "flow"), h("span", { "class": "key run failed" }, "failed run"), h("span", { "class": "key root" }, "this")));
    add(clear(body), [tools, holder]);
    var q = "spec=" + enc(spec) + "&direction=" + state.direction + "&producers=" + state.producers + "&collapsed=" + enc(state.collapsed.join(",")) +
      (state.show_deleted ? "&show_deleted=true" : "") + (state.show_failed ? "&show_failed=true" : "");
    api("/api/lineage/drawing?" + q).then(function (d) {
      var parts = [];
      if (d.hidden.deleted) parts.push(d.hidden.deleted + " deleted version" + (d.hidden.deleted > 1 ? "s" : ""));
      if (d.hidden.failed) parts.push(d.hidden.failed + " failed run" + (d.hidden.failed > 1 ? "s" : ""));
      hidden.textContent = parts.length ? "(" + parts.join(", ") + " hidden)" : "";
      zoom = window.PlaitGraph.show(holder, d, {
        height: body.classList.contains("full-graph") ? Math.round(window.innerHeight * 0.75) : null,
        onOpen: navigate,
        onToggle: function (runId, collapse) {
          var list = state.collapsed.filter(function (c) { return c !== runId && c !== "*"; });
          if (!collapse && state.collapsed.indexOf("*") >= 0) list = d.collapsed.filter(function (c) { return c !== runId; });
          if (collapse) list.push(runId);
          again({ collapsed: list });
        }
      });
    }).catch(fail(holder));
  }

  function lineagePage() {
    var q = query(), spec = q.get("spec") || "";
    var body = h("div", { "class": "full-graph" });
    add(clear(main), [h("h1", {}, "Lineage of ", spec), body]);
    if (spec) drawGraph(body, spec, { direction: q.get("direction") || "both", producers: q.get("producers") || "preferred", collapsed: [],
      show_deleted: false, show_failed: false });
  }

  // -- runs ------------------------------------------------------------------------------------
  function runsPage() {
    var q = query(), state = { name: q.get("name") || "", kind: q.get("kind") || "", offset: +(q.get("offset") || 0) };
    var kindSel = h("select", { "aria-label": "kind", onchange: function () { state.kind = kindSel.value; state.offset = 0; load(); } },
      h("option", { value: "" }, "all kinds"), info.run_kinds.map(function (k) { return h("option", { value: k, selected: k === state.kind }, k); }));
    var nameIn = h("input", { type: "search", placeholder: "run name (exact)", value: state.name, "aria-label": "run name",
      onchange: function () { state.name = nameIn.value.trim(); state.offset = 0; load(); } });
    var out = h("div", { id: "run-list" });
    add(clear(main), [h("h1", {}, "Runs"), h("div", { "class": "controls" }, nameIn, kindSel), out]);
    function load() {
      setQuery({ name: state.name, kind: state.kind, offset: state.offset || "" });
      api("/api/runs?limit=" + PAGE + "&offset=" + state.offset + "&name=" + enc(state.name) + "&kind=" + enc(state.kind)).then(function (page) {
        var rows = page.items.map(function (r) {
          return [link(runHref(r.id), r.name, "name"), r.kind, h("span", { "class": "status " + r.status }, r.status), when(r.started_at), r.inputs, r.outputs, h("span", { "class": "mono muted" }, r.id)];
        });
        add(clear(out), [table(["Name", "Kind", "Status", "Started", "In", "Out", "Id"], rows), pager(page, function (o) { state.offset = o; load(); })]);
      }).catch(fail(out));
    }
    load();
  }

  function vlist(list, extra) {
    return list.length ? h("ul", { "class": "plain" }, list.map(function (v) {
      return h("li", { "data-spec": v.spec }, link(versionHref(v.name, v.number), v.spec), " ", h("span", { "class": "type" }, v.type), " ",
        badges(v.aliases), v.deleted ? h("span", { "class": "badge deleted" }, "deleted") : null, extra ? extra(v) : null);
    })) : h("p", { "class": "muted" }, "none");
  }
  function keyValues(obj, id) {
    var keys = Object.keys(obj || {});
    return keys.length ? table(["Key", "Value"], keys.map(function (k) { var v = obj[k]; return [h("span", { "class": "mono" }, k), typeof v === "object" ? JSON.stringify(v) : String(v)]; }), "grid kv")
      : h("p", { "class": "muted", id: id }, "none recorded");
  }

  function runPage(id) {
    api("/api/runs/" + enc(id)).then(function (r) {
      var graph = section("Lineage"), io = section("Inputs and outputs"), metrics = section("Metrics");
      function via(v) { return h("span", { "class": "muted small" }, " via ", link(runHref(v.via), v.via.slice(-8))); }
      function by(v) { return [h("span", { "class": "muted small" }, " by ", link(runHref(v.run.id), v.run.name)), v.intermediate ? h("span", { "class": "badge inner", title: "used again inside" }, "intermediate") : null]; }
      var inputs = h("div", { id: "run-inputs" }, h("h3", {}, "Inputs"), vlist(r.inputs),
        r.inherited.length ? [h("h4", {}, "From the runs around it"), vlist(r.inherited, via)] : null);
      if (!r.subtree || r.inputs.length || r.outputs.length || r.inherited.length) {
        add(io.body, h("div", { "class": "columns" }, inputs, h("div", { id: "run-outputs" }, h("h3", {}, "Outputs"), vlist(r.outputs))));
      }
      if (r.subtree) {
        add(io.body, [h("h3", {}, "Whole flow: " + r.subtree.runs + " runs"), h("div", { "class": "columns", id: "subtree" },
          h("div", { id: "subtree-inputs" }, h("h4", {}, "Read from outside"), vlist(r.subtree.inputs, by)),
          h("div", { id: "subtree-outputs" }, h("h4", {}, "Logged inside"), vlist(r.subtree.outputs, by)))]);
      }
      add(metrics.body, h("div", { id: "run-metrics" }, keyValues(r.metrics, "no-metrics")));
      var conf = section("Config"), env = section("Environment"), summary = section("Summary");
      add(conf.body, h("div", { id: "run-config" }, keyValues(r.config)));
      add(summary.body, h("pre", {}, JSON.stringify(r.summary, null, 2)));
      add(env.body, h("pre", {}, JSON.stringify(r.info, null, 2)));
      add(clear(main), [
        h("p", { "class": "crumbs" }, link("/runs", "Runs"), " / "),
        h("h1", {}, r.name, " ", h("span", { "class": "type" }, r.kind), " ", h("span", { "class": "status " + r.status }, r.status)),
        h("dl", { "class": "facts" },
          h("dt", {}, "Id"), h("dd", { "class": "mono" }, r.id),
          h("dt", {}, "Started"), h("dd", {}, when(r.started_at) + (r.ended_at ? "  \u2192  " + when(r.ended_at) : "")),
          h("dt", {}, "Parent"), h("dd", {}, r.parent ? link(runHref(r.parent), r.parent) : "-"),
          h("dt", {}, "Children"), h("dd", {}, r.children.length ? r.children.map(function (c, i) { return [i ? ", " : "", runLink(c)]; }) : "-"),
          r.error ? [h("dt", {}, "Error"), h("dd", { "class": "error" }, r.error)] : null),
        io, metrics, graph, conf, summary, env]);
      drawGraph(graph.body, "run:" + r.id);
    }).catch(fail(main));
  }

  // -- versions side by side --------------------------------------------------------------------
  function comparePage() {
    var specs = query().getAll("specs");
    add(clear(main), [h("h1", {}, "Compare"), h("p", { "class": "muted" }, specs.join(" \u00b7 "))]);
    if (!specs.length) return;
    api("/api/compare?" + specs.map(function (s) { return "specs=" + enc(s); }).join("&")).then(function (c) {
      function head() {  // built for each table: a DOM node lives in one place only
        return [""].concat(c.versions.map(function (v) {
          return h("span", {}, link(versionHref(v.name, v.number), v.spec), v.run ? [h("br"), h("span", { "class": "muted small" }, v.run.name)] : null);
        }));
      }
      var blocks = c.sections.map(function (s) {
        var rows = s.rows.map(function (r) {
          return h("tr", { "class": r.differs ? "differs" : "" }, h("td", { "class": "mono" }, r.key), r.values.map(function (v) {
            return h("td", {}, v === null || v === undefined ? h("span", { "class": "muted" }, "\u2014") : typeof v === "object" ? JSON.stringify(v) : String(v));
          }));
        });
        return h("section", {}, h("h2", {}, s.title), rows.length ? h("div", { "class": "table-scroll" }, h("table", { "class": "grid compare", "data-section": s.title },
          h("thead", {}, h("tr", {}, head().map(function (x) { return h("th", {}, x); }))), h("tbody", {}, rows))) : h("p", { "class": "muted" }, "nothing recorded"));
      });
      add(main, [h("p", { "class": "muted small" }, "Rows that differ are highlighted."), blocks]);
    }).catch(fail(main));
  }

  // -- API docs (from FastAPI's OpenAPI document) ----------------------------------------------
  function apiDocsPage() {
    api("/api/openapi.json").then(function (doc) {
      var items = [];
      Object.keys(doc.paths).forEach(function (path) {
        Object.keys(doc.paths[path]).forEach(function (method) {
          var op = doc.paths[path][method];
          var params = (op.parameters || []).map(function (p) { return p.name + (p.required ? "" : "?"); }).join(", ");
          items.push(h("li", {}, h("code", {}, method.toUpperCase() + " " + path), " ", h("strong", {}, op.summary || ""),
            params ? h("span", { "class": "muted" }, " (" + params + ")") : null, h("p", { "class": "muted" }, op.description || "")));
        });
      });
      add(clear(main), [h("h1", {}, "JSON API"), h("p", {}, "The OpenAPI document: ", h("a", { href: "/api/openapi.json" }, "/api/openapi.json")), h("ul", { "class": "api" }, items)]);
    }).catch(fail(main));
  }

  // -- routing ---------------------------------------------------------------------------------
  function route() {
    var parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    window.scrollTo(0, 0);
    if (!parts.length) return artifactsPage();
    if (parts[0] === "a" && parts.length === 2) return artifactPage(parts[1]);
    if (parts[0] === "v" && parts.length === 3) return versionPage(parts[1], +parts[2]);
    if (parts[0] === "runs") return runsPage();
    if (parts[0] === "r" && parts.length === 2) return runPage(parts[1]);
    if (parts[0] === "lineage") return lineagePage();
    if (parts[0] === "api-docs") return apiDocsPage();
    if (parts[0] === "compare") return comparePage();
    clear(main).appendChild(h("p", { "class": "error" }, "No such page."));
  }
  function navigate(href) { history.pushState(null, "", href); route(); }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("a[data-nav]") : null;
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault(); navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", route);
  // -- login ---------------------------------------------------------------------------------------
  function loginPage() {
    var next = query().get("next") || "/";
    if (next.charAt(0) !== "/" || next.charAt(1) === "/") next = "/";  // only pages of this dashboard
    var name = h("input", { id: "login-name", type: "text", autocomplete: "username", "aria-label": "user name", required: true });
    var password = h("input", { id: "login-password", type: "password", autocomplete: "current-password", "aria-label": "password", required: true });
    var status = h("p", { "class": "error", id: "login-error", role: "alert" });
    add(clear(main), h("section", { "class": "login" }, h("h1", {}, "Log in"),
      h("form", { id: "login-form", onsubmit: function (ev) {
        ev.preventDefault();
        status.textContent = "";
        P.send("/api/login", "POST", { name: name.value, password: password.value }).then(function (s) {
          location.href = next;
        }).catch(function (err) { status.textContent = err.message; password.value = ""; password.focus(); });
      } }, h("label", {}, "User", name), h("label", {}, "Password", password), h("button", { type: "submit", id: "login-submit" }, "Log in"), status)));
    name.focus();
  }

  function showSession(s) {
    var who = document.getElementById("who");
    clear(who);
    if (s.auth === "none") return;
    if (s.user) {
      add(who, [h("span", { id: "who-name" }, s.user), " ", h("span", { "class": "badge role", id: "who-role" }, s.role),
        s.auth === "users" ? h("button", { type: "button", id: "logout", "class": "small", onclick: function () {
          P.send("/api/logout", "POST", {}).then(function () { location.href = "/login"; });
        } }, "log out") : null]);
    }
  }

  function start() {
    api("/api/session").then(function (s) {
      P.state.session = s; P.state.csrf = s.csrf;
      showSession(s);
      if (!s.user) {
        if (location.pathname !== "/login") location.href = "/login?next=" + enc(location.pathname + location.search);
        else loginPage();
        return null;
      }
      if (location.pathname === "/login") { location.href = "/"; return null; }
      return api("/api/store").then(function (st) {
        info = st;
        info.can_edit = s.can_edit;
        document.getElementById("store-url").textContent = st.url;
        var mode = document.getElementById("edit-mode");
        mode.textContent = s.can_edit ? "editing on" : "read-only";
        mode.className = "badge " + (s.can_edit ? "edit" : "ro");
        route();
      });
    }).catch(fail(main));
  }
  start();
})();
