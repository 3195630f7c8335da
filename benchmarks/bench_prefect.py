"""Benchmark the Prefect integration: what tracking adds to a task run.

1. Small tasks: a flow calls a task N times with small inputs (an int and a short string, an
   int back); the same flow untracked and tracked, interleaved, best of R runs each. Three
   measures of what tracking adds per task (target: under 2 ms): the time spent inside plait's
   hooks on the task's thread (the steady one), the median CPU time the process spends more on all its
   threads (plait's background event writer included; Prefect's server is another process), and
   (tracked - untracked wall time) / N, which Prefect's own variance (20-130 ms per task here)
   swamps.
2. A 1 GiB file: a task returns an existing 1 GiB file; tracked minus untracked flow time
   (hashing and storing the file), against ``plait.log`` of the same file into a fresh store.
   Target: within 20% of ``plait.log``. Each measurement gets a fresh store and a fresh stat
   cache, and the file is in the page cache for all of them.

Runs against one ephemeral Prefect server (prefect_test_harness), flow heartbeats off.

    python benchmarks/bench_prefect.py                    # N=40 tasks, 1 GiB
    python benchmarks/bench_prefect.py --tasks 20 --size-mb 64

Prints a table and writes ``benchmarks/results/prefect.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
RESULTS = Path(__file__).resolve().parent / "results" / "prefect.json"


def fresh(root: Path, label: str) -> str:
    """Point plait at a new stat cache and return a new store URL under ``root``."""
    os.environ["PLAIT_CACHE_DIR"] = str(Path(tempfile.mkdtemp(prefix=f"cache-{label}-", dir=root)))
    return str(Path(tempfile.mkdtemp(prefix=f"store-{label}-", dir=root)))


def small_flows(n: int, store: str):
    """Return the untracked and tracked flows of N small tasks."""
    from prefect import flow, task

    from plait.integrations.prefect import track

    @task
    def step(i: int, tag: str) -> int:
        return i * 2

    # Two functions: track() marks the function too (so with_options keeps tracking), so the
    # untracked flow must not share it.
    def plain() -> int:
        return sum(step(i, "small") for i in range(n))

    def tracked() -> int:
        return sum(step(i, "small") for i in range(n))

    return flow(plain, name="small-plain"), track(flow(tracked, name="small-tracked"), store=store)


def big_flows(path: Path, store: str):
    """Return the untracked and tracked flows whose one task returns ``path``."""
    from prefect import flow, task

    from plait.integrations.prefect import track

    @task
    def produce() -> Path:
        return path

    def plain() -> Path:
        return produce()

    def tracked() -> Path:
        return produce()

    return flow(plain, name="big-plain"), track(flow(tracked, name="big-tracked"), store=store)


class Clock:
    """Wraps the tracker's start and finish to time what plait itself spends per Prefect run."""

    def __init__(self) -> None:
        self.seconds = {"task": 0.0, "flow": 0.0}
        self.count = {"task": 0, "flow": 0}

    def install(self) -> None:
        from plait.integrations.prefect import _engine, tracker

        _engine.uninstall()
        _engine.install(self.on_start)
        self.on_start_inner = tracker.on_start

    def reset(self) -> None:
        self.seconds = {"task": 0.0, "flow": 0.0}
        self.count = {"task": 0, "flow": 0}

    def on_start(self, kind, engine):
        start = time.perf_counter()
        handle = self.on_start_inner(kind, engine)
        self.seconds[kind] += time.perf_counter() - start
        if handle is None:
            return None
        self.count[kind] += 1
        clock, finish = self, handle.finish

        class Timed:
            def finish(self, engine, exc):
                start = time.perf_counter()
                finish(engine, exc)
                clock.seconds[kind] += time.perf_counter() - start

        return Timed()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_big(path: Path, size_mb: int) -> None:
    rng = random.Random(7)
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(rng.randbytes(1 << 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40, help="tasks per small flow")
    parser.add_argument("--repeat", type=int, default=5, help="runs per small flow (best is kept)")
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the big file")
    args = parser.parse_args()

    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    import plait

    root = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
    out: dict = {"python": platform.python_version(), "cpus": os.cpu_count(), "tasks": args.tasks, "size_mb": args.size_mb}
    try:
        with prefect_test_harness(server_startup_timeout=300), temporary_settings(updates={"flows.heartbeat_frequency": None}):
            clock = Clock()
            plain, tracked = small_flows(args.tasks, fresh(root, "small"))
            clock.install()
            plain(), tracked()  # warm up: server, imports, plugin manager, store
            walls: dict = {"plain": [], "tracked": []}
            cpus: dict = {"plain": [], "tracked": []}
            clock.reset()
            for _ in range(args.repeat):  # interleaved, so a busy spell of Prefect's server hits both
                for label, fn in (("plain", plain), ("tracked", tracked)):
                    cpu = time.process_time()
                    walls[label].append(timed(fn))
                    cpus[label].append(time.process_time() - cpu)
            t_plain, t_tracked = min(walls["plain"]), min(walls["tracked"])
            out["small_walls_s"], out["small_cpu_s"] = walls, cpus
            inside = clock.seconds["task"] / clock.count["task"]
            out["small"] = {"untracked_s": t_plain, "tracked_s": t_tracked,
                            "overhead_ms_per_task": (t_tracked - t_plain) / args.tasks * 1000,
                            "plait_ms_per_task": inside * 1000,
                            "cpu_overhead_ms_per_task": (statistics.median(cpus["tracked"]) - statistics.median(cpus["plain"])) / args.tasks * 1000,
                            "prefect_ms_per_task": t_plain / args.tasks * 1000}

            big = root / "big.bin"
            write_big(big, args.size_mb)
            tracked_store = fresh(root, "big")
            plain, tracked = big_flows(big, tracked_store)
            t_plain = min(timed(plain) for _ in range(2))
            clock.reset()
            t_tracked = timed(tracked)
            inside = clock.seconds["task"]
            assert plait.Store(tracked_store).get("produce").size == big.stat().st_size, "the tracked flow logged nothing"
            store = plait.Store(fresh(root, "log"))
            small = root / "warm.txt"
            small.write_text("warm")
            plait.log(small, store=store)  # open the store and the implicit run first, as the flow did
            t_log = timed(lambda: plait.log(big, store=store))
            overhead = t_tracked - t_plain
            out["big"] = {"untracked_s": t_plain, "tracked_s": t_tracked, "tracking_s": overhead,
                          "plait_in_task_s": inside, "plait_log_s": t_log, "ratio": overhead / t_log,
                          "ratio_in_task": inside / t_log}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    from plait.tracking.run import end_implicit_runs

    end_implicit_runs()
    s, b = out["small"], out["big"]
    print(f"{'measure':<44}{'value':>12}  target")
    print(f"{'small task, Prefect alone (ms/task)':<44}{s['prefect_ms_per_task']:>12.2f}")
    print(f"{'small task, tracked - untracked (ms/task)':<44}{s['overhead_ms_per_task']:>12.2f}  < 2 (noisy)")
    print(f"{'small task, time inside plait (ms/task)':<44}{s['plait_ms_per_task']:>12.2f}  < 2")
    print(f"{'small task, CPU added, all threads (ms/task)':<44}{s['cpu_overhead_ms_per_task']:>12.2f}  < 2")
    print(f"{f'{args.size_mb} MiB output, untracked flow (s)':<44}{b['untracked_s']:>12.2f}")
    print(f"{f'{args.size_mb} MiB output, tracking (s)':<44}{b['tracking_s']:>12.2f}")
    print(f"{f'{args.size_mb} MiB, plait.log (s)':<44}{b['plait_log_s']:>12.2f}")
    print(f"{f'{args.size_mb} MiB output, time inside plait (s)':<44}{b['plait_in_task_s']:>12.2f}")
    print(f"{'tracking / plait.log':<44}{b['ratio']:>12.2f}  < 1.20 (noisy)")
    print(f"{'time inside plait / plait.log':<44}{b['ratio_in_task']:>12.2f}  < 1.20")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
