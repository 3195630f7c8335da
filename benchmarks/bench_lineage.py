"""Benchmark the index and the lineage queries on a large store.

Builds a local store of ``500 * scale`` chains of 20 fine-tuning stages (10,000 runs and 20,000
versions at ``--scale 1``) through the Store API, then measures:

- rebuilding the index from scratch (``Store.reindex``, all events folded),
- a sync when nothing changed (every Store query pays it),
- an upstream query 20 runs deep (the index walk alone, ``Store.lineage``, and with ``to_json``),
- a downstream query from the shared dataset (every model of one chain group).

Usage: ``python benchmarks/bench_lineage.py [--scale 0.1] [--repeat 20] [--keep DIR]``.
Prints a table and writes ``benchmarks/results/lineage.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from report import print_and_save, timed

import plait
from plait.base.ids import new_ulid, utcnow
from plait.formats import records as R
from plait.index import events as E
from plait.index import graph as G
from plait.index import runs as RQ
from plait.index import versions as V
from plait.storage.digest import hash_bytes

STAGES = 20
RESULTS = Path(__file__).parent / "results" / "lineage.json"


def _version(store: plait.Store, name: str, type_: str, run: str | None) -> tuple[str, int]:
    record = store.create_version({
        "name": name, "type": type_, "digest": hash_bytes(f"{name}{new_ulid()}".encode()), "size": 1,
        "file_count": 1, "created_at": utcnow(), "created_by": run,
    })
    store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"), run=run)
    return record.name, record.number


def build(url: str, chains: int) -> dict[str, int]:
    """Write ``chains`` chains of STAGES runs; each run uses the dataset and the previous model
    and logs a model and a metrics version. The index is never opened while writing."""
    store = plait.Store(url).init()
    runs = versions = 0
    datasets = [_version(store, f"data-{g}", "dataset", None) for g in range(max(1, chains // 50))]
    versions += len(datasets)
    for chain in range(chains):
        data = datasets[chain % len(datasets)]
        previous: tuple[str, int] | None = None
        for stage in range(STAGES):
            run = new_ulid()
            store.write_event(R.RUN_STARTED, {"id": run, "name": f"stage-{stage:02d}", "kind": "manual", "parent": None,
                                              "config": {"chain": chain}, "started_at": utcnow()}, run=run)
            for used in (data, previous) if previous else (data,):
                store.write_event(R.VERSION_USED, {"name": used[0], "number": used[1]}, run=run)
            previous = _version(store, f"model-{chain}", "model", run)
            _version(store, f"metrics-{chain}", "result", run)
            store.write_event(R.RUN_FINISHED, {"id": run, "status": "finished", "ended_at": utcnow()}, run=run)
            runs += 1
            versions += 2
    return {"runs": runs, "versions": versions, "chains": chains, "datasets": len(datasets)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10,000 runs and 20,000 versions")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", help="build (or reuse) the store in this folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    chains = max(1, int(500 * args.scale))
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="plait-bench-"))
    url = str(folder / "store")
    results: dict = {"scale": args.scale, "python": platform.python_version(), "machine": platform.machine(),
                     "cpus": os.cpu_count()}
    try:
        if not (folder / "store" / "plait.json").exists():
            start = time.perf_counter()
            results["store"] = build(url, chains)
            results["build_s"] = time.perf_counter() - start
        shutil.rmtree(folder / "store" / "cache", ignore_errors=True)

        store = plait.Store(url)
        start = time.perf_counter()
        store.reindex()
        results["reindex_s"] = time.perf_counter() - start
        results["events"] = len(E.ids(store.catalog))
        results.setdefault("store", {"runs": RQ.count(store.catalog), "versions": V.count(store.catalog)})

        time.sleep(1.2)  # let partition mtimes settle, as they have in any store not being written
        store.catalog  # records the settled stamps
        final = f"model-{chains - 1}:v{STAGES - 1}"
        catalog = store.catalog
        results["sync_unchanged"] = timed(catalog.sync, args.repeat * 50)
        results["upstream_20_sql"] = timed(lambda: G.upstream(store.catalog, [(f"model-{chains - 1}", STAGES - 1)], None), args.repeat)
        graph = store.lineage(final)
        results["upstream_20_graph_size"] = {"runs": len(graph.runs), "versions": len(graph.versions)}
        assert len(graph.runs) == STAGES, len(graph.runs)
        results["upstream_20"] = timed(lambda: store.lineage(final), args.repeat)
        results["upstream_20_to_json"] = timed(lambda: store.lineage(final).to_json(), args.repeat)
        down = store.lineage("data-0:v0", direction="downstream")
        results["downstream_dataset_size"] = {"runs": len(down.runs), "versions": len(down.versions)}
        results["downstream_dataset"] = timed(lambda: store.lineage("data-0:v0", direction="downstream"), max(3, args.repeat // 4))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    rows = [
        ("store", f"{results['store']['runs']:,} runs, {results['store']['versions']:,} versions, {results['events']:,} events"),
        ("build (Store API, local folder)", f"{results['build_s']:.1f} s" if "build_s" in results else "reused"),
        ("reindex from scratch", f"{results['reindex_s']:.2f} s"),
        ("sync, nothing changed", f"{results['sync_unchanged']['median_ms'] * 1000:.0f} µs"),
        ("upstream 20 deep: the walk only", f"{results['upstream_20_sql']['median_ms']:.2f} ms"),
        ("upstream 20 deep: Store.lineage", f"{results['upstream_20']['median_ms']:.2f} ms"),
        ("upstream 20 deep: + to_json", f"{results['upstream_20_to_json']['median_ms']:.2f} ms"),
        (f"downstream of a dataset ({results['downstream_dataset_size']['versions']} versions)",
         f"{results['downstream_dataset']['median_ms']:.1f} ms"),
    ]
    print_and_save(rows, results, RESULTS)
    return results


if __name__ == "__main__":
    main()
