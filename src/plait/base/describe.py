"""How plait names Python things and sizes in messages."""

from __future__ import annotations

from typing import Any


def type_name(obj: Any) -> str:
    """Return ``module.Class`` of an object (or of a class), just ``Class`` for builtins.

    :param obj: any object or class.
    :returns: e.g. ``datasets.arrow_dataset.Dataset`` or ``int``.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__


def human_size(n: float) -> str:
    """Return ``n`` bytes as ``1.2 MiB`` (whole bytes below 1 KiB)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
