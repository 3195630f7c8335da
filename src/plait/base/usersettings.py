"""User settings: what only this user, on this machine, decides — read from a TOML file.

A store is written by everyone who can write its bucket, so some decisions cannot be the
store's: which local folders and which URLs a reference may make this machine read, and the
credentials and endpoints each bucket is read with. They live in the user settings file
(:func:`plait.base.paths.user_config_path`), read with :mod:`tomllib` (``tomli`` on Python 3.10); a missing file is empty
settings, a malformed one is one error naming the file and the line::

    [references]
    # local folders and URL prefixes references may read (cloud schemes s3, gs, az need no entry)
    allow = ["/data/shared", "https://datasets.example.org/", "http://127.0.0.1:9000"]

    [storage."s3://team-data/"]          # fsspec options for every URL under this prefix
    client_kwargs = { endpoint_url = "http://127.0.0.1:9000" }
    key = "…"
    secret = "…"

    [load]
    # stores whose model files plait.load may unpickle (only stores whose every writer you trust)
    trusted = ["s3://team/plait", "/home/ada/project/.plait"]

A command adds to them: ``$PLAIT_ALLOW_REFERENCES`` (a JSON list, or entries separated by
commas) and ``$PLAIT_REFERENCE_OPTIONS`` (a JSON object of fsspec options for every reference),
and the CLI's ``--allow-reference`` and ``--reference-option``. Other sections are kept as they
are and read with :meth:`UserSettings.get` (later features add their own).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the same parser, from PyPI
    import tomli as tomllib

from plait.base.paths import user_config_path
from plait.base.places import is_under, parse_place
from plait.errors import SettingsError

ALLOW_ENV = "PLAIT_ALLOW_REFERENCES"
REFERENCE_OPTIONS_ENV = "PLAIT_REFERENCE_OPTIONS"
#: A settings file larger than this is refused (it is a few lines of TOML).
MAX_SETTINGS_BYTES = 1 << 20


@dataclass(frozen=True)
class UserSettings:
    """This user's settings: the parsed file plus what the command line and environment add.

    :ivar path: the settings file ("" when none was read).
    :ivar data: the whole parsed file, for sections plait reads with :meth:`get`.
    :ivar allow: local folders and URL prefixes references may read (beyond the cloud schemes).
    :ivar storage: fsspec options by URL prefix; the prefix ``""`` applies to every URL.
    """

    path: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    allow: tuple[str, ...] = ()
    storage: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value at a dotted ``key`` of the file (``references.allow``), or ``default``."""
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def with_overrides(self, *, allow: Iterable[str] = (), storage: Mapping[str, Mapping[str, Any]] | None = None) -> UserSettings:
        """Return these settings with a command's additions: more allowed places, more options.

        :param allow: local folders or URL prefixes to allow as well.
        :param storage: options by URL prefix, set over those of the file (``""``: every URL).
        :raises SettingsError: for an entry that is not a path or URL.
        """
        extra = tuple(_check_allow(list(allow), "the allowed references"))
        merged = {p: dict(o) for p, o in self.storage.items()}
        for prefix, options in (storage or {}).items():
            merged[prefix] = deep_merge(merged.get(prefix, {}), options)
        return UserSettings(self.path, self.data, self.allow + extra, MappingProxyType(merged))

    def storage_options(self, uri: str) -> dict[str, Any]:
        """Return the fsspec options for ``uri``: every matching prefix's, the longest last (it wins)."""
        try:
            place = parse_place(uri)
        except ValueError:
            return {}
        found: dict[str, Any] = {}
        for prefix in sorted(self.storage, key=len):
            if prefix == "" or _under(prefix, place):
                found = deep_merge(found, self.storage[prefix])
        return found

    def has_storage_options(self, uri: str) -> bool:
        """Tell whether this user gave options for ``uri`` (a prefix of it, or every URL)."""
        return bool(self.storage_options(uri))


def _under(prefix: str, place: Any) -> bool:
    try:
        return is_under(parse_place(prefix), place)
    except ValueError:
        return False


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``top`` set over it; nested dicts merge, anything else is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_CACHE: dict[str, tuple[tuple[int, int], UserSettings]] = {}


