"""The lineage graph: which runs produced and used which versions, upstream and downstream.

Queries are breadth-first walks over the index (:mod:`plait.index.graph`), one query per step,
safe on any graph (a run that used what was made from its own outputs, chains thousands deep).
Depth counts runs: ``depth=1`` upstream of a model is the run that produced it and the versions
that run used. A version produced by several runs (a rerun, a revert) is followed through its
preferred producer (:attr:`ArtifactVersion.produced_by`), or through all with
``producers="all"``. Graphs export as a text tree, Graphviz DOT, Mermaid, JSON and OpenLineage
run events; drawings mark failed runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from plait.errors import InvalidInputError
from plait.formats.names import parse_spec
from plait.index import graph as G
from plait.index import producers as P
from plait.index import runs as RQ
from plait.index import subtree as SUB
from plait.index import versions as V
from plait.store.base import BaseStore as Store
from plait.tracking.layout import DrawOptions, layout
from plait.tracking.nodes import ArtifactVersion, RunRecord

DIRECTIONS = ("upstream", "downstream", "both")
#: Edge kinds between two runs (drawn dashed): a run inside another, an implicit run's next segment.
_RUN_LINKS = ("parent", "previous")


@dataclass
class LineageGraph:
    """A lineage graph around one version or run.

    :ivar root: node id of where the query started (``name:vN`` or ``run:<id>``).
    :ivar direction: ``upstream``, ``downstream`` or ``both``.
    :ivar versions: ``{"name:vN": ArtifactVersion}``.
    :ivar runs: ``{run id: Run}``.
    :ivar edges: ``(source, target, kind)`` with kind ``used`` (version → run), ``produced``
        (run → version), ``parent`` (run → child run) or ``previous`` (an implicit run's segment →
        the next segment); run node ids are ``run:<id>``.
    """

    root: str
    direction: str
    versions: dict[str, ArtifactVersion] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"<LineageGraph of {self.root} ({self.direction}): {len(self.versions)} versions, {len(self.runs)} runs, "
                f"{len(self.edges)} edges>")

    def _repr_html_(self) -> str:
        from plait.tracking import html  # here: notebooks need it, commands do not

        return html.graph_html(self)

    # -- navigation -----------------------------------------------------------------------------

    def producers(self, node: str) -> list[str]:
        """Return the node ids with a ``used``/``produced`` edge into ``node``."""
        return [s for s, t, k in self.edges if t == node and k not in _RUN_LINKS]

    def consumers(self, node: str) -> list[str]:
        """Return the node ids ``node`` has a ``used``/``produced`` edge to."""
        return [t for s, t, k in self.edges if s == node and k not in _RUN_LINKS]

    def label(self, node: str, *, short: bool = False) -> str:
        """Return a human label for a node.

        :param short: for drawings, where parent runs are edges: a run's name, kind and status
            only (the status only when it did not finish).
        """
        if node.startswith("run:"):
            run = self.runs[node[4:]]
            if short:
                status = "" if run.status == "finished" else f", {run.status}"
                return f"{run.name} [{run.kind}{status}]"
            parent = self.runs.get(run.parent) if run.parent else None
            inside = f" in {parent.name} [{parent.kind}] {parent.id[-8:]}" if parent is not None else ""
            return f"{run.name} [{run.kind}, {run.status}] {run.id[-8:]}{inside}"
        version = self.versions[node]
        extra = [a for a in version.aliases if a != "latest"]
        return version.spec + (f" ({', '.join(extra)})" if extra else "")

    # -- exports --------------------------------------------------------------------------------

    def to_json(self, indent: int | None = 2) -> str:
        """Return the graph as JSON: ``{"root", "direction", "nodes", "edges"}``.

        Each node has ``id`` and ``type`` (``version`` or ``run``); a version node also has
        ``artifact_type`` (``dataset``, ``model``, …) and the fields of :meth:`ArtifactVersion.to_dict`.
        """
        return json.dumps(self.to_dict(), indent=indent)

    def to_dict(self) -> dict[str, Any]:
        """Return the graph as plain data."""
        # the version's own "type" (dataset, model, …) is "artifact_type": "type" is the node's kind
        nodes = [{**v.to_dict(), "id": k, "type": "version", "artifact_type": v.type} for k, v in sorted(self.versions.items())]
        nodes += [
            {"id": f"run:{r.id}", "type": "run", "run_id": r.id, "name": r.name, "kind": r.kind, "status": r.status,
             "parent": r.parent, "started_at": r.started_at}
            for r in sorted(self.runs.values(), key=lambda r: r.id)
        ]
        return {
            "root": self.root, "direction": self.direction, "nodes": nodes,
            "edges": [{"source": s, "target": t, "kind": k} for s, t, k in sorted(set(self.edges))],
        }

    def _ids(self) -> dict[str, str]:
        ordered = sorted(self.versions) + sorted(f"run:{r}" for r in self.runs)
        return {node: f"n{i}" for i, node in enumerate(ordered)}

    def to_mermaid(self) -> str:
        """Return a Mermaid ``flowchart LR`` (GitHub renders it in Markdown)."""
        ids = self._ids()
        lines = ["flowchart LR"]
        for node, nid in ids.items():
            text = _mermaid_text(self.label(node, short=True))
            lines.append(f'    {nid}[["{text}"]]' if node.startswith("run:") else f'    {nid}(["{text}"])')
        for s, t, kind in sorted(set(self.edges)):
            if s in ids and t in ids:
                lines.append(f"    {ids[s]} -.-> {ids[t]}" if kind in _RUN_LINKS else f"    {ids[s]} --> {ids[t]}")
        lines.append("    classDef run fill:#fde68a,stroke:#b45309")
        lines.append("    classDef failed fill:#fecaca,stroke:#b91c1c")
        runs = [ids[n] for n in ids if n.startswith("run:") and self.runs[n[4:]].status != "failed"]
        failed = [ids[n] for n in ids if n.startswith("run:") and self.runs[n[4:]].status == "failed"]
        if runs:
            lines.append(f"    class {','.join(runs)} run")
        if failed:
            lines.append(f"    class {','.join(failed)} failed")
        if self.root in ids:
            lines.append(f"    style {ids[self.root]} stroke-width:3px")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Return a Graphviz DOT digraph, laid out left to right."""
        ids = self._ids()
        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for node, nid in ids.items():
            text = self.label(node, short=True).replace("\\", "\\\\").replace('"', '\\"')
            shape = "shape=ellipse"
            if node.startswith("run:"):
                fill = "#fecaca" if self.runs[node[4:]].status == "failed" else "#fde68a"
                shape = f'shape=box, style="filled,rounded", fillcolor="{fill}"'
            lines.append(f'  {nid} [label="{text}", {shape}];')
        for s, t, kind in sorted(set(self.edges)):
            if s in ids and t in ids:
                style = " [style=dashed]" if kind in _RUN_LINKS else ""
                lines.append(f"  {ids[s]} -> {ids[t]}{style};")
        lines.append("}")
        return "\n".join(lines)

    def to_svg(self, *, show_deleted: bool = False, show_failed: bool = False, collapse: bool = False,
               max_width: float | None = None) -> str:
        """Return the graph drawn left to right as standalone SVG, the way the dashboard draws it.

        :param show_deleted: draw deleted versions (marked) instead of hiding them.
        :param show_failed: draw failed runs (marked) instead of hiding them.
        :param collapse: draw each flow as one node instead of a box around its runs.
        :param max_width: scale the picture down to at most this many pixels wide.
        """
        options = DrawOptions(show_deleted=show_deleted, show_failed=show_failed, collapsed=("*",) if collapse else ())
        from plait.tracking.drawing import to_svg  # here: commands that draw nothing skip its XML imports

        return to_svg(layout(self, options), max_width=max_width)

    def to_tree(self) -> str:
        """Return an indented text tree from the root, following the query's direction.

        Upstream, a run also shows the runs around it that used something (a fit inside a task
        works from the task's inputs); downstream, a run also shows the runs inside it that
        made something (the task's fit and its checkpoints). A node met again says ``(see above)``.
        """
        lines: list[str] = []
        if self.direction != "downstream":
            lines += self._tree(up=True)
        if self.direction != "upstream":
            lines += ([""] if lines else []) + self._tree(up=False)
        return "\n".join(lines)

    def _tree(self, *, up: bool) -> list[str]:
        nexts = self._tree_steps(up)
        lines: list[str] = []
        seen: set[str] = set()
        # (node, prefix of its children, its own line's prefix); a stack, not recursion: chains may be deep
        stack: list[tuple[str, str, str]] = [(self.root, "", "")]
        while stack:
            node, child_prefix, head = stack.pop()
            repeat = node in seen
            lines.append(f"{head}{self.label(node)}{'  (see above)' if repeat else ''}")
            if repeat:
                continue
            seen.add(node)
            children = nexts.get(node, [])
            arrow = "<- " if up else "-> "
            for i in reversed(range(len(children))):
                last = i == len(children) - 1
                stack.append((children[i], child_prefix + ("   " if last else "│  "),
                              child_prefix + ("└─ " if last else "├─ ") + arrow))
        return lines

    def _tree_steps(self, up: bool) -> dict[str, list[str]]:
        """Return ``{node: next nodes}`` for a tree in one direction."""
        flow: dict[str, set[str]] = {}
        links: dict[str, set[str]] = {}  # run -> runs it continues (parent, previous segment) or is continued by
        for s, t, k in self.edges:
            if k in _RUN_LINKS:
                a, b = (t, s) if up else (s, t)
                links.setdefault(a, set()).add(b)
            elif up:
                flow.setdefault(t, set()).add(s)
            else:
                flow.setdefault(s, set()).add(t)
        steps: dict[str, list[str]] = {}
        for node in set(flow) | set(links):
            found = set(flow.get(node, ()))
            # upstream: the runs around a run that used something; downstream: the runs inside it that made something
            found |= {r for r in links.get(node, ()) if flow.get(r)}
            steps[node] = sorted(found)
        return steps

    def to_openlineage(self, namespace: str = "plait") -> list[dict[str, Any]]:
        """Return one OpenLineage ``COMPLETE``/``FAIL`` RunEvent per run in the graph."""
        events = []
        for run in sorted(self.runs.values(), key=lambda r: r.id):
            node = f"run:{run.id}"
            inputs = [{"namespace": namespace, "name": s} for s, t, k in self.edges if t == node and k == "used"]
            outputs = [{"namespace": namespace, "name": t} for s, t, k in self.edges if s == node and k == "produced"]
            events.append({
                "eventType": {"finished": "COMPLETE", "failed": "FAIL"}.get(run.status, "RUNNING"),
                "eventTime": run.ended_at or run.started_at,
                "run": {"runId": run.id},
                "job": {"namespace": namespace, "name": run.name},
                "inputs": inputs, "outputs": outputs, "producer": "https://github.com/plait",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
            })
        return events


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def lineage(store: Store, spec: str, direction: str = "upstream", depth: int | None = None, parents: bool = True,
            producers: str = "preferred") -> LineageGraph:
    """Return the lineage graph of a version (``name``, ``name:v3``, ``name:alias``) or a run id.

    :param direction: ``upstream`` (what it was made from), ``downstream`` (what was made from
        it) or ``both``.
    :param depth: how many runs away to go; ``None`` for all.
    :param parents: also include the runs that contain the graph's runs (flows around tasks) and
        the earlier segments of implicit runs.
    :param producers: ``preferred`` follows each version's preferred producer
        (:attr:`ArtifactVersion.produced_by`); ``all`` follows every run that produced it.
    :raises InvalidInputError: for an unknown direction or producers mode, or a negative depth.
    :raises NotFoundError: for an unknown version or run.
    """
    if direction not in DIRECTIONS:
        raise InvalidInputError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if producers not in P.MODES:
        raise InvalidInputError(f"producers must be one of {', '.join(P.MODES)}, not {producers!r}")
    if depth is not None and depth < 0:
        raise InvalidInputError(f"depth must be 0 or more, not {depth}")
    catalog = store.catalog
    run_root = _as_run(store, spec)
    up_seeds: list[tuple[tuple[str, int], str | None]]  # what the root was made from, and when it was used
    if run_root is not None:
        root = f"run:{run_root}"
        up_seeds = list(G.used_by_run(catalog, run_root))
        down_seeds = G.logged_by_run(catalog, run_root)
        inside = SUB.runs_inside(catalog, run_root) | {run_root}
        if len(inside) > 1:  # a flow: the graph of everything its runs used and logged
            up_seeds = SUB.used_inside(catalog, run_root)
            down_seeds = sorted(SUB.logged_inside(catalog, run_root))
        run_depth = None if depth is None else depth - 1
    else:
        name, number = store.resolve(spec)
        root = f"{name}:v{number}"
        up_seeds, down_seeds = [((name, number), None)], [(name, number)]
        run_depth = depth
        inside = set()
    graph = LineageGraph(root=root, direction=direction)
    run_ids: set[str] = set(inside)
    version_keys: set[tuple[str, int]] = set()
    made_by: dict[tuple[str, int], set[str]] = {}
    if run_depth is None or run_depth >= 0:
        walks = []
        if direction in ("upstream", "both"):
            walks.append(G.upstream(catalog, up_seeds, run_depth, producers))
        if direction in ("downstream", "both"):
            walks.append(G.downstream(catalog, down_seeds, run_depth, producers))
        for walk in walks:
            version_keys |= set(walk.versions)
            run_ids |= walk.runs
            for key, runs in walk.made_by.items():
                made_by.setdefault(key, set()).update(runs)
    if run_root is None:
        version_keys.add((name, number))
    else:
        made_by_root = {key for key in G.logged_by_run(catalog, run_root) if key in version_keys}
        for key in made_by_root:
            made_by.setdefault(key, set()).add(run_root)
    _fill(store, graph, version_keys, run_ids, parents, producers, made_by)
    return graph


