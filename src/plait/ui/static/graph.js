/* plait lineage graph: shows the SVG the server laid out (plait.tracking.layout, the same
 * drawing a notebook shows) and makes it move: pan, zoom, fit, open a node, collapse or expand a
 * flow, show deleted versions and failed runs.
 *
 * The SVG is parsed as XML and imported node by node; the server escaped every name in it and
 * the page's Content-Security-Policy runs no inline script, so it is inert data. Every node
 * carries data-id, data-x, data-y and data-layer: where the layout put it.
 */
(function () {
  "use strict";

  function parseSvg(text) {
    var doc = new DOMParser().parseFromString(text, "image/svg+xml");
    var svg = doc.documentElement;
    if (svg.nodeName !== "svg") throw new Error("the server sent no drawing");
    return document.importNode(svg, true);
  }

  /* Show one drawing in `holder`. options.onOpen(href) opens a node's page;
   * options.onToggle(runId, collapse) asks for the drawing again with that flow collapsed or not. */
  function show(holder, drawing, options) {
    var started = performance.now();
    while (holder.firstChild) holder.removeChild(holder.firstChild);
    if (!drawing.nodes) { holder.textContent = "No lineage."; return null; }
    var svg = parseSvg(drawing.svg);
    var width = +svg.getAttribute("width"), height = +svg.getAttribute("height");
    svg.removeAttribute("viewBox");
    svg.setAttribute("width", "100%");
    svg.setAttribute("height", String(options.height || Math.min(Math.max(height, 180), 640)));
    svg.setAttribute("data-width", String(width));
    svg.setAttribute("data-height", String(height));
    holder.appendChild(svg);
    var view = svg.querySelector("g.viewport");
    var zoom = attachPanZoom(svg, view, width, height);
    svg.getBoundingClientRect();  // lay the page out now, so the time below includes it
    svg.setAttribute("data-render-ms", (performance.now() - started).toFixed(1));
    svg.addEventListener("click", function (ev) {
      if (svg.__dragged) return;
      var toggle = ev.target.closest("[data-collapse]");
      if (toggle) { options.onToggle(toggle.getAttribute("data-collapse"), true); return; }
      var node = ev.target.closest("g.node");
      if (node && node.getAttribute("data-kind") === "group") { options.onToggle(node.getAttribute("data-run"), false); return; }
      var title = ev.target.closest(".group-title");  // a flow's box opens its run from its title only
      var target = node || (title && title.parentNode);
      if (target && target.getAttribute("data-href")) options.onOpen(target.getAttribute("data-href"));
    });
    svg.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter") return;
      var node = ev.target.closest("g.node, [data-collapse]");
      if (node) node.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    });
    return zoom;
  }

  function attachPanZoom(svg, view, width, height) {
    var state = { k: 1, x: 0, y: 0, min: 0.05 };
    function apply() { view.setAttribute("transform", "translate(" + state.x + "," + state.y + ") scale(" + state.k + ")"); }
    /* Fit the whole graph, however large: no minimum zoom stops it. */
    function fit() {
      var w = svg.clientWidth || 900, h = svg.clientHeight || 400;
      state.k = Math.min(1.25, w / width, h / height);
      state.min = Math.min(0.05, state.k);
      state.x = (w - width * state.k) / 2; state.y = (h - height * state.k) / 2;
      apply();
      svg.setAttribute("data-zoom", state.k.toFixed(4));
    }
    function zoom(factor, cx, cy) {
      var k = Math.max(state.min, Math.min(3, state.k * factor));
      state.x = cx - (cx - state.x) * (k / state.k); state.y = cy - (cy - state.y) * (k / state.k); state.k = k; apply();
      svg.setAttribute("data-zoom", state.k.toFixed(4));
    }
    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var box = svg.getBoundingClientRect();
      zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - box.left, ev.clientY - box.top);
    }, { passive: false });
    var drag = null;
    svg.addEventListener("pointerdown", function (ev) { drag = { x: ev.clientX, y: ev.clientY, sx: state.x, sy: state.y }; svg.__dragged = false; });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) svg.__dragged = true;
      if (svg.__dragged) { state.x = drag.sx + dx; state.y = drag.sy + dy; apply(); }
    });
    window.addEventListener("pointerup", function () { drag = null; });
    /* First view: the whole graph when it stays legible, else the root at a readable size. */
    function start() {
      fit();
      if (state.k >= 0.6) return;
      var root = svg.querySelector("g.node.root");
      var w = svg.clientWidth || 900, h = svg.clientHeight || 400;
      var rx = root ? +root.getAttribute("data-x") + 92 : 0, ry = root ? +root.getAttribute("data-y") + 27 : 0;
      state.k = 0.85;
      state.x = Math.min(20, Math.max(w - width * state.k - 20, w / 2 - rx * state.k));
      state.y = Math.min(20, Math.max(h - height * state.k - 20, h / 2 - ry * state.k));
      apply();
      svg.setAttribute("data-zoom", state.k.toFixed(4));
    }
    start();
    requestAnimationFrame(start);
    var api = { fit: fit, zoom: function (f) { zoom(f, (svg.clientWidth || 900) / 2, (svg.clientHeight || 400) / 2); } };
    svg.plaitZoom = api;
    return api;
  }

  window.PlaitGraph = { show: show };
})();
