"""Commands for distributed versions: upsert (one worker's part), finish (the one version)."""

from __future__ import annotations

import os

import click

from plait.cli.app import Context, human_size, main, pass_ctx
from plait.cli.versions import _parse_meta


@main.command()
@click.argument("path")
@click.option("--name", "-n", required=True, help="Artifact name.")
@click.option("--distributed-id", "-D", "distributed_id", required=True, help="The distributed version this part belongs to.")
@click.option("--type", "-t", "type_", default="dataset", show_default=True, help="Artifact type.")
@click.option("--prefix", default="", metavar="FOLDER", help="Put PATH under this folder of the version.")
@click.option("--meta", "-m", "meta", multiple=True, help="Metadata key=value (merged over the parts sent before).")
@click.option("--description", "-d", default="", help="Description.")
@pass_ctx
def upsert(ctx: Context, path: str, name: str, distributed_id: str, type_: str, prefix: str, meta: tuple[str, ...],
           description: str) -> None:
    """Send a file or folder as one part of NAME's distributed version (see `plait finish`)."""
    from plait.formats.artifact import Artifact

    art = Artifact(name, type=type_, description=description, metadata=_parse_meta(meta), distributed_id=distributed_id)
    if os.path.isdir(path):
        art.add_dir(path, prefix)
    else:
        base = os.path.basename(os.path.abspath(path))
        art.add_file(path, name=f"{prefix.rstrip('/')}/{base}" if prefix else None)
    part = ctx.store.upsert(art)
    r = part.record
    ctx.emit({"key": part.key, **r.model_dump(mode="json")},
             f"sent part {r.id} of {name} ({distributed_id}): {r.file_count} files, {human_size(r.size)}")


@main.command()
@click.argument("name")
@click.option("--distributed-id", "-D", "distributed_id", required=True, help="The distributed version to finish.")
@click.option("--alias", "-a", "aliases", multiple=True, help="Alias to set (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Tag to put on the version (repeatable).")
@click.option("--ttl", default=None, metavar="DURATION", help="Let `plait gc --delete` delete the version this long from now (30d, 12h).")
@click.option("--wait", default=60.0, show_default=True, help="Seconds to wait for a finish another process began.")
@pass_ctx
def finish(ctx: Context, name: str, distributed_id: str, aliases: tuple[str, ...], tags: tuple[str, ...], ttl: str | None,
           wait: float) -> None:
    """Make the one version of NAME from every part sent with --distributed-id (again: the same version)."""
    v = ctx.store.finish(name, distributed_id=distributed_id, aliases=aliases, tags=tags, ttl=ttl, wait=wait)
    producers = v.producers
    ctx.emit({**v.to_dict(), "producers": [r.id for r in producers]},
             f"{v.spec}  {v.file_count} files, {human_size(v.size)}, from {len(producers)} runs  {' '.join(v.aliases)}"
             + (f"  tags: {' '.join(v.tags)}" if v.tags else ""))
