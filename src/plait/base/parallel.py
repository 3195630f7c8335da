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


#: Batch limits for :func:`parallel_map_batched`: one pool task per small file costs more than
#: the file; batches of 64 files or 32 MiB keep both cores busy without that.
BATCH_FILES = 64
BATCH_BYTES = 32 << 20


def parallel_map_batched(fn: Callable[[Any], T], items: list[Any], size_of: Callable[[Any], int], workers: int) -> list[T]:
    """Like :func:`parallel_map`, but hand the threads batches of small items, results in order.

    :param size_of: the byte weight of an item; a batch closes at ``BATCH_FILES`` items or
        ``BATCH_BYTES`` bytes, so large files still spread over the threads one by one.
    """
    batches: list[list[Any]] = []
    batch: list[Any] = []
    weight = 0
    for item in items:
        batch.append(item)
        weight += size_of(item)
        if len(batch) >= BATCH_FILES or weight >= BATCH_BYTES:
            batches.append(batch)
            batch, weight = [], 0
    if batch:
        batches.append(batch)
    done = parallel_map(lambda b: [fn(i) for i in b], batches, workers)
    return [r for b in done for r in b]
