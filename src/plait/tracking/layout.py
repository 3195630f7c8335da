"""Lay a lineage graph out left to right, in the direction data flows (a Sugiyama-style layering).

One layout serves every drawing: the dashboard's pages and a notebook's ``_repr_html_`` both show
the SVG :mod:`plait.tracking.drawing` makes from it. The steps:

1. **What is shown.** Deleted versions and failed runs are hidden unless asked for (the root
   always shows); a run with child runs becomes a *group* (a flow around its tasks), drawn as a
   box around its members, or as one node when collapsed; a run drawn inside a run that is
   itself drawn (a fit inside a task that used data) hangs off it by a dashed edge, since it
   works on what that run used, and so does an implicit run's next segment off the one before;
   a version's producers other than its preferred one (``producers="all"``) have lighter edges;
   a run that logged many versions of one name that nothing in the graph uses becomes one
   *cluster* node ("12 checkpoints of classifier").
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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from plait.tracking.placing import COL_W, GROUP_HEAD, GROUP_PAD, NODE_H, NODE_W, Placer, Shown

__all__ = ["COL_W", "GROUP_HEAD", "GROUP_PAD", "NODE_H", "NODE_W", "Box", "DrawOptions", "GraphLike", "GroupBox",
           "Layout", "Route", "layout"]


class GraphLike(Protocol):
    """What the layout reads of a :class:`~plait.tracking.lineage.LineageGraph` (which draws itself with it)."""

    root: str
    versions: dict[str, Any]
    runs: dict[str, Any]
    edges: list[tuple[str, str, str]]

MARGIN = 24
#: Edge kinds between two runs: drawn dashed, placing the second after the first.
RUN_LINKS = ("parent", "previous")
#: The edge from a run that produced a version too but is not its preferred producer.
OTHER_PRODUCER = "produced-also"
#: A run that logged at least this many unused versions of one name shows them as one node.
CLUSTER_MIN = 5


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


def _version_data(v: Any, root: str) -> dict[str, Any]:
    aliases = [a for a in v.aliases if a != "latest"]
    if "latest" in v.aliases:
        aliases.insert(0, "latest")
    # a deleted version has no page of its own: its node opens the artifact's
    href = f"/a/{v.name}" if v.deleted else f"/v/{v.name}/{v.number}"
    return {"title": v.spec, "sub": v.type, "extra": " · ".join(aliases), "href": href,
            "deleted": v.deleted, "root": v.spec == root, "tip": f"{v.spec} [{v.type}]" + (" deleted" if v.deleted else "")}


def _run_data(r: Any, root: str) -> dict[str, Any]:
    return {"title": r.name, "sub": f"{r.kind} · {r.status}", "extra": r.id[-8:], "href": f"/r/{r.id}",
            "failed": r.status == "failed", "root": f"run:{r.id}" == root,
            "tip": f"run {r.name} ({r.kind}, {r.status}) {r.id}"}


def _select(graph: GraphLike, options: DrawOptions) -> Shown:
    """Choose the nodes and edges shown, and each node's groups (step 1 without collapsing)."""
    g = Shown(root=graph.root)
    parent_of = {r.id: r.parent for r in graph.runs.values() if r.parent in graph.runs}
    has_children = set(parent_of.values())
    data_edges = [(s, t, k) for s, t, k in graph.edges if k not in RUN_LINKS]
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
    _mark_other_producers(graph, g)
    # a run drawn inside another drawn run (a Lightning fit inside a Prefect task) works on what
    # that run had used: an edge from it places the inner run after the outer run's inputs; so
    # does an implicit run's next segment after the segment it goes on from
    g.edges |= {(f"run:{p}", f"run:{c}", "parent") for c, p in parent_of.items() if f"run:{p}" in g.nodes and f"run:{c}" in g.nodes}
    g.edges |= {(s, t, k) for s, t, k in graph.edges if k == "previous" and s in g.nodes and t in g.nodes}

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


def _mark_other_producers(graph: GraphLike, g: Shown) -> None:
    """Draw the edges of a version's other producers (``producers="all"``) apart from its preferred one's."""
    made: dict[str, list[str]] = defaultdict(list)
    for s, t, k in g.edges:
        if k == "produced":
            made[t].append(s)
    for spec, runs in made.items():
        if len(runs) < 2:
            continue
        preferred = graph.versions[spec].produced_by
        for run in runs:
            if preferred is None or run != f"run:{preferred.id}":
                g.edges.discard((run, spec, "produced"))
                g.edges.add((run, spec, OTHER_PRODUCER))


def _collapse(g: Shown, options: DrawOptions) -> None:
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


def _cluster(g: Shown) -> None:
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
    placer = Placer(g, graph.root)
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


def _group_boxes(g: Shown, placer: Placer) -> list[GroupBox]:
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


def _routes(g: Shown, placer: Placer, y: dict[str, float]) -> list[Route]:
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
