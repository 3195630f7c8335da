/* plait dashboard: the helpers every page script shares (window.Plait).
 * Every value from the store goes into the DOM with textContent (via h()); the only HTML
 * inserted as HTML is a note's description_html, which the server sanitised with nh3. */
(function () {
  "use strict";
  var state = { csrf: null };
  function h(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    });
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  function link(href, text, cls) { return h("a", { href: href, "data-nav": true, "class": cls }, text); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function enc(s) { return encodeURIComponent(s); }
  function size(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
  }
  function when(iso) { return iso ? String(iso).replace("T", " ").slice(0, 19) : "-"; }
  function badges(list, cls) { return (list || []).map(function (a) { return h("span", { "class": "badge " + (cls || (a === "latest" ? "latest" : "alias")) }, a); }); }
  function versionHref(name, number) { return "/v/" + enc(name) + "/" + number; }
  function runHref(id) { return "/r/" + enc(id); }
  function runLink(run) { return run ? link(runHref(run.id), run.name + " \u00b7 " + run.id.slice(-8)) : h("span", { "class": "muted" }, "-"); }

  /* fetch JSON; a write carries the session's CSRF token (the server refuses a write without it). */
  function api(path, options) {
    options = options || {};
    if (options.method && options.method !== "GET") {
      options.headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
      if (state.csrf) options.headers["X-CSRF-Token"] = state.csrf;
    }
    return fetch(path, options).then(function (r) {
      if (r.status === 401 && location.pathname !== "/login") {
        location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      }
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.error || body.detail || ("HTTP " + r.status));
        return body;
      });
    });
  }
  function fail(where) {
    return function (err) { clear(where).appendChild(h("p", { "class": "error", role: "alert" }, err.message)); };
  }
  function section(title) {
    var body = h("div", { "class": "section-body" });
    var s = h("section", {}, h("h2", {}, title), body);
    s.body = body;
    return s;
  }
  function table(headers, rows, cls) {
    return h("table", { "class": cls || "grid" }, h("thead", {}, h("tr", {}, headers.map(function (t) { return h("th", {}, t); }))),
      h("tbody", {}, rows.map(function (cells) { return h("tr", {}, cells.map(function (c) { return h("td", {}, c); })); })));
  }
  function pager(page, go) {
    var last = Math.min(page.offset + page.limit, page.total);
    return h("div", { "class": "pager" },
      h("button", { type: "button", disabled: page.offset === 0, onclick: function () { go(Math.max(0, page.offset - page.limit)); } }, "\u2190 Previous"),
      h("span", { "class": "muted pager-info" }, page.total ? (page.offset + 1) + "\u2013" + last + " of " + page.total : "none"),
      h("button", { type: "button", disabled: last >= page.total, onclick: function () { go(page.offset + page.limit); } }, "Next \u2192"));
  }
  function query() { return new URLSearchParams(location.search); }
  function setQuery(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) { if (params[k]) q.set(k, params[k]); });
    var s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
  }

  function send(path, method, body) { return api(path, { method: method, body: JSON.stringify(body || {}) }); }
  function copyButton(text) {
    var b = h("button", { type: "button", "class": "small copy", onclick: function () {
      (navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.reject(new Error("no clipboard"))).then(function () {
        b.textContent = "copied"; setTimeout(function () { b.textContent = "copy"; }, 1200);
      }).catch(function () { b.textContent = "select and copy"; });
    } }, "copy");
    return b;
  }

  window.Plait = {
    state: state, h: h, add: add, link: link, clear: clear, enc: enc, size: size, when: when, badges: badges,
    versionHref: versionHref, runHref: runHref, runLink: runLink, api: api, send: send, fail: fail, section: section,
    table: table, pager: pager, query: query, setQuery: setQuery, copyButton: copyButton
  };
})();
