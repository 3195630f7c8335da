"""Scale benchmark: plait at 10,000 to 1,000,000 small files, against ``cp -a`` and a stat walk.

Drives plait only through its CLI (``python -m plait …``), every step a fresh process, so it
measures what a user waits for and keeps working however the package is arranged inside.
Before each timed step the disks are synced (``os.sync()``); page caches stay warm (for the
floors too). For each file count N (``--files``, ``--million`` adds 1,000,000), on a data set of
N × 1 KiB seeded incompressible files in folders of 100:

- floors: ``cp -a`` of the folder, a Python ``scandir`` + ``stat`` walk of it, reading every
  stored byte back (the floor for verify), and the start of an empty interpreter;
- ``log`` into an empty store, ``log`` again unchanged, ``log`` with one file changed (new bytes
  and new objects besides that file), ``show`` (its text lists 200 files), every file listed
  (``show --json``), ``diff`` of the two versions, ``verify`` of the store, ``get`` of v0 into
  an empty folder, ``gc`` (dry run) and ``gc --delete`` (with its grace period);
- wall time, CPU time per file and peak RSS of each process, objects (files) in the store;
- with ``--dvc`` (or ``dvc`` on PATH) at 100,000 files (``--dvc-at``): ``dvc add`` + ``dvc push`` to a local
  remote, one round.

Once per run: logging one large file (``--large-mib``, default 1 GiB) against ``cp -a`` of it
(and of a 200 MiB file, which the page cache absorbs where 1 GiB waits for disk writeback),
reading it and hashing it with xxh3 (floors); the chunker alone and hashing alone; re-logging
it after a 1-byte patch and after a 4 MiB append (the new bytes stored); CPU time per MiB. With ``--s3``: a loopback moto server counts the requests (PUT, GET,
HEAD, LIST, …) of log, re-log unchanged, re-log one changed, show, diff, verify and get of
``--s3-files`` × 4 KiB (default 20,000) in a bucket.

Write-heavy steps vary 2–5× between runs on a shared VM: compare within one run, take medians
(``--repeat``).

Usage::

    python benchmarks/bench_scale.py --files 10000,100000 --repeat 3 --s3
    python benchmarks/bench_scale.py --files 2000 --repeat 1 --large-mib 64 --s3 --s3-files 500  # smoke run
    python benchmarks/bench_scale.py --files 100000 --million --repeat 1

Prints tables and writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
HERE = Path(__file__).resolve().parent
SEED = 20260201
PER_FOLDER = 100

#: Set for every child: compiled modules go to a private cache (the shared environment has
#: PYTHONDONTWRITEBYTECODE and no .pyc files, which would make every process compile its imports).
ENV: dict[str, str] = {}


# -- data -----------------------------------------------------------------------------------------

def _generator(seed: int) -> Any:
    """Seeded incompressible bytes: numpy's PCG64 when present (~2 GiB/s), else ``random``."""
    try:
        import numpy as np

        gen = np.random.Generator(np.random.PCG64(seed))
        return gen.bytes
    except ImportError:  # pragma: no cover - slower but equivalent
        import random

        return random.Random(seed).randbytes


def make_small(root: Path, files: int, size: int, seed: int) -> None:
    """Write ``files`` files of ``size`` seeded bytes, ``PER_FOLDER`` to a folder."""
    take = _generator(seed)
    for start in range(0, files, PER_FOLDER):
        folder = root / f"d{start // PER_FOLDER:05d}"
        folder.mkdir(parents=True)
        n = min(PER_FOLDER, files - start)
        block = take(n * size)
        for j in range(n):
            with open(folder / f"f{start + j:07d}.bin", "wb") as f:
                f.write(block[j * size:(j + 1) * size])


def change_one(root: Path, files: int, size: int, seed: int) -> None:
    """Overwrite one file in the middle of the data set with new bytes of the same size."""
    i = files // 2
    (root / f"d{i // PER_FOLDER:05d}" / f"f{i:07d}.bin").write_bytes(_generator(seed + 7)(size))


