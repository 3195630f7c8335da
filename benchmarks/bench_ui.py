"""Dashboard latency on a large store: pages of the JSON API, ten users at once, a 500-node graph.

Builds a local store with ``--versions`` versions through the Store API (version records created
exclusively, one ``version.logged`` event each, one version in twenty tagged, a run per artifact), then

1. times the pages the dashboard asks for, one at a time through ASGI: the artifact list (first,
   middle, last page; filtered by type and by tag; searched), one artifact's versions (all, and
   those with a tag), the runs list, a version, a run, an artifact's aliases, a lineage drawing,
   the store's counts and tags;
2. serves the store with logins (`plait ui --login users`, a real uvicorn process on loopback)
   and lets ``--users`` logged-in users browse at once, each walking ``--rounds`` times through
   the pages a person opens, and reports the latency each request saw (median, p95, max);
3. lays out and draws a ``--graph-nodes`` lineage graph (server time), and when Debian's
   Chromium is there, times the full page in a real browser until the graph is drawn and fit.

Prints a table and writes benchmarks/results/ui.json. The goal: every page under 300 ms, also
with ten users browsing; the graph drawn in under 1 s.

    python benchmarks/bench_ui.py [--versions 20000] [--per-artifact 100] [--repeat 5] [--users 10] [--rounds 5] [--graph-nodes 500]
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
    from plait.base.ids import utcnow
    from plait.formats import records as R
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
            if record.number % 20 == 0:  # one version in twenty is tagged (the tag filters' pages)
                store.write_event(R.TAGS_CHANGED, {"name": name, "number": record.number, "added": ["reviewed"], "removed": []},
                                  run=run_id)
            made += 1
        store.write_event(R.RUN_FINISHED, {"id": run_id, "status": "finished", "ended_at": utcnow()}, run=run_id)
    return time.perf_counter() - t0


def build_chain(store, nodes: int) -> str:
    """Log a chain of runs (each using the last version and logging the next) of about ``nodes`` nodes; return its end."""
    import plait

    previous = None
    for i in range(nodes // 2):
        with plait.run(f"step-{i:04d}", store=store) as run:
            if previous is not None:
                run.use(previous)
            previous = run.log(f"step {i}".encode(), name="chain", type="model")
    return previous.spec


def browse(base: str, name: str, password: str, paths: list[str], rounds: int, out: list[float], errors: list[str]) -> None:
    """One user: log in, then open every page ``rounds`` times, recording each latency in ms."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as client:
        r = client.post("/api/login", json={"name": name, "password": password})
        if r.status_code != 200:
            errors.append(f"login {name}: {r.status_code} {r.text[:100]}")
            return
        for _ in range(rounds):
            for path in paths:
                t = time.perf_counter()
                r = client.get(path)
                out.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    errors.append(f"{path}: {r.status_code}")


