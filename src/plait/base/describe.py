"""How plait names Python things in messages."""

from __future__ import annotations

from typing import Any


def type_name(obj: Any) -> str:
    """Return ``module.Class`` of an object (or of a class), just ``Class`` for builtins.

    :param obj: any object or class.
    :returns: e.g. ``datasets.arrow_dataset.Dataset`` or ``int``.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__