def make_large(path: Path, size: int, seed: int) -> None:
    take = _generator(seed + 2)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 64 * MiB)
            f.write(take(n))
            left -= n


# -- measuring ------------------------------------------------------------------------------------

TIME = shutil.which("time") or "/usr/bin/time"


def run(cmd: list[Any], env: dict[str, str] | None = None, cwd: Path | None = None, stdout: Path | None = None) -> dict[str, Any]:
    """Run one command in a fresh process after ``os.sync()``.

    :returns: ``wall`` seconds, ``cpu`` seconds (user + system) and peak ``rss`` in MiB of that
        process, as ``/usr/bin/time`` reports them (its own small memory is what the child starts
        from: a child forked from this process would count this process's memory, the moto server's
        included), and its ``stdout`` (text, unless it went to the file ``stdout``).
    """
    env = {**(env or os.environ), **ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    os.sync()
    with tempfile.NamedTemporaryFile("r") as report, tempfile.TemporaryFile() as err, \
            (open(stdout, "wb") if stdout else tempfile.TemporaryFile()) as out:
        start = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%U %S %M", "-o", report.name, *map(str, cmd)], env=env, cwd=cwd,
                              stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        fields = report.read().split()
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {err.read().decode(errors='replace')[-2000:]}")
        out.seek(0)
        text = "" if stdout else out.read().decode(errors="replace")
    user, system, rss_kib = fields[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "rss": int(rss_kib) / 1024, "stdout": text}


def store_objects(root: Path) -> dict[str, int]:
    """Count the files (objects) and bytes of a local store by top-level prefix; ``cache/`` is not the store."""
    counts: Counter[str] = Counter()
    for top in sorted(os.listdir(root)):
        if top == "cache":
            continue
        path = root / top
        if path.is_file():
            counts["objects"] += 1
            counts["bytes"] += path.stat().st_size
            continue
        for dirpath, _, names in os.walk(path):
            for name in names:
                counts["objects"] += 1
                counts[f"objects:{top}"] += 1
                counts["bytes"] += os.lstat(os.path.join(dirpath, name)).st_size
    return dict(counts)


WALK = """
import os, sys, time
t = time.perf_counter()
stack, n = [sys.argv[1]], 0
while stack:
    with os.scandir(stack.pop()) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                e.stat(follow_symlinks=False); n += 1
print(n, time.perf_counter() - t)
"""

READ_ALL = """
import os, sys, time
t = time.perf_counter()
n = size = 0
for dirpath, dirnames, names in os.walk(sys.argv[1]):
    if dirpath == sys.argv[1]:
        dirnames[:] = [d for d in dirnames if d != "cache"]
    for name in names:
        with open(os.path.join(dirpath, name), "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
        n += 1
print(n, size, time.perf_counter() - t)
"""


class Plait:
    """One store and its private caches, driven through the CLI."""

    def __init__(self, work: Path, url: str | None = None, options: dict | None = None) -> None:
        self.store = url or str(work / "store")
        self.env = {**os.environ, "PLAIT_CACHE_DIR": str(work / "cache")}
        self.env.pop("PLAIT_STORE", None)
        self.env.pop("PLAIT_STORE_OPTIONS", None)
        if options:
            self.env["PLAIT_STORE_OPTIONS"] = json.dumps(options)

    def __call__(self, *args: Any, stdout: Path | None = None) -> dict[str, Any]:
        return run([sys.executable, "-m", "plait", "--store", self.store, *args], env=self.env, stdout=stdout)


def remove(path: Path | str) -> None:
    """Delete a folder of up to millions of files (``rm -rf``: Python's ``rmtree`` took 20 minutes
    for the 3 M files of the 1,000,000-file round)."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=False)


def step(m: dict[str, Any], files: int, **extra: Any) -> dict[str, Any]:
    """Keep what the table needs from one measurement."""
    out = {"wall": m["wall"], "cpu": m["cpu"], "rss": m["rss"], "cpu_us_per_file": m["cpu"] / max(files, 1) * 1e6}
    out.update(extra)
    return out


def small_round(data: Path, work: Path, files: int, size: int, store_format: int | str | None = None) -> dict[str, dict[str, Any]]:
    """Every step once on a fresh copy of the data into a fresh store (created untimed with
    ``plait init --format`` when ``store_format`` is given); return metrics per step."""
    out: dict[str, dict[str, Any]] = {}
    work.mkdir(parents=True)
    src = work / "src"
    out["cp -a (floor)"] = step(run(["cp", "-a", data, src]), files)
    walk = run([sys.executable, "-c", WALK, src])
    out["scandir+stat walk (floor)"] = step(walk, files, inside=float(walk["stdout"].split()[1]))
    out["python start (floor)"] = step(run([sys.executable, "-c", "pass"]), files)
    plait = Plait(work)
    store = Path(plait.store)
    if isinstance(store_format, str):  # a variant: "before:<src folder>" runs that plait, "after" this one
        if store_format.startswith("before:"):
            plait.env["PYTHONPATH"] = store_format.split(":", 1)[1]
    elif store_format is not None:
        plait("init", "--format", str(store_format))

    out["log into empty store"] = step(plait("log", src, "--name", "data"), files, **store_objects(store))
    out["re-log unchanged"] = step(plait("log", src, "--name", "data"), files)
    before = store_objects(store)
    change_one(src, files, size, SEED)
    m = plait("log", src, "--name", "data")
    after = store_objects(store)
    out["re-log one changed"] = step(m, files, new_bytes=after["bytes"] - before["bytes"] - size,
                                     new_objects=after["objects"] - before["objects"])
    listing = work / "show.txt"
    m = plait("show", "data:v1", stdout=listing)
    out["show"] = step(m, files, lines=sum(1 for _ in open(listing, "rb")))
    m = plait("--json", "show", "data:v1", stdout=listing)
    out["list every file (show --json)"] = step(m, files, entries=len(json.loads(listing.read_bytes())["files"]))
    m = plait("diff", "data:v0", "data:v1")
    out["diff (1 file apart)"] = step(m, files, lines=len(m["stdout"].splitlines()))
    out["verify"] = step(plait("verify"), files)
    read = run([sys.executable, "-c", READ_ALL, store])
    out["read stored bytes (floor)"] = step(read, files, bytes=int(read["stdout"].split()[1]))
    dest = work / "got"
    out["get into empty folder"] = step(plait("get", "data:v0", dest), files)
    out["gc (dry run)"] = step(plait("gc"), files)
    out["gc (delete)"] = step(plait("gc", "--delete"), files)  # with the grace period: judges every pack, marks
    out["store after"] = {**store_objects(store)}
    remove(work)
    return out


def dvc_round(data: Path, work: Path, files: int, dvc: list[str]) -> dict[str, dict[str, Any]]:
    """``dvc add`` + ``dvc push`` of a copy of the data to a local remote (one process each)."""
    ws, remote = work / "ws", work / "remote"
    ws.mkdir(parents=True)
    remote.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(work / "site")}
    for args in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"], ["remote", "add", "-d", "r", str(remote)]):
        subprocess.run([*dvc, *args], cwd=ws, env=env, check=True, capture_output=True)
    subprocess.run(["cp", "-a", str(data), str(ws / "data")], check=True)
    os.sync()
    a = run(dvc + ["add", "-q", "data"], env=env, cwd=ws)
    p = run(dvc + ["push", "-q"], env=env, cwd=ws)
    n = sum(len(f) for _, _, f in os.walk(remote))
    size = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(remote) for f in fs)
    remove(work)
    return {"dvc add + push": {"wall": a["wall"] + p["wall"], "cpu": a["cpu"] + p["cpu"], "rss": max(a["rss"], p["rss"]),
                               "cpu_us_per_file": (a["cpu"] + p["cpu"]) / files * 1e6, "objects": n, "bytes": size,
                               "add_wall": a["wall"], "push_wall": p["wall"]}}


READ_ONE = """
import os, sys, time, xxhash
t = time.perf_counter()
h = xxhash.xxh3_128() if sys.argv[2] == "xxh3" else None
with open(sys.argv[1], "rb", buffering=0) as f:
    while chunk := f.read(1 << 20):
        if h:
            h.update(chunk)
print(time.perf_counter() - t)
"""

READ_WRITE = """
import mmap, sys, time
t = time.perf_counter()
buf = memoryview(mmap.mmap(-1, 8 << 20))
with open(sys.argv[1], "rb", buffering=0) as f, open(sys.argv[2], "wb", buffering=0) as g:
    while n := f.readinto(buf):
        g.write(buf[:n])
print(time.perf_counter() - t)
"""

CUT_ONLY = """
import os, sys, time
from plait.storage import digest as D
t = time.perf_counter()
size = os.path.getsize(sys.argv[1])
with open(sys.argv[1], "rb", buffering=0) as f:
    free = (lambda: None,) if "free" in D._stretches.__code__.co_varnames else ()
    n = sum(len(s) for s in D._stretches(f, size, *free))
print(n, time.perf_counter() - t)
"""

HASH_ONLY = """
import sys, time
from plait.storage.digest import digest_file
t = time.perf_counter()
fd = digest_file(sys.argv[1])
print(len(fd.chunks), time.perf_counter() - t)
"""


def large_round(data: Path, work: Path, variants: list[int | str | None]) -> dict[str, dict[str, Any]]:
    """Floors (``cp -a`` of the large file and of a 200 MiB one, reading it, xxh3 of it, reading
    it into memory and writing a copy from there), then for each variant on a fresh store: the
    chunker alone, hashing alone, log, re-log after a 1-byte patch and after a 4 MiB append (new
    bytes stored), and log of the 200 MiB file."""
    work.mkdir(parents=True)
    big, mid = data / "large.bin", data / "large-200.bin"
    copy, mid_copy = work / "large.bin", work / "large-200.bin"
    size, mid_size = big.stat().st_size, mid.stat().st_size
    out = {"cp -a large file (floor)": step(run(["cp", "-a", big, copy]), 1, mib=size / MiB),
           "cp -a 200 MiB file (floor)": step(run(["cp", "-a", mid, mid_copy]), 1, mib=mid_size / MiB)}
    for what in ("read", "xxh3"):
        m = run([sys.executable, "-c", READ_ONE, copy, what])
        out[f"{what} large file (floor)"] = step(m, 1, mib=size / MiB, inside=float(m["stdout"]))
    # what any store that hashes the bytes it writes must at least do: read them into memory, write them
    m = run([sys.executable, "-c", READ_WRITE, copy, work / "read-write.bin"])
    out["read + write large file (floor)"] = step(m, 1, mib=size / MiB, inside=float(m["stdout"]))
    (work / "read-write.bin").unlink()
    for f in variants:
        sfx = "" if f is None else f" [{_label(f) or f}]"
        plait = Plait(work / f"v-{_label(f) or f}")
        env = dict(plait.env)
        if isinstance(f, str) and f.startswith("before:"):
            plait.env["PYTHONPATH"] = env["PYTHONPATH"] = f.split(":", 1)[1]
        m = run([sys.executable, "-c", CUT_ONLY, copy], env=env)
        out[f"cut only{sfx}"] = step(m, 1, mib=size / MiB, inside=float(m["stdout"].split()[1]))
        m = run([sys.executable, "-c", HASH_ONLY, copy], env=env)
        out[f"cut + hash (digest_file){sfx}"] = step(m, 1, mib=size / MiB, inside=float(m["stdout"].split()[1]))
        store = Path(plait.store)
        out[f"log one large file{sfx}"] = step(plait("log", copy, "--name", "large"), 1, mib=size / MiB, **store_objects(store))
        for change, edit in (("1-byte patch", _patch_one_byte), ("4 MiB append", _append_4_mib)):
            before = store_objects(store)
            changed = edit(copy)
            m = plait("log", copy, "--name", "large")
            new = store_objects(store)["bytes"] - before["bytes"]
            out[f"re-log after {change}{sfx}"] = step(m, 1, mib=size / MiB, new_bytes=new, changed=changed)
        out[f"log 200 MiB file{sfx}"] = step(plait("log", mid_copy, "--name", "mid"), 1, mib=mid_size / MiB)
        subprocess.run(["cp", "-a", big, copy], check=True)  # the next variant starts from the same bytes
    remove(work)
    return out


def _patch_one_byte(path: Path) -> int:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2 + 12345)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    return 1


def _append_4_mib(path: Path) -> int:
    with open(path, "ab") as f:
        f.write(_generator(SEED + 9)(4 * MiB))
    return 4 * MiB


def large_table(res: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["step", "wall", "CPU", "CPU ms/MiB", "peak RSS", "× cp -a (same size)", "stored"]
    rows = []
    for name, m in res.items():
        floor = res["cp -a 200 MiB file (floor)" if "200 MiB" in name else "cp -a large file (floor)"]
        ratio = f"{m['wall'] / floor['wall']:.2f}" if name.startswith(("log", "re-log", "read + write")) else "—"
        what = "—"
        if "bytes" in m:
            what = f"{m['objects']:,.0f} objects, {m['bytes'] / MiB:.0f} MiB"
        if "new_bytes" in m:
            what = f"+{m['new_bytes'] / MiB:.2f} MiB for {m['changed'] / MiB:.2f} MiB changed"
        if "inside" in m:
            what = f"{m['inside']:.2f} s inside the process"
        rows.append([name, f"{m['wall']:.2f} s", f"{m['cpu']:.2f} s", f"{m['cpu'] * 1000 / m['mib']:.2f}",
                     f"{m['rss']:.0f} MiB", ratio, what])
    return header, rows


# -- S3 (loopback moto) ---------------------------------------------------------------------------

class RequestCounter:
    """WSGI middleware around moto's app: counts requests by kind (PUT, GET, HEAD, LIST, …)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "").strip("/")
        query = environ.get("QUERY_STRING", "")
        if method == "GET" and ("/" not in path or "list-type" in query or query.startswith("prefix") or "delimiter" in query):
            kind = "LIST"
        elif method == "POST" and "delete" in query:
            kind = "DELETE"
        else:
            kind = method
        with self.lock:
            self.counts[kind] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


def start_moto() -> tuple[Any, str, RequestCounter]:
    """Start moto's S3 server on a free loopback port, PUTs made atomic as in the tests."""
    import logging

    from moto.s3.responses import S3Response
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if not getattr(S3Response.put_object, "plait_atomic", False):  # check-then-store in one step, as S3 does
        handler, lock = S3Response.put_object, threading.Lock()

        def put_object(self: S3Response) -> object:
            with lock:
                return handler(self)

        put_object.plait_atomic = True  # type: ignore[attr-defined]
        S3Response.put_object = put_object
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    counter = RequestCounter(server._server.app)  # werkzeug looks the app up per request
    server._server.app = counter
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}", counter


