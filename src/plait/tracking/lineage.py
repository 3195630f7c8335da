"""The lineage graph: which runs produced and used which versions, upstream and downstream.

Queries are recursive walks over the index (:mod:`plait.index.graph`), so a chain of twenty
fine-tuning stages is one query. Depth counts runs: ``depth=1`` upstream of a model is
the run that produced it and the versions that run used. Graphs export as a text tree,
Graphviz DOT, Mermaid, JSON and OpenLineage run events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from plait.errors import InvalidInputError
from plait.formats.names import parse_spec
from plait.index import graph as G
from plait.index import runs as RQ
from plait.index import versions as V
from plait.store.base import BaseStore as Store
from plait.tracking.nodes import ArtifactVersion, RunRecord

DIRECTIONS = ("upstream", "downstream", "both")
@dataclass
class LineageGraph:
    """A lineage graph around one version or run.

    :ivar root: node id of where the query started (``name:vN`` or ``run:<id>``).
    :ivar direction: ``upstream``, ``downstream`` or ``both``.
    :ivar versions: ``{"name:vN": ArtifactVersion}``.
    :ivar runs: ``{run id: Run}``.
    :ivar edges: ``(source, target, kind)`` with kind ``used`` (version → run), ``produced``
        (run → version) or ``parent`` (run → child run); run node ids are ``run:<id>``.
    """

    root: str
    direction: str
    versions: dict[str, ArtifactVersion] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    # -- navigation -----------------------------------------------------------------------------

    def producers(self, node: str) -> list[str]:
        """Return the node ids with an edge into ``node``."""
        return [s for s, t, _ in self.edges if t == node]

    def consumers(self, node: str) -> list[str]:
        """Return the node ids ``node`` has an edge to."""
        return [t for s, t, _ in self.edges if s == node]

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
                lines.append(f"    {ids[s]} -.-> {ids[t]}" if kind == "parent" else f"    {ids[s]} --> {ids[t]}")
        lines.append("    classDef run fill:#fde68a,stroke:#b45309")
        runs = [ids[n] for n in ids if n.startswith("run:")]
        if runs:
            lines.append(f"    class {','.join(runs)} run")
        if self.root in ids:
            lines.append(f"    style {ids[self.root]} stroke-width:3px")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Return a Graphviz DOT digraph, laid out left to right."""
        ids = self._ids()
        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for node, nid in ids.items():
            text = self.label(node, short=True).replace("\\", "\\\\").replace('"', '\\"')
            shape = 'shape=box, style="filled,rounded", fillcolor="#fde68a"' if node.startswith("run:") else "shape=ellipse"
            lines.append(f'  {nid} [label="{text}", {shape}];')
        for s, t, kind in sorted(set(self.edges)):
            if s in ids and t in ids:
                style = " [style=dashed]" if kind == "parent" else ""
                lines.append(f"  {ids[s]} -> {ids[t]}{style};")
        lines.append("}")
        return "\n".join(lines)

    def to_tree(self) -> str:
        """Return an indented text tree from the root, following the query's direction."""
        lines: list[str] = []
        seen: set[str] = set()
        up = self.direction != "downstream"
        self._tree(self.root, "", True, lines, seen, up, top=True)
        if self.direction == "both":
            lines.append("")
            self._tree(self.root, "", True, lines, set(), False, top=True)
        return "\n".join(lines)

    def _tree(self, node: str, prefix: str, last: bool, lines: list[str], seen: set[str], up: bool, top: bool = False) -> None:
        arrow = "<- " if up else "-> "
        connector = "" if top else ("└─ " if last else "├─ ")
        repeat = node in seen
        lines.append(f"{prefix}{connector}{'' if top else arrow}{self.label(node)}{'  (see above)' if repeat else ''}")
        if repeat:
            return
        seen.add(node)
        nexts = [n for n in (self.producers(node) if up else self.consumers(node))
                 if not any(k == "parent" for s, t, k in self.edges if (s, t) in ((n, node), (node, n)))]
        if node.startswith("run:") and up:
            # a nested run also works from what the run around it used
            nexts += [s for s, t, k in self.edges if t == node and k == "parent" and self.producers(s)]
        child_prefix = prefix + ("" if top else ("   " if last else "│  "))
        for i, nxt in enumerate(sorted(set(nexts))):
            self._tree(nxt, child_prefix, i == len(set(nexts)) - 1, lines, seen, up)

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


