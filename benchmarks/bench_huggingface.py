"""Benchmark the Hugging Face integration against ``save_to_disk`` / ``load_from_disk``.

Builds (seeded) a ``Dataset`` of ``--scale`` GiB — an int id, a float score and a random text of
~1 KiB per row — in memory, then times on a fresh local store:

- ``save_to_disk`` and ``load_from_disk`` of the same data (the baseline);
- ``track`` the first time (write the shards, hash and chunk them, store the blobs);
- ``track`` again, unchanged (the fingerprint shortcut: nothing is written or hashed);
- ``track`` of equal content under another fingerprint (written and hashed, no new blob);
- ``track`` after changing 10 rows, and the bytes that version added to the store;
- ``load`` (download into plait's cache, verified, then memory-mapped) and ``load`` again (cached).

Prints a table and writes JSON to ``benchmarks/results/huggingface.json``.

    python benchmarks/bench_huggingface.py              # 1 GiB
    python benchmarks/bench_huggingface.py --scale 0.1  # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "huggingface.json"
ROW_TEXT = 1024


def build(scale: float, seed: int = 7) -> Any:
    """Return a Dataset of about ``scale`` GiB (random lowercase text, so it does not compress)."""
    import datasets
    import numpy as np
    import pyarrow as pa

    rows = max(1000, int(scale * (1 << 30)) // (ROW_TEXT + 16))
    rng = np.random.default_rng(seed)
    data = rng.integers(97, 123, size=rows * ROW_TEXT, dtype=np.uint8)
    offsets = np.arange(0, (rows + 1) * ROW_TEXT, ROW_TEXT, dtype=np.int32)
    text = pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data))
    table = pa.table({"id": pa.array(np.arange(rows)), "score": pa.array(rng.random(rows)), "text": text})
    return datasets.Dataset(table)


def change_rows(ds: Any, count: int = 10) -> Any:
    """Return a copy with ``count`` rows' text changed (same length), built without ``map``."""
    import datasets
    import pyarrow as pa

    table = ds.data.table
    picks = set(range(0, len(ds), max(1, len(ds) // count)))
    texts = table.column("text").to_pylist()
    for i in picks:
        texts[i] = texts[i][::-1]
    return datasets.Dataset(table.set_column(2, "text", pa.array(texts, pa.string())))


def blob_bytes(root: str) -> int:
    """Return the bytes under a local store's ``blobs/`` and ``packs/`` (formats 1 and 2)."""
    return sum(os.path.getsize(os.path.join(d, f)) for top in ("blobs", "packs")
               for d, _, fs in os.walk(os.path.join(root, top)) for f in fs)


#: CPU seconds (user + system, this process and its threads) of each step timed, by step order.
CPU: list[float] = []


def timed(fn: Any) -> tuple[float, Any]:
    os.sync()  # the writeback of the step before is not this step's
    cpu = sum(os.times()[:2])
    start = time.perf_counter()
    out = fn()
    CPU.append(sum(os.times()[:2]) - cpu)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size in GiB (default 1)")
    parser.add_argument("--out", default=str(RESULTS), help="JSON results file")
    args = parser.parse_args()

    import datasets

    import plait
    from plait.integrations.huggingface import load, track

    datasets.disable_progress_bars()
    work = Path(tempfile.mkdtemp(prefix="plait-bench-hf-"))
    os.environ["PLAIT_CACHE_DIR"] = str(work / "cache")
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")
    try:
        ds = build(args.scale)
        nbytes = ds.data.nbytes
        store = plait.Store(str(work / "store"))
        rows: list[tuple[str, float, str]] = []

        t, _ = timed(lambda: ds.save_to_disk(str(work / "saved")))
        rows.append(("save_to_disk", t, "baseline"))
        t, loaded = timed(lambda: datasets.load_from_disk(str(work / "saved")))
        rows.append(("load_from_disk", t, f"{len(loaded)} rows, memory-mapped"))

        with plait.run("bench", store=store):
            t, _ = timed(lambda: track(ds, "bench"))
            stored = blob_bytes(store.url)
            rows.append(("track, first time", t, f"{stored / 2**20:.0f} MiB stored"))
            t, _ = timed(lambda: track(ds, "bench"))
            rows.append(("track again, unchanged", t, "fingerprint known: nothing written or hashed"))
            same = ds.select(range(len(ds)))  # another fingerprint, equal rows
            t, _ = timed(lambda: track(same, "bench"))
            added = blob_bytes(store.url) - stored
            rows.append(("track equal content, new fingerprint", t, f"{added} bytes added, {len(store.versions('bench'))} version"))
            changed = change_rows(ds)
            before = blob_bytes(store.url)
            t, _ = timed(lambda: track(changed, "bench"))
            added = blob_bytes(store.url) - before
            rows.append(("track with 10 rows changed", t, f"{added / 2**20:.1f} MiB added ({100 * added / stored:.2f}% of v0)"))
        with plait.run("read", store=store):
            t, back = timed(lambda: load("bench:v0"))
            rows.append(("load (download + open)", t, f"{len(back)} rows"))
            t, back = timed(lambda: load("bench:v0"))
            rows.append(("load again (cached)", t, "files verified in cache"))
        assert back.features == ds.features and len(back) == len(ds)

        width = max(len(r[0]) for r in rows)
        print(f"Hugging Face integration, {nbytes / 2**30:.2f} GiB Arrow, {len(ds)} rows, {os.cpu_count()} cores")
        for (name, seconds, note), cpu in zip(rows, CPU):
            print(f"  {name:<{width}}  {seconds:8.2f} s  CPU {cpu:6.2f} s  {note}")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "scale": args.scale, "arrow_bytes": nbytes, "rows": len(ds), "cpus": os.cpu_count(),
            "python": platform.python_version(), "datasets": datasets.__version__,
            "steps": [{"step": n, "seconds": round(s, 3), "cpu": round(c, 3), "note": note} for (n, s, note), c in zip(rows, CPU)],
        }, indent=2) + "\n")
        print(f"wrote {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
