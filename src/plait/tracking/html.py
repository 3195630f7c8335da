"""Notebook views: the HTML a Jupyter notebook shows for a version, a run, a lineage graph, a diff
or a history (their ``_repr_html_``), and short plain ``repr`` texts.

Everything is inline and offline: no script, no stylesheet, no network; the lineage is the same
SVG the dashboard draws (:mod:`plait.tracking.drawing`). Every value is escaped. This module
reads the objects it is given by their attributes only, so the classes it draws can import it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from plait.base.describe import human_size
from plait.tracking.drawing import to_svg
from plait.tracking.layout import DrawOptions, GraphLike, layout

_BOX = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;line-height:1.45;color:#1f2933"
_TABLE = "border-collapse:collapse;margin:4px 0"
_CELL = "border-bottom:1px solid #e5e7eb;padding:2px 10px 2px 0;text-align:left;vertical-align:top"
_BADGE = "display:inline-block;padding:0 7px;border-radius:9px;font-size:11.5px;margin-right:3px;font-weight:600;"
_ALIAS = _BADGE + "background:#d1fae5;color:#047857"
_TAG = _BADGE + "background:#ede9fe;color:#5b21b6"
_TYPE = "font-size:12px;color:#5b21b6;background:#ede9fe;border-radius:4px;padding:0 6px"
_MUTED = "color:#6b7785"
_STATUS = {"finished": "background:#d1fae5;color:#065f46", "failed": "background:#fee2e2;color:#991b1b",
           "running": "background:#e0f2fe;color:#075985"}
#: The most rows a notebook table shows before saying how many more there are.
MAX_ROWS = 50


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _badges(aliases: Iterable[str], style: str = _ALIAS) -> str:
    return "".join(f"<span style='{style}'>{_e(a)}</span>" for a in aliases)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: bool = False) -> str:
    """Return an HTML table; cells are escaped unless ``raw`` (for cells built here from escaped parts)."""
    shown = rows[:MAX_ROWS]
    head = "".join(f"<th style='{_CELL};{_MUTED}'>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in shown)
    more = f"<div style='{_MUTED}'>… and {len(rows) - MAX_ROWS} more</div>" if len(rows) > MAX_ROWS else ""
    return f"<table style='{_TABLE}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def version_html(v: Any) -> str:
    """Return a card for an :class:`~plait.ArtifactVersion`: facts, aliases, tags, notes, metadata."""
    preferred, others = v.produced_by, len(v.producers) - 1
    producer = "-"
    if preferred is not None:
        producer = _e(f"{preferred.name} ({preferred.status}) {preferred.id}") + (
            f" <span style='{_MUTED}'>and {others} other run{'s' if others > 1 else ''}</span>" if others > 0 else "")
    facts = [("digest", f"<code>{_e(v.digest)}</code>"), ("size", _e(f"{human_size(v.size)} in {v.file_count} files")),
             ("created", _e(v.created_at)), ("produced by", producer)]
    if v.deleted:
        facts.append(("deleted", "<b style='color:#b91c1c'>yes</b>"))
    rows = "".join(f"<tr><td style='{_CELL};{_MUTED}'>{k}</td><td style='{_CELL}'>{val}</td></tr>" for k, val in facts)
    meta = _table(["key", "value"], [(k, _json(val)) for k, val in dict(v.metadata).items()]) if v.metadata else ""
    notes = f"<pre style='white-space:pre-wrap;margin:4px 0;{_MUTED}'>{_e(v.description[:2000])}</pre>" if v.description else ""
    return (f"<div style=\"{_BOX}\"><div style='font-size:15px;font-weight:700'>{_e(v.spec)} "
            f"<span style='{_TYPE}'>{_e(v.type)}</span> {_badges(v.aliases)} {_badges(v.tags, _TAG)}</div>"
            f"<table style='{_TABLE}'>{rows}</table>{notes}{meta}</div>")


def version_repr(v: Any) -> str:
    """Return ``<ArtifactVersion model:v3 model, 12.3 MiB in 4 files, aliases: best, latest, tags: eu>``."""
    aliases = f", aliases: {', '.join(v.aliases)}" if v.aliases else ""
    aliases += f", tags: {', '.join(v.tags)}" if v.tags else ""
    deleted = ", deleted" if v.deleted else ""
    return f"<ArtifactVersion {v.spec} {v.type}, {human_size(v.size)} in {v.file_count} files{aliases}{deleted}>"


def _spec_list(versions: Iterable[Any]) -> str:
    items = [f"{_e(v.spec)} <span style='{_TYPE}'>{_e(v.type)}</span> {_badges(a for a in v.aliases if a != 'latest')}" for v in versions]
    return "<br>".join(items) if items else f"<span style='{_MUTED}'>none</span>"


def run_html(run: Any) -> str:
    """Return a card for a run: status, times, config, summary, inputs and outputs."""
    status = f"<span style='{_BADGE}{_STATUS.get(run.status, '')}'>{_e(run.status)}</span>"
    ended = f" → {_e(run.ended_at)}" if run.ended_at else ""
    error = f"<div style='color:#b91c1c'>{_e(run.error)}</div>" if run.error else ""
    config = _table(["config", "value"], [(k, _json(v)) for k, v in run.config.items()]) if run.config else ""
    summary = _table(["summary", "value"], [(k, _json(v)) for k, v in run.summary.items()]) if run.summary else ""
    io = (f"<table style='{_TABLE}'><tr><th style='{_CELL};{_MUTED}'>inputs</th><th style='{_CELL};{_MUTED}'>outputs</th></tr>"
          f"<tr><td style='{_CELL}'>{_spec_list(run.inputs)}</td><td style='{_CELL}'>{_spec_list(run.outputs)}</td></tr></table>")
    return (f"<div style=\"{_BOX}\"><div style='font-size:15px;font-weight:700'>{_e(run.name)} "
            f"<span style='{_TYPE}'>{_e(run.kind)}</span> {status}</div>"
            f"<div style='{_MUTED}'>{_e(run.id)} · {_e(run.started_at)}{ended}</div>{error}{io}{config}{summary}</div>")


def graph_html(graph: GraphLike, options: DrawOptions | None = None, *, max_width: float = 1100) -> str:
    """Return a lineage graph drawn as the dashboard draws it (SVG), scrollable when large."""
    lay = layout(graph, options)
    hidden = [f"{n} {what}" for what, n in (("deleted versions", lay.hidden["deleted"]), ("failed runs", lay.hidden["failed"])) if n]
    note = f"<div style='{_MUTED}'>hidden: {', '.join(hidden)}</div>" if hidden else ""
    width = max_width if lay.width > max_width * 2 else None  # a very wide graph scrolls rather than shrinks to nothing
    svg = to_svg(lay, max_width=None if width is None else max(max_width, lay.width / 2))
    return (f"<div style=\"{_BOX}\"><div style='{_MUTED}'>lineage of {_e(graph.root)}: {len(graph.versions)} versions, "
            f"{len(graph.runs)} runs</div>{note}<div style='overflow:auto;max-height:640px;border:1px solid #e5e7eb;"
            f"border-radius:6px;background:#fcfcfd'>{svg}</div></div>")


def diff_html(diff: Any) -> str:
    """Return a diff as a summary line and a table of changed paths."""
    rows = ([("+", p, human_size(s)) for p, s in diff.added] + [("−", p, human_size(s)) for p, s in diff.removed]
            + [("M", p, f"{human_size(a)} → {human_size(b)}") for p, a, b in diff.modified])
    head = (f"{_e(diff.old)} → {_e(diff.new)}: {len(diff.added)} added, {len(diff.removed)} removed, "
            f"{len(diff.modified)} modified, {diff.unchanged} unchanged")
    return f"<div style=\"{_BOX}\"><div style='font-weight:600'>{head}</div>{_table(['', 'path', 'size'], rows) if rows else ''}</div>"


def history_html(entries: Sequence[Any]) -> str:
    """Return a version's history as a table, newest first."""
    rows = [(e.time.replace("T", " ")[:19], e.version, str(e).split(e.version, 1)[-1].rsplit(" by ", 1)[0].strip(), e.user,
             (e.run or "-")[-8:]) for e in reversed(entries)]
    return f"<div style=\"{_BOX}\">{_table(['time', 'version', 'change', 'by', 'run'], rows)}</div>"
