"""Side-by-side benchmark: plait vs DVC (add + push to a local remote) vs ``cp -a``.

Generates seeded, incompressible data sets, then runs every step in a fresh process and reports
the median of ``--repeat`` runs of wall time, peak RSS (of that process tree) and bytes stored:

- A   ``20,000 × 50 KiB`` in folders of 1,000 files;  A2 = A with 1 file changed, 1 deleted,
  100 added;
- B   one 1 GiB file;  B2 = B + 4 MiB appended;  B3 = B with 4 KiB overwritten in the middle;
  B4 = B with 4 KiB inserted in the middle.

Steps: log A; re-log A unchanged; log A2 (extra bytes / new bytes); fetch A v0 into an empty
folder; log B (and hash it); log B2, B3, B4 after B (extra bytes / new bytes). ``cp -a`` is the
floor for logging and fetching. Sizes scale with ``--scale`` (0.05 is a quick smoke run).

Usage::

    python benchmarks/bench_compare.py --scale 0.25 --repeat 3
    python benchmarks/bench_compare.py --no-dvc --scale 0.05 --repeat 1

Prints a table and writes ``benchmarks/results/compare.json``.
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
import time
from pathlib import Path

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
HERE = Path(__file__).resolve().parent
SEED = 20260101


# -- data -----------------------------------------------------------------------------------------

class Bytes:
    """Seeded incompressible bytes (numpy's PCG64 when present: ~2 GiB/s)."""

    def __init__(self, seed: int) -> None:
        try:
            import numpy as np

            self._gen = np.random.Generator(np.random.PCG64(seed))
            self.take = lambda n: self._gen.bytes(n)
        except ImportError:  # pragma: no cover - slower but equivalent
            import random

            rnd = random.Random(seed)
            self.take = rnd.randbytes


def make_a(root: Path, files: int, size: int, seed: int) -> None:
    gen = Bytes(seed)
    for i in range(files):
        p = root / f"d{i // 1000:03d}" / f"f{i:06d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(gen.take(size))


def mutate_a(root: Path, files: int, size: int, added: int, seed: int) -> int:
    """Turn A into A2 in place; return the new bytes (changed + added files)."""
    gen = Bytes(seed + 1)
    (root / "d000" / "f000001.bin").write_bytes(gen.take(size))
    (root / "d000" / "f000002.bin").unlink()
    for j in range(added):
        p = root / "new" / f"n{j:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(gen.take(size))
    return size * (1 + added)


def make_b(path: Path, size: int, seed: int) -> None:
    gen = Bytes(seed + 2)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 64 * MiB)
            f.write(gen.take(n))
            left -= n


def variant_b(src: Path, dst: Path, kind: str, seed: int) -> int:
    """Write B2 (append), B3 (overwrite) or B4 (insert) of ``src`` to ``dst``; return new bytes."""
    gen = Bytes(seed + 3)
    size = src.stat().st_size
    mid = size // 2 + 12345
    patch_size = 4 * MiB if kind == "append" else 4 * KiB
    patch = gen.take(patch_size)
    with open(src, "rb") as f, open(dst, "wb") as out:
        head = mid if kind != "append" else size
        _copy(f, out, head)
        out.write(patch)
        if kind == "overwrite":
            f.seek(mid + patch_size)
        if kind != "append":
            _copy(f, out, size)
    return patch_size


def _copy(f, out, limit: int) -> None:
    while f.tell() < limit:
        data = f.read(min(8 * MiB, limit - f.tell()))
        if not data:
            break
        out.write(data)


# -- measuring ------------------------------------------------------------------------------------

