/* plait dashboard: a version's files as a folder tree, with previews, a paged table viewer and an
 * image gallery (window.PlaitFiles.browse). Tables and galleries read one page at a time. */
(function () {
  "use strict";
  var P = window.Plait, h = P.h, add = P.add, clear = P.clear, enc = P.enc, size = P.size, api = P.api, fail = P.fail,
    table = P.table, pager = P.pager;

  /* The folder tree of a version at `base` (/api/versions/<name>/<n>), opened at `folder`. */
  function browse(body, base, folder) {
    var crumbs = h("div", { "class": "crumbs folder-crumbs", id: "folder-crumbs" });
    var list = h("div", { id: "file-list" });
    var view = h("div", { id: "file-view", "class": "preview" });
    add(clear(body), [crumbs, list, view]);
    function open(path, offset) {
      folder = path;
      var parts = path ? path.split("/") : [];
      clear(crumbs);
      add(crumbs, h("a", { href: "#", "data-folder": "", onclick: function (ev) { ev.preventDefault(); open("", 0); } }, "files"));
      parts.forEach(function (p, i) {
        var target = parts.slice(0, i + 1).join("/");
        add(crumbs, [" / ", h("a", { href: "#", "data-folder": target, onclick: function (ev) { ev.preventDefault(); open(target, 0); } }, p)]);
      });
      api(base + "/tree?limit=200&path=" + enc(path) + "&offset=" + (offset || 0)).then(function (page) {
        var tools = h("div", { "class": "controls" });
        if (page.dataset) add(tools, h("button", { type: "button", id: "open-dataset", onclick: function () { showTable(view, base, path); } }, "view dataset as a table"));
        if (page.images) add(tools, h("button", { type: "button", id: "open-gallery", onclick: function () { showGallery(view, base, path, 0); } }, "gallery (" + page.images + " images)"));
        var rows = page.items.map(function (f) {
          if (f.type === "folder") {
            return [h("a", { href: "#", "class": "folder mono", "data-folder": f.path, onclick: function (ev) { ev.preventDefault(); open(f.path, 0); } }, f.name + "/"),
              size(f.size), f.files + " files" + (f.dataset ? " \u00b7 dataset" : ""), ""];
          }
          return [h("span", { "class": "mono" }, f.name), size(f.size), h("span", { "class": "mono muted", title: f.digest }, f.digest.slice(0, 12)), action(f)];
        });
        add(clear(list), [tools, page.items.length ? table(["Name", "Size", "", ""], rows, "grid files") : h("p", { "class": "muted" }, "Empty."),
          page.total > page.limit ? pager(page, function (o) { open(path, o); }) : null]);
      }).catch(fail(list));
    }
    function action(f) {
      if (f.kind === "reference") return h("span", { "class": "muted", title: f.reference }, "reference");
      if (f.kind === "binary") return h("span", { "class": "muted" }, "binary");
      if (f.kind === "table") return h("button", { type: "button", "class": "small", "data-table": f.path, onclick: function () { showTable(view, base, f.path); } }, "table");
      return h("button", { type: "button", "class": "small", "data-path": f.path, onclick: function () { showPreview(view, base, f.path); } }, "preview");
    }
    open(folder || "", 0);
  }

  function showPreview(out, base, path) {
    api(base + "/preview?path=" + enc(path)).then(function (p) {
      clear(out).appendChild(h("h3", {}, p.path, " ", h("span", { "class": "muted" }, size(p.size) + (p.truncated ? " \u00b7 first part only" : ""))));
      if (p.kind === "image") {
        add(out, p.too_large ? h("p", { "class": "muted" }, "Too large to preview.") : h("img", { src: p.url, alt: p.path, "class": "preview-image" }));
      } else if (p.kind === "csv") {
        var rows = p.rows || [];
        add(out, rows.length ? h("div", { "class": "table-scroll" }, table(rows[0], rows.slice(1), "grid csv")) : h("p", { "class": "muted" }, "Empty."));
      } else if (p.text !== undefined) {
        add(out, h("pre", { "class": "text-preview" }, p.text));
      } else {
        add(out, h("p", { "class": "muted" }, "No preview for this file."));
      }
    }).catch(fail(out));
  }

  /* One page of rows of a table file or dataset folder; columns page too, so a wide table never widens the page. */
  function showTable(out, base, path, state) {
    state = state || { offset: 0, limit: 50, column_offset: 0, columns: 12 };
    var q = "path=" + enc(path) + "&offset=" + state.offset + "&limit=" + state.limit + "&column_offset=" + state.column_offset + "&columns=" + state.columns;
    api(base + "/table?" + q).then(function (t) {
      function go(change) { showTable(out, base, path, Object.assign({}, state, change)); }
      var heads = t.columns.map(function (c) { return h("span", {}, c.name, h("br"), h("span", { "class": "col-type" }, c.type)); });
      var cells = t.rows.map(function (r) { return r.map(function (v) { return v === null ? h("span", { "class": "muted" }, "null") : String(v); }); });
      var more = t.total === null ? t.rows.length === state.limit : state.offset + state.limit < t.total;
      var lastCol = Math.min(t.column_offset + t.columns.length, t.column_count);
      add(clear(out), [
        h("h3", {}, path || "dataset", " ", h("span", { "class": "muted" }, t.format + " \u00b7 " + (t.total === null ? "rows: more than " + (state.offset + t.rows.length) : t.total + " rows") +
          " \u00b7 " + t.column_count + " columns \u00b7 read " + size(t.fetched))),
        h("div", { "class": "pager", id: "table-pager" },
          h("button", { type: "button", id: "table-prev", disabled: state.offset === 0, onclick: function () { go({ offset: Math.max(0, state.offset - state.limit) }); } }, "\u2190 rows"),
          h("span", { "class": "muted", id: "table-rows" }, t.rows.length ? "rows " + (state.offset + 1) + "\u2013" + (state.offset + t.rows.length) : "no rows here"),
          h("button", { type: "button", id: "table-next", disabled: !more, onclick: function () { go({ offset: state.offset + state.limit }); } }, "rows \u2192"),
          h("button", { type: "button", disabled: state.column_offset === 0, onclick: function () { go({ column_offset: Math.max(0, state.column_offset - state.columns) }); } }, "\u2190 columns"),
          h("span", { "class": "muted" }, "columns " + (t.column_offset + 1) + "\u2013" + lastCol + " of " + t.column_count),
          h("button", { type: "button", disabled: lastCol >= t.column_count, onclick: function () { go({ column_offset: state.column_offset + state.columns }); } }, "columns \u2192")),
        h("div", { "class": "table-scroll", id: "table-view" }, table(heads, cells, "grid data-table"))]);
    }).catch(fail(out));
  }

  function showGallery(out, base, path, offset) {
    api(base + "/gallery?limit=48&path=" + enc(path) + "&offset=" + offset).then(function (g) {
      var tiles = g.items.map(function (img) {
        var name = img.path.split("/").pop();
        return h("figure", { "class": "tile" }, img.too_large ? h("div", { "class": "muted too-large" }, "too large")
          : h("img", { src: img.url, alt: img.path, loading: "lazy", title: img.path + " (" + size(img.size) + ")" }), h("figcaption", { "class": "mono" }, name));
      });
      add(clear(out), [h("h3", {}, "Images in ", (path || "the version"), " ", h("span", { "class": "muted" }, g.total + " images")),
        h("div", { "class": "gallery", id: "gallery" }, tiles), g.total > g.limit ? pager(g, function (o) { showGallery(out, base, path, o); }) : null]);
    }).catch(fail(out));
  }

  window.PlaitFiles = { browse: browse, showTable: showTable, showGallery: showGallery, showPreview: showPreview };
})();
