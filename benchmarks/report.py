"""The tail every benchmark shares: print a two-column table and write the results as JSON."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def print_and_save(rows: list[tuple[str, str]], results: dict[str, Any], path: Path) -> None:
    """Print ``rows`` (measure, value) as a table, then write ``results`` to ``path`` as JSON."""
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  value (median)")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Call ``fn`` ``repeat`` times; return the median, min and max in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples)}