def lineage(store: Store, spec: str, direction: str = "upstream", depth: int | None = None, parents: bool = True) -> LineageGraph:
    """Return the lineage graph of a version (``name``, ``name:v3``, ``name:alias``) or a run id.

    :param direction: ``upstream`` (what it was made from), ``downstream`` (what was made from
        it) or ``both``.
    :param depth: how many runs away to go; ``None`` for all.
    :param parents: also include the runs that contain the graph's runs (flows around tasks).
    :raises InvalidInputError: for an unknown direction or a negative depth.
    :raises NotFoundError: for an unknown version or run.
    """
    if direction not in DIRECTIONS:
        raise InvalidInputError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if depth is not None and depth < 0:
        raise InvalidInputError(f"depth must be 0 or more, not {depth}")
    catalog = store.catalog
    run_root = _as_run(store, spec)
    if run_root is not None:
        root = f"run:{run_root}"
        up_seeds = G.used_by_run(catalog, run_root)
        down_seeds = G.logged_by_run(catalog, run_root)
        run_depth = None if depth is None else depth - 1
    else:
        name, number = store.resolve(spec)
        root = f"{name}:v{number}"
        up_seeds = down_seeds = [(name, number)]
        run_depth = depth
    graph = LineageGraph(root=root, direction=direction)
    run_ids: set[str] = {run_root} if run_root else set()
    version_keys: set[tuple[str, int]] = set()
    if run_depth is None or run_depth >= 0:
        if direction in ("upstream", "both"):
            found = G.upstream(catalog, up_seeds, run_depth)
            version_keys |= set(found)
            run_ids |= G.producers(catalog, [k for k, d in found.items() if run_depth is None or d < run_depth])
        if direction in ("downstream", "both"):
            found = G.downstream(catalog, down_seeds, run_depth)
            version_keys |= set(found)
            run_ids |= G.consumers(catalog, [k for k, d in found.items() if run_depth is None or d < run_depth])
            run_ids |= G.producers(catalog, [k for k, d in found.items() if d > 0])  # runs nested in a consumer
    if run_root is None:
        version_keys.add(up_seeds[0])
    _fill(store, graph, version_keys, run_ids, parents)
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


def _fill(store: Store, graph: LineageGraph, version_keys: set[tuple[str, int]], run_ids: set[str], parents: bool) -> None:
    """Build the graph's nodes in bulk (one query per kind, on one synced index) and its edges."""
    catalog = store.catalog
    graph.versions.update((v.spec, v) for v in ArtifactVersion.from_rows(store, V.rows(catalog, version_keys)))
    graph.runs.update((r.id, RunRecord.from_row(store, r)) for r in RQ.rows(catalog, run_ids))
    if parents:  # first, so the inputs of the runs around a run become edges too
        todo = {r.parent for r in graph.runs.values() if r.parent and r.parent not in graph.runs}
        while todo:
            found = {r.id: RunRecord.from_row(store, r) for r in RQ.rows(catalog, todo)}
            graph.runs.update(found)
            todo = {r.parent for r in found.values() if r.parent and r.parent not in graph.runs}
        graph.edges.extend((f"run:{r.parent}", f"run:{r.id}", "parent") for r in graph.runs.values() if r.parent in graph.runs)
    for run_id, name, number in RQ.uses(catalog, graph.runs):
        if f"{name}:v{number}" in graph.versions:
            graph.edges.append((f"{name}:v{number}", f"run:{run_id}", "used"))
    for run_id, name, number in RQ.produced(catalog, graph.runs):
        if f"{name}:v{number}" in graph.versions:
            graph.edges.append((f"run:{run_id}", f"{name}:v{number}", "produced"))
    graph.edges = sorted(set(graph.edges))
    graph.versions = dict(sorted(graph.versions.items()))