def s3_round(data: Path, work: Path, files: int, size: int, endpoint: str, counter: RequestCounter, bucket: str) -> dict[str, dict[str, Any]]:
    import s3fs

    work.mkdir(parents=True)
    options = {"key": "bench-key", "secret": "bench-secret", "client_kwargs": {"endpoint_url": endpoint}}
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(bucket)
    url = f"s3://{bucket}/store"
    plait = Plait(work, url, options)
    src = work / "src"
    subprocess.run(["cp", "-a", str(data), str(src)], check=True)
    out: dict[str, dict[str, Any]] = {}

    def objects() -> int:
        fs.invalidate_cache()
        return len(fs.find(f"{bucket}/store"))

    def timed(name: str, *args: Any, **extra: Any) -> None:
        before = counter.snapshot()
        m = plait(*args, stdout=work / "out.txt")
        requests = counter.snapshot() - before
        out[name] = step(m, files, requests=dict(requests), **extra)

    timed("log into empty bucket", "log", src, "--name", "data")
    out["log into empty bucket"]["objects"] = objects()
    timed("re-log unchanged", "log", src, "--name", "data")
    change_one(src, files, size, SEED)
    n0 = objects()
    timed("re-log one changed", "log", src, "--name", "data")
    out["re-log one changed"]["new_objects"] = objects() - n0
    timed("show", "show", "data:v1")
    timed("diff (1 file apart)", "diff", "data:v0", "data:v1")
    timed("verify", "verify")
    timed("get into empty folder", "get", "data:v0", work / "got")
    fs.rm(bucket, recursive=True)
    remove(work)
    return out


