"""``plait find``: search versions across every name, from the index."""

from __future__ import annotations

import json
from typing import Any

import click

from plait.cli.app import Context, human_size, main, pass_ctx, table

#: Rows a page shows unless --limit says otherwise.
DEFAULT_LIMIT = 50


@main.command("find")
@click.option("--type", "-t", "types", multiple=True, help="Only versions of this type (repeatable: any of them).")
@click.option("--name", "-n", "names", multiple=True, help="Only versions of this name; ckpt-* is a glob (repeatable: any).")
@click.option("--tag", "tags", multiple=True, help="Only versions carrying this tag (repeatable: all of them).")
@click.option("--alias", "-a", "aliases", multiple=True,
              help="Only versions this alias points at; latest for each name's latest (repeatable: any).")
@click.option("--where", "-w", "where", multiple=True, metavar="COND",
              help="A condition on a field or a metadata key: metrics.accuracy>0.9, type=model, name~ckpt-*, "
                   "reviewed (present), !archived (absent); OP is = != > >= < <= ~ (repeatable: all of them).")
@click.option("--created-after", default=None, metavar="TIME", help="Logged after: 2026-11-01, an ISO time, or 7d (ago).")
@click.option("--created-before", default=None, metavar="TIME", help="Logged before: 2026-11-01, an ISO time, or 7d (ago).")
@click.option("--sort", "-s", "sort", multiple=True, metavar="KEY",
              help="Sort by a field or metadata key, - in front for descending (-metrics.accuracy). Default: newest first.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=DEFAULT_LIMIT, show_default=True, help="Versions per page.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many first.")
@click.option("--deleted", is_flag=True, help="Include deleted versions.")
@pass_ctx
def find_cmd(ctx: Context, types: tuple[str, ...], names: tuple[str, ...], tags: tuple[str, ...],
             aliases: tuple[str, ...], where: tuple[str, ...], created_after: str | None, created_before: str | None,
             sort: tuple[str, ...], limit: int, offset: int, deleted: bool) -> None:
    """Search versions by type, name, tags, aliases, metadata and time; newest first, a page at a time."""
    from plait.formats.query import parse_condition, parse_sort

    found = ctx.store.find(type=types, name=names, tag=tags, alias=aliases, where=where, created_after=created_after,
                           created_before=created_before, sort=sort, limit=limit, offset=offset, deleted=deleted)
    keys = list(dict.fromkeys(k for k in [*(parse_condition(w).key for w in where), *(parse_sort(s).key for s in sort)]
                              if k.field is None))
    rows = [[v.spec + (" (deleted)" if v.deleted else ""), v.type, human_size(v.size), ",".join(v.aliases),
             ",".join(v.tags), *(_shown(v.metadata, k.path) for k in keys), v.created_at[:19]] for v in found]
    text = table(rows, ["VERSION", "TYPE", "SIZE", "ALIASES", "TAGS", *(str(k).upper() for k in keys), "CREATED"])
    if not found:
        text = "no versions match" + (f" past the first {found.total}" if found.total else "")
    elif found.more or offset:
        text += f"\n{offset + 1}-{offset + len(found)} of {found.total}" + (
            f"; --offset {offset + len(found)} for more" if found.more else "")
    ctx.emit(found.to_dict(), text)


def _shown(metadata: Any, path: tuple[str, ...]) -> str:
    node = metadata
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return "-"
        node = node[part]
    return node if isinstance(node, str) else json.dumps(node)
