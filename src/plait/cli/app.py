"""The root ``plait`` group, its global options, output helpers and error handling."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from collections.abc import Iterable
from itertools import islice
from typing import Any

import click

from plait.base.describe import human_size
from plait.errors import PlaitError, PlaitWarning

__all__ = ["Context", "PlaitGroup", "human_size", "main", "parse_store_options", "pass_ctx", "table"]

_STORE_OPTION_HELP = ("A storage option for fsspec, repeatable; VALUE is JSON when it parses, dotted keys nest "
                      "(client_kwargs.endpoint_url=http://…). Added to $PLAIT_STORE_OPTIONS (a JSON object).")
_REFERENCE_OPTION_HELP = ("A storage option for reading and listing references in this command, over the ones they "
                          "were added with and your settings; repeatable, like --store-option.")
_ALLOW_HELP = ("Also let references read under this local folder or URL prefix (https://host/, http://127.0.0.1:9000) "
               "in this command; repeatable. Added to [references] allow of your settings and $PLAIT_ALLOW_REFERENCES.")


def _late_options() -> list[click.Option]:
    """The global options every subcommand also takes after its name (``plait log … --store-option k=v``)."""
    return [
        click.Option(["--store", "late_store"], metavar="URL", help="Store URL (as before the command)."),
        click.Option(["--store-option", "late_store_options"], multiple=True, metavar="KEY=VALUE", help=_STORE_OPTION_HELP),
        click.Option(["--reference-option", "late_reference_options"], multiple=True, metavar="KEY=VALUE",
                     help=_REFERENCE_OPTION_HELP),
        click.Option(["--allow-reference", "late_allow"], multiple=True, metavar="PREFIX", help=_ALLOW_HELP),
        click.Option(["--json", "late_json"], is_flag=True, help="Print machine-readable JSON."),
    ]


#: Items of a ``--json`` listing written per call (see :meth:`Context.emit_listing`).
LISTING_BATCH = 1024

#: The late global options' parameter names, and their values when not given.
_LATE_NAMES = {"late_store": None, "late_store_options": (), "late_reference_options": (), "late_allow": (),
               "late_json": False}


def _takes_late_options(callback: Any) -> Any:
    """Wrap a command's callback: apply the global options given after the command, then run it."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # an option the command has itself (`demo --store`) is its own, not a late global one
        late = {name: kwargs.pop(name, default) for name, default in _LATE_NAMES.items()}
        obj = click.get_current_context().find_object(Context)
        if obj is not None:
            obj.apply(store_url=late["late_store"], store_options=late["late_store_options"],
                      reference_options=late["late_reference_options"], allow=late["late_allow"],
                      as_json=late["late_json"])
        return callback(*args, **kwargs)

    return wrapper


class PlaitGroup(click.Group):
    """A click group that turns errors into one line and an exit code, and warnings into one line each,
    and lets every command take the global options after its name too.

    A :class:`PlaitError` exits with its own code; an error of the system underneath (a full
    disk, a read-only folder, a name too long) with 1. A command that logged through the
    process's implicit run ends that run before it returns (``failed`` if the command failed).
    """

    group_class = type  # subgroups (``plait run``) are PlaitGroups as well

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd``, adding the global options to it (a group passes them on to its commands)."""
        if not isinstance(cmd, click.Group) and cmd.callback is not None:
            own = {opt for param in cmd.params for opt in param.opts}
            cmd.params.extend(o for o in _late_options() if not own.intersection(o.opts))  # `demo --store` is demo's
            cmd.callback = _takes_late_options(cmd.callback)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        error: BaseException | None = None
        before = _implicit_runs()  # a command run inside a Python process ends only its own
        with warnings.catch_warnings():
            warnings.simplefilter("default", PlaitWarning)
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except PlaitError as exc:
                error = exc
                click.echo(f"plait: error: {one_line(str(exc))}", err=True)
                ctx.exit(exc.exit_code)
            except OSError as exc:
                error = exc
                click.echo(f"plait: error: {one_line(describe_os_error(exc))}", err=True)
                ctx.exit(1)
            except KeyboardInterrupt as exc:
                error = exc
                click.echo("plait: interrupted", err=True)
                ctx.exit(130)
            finally:
                if "plait.tracking.run" in sys.modules:  # a command that logged nothing never loads it
                    sys.modules["plait.tracking.run"].end_implicit_runs(error, keep=before)
                if "plait.webhooks" in sys.modules:  # its warnings print as one line, here
                    sys.modules["plait.webhooks"].flush(sys.modules["plait.webhooks"].EXIT_WAIT)


def _implicit_runs() -> list[Any]:
    """Return the implicit runs this process holds; none when no run was ever loaded (reading
    commands stay free of the run machinery and its imports)."""
    run = sys.modules.get("plait.tracking.run")
    return run.implicit_runs() if run is not None else []


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Print a warning as one line on stderr (``plait: warning: …``), never a source line."""
    click.echo(f"plait: warning: {one_line(str(message))}", err=True)


