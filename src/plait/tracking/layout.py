"""Lay a lineage graph out left to right, in the direction data flows (a Sugiyama-style layering).

One layout serves every drawing: the dashboard's pages and a notebook's ``_repr_html_`` both show
the SVG :mod:`plait.tracking.drawing` makes from it. The steps:

1. **What is shown.** Deleted versions and failed runs are hidden unless asked for (the root
   always shows); a run with child runs becomes a *group* (a flow around its tasks), drawn as a
   box around its members, or as one node when collapsed; a run drawn inside a run that is
   itself drawn (a fit inside a task that used data) hangs off it by a dashed edge, since it
   works on what that run used; a run that logged many versions of one
   name that nothing in the graph uses becomes one *cluster* node ("12 checkpoints of classifier").
2. **Layers.** Edges that close a cycle are reversed (a depth-first search; a store can hold a
   cycle), then each node goes one layer right of its furthest predecessor, and then as far
   right as its first consumer allows (a side input sits just left of where it is used), so
   every edge points right and side branches stay short.
3. **Long edges** get a point in each layer they cross, ordered like nodes, so they do not cut
   through them.
4. **Order within a layer**: barycentre sweeps left to right and back, keeping the members of a
   group together, counting crossings (Fenwick tree, O(E log V) per layer pair) and keeping the
   best order found.
5. **Vertical positions**: each node is pulled towards its neighbours and pushed apart to keep
   the order and the gaps (wider where a group's box begins or ends); then a group box that
   overlaps another box, or a node outside it, is pushed down with what lies below it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol


class GraphLike(Protocol):
    """What the layout reads of a :class:`~plait.tracking.lineage.LineageGraph` (which draws itself with it)."""

    root: str
    versions: dict[str, Any]
    runs: dict[str, Any]
    edges: list[tuple[str, str, str]]

NODE_W, NODE_H = 184, 54
COL_W = 236
ROW_GAP = 20
GROUP_PAD = 12
GROUP_HEAD = 22
MARGIN = 24
#: A run that logged at least this many unused versions of one name shows them as one node.
CLUSTER_MIN = 5
#: Barycentre sweeps at most, and sweeps without improvement before stopping.
SWEEPS, PATIENCE = 24, 4


@dataclass(frozen=True)
class DrawOptions:
    """What a drawing shows.

    :ivar show_deleted: draw deleted versions (marked) instead of hiding them.
    :ivar show_failed: draw failed runs (marked) instead of hiding them.
    :ivar collapsed: ids of the group runs drawn as one node; ``("*",)`` collapses every group.
    :ivar cluster: gather large fan-outs of unused versions into one node.
    """

    show_deleted: bool = False
    show_failed: bool = False
    collapsed: tuple[str, ...] = ()
    cluster: bool = True

    def is_collapsed(self, run_id: str) -> bool:
        """Tell whether the group of ``run_id`` is drawn as one node."""
        return "*" in self.collapsed or run_id in self.collapsed


@dataclass
class Box:
    """A placed node.

    :ivar id: ``name:vN``, ``run:<id>``, ``group:<id>`` (a collapsed group) or ``cluster:<run>:<name>``.
    :ivar kind: ``version``, ``run``, ``group`` or ``cluster``.
    :ivar x: left edge.
    :ivar y: top edge.
    :ivar layer: the column it sits in.
    :ivar data: what the drawing writes on it (title, lines, marks, link).
    """

    id: str
    kind: str
    x: float = 0.0
    y: float = 0.0
    layer: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    w: float = NODE_W
    h: float = NODE_H


@dataclass(frozen=True)
class Route:
    """A placed edge: from ``source`` to ``target`` through ``points`` (left to right unless ``reversed``)."""

    source: str
    target: str
    kind: str
    points: tuple[tuple[float, float], ...]
    reversed: bool = False


@dataclass(frozen=True)
class GroupBox:
    """The box around the members of a group run (a flow around its tasks)."""

    run_id: str
    title: str
    status: str
    x: float
    y: float
    w: float
    h: float
    depth: int
    root: bool = False


@dataclass
class Layout:
    """A placed graph: nodes, edges and group boxes, and how much was hidden.

    :ivar crossings: edge crossings left after ordering (between adjacent layers).
    :ivar hidden: ``{"deleted": n, "failed": n}`` of what the options hid.
    """

    root: str
    nodes: dict[str, Box]
    routes: list[Route]
    groups: list[GroupBox]
    width: float
    height: float
    crossings: int
    hidden: dict[str, int]
    layers: int


# -- 1. what is shown ---------------------------------------------------------------------------


@dataclass
class _Graph:
    nodes: dict[str, Box] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    group: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> group run ids, outermost first
    group_runs: dict[str, Any] = field(default_factory=dict)
    root: str = ""
    hidden: dict[str, int] = field(default_factory=lambda: {"deleted": 0, "failed": 0})


def _version_data(v: Any, root: str) -> dict[str, Any]:
    aliases = [a for a in v.aliases if a != "latest"]
    if "latest" in v.aliases:
        aliases.insert(0, "latest")
    return {"title": v.spec, "sub": v.type, "extra": " · ".join(aliases), "href": f"/v/{v.name}/{v.number}",
            "deleted": v.deleted, "root": v.spec == root, "tip": f"{v.spec} [{v.type}]" + (" deleted" if v.deleted else "")}


def _run_data(r: Any, root: str) -> dict[str, Any]:
    return {"title": r.name, "sub": f"{r.kind} · {r.status}", "extra": r.id[-8:], "href": f"/r/{r.id}",
            "failed": r.status == "failed", "root": f"run:{r.id}" == root,
            "tip": f"run {r.name} ({r.kind}, {r.status}) {r.id}"}


def _select(graph: GraphLike, options: DrawOptions) -> _Graph:
    """Choose the nodes and edges shown, and each node's groups (step 1 without collapsing)."""
    g = _Graph(root=graph.root)
    parent_of = {r.id: r.parent for r in graph.runs.values() if r.parent in graph.runs}
    has_children = set(parent_of.values())
    data_edges = [(s, t, k) for s, t, k in graph.edges if k != "parent"]
    with_data = {n for s, t, _ in data_edges for n in (s, t)}
    for spec, v in graph.versions.items():
        if v.deleted and not options.show_deleted and spec != graph.root:
            g.hidden["deleted"] += 1
            continue
        g.nodes[spec] = Box(spec, "version", data=_version_data(v, graph.root))
    for run_id, r in graph.runs.items():
        node = f"run:{run_id}"
        if r.status == "failed" and not options.show_failed and node != graph.root and run_id not in has_children:
            g.hidden["failed"] += 1
            continue
        if run_id in has_children:
            g.group_runs[run_id] = r
            if node not in with_data:
                continue  # a flow that only holds tasks is its box (marked when it is the root)
        g.nodes[node] = Box(node, "run", data=_run_data(r, graph.root))
    g.edges = {(s, t, k) for s, t, k in data_edges if s in g.nodes and t in g.nodes}
    # a run drawn inside another drawn run (a Lightning fit inside a Prefect task) works on what
    # that run had used: an edge from it places the inner run after the outer run's inputs
    g.edges |= {(f"run:{p}", f"run:{c}", "parent") for c, p in parent_of.items() if f"run:{p}" in g.nodes and f"run:{c}" in g.nodes}

    def groups(run_id: str | None) -> tuple[str, ...]:
        chain: list[str] = []
        while run_id is not None and run_id in g.group_runs:
            chain.append(run_id)
            run_id = parent_of.get(run_id)
        return tuple(reversed(chain))

    for node in g.nodes:
        if node.startswith("run:"):
            run_id = node[4:]
            g.group[node] = groups(run_id if run_id in g.group_runs else parent_of.get(run_id))
    for s, t, k in sorted(g.edges):
        if k == "produced" and t not in g.group:
            g.group[t] = g.group.get(s, ())
    for node in g.nodes:
        g.group.setdefault(node, ())
    return g


