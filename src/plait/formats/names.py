"""The rules for artifact names, aliases, version specs and entry paths.

Names, aliases and tags are ``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 128 characters. An alias
may not look like a version number (``v3``, ``v01``, ``V3``) and ``latest`` is kept by plait
itself; a tag labels versions without pointing at one, so it may be any name. A
spec is ``name``, ``name:v3``, ``name:latest`` or ``name:<alias>``. Entry paths are relative, use
``/``, are valid UTF-8, never contain ``..``, an absolute root or a drive letter, and no part of
one is longer than :data:`MAX_COMPONENT_BYTES` (what common filesystems allow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plait.errors import InvalidNameError, InvalidPathError

MAX_NAME_LENGTH = 128
MAX_PATH_LENGTH = 4096
#: The longest part of an entry path, in UTF-8 bytes (ext4, XFS, APFS, NTFS and tmpfs allow 255).
MAX_COMPONENT_BYTES = 255
LATEST = "latest"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION = re.compile(r"v(0|[1-9][0-9]{0,17})")
#: Anything a reader could take for a version number: ``v01``, ``V3``, ``v00``.
_VERSION_LIKE = re.compile(r"[vV][0-9]+")
_DRIVE = re.compile(r"^[A-Za-z]:")
#: A path that needs no normalising: ``/``-separated parts, none empty, ``.`` or ``..``, no
#: backslash or NUL, and no drive letter in front.
_NORMAL_PATH = re.compile(r"(?![A-Za-z]:)(?:(?!\.\.?/)[^/\\\x00]+/)*(?!\.\.?$)[^/\\\x00]+")


def check_name(name: object, *, what: str = "artifact name") -> str:
    """Return ``name`` if it is a valid artifact name, else raise.

    :param name: the text to check.
    :param what: how to call it in the message.
    :raises InvalidNameError: if it breaks the rules.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"{what} must be a non-empty string, got {name!r}", name=str(name))
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"{what} {name[:40]!r}... is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}",
            name=name,
        )
    if not _NAME.fullmatch(name) or name.endswith(".") or ".." in name:
        raise InvalidNameError(
            f"{what} {name!r} is not allowed: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (e.g. 'images' or 'bert-base.v2')",
            name=name,
        )
    return name


_UNUSABLE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")


def safe_name(text: str, fallback: str = "data") -> str:
    """Turn any text (a file name, a task name, a checkpoint stem) into a valid name.

    Runs of unusable characters become ``-``, runs of dots become one dot, and leading or
    trailing ``.``, ``-`` and ``_`` go: ``my task`` -> ``my-task``, ``a..b.csv`` -> ``a.b.csv``,
    ``epoch=3-step=90`` -> ``epoch-3-step-90``.

    :param text: the text to turn into a name.
    :param fallback: the name when nothing usable is left.
    :returns: a name that :func:`check_name` accepts.
    """
    name = _DOTS.sub(".", _UNUSABLE.sub("-", text)).strip(".-_")[:MAX_NAME_LENGTH].rstrip(".-_")
    return check_name(name or fallback)


def check_alias(alias: object) -> str:
    """Return ``alias`` if a user may set it, else raise.

    :raises InvalidNameError: for a bad name, a version-like alias, or ``latest``.
    """
    check_name(alias, what="alias")
    assert isinstance(alias, str)
    if _VERSION_LIKE.fullmatch(alias):
        raise InvalidNameError(f"alias {alias!r} looks like a version number; pick another name", name=alias)
    if alias == LATEST:
        raise InvalidNameError("'latest' always follows the newest version and cannot be set by hand", name=alias)
    return alias


#: How many tags one change may add or remove, and one version may carry.
MAX_TAGS = 256


def check_tag(tag: object) -> str:
    """Return ``tag`` if it may label a version, else raise.

    Tags follow the rules of names (letters, digits, ``.``, ``_`` and ``-``, at most 128
    characters), so a tag prints, filters and travels in a URL as it is.

    :raises InvalidNameError: for a tag that breaks them.
    """
    return check_name(tag, what="tag")


