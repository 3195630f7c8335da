"""Benchmark the core data plane: log, re-log, incremental log, bytes stored, download.

Generates (seeded, incompressible) a folder of 20,000 files of 50 KiB and one 1 GiB file, then
runs each step as the ``plait`` command in a fresh process and measures its wall time and peak
RSS (``os.wait4`` rusage of that one child). Prints a table and writes JSON to
``benchmarks/results/core.json``.

    python benchmarks/bench_core.py              # full scale (~2 GiB of data, a few minutes)
    python benchmarks/bench_core.py --scale 0.01 # quick run

The data was just written, so it is in the page cache: the numbers measure plait, not the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILE_COUNT = 20_000
FILE_SIZE = 50 << 10
BIG_SIZE = 1 << 30
RESULTS = Path(__file__).resolve().parent / "results" / "core.json"


def generate(root: Path, scale: float, seed: int = 42) -> tuple[Path, Path, int, int]:
    """Write the folder and the big file under ``root``; return their paths, file count and big size."""
    rng = random.Random(seed)
    count = max(1, int(FILE_COUNT * scale))
    folder = root / "folder"
    for i in range(count):
        path = folder / f"{i // 1000:02}" / f"{i:05}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(FILE_SIZE))
    big_size = max(16 << 20, int(BIG_SIZE * scale)) >> 20 << 20
    big = root / "big.bin"
    with open(big, "wb") as f:
        for _ in range(big_size >> 20):
            f.write(rng.randbytes(1 << 20))
    return folder, big, count, big_size


def run_step(args: list[str], env: dict[str, str]) -> dict:
    """Run ``python -m plait ARGS`` in a fresh process; return wall seconds, peak RSS and its JSON output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "plait", "--json", *args], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"step {' '.join(args)} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return {"seconds": wall, "peak_rss": peak, "output": json.loads(out.read() or b"null")}


def blob_bytes(store: Path) -> int:
    """Return the total size of the store's blobs: loose (``blobs/``, format 1) and packed (``packs/``, format 2)."""
    return sum(p.stat().st_size for top in ("blobs", "packs") for p in (store / top).rglob("*") if p.is_file())


def edit_in_place(path: Path, offset: int, data: bytes) -> None:
    """Overwrite ``len(data)`` bytes at ``offset`` (the file keeps its size)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def main() -> None:
    """Run every step and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full data size (default 1)")
    parser.add_argument("--workdir", default=None, help="where to put data and store (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data and store afterwards")
    parser.add_argument("--output", default=str(RESULTS), help="JSON results file")
    opts = parser.parse_args()

    root = Path(opts.workdir or tempfile.mkdtemp(prefix="plait-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    store = root / "store"
    env = {**os.environ, "PLAIT_STORE": str(store), "PLAIT_CACHE_DIR": str(root / "cache"), "PLAIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        t = time.perf_counter()
        folder, big, count, big_size = generate(root, opts.scale)
        print(f"generated {count} x 50 KiB and a {big_size >> 20} MiB file in {time.perf_counter() - t:.1f} s under {root}", file=sys.stderr)
        rows: list[dict] = []

        def step(label: str, args: list[str], data_bytes: int) -> dict:
            before = blob_bytes(store)
            result = run_step(args, env)
            row = {"step": label, "seconds": round(result["seconds"], 3), "peak_rss_mib": round(result["peak_rss"] / 2**20, 1),
                   "data_mib": round(data_bytes / 2**20, 1), "stored_mib": round((blob_bytes(store) - before) / 2**20, 3),
                   "throughput_mib_s": round(data_bytes / 2**20 / result["seconds"], 1) if data_bytes else None,
                   "version": (result["output"] or {}).get("spec")}
            rows.append(row)
            print(f"  {label}: {row['seconds']} s", file=sys.stderr)
            return row

        folder_bytes = count * FILE_SIZE
        step("log folder (cold)", ["log", str(folder), "--name", "folder"], folder_bytes)
        step("re-log folder unchanged", ["log", str(folder), "--name", "folder"], folder_bytes)
        first = next(folder.rglob("*.bin"))
        first.write_bytes(random.Random(7).randbytes(FILE_SIZE))
        step("log folder, 1 file changed", ["log", str(folder), "--name", "folder"], folder_bytes)
        step("log 1 GiB file (cold)", ["log", str(big), "--name", "big", "--type", "model"], big_size)
        step("re-log 1 GiB file unchanged", ["log", str(big), "--name", "big", "--type", "model"], big_size)
        edit_in_place(big, big_size // 2, random.Random(8).randbytes(4096))
        step("log 1 GiB file, 4 KiB edited", ["log", str(big), "--name", "big", "--type", "model"], big_size)
        step("download folder (empty dest)", ["get", "folder:latest", str(root / "out-folder")], folder_bytes)
        step("download 1 GiB file (empty dest)", ["get", "big:latest", str(root / "out-big")], big_size)
        step("verify every blob", ["verify"], blob_bytes(store))

        report = {
            "benchmark": "core", "scale": opts.scale, "files": count, "file_size": FILE_SIZE, "big_size": big_size,
            "store_blob_bytes": blob_bytes(store), "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "steps": rows,
        }
        headers = ["step", "seconds", "peak_rss_mib", "data_mib", "stored_mib", "throughput_mib_s", "version"]
        widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in headers]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        for r in rows:
            print("  ".join(str(r[h]).ljust(w) for h, w in zip(headers, widths)))
        print(f"store blobs: {report['store_blob_bytes'] / 2**20:.1f} MiB for {(folder_bytes + big_size) / 2**20:.0f} MiB of data, logged twice each")
        Path(opts.output).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.output).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {opts.output}")
    finally:
        if not opts.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