def _collapse(g: _Graph, options: DrawOptions) -> None:
    """Replace each collapsed group (the outermost one) by one node, keeping its final outputs."""
    for run_id, r in sorted(g.group_runs.items()):
        if not options.is_collapsed(run_id):
            continue
        members = {n for n, path in g.group.items() if run_id in path}
        if not members:
            continue
        depth = next(iter(g.group[n] for n in members)).index(run_id)
        outer = next(iter(g.group[n] for n in members))[:depth]
        used_inside = {s for s, t, k in g.edges if k == "used" and t in members}
        used_outside = {s for s, t, k in g.edges if k == "used" and t not in members}
        keep = {n for n in members if g.nodes[n].kind == "version"
                and (n not in used_inside or n in used_outside or g.nodes[n].data.get("root"))}
        node = f"group:{run_id}"
        count = sum(1 for n in members if n.startswith("run:"))
        g.nodes[node] = Box(node, "group", data={
            "title": r.name, "sub": f"{r.kind} · {r.status}", "extra": f"{count} runs inside · expand",
            "href": f"/r/{run_id}", "run_id": run_id, "failed": r.status == "failed", "root": f"run:{run_id}" == g.root,
            "tip": f"{r.name} ({r.kind}, {r.status}): {count} runs collapsed"})
        g.group[node] = outer
        gone = members - keep
        for n in keep:
            g.group[n] = outer
        remap = {n: node for n in gone}
        edges = set()
        for s, t, k in g.edges:
            s2, t2 = remap.get(s, s), remap.get(t, t)
            if s2 != t2:
                edges.add((s2, t2, k))
        g.edges = edges
        for n in gone:
            del g.nodes[n]
            del g.group[n]
        for other, path in list(g.group.items()):
            if run_id in path:  # nested groups inside the collapsed one are gone with it
                g.group[other] = path[:path.index(run_id)]


