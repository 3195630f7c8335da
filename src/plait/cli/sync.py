"""``plait sync``: copy versions with their lineage between stores, sending only the delta."""

from __future__ import annotations

import click

from plait.cli.app import Context, human_size, main, pass_ctx


@main.command()
@click.argument("specs", nargs=-1)
@click.option("--to", "to_url", metavar="URL", help="Send from the current store to URL.")
@click.option("--from", "from_url", metavar="URL", help="Bring from URL into the current store.")
@click.option("--lineage/--no-lineage", default=True, show_default=True, help="With SPECS, also copy everything upstream of them.")
@click.option("--aliases", type=click.Choice(["report", "overwrite"]), default="report", show_default=True,
              help="What to do with an alias that points at different content on each side.")
@pass_ctx
def sync(ctx: Context, specs: tuple[str, ...], to_url: str | None, from_url: str | None, lineage: bool, aliases: str) -> None:
    """Copy versions (all, or SPECS and their upstream lineage) --to or --from another store."""
    from plait.errors import InvalidInputError
    from plait.ops.sync import sync as sync_stores

    if bool(to_url) == bool(from_url):
        raise InvalidInputError("give exactly one of --to URL or --from URL")
    here = ctx.store
    other = ctx.open_store(to_url or from_url)
    other.progress = here.progress
    src, dst = (here, other) if to_url else (other, here)
    report = sync_stores(src, dst, list(specs) or None, lineage=lineage, aliases=aliases)
    lines = [f"{s} -> {d}" for s, d in report.versions]
    lines.append(
        f"{len(report.versions)} versions copied, {report.existing} already there; {report.blobs} blobs "
        f"({human_size(report.bytes)}), {report.manifests} manifests, {report.events} events, {report.runs} runs sent"
    )
    lines += [f"conflict: {c}" for c in report.conflicts]
    ctx.emit(report.to_dict(), "\n".join(lines))
