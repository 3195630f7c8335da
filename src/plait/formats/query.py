"""The small language of ``plait find``: conditions (``metrics.accuracy>0.9``) and sort keys
(``-metrics.accuracy``), parsed into values — never into SQL text.

A **key** is a version field (``name``, ``number``, ``type``, ``size``, ``file_count``,
``created_at``, ``description``, ``digest``) or a dotted path into the version's metadata
(``metrics.accuracy``; ``metadata.size`` reaches a metadata key that shares a field's name).
Each part is letters, digits, ``_`` and ``-``.

A **condition** is ``KEY OP VALUE`` with ``OP`` one of ``= == != > >= < <= ~`` (``~`` matches a
glob: ``name~ckpt-*``), ``KEY`` alone (the key is present) or ``!KEY`` (it is absent). ``VALUE``
is JSON when it parses (``0.9``, ``true``, ``null``, ``"quoted text"``), else text. A
comparison matches only values of the same kind: ``metrics.accuracy>0.9`` never matches the text
``"high"``, and a version without the key matches nothing but ``!KEY``.

A **sort key** is a key, ``-`` in front for descending; numbers come first, then other values,
then versions without the key, whichever the direction.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from plait.errors import InvalidInputError

#: Version fields a key may name, and whether they hold numbers.
FIELDS = {"name": False, "number": True, "type": False, "size": True, "file_count": True, "created_at": False,
          "description": False, "digest": False}
OPERATORS = ("=", "==", "!=", ">", ">=", "<", "<=", "~")
_PART = r"[A-Za-z0-9_-]+"
_KEY = re.compile(rf"{_PART}(?:\.{_PART})*")
_CONDITION = re.compile(rf"\s*(?P<neg>!)?\s*(?P<key>{_PART}(?:\.{_PART})*)\s*(?:(?P<op>==|!=|>=|<=|=|>|<|~)(?P<value>.*))?",
                        re.DOTALL)
MAX_KEY_DEPTH = 16
MAX_TEXT = 1000


@dataclass(frozen=True)
class Key:
    """What a key names: a version field, or a path into the metadata.

    :ivar field: the version field (a column), or ``None`` for metadata.
    :ivar path: the metadata path as parts (``("metrics", "accuracy")``), empty for a field.
    """

    field: str | None
    path: tuple[str, ...] = ()

    @property
    def json_path(self) -> str:
        """The SQLite JSON path of a metadata key: ``$."metrics"."accuracy"``."""
        return "$" + "".join(f'."{p}"' for p in self.path)

    def __str__(self) -> str:
        return self.field or ".".join(self.path)


@dataclass(frozen=True)
class Condition:
    """One parsed condition.

    :ivar key: what it looks at.
    :ivar op: one of :data:`OPERATORS` (``==`` is ``=``), or ``exists`` / ``missing``.
    :ivar value: the JSON value compared with (``None`` for ``exists``/``missing``).
    """

    key: Key
    op: str
    value: Any = None


@dataclass(frozen=True)
class SortKey:
    """One parsed sort key: what to sort by, and whether descending."""

    key: Key
    descending: bool = False


def parse_key(text: str) -> Key:
    """Parse a key (see the module docstring).

    :raises InvalidInputError: for a malformed key.
    """
    if not isinstance(text, str) or not _KEY.fullmatch(text) or len(text) > 256:
        raise InvalidInputError(f"{str(text)[:100]!r} is not a key: write a version field ({', '.join(FIELDS)}) or a "
                                "dotted metadata path like metrics.accuracy (letters, digits, '_' and '-')")
    parts = tuple(text.split("."))
    if len(parts) > MAX_KEY_DEPTH:
        raise InvalidInputError(f"{text[:100]!r} nests {len(parts)} keys deep; at most {MAX_KEY_DEPTH}")
    if len(parts) == 1 and parts[0] in FIELDS:
        return Key(parts[0])
    if parts[0] == "metadata" and len(parts) > 1:
        parts = parts[1:]
    return Key(None, parts)


def parse_condition(text: str) -> Condition:
    """Parse one condition: ``metrics.accuracy>0.9``, ``type=model``, ``reviewed``, ``!archived``.

    :raises InvalidInputError: saying what is wrong and how to write it.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("an empty --where condition: write KEY OP VALUE, like metrics.accuracy>0.9")
    if len(text) > MAX_TEXT:
        raise InvalidInputError(f"a --where condition of {len(text)} characters; at most {MAX_TEXT}")
    found = _CONDITION.fullmatch(text)
    if found is None:
        raise InvalidInputError(f"{text[:100]!r} is not a condition: write KEY OP VALUE with OP one of "
                                f"{' '.join(OPERATORS)} (metrics.accuracy>0.9, type=model, name~ckpt-*), KEY or !KEY")
    key = parse_key(found["key"])
    if found["op"] is None:
        return Condition(key, "missing" if found["neg"] else "exists")
    if found["neg"]:
        raise InvalidInputError(f"{text[:100]!r}: '!' goes only before a key alone (!archived: the key is absent)")
    op, raw = ("=" if found["op"] == "==" else found["op"]), found["value"].strip()
    if not raw:
        raise InvalidInputError(f"{text[:100]!r} has no value after {found['op']!r}: write e.g. {key}{found['op']}0.9")
    if raw[0] in "=<>!~":
        raise InvalidInputError(f"{text[:100]!r} has two operators; write one (metrics.accuracy>=0.9), or quote a text "
                                f'value that starts with one: {key}{found["op"]}"{raw[:20]}"')
    return Condition(key, op, _check_value(key, op, _value(raw), text))


def _value(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, (str, int, float, bool)) or value is None else raw


def _check_value(key: Key, op: str, value: Any, text: str) -> Any:
    if isinstance(value, float) and math.isnan(value):
        raise InvalidInputError(f"{text[:100]!r}: NaN compares with nothing")
    if op == "~" and not isinstance(value, str):
        raise InvalidInputError(f"{text[:100]!r}: ~ matches text against a glob, like name~ckpt-*")
    if op in (">", ">=", "<", "<=") and (isinstance(value, bool) or value is None):
        raise InvalidInputError(f"{text[:100]!r}: true, false and null compare only with = or !=")
    if key.field is not None:
        numeric = FIELDS[key.field]
        if numeric and op != "~" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidInputError(f"{text[:100]!r}: {key.field} is a number; compare it with one, like {key.field}>100")
        if not numeric and not isinstance(value, str):
            raise InvalidInputError(f"{text[:100]!r}: {key.field} is text; compare it with text"
                                    + (f', like {key.field}="{value}"' if value is not None else ""))
    return value


def parse_sort(text: str) -> SortKey:
    """Parse a sort key: ``created_at``, ``-metrics.accuracy`` (descending).

    :raises InvalidInputError: for a malformed key.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("an empty sort key: write a key, - in front for descending, like -metrics.accuracy")
    text = text.strip()
    descending = text.startswith("-")
    return SortKey(parse_key(text[1:] if descending else text.lstrip("+")), descending)
