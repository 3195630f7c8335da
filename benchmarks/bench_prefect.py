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
3. Small tasks on Dask worker processes: the same N small tasks ``.submit``ted to a
   ``DaskTaskRunner`` on a ``LocalCluster`` of two worker processes (one thread each). plait's
   time and CPU per task are measured inside the workers, on the task's thread, where all of
   it happens (the task run is top-level in its worker: its events are written on that thread
   before the task returns); the first task of each worker (opening the store, about 100 ms) is
   left out. Target: under 2 ms. Skipped without ``prefect-dask``.

Runs against one ephemeral Prefect server (prefect_test_harness), flow heartbeats off.

    python benchmarks/bench_prefect.py                    # N=40 tasks, 1 GiB
    python benchmarks/bench_prefect.py --tasks 20 --size-mb 64 --no-dask

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
    """Wraps the tracker's start and finish to time what plait itself spends per Prefect run:
    wall time and CPU time of the calling thread, per run."""

    def __init__(self) -> None:
        self.reset()

    def install(self) -> None:
        from plait.integrations.prefect import _engine, runners

        _engine.uninstall()
        _engine.install(self.on_start)
        self.on_start_inner = runners.on_start

    def reset(self) -> None:
        self.seconds = {"task": 0.0, "flow": 0.0}
        self.count = {"task": 0, "flow": 0}
        self.per_task: list[tuple[float, float]] = []  # (wall, thread CPU) of each task run

    def on_start(self, kind, engine):
        start, cpu = time.perf_counter(), time.thread_time()
        handle = self.on_start_inner(kind, engine)
        spent, cpu_spent = time.perf_counter() - start, time.thread_time() - cpu
        self.seconds[kind] += spent
        if handle is None:
            return None
        self.count[kind] += 1
        clock, finish = self, handle.finish

        class Timed:
            def finish(self, engine, exc):
                start, cpu = time.perf_counter(), time.thread_time()
                finish(engine, exc)
                end = time.perf_counter() - start
                clock.seconds[kind] += end
                if kind == "task":
                    clock.per_task.append((spent + end, cpu_spent + time.thread_time() - cpu))

        return Timed()


_worker_clock: Clock | None = None


def install_worker_clock() -> int:
    """In a Dask worker: time plait's hooks there (replacing the patch a flow's carrier installs)."""
    global _worker_clock
    if _worker_clock is None:
        _worker_clock = Clock()
        _worker_clock.install()
    _worker_clock.reset()
    return os.getpid()


def read_worker_clock() -> list[tuple[float, float]]:
    """In a Dask worker: the (wall, CPU) seconds plait spent per task run since the last reset."""
    return list(_worker_clock.per_task) if _worker_clock is not None else []


def submitted_flows(n: int, store: str, runner_for):
    """Return the untracked and tracked flows that ``.submit`` N small tasks to a fresh runner."""
    from prefect import flow, task

    from plait.integrations.prefect import track

    @task
    def step(i: int, tag: str) -> int:
        return i * 2

    def plain() -> int:
        return sum(f.result() for f in [step.submit(i, "small") for i in range(n)])

    def tracked() -> int:
        return sum(f.result() for f in [step.submit(i, "small") for i in range(n)])

    return (flow(plain, name="dask-plain", task_runner=runner_for()),
            track(flow(tracked, name="dask-tracked", task_runner=runner_for()), store=store))


def dask_small(n: int, repeat: int, root: Path) -> dict | None:
    """Measure N small tasks on Dask worker processes (see the module docstring, 3)."""
    try:
        import distributed
        from prefect_dask import DaskTaskRunner
    except ImportError:
        return None
    import bench_prefect as me  # by its module name, so that the workers import it (not __main__)

    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        plain, tracked = submitted_flows(n, fresh(root, "dask"), lambda: DaskTaskRunner(address=cluster.scheduler_address))
        client.run(me.install_worker_clock)
        plain(), tracked()  # warm up: workers import Prefect and plait, open the store
        client.run(me.install_worker_clock)  # reset: the first task per worker opened the store
        walls: dict = {"plain": [], "tracked": []}
        for _ in range(repeat):
            for label, fn in (("plain", plain), ("tracked", tracked)):
                walls[label].append(timed(fn))
        per_task = [t for ts in client.run(me.read_worker_clock).values() for t in ts]
    wall_ms = sorted(w * 1000 for w, _ in per_task)
    cpu_ms = sorted(c * 1000 for _, c in per_task)
    return {"tasks_measured": len(per_task), "walls_s": walls,
            "prefect_ms_per_task": min(walls["plain"]) / n * 1000,
            "overhead_ms_per_task": (min(walls["tracked"]) - min(walls["plain"])) / n * 1000,
            "plait_ms_per_task": statistics.median(wall_ms), "plait_ms_per_task_p90": wall_ms[int(len(wall_ms) * 0.9)],
            "plait_cpu_ms_per_task": statistics.median(cpu_ms)}


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
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask runner")
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
            out["dask"] = None if args.no_dask else dask_small(args.tasks, args.repeat, root)
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
    d = out["dask"]
    if d is not None:
        print(f"{'Dask small task, Prefect alone (ms/task)':<44}{d['prefect_ms_per_task']:>12.2f}")
        print(f"{'Dask, tracked - untracked (ms/task)':<44}{d['overhead_ms_per_task']:>12.2f}  < 2 (noisy)")
        print(f"{'Dask, time inside plait, median (ms/task)':<44}{d['plait_ms_per_task']:>12.2f}  < 2")
        print(f"{'Dask, time inside plait, p90 (ms/task)':<44}{d['plait_ms_per_task_p90']:>12.2f}")
        print(f"{'Dask, CPU inside plait, median (ms/task)':<44}{d['plait_cpu_ms_per_task']:>12.2f}  < 2")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
