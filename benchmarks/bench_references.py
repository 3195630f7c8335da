"""Benchmark references: log a prefix of 10,000 S3 objects by reference, re-log it, verify it, and
find one changed object, counting the requests the S3 server receives.

The S3 server is moto on loopback, in a process of its own (so it does not share the GIL with
plait), wrapped in a WSGI middleware that counts requests by operation. Each plait step is a
fresh ``plait`` process. The floor, measured in the same run, is one plain boto3 listing of the
same prefix (every page, nothing else): moto spends about a millisecond rendering each object
of a listing, so a listing of 10,000 objects costs seconds on moto whoever asks, and
milliseconds on S3.

    python benchmarks/bench_references.py                 # 10,000 objects, versioned and unversioned buckets
    python benchmarks/bench_references.py --objects 2000  # a quicker run

Prints a table and writes benchmarks/results/references.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "references.json"
ENV = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true"}


# -- the counting S3 server (run with --serve) ---------------------------------------------------


def operation(environ: dict) -> str:
    """Name the S3 operation of a request (enough for the ones plait sends)."""
    method, query = environ["REQUEST_METHOD"], environ.get("QUERY_STRING", "")
    path = environ.get("PATH_INFO", "/").strip("/")
    if method == "GET" and "/" not in path:
        return "ListObjectVersions" if "versions" in query else "ListObjectsV2" if "list-type=2" in query else "ListObjects"
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(method, method)


def serve(port_file: str) -> None:
    """Run moto with a request counter; ``/__counts`` returns the counts, ``/__reset`` clears them,
    ``/__fill?bucket=b&prefix=p&count=n&versioned=1`` writes objects straight into moto's store."""
    import logging
    import threading
    from collections import Counter
    from urllib.parse import parse_qs

    from moto.s3.models import s3_backends
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def counting(environ: dict, start_response) -> object:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__"):
            if path == "/__reset":
                with lock:
                    counts.clear()
            elif path == "/__fill":
                q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
                backend = s3_backends["123456789012"]["aws"]
                backend.create_bucket(q["bucket"], "us-east-1")
                if q.get("versioned") == "1":
                    backend.put_bucket_versioning(q["bucket"], "Enabled")
                for i in range(int(q["count"])):
                    backend.put_object(q["bucket"], f"{q['prefix']}{i // 1000:02d}/{i:06d}.bin", b"%06d" % i)
            with lock:
                body = json.dumps(dict(counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            counts[operation(environ)] += 1
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, counting, threaded=True)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# -- the benchmark --------------------------------------------------------------------------------


def call(endpoint: str, path: str) -> dict:
    with urllib.request.urlopen(f"{endpoint}{path}", timeout=600) as answer:
        return json.loads(answer.read())


def step(endpoint: str, args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, dict, str]:
    """Run one ``plait`` process; return its wall time, the requests the server saw, and its output."""
    call(endpoint, "/__reset")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "plait", *args], capture_output=True, text=True, env=env)
    took = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"plait {' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")
    return took, call(endpoint, "/__counts"), done.stdout


def floor(endpoint: str, bucket: str, prefix: str, env: dict[str, str]) -> tuple[float, dict]:
    """One plain boto3 listing of every page of the prefix, in a fresh process."""
    code = (f"import boto3\nc = boto3.client('s3', endpoint_url={endpoint!r})\n"
            f"for p in c.get_paginator('list_objects_v2').paginate(Bucket={bucket!r}, Prefix={prefix!r}): pass\n")
    call(endpoint, "/__reset")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - started, call(endpoint, "/__counts")


def run_bucket(endpoint: str, root: Path, objects: int, versioned: bool, env: dict[str, str], run: int) -> dict:
    bucket = f"bench-{'versioned' if versioned else 'plain'}-{run}"
    call(endpoint, f"/__fill?bucket={bucket}&prefix=big/&count={objects}&versioned={int(versioned)}")
    store = str(root / f"store-{bucket}")
    common = ["--store", store, "--allow-reference", endpoint, "--reference-option", f"client_kwargs.endpoint_url={endpoint}"]
    uri = f"s3://{bucket}/big/"
    out: dict = {"bucket": bucket, "versioned": versioned, "objects": objects}
    out["floor_list"] = floor(endpoint, bucket, "big/", env)
    out["log"] = step(endpoint, ["log", uri, "--name", "big", "--reference", "--max-objects", str(objects), *common], env)[:2]
    out["relog"] = step(endpoint, ["log", uri, "--name", "big", "--reference", "--max-objects", str(objects), *common], env)[:2]
    out["verify"] = step(endpoint, ["verify", *common], env)[:2]
    import boto3

    middle = objects // 2  # same size, other bytes
    boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=bucket, Key=f"big/{middle // 1000:02d}/{middle:06d}.bin",
                                                         Body=b"XXXXXX")
    took, counts, text = step(endpoint, ["verify", *common], env, ok=(0, 5))
    out["verify_changed"] = (took, counts)
    out["verify_changed_found"] = [line for line in text.splitlines() if line.startswith(("CHANGED", "MISSING"))]
    out["log_changed"] = step(endpoint, ["log", uri, "--name", "big", "--reference", "--max-objects", str(objects), *common], env)[:2]
    out["diff"] = step(endpoint, ["diff", "big:v0", "big:v1", *common], env)[:2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000, help="objects below the prefix")
    parser.add_argument("--repeat", type=int, default=1, help="runs per bucket kind (the table shows medians)")
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    for var, value in ENV.items():
        os.environ.setdefault(var, value)
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="plait-bench-refs-") as tmp:
        root = Path(tmp)
        port_file = root / "port"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)], env=env)
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            endpoint = f"http://127.0.0.1:{port_file.read_text()}"
            env["PLAIT_CACHE_DIR"] = str(root / "cache")
            env["PLAIT_CONFIG"] = str(root / "config.toml")
            runs = []
            for i in range(args.repeat):
                for versioned in (True, False):
                    call(endpoint, "/__reset")
                    runs.append(run_bucket(endpoint, root / f"run{i}", args.objects, versioned, env, i))
        finally:
            server.terminate()
            server.wait()
    report(runs, args)


def report(runs: list[dict], args: argparse.Namespace) -> None:
    steps = ["floor_list", "log", "relog", "verify", "verify_changed", "log_changed", "diff"]
    names = {"floor_list": "floor: one boto3 listing of the prefix", "log": "plait log --reference (new)",
             "relog": "re-log unchanged (no new version)", "verify": "plait verify",
             "verify_changed": "plait verify, 1 object changed", "log_changed": "re-log, 1 object changed",
             "diff": "plait diff v0 v1"}
    table = {}
    print(f"{args.objects:,} objects, {args.repeat} run(s) per bucket kind, medians; each step a fresh process")
    print(f"{'step':<42} {'bucket':<12} {'time':>8}  requests")
    for versioned in (True, False):
        mine = [r for r in runs if r["versioned"] == versioned]
        kind = "versioned" if versioned else "plain"
        for name in steps:
            took = statistics.median(r[name][0] for r in mine)
            counts = mine[0][name][1]
            table[f"{kind}/{name}"] = {"seconds": round(took, 2), "requests": counts}
            print(f"{names[name]:<42} {kind:<12} {took:>7.2f}s  {json.dumps(counts, sort_keys=True)}")
        print(f"{'':<42} {kind:<12} found: {mine[0]['verify_changed_found']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"objects": args.objects, "repeat": args.repeat, "steps": table,
                                   "machine": "2 cores, shared with other engineers' test runs"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
