"""The root ``plait`` group, its global options, output helpers and error handling."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from plait.core.errors import PlaitError


class PlaitGroup(click.Group):
    """A click group that turns plait errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlaitError as exc:
            click.echo(f"plait: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("plait: interrupted", err=True)
            ctx.exit(130)


class Context:
    """What every command gets: the store URL, output mode and a lazily opened store."""

    def __init__(self, store_url: str | None, as_json: bool) -> None:
        self.store_url = store_url
        self.as_json = as_json
        self._store: Any = None

    @property
    def store(self) -> Any:
        """The store, with a progress bar attached when stderr is a terminal."""
        if self._store is None:
            from plait.core.store import Store

            self._store = Store(self.store_url)
            if sys.stderr.isatty() and not self.as_json:
                from plait.cli.progress import RichProgress

                self._store.progress = RichProgress()
        return self._store

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print ``data`` as JSON in ``--json`` mode, else ``text`` (or ``data`` as text)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo(text if text is not None else str(data))


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=PlaitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_url", envvar="PLAIT_STORE", metavar="URL",
              help="Store URL (folder, s3://, gs://, memory://). Default: $PLAIT_STORE, else the nearest .plait/.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(package_name="plait")
@click.pass_context
def main(ctx: click.Context, store_url: str | None, as_json: bool) -> None:
    """plait: versioned datasets, models and results, with the lineage of every run."""
    ctx.obj = Context(store_url, as_json)


def human_size(n: float) -> str:
    """Return ``n`` bytes as ``1.2 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Return rows as a plain, aligned text table."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