def check_tags(tags: object) -> list[str]:
    """Return ``tags`` (one tag or several) as a sorted list without repeats, or raise.

    :raises InvalidNameError: for a bad tag, none at all, or more than :data:`MAX_TAGS`.
    """
    items = [tags] if isinstance(tags, str) else list(tags) if isinstance(tags, (list, tuple, set, frozenset)) else None
    if items is None:
        raise InvalidNameError(f"tags must be a string or a list of strings, got {type(tags).__name__}")
    found = sorted({check_tag(t) for t in items})
    if len(found) > MAX_TAGS:
        raise InvalidNameError(f"{len(found)} tags at once; a change may hold at most {MAX_TAGS}")
    return found


@dataclass(frozen=True)
class Spec:
    """A parsed version spec: a name and either a version number or an alias.

    :ivar name: the artifact name.
    :ivar number: the version number for ``name:vN``, else ``None``.
    :ivar alias: the alias for ``name:alias`` (``latest`` for a bare name), else ``None``.
    """

    name: str
    number: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}:v{self.number}" if self.number is not None else f"{self.name}:{self.alias}"


def parse_spec(spec: object) -> Spec:
    """Parse ``name``, ``name:v3``, ``name:latest`` or ``name:alias``.

    :param spec: the text to parse.
    :returns: the :class:`Spec`.
    :raises InvalidNameError: if it is not a valid spec.
    """
    if not isinstance(spec, str):
        raise InvalidNameError(f"a version spec must be a string like 'images:v3', got {type(spec).__name__}")
    name, sep, ref = spec.partition(":")
    check_name(name)
    if not sep:
        return Spec(name, alias=LATEST)
    if _VERSION.fullmatch(ref):
        return Spec(name, number=int(ref[1:]))
    if ref == LATEST:
        return Spec(name, alias=LATEST)
    if _VERSION_LIKE.fullmatch(ref):  # never an alias: v01 must not shadow v1
        raise InvalidNameError(
            f"{spec!r} is not a valid spec: write a version as 'v' and its number without leading zeros "
            f"(e.g. '{name}:v{int(ref[1:])}')" if len(ref) < 20 else f"{spec!r} is not a valid spec: no such version number",
            name=spec,
        )
    try:
        check_name(ref, what="alias")
    except InvalidNameError:
        raise InvalidNameError(
            f"{spec!r} is not a valid spec: write 'name', 'name:v3', 'name:latest' or 'name:<alias>'",
            name=spec,
        ) from None
    return Spec(name, alias=ref)


def check_entry_path(path: object) -> str:
    """Return the normalised relative entry path, or raise if it could escape its folder.

    Backslashes are accepted and turned into ``/``; ``.`` components and doubled slashes are
    removed. The result never starts with ``/``, never holds ``..`` and has no drive letter.

    :param path: the relative path of a file inside an artifact.
    :raises InvalidPathError: for an absolute path, a drive, ``..``, an empty path or a NUL.
    """
    if isinstance(path, str) and len(path) <= MAX_COMPONENT_BYTES and path.isascii() and _NORMAL_PATH.fullmatch(path):
        return path  # already normal and short: one regex, no split
    if isinstance(path, str) and len(path) <= MAX_PATH_LENGTH and _NORMAL_PATH.fullmatch(path):
        return _check_parts(path)
    if not isinstance(path, str) or not path:
        raise InvalidPathError(f"an entry path must be a non-empty string, got {path!r}", path=str(path))
    if len(path) > MAX_PATH_LENGTH or "\x00" in path:
        raise InvalidPathError(f"entry path {path[:60]!r} is too long or holds a NUL byte", path=path)
    text = path.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text):
        raise InvalidPathError(
            f"entry path {path!r} is absolute; give a path relative to the artifact root", path=path
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidPathError(f"entry path {path!r} names no file", path=path)
    if ".." in parts:
        raise InvalidPathError(f"entry path {path!r} climbs out of the artifact with '..'", path=path)
    return _check_parts("/".join(parts))


def _check_parts(path: str) -> str:
    """Refuse a normal path that is not UTF-8 or has a part longer than :data:`MAX_COMPONENT_BYTES`."""
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape")
        raise InvalidPathError(
            f"entry path {shown!r} is not valid UTF-8; rename the file to a UTF-8 name", path=path
        ) from None
    if len(encoded) > MAX_COMPONENT_BYTES:
        long = max(encoded.split(b"/"), key=len)
        if len(long) > MAX_COMPONENT_BYTES:
            raise InvalidPathError(
                f"entry path {path[:60]!r}... has a part of {len(long)} bytes; filesystems allow "
                f"{MAX_COMPONENT_BYTES}: shorten it",
                path=path,
            )
    return path
