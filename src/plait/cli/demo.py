"""``plait demo``: run the end-to-end pipeline demo and print what it made."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from plait.cli.app import Context, main, pass_ctx


@main.command()
@click.option("--store", "store_url", metavar="URL", default=None, help="Store URL (same as `plait --store URL demo`).")
@click.option("--workdir", type=click.Path(file_okay=False), default="plait-demo", show_default=True,
              help="Where the demo writes its raw data and checkpoints.")
@pass_ctx
def demo(ctx: Context, store_url: str | None, workdir: str) -> None:
    """Run three tracked Prefect flows that train and fine-tune a tiny classifier, then show the lineage."""
    from plait.demo.pipeline import quiet_environment

    if store_url is not None:
        ctx.store_url = store_url
    quiet_environment()
    store = ctx.store
    store.init()
    os.environ["PLAIT_STORE"] = store.url  # the flows log to the default store: make it this one
    from plait.errors import MissingExtraError

    try:
        from plait.demo.pipeline import run_pipeline
        from plait.demo.report import report
    except ImportError as exc:
        raise MissingExtraError(f"the demo needs Prefect, Lightning and datasets ({exc}): pip install 'plait[demo]'", extra="demo") from None
    started = time.perf_counter()
    click.echo(f"plait demo: store {store.url}, work folder {Path(workdir).resolve()}", err=True)
    result = run_pipeline(Path(workdir).resolve())
    click.echo(report(store, result, time.perf_counter() - started))

