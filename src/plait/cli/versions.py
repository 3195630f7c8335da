"""Commands on artifacts and versions: init, log, ls, versions, show, get, alias, history, diff,
verify, gc, delete."""

from __future__ import annotations

import json
from typing import Any

import click

from plait.cli.app import Context, human_size, main, pass_ctx, table


def _parse_meta(pairs: tuple[str, ...]) -> dict[str, Any]:
    from plait.errors import InvalidMetadataError
    from plait.formats.records import MAX_JSON_DEPTH

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidMetadataError(f"--meta takes key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
        except RecursionError:
            raise InvalidMetadataError(f"--meta {key} nests more than {MAX_JSON_DEPTH} levels deep; flatten it") from None
    return out


@main.command()
@click.argument("url", required=False)
@click.option("--hash", "algorithm", type=click.Choice(["xxh3-128", "blake3"]), default="xxh3-128", show_default=True,
              help="Hash algorithm (blake3 resists writers forging collisions; xxh3 is faster).")
@click.option("--format", "store_format", type=click.IntRange(1, 2), default=2, show_default=True,
              help="Store format: 2 keeps versions as trees; 1 as flat manifests, for teammates on an older plait.")
@click.pass_obj
def init(ctx: Context, url: str | None, algorithm: str, store_format: int) -> None:
    """Create a store at URL (default: the current store)."""
    store = ctx.open_store(url or ctx.store_url, hash=algorithm, format=store_format).init()
    ctx.emit({"url": store.url, "id": store.id, "algorithm": store.algorithm, "format": store.format},
             f"plait store at {store.url} ({store.algorithm}, format {store.format}, id {store.id})")


@main.command("log")
@click.argument("path")
@click.option("--name", "-n", required=True, help="Artifact name.")
@click.option("--type", "-t", "type_", default="dataset", show_default=True, help="Artifact type.")
@click.option("--alias", "-a", "aliases", multiple=True, help="Alias to set (repeatable).")
@click.option("--meta", "-m", "meta", multiple=True, help="Metadata key=value; the value is JSON if it parses (repeatable).")
@click.option("--description", "-d", default=None, help="Description (Markdown).")
@click.option("--tag", "tags", multiple=True, help="Tag to put on the version (repeatable).")
@click.option("--ttl", default=None, metavar="DURATION", help="Let `plait gc --delete` delete the version this long from now (30d, 12h).")
@click.option("--reference", is_flag=True, help="Record PATH (a local path or a URL) by reference; do not copy the data.")
@click.option("--checksum", is_flag=True, help="With --reference: read every object once and record the digest of its bytes.")
@click.option("--max-objects", type=click.IntRange(min=1), default=None,
              help="With --reference: refuse a prefix of more objects than this (default 100,000).")
@click.option("--onto", default=None, metavar="SPEC",
              help="Start from the files of version SPEC (by digest, nothing downloaded) and add PATH on top.")
@click.option("--prefix", default="", metavar="FOLDER", help="With --onto: put PATH under this folder of the version.")
@click.option("--remove", "remove", multiple=True, metavar="PATH",
              help="With --onto: leave out this file or folder of SPEC (repeatable).")
@pass_ctx
def log_cmd(ctx: Context, path: str, name: str, type_: str, aliases: tuple[str, ...], meta: tuple[str, ...],
            description: str | None, tags: tuple[str, ...], ttl: str | None, reference: bool, checksum: bool,
            max_objects: int | None, onto: str | None, prefix: str, remove: tuple[str, ...]) -> None:
    """Log a file or folder (or a reference) as a version of NAME (the existing one if a version holds the same content).

    With --onto SPEC, the new version holds SPEC's files with PATH added (and --remove'd paths
    left out): only PATH is read and stored.
    """
    import os

    if not reference and onto is None and os.path.isdir(path):
        from plait.formats.walk import start_listing

        start_listing(os.path.abspath(path))  # its workers list while the rest of plait is imported
    from plait.errors import InvalidInputError
    from plait.formats.artifact import Artifact
    from plait.index import versions as V
    from plait.tracking.run import implicit_run

    if (prefix or remove) and onto is None:
        raise InvalidInputError("--prefix and --remove go with --onto SPEC (the version to start from)")
    if onto is not None:
        art = ctx.store.get(onto).new_draft()
        art.name = Artifact(name).name
        for gone in remove:
            art.remove(gone)
    else:
        art = Artifact(name, type=type_)
    if reference:
        art.add_reference(path, prefix or None, storage_options=_reference_options(ctx, path), checksum=checksum,
                          **({"max_objects": max_objects} if max_objects else {}))
    elif checksum or max_objects:
        raise InvalidInputError("--checksum and --max-objects go with --reference")
    elif os.path.isdir(path):
        art.add_dir(path, prefix)
    else:
        base = os.path.basename(os.path.abspath(path))
        art.add_file(path, name=f"{prefix.rstrip('/')}/{base}" if prefix else None)
    before = V.live_digests(ctx.store.catalog, name) if ctx.store.exists else set()
    # the notes go as arguments, not in the draft: on content logged before, they are an update
    version = ctx.store.log(art, aliases=aliases, tags=tags, ttl=ttl, description=description,
                            metadata=_parse_meta(meta) or None)
    logger = implicit_run(ctx.store.url)
    # new to NAME, and made by this command: not by a writer that logged the same content a moment before
    created = version.digest not in before and (logger is None or version.created_by == logger.id)
    state = "new" if created else "existing: the same content was logged before"
    if not created and (meta or description):
        state += "; --meta/--description applied as an update (plait history)"
    ctx.emit({**version.to_dict(), "created": created},
             f"{version.spec}  ({state})  {version.file_count} files, {human_size(version.size)}  {' '.join(version.aliases)}"
             + (f"  tags: {' '.join(version.tags)}" if version.tags else ""))


def _reference_options(ctx: Context, uri: str) -> dict[str, Any] | None:
    """The options to list a reference with: --reference-option, else your settings for its prefix,
    else the store's options when the reference lives on the same kind of storage as the store."""
    settings = ctx.user_settings()
    if settings.has_storage_options(uri):
        return settings.storage_options(uri)
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    store_scheme = ctx.store_url.split("://", 1)[0] if ctx.store_url and "://" in ctx.store_url else "file"
    return dict(ctx.storage_options) if scheme == store_scheme and scheme != "file" else None


@main.command("ls")
@click.option("--type", "-t", "type_", default=None, help="Only artifacts of this type.")
@click.option("--tag", "tags", multiple=True, help="Only artifacts with a live version carrying this tag (repeatable: all of them).")
@pass_ctx
def ls_cmd(ctx: Context, type_: str | None, tags: tuple[str, ...]) -> None:
    """List artifacts with their latest version (`plait versions NAME --tag T` lists the tagged ones)."""
    from plait.index import tags as T
    from plait.index import versions as V

    arts = ctx.store.artifacts(type=type_)
    if tags:
        tagged = T.names_tagged(ctx.store.catalog, tags)
        arts = [a for a in arts if a.name in tagged]
    counts = V.live_counts(ctx.store.catalog) if arts else {}
    rows = [[a.name, a.type, a.version, str(counts.get(a.name, 0)), human_size(a.size), a.created_at[:19]] for a in arts]
    ctx.emit([a.to_dict() for a in arts], table(rows, ["NAME", "TYPE", "LATEST", "VERSIONS", "SIZE", "UPDATED"]) if rows
             else f"no artifact has a version tagged {', '.join(tags)}" if tags else "no artifacts yet")


@main.command("versions")
@click.argument("name")
@click.option("--tag", "tags", multiple=True, help="Only versions carrying this tag (repeatable: all of them).")
@pass_ctx
def versions_cmd(ctx: Context, name: str, tags: tuple[str, ...]) -> None:
    """List the versions of NAME (`plait find` searches across names)."""
    vs = ctx.store.versions(name)
    if tags:
        vs = [v for v in vs if set(tags) <= set(v.tags)]
    producers = [v.produced_by for v in vs]
    rows = [[v.version, human_size(v.size), str(v.file_count), ",".join(v.aliases), ",".join(v.tags), v.created_at[:19],
             p.id[-8:] if p else ""] for v, p in zip(vs, producers)]
    ctx.emit([{**v.to_dict(), "produced_by": p.id if p else None} for v, p in zip(vs, producers)],
             table(rows, ["VERSION", "SIZE", "FILES", "ALIASES", "TAGS", "CREATED", "RUN"]) if rows else f"no versions of {name} carry {', '.join(tags)}")


@main.command()
@click.argument("spec")
@click.option("--files/--no-files", default=True, help="List the files.")
@pass_ctx
def show(ctx: Context, spec: str, files: bool) -> None:
    """Show one version: metadata, aliases, producer, files."""
    v = ctx.store.get(spec)
    data = v.to_dict()
    data["files"] = None
    producer, producers = v.produced_by, v.producers
    data["produced_by"] = producer.id if producer else None
    data["producers"] = [{"id": r.id, "name": r.name, "kind": r.kind, "status": r.status} for r in producers]
    lines = [
        f"{v.spec}  ({v.type})  {' '.join(v.aliases)}",
        f"digest      {v.digest}",
        f"size        {human_size(v.size)} in {v.file_count} files",
        f"created     {v.created_at} by run {v.created_by or '-'}",
        f"produced by {producer.name + ' ' + producer.id + ' (' + producer.status + ')' if producer else '-'}",
    ]
    if v.tags:
        lines.append(f"tags        {' '.join(v.tags)}")
    if v.expires_at:
        lines.append(f"expires     {v.expires_at} (plait gc --delete deletes it then, unless an alias points at it)")
    others = [r for r in producers if producer is None or r.id != producer.id]
    if others:
        lines.append(f"also by     {', '.join(f'{r.name} {r.id[-8:]} ({r.status})' for r in others)}")
    if v.description:
        lines.append(f"description {v.description}")
    if v.metadata:
        lines.append(f"metadata    {json.dumps(dict(v.metadata), sort_keys=True)}")
    used = v.used_by
    if used:
        lines.append(f"used by     {', '.join(r.name + ' ' + r.id[-8:] for r in used)}")
    if files:
        lines += [f"  {e.path}  {human_size(e.size)}" + (f"  -> {e.ref.uri}" if e.ref else "") for e in v.files()[:200]]
        if v.file_count > 200:
            lines.append(f"  … and {v.file_count - 200} more")
    if files:
        ctx.emit_listing(data, "files", (e.to_dict() for e in v.files()), "\n".join(lines))
    else:
        ctx.emit(data, "\n".join(lines))


@main.command()
@click.argument("spec")
@click.argument("dest", required=False)
@click.option("--path", "-p", "paths", multiple=True, metavar="PATH",
              help="Only this file, or the files below this folder of the version (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite files in DEST that differ from the version's.")
@pass_ctx
def get(ctx: Context, spec: str, dest: str | None, paths: tuple[str, ...], force: bool) -> None:
    """Download version SPEC into DEST (default: your cache, never the store), verified.

    A different file already at one of the version's paths in DEST is refused, naming each one,
    unless --force.
    """
    v = ctx.store.get(spec)
    folder = v.download(dest, paths=list(paths) or None, force=force)
    ctx.emit({"spec": v.spec, "path": folder}, folder)


@main.command()
@click.argument("spec")
@click.argument("alias")
@click.option("--remove", is_flag=True, help="Remove the alias instead of setting it.")
@click.option("--protected", "force_protected", is_flag=True,
              help="Move or remove a protected alias (store setting aliases.protected); recorded as such.")
@pass_ctx
def alias(ctx: Context, spec: str, alias: str, remove: bool, force_protected: bool) -> None:
    """Point ALIAS at version SPEC (or remove it)."""
    v = ctx.store.get(spec)
    v = v.remove_alias(alias, force_protected=force_protected) if remove else v.set_alias(alias, force_protected=force_protected)
    ctx.emit(v.to_dict(), f"{v.spec}  {' '.join(v.aliases)}")


@main.command()
@click.argument("spec")
@pass_ctx
def history(ctx: Context, spec: str) -> None:
    """Show every change to a version (or, for a bare name, to every version), deleted ones included."""
    from plait.formats.names import parse_spec
    from plait.tracking.nodes import history_of

    parsed = parse_spec(spec)
    if parsed.number is not None:  # a deleted version keeps its history
        entries = history_of(ctx.store, parsed.name, parsed.number)
    elif ":" in spec:
        entries = ctx.store.get(spec).history()
    else:
        entries = history_of(ctx.store, parsed.name)
    ctx.emit([h.__dict__ for h in entries], "\n".join(str(h) for h in entries) or "no history")


@main.command()
@click.argument("old")
@click.argument("new")
@pass_ctx
def diff(ctx: Context, old: str, new: str) -> None:
    """Compare two versions: added, removed and modified paths."""
    from plait.api.functions import diff as diff_versions

    d = diff_versions(old, new, store=ctx.store)
    ctx.emit(d.to_dict(), str(d))


@main.command()
@click.argument("spec", required=False)
@click.option("--rebuild-index", is_flag=True, help="First rebuild the pack index from the packs (damaged or lost index files).")
@pass_ctx
def verify(ctx: Context, spec: str | None, rebuild_index: bool) -> None:
    """Re-hash stored bytes of SPEC (or every version) and look every reference up.

    Exit 4 if stored bytes or records are damaged, else 5 if references changed, are missing,
    cannot be read or are not followed on this machine.
    """
    report = ctx.store.verify(spec, rebuild_index=rebuild_index)
    refs = report.reference_problems
    data = {"ok": report.ok, "versions": report.versions, "blobs": report.blobs, "events": report.events,
            "references": report.references,
            "problems": [{"version": s, "path": p, "digest": d, "reason": r} for s, p, d, r in report.problems],
            "reference_problems": [p.__dict__ for p in refs]}
    lines = [f"DAMAGED {s} {p} (blob {d}): {r}" if d else f"DAMAGED {p}: {r}" for s, p, d, r in report.problems]
    lines += [f"{p.kind.upper()} {p.version} {p.path} ({p.uri}): {p.detail}" for p in refs]
    lines.append(f"{'ok' if report.ok else 'FAILED'}: {report.versions} versions, {report.blobs} blobs"
                 + (f", {report.references} references" if report.references else "")
                 + (f", {report.events} events" if report.events else "") + " checked")
    ctx.emit(data, "\n".join(lines))
    if report.exit_code:
        raise SystemExit(report.exit_code)


@main.command()
@click.option("--dry-run/--delete", "dry_run", default=True, show_default=True, help="Only report, or really delete.")
@click.option("--grace", default=3600.0, show_default=True,
              help="Delete only what a gc marked at least this many seconds ago (0: delete at once).")
@pass_ctx
def gc(ctx: Context, dry_run: bool, grace: float) -> None:
    """Expire versions (TTLs and `plait retain` policies), then find (with --delete: remove) blobs no live version references."""
    expired = ctx.store.expire(dry_run=dry_run)
    r = ctx.store.gc(dry_run=dry_run, grace_seconds=grace)
    verb = "would free" if dry_run else "freed"
    lines = [f"{verb} {human_size(r.bytes)} in {len(r.blobs)} blobs and {len(r.manifests)} manifests"]
    if r.marked_blobs or r.marked_manifests:
        lines.append(f"{'would mark' if dry_run else 'marked'} {len(r.marked_blobs)} blobs ({human_size(r.marked_bytes)}) and "
                     f"{len(r.marked_manifests)} manifests: a gc after {r.deletable_after} deletes them if still unreferenced")
    if r.kept_young:
        lines.append(f"kept {r.kept_young} younger than {grace:g}s")
    versions = [f"{'would expire' if dry_run else 'expired'} {d.spec}: {d.reason}" for d in expired.expired]
    versions += [f"kept {d.spec}: {d.reason}" for d in expired.kept] + [f"refused {x}" for x in expired.refused]
    ctx.emit({**r.to_dict(), "retention": expired.to_dict()}, "\n".join([*versions, "; ".join(lines)]))


@main.command()
@pass_ctx
def migrate(ctx: Context) -> None:
    """Convert a format-1 store to format 2 in place: its blobs copied into packs.

    Safe to interrupt and run again; versions keep their digests. The loose copies stay until
    `plait gc --delete` frees them after its grace period.
    """
    r = ctx.store.migrate()
    data = {"from_format": r.from_format, "format": ctx.store.format, "blobs": r.blobs, "bytes": r.bytes,
            "already": r.already, "damaged": r.damaged}
    if r.from_format == ctx.store.format and not r.blobs and "migrated_from" not in ctx.store.config:
        text = f"{ctx.store.url} is format {r.from_format} already: nothing to migrate"
    else:
        text = (f"format {r.from_format} -> {ctx.store.format}: {r.blobs} blobs ({human_size(r.bytes)}) copied into packs"
                + (f", {r.already} there already" if r.already else "")
                + "; `plait gc --delete` frees the loose copies after its grace period")
    lines = [f"DAMAGED blob {d}: left loose (`plait verify` names the versions that need it)" for d in r.damaged]
    ctx.emit(data, "\n".join([*lines, text]))


@main.command()
@click.argument("spec")
@click.option("--force", is_flag=True, help="Also remove aliases that point at it.")
@click.option("--all", "every", is_flag=True, help="SPEC is a bare NAME: delete every version of it (asks first).")
@click.option("--yes", "-y", is_flag=True, help="With --all: do not ask.")
@click.option("--protected", "force_protected", is_flag=True, help="With --force, also remove protected aliases.")
@pass_ctx
def delete(ctx: Context, spec: str, force: bool, every: bool, yes: bool, force_protected: bool) -> None:
    """Delete version SPEC (NAME:vN or NAME:ALIAS; recorded in its history); `plait gc` frees its unique blobs.

    A bare NAME is refused: give the version, or --all to delete every version of NAME.
    """
    from plait.errors import InvalidInputError, StoreError
    from plait.formats.names import parse_spec

    parsed = parse_spec(spec)
    bare = ":" not in spec
    if every != bare:
        raise InvalidInputError(f"--all deletes every version of a NAME, not {spec}: give the name alone (plait delete "
                                f"{parsed.name} --all)" if every else
                                f"plait delete {spec} would delete more than you may mean: give the version "
                                f"({spec}:v<N>, see plait versions {spec}) or --all to delete every version of {spec}")
    if not every:
        v = ctx.store.get(spec)
        v.delete(force=force, force_protected=force_protected)
        ctx.emit({"deleted": [v.spec]}, f"deleted {v.spec}")
        return
    versions = ctx.store.versions(parsed.name)
    aliased = [f"{v.spec} ({', '.join(a for a in v.aliases if a != 'latest')})" for v in versions
               if any(a != "latest" for a in v.aliases)]
    if aliased and not force:  # checked for every version before any is deleted
        raise StoreError(f"aliases still point at {', '.join(aliased)}; move them first or pass --force")
    for v in versions:
        for alias in v.aliases:
            if alias != "latest":
                ctx.store.check_alias_change(v.name, alias, force_protected=force_protected, doing="remove")
    listing = ", ".join(v.version for v in versions)
    if not yes and not click.confirm(f"delete all {len(versions)} versions of {parsed.name} ({listing})?", err=True):
        raise InvalidInputError("nothing deleted (confirm, or pass --yes)")
    for v in versions:
        v.delete(force=force, force_protected=force_protected)
    ctx.emit({"deleted": [v.spec for v in versions]}, f"deleted {len(versions)} versions of {parsed.name}: {listing}")


@main.command()
@click.argument("name", required=False)
@pass_ctx
def stats(ctx: Context, name: str | None) -> None:
    """Show the bytes logged and stored, per artifact name and for the store (or for NAME).

    LOGGED adds up every live version as if each were a full copy; STORED counts each file and
    chunk once; REFERENCED is data left in its own bucket.
    """
    r = ctx.store.stats(name)
    rows = [[n.name, str(n.versions), human_size(n.logged), human_size(n.stored), human_size(n.referenced)] for n in r.names]
    total = f"all: {human_size(r.logged)} logged, {human_size(r.stored)} stored"
    if r.stored:
        total += f" ({r.saved:.1f}x less)"
    if r.referenced:
        total += f", {human_size(r.referenced)} referenced"
    if r.on_storage is not None:
        total += f"; blobs take {human_size(r.on_storage)}"
        if r.on_storage > r.stored:
            total += f" ({human_size(r.on_storage - r.stored)} no live version needs: plait gc)"
    text = table(rows, ["NAME", "VERSIONS", "LOGGED", "STORED", "REFERENCED"]) + "\n" + total if rows else "no artifacts yet"
    ctx.emit(r.to_dict(), text)
