"""Draw a laid-out lineage graph as SVG: the same picture in the dashboard and in a notebook.

Colours are SVG presentation attributes, not a ``<style>`` element, so the picture looks the
same inline in a notebook and under the dashboard's Content-Security-Policy (which refuses
inline styles); the dashboard's stylesheet only adds hover and focus. Every name, alias and
status is data: it goes in escaped. Nodes carry their id, column and position as ``data-``
attributes, so the page (and its tests) can read where each node was placed.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from plait.tracking.layout import GROUP_HEAD, Box, GroupBox, Layout, Route

#: fill, stroke per node kind; marks override the stroke.
COLOURS = {
    "version": ("#dbeafe", "#2563eb"),
    "run": ("#fef3c7", "#b45309"),
    "group": ("#fde68a", "#92400e"),
    "cluster": ("#e0e7ff", "#4338ca"),
}
EDGE_COLOURS = {"used": "#64748b", "produced": "#b45309", "produced-also": "#e7b98a", "parent": "#d97706", "previous": "#94a3b8"}
#: Dashes per edge kind (a run inside or after another run; another producer than the preferred one).
EDGE_DASHES = {"parent": "5 4", "previous": "5 4", "produced-also": "2 3"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_NAMES: dict[str, str] = {}


def _attrs(**values: object) -> str:
    # a 500-node drawing writes ~20,000 attributes: numbers go in as they are, text escaped once
    out = []
    for key, value in values.items():
        if value is None:
            continue
        name = _NAMES.get(key) or _NAMES.setdefault(key, key.rstrip("_").replace("_", "-"))
        text = value if isinstance(value, (int, float)) else escape(str(value), {'"': "&quot;"})
        out.append(f' {name}="{text}"')
    return "".join(out)


def _curve(points: tuple[tuple[float, float], ...]) -> str:
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for (px, py), (qx, qy) in zip(points, points[1:]):
        mx = (px + qx) / 2
        d += f" C{mx:.1f},{py:.1f} {mx:.1f},{qy:.1f} {qx:.1f},{qy:.1f}"
    return d


def _node(box: Box) -> str:
    d = box.data
    fill, stroke = COLOURS[box.kind]
    classes = ["node", box.kind]
    dash = None
    width = 1.5
    for mark in ("root", "deleted", "failed"):
        if d.get(mark):
            classes.append(mark)
    if d.get("failed"):
        fill, stroke = "#fee2e2", "#b91c1c"
    if d.get("deleted"):
        fill, dash = "#f3f4f6", "5 3"
    if d.get("root"):
        stroke, width = "#111827", 3.5
    rounded = box.h / 2 if box.kind in ("version", "cluster") else 5
    tx = 18 if box.kind in ("version", "cluster") else 10
    # text is 11 px grey unless said otherwise: the <svg> element carries those defaults
    lines = [(_clip(d.get("title", ""), 23), 19, "label", "600", "#111827"),
             (_clip(d.get("sub", ""), 27), 34, "sub", None, None)]
    if d.get("extra"):
        aliases = box.kind == "version"
        lines.append((_clip(d["extra"], 27), 48, "aliases" if aliases else "sub", "600" if aliases else None,
                      "#047857" if aliases else None))
    marks = [m for m in ("deleted", "failed") if d.get(m)]
    out = [f"<g{_attrs(class_=' '.join(classes), transform=f'translate({box.x:.1f},{box.y:.1f})', data_id=box.id, data_kind=box.kind, data_x=f'{box.x:.1f}', data_y=f'{box.y:.1f}', data_layer=box.layer, data_href=d.get('href'), data_run=d.get('run_id'), tabindex='0', role='link')}>",
           f"<title>{escape(d.get('tip', d.get('title', '')))}</title>",
           f"<rect{_attrs(width=box.w, height=box.h, rx=rounded, ry=rounded, fill=fill, stroke=stroke, stroke_width=width, stroke_dasharray=dash)}/>"]
    for text, y, cls, weight, colour in lines:
        size = 12 if cls == "label" else None
        out.append(f"<text{_attrs(x=tx, y=y, class_=cls, font_size=size, font_weight=weight, fill=colour)}>{escape(text)}</text>")
    if marks:
        out.append(f"<text{_attrs(x=box.w - 8, y=14, text_anchor='end', font_size=10, font_weight='700', fill='#b91c1c', class_='mark')}>"
                   f"{escape(' '.join(marks).upper())}</text>")
    out.append("</g>")
    return "".join(out)


def _group(box: GroupBox) -> str:
    failed = box.status == "failed"
    stroke = "#b91c1c" if failed else "#111827" if box.root else "#d97706"
    title = box.title + ("" if box.status == "finished" else f" · {box.status}")
    classes = "group" + (" failed" if failed else "") + (" root" if box.root else "")
    return (f"<g{_attrs(class_=classes, data_run=box.run_id, data_href=f'/r/{box.run_id}')}>"
            f"<rect{_attrs(x=f'{box.x:.1f}', y=f'{box.y:.1f}', width=f'{box.w:.1f}', height=f'{box.h:.1f}', rx=8, ry=8, fill='#fffbeb', fill_opacity='0.55', stroke=stroke, stroke_width=3 if box.root else 1.2, stroke_dasharray='6 4')}/>"
            f"<text{_attrs(x=f'{box.x + 10:.1f}', y=f'{box.y + GROUP_HEAD - 7:.1f}', class_='group-title', font_size=11.5, font_weight='600', fill='#92400e')}>{escape(_clip(title, 60))}</text>"
            f"<text{_attrs(x=f'{box.x + box.w - 10:.1f}', y=f'{box.y + GROUP_HEAD - 7:.1f}', class_='group-toggle', text_anchor='end', font_size=11, fill='#92400e', data_collapse=box.run_id, role='button', tabindex='0')}>collapse ▾</text>"
            "</g>")


def _edge(route: Route) -> str:
    colour = EDGE_COLOURS.get(route.kind, "#94a3b8")
    return (f"<path{_attrs(class_=f'edge {route.kind}' + (' back' if route.reversed else ''), d=_curve(route.points), fill='none', stroke=colour, stroke_width=1.6, stroke_dasharray='3 3' if route.reversed else EDGE_DASHES.get(route.kind), marker_end='url(#plait-arrow)', data_source=route.source, data_target=route.target)}/>")


def to_svg(lay: Layout, *, max_width: float | None = None) -> str:
    """Return the layout as one standalone SVG element.

    :param lay: a layout from :func:`plait.tracking.layout.layout`.
    :param max_width: scale the picture down to at most this many pixels wide (its ``viewBox``
        keeps every node; ``None`` draws it at full size).
    :returns: SVG markup with no script and no external reference.
    """
    width, height = max(lay.width, 120.0), max(lay.height, 60.0)
    shown_w = min(width, max_width) if max_width else width
    shown_h = height * shown_w / width
    head = (f"<svg{_attrs(xmlns='http://www.w3.org/2000/svg', class_='lineage', viewBox=f'0 0 {width:.0f} {height:.0f}', width=f'{shown_w:.0f}', height=f'{shown_h:.0f}', font_family=FONT, font_size=11, fill='#4b5563', data_root=lay.root, data_nodes=len(lay.nodes), data_crossings=lay.crossings, data_layers=lay.layers, data_hidden_deleted=lay.hidden['deleted'], data_hidden_failed=lay.hidden['failed'], role='img')}>"
            "<defs><marker id='plait-arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
            "orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='#64748b'/></marker></defs>")
    body = ["<g class='viewport'>"]
    body += [_group(gb) for gb in lay.groups]
    body += [_edge(r) for r in lay.routes]
    body += [_node(b) for b in sorted(lay.nodes.values(), key=lambda b: b.id)]
    body.append("</g></svg>")
    return head + "".join(body)
