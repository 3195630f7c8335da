"""Commands on runs and lineage: lineage, runs, run show, plugins, compact, reindex."""

from __future__ import annotations

import json

import click

from plait.cli.app import Context, main, pass_ctx, table


@main.command()
@click.argument("spec")
@click.option("--up", "direction", flag_value="upstream", default=True, help="What SPEC was made from (default).")
@click.option("--down", "direction", flag_value="downstream", help="What was made from SPEC.")
@click.option("--both", "direction", flag_value="both", help="Both directions.")
@click.option("--depth", type=click.IntRange(min=0), default=None, help="How many runs away to go (default: all).")
@click.option("--format", "-f", "fmt", type=click.Choice(["tree", "dot", "mermaid", "json", "openlineage"]), default="tree", show_default=True)
@click.option("--all-producers", is_flag=True,
              help="Follow every run that produced a version (a failed run and its rerun), not only the preferred one.")
@pass_ctx
def lineage(ctx: Context, spec: str, direction: str, depth: int | None, fmt: str, all_producers: bool) -> None:
    """Show the lineage of a version (name:vN, name:alias) or a run id."""
    graph = ctx.store.lineage(spec, direction=direction, depth=depth, producers="all" if all_producers else "preferred")
    if ctx.as_json or fmt == "json":
        click.echo(graph.to_json())
    elif fmt == "openlineage":
        click.echo(json.dumps(graph.to_openlineage(), indent=2))
    else:
        click.echo({"tree": graph.to_tree, "dot": graph.to_dot, "mermaid": graph.to_mermaid}[fmt]())


@main.command()
@click.option("--name", "-n", default=None, help="Only runs with this name.")
@click.option("--kind", "-k", default=None, help="Only runs of this kind (manual, prefect.flow, lightning.fit, …).")
@click.option("--limit", default=50, show_default=True, help="At most this many, newest first.")
@pass_ctx
def runs(ctx: Context, name: str | None, kind: str | None, limit: int) -> None:
    """List runs, newest first."""
    found = ctx.store.runs(name=name, kind=kind, limit=limit)
    rows = [[r.id, r.name, r.kind, r.status, r.started_at[:19], str(len(r.inputs)), str(len(r.outputs))] for r in found]
    ctx.emit([r.to_dict() for r in found], table(rows, ["ID", "NAME", "KIND", "STATUS", "STARTED", "IN", "OUT"]) if rows else "no runs yet")


@main.group("run")
def run_group() -> None:
    """Inspect one run."""


@run_group.command("show")
@click.argument("run_id")
@pass_ctx
def run_show(ctx: Context, run_id: str) -> None:
    """Show a run: config, environment, inputs and outputs (an id prefix is enough)."""
    r = ctx.store.get_run(run_id)
    data = r.to_dict()
    lines = [
        f"{r.name}  [{r.kind}]  {r.status}  {r.id}",
        f"started   {r.started_at}" + (f"   ended {r.ended_at}" if r.ended_at else ""),
        f"parent    {r.parent or '-'}",
        f"command   {r.command or '-'}",
        f"host      {r.host or '-'}   user {r.user or '-'}",
        f"git       {r.git_commit or '-'}" + (" (dirty)" if r.git_dirty else ""),
        f"config    {json.dumps(r.config, sort_keys=True)}",
    ]
    if r.error:
        lines.append(f"error     {r.error}")
    lines += [f"input     {s}" for s in data["inputs"]] + [f"output    {s}" for s in data["outputs"]]
    ctx.emit(data, "\n".join(lines))


@main.command()
@pass_ctx
def plugins(ctx: Context) -> None:
    """List the loaded plugins."""
    from plait.plugins import plugin_list

    found = plugin_list()
    ctx.emit([{"name": n, "module": w} for n, w in found], table([[n, w] for n, w in found], ["PLUGIN", "MODULE"]))


@main.command()
@click.option("--before-days", default=2, show_default=True, type=click.IntRange(min=0),
              help="Leave the days newer than this alone.")
@pass_ctx
def compact(ctx: Context, before_days: int) -> None:
    """Pack the events of old days into one segment per day (reads of a fresh index get fast)."""
    r = ctx.store.compact(before_days=before_days)
    ctx.emit(r.to_dict(), f"packed {r.events} events of {len(r.days)} days into {len(r.segments)} segments; "
             f"deleted {r.deleted} event files" + (f"; {len(r.damaged)} damaged left (plait verify)" if r.damaged else ""))


@main.command()
@pass_ctx
def reindex(ctx: Context) -> None:
    """Rebuild the local index from the store."""
    count = ctx.store.reindex()
    ctx.emit({"versions": count}, f"indexed {count} versions")
