"""Many logs: what a store logged to hundreds of times costs, against an empty store in the same run.

Every log adds one index file to a store, and until a gc compacts them a lookup that misses
looks in each: a store that a training job logged a checkpoint into every epoch, or a pipeline
its small results into every run, made every later log and verify pay per earlier log. This
drives the CLI (``python -m plait``, every step a fresh process, ``os.sync()`` before each):

- set-up (not timed): ``--logs`` small versions logged one at a time (one index file each);
- then, into that store and into an empty one in turn: ``log`` of a folder of ``--files`` ×
  1 KiB files, ``log`` of it again with one file changed, ``show``, ``verify``.

The empty store is the floor; ``--baseline-src`` runs an earlier ``src/`` the same way, in turn
(same data, same load). Prints a table and writes ``benchmarks/results/many-logs.json``.

Usage::

    python benchmarks/bench_many_logs.py --logs 500 --files 20000 --repeat 3
    python benchmarks/bench_many_logs.py --logs 500 --files 20000 --repeat 3 --baseline-src /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import ENV, SEED, change_one, make_small, remove, run  # noqa: E402

HERE = Path(__file__).resolve().parent
STEPS = ("log", "log one changed", "show", "verify")

SETUP = """
import sys
import plait
store = plait.Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    store.log(f"result of run {i}\\n".encode(), name=f"metrics-{i % 5}")
"""


def one_round(data: Path, work: Path, logs: int, files: int, src: str | None) -> dict[str, dict[str, float]]:
    """Time the steps into a store logged to ``logs`` times and into an empty one; return both."""
    env = {**os.environ, "PLAIT_NO_STAT_CACHE": "1"}
    if src:
        env["PYTHONPATH"] = src
    out: dict[str, dict[str, float]] = {}
    for kind in ("many", "empty"):
        store = work / kind
        remove(store)
        if kind == "many":
            run([sys.executable, "-c", SETUP, store, logs], env=env)
        folder = work / f"data-{kind}"
        remove(folder)
        subprocess.run(["cp", "-a", str(data), str(folder)], check=True)
        cli = [sys.executable, "-m", "plait", "--store", store]
        times = {"log": run([*cli, "log", folder, "--name", "data"], env=env)}
        change_one(folder, files, 1024, SEED)
        times["log one changed"] = run([*cli, "log", folder, "--name", "data"], env=env)
        times["show"] = run([*cli, "show", "data:latest"], env=env)
        times["verify"] = run([*cli, "verify"], env=env)
        out[kind] = {step: times[step]["wall"] for step in STEPS} | {f"{step} cpu": times[step]["cpu"] for step in STEPS}
        out[kind]["index files"] = len(os.listdir(store / "index"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=500, help="small versions logged before the timed steps")
    parser.add_argument("--files", type=int, default=20_000, help="files of the folder logged in the timed steps")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-src", default=None, help="an earlier plait src/ run in turn as 'before'")
    parser.add_argument("--out", default=str(HERE / "results" / "many-logs.json"))
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="plait-bench-many-"))
    ENV["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    versions = {"after": str(HERE.parent / "src")} | ({"before": os.path.abspath(args.baseline_src)} if args.baseline_src else {})
    for src in versions.values():
        run([sys.executable, "-m", "compileall", "-q", src])
    data = base / "data"
    make_small(data, args.files, 1024, SEED)
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {v: [] for v in versions}
    for i in range(args.repeat):
        for name, src in versions.items():  # in turn: both see the same load
            print(f"round {i + 1} ({name}) …", file=sys.stderr)
            rounds[name].append(one_round(data, base / f"work-{name}", args.logs, args.files, src if name == "before" else None))
    results: dict[str, Any] = {}
    print(f"\n{args.logs} small logs before, then a folder of {args.files:,} × 1 KiB; median of {args.repeat}, seconds")
    print(f"{'step':18s}" + "".join(f"{name + ' ' + kind:>22s}" for name in versions for kind in ("many logs", "empty store")))
    for step in (*STEPS, "index files"):
        row = f"{step:18s}"
        for name in versions:
            for kind in ("many", "empty"):
                value = statistics.median(r[kind][step] for r in rounds[name])
                results.setdefault(name, {}).setdefault(kind, {})[step] = value
                row += f"{value:>22.2f}" if step != "index files" else f"{value:>22.0f}"
        print(row)
    Path(args.out).write_text(json.dumps({"logs": args.logs, "files": args.files, "repeat": args.repeat,
                                          "medians": results, "rounds": rounds}, indent=1))
    print(f"\nwritten to {args.out}")
    remove(base)


if __name__ == "__main__":
    main()
