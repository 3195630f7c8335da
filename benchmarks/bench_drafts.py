"""Benchmark incremental versions: one changed file in a large version, without the version's files at hand.

Logs a version of ``--files`` files of ``--size`` KiB (default 2,000 x 50 KiB = ~98 MiB) into a
fresh local store, deletes the source folder, then changes one file three ways:

- ``new_draft``: ``v.new_draft()``, add the changed file, log (reads and stores one file),
- ``download + log``: what it took without drafts: download the version, change the file, log the folder,
- ``cp -a``: the floor for moving the version's bytes once (copy of the store's blobs).

Reports wall time (median of ``--repeat``) and the bytes the process read and wrote
(``/proc/self/io``: rchar/wchar). Usage: ``python benchmarks/bench_drafts.py [--files 2000] [--size 50]
[--repeat 3]``. Prints a table and writes ``benchmarks/results/drafts.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import plait

RESULTS = Path(__file__).parent / "results" / "drafts.json"


def _io() -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])


def _measure(step) -> tuple[float, int, int]:
    r0, w0 = _io()
    t0 = time.perf_counter()
    step()
    seconds = time.perf_counter() - t0
    r1, w1 = _io()
    return seconds, r1 - r0, w1 - w0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=50, help="KiB per file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, int, int]]] = {"new_draft": [], "download + log": [], "cp -a": []}
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            os.environ["PLAIT_CACHE_DIR"] = str(root / "cache")
            src = root / "data"
            for n in range(args.files):
                (src / f"{n // 1000}").mkdir(parents=True, exist_ok=True)
                (src / f"{n // 1000}" / f"{n}.bin").write_bytes(os.urandom(args.size << 10))
            store = plait.Store(str(root / "store"))
            v = store.log(str(src), name="images")
            shutil.rmtree(src)
            changed = root / "changed.bin"
            changed.write_bytes(os.urandom(args.size << 10))

            def by_draft() -> None:
                store.log(v.new_draft().add_file(changed, name="0/7.bin"))

            def by_download() -> None:
                folder = v.download(root / f"work{i}")
                shutil.copyfile(changed, Path(folder) / "0" / "8.bin")
                store.log(folder, name="images")

            rows["new_draft"].append(_measure(by_draft))
            rows["download + log"].append(_measure(by_download))
            rows["cp -a"].append(_measure(lambda: subprocess.run(["cp", "-a", str(root / "store" / "blobs"), str(root / "copy")],
                                                                 check=True)))
    total = args.files * args.size << 10
    print(f"{args.files} files x {args.size} KiB ({total / 2**20:.0f} MiB), median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'step':<16} {'seconds':>8} {'MiB read':>9} {'MiB written':>12}")
    out = {}
    for step, samples in rows.items():
        sec = statistics.median(s for s, _, _ in samples)
        read = statistics.median(r for _, r, _ in samples) / 2**20
        wrote = statistics.median(w for _, _, w in samples) / 2**20
        print(f"{step:<16} {sec:>8.3f} {read:>9.1f} {wrote:>12.1f}")
        out[step] = {"seconds": sec, "mib_read": read, "mib_written": wrote}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"files": args.files, "kib": args.size, "repeat": args.repeat,
                                   "machine": platform.platform(), "results": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
