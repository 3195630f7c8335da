"""Time ``verify`` and ``gc`` on a local store holding N blobs (default 20,000).

Builds the store directly (one version of N small files, plus N/10 unreferenced blobs for gc
to find), then times ``Store.verify()`` and a dry-run and a real ``Store.gc()``. Prints a table
and writes ``benchmarks/results/reliability.json``.

    python benchmarks/bench_reliability.py [--blobs 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=20_000)
    args = parser.parse_args()
    import plait

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLAIT_CACHE_DIR"] = os.path.join(tmp, "cache")
        store = plait.Store(os.path.join(tmp, "store")).init()
        started = time.perf_counter()
        art = plait.Artifact("many")
        for i in range(args.blobs):
            art.add_bytes(f"file {i} ".encode() * 8, f"f/{i:06d}.txt")
        store.log(art)
        for i in range(args.blobs // 10):
            store.blobs.put_bytes(f"orphan {i}".encode())
        build = time.perf_counter() - started
        rows = []
        for label, fn in (("verify", store.verify),
                          ("gc (dry run)", lambda: store.gc(grace_seconds=0)),
                          ("gc (delete)", lambda: store.gc(dry_run=False, grace_seconds=0))):
            t = time.perf_counter()
            result = fn()
            rows.append((label, time.perf_counter() - t, result))
        blobs = len(store.backend.find("blobs"))
    out = {"blobs": args.blobs + args.blobs // 10, "build_seconds": round(build, 2), "python": platform.python_version(),
           "cpus": os.cpu_count(), "results": {}}
    print(f"store: {args.blobs} referenced + {args.blobs // 10} unreferenced blobs (built in {build:.1f}s)")
    print(f"{'operation':<14} {'seconds':>8}  result")
    for label, seconds, result in rows:
        summary = (f"ok={result.ok} blobs={result.blobs}" if label == "verify"
                   else f"{len(result.blobs)} blobs, {result.bytes} bytes")
        print(f"{label:<14} {seconds:>8.2f}  {summary}")
        out["results"][label] = {"seconds": round(seconds, 3), "summary": summary}
    out["blobs_left"] = blobs
    dest = Path(__file__).with_name("results") / "reliability.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