# -- the report -----------------------------------------------------------------------------------

#: The issue's goals, per step (text for the table; the numbers are checked at 100,000 files).
GOALS = {
    "log into empty store": "≤ 1.5 × cp -a",
    "re-log unchanged": "≤ 1.0 s",
    "re-log one changed": "≤ 1.5 s, ≤ 64 KiB new",
    "show": "≤ 0.5 s",
    "diff (1 file apart)": "≤ 0.5 s",
    "verify": "≤ 2 × read stored",
    "get into empty folder": "≤ 2 × cp -a",
    "log one large file": "≤ 2 × cp -a",
    "log into empty bucket": "≤ 300 PUT (20k × 4 KiB)",
    "re-log one changed@s3": "≤ 10 PUT",
}

FLOOR_OF = {"log into empty store": "cp -a (floor)", "get into empty folder": "cp -a (floor)",
            "verify": "read stored bytes (floor)", "log one large file": "cp -a large file (floor)",
            "re-log unchanged": "scandir+stat walk (floor)"}


def median_of(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in rounds[0]:
        out[s] = {}
        for k, v in rounds[0][s].items():
            if isinstance(v, (int, float)):
                out[s][k] = statistics.median(r[s][k] for r in rounds)
            elif isinstance(v, dict):
                out[s][k] = {kk: statistics.median(r[s][k].get(kk, 0) for r in rounds) for kk in v}
            else:
                out[s][k] = v
    return out


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)])


