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
@click.option("--to-option", "to_options", multiple=True, metavar="KEY=VALUE",
              help="A storage option for the --to store (like --store-option, which then stays with the current store).")
@click.option("--from-option", "from_options", multiple=True, metavar="KEY=VALUE",
              help="A storage option for the --from store (like --store-option, which then stays with the current store).")
@pass_ctx
def sync(ctx: Context, specs: tuple[str, ...], to_url: str | None, from_url: str | None, lineage: bool, aliases: str,
         to_options: tuple[str, ...], from_options: tuple[str, ...]) -> None:
    """Copy versions (all, or SPECS and their upstream lineage) --to or --from another store.

    The other store is opened with --to-option/--from-option when given, else with the
    --store-option settings of the current one. References are copied as they were recorded;
    their data stays where it is.
    """
    from plait.cli.app import parse_store_options
    from plait.errors import InvalidInputError
    from plait.ops.sync import sync as sync_stores

    if bool(to_url) == bool(from_url):
        raise InvalidInputError("give exactly one of --to URL or --from URL")
    if (to_options and not to_url) or (from_options and not from_url):
        raise InvalidInputError("--to-option goes with --to, --from-option with --from")
    pairs = to_options or from_options
    here = ctx.store
    other = ctx.open_store(to_url or from_url, storage_options=parse_store_options(
        pairs, option="--to-option" if to_url else "--from-option") if pairs else None)
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
