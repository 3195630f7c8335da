"""Commands on the local cache of downloads: cache info, cache clean."""

from __future__ import annotations

import click

from plait.cli.app import Context, human_size, main, pass_ctx, table


@main.group("cache")
def cache_group() -> None:
    """The local cache of downloads (never inside a store): what it holds, and cleaning it."""


@cache_group.command("info")
@pass_ctx
def cache_info(ctx: Context) -> None:
    """Show the cache folder, its bound ([cache] max_size in your settings) and each store's share."""
    from plait.store import cache

    found = cache.info()
    bound = human_size(found.max_size) if found.max_size is not None else "none ([cache] max_size in your settings)"
    rows = [[s.url or "(unknown store)", str(s.files), human_size(s.size)] for s in found.stores]
    lines = [f"cache   {found.root}", f"bound   {bound}", f"holds   {human_size(found.size)} in {found.files} files"]
    if rows:
        lines += ["", table(rows, ["STORE", "FILES", "SIZE"])]
    ctx.emit(found.to_dict(), "\n".join(lines))


@cache_group.command("clean")
@click.option("--max-size", default=None, metavar="SIZE", help="Remove the least recently used files until the cache holds at most SIZE (10GB, 500MiB).")
@click.option("--older-than", default=None, metavar="DURATION", help="Remove files unused for longer than this (7d, 12h).")
@click.option("--all", "everything", is_flag=True, help="Remove every download.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@pass_ctx
def cache_clean(ctx: Context, max_size: str | None, older_than: str | None, everything: bool, dry_run: bool) -> None:
    """Remove downloads from the cache (the next read fetches them again)."""
    from plait.base.sizes import parse_size
    from plait.base.times import parse_duration
    from plait.errors import InvalidInputError
    from plait.store import cache

    if not (max_size or older_than or everything):
        raise InvalidInputError("say what to remove: --max-size SIZE, --older-than DURATION or --all")
    if everything and (max_size or older_than):
        raise InvalidInputError("--all removes every download; give it without --max-size and --older-than")
    bound = parse_size(max_size, what="--max-size") if max_size else None
    age = parse_duration(older_than, what="--older-than").total_seconds() if older_than else None
    r = cache.clean(max_size=bound, older_than=age, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    ctx.emit(r.to_dict(), f"{verb} {r.removed} files ({human_size(r.bytes)}); {human_size(r.left)} left")