def one_line(text: str) -> str:
    """Return ``text`` on one line, with control characters escaped (nothing from a store can move the cursor)."""
    return printable(text.replace("\n", " ").strip(), keep="")


def describe_os_error(exc: OSError) -> str:
    """Say what an error of the system underneath was, and on which file."""
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or type(exc).__name__
    return f"{what}: {where}" if where else f"{what} ({exc})" if str(exc) and str(exc) != what else what


#: C0 and C1 controls (escape sequences, carriage return, backspace) and the bidirectional
#: overrides that can make a file name read as another.
_CONTROL = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
            for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def printable(text: str, keep: str = "\n\t") -> str:
    """Escape the control characters of ``text`` (ANSI escape sequences, carriage returns, …).

    Names, descriptions and file names come from the store, written by anyone who can write the
    bucket; printed raw, an escape sequence could rewrite the terminal.

    :param keep: control characters to leave as they are (new lines and tabs of a description).
    """
    if text.isprintable():
        return text
    table = {c: r for c, r in _CONTROL.items() if chr(c) not in keep}
    return text.translate(table)


class Context:
    """What every command gets: the store URL, its storage options, how references are read,
    output mode and a lazily opened store."""

    def __init__(self, store_url: str | None, as_json: bool, storage_options: dict[str, Any] | None = None) -> None:
        self.store_url = store_url
        self.as_json = as_json
        self.storage_options = dict(storage_options or {})
        self.reference_options: dict[str, Any] = {}
        self.allow_references: list[str] = []
        self._store: Any = None

    def apply(self, *, store_url: str | None = None, store_options: tuple[str, ...] = (),
              reference_options: tuple[str, ...] = (), allow: tuple[str, ...] = (), as_json: bool = False) -> None:
        """Take global options (given before or after the command's name) on top of those already set."""
        from plait.base.usersettings import deep_merge

        self.store_url = store_url or self.store_url
        self.as_json = self.as_json or as_json
        self.storage_options = deep_merge(self.storage_options, parse_store_options(store_options))
        self.reference_options = deep_merge(self.reference_options, parse_store_options(reference_options, option="--reference-option"))
        self.allow_references += list(allow)

    def open_store(self, url: str | None, storage_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Open the store at ``url`` with the global ``--store-option`` settings and reference rules.

        :param url: the store URL (``None``: the default store).
        :param storage_options: options for this store instead of the global ones.
        :param kwargs: passed to :class:`~plait.store.base.Store` (e.g. ``hash``).
        :returns: the store.
        """
        from plait.api.store import Store

        return Store(url, storage_options=self.storage_options if storage_options is None else storage_options,
                     allow_references=self.allow_references,
                     reference_options={"": self.reference_options} if self.reference_options else None, **kwargs)

    def user_settings(self) -> Any:
        """This user's settings with the command's ``--allow-reference`` and ``--reference-option``."""
        from plait.base.usersettings import load_user_settings

        return load_user_settings().with_overrides(
            allow=self.allow_references, storage={"": self.reference_options} if self.reference_options else None)

    @property
    def store(self) -> Any:
        """The store, with a progress bar attached when stderr is a terminal."""
        if self._store is None:
            self._store = self.open_store(self.store_url)
            if sys.stderr.isatty() and not self.as_json:
                from plait.cli.progress import RichProgress

                self._store.progress = RichProgress()
        return self._store

    def emit_listing(self, data: dict[str, Any], key: str, items: Iterable[Any], text: str) -> None:
        """:meth:`emit`, with ``data[key]`` a JSON array written as ``items`` yields them, one
        item a line, a batch of lines at a time (a version of a million files is listed in flat
        memory; an item indented over several lines took the pure-Python encoder, ~30 µs each)."""
        if not self.as_json:
            self.emit(data, text)
            return
        marker = "\u0000items\u0000"
        head, tail = json.dumps({**data, key: marker}, indent=2, default=str).split(json.dumps(marker), 1)
        click.echo(head + "[", nl=False)
        encode = json.JSONEncoder(default=str).encode
        lines = map(encode, items)
        first = True
        while batch := list(islice(lines, LISTING_BATCH)):
            click.echo(("" if first else ",") + "\n    " + ",\n    ".join(batch), nl=False)
            first = False
        click.echo(("]" if first else "\n  ]") + tail)

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print ``data`` as JSON in ``--json`` mode, else ``text`` (or ``data`` as text), control
        characters escaped (JSON escapes them itself)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo(printable(text if text is not None else str(data)))


pass_ctx = click.make_pass_decorator(Context)


@click.group(cls=PlaitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_url", envvar="PLAIT_STORE", metavar="URL",
              help="Store URL (folder, s3://, gs://, memory://). Default: $PLAIT_STORE, else the nearest .plait/.")
@click.option("--store-option", "store_options", multiple=True, metavar="KEY=VALUE", help=_STORE_OPTION_HELP)
@click.option("--reference-option", "reference_options", multiple=True, metavar="KEY=VALUE", help=_REFERENCE_OPTION_HELP)
@click.option("--allow-reference", "allow", multiple=True, metavar="PREFIX", help=_ALLOW_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(package_name="plait")
@click.pass_context
def main(ctx: click.Context, store_url: str | None, store_options: tuple[str, ...], reference_options: tuple[str, ...],
         allow: tuple[str, ...], as_json: bool) -> None:
    """plait: versioned datasets, models and results, with the lineage of every run.

    Every global option also works after the command's name (plait log … --store-option k=v).
    """
    ctx.obj = Context(store_url, as_json, parse_store_options(store_options, os.environ.get("PLAIT_STORE_OPTIONS")))
    ctx.obj.apply(reference_options=reference_options, allow=allow)


def parse_store_options(pairs: tuple[str, ...] | list[str], env: str | None = None, *,
                        option: str = "--store-option") -> dict[str, Any]:
    """Build fsspec storage options from ``$PLAIT_STORE_OPTIONS`` and ``KEY=VALUE`` pairs.

    :param pairs: ``KEY=VALUE`` texts; ``VALUE`` is JSON when it parses (``3``, ``true``,
        ``{"a": 1}``), else text; a dotted ``KEY`` nests (``config_kwargs.retries.max_attempts=1``).
    :param env: a JSON object to start from; the pairs are set on top of it.
    :param option: the option the pairs came from, for messages.
    :returns: the nested options.
    :raises InvalidInputError: for a pair without ``=`` or an ``env`` that is not a JSON object.
    """
    from plait.errors import InvalidInputError

    options: dict[str, Any] = {}
    if env and env.strip():
        try:
            options = json.loads(env)
        except ValueError as exc:
            raise InvalidInputError(f"PLAIT_STORE_OPTIONS is not valid JSON ({exc}); give an object like "
                                    '{"client_kwargs": {"endpoint_url": "http://..."}}') from None
        if not isinstance(options, dict):
            raise InvalidInputError("PLAIT_STORE_OPTIONS must be a JSON object, like "
                                    '{"client_kwargs": {"endpoint_url": "http://..."}}')
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip() or any(not part for part in key.split(".")):
            raise InvalidInputError(f"{option} {pair!r} is not KEY=VALUE; write e.g. "
                                    f"{option} client_kwargs.endpoint_url=http://127.0.0.1:9000")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        *parents, last = key.strip().split(".")
        node = options
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    return options


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Return rows as a plain, aligned text table."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
