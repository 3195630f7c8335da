"""Benchmark `plait.sync`: a 20,000-file dataset, then a version with one changed file.

Each step runs in a fresh process. The destination is a local folder, or an S3 bucket on a
loopback moto server with ``--s3`` (requests then dominate: moto answers each in milliseconds,
a real bucket in tens of them).

    python benchmarks/bench_sync.py                 # 20,000 × 50 KiB, local -> local
    python benchmarks/bench_sync.py --scale 0.1 --s3

Prints a table and writes benchmarks/results/sync.json (sync-s3.json with ``--s3``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "sync.json"


def make_dataset(folder: Path, files: int, size: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(files):
        sub = folder / f"part-{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i:06d}.bin").write_bytes(rng.randbytes(size))


def timed(code: str, env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def start_moto() -> tuple[object, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 20,000 files")
    parser.add_argument("--size", type=int, default=50 * 1024, help="bytes per file")
    parser.add_argument("--s3", action="store_true", help="sync to a bucket on a loopback moto server")
    args = parser.parse_args()
    files = max(10, int(20_000 * args.scale))

    with tempfile.TemporaryDirectory(prefix="plait-bench-sync-") as tmp:
        root = Path(tmp)
        data = root / "data"
        make_dataset(data, files, args.size)
        env = {**os.environ, "PLAIT_CACHE_DIR": str(root / "cache")}
        src = str(root / "src")
        options: dict = {}
        server = None
        if args.s3:
            server, endpoint = start_moto()
            for var, value in (("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_DEFAULT_REGION", "us-east-1")):
                env.setdefault(var, value)
                os.environ.setdefault(var, value)
            options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": endpoint}}
            import s3fs

            s3fs.S3FileSystem(**options).mkdir("bench")
            dst = "s3://bench/plait"
        else:
            dst = str(root / "dst")
        open_dst = f"plait.Store({dst!r}, storage_options={options!r})"
        log = f"import plait; v = plait.Store({src!r}).log({str(data)!r}, name='data'); print('{{}}')"
        sync = (f"import json, plait; r = plait.sync(plait.Store({src!r}), {open_dst}); "
                "print(json.dumps({'versions': len(r.versions), 'blobs': r.blobs, 'bytes': r.bytes, 'events': r.events}))")
        rows = []
        t, _ = timed(log, env)
        rows.append(("log the dataset", t, None))
        t, out = timed(sync, env)
        rows.append(("sync it", t, out))
        t, out = timed(sync, env)
        rows.append(("sync again (nothing new)", t, out))
        changed = next(data.rglob("*.bin"))
        changed.write_bytes(random.Random(1).randbytes(args.size))
        t, _ = timed(log, env)
        rows.append(("log a version with 1 file changed", t, None))
        t, out = timed(sync, env)
        rows.append(("sync that version", t, out))
        if server is not None:
            server.stop()

    print(f"\nplait sync, {files:,} files × {args.size // 1024} KiB, {'local -> s3 (moto)' if args.s3 else 'local -> local'}\n")
    print(f"{'step':<36} {'seconds':>8} {'blobs sent':>11} {'bytes sent':>14} {'events':>7}")
    for step, seconds, out in rows:
        extra = f"{out['blobs']:>11,} {out['bytes']:>14,} {out['events']:>7,}" if out else ""
        print(f"{step:<36} {seconds:>8.2f} {extra}")
    out = RESULTS.with_name("sync-s3.json") if args.s3 else RESULTS
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "files": files, "file_size": args.size, "destination": "s3 (moto)" if args.s3 else "local",
        "steps": [{"step": s, "seconds": round(t, 3), **(o or {})} for s, t, o in rows],
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