def load_user_settings(path: str | os.PathLike[str] | None = None) -> UserSettings:
    """Read this user's settings file and the environment's additions.

    :param path: the file (default: :func:`~plait.base.paths.user_config_path`).
    :returns: the settings; empty ones if the file does not exist.
    :raises SettingsError: for a file that is not TOML (naming the file and line) or holds a
        setting of the wrong kind, or an environment variable that cannot be read.
    """
    where = os.fspath(path) if path is not None else str(user_config_path())
    settings = _read_file(where)
    allow = _env_allow(os.environ.get(ALLOW_ENV, ""))
    options = _env_json(os.environ.get(REFERENCE_OPTIONS_ENV, ""), REFERENCE_OPTIONS_ENV)
    if allow or options:
        settings = settings.with_overrides(allow=allow, storage={"": options} if options else None)
    return settings


def _read_file(path: str) -> UserSettings:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return UserSettings()
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    if st.st_size > MAX_SETTINGS_BYTES:
        raise SettingsError(f"{path} is {st.st_size} bytes; a plait settings file is a few lines of TOML", source=path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"the settings file {path} is not valid TOML: {exc}; fix it or remove it", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the settings file {path}: {exc}", source=path) from None
    settings = UserSettings(path, MappingProxyType(data), tuple(_check_allow(_section(data, "references", path).get("allow", []),
                                                                         f"{path}: [references] allow")),
                            MappingProxyType(_check_storage(_section(data, "storage", path), path)))
    _CACHE[path] = (stamp, settings)
    return settings


def _section(data: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, Mapping):
        raise SettingsError(f"{path}: {name} must be a table ([{name}]), not a {type(section).__name__}", source=path)
    return section


def _check_allow(entries: Any, where: str) -> list[str]:
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise SettingsError(f"{where} must be a list of local folders and URL prefixes, like "
                            '["/data/shared", "https://datasets.example.org/"]', source=where)
    for entry in entries:
        try:
            parse_place(entry)
        except ValueError as exc:
            raise SettingsError(f"{where}: {entry!r} is not a folder or URL prefix ({exc})", source=where) from None
    return entries


def _check_storage(section: Mapping[str, Any], path: str) -> dict[str, dict[str, Any]]:
    out = {}
    for prefix, options in section.items():
        if not isinstance(options, Mapping):
            raise SettingsError(f'{path}: [storage."{prefix}"] must be a table of fsspec options, like '
                                f'[storage."s3://bucket/"] followed by client_kwargs = {{ endpoint_url = "http://…" }}',
                                source=path)
        try:
            parse_place(prefix)
        except ValueError as exc:
            raise SettingsError(f'{path}: [storage."{prefix}"] does not name a URL prefix ({exc})', source=path) from None
        out[prefix] = dict(options)
    return out


def _env_allow(text: str) -> list[str]:
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        entries = _env_json(text, ALLOW_ENV, kind=list)
    else:
        entries = [e.strip() for e in text.split(",") if e.strip()]
    return _check_allow(entries, f"${ALLOW_ENV}")


def _env_json(text: str, name: str, kind: type = dict) -> Any:
    if not text.strip():
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"${name} is not valid JSON ({exc})", source=name) from None
    if not isinstance(value, kind):
        raise SettingsError(f"${name} must be a JSON {'object' if kind is dict else 'list'}", source=name)
    return value


def trusts_store(url: str, settings: UserSettings | None = None) -> bool:
    """Tell whether the user lists the store at ``url`` under ``[load] trusted``.

    :param url: the store URL (a local path is compared once resolved).
    :param settings: the user's settings (default: read them).
    :raises SettingsError: if ``[load] trusted`` is not a list of store URLs.
    """
    settings = load_user_settings() if settings is None else settings
    trusted = settings.get("load.trusted", [])
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise SettingsError(f"[load] trusted in {settings.path or user_config_path()} must be a list of store URLs, like "
                            '["s3://team/plait"]', source=settings.path)
    return _normal(url) in {_normal(t) for t in trusted}


def _normal(url: str) -> str:
    if "://" in url and not url.startswith("file://"):
        return url.rstrip("/")
    return os.path.realpath(os.path.expanduser(url.removeprefix("file://")))