def load_test(store_url: str, root: str, users: int, rounds: int, paths: list[str]) -> dict:
    """Serve the store with logins in a uvicorn process and let ``users`` browse at once."""
    import socket
    import subprocess
    import sys
    import urllib.request

    from plait.ui.users import UsersFile

    users_path = os.path.join(root, "users.json")
    people = UsersFile(users_path)
    for i in range(users):
        people.add(f"user{i}", "viewer", f"password-{i}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ}
    server = subprocess.Popen([sys.executable, "-m", "plait", "--store", store_url, "ui", "--login", "users", "--users", users_path,
                               "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/api/session", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        # the floor, in the same run on the same (shared) machine: one user alone
        alone = _browse_at_once(base, 1, paths, rounds)
        together = _browse_at_once(base, users, paths, rounds)
    finally:
        server.terminate()
        server.wait(10)
    return {**together, "one_user_alone": alone, "load_average": os.getloadavg()[0]}


def _browse_at_once(base: str, users: int, paths: list[str], rounds: int) -> dict:
    import threading

    latencies: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=browse, args=(base, f"user{i}", f"password-{i}", paths, rounds, latencies, errors))
               for i in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"users": users, "rounds": rounds, "requests": len(latencies), "errors": errors[:5], "wall_s": round(wall, 2),
            "median_ms": round(statistics.median(latencies), 1), "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
            "max_ms": round(latencies[-1], 1)}


def graph_bench(store, spec: str, repeat: int) -> dict:
    """Time laying out and drawing a lineage graph on the server, and in Chromium when it is there."""
    from plait.tracking.drawing import to_svg
    from plait.tracking.layout import layout

    graph = store.lineage(spec, direction="upstream")
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        lay = layout(graph)
        to_svg(lay)
        times.append((time.perf_counter() - t) * 1000)
    result = {"nodes": len(graph.versions) + len(graph.runs), "edges": len(graph.edges), "crossings": lay.crossings,
              "server_layout_ms": round(statistics.median(times), 1), "browser_ms": None}
    if os.path.exists("/usr/bin/chromium"):
        result["browser_ms"] = browser_render(store, spec, repeat)
    return result


def browser_render(store, spec: str, repeat: int) -> dict:
    """Open the full-page lineage in Chromium: the drawing's request, its render and fit, and the whole page load."""
    import threading

    import uvicorn
    from playwright.sync_api import sync_playwright

    from plait.ui import create_app

    config = uvicorn.Config(create_app(store), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            for _ in range(repeat):
                page.goto(f"http://127.0.0.1:{port}/lineage?spec={spec}&direction=upstream")
                page.locator("#graph svg[data-zoom]").wait_for()
                times.append(page.evaluate("""() => {
                    const r = performance.getEntriesByType('resource').find(e => e.name.includes('/api/lineage/drawing'));
                    const svg = document.querySelector('#graph svg');
                    return [performance.now(), r.responseEnd - r.startTime, +svg.dataset.renderMs];
                }"""))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    total, request, render = (statistics.median(t[i] for t in times) for i in range(3))
    return {"page_load_to_drawn_ms": round(total, 1), "drawing_request_ms": round(request, 1), "render_and_fit_ms": round(render, 1),
            "request_and_render_ms": round(request + render, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--per-artifact", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--graph-nodes", type=int, default=500)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="plait-bench-ui-")
    os.environ["PLAIT_CACHE_DIR"] = os.path.join(root, "cache")
    from fastapi.testclient import TestClient

    import plait
    from plait.ui import create_app

    store = plait.Store(os.path.join(root, "store"))
    build_s = build(store, args.versions, args.per_artifact)
    chain_end = build_chain(store, args.graph_nodes)
    from plait.index import versions as V

    n = V.count(store.catalog)
    client = TestClient(create_app(store))
    names = [name for name in V.names(store.catalog) if name != "chain"]
    run_id = client.get("/api/runs?limit=1&name=make-0").json()["items"][0]["id"]  # a run of 100 versions
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
        "version files": f"/api/versions/{names[0]}/0/tree",
        "version history": f"/api/versions/{names[0]}/0/history",
        "artifact aliases": f"/api/artifacts/{names[0]}/aliases",
        "run detail": f"/api/runs/{run_id}",
        "lineage drawing (version)": f"/api/lineage/drawing?spec={names[0]}:v0",
        "lineage drawing (run)": f"/api/lineage/drawing?spec=run:{run_id}",
        "store info (counts, tags)": "/api/store",
        "artifacts, tag=reviewed": "/api/artifacts?limit=50&tag=reviewed",
        "versions, tag=reviewed": f"/api/artifacts/{names[0]}/versions?limit=50&tag=reviewed",
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
    browsing = [u for u in pages.values() if "offset=" not in u][:10]
    load = load_test(store.url, root, args.users, args.rounds, browsing)
    for label, row in (("1 user alone", load["one_user_alone"]), (f"{load['users']} users at once", load)):
        print(f"{label} over HTTP (logged in): {row['requests']} requests in {row['wall_s']} s, median {row['median_ms']} ms, "
              f"p95 {row['p95_ms']} ms, max {row['max_ms']} ms, errors {row['errors']}")
    print(f"load average during the run: {load['load_average']:.1f} on {os.cpu_count()} cores")
    graph = graph_bench(store, chain_end, args.repeat)
    print(f"lineage graph of {graph['nodes']} nodes: layout + SVG on the server {graph['server_layout_ms']} ms, "
          f"in Chromium {graph['browser_ms']}, crossings {graph['crossings']}")
    out = Path(__file__).parent / "results" / "ui.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"versions": n, "artifacts": len(names), "build_seconds": round(build_s, 1),
                               "goal_ms": 300, "pages": rows, "concurrent": load, "graph": graph,
                               "machine": f"{os.cpu_count()} cores, shared with other work"}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