def _as_run(store: Store, spec: str) -> str | None:
    text = spec[4:] if spec.startswith("run:") else spec
    try:
        parse_spec(text)
        if ":" in text or V.latest_number(store.catalog, text) is not None:
            return None
    except InvalidInputError:
        pass
    if RQ.run(store.catalog, text) is not None:
        return text
    if spec.startswith("run:") or len(text) == 26:
        return RunRecord.load(store, text).id
    return None


def _fill(store: Store, graph: LineageGraph, version_keys: set[tuple[str, int]], run_ids: set[str], parents: bool,
          mode: str, made_by: dict[tuple[str, int], set[str]]) -> None:
    """Build the graph's nodes in bulk (one query per kind, on one synced index) and its edges."""
    catalog = store.catalog
    graph.versions.update((v.spec, v) for v in ArtifactVersion.from_rows(store, V.rows(catalog, version_keys)))
    graph.runs.update((r.id, RunRecord.from_row(store, r)) for r in RQ.rows(catalog, run_ids))
    if parents:  # first, so the inputs of the runs around a run become edges too
        todo = {o for r in graph.runs.values() for o in _outer(r) if o not in graph.runs}
        while todo:
            found = {r.id: RunRecord.from_row(store, r) for r in RQ.rows(catalog, todo)}
            graph.runs.update(found)
            todo = {o for r in found.values() for o in _outer(r) if o not in graph.runs}
    for run in graph.runs.values():
        if run.parent in graph.runs:
            graph.edges.append((f"run:{run.parent}", f"run:{run.id}", "parent"))
        previous = run.info.get("previous")
        if isinstance(previous, str) and previous in graph.runs:
            graph.edges.append((f"run:{previous}", f"run:{run.id}", "previous"))
    for run_id, name, number in RQ.uses(catalog, graph.runs):
        if f"{name}:v{number}" in graph.versions:
            graph.edges.append((f"{name}:v{number}", f"run:{run_id}", "used"))
    # the producers the walks went through; a version they did not step through (a seed of a
    # downstream query) shows the producers a query of its own would follow
    made = dict(made_by)
    for key, rows in P.chosen(catalog, [k for k in version_keys if k not in made_by], mode).items():
        made[key] = {p.run for p in rows}
    for (name, number), runs in made.items():
        graph.edges.extend((f"run:{run}", f"{name}:v{number}", "produced") for run in runs if run in graph.runs)
    graph.edges = sorted(set(graph.edges))
    graph.versions = dict(sorted(graph.versions.items()))


def _outer(run: RunRecord) -> list[str]:
    """The runs ``run`` continues: its parent, and the segment before it (for an implicit run)."""
    previous = run.info.get("previous")
    return [r for r in (run.parent, previous if isinstance(previous, str) else None) if r]