def _cluster(g: _Graph) -> None:
    """Gather, per run, the unused versions of one name it logged into one node when there are many."""
    users = {s for s, _, k in g.edges if k == "used"}
    fans: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s, t, k in g.edges:
        box = g.nodes[t]
        if (k == "produced" and t not in users and not box.data.get("root") and not box.data.get("extra")
                and not box.data.get("deleted")):
            fans[(s, t.rsplit(":v", 1)[0])].append(t)
    for (run, name), members in sorted(fans.items()):
        if len(members) < CLUSTER_MIN:
            continue
        node = f"cluster:{run}:{name}"
        kind = g.nodes[members[0]].data.get("sub")
        noun = "checkpoints" if kind == "model" else "versions"
        g.nodes[node] = Box(node, "cluster", data={
            "title": f"{len(members)} {noun} of {name}", "sub": kind, "extra": ", ".join(m.rsplit(":", 1)[1] for m in members[:6])
            + (" …" if len(members) > 6 else ""), "href": f"/a/{name}", "tip": f"{len(members)} versions of {name} logged by one run"})
        g.group[node] = g.group[members[0]]
        for m in members:
            del g.nodes[m]
            del g.group[m]
        g.edges = {e for e in g.edges if e[1] not in members}
        g.edges.add((run, node, "produced"))


# -- 2. layers ----------------------------------------------------------------------------------


