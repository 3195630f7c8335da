/* plait lineage graph: a small layered (Sugiyama-style) layout drawn in SVG.
 *
 * 1. layers: longest path from the sources over "used"/"produced" edges, so data flows left
 *    to right and every edge points to a later layer; a graph with a loop (a run that used
 *    what was made from its own outputs) is cut open where the loop closes, and the edge that
 *    closes it points back;
 * 2. edges spanning several layers get a dummy node in each layer they cross, so they are
 *    ordered (and routed) like real nodes and do not cut through them;
 * 3. order within a layer: barycenter heuristic, alternating sweeps left->right and
 *    right->left, keeping the best crossing count;
 * 4. y: each node is pulled towards the mean y of its neighbours, then pushed apart to keep
 *    the order and a minimum gap, so a chain stays on one straight line.
 * Every label goes in with textContent: names and aliases are data, never markup.
 */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var NODE_W = 176, NODE_H = 54, COL_W = 226, ROW_GAP = 22, PAD = 30;

  function el(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clip(text, max) {
    text = String(text == null ? "" : text);
    return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
  }

  function layerNodes(ids, flow) {
    var preds = {}, succs = {}, indeg = {}, layer = {};
    ids.forEach(function (id) { preds[id] = []; succs[id] = []; indeg[id] = 0; layer[id] = 0; });
    flow.forEach(function (e) { succs[e.source].push(e.target); preds[e.target].push(e.source); indeg[e.target]++; });
    var queue = ids.filter(function (id) { return indeg[id] === 0; }), done = {}, seen = 0, acyclic = true;
    while (seen < ids.length) {
      if (!queue.length) {
        // only loops are left: start from the waiting node with the fewest edges still to come
        acyclic = false;
        var next = null;
        ids.forEach(function (id) { if (!done[id] && (next === null || indeg[id] < indeg[next])) next = id; });
        indeg[next] = 0; queue.push(next);
      }
      var n = queue.shift();
      if (done[n]) continue;
      done[n] = true; seen++;
      succs[n].forEach(function (m) {
        if (done[m]) return;  // an edge back into a placed node closes a loop: it points back
        layer[m] = Math.max(layer[m], layer[n] + 1);
        if (--indeg[m] === 0) queue.push(m);
      });
    }
    return { layer: layer, preds: preds, succs: succs, acyclic: acyclic };
  }

  function crossings(layers, pos, down) {
    var count = 0;
    for (var i = 1; i < layers.length; i++) {
      var segs = [];
      layers[i - 1].forEach(function (a) { (down[a] || []).forEach(function (b) { segs.push([pos[a], pos[b]]); }); });
      for (var x = 0; x < segs.length; x++) for (var y = x + 1; y < segs.length; y++) {
        if ((segs[x][0] - segs[y][0]) * (segs[x][1] - segs[y][1]) < 0) count++;
      }
    }
    return count;
  }

  function layout(data) {
    var nodes = {}, ids = [];
    data.nodes.forEach(function (n) { nodes[n.id] = { data: n, id: n.id }; ids.push(n.id); });
    var edges = data.edges.filter(function (e) { return nodes[e.source] && nodes[e.target]; });
    var flow = edges.filter(function (e) { return e.kind !== "parent" && e.kind !== "previous"; });
    var L = layerNodes(ids, flow);
    // a run linked only as a parent (a flow around its tasks) sits in its first child's layer
    edges.forEach(function (e) {
      if ((e.kind === "parent" || e.kind === "previous") && !L.preds[e.source].length && !L.succs[e.source].length) {
        L.layer[e.source] = Math.min(L.layer[e.source] || 1e9, L.layer[e.target]);
      }
    });
    // chains of dummies for long edges
    var up = {}, down = {}, routes = [], dummyCount = 0;
    ids.forEach(function (id) { up[id] = []; down[id] = []; });
    flow.forEach(function (e) {
      var chain = [e.source], from = L.layer[e.source], to = L.layer[e.target];
      for (var k = from + 1; k < to; k++) {
        var d = "\u0000d" + (dummyCount++);
        nodes[d] = { id: d, dummy: true }; L.layer[d] = k; up[d] = []; down[d] = [];
        chain.push(d);
      }
      chain.push(e.target);
      for (var c = 1; c < chain.length; c++) { down[chain[c - 1]].push(chain[c]); up[chain[c]].push(chain[c - 1]); }
      routes.push({ edge: e, chain: chain });
    });
    var layers = [];
    Object.keys(nodes).forEach(function (id) {
      var k = L.layer[id] || 0;
      (layers[k] = layers[k] || []).push(id);
    });
    for (var li = 0; li < layers.length; li++) layers[li] = layers[li] || [];
    layers.forEach(function (layer) { layer.sort(); });
    var pos = {};
    function index() { layers.forEach(function (layer) { layer.forEach(function (n, i) { pos[n] = i; }); }); }
    index();
    function sweep(fromLayer, neighbours) {
      layers[fromLayer].forEach(function (n) {
        var ns = neighbours[n];
        nodes[n].bary = ns.length ? ns.reduce(function (s, m) { return s + pos[m]; }, 0) / ns.length : pos[n];
      });
      layers[fromLayer].sort(function (a, b) { return nodes[a].bary - nodes[b].bary || pos[a] - pos[b]; });
      layers[fromLayer].forEach(function (n, i) { pos[n] = i; });
    }
    var best = layers.map(function (l) { return l.slice(); }), bestX = crossings(layers, pos, down);
    for (var it = 0; it < 12 && bestX > 0; it++) {
      if (it % 2 === 0) for (var a = 1; a < layers.length; a++) sweep(a, up);
      else for (var b = layers.length - 2; b >= 0; b--) sweep(b, down);
      var x = crossings(layers, pos, down);
      if (x < bestX) { bestX = x; best = layers.map(function (l) { return l.slice(); }); }
    }
    layers = best; index();
    // y coordinates: start stacked, then relax towards neighbours while keeping order and gaps
    var y = {}, step = NODE_H + ROW_GAP;
    layers.forEach(function (layer) { layer.forEach(function (n, i) { y[n] = i * step; }); });
    function gap(n) { return nodes[n].dummy ? 14 : step; }
    for (var r = 0; r < 16; r++) {
      var ordered = r % 2 === 0 ? layers : layers.slice().reverse();
      ordered.forEach(function (layer) {
        layer.forEach(function (n) {
          var ns = up[n].concat(down[n]);
          if (ns.length) y[n] = ns.reduce(function (s, m) { return s + y[m]; }, 0) / ns.length;
        });
        for (var i = 1; i < layer.length; i++) {
          var need = y[layer[i - 1]] + Math.max(gap(layer[i - 1]), gap(layer[i])) / (nodes[layer[i]].dummy && nodes[layer[i - 1]].dummy ? 2 : 1);
          if (y[layer[i]] < need) y[layer[i]] = need;
        }
      });
    }
    var minY = Infinity, maxY = -Infinity;
    Object.keys(y).forEach(function (n) { minY = Math.min(minY, y[n]); maxY = Math.max(maxY, y[n]); });
    Object.keys(nodes).forEach(function (n) {
      nodes[n].x = PAD + (L.layer[n] || 0) * COL_W;
      nodes[n].y = PAD + 16 + y[n] - minY;
    });
    return {
      nodes: nodes, routes: routes, parents: edges.filter(function (e) { return e.kind === "parent" || e.kind === "previous"; }),
      width: PAD * 2 + (layers.length - 1) * COL_W + NODE_W, height: PAD * 2 + 16 + (maxY - minY) + NODE_H,
      crossings: bestX, layers: layers.length
    };
  }

  function edgePath(points) {
    var d = "M" + points[0][0] + "," + points[0][1];
    for (var i = 1; i < points.length; i++) {
      var p = points[i - 1], q = points[i], mx = (p[0] + q[0]) / 2;
      d += " C" + mx + "," + p[1] + " " + mx + "," + q[1] + " " + q[0] + "," + q[1];
    }
    return d;
  }

  function drawNode(n, root, onOpen) {
    var d = n.data, isRun = d.node === "run";
    var g = el("g", { "class": "node " + (isRun ? "run" : "version") + (isRun && d.status === "failed" ? " failed" : "") + (d.id === root ? " root" : ""),
      transform: "translate(" + n.x + "," + n.y + ")", "data-id": d.id, tabindex: "0", role: "link" });
    var title, sub, extra = "";
    if (isRun) {
      title = d.name; sub = d.kind + " \u00b7 " + d.status; extra = d.run_id.slice(-8);
    } else {
      title = d.spec; sub = d.artifact_type || d.type;
      var aliases = (d.aliases || []).filter(function (a) { return a !== "latest"; });
      if ((d.aliases || []).indexOf("latest") >= 0) aliases.unshift("latest");
      extra = aliases.join(" \u00b7 ");
    }
    g.appendChild(el("title", {}, isRun ? "run " + d.name + " (" + d.kind + ", " + d.status + ") " + d.run_id : d.spec + " [" + (d.artifact_type || d.type) + "]" + (extra ? " aliases: " + extra : "")));
    g.appendChild(el("rect", { width: NODE_W, height: NODE_H, rx: isRun ? 4 : NODE_H / 2, ry: isRun ? 4 : NODE_H / 2 }));
    var tx = isRun ? 10 : 18;
    g.appendChild(el("text", { x: tx, y: 19, "class": "label" }, clip(title, isRun ? 24 : 22)));
    g.appendChild(el("text", { x: tx, y: 34, "class": "sub" }, clip(sub, 26)));
    if (extra) g.appendChild(el("text", { x: tx, y: 48, "class": isRun ? "sub" : "aliases" }, clip(extra, 26)));
    function open() { onOpen(d); }
    g.addEventListener("click", function (ev) { if (!g.ownerSVGElement.__dragged) open(); ev.stopPropagation(); });
    g.addEventListener("keydown", function (ev) { if (ev.key === "Enter") open(); });
    return g;
  }

  function render(container, data, onOpen) {
    while (container.firstChild) container.removeChild(container.firstChild);
    if (!data.nodes.length) { container.textContent = "No lineage."; return null; }
    var lay = layout(data);
    var svg = el("svg", { "class": "lineage", width: "100%", height: Math.min(Math.max(lay.height, 160), 620),
      "data-nodes": data.nodes.length, "data-crossings": lay.crossings });
    var defs = el("defs");
    var marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.appendChild(el("path", { d: "M 0 0 L 10 5 L 0 10 z", "class": "arrowhead" }));
    defs.appendChild(marker); svg.appendChild(defs);
    var view = el("g", { "class": "viewport" });
    svg.appendChild(view);
    lay.parents.forEach(function (e) {
      var s = lay.nodes[e.source], t = lay.nodes[e.target];
      view.appendChild(el("path", { "class": "edge parent", d: edgePath([[s.x + NODE_W / 2, s.y + NODE_H], [t.x + NODE_W / 2, t.y]]) }));
    });
    lay.routes.forEach(function (route) {
      var pts = route.chain.map(function (id, i) {
        var n = lay.nodes[id];
        if (n.dummy) return [n.x + NODE_W / 2, n.y + NODE_H / 2];
        return [i === 0 ? n.x + NODE_W : n.x, n.y + NODE_H / 2];
      });
      // dummies are points: run the curve through the middle of their column
      var full = [pts[0]];
      for (var i = 1; i < pts.length - 1; i++) { full.push([pts[i][0] - NODE_W / 2, pts[i][1]]); full.push([pts[i][0] + NODE_W / 2, pts[i][1]]); }
      full.push(pts[pts.length - 1]);
      view.appendChild(el("path", { "class": "edge " + route.edge.kind, d: edgePath(full), "marker-end": "url(#arrow)",
        "data-source": route.edge.source, "data-target": route.edge.target }));
    });
    Object.keys(lay.nodes).forEach(function (id) {
      var n = lay.nodes[id];
      if (!n.dummy) view.appendChild(drawNode(n, data.root, onOpen));
    });
    container.appendChild(svg);
    attachPanZoom(svg, view, lay, lay.nodes[data.root]);
    return lay;
  }

  function attachPanZoom(svg, view, lay, rootNode) {
    var state = { k: 1, x: 0, y: 0 };
    function apply() { view.setAttribute("transform", "translate(" + state.x + "," + state.y + ") scale(" + state.k + ")"); }
    function fit() {
      var w = svg.clientWidth || 900, h = svg.clientHeight || 400;
      state.k = Math.min(1, w / lay.width, h / lay.height);
      if (state.k < 0.55) {  // too small to read: keep a legible zoom and show the root instead
        state.k = 0.8;
        var rx = rootNode ? rootNode.x : 0, ry = rootNode ? rootNode.y : 0;
        state.x = w / 2 - (rx + NODE_W / 2) * state.k;
        state.x = Math.min(0, Math.max(w - lay.width * state.k, state.x));  // no empty band beside the graph
        state.y = h / 2 - (ry + NODE_H / 2) * state.k;
      } else {
        state.x = (w - lay.width * state.k) / 2; state.y = (h - lay.height * state.k) / 2;
      }
      apply();
    }
    function zoom(factor, cx, cy) {
      var k = Math.max(0.15, Math.min(2.5, state.k * factor));
      state.x = cx - (cx - state.x) * (k / state.k); state.y = cy - (cy - state.y) * (k / state.k); state.k = k; apply();
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
      state.x = drag.sx + dx; state.y = drag.sy + dy; apply();
    });
    window.addEventListener("pointerup", function () { drag = null; });
    svg.plaitZoom = { fit: fit, zoom: function (f) { zoom(f, (svg.clientWidth || 900) / 2, (svg.clientHeight || 400) / 2); } };
    requestAnimationFrame(fit);
  }

  window.PlaitGraph = { render: render, layout: layout };
})();
