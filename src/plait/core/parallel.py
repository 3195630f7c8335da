"""One helper to run independent work on a small thread pool, results in input order."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def parallel_map(fn: Callable[[Any], T], items: list[Any], workers: int) -> list[T]:
    """Map ``fn`` over ``items`` on ``workers`` threads; the first exception propagates.

    Runs inline when there is one item or one worker (no pool to start).
    """
    if len(items) < 2 or workers < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))
