"""Dashboard list latency on a large store: time per page of the JSON API (through ASGI).

Builds a local store with ``--versions`` versions through the Store API (version records created
exclusively, one ``version.logged`` event each, a run per artifact), then times the pages the
dashboard asks for: the artifact list (first, middle, last page; filtered; searched), one
artifact's versions, and the runs list. Prints a table and writes benchmarks/results/ui.json.

    python benchmarks/bench_ui.py [--versions 20000] [--per-artifact 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def build(store, versions: int, per_artifact: int) -> float:
    from plait.formats import records as R
    from plait.base.ids import utcnow
    from plait.formats.manifest import Entry, Manifest

    t0 = time.perf_counter()
    store.init()
    data = b"x" * 100
    digest = store.blobs.put_bytes(data)
    manifest_digest = store.put_manifest(Manifest(entries=(Entry(path="data.bin", digest=digest, size=len(data)),)))
    names = (versions + per_artifact - 1) // per_artifact
    made = 0
    for a in range(names):
        name = f"{'model' if a % 3 == 0 else 'dataset'}-{a:05d}"
        typ = "model" if a % 3 == 0 else "dataset"
        run_id = f"01J{a:023d}"
        store.write_event(R.RUN_STARTED, {"id": run_id, "name": f"make-{a}", "kind": "manual", "started_at": utcnow()}, run=run_id)
        for _ in range(min(per_artifact, versions - made)):
            record = store.create_version({"name": name, "type": typ, "digest": manifest_digest, "size": len(data),
                                           "file_count": 1, "created_at": utcnow(), "created_by": run_id})
            store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"), run=run_id)
            made += 1
        store.write_event(R.RUN_FINISHED, {"id": run_id, "status": "finished", "ended_at": utcnow()}, run=run_id)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--per-artifact", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="plait-bench-ui-")
    os.environ["PLAIT_CACHE_DIR"] = os.path.join(root, "cache")
    import plait
    from fastapi.testclient import TestClient

    from plait.ui import create_app

    store = plait.Store(os.path.join(root, "store"))
    build_s = build(store, args.versions, args.per_artifact)
    n = store.catalog.query("SELECT COUNT(*) FROM versions")[0][0]
    client = TestClient(create_app(store))
    names = store.catalog.names()
    pages = {
        "artifacts, first page": "/api/artifacts?limit=50",
        "artifacts, middle page": f"/api/artifacts?limit=50&offset={len(names) // 2}",
        "artifacts, last page": f"/api/artifacts?limit=50&offset={max(0, len(names) - 50)}",
        "artifacts, type=model": "/api/artifacts?limit=50&type=model",
        "artifacts, search": "/api/artifacts?limit=50&q=001",
        "versions of one artifact": f"/api/artifacts/{names[0]}/versions?limit=50",
        "versions, page 2": f"/api/artifacts/{names[0]}/versions?limit=50&offset=50",
        "runs, first page": "/api/runs?limit=50",
        "version detail": f"/api/versions/{names[0]}/0",
    }
    rows = []
    for label, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm: sync, SQLite page cache
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            r = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        rows.append({"page": label, "url": url, "median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)})
    print(f"store: {n} versions in {len(names)} artifacts, built in {build_s:.1f} s")
    print(f"{'page':<28}{'median ms':>12}{'max ms':>10}")
    for row in rows:
        print(f"{row['page']:<28}{row['median_ms']:>12.2f}{row['max_ms']:>10.2f}")
    out = Path(__file__).parent / "results" / "ui.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"versions": n, "artifacts": len(names), "build_seconds": round(build_s, 1),
                               "goal_ms": 300, "pages": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
