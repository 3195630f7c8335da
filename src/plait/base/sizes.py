"""Sizes as users write them: ``10GB``, ``512MiB``, ``1.5T``, a number of bytes."""

from __future__ import annotations

import re

from plait.errors import InvalidInputError

#: Decimal units (``GB`` = 10⁹) and binary ones (``GiB`` = 2³⁰); a bare letter (``G``) is binary, as ``du -h`` prints it.
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 10**3, "kib": 1 << 10, "m": 1 << 20, "mb": 10**6, "mib": 1 << 20,
          "g": 1 << 30, "gb": 10**9, "gib": 1 << 30, "t": 1 << 40, "tb": 10**12, "tib": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_size(text: str | int, *, what: str = "size") -> int:
    """Return the bytes ``text`` says: ``10GB``, ``512MiB``, ``1.5G``, ``0``, or a number of bytes.

    :param what: how to call it in the message.
    :raises InvalidInputError: for anything else, or a negative size.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise InvalidInputError(f"{what} {text} is negative; give 0 or more bytes")
        return text
    found = _SIZE.fullmatch(text.strip().lower()) if isinstance(text, str) else None
    if found is None or found.group(2) not in _UNITS:
        raise InvalidInputError(f"{what} {text!r} is not a size: write a number and a unit, like 10GB, 512MiB or 1.5G")
    return int(float(found.group(1)) * _UNITS[found.group(2)])