def _acyclic(nodes: Sequence[str], edges: Iterable[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """Return the edges with those that close a cycle reversed, and the set of reversed ones."""
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for e in sorted(edges):
        out[e[0]].append(e)
    state: dict[str, int] = {}
    back: set[tuple[str, str, str]] = set()
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, it = stack[-1]
            edge = next(it, None)
            if edge is None:
                state[node] = 2
                stack.pop()
                continue
            nxt = edge[1]
            if state.get(nxt) == 1:
                back.add(edge)
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
    fixed = [(t, s, k) if (s, t, k) in back else (s, t, k) for s, t, k in edges if s != t]
    return fixed, back


def _layers(nodes: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(nodes, 0)
    for s, t, _ in edges:
        succs[s].append(t)
        preds[t].append(s)
        indeg[t] += 1
    layer = dict.fromkeys(nodes, 0)
    order = [n for n in nodes if indeg[n] == 0]
    for n in order:  # the list grows as it is walked: a topological order
        for m in succs[n]:
            layer[m] = max(layer[m], layer[n] + 1)
            indeg[m] -= 1
            if indeg[m] == 0:
                order.append(m)
    for n in reversed(order):  # a side branch sits just before its first consumer, not in column 0
        if succs[n]:
            layer[n] = max(layer[n], min(layer[m] for m in succs[n]) - 1)
    return layer


# -- 3-5. order and place -------------------------------------------------------------------------


def _crossings(upper: dict[str, int], lower: dict[str, int], pairs: Sequence[tuple[str, str]]) -> int:
    """Count crossings between two adjacent layers: inversions of the lower ends (a Fenwick tree)."""
    seq = [lower[b] for _, b in sorted(pairs, key=lambda p: (upper[p[0]], lower[p[1]]))]
    size = max(lower.values(), default=0) + 2
    tree = [0] * (size + 1)
    count = 0
    for seen, value in enumerate(seq):
        i, smaller_or_equal = value + 1, 0
        while i > 0:
            smaller_or_equal += tree[i]
            i -= i & -i
        count += seen - smaller_or_equal
        i = value + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


class _Placer:
    """Steps 3-5 over the shown graph."""

    def __init__(self, g: _Graph, root: str) -> None:
        self.g, self.root = g, root
        names = sorted(g.nodes)
        self.edges, self.back = _acyclic(names, g.edges)
        self.layer = _layers(names, self.edges)
        self.path: dict[str, tuple[str, ...]] = dict(g.group)
        self.up: dict[str, list[str]] = defaultdict(list)
        self.down: dict[str, list[str]] = defaultdict(list)
        self.chains: list[tuple[tuple[str, str, str], list[str]]] = []
        self._dummies()
        count = max(self.layer.values(), default=0) + 1
        self.layers: list[list[str]] = [[] for _ in range(count)]
        for n in self._first_order(names):
            self.layers[self.layer[n]].append(n)

    def _dummies(self) -> None:
        for i, (s, t, k) in enumerate(sorted(self.edges)):
            chain = [s]
            common = _common(self.path[s], self.path[t])
            for j, lay in enumerate(range(self.layer[s] + 1, self.layer[t])):
                d = f"\0{i}.{j}"
                self.layer[d], self.path[d] = lay, common
                chain.append(d)
            chain.append(t)
            for a, b in zip(chain, chain[1:]):
                self.down[a].append(b)
                self.up[b].append(a)
            self.chains.append(((s, t, k), chain))

    def _first_order(self, names: list[str]) -> list[str]:
        """A depth-first order from the sources, so the first sweep starts from a sensible place."""
        seen: dict[str, None] = {}
        every = names + sorted(n for n in self.layer if n.startswith("\0"))
        for start in sorted(every, key=lambda n: (self.layer[n], n)):
            stack = [start]
            while stack:
                n = stack.pop()
                if n in seen:
                    continue
                seen[n] = None
                stack.extend(reversed(self.down[n]))
        return list(seen)

    def order(self) -> int:
        pos = {n: i for layer in self.layers for i, n in enumerate(layer)}
        self._consistent(pos)
        best, best_x, calm = [list(x) for x in self.layers], self._count(pos), 0
        for sweep in range(SWEEPS):
            if best_x == 0 or calm >= PATIENCE:
                break
            downwards = sweep % 2 == 0
            indices = range(1, len(self.layers)) if downwards else range(len(self.layers) - 2, -1, -1)
            ranks = self._ranks(pos)
            for li in indices:
                self._sort(li, self.up if downwards else self.down, pos, ranks)
            crossings = self._count(pos)
            if crossings < best_x:
                best, best_x, calm = [list(x) for x in self.layers], crossings, 0
            else:
                calm += 1
        self.layers = best
        pos = {n: i for layer in self.layers for i, n in enumerate(layer)}
        self._consistent(pos)
        return self._count(pos)

    def _ranks(self, pos: dict[str, int]) -> dict[tuple[str, ...], float]:
        """Return each group's mean relative height over every column: one order of groups for all columns."""
        sums: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for layer in self.layers:
            for n in layer:
                where = pos[n] / max(1, len(layer) - 1)
                for d in range(1, len(self.path[n]) + 1):
                    acc = sums[self.path[n][:d]]
                    acc[0] += where
                    acc[1] += 1
        return {k: v[0] / v[1] for k, v in sums.items()}

    def _key(self, n: str, own: float, ranks: dict[tuple[str, ...], float]) -> tuple[Any, ...]:
        p = self.path[n]
        parts: list[Any] = []
        for d in range(1, len(p) + 1):
            parts += [ranks[p[:d]], "g" + p[d - 1]]
        return (*parts, own, "n" + n)

    def _sort(self, li: int, neighbours: dict[str, list[str]], pos: dict[str, int], ranks: dict[tuple[str, ...], float]) -> None:
        layer = self.layers[li]
        own = {}
        for n in layer:
            ns = neighbours[n]
            if ns:
                size = max(1, len(self.layers[self.layer[ns[0]]]) - 1)
                own[n] = sum(pos[m] for m in ns) / len(ns) / size
            else:
                own[n] = pos[n] / max(1, len(layer) - 1)
        layer.sort(key=lambda n: self._key(n, own[n], ranks))
        for i, n in enumerate(layer):
            pos[n] = i

    def _consistent(self, pos: dict[str, int]) -> None:
        """Order every column's groups the same way (so their boxes cannot interleave), keeping the rest."""
        ranks = self._ranks(pos)
        for layer in self.layers:
            size = max(1, len(layer) - 1)
            layer.sort(key=lambda n: self._key(n, pos[n] / size, ranks))
            for i, n in enumerate(layer):
                pos[n] = i

    def _count(self, pos: dict[str, int]) -> int:
        total = 0
        for upper, lower in zip(self.layers, self.layers[1:]):
            pairs = [(a, b) for a in upper for b in self.down[a]]
            total += _crossings(pos, pos, pairs)
        return total

    def place(self) -> dict[str, float]:
        """Return each node's top y (dummies: their centre line)."""
        y: dict[str, float] = {}
        for layer in self.layers:
            top = 0.0
            for i, n in enumerate(layer):
                if i:
                    top += self._gap(layer[i - 1], n)
                y[n] = top
        for sweep in range(16):
            ordered = self.layers if sweep % 2 == 0 else list(reversed(self.layers))
            for layer in ordered:
                for n in layer:
                    ns = self.up[n] + self.down[n]
                    if ns:
                        y[n] = sum(y[m] for m in ns) / len(ns)
                for i in range(1, len(layer)):
                    need = y[layer[i - 1]] + self._gap(layer[i - 1], layer[i])
                    if y[layer[i]] < need:
                        y[layer[i]] = need
        return y

    def separate(self, y: dict[str, float]) -> None:
        """Push group boxes down until none overlaps another box or a node outside it.

        Boxes are drawn around their members across several columns, so two groups that share
        columns (or a node of neither sitting between their members) can overlap although every
        column keeps its gaps. Moving the lower one, and whatever lies below it in its columns,
        keeps each column's order.
        """
        for _ in range(8 + 4 * len(self.g.group_runs)):
            found = self._overlap(y)
            if found is None:
                return
            nodes, delta = found
            for layer in self.layers:
                inside = [y[n] for n in layer if n in nodes]
                if inside:
                    top = min(inside) - 0.5
                    for n in layer:
                        if y[n] >= top:
                            y[n] += delta

    def _boxes(self, y: dict[str, float]) -> tuple[dict[str, list[float]], dict[str, set[str]]]:
        rects: dict[str, list[float]] = {}
        members: dict[str, set[str]] = defaultdict(set)
        for n, path in self.path.items():
            for i, run_id in enumerate(path):
                members[run_id].add(n)
                if n.startswith("\0"):
                    continue
                levels = len(path) - i
                x = self.layer[n] * COL_W
                edge = [x - GROUP_PAD * levels, y[n] - (GROUP_PAD + GROUP_HEAD) * levels,
                        x + NODE_W + GROUP_PAD * levels, y[n] + NODE_H + GROUP_PAD * levels]
                have = rects.setdefault(run_id, edge)
                rects[run_id] = [min(have[0], edge[0]), min(have[1], edge[1]), max(have[2], edge[2]), max(have[3], edge[3])]
        return rects, members

    def _overlap(self, y: dict[str, float]) -> tuple[set[str], float] | None:
        """Return what lies below in the first overlap found, and how far to push it down.

        Which of two boxes is below is decided in a column they share (groups keep one order in
        every column), so pushing it never drags the other one along.
        """
        rects, members = self._boxes(y)
        index = {n: (li, i) for li, layer in enumerate(self.layers) for i, n in enumerate(layer)}
        gap = ROW_GAP / 2

        def hit(a: list[float], b: list[float]) -> bool:
            return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] + gap and b[1] < a[3] + gap

        def first_below(a: set[str], b: set[str], a_top: float, b_top: float) -> bool:
            """Tell whether ``a`` lies above ``b``: by their order in a shared column, else by height."""
            rows_a: dict[int, int] = {}
            for n in a:
                li, i = index[n]
                rows_a[li] = min(rows_a.get(li, i), i)
            for n in b:
                li, i = index[n]
                if li in rows_a:
                    return rows_a[li] < i
            return a_top <= b_top

        ids = sorted(rects, key=lambda r: rects[r][1])
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                nested = any(a in self.path[n] for n in members[b]) or any(b in self.path[n] for n in members[a])
                if nested or not hit(rects[a], rects[b]):
                    continue
                upper, lower = (a, b) if first_below(members[a], members[b], rects[a][1], rects[b][1]) else (b, a)
                return members[lower], rects[upper][3] + gap - rects[lower][1]
        for run_id in ids:
            box = rects[run_id]
            for n in self.g.nodes:
                x = self.layer[n] * COL_W
                node = [x, y[n], x + NODE_W, y[n] + NODE_H]
                if n in members[run_id] or not hit(box, node):
                    continue
                if first_below(members[run_id], {n}, box[1], y[n]):
                    return {n}, box[3] + gap - y[n]
                return members[run_id], node[3] + gap - box[1]
        return None

    def _gap(self, a: str, b: str) -> float:
        dummy_a, dummy_b = a.startswith("\0"), b.startswith("\0")
        base = 10.0 if dummy_a and dummy_b else (NODE_H / 2 + ROW_GAP / 2 if dummy_a or dummy_b else NODE_H + ROW_GAP)
        pa, pb = self.path[a], self.path[b]
        shared = len(_common(pa, pb))
        opened = len(pb) - shared
        return base + GROUP_PAD * ((len(pa) - shared) + opened) + GROUP_HEAD * opened


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]


def layout(graph: GraphLike, options: DrawOptions | None = None) -> Layout:
    """Lay out a lineage graph left to right.

    :param graph: the graph (from :func:`plait.lineage` or ``Store.lineage``).
    :param options: what to show; the defaults hide deleted versions and failed runs.
    :returns: the placed nodes, edges and group boxes.
    """
    options = options or DrawOptions()
    g = _select(graph, options)
    _collapse(g, options)
    if options.cluster:
        _cluster(g)
    placer = _Placer(g, graph.root)
    crossings = placer.order()
    y = placer.place()
    placer.separate(y)
    for n, box in g.nodes.items():
        box.layer = placer.layer[n]
        box.x, box.y = box.layer * COL_W, y[n]
    groups = _group_boxes(g, placer)
    routes = _routes(g, placer, y)
    left = min([b.x for b in g.nodes.values()] + [gb.x for gb in groups], default=0.0)
    top = min([b.y for b in g.nodes.values()] + [gb.y for gb in groups], default=0.0)
    dx, dy = MARGIN - left, MARGIN - top
    for box in g.nodes.values():
        box.x, box.y = box.x + dx, box.y + dy
    groups = [replace(gb, x=gb.x + dx, y=gb.y + dy) for gb in groups]
    routes = [replace(r, points=tuple((px + dx, py + dy) for px, py in r.points)) for r in routes]
    right = max([b.x + b.w for b in g.nodes.values()] + [gb.x + gb.w for gb in groups], default=0.0)
    bottom = max([b.y + b.h for b in g.nodes.values()] + [gb.y + gb.h for gb in groups], default=0.0)
    return Layout(root=graph.root, nodes=g.nodes, routes=routes, groups=groups, width=right + MARGIN,
                  height=bottom + MARGIN, crossings=crossings, hidden=g.hidden, layers=len(placer.layers))


def _group_boxes(g: _Graph, placer: _Placer) -> list[GroupBox]:
    """Box each group around its members, each nesting level adding a margin and a title band."""
    rects: dict[str, list[float]] = {}
    depth_of: dict[str, int] = {}
    for n, path in placer.path.items():
        if n.startswith("\0"):
            continue  # only nodes decide a box: an edge passing through does not widen it
        box = g.nodes[n]
        for i, run_id in enumerate(path):
            levels = len(path) - i
            edge = [box.x - GROUP_PAD * levels, box.y - (GROUP_PAD + GROUP_HEAD) * levels,
                    box.x + box.w + GROUP_PAD * levels, box.y + box.h + GROUP_PAD * levels]
            have = rects.setdefault(run_id, edge)
            rects[run_id] = [min(have[0], edge[0]), min(have[1], edge[1]), max(have[2], edge[2]), max(have[3], edge[3])]
            depth_of[run_id] = i
    out = []
    for run_id, (x0, y0, x1, y1) in rects.items():
        r = g.group_runs[run_id]
        out.append(GroupBox(run_id, f"{r.name} · {r.kind}", r.status, x0, y0, x1 - x0, y1 - y0, depth_of[run_id],
                            root=f"run:{run_id}" == placer.root))
    return sorted(out, key=lambda b: (b.depth, b.run_id))


def _routes(g: _Graph, placer: _Placer, y: dict[str, float]) -> list[Route]:
    out = []
    for (s, t, k), chain in placer.chains:
        points: list[tuple[float, float]] = []
        for i, n in enumerate(chain):
            if n.startswith("\0"):
                cx, cy = placer.layer[n] * COL_W, y[n] + NODE_H / 2
                points += [(cx, cy), (cx + NODE_W, cy)]
            else:
                box = g.nodes[n]
                points.append((box.x + (box.w if i == 0 else 0), box.y + box.h / 2))
        reversed_ = (s, t, k) not in g.edges
        if reversed_:
            s, t, points = t, s, list(reversed(points))
        out.append(Route(s, t, k, tuple(points), reversed_))
    return out