def small_table(res: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["step", "wall", "CPU/file", "peak RSS", "× floor", "objects / new data", "goal"]
    rows = []
    for name, m in res.items():
        if name == "store after":
            continue
        floor = res.get(FLOOR_OF.get(name, ""), {})
        ratio = f"{m['wall'] / floor['wall']:.2f} × {FLOOR_OF[name].split(' (')[0]}" if floor else "—"
        what = "—"
        if "objects" in m and "bytes" in m:
            what = f"{m['objects']:,.0f} objects, {m['bytes'] / MiB:.0f} MiB"
        if "new_objects" in m:
            what = f"+{m['new_objects']:.0f} objects, +{m['new_bytes'] / KiB:.1f} KiB besides the file"
        if "lines" in m:
            what = f"{m['lines']:,.0f} lines"
        if "entries" in m:
            what = f"{m['entries']:,.0f} entries"
        rows.append([name, f"{m['wall']:.2f} s", _cpu(m), f"{m['rss']:.0f} MiB", ratio, what, GOALS.get(name, "")])
    return header, rows


def _cpu(m: dict[str, Any]) -> str:
    us = m["cpu_us_per_file"]
    return f"{us / 1e6:.2f} s" if us >= 1e5 else f"{us:.0f} µs"


def s3_table(res: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["step", "wall", "peak RSS", "PUT", "GET", "HEAD", "LIST", "other", "objects", "goal"]
    rows = []
    for name, m in res.items():
        req = dict(m["requests"])
        known = [req.pop(k, 0) for k in ("PUT", "GET", "HEAD", "LIST")]
        objects = f"{m['objects']:,.0f}" if "objects" in m else (f"+{m['new_objects']:.0f}" if "new_objects" in m else "—")
        goal = GOALS.get(f"{name}@s3", GOALS.get(name, "")) if "PUT" in GOALS.get(f"{name}@s3", GOALS.get(name, "")) else ""
        rows.append([name, f"{m['wall']:.2f} s", f"{m['rss']:.0f} MiB", *(f"{n:,.0f}" for n in known),
                     ", ".join(f"{k} {v:,.0f}" for k, v in sorted(req.items()) if v) or "0", objects, goal])
    return header, rows


def _key(files: int, store_format: int | str | None) -> str:
    if isinstance(store_format, str):
        return f"small-{files}-{store_format.split(':')[0]}"
    return f"small-{files}" + ("" if store_format is None else f"-format{store_format}")


def _label(store_format: int | str | None) -> str:
    if isinstance(store_format, str):
        return store_format.split(":")[0]
    return "" if store_format is None else f"store format {store_format}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="10000,100000", help="comma-separated file counts (default 10000,100000)")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 files (one round)")
    parser.add_argument("--size", type=int, default=KiB, help="bytes per small file (default 1 KiB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per file count (median reported)")
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the one large file (0: skip)")
    parser.add_argument("--s3", action="store_true", help="also the S3 part against a loopback moto server")
    parser.add_argument("--s3-files", type=int, default=20_000, help="files of 4 KiB for the S3 part")
    parser.add_argument("--s3-repeat", type=int, default=1, help="rounds of the S3 part (slow on today's format)")
    parser.add_argument("--dvc", default=shutil.which("dvc"), help="dvc executable for dvc add + push at 100,000 files (default: on PATH)")
    parser.add_argument("--dvc-at", type=int, default=100_000, help="the file count at which DVC runs (default 100000)")
    parser.add_argument("--no-dvc", action="store_true", help="skip DVC even if installed")
    parser.add_argument("--workdir", default=None, help="scratch folder, kept with its data sets (default: a temporary one)")
    parser.add_argument("--formats", default=None,
                        help="store formats to compare, each round on each in turn (e.g. 1,2; default: a new store's)")
    parser.add_argument("--baseline-src", default=None,
                        help="a plait src/ folder (e.g. `git archive` of an earlier commit) run in turn with this one, "
                             "each round, as 'before' (same data, same load)")
    parser.add_argument("--out", default=str(HERE / "results" / "scale.json"))
    args = parser.parse_args()
    formats: list[Any] = [int(f) for f in args.formats.split(",")] if args.formats else [None]
    if args.baseline_src:  # "before" and "after" in turn, on the store format a new store gets
        formats = [f"before:{os.path.abspath(args.baseline_src)}", "after"]

    counts = [int(n) for n in args.files.split(",") if n.strip()] + ([1_000_000] if args.million else [])
    base = Path(args.workdir or tempfile.mkdtemp(prefix="plait-bench-scale-"))
    ENV["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    run([sys.executable, "-m", "plait", "--help"])  # compile the imports once, outside the timings
    for src in [str(HERE.parent / "src")] + ([os.path.abspath(args.baseline_src)] if args.baseline_src else []):
        run([sys.executable, "-m", "compileall", "-q", src])  # every module, the lazily imported ones too
    dvc = None if args.no_dvc or not args.dvc else [args.dvc]
    results: dict[str, Any] = {}
    tables: list[tuple[str, list[str], list[list[str]]]] = []

    for n in counts:
        data = base / f"data-{n}"
        if not (data / ".complete").exists():
            print(f"generating {n:,} × {args.size} B in {data} …", file=sys.stderr)
            remove(data)
            make_small(data / "files", n, args.size, SEED)
            (data / ".complete").touch()
        rounds: dict[int | None, list[dict[str, Any]]] = {f: [] for f in formats}
        for i in range(1 if n >= 1_000_000 else args.repeat):
            for f in formats:  # in turn: the formats see the same load
                print(f"{n:,} files: round {i + 1}{'' if f is None else f' ({_label(f)})'} …", file=sys.stderr)
                rounds[f].append(small_round(data / "files", base / f"work-{n}-{i}-{f}", n, args.size, f))
        for f in formats:
            res = median_of(rounds[f])
            res["rounds"] = len(rounds[f])  # type: ignore[assignment]
            if dvc and n == args.dvc_at and f == formats[-1]:
                print(f"{n:,} files: dvc add + push …", file=sys.stderr)
                try:
                    res.update(dvc_round(data / "files", base / f"dvc-{n}", n, dvc))
                except (RuntimeError, subprocess.CalledProcessError) as exc:
                    print(f"dvc failed: {exc}", file=sys.stderr)
            results[_key(n, f)] = res
            _save_partial(args.out, results)
            tables.append((f"{n:,} files × {args.size} B in folders of {PER_FOLDER}{'' if f is None else f', {_label(f)}'}, "
                           f"median of {len(rounds[f])}", *small_table({k: v for k, v in res.items() if k != "rounds"})))

    if len(counts) >= 2:  # how peak memory grows with the file count
        lo, hi = counts[0], counts[-1]
        for f in formats:
            slopes = {s: (results[_key(hi, f)][s]["rss"] - results[_key(lo, f)][s]["rss"]) * MiB / (hi - lo)
                      for s in ("log into empty store", "re-log one changed", "show", "get into empty folder", "verify",
                                "gc (dry run)", "gc (delete)")}
            results["rss_bytes_per_file" + _key(0, f)[len("small-0"):]] = {"from": lo, "to": hi, **slopes}

    if args.large_mib:
        data = base / "data-large"
        if not (data / ".complete").exists():
            data.mkdir(parents=True, exist_ok=True)
            make_large(data / "large.bin", args.large_mib * MiB, SEED)
            make_large(data / "large-200.bin", min(200, args.large_mib) * MiB, SEED + 1)
            (data / ".complete").touch()
        rounds = [large_round(data, base / f"large-{i}", formats) for i in range(args.repeat)]
        results["large"] = median_of(rounds)
        _save_partial(args.out, results)
        tables.append((f"one file of {args.large_mib} MiB (and one of 200 MiB), median of {len(rounds)}",
                       *large_table(results["large"])))

    if args.s3:
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        data = base / f"data-s3-{args.s3_files}"
        if not (data / ".complete").exists():
            remove(data)
            make_small(data / "files", args.s3_files, 4 * KiB, SEED + 1)
            (data / ".complete").touch()
        server, endpoint, counter = start_moto()
        try:
            rounds = []
            for i in range(args.s3_repeat):
                print(f"s3, {args.s3_files:,} files: round {i + 1} …", file=sys.stderr)
                rounds.append(s3_round(data / "files", base / f"s3-{i}", args.s3_files, 4 * KiB, endpoint, counter, f"bench-{i}-{os.getpid()}"))
        finally:
            server.stop()
        results["s3"] = median_of(rounds)
        tables.append((f"S3 (loopback moto): {args.s3_files:,} files × 4 KiB, requests per step, median of {len(rounds)}",
                       *s3_table(results["s3"])))

    cfg = {"files": counts, "formats": [_label(f) or None for f in formats], "baseline_src": args.baseline_src, "size": args.size, "per_folder": PER_FOLDER, "repeat": args.repeat, "large_mib": args.large_mib,
           "s3_files": args.s3_files if args.s3 else None, "s3_repeat": args.s3_repeat, "cores": os.cpu_count(), "python": platform.python_version(),
           "commit": _commit(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"\nplait scale benchmark; {os.cpu_count()} cores, Python {platform.python_version()}, commit {cfg['commit']}")
    for title, header, rows in tables:
        print(f"\n{title}\n")
        print(render(header, rows))
    for key in [k for k in results if k.startswith("rss_bytes_per_file")]:
        g = results[key]
        print(f"\npeak RSS growth from {g['from']:,} to {g['to']:,} files{key[len('rss_bytes_per_file'):].replace('-', ', ')}: "
              + ", ".join(f"{k} {v / KiB:.2f} KiB/file" for k, v in g.items() if k not in ("from", "to")))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"config": cfg, "results": results,
                                          "tables": [{"title": t, "header": h, "rows": r} for t, h, r in tables]}, indent=2))
    Path(args.out + ".partial").unlink(missing_ok=True)
    print(f"\nwrote {args.out}", file=sys.stderr)
    if not args.workdir:
        remove(base)


def _save_partial(out: str, results: dict[str, Any]) -> None:
    """Keep what is measured so far (``<out>.partial``): a late failure loses no finished section."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out + ".partial").write_text(json.dumps(results, indent=2))


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