TIME = shutil.which("time") or "/usr/bin/time"


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Run one command in a fresh process.

    :returns: wall seconds, CPU seconds (user + system), peak RSS in MiB of the process (measured
        by ``/usr/bin/time``, whose own small memory is what the child starts from) and stdout.
    """
    env = {**(env or os.environ), **ENV}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        proc = subprocess.run([TIME, "-f", "%U %S %M", "-o", report.name, *map(str, cmd)], cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        fields = report.read().split()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    user, system, rss_kib = fields[-3:]
    return wall, float(user) + float(system), int(rss_kib) / 1024, proc.stdout


#: Set for every child: compiled modules go to a private cache (the shared environment has
#: PYTHONDONTWRITEBYTECODE and no .pyc files, which would make every process compile its imports).
ENV: dict[str, str] = {}


def tree_bytes(root: Path, skip: tuple[str, ...] = ()) -> int:
    total = 0
    for dirpath, dirnames, files in os.walk(root):
        if dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d not in skip]
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


class Tool:
    """One way of storing versions: subclasses implement the steps."""

    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work

    def stored(self) -> int:
        raise NotImplementedError


class Plait(Tool):
    name = "plait"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.store = work / "store"
        self.env = {**os.environ, "PLAIT_CACHE_DIR": str(work / "cache")}
        self.env.pop("PLAIT_STORE", None)

    def cmd(self, *args: str) -> tuple[float, float, float]:
        return run([sys.executable, "-m", "plait", "--store", str(self.store), *args], env=self.env)[:3]

    def log(self, path: Path, name: str) -> tuple[float, float, float]:
        return self.cmd("log", str(path), "--name", name)

    def fetch(self, name: str, number: int, dest: Path) -> tuple[float, float, float]:
        return self.cmd("get", f"{name}:v{number}", str(dest))

    def stored(self) -> int:
        return tree_bytes(self.store, skip=("cache",))


class Dvc(Tool):
    name = "dvc"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.ws = work / "ws"
        self.remote = work / "remote"
        self.env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(work / "site")}
        self.ws.mkdir(parents=True)
        self.remote.mkdir()
        self._init(self.ws)
        self.saved: dict[tuple[str, int], bytes] = {}
        self.counts: dict[str, int] = {}

    def _init(self, ws: Path) -> None:
        for args in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"], ["remote", "add", "-d", "r", str(self.remote)]):
            run([sys.executable, "-m", "dvc", *args], cwd=ws, env=self.env)

    def log(self, path: Path, name: str) -> tuple[float, float, float]:
        """``dvc add`` + ``dvc push`` of ``path`` placed at ``ws/name`` (moved, as DVC needs)."""
        target = self.ws / name
        if path != target:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.rename(path, target)
        w1, c1, r1, _ = run([sys.executable, "-m", "dvc", "add", "-q", name], cwd=self.ws, env=self.env)
        w2, c2, r2, _ = run([sys.executable, "-m", "dvc", "push", "-q"], cwd=self.ws, env=self.env)
        n = self.counts.get(name, -1) + 1
        self.counts[name] = n
        self.saved[(name, n)] = (self.ws / f"{name}.dvc").read_bytes()
        return w1 + w2, c1 + c2, max(r1, r2)

    def fetch(self, name: str, number: int, dest: Path) -> tuple[float, float, float]:
        dest.mkdir(parents=True)
        self._init(dest)
        (dest / f"{name}.dvc").write_bytes(self.saved[(name, number)])
        return run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=dest, env=self.env)[:3]

    def stored(self) -> int:
        return tree_bytes(self.remote)


# -- the steps ------------------------------------------------------------------------------------

def one_round(tool_cls: type[Tool], data: Path, work: Path, cfg: dict) -> dict[str, dict[str, float]]:
    """Run every step once for one tool on fresh copies of the data; return metrics per step."""
    out: dict[str, dict[str, float]] = {}
    work.mkdir(parents=True)
    tool = tool_cls(work)
    a = work / "A"
    subprocess.run(["cp", "-a", str(data / "A"), str(a)], check=True)
    log_path = a if tool.name == "plait" else a  # DVC moves it into its workspace
    w, c, r = tool.log(log_path, "A")
    out["log A"] = {"wall": w, "cpu": c, "rss": r, "stored": tool.stored()}
    a = a if tool.name == "plait" else tool.ws / "A"
    w, c, r = tool.log(a, "A")
    out["re-log A unchanged"] = {"wall": w, "cpu": c, "rss": r}
    before = tool.stored()
    new = mutate_a(a, cfg["files"], cfg["file_size"], cfg["added"], SEED)
    w, c, r = tool.log(a, "A")
    out["log A2"] = {"wall": w, "cpu": c, "rss": r, "extra": tool.stored() - before, "new": new}
    dest = work / "fetched"
    w, c, r = tool.fetch("A", 0, dest)
    out["fetch A v0"] = {"wall": w, "cpu": c, "rss": r}
    shutil.rmtree(dest)
    shutil.rmtree(a)

    b = work / "B.bin"
    shutil.copyfile(data / "B.bin", b)
    before = tool.stored()
    w, c, r = tool.log(b, "B.bin")
    out["log B"] = {"wall": w, "cpu": c, "rss": r, "stored": tool.stored() - before}
    b = b if tool.name == "plait" else tool.ws / "B.bin"
    for kind, step in (("append", "log B2 (append 4 MiB)"), ("overwrite", "log B3 (overwrite 4 KiB)"), ("insert", "log B4 (insert 4 KiB)")):
        variant = work / "variant.bin"
        new = variant_b(data / "B.bin", variant, kind, SEED)
        os.replace(variant, b)
        before = tool.stored()
        w, c, r = tool.log(b, "B.bin")
        out[step] = {"wall": w, "cpu": c, "rss": r, "extra": tool.stored() - before, "new": new}
    shutil.rmtree(work)
    return out


def floor_round(data: Path, work: Path) -> dict[str, dict[str, float]]:
    work.mkdir(parents=True)
    w, c, r, _ = run(["cp", "-a", data / "A", work / "A"])
    out = {"log A": {"wall": w, "cpu": c, "rss": r}, "fetch A v0": {"wall": w, "cpu": c, "rss": r}}
    w, c, r, _ = run(["cp", "-a", data / "B.bin", work / "B.bin"])
    out["log B"] = {"wall": w, "cpu": c, "rss": r}
    # the hashing libraries are imported before the clock starts, as in any plait process (pyfastcdc's
    # typing_extensions alone takes 50 ms to import; a real log has imported it with pydantic)
    code = ("import sys, time, pyfastcdc, xxhash, concurrent.futures; from plait.storage.digest import digest_file; t = time.perf_counter(); "
            "fd = digest_file(sys.argv[1]); print(fd.size / 2**30 / (time.perf_counter() - t))")
    w, c, r, text = run([sys.executable, "-c", code, data / "B.bin"])
    out["hash B (GiB/s)"] = {"wall": w, "cpu": c, "rss": r, "rate": float(text)}
    code = "import time; t = time.perf_counter(); import plait; print(time.perf_counter() - t)"
    w, c, r, text = run([sys.executable, "-c", code])
    out["import plait"] = {"wall": float(text), "cpu": c, "rss": r}
    w, c, r, _ = run([sys.executable, "-m", "plait", "--help"])
    out["plait --help"] = {"wall": w, "cpu": c, "rss": r}
    shutil.rmtree(work)
    return out


def median_of(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    steps = rounds[0]
    return {s: {k: statistics.median(r[s][k] for r in rounds) for k in steps[s]} for s in steps}


def fmt_step(m: dict[str, float] | None) -> str:
    if not m:
        return "—"
    if "rate" in m:
        return f"{m['rate']:.2f} GiB/s"
    text = f"{m['wall']:.2f} s" + (f" ({m['cpu']:.2f} s CPU)" if "cpu" in m else "")
    if "extra" in m:
        text += f", ×{m['extra'] / m['new']:.2f} ({m['extra'] / MiB:.1f} MiB)"
    elif "stored" in m:
        text += f", {m['stored'] / MiB:.0f} MiB"
    if "rss" in m and m.get("rss"):
        text += f", {m['rss']:.0f} MiB RSS"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size factor (1.0 = 20,000 files and 1 GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per tool (median reported)")
    parser.add_argument("--no-dvc", action="store_true", help="skip DVC even if installed")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", default=str(HERE / "results" / "compare.json"))
    args = parser.parse_args()

    cfg = {
        "files": max(100, int(20_000 * args.scale)),
        "file_size": 50 * KiB,
        "added": max(1, int(100 * args.scale)),
        "b_size": max(64 * MiB, int(GiB * args.scale)) // MiB * MiB,
    }
    base = Path(args.workdir or tempfile.mkdtemp(prefix="plait-bench-"))
    ENV["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    data = base / "data"
    if not (data / "B.bin").exists():
        print(f"generating A ({cfg['files']} × 50 KiB) and B ({cfg['b_size'] / MiB:.0f} MiB) in {data} …", file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)
        make_a(data / "A", cfg["files"], cfg["file_size"], SEED)
        make_b(data / "B.bin", cfg["b_size"], SEED)
    tools: list[type[Tool]] = [Plait]
    run([sys.executable, "-m", "plait", "--help"])  # compile the imports once, outside the timings
    try:
        has_dvc = not args.no_dvc and bool(run([sys.executable, "-m", "dvc", "--version"]))
    except RuntimeError:
        has_dvc = False
    if has_dvc:
        tools.append(Dvc)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for tool in tools:
        rounds = []
        for i in range(args.repeat):
            print(f"{tool.name}: round {i + 1}/{args.repeat} …", file=sys.stderr)
            rounds.append(one_round(tool, data, base / f"{tool.name}-{i}", cfg))
        results[tool.name] = median_of(rounds)
    results["floor"] = median_of([floor_round(data, base / f"floor-{i}") for i in range(args.repeat)])

    steps = list(results["plait"]) + ["hash B (GiB/s)", "import plait", "plait --help"]
    header = ["step", "plait", "DVC add+push" if has_dvc else "DVC (not run)", "plait / DVC", "cp -a / raw", "plait / cp"]
    rows = []
    for step in steps:
        p, d, f = results["plait"].get(step), results.get("dvc", {}).get(step), results["floor"].get(step)
        if step in results["floor"] and step not in results["plait"]:
            p, f = f, None
        ratio = "—"
        if p and d:
            if "extra" in p:
                ratio = f"{(p['extra'] / p['new']) / max(d['extra'] / d['new'], 1e-9):.3f} (bytes)"
            else:
                ratio = f"{p['wall'] / d['wall']:.2f} (time)"
        floor = f"{p['wall'] / f['wall']:.2f}" if p and f and "rate" not in p else "—"
        rows.append([step, fmt_step(p), fmt_step(d), ratio, fmt_step(f), floor])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(f"\nscale {args.scale}: A = {cfg['files']} × 50 KiB, B = {cfg['b_size'] / MiB:.0f} MiB; median of {args.repeat}; "
          f"{os.cpu_count()} cores, {platform.python_version()}\n")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"config": {**cfg, "scale": args.scale, "repeat": args.repeat, "cores": os.cpu_count(),
                                                     "python": platform.python_version(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                          "results": results, "table": [header, *rows]}, indent=2))
    print(f"\nwrote {args.out}", file=sys.stderr)
    if not args.workdir:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
