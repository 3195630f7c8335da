"""Work handed to process pools by the pool tests: each call uses one input file and logs one output.

Module-level functions, so that a spawned or forkserver worker can import them by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import plait


def use_and_log(i: int, folder: str) -> int:
    """Use ``in<i>.txt`` and log ``out<i>.txt`` from the calling process; return its pid."""
    source = Path(folder, f"in{i}.txt")
    plait.use(str(source))
    out = Path(folder, f"out{i}.txt")
    out.write_text(f"output {i} from a worker\n")
    plait.log(str(out), name=f"out{i}")
    return os.getpid()


def use_only(i: int, folder: str) -> int:
    """Use ``in<i>.txt`` (a queued event only: nothing synchronous follows it); return the pid."""
    plait.use(str(Path(folder, f"in{i}.txt")))
    return os.getpid()


def nested_run(i: int, folder: str) -> tuple[int, str]:
    """Start a run of its own inside whatever run is active; return the pid and the new run's id."""
    with plait.run(f"inner{i}") as run:
        run.use(str(Path(folder, f"in{i}.txt")))
    return os.getpid(), run.id
