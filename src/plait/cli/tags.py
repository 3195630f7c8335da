"""``plait tag`` (put tags on a version or take them off) and ``plait tags`` (every tag in use)."""

from __future__ import annotations

import click

from plait.cli.app import Context, main, pass_ctx, table


@main.command("tag")
@click.argument("spec")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Take the tags off instead of putting them on.")
@pass_ctx
def tag_cmd(ctx: Context, spec: str, tags: tuple[str, ...], remove: bool) -> None:
    """Put TAGS on version SPEC (or take them off with --remove); one event in its history."""
    v = ctx.store.get(spec)
    v = v.remove_tags(*tags) if remove else v.add_tags(*tags)
    ctx.emit(v.to_dict(), f"{v.spec}  tags: {' '.join(v.tags) or '-'}")


@main.command("tags")
@click.argument("name", required=False)
@pass_ctx
def tags_cmd(ctx: Context, name: str | None) -> None:
    """List every tag on a live version (of NAME), with how many versions carry it."""
    counts = ctx.store.tag_counts(name)
    ctx.emit(counts, table([[t, str(n)] for t, n in counts.items()], ["TAG", "VERSIONS"]) if counts else "no tags yet")
