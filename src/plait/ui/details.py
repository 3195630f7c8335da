"""What the dashboard's pages show beyond a record: a run's whole subtree, metrics, usage snippets,
alias histories and side-by-side comparisons, as JSON-ready dicts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plait.formats import records as R
from plait.index import events as E
from plait.index import subtree
from plait.index.rows import VersionRow
from plait.ui.tables import hf_dataset_files, hf_splits

if TYPE_CHECKING:
    import plait

#: The most versions a comparison puts side by side.
MAX_COMPARE = 8
#: The most rows (keys) a comparison lists.
MAX_KEYS = 500


def brief_row(row: VersionRow) -> dict[str, Any]:
    """Return a version row as the pages link it: spec, name, number, type, size, deleted."""
    return {"spec": f"{row.name}:v{row.number}", "name": row.name, "number": row.number, "type": row.type,
            "size": row.size, "deleted": row.deleted}


def flatten(value: Any, *, numbers_only: bool = False, prefix: str = "") -> dict[str, Any]:
    """Return nested dicts as ``{"a.b.c": leaf}``; lists stay leaves (shown as JSON).

    :param numbers_only: keep only numeric leaves (metrics).
    """
    if not isinstance(value, Mapping):
        keep = not numbers_only or (isinstance(value, (int, float)) and not isinstance(value, bool))
        return {prefix: value} if keep and prefix else {}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(flatten(v, numbers_only=numbers_only, prefix=f"{prefix}.{k}" if prefix else str(k)))
    return out


def metrics(run: plait.RunRecord) -> dict[str, Any]:
    """Return a run's metrics: ``summary["metrics"]`` when it has one, else the numbers in its summary."""
    found = run.summary.get("metrics")
    if isinstance(found, Mapping):
        return flatten(found, numbers_only=True)
    return flatten(run.summary, numbers_only=True)


def run_details(run: plait.RunRecord) -> dict[str, Any]:
    """Return what a run's page adds to the record: inherited inputs, its subtree's inputs and outputs, metrics.

    A run nested in another also works on what the runs around it had used before it started
    (a Lightning fit inside a Prefect task): those are ``inherited``. A run with runs inside it (a
    flow) shows what its whole subtree read from outside and everything it logged, marking the
    intermediate versions (used again inside).
    """
    catalog = run.store.catalog
    out: dict[str, Any] = {"metrics": metrics(run), "inherited": [
        {**brief_row(v), "via": via} for v, via in subtree.inherited(catalog, run.id)]}
    if run.children:
        used = {key for key, _ in subtree.used_inside(catalog, run.id)}
        names = {r.id: r.name for r in _runs_inside(run)}
        out["subtree"] = {
            "runs": len(names),
            "inputs": [{**brief_row(v), "run": {"id": r, "name": names.get(r, r)}} for v, r in subtree.inputs(catalog, run.id)],
            "outputs": [{**brief_row(v), "run": {"id": r, "name": names.get(r, r)}, "intermediate": (v.name, v.number) in used}
                        for v, r in subtree.outputs(catalog, run.id)],
        }
    return out


def _runs_inside(run: plait.RunRecord) -> list[plait.RunRecord]:
    found, todo = [], [run]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(current.children)
    return found


def usage(version: plait.ArtifactVersion) -> list[dict[str, str]]:
    """Return how to get this version from Python and from the command line, as copyable snippets."""
    spec = version.spec
    named = [a for a in version.aliases if a != "latest"]
    hint = f"  # or {version.name}:{named[0]}" if named else ""
    snippets = [
        {"label": "Python", "code": f'import plait\n\nv = plait.get("{spec}"){hint}\nfolder = v.download("{version.name}")'},
        {"label": "In a run", "code": f'with plait.run("my-step") as run:\n    v = run.use("{spec}")  # recorded as an input'},
        {"label": "Command line", "code": f"plait get {spec} {version.name}/"},
    ]
    if hf_dataset_files(version, "") is not None or hf_splits(version) or version.manifest.get("dataset_dict.json"):
        snippets.insert(1, {"label": "Hugging Face", "code": (
            f'from plait.integrations.huggingface import load\n\nds = load("{spec}")  # a Dataset or DatasetDict')})
    elif version.type == "model" and any(e.path.endswith(".ckpt") for e in version.files()[:50]):
        snippets.insert(1, {"label": "Lightning", "code": (
            f'import plait\n\nmodel = plait.load("{spec}", MyLightningModule)')})
    return snippets


def alias_history(store: plait.Store, name: str) -> list[dict[str, Any]]:
    """Return every alias change of an artifact, newest first: alias, kind, version, previous version, who, run."""
    out = []
    for event in E.of_name(store.catalog, name):
        if event.kind not in (R.ALIAS_SET, R.ALIAS_REMOVED):
            continue
        d = event.data
        out.append({"time": event.time, "kind": "set" if event.kind == R.ALIAS_SET else "removed", "alias": d.get("alias"),
                    "number": d.get("number"), "old": d.get("old"), "user": event.user, "run": event.run,
                    "protected": bool(d.get("protected"))})
    return sorted(out, key=lambda e: e["time"], reverse=True)


def compare(versions: Sequence[plait.ArtifactVersion]) -> dict[str, Any]:
    """Put versions side by side: facts, metadata, their producing runs' config and metrics.

    :returns: ``{"versions": [...], "sections": [{"title", "rows": [{"key", "values", "differs"}]}]}``;
        a value a version lacks is ``None``.
    """
    producers = [v.produced_by for v in versions]
    columns = [{"spec": v.spec, "name": v.name, "number": v.number, "type": v.type,
                "run": {"id": r.id, "name": r.name, "status": r.status} if r else None} for v, r in zip(versions, producers)]
    facts = [{"size": v.size, "files": v.file_count, "created": v.created_at, "digest": v.digest[:12],
              "aliases": ", ".join(v.aliases)} for v in versions]
    sections = [
        ("Facts", facts),
        ("Metadata", [flatten(dict(v.metadata)) for v in versions]),
        ("Metrics", [metrics(r) if r else {} for r in producers]),
        ("Config", [flatten(r.config) if r else {} for r in producers]),
    ]
    return {"versions": columns, "sections": [{"title": t, "rows": _rows(values)} for t, values in sections]}


def _rows(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys: dict[str, None] = {}
    for v in values:
        keys.update(dict.fromkeys(v))
    rows = []
    for key in list(keys)[:MAX_KEYS]:
        cells = [_shown(v.get(key)) for v in values]
        rows.append({"key": key, "values": cells, "differs": len({json.dumps(c, sort_keys=True) for c in cells}) > 1})
    return rows


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) or len(value) <= 300 else value[:299] + "…"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:299] + "…"
