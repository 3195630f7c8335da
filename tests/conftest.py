"""Fixtures that build a fresh world per test: an empty cache, no default store, and stores
parametrized over the backends (``file``, ``memory``, and ``s3`` on a real S3 API server —
moto's threaded server on a free loopback port, started once per session)."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # test helper modules (blobview) import by name

from blobview import Blobs  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "")


# -- one home per test process ----------------------------------------------------------------------
# The suite runs on xdist workers (see addopts): each process gets its own Prefect home (profiles,
# memo store, default database) and Hugging Face home (the datasets cache), never the user's ~/.prefect
# or ~/.cache/huggingface, so two workers share nothing there and a run leaves nothing behind.

_process_home: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    home = tempfile.mkdtemp(prefix=f"plait-tests-{worker}-")
    _process_home.append(home)
    os.environ["PREFECT_HOME"] = os.path.join(home, "prefect")
    os.environ["HF_HOME"] = os.path.join(home, "huggingface")


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    while _process_home:
        shutil.rmtree(_process_home.pop(), ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the files that hold ``slow`` tests first, each file's tests kept together and in order.

    xdist's ``--dist loadfile`` hands whole files to the workers in this order (addopts turns off its
    own reordering by test count), so the longest files start first and both workers finish together
    instead of one running the demo alone at the end.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test in its own folder with its own cache, no user settings and no default store from outside."""
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "_cache"))
    monkeypatch.setenv("PLAIT_CONFIG", str(tmp_path / "_config.toml"))  # no user settings unless a test writes them
    for var in ("PLAIT_STORE", "PLAIT_ALLOW_REFERENCES", "PLAIT_REFERENCE_OPTIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    from plait.api.store import STORE_SLOT
    from plait.store.shared import states
    from plait.tracking.run import end_implicit_runs

    end_implicit_runs()
    for state in states():  # the next test opens its stores afresh
        state.pop(STORE_SLOT)
    # a test may have loaded plugins under its own environment (autoload off, a test plugin):
    # the next test loads them afresh under its own
    from plait.plugins import reset_plugin_manager

    reset_plugin_manager()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run Prefect flows against one ephemeral Prefect server for the whole session.

    Prefect 3 starts a local API server for the first flow (6-10 s, more on a busy machine); one
    ``prefect_test_harness`` per session keeps that cost to once, whichever folder's tests ask
    first. The flow heartbeat is turned off (it adds about a second per flow) and task results
    go to a session folder, so a cached task never finds a result from an earlier session.
    """
    pytest.importorskip("prefect", reason="the Prefect integration needs Prefect 3: pip install 'plait[prefect]'")
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    results = tmp_path_factory.mktemp("prefect-results")
    with prefect_test_harness(server_startup_timeout=180), temporary_settings(
        updates={"flows.heartbeat_frequency": None, "results.local_storage_path": str(results)}
    ):
        yield
    import gc
    import warnings

    with warnings.catch_warnings():  # the sockets Prefect's async client leaves to the server
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="session")
def importable_tests() -> Iterator[None]:
    """Put the repository on ``sys.path``, so that worker processes (spawned with this process's
    ``sys.path``) can import test helper modules such as ``tests.tracking.pool_work`` by name."""
    import sys

    repo = str(Path(__file__).resolve().parents[1])
    added = repo not in sys.path
    if added:
        sys.path.insert(0, repo)
    yield
    if added:
        sys.path.remove(repo)


@pytest.fixture
def slow_to_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files settle (see :mod:`plait.index.statcache`) an hour after they change, not 2 s: a file the
    test has just written stays unsettled however slowly this machine gets to the next log, and
    one moved back by ``tests/settle.py``'s ``settle`` (a day) is settled."""
    from plait.index import statcache

    monkeypatch.setattr(statcache, "SETTLE_NS", 3600 * 10**9)


@pytest.fixture
def builtin_plugins_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Prove the core with the built-in plugin alone (the integrations have their own tests)."""
    from plait.plugins import reset_plugin_manager

    monkeypatch.setenv("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def file_store(tmp_path: Path):
    """A fresh local-folder store."""
    import plait

    return plait.Store(str(tmp_path / "store"))


@pytest.fixture
def memory_store() -> Iterator:
    """A fresh memory:// store with a unique name, whose files are dropped after the test.

    fsspec's memory filesystem is one dict for the whole process, and every listing walks all of
    it: kept, the files of earlier tests made each later listing slower (a test that lists while
    another thread writes took 67 s near the end of a serial run, under a second on its own).
    """
    from fsspec.implementations.memory import MemoryFileSystem

    import plait

    root = f"/plait-test-{uuid.uuid4().hex[:8]}"
    yield plait.Store(f"memory:/{root}")
    for key in [k for k in tuple(MemoryFileSystem.store) if k.startswith(f"{root}/")]:  # a copy: a writer may still add
        MemoryFileSystem.store.pop(key, None)
    MemoryFileSystem.pseudo_dirs[:] = [d for d in MemoryFileSystem.pseudo_dirs if d != root and not d.startswith(f"{root}/")]


S3_KEY = "plait-test-key"
S3_SECRET = "plait-test-secret"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 (a free port) for the session; yield its endpoint URL."""
    import logging

    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # dummies so nothing ever looks for real credentials (or asks the instance metadata service)
    for var, value in (("AWS_ACCESS_KEY_ID", S3_KEY), ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
                       ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")):
        os.environ.setdefault(var, value)
    _make_puts_atomic()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    S3Requests.counter = S3Requests(server._server.app)  # werkzeug looks the app up per request
    server._server.app = S3Requests.counter
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class S3Requests:
    """WSGI middleware around the loopback S3 server: counts the requests it answers, by method."""

    counter: S3Requests | None = None

    def __init__(self, app) -> None:
        import collections
        import threading

        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response):
        with self.lock:
            self.counts[environ.get("REQUEST_METHOD", "")] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


@pytest.fixture
def s3_requests(s3_server: str):
    """Return a function giving ``{method: count}`` of the requests the loopback S3 server has
    answered since the test began (tests run one at a time)."""
    counter = S3Requests.counter
    assert counter is not None
    start = counter.snapshot()
    return lambda: {k: n - start.get(k, 0) for k, n in counter.snapshot().items() if n - start.get(k, 0)}


def _make_puts_atomic() -> None:
    """Make moto's PUT check-then-store one step, as it is on S3 (idempotent).

    moto checks ``If-None-Match: *`` and stores the object in two steps of Python; when its
    server thread loses the GIL in between, two writers racing to create one key both get
    200, and the second silently replaces the first. S3 answers the second with 412. The
    eight-writer test hit this once in CI (199 versions from 200 logs). A lock around the
    whole PUT handler restores S3's rule; plait itself is unchanged.
    """
    import threading

    from moto.s3.responses import S3Response

    if getattr(S3Response.put_object, "plait_atomic", False):
        return
    handler, lock = S3Response.put_object, threading.Lock()

    def put_object(self: S3Response) -> object:
        with lock:
            return handler(self)

    put_object.plait_atomic = True
    S3Response.put_object = put_object


@pytest.fixture(scope="session")
def s3_options(s3_server: str) -> dict:
    """The ``storage_options`` that point s3fs at the loopback server."""
    return {"key": S3_KEY, "secret": S3_SECRET, "client_kwargs": {"endpoint_url": s3_server}}


@pytest.fixture(scope="session")
def s3_fs(s3_options: dict):
    """An s3fs filesystem on the loopback server (for making buckets and poking at objects)."""
    import s3fs

    return s3fs.S3FileSystem(**s3_options)


@pytest.fixture
def s3_url(s3_fs) -> str:
    """A fresh ``s3://`` store URL in a bucket of its own on the loopback server.

    A bucket per test, not a prefix in a shared one: moto lists a prefix by scanning the whole
    bucket, so a shared bucket would make every later test slower.
    """
    bucket = f"plait-{uuid.uuid4().hex[:16]}"
    s3_fs.mkdir(bucket)
    return f"s3://{bucket}/store"


@pytest.fixture
def s3_store(s3_url: str, s3_options: dict):
    """A fresh store on the loopback S3 server."""
    import plait

    return plait.Store(s3_url, storage_options=s3_options)


@pytest.fixture(params=["file", "memory", "s3"])
def any_store(request: pytest.FixtureRequest):
    """A fresh store on every backend, S3 included (ids: file, memory, s3)."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh store on each backend (ids: file, memory)."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def listing():
    """Return a function listing every record of a store, with sizes (not its local ``cache/``),
    to assert that a refused input changed nothing."""

    def records(store) -> dict[str, int]:
        out: dict[str, int] = {}
        for prefix in ("blobs", "packs", "index", "manifests", "roots", "versions", "events"):
            out.update(store.backend.find(prefix))
        if store.backend.exists("plait.json"):
            out["plait.json"] = store.backend.size("plait.json")
        return out

    return records


@pytest.fixture
def blobs() -> type[Blobs]:
    """The store's blobs as a test sees them, in either store format (see :class:`Blobs`)."""
    return Blobs


@pytest.fixture
def make_files(tmp_path: Path):
    """Write a dict of ``{relative path: bytes or str}`` under a folder and return the folder."""

    def make(files: dict[str, bytes | str], folder: str = "data") -> Path:
        root = tmp_path / folder
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        return root

    return make


class LoopbackHttp:
    """A tiny HTTP server on 127.0.0.1 serving ``files`` (path -> bytes) with ETag, Last-Modified and
    Content-Length, honouring ``If-Match``, answering ``redirects`` (path -> URL) with 302, and
    recording every request as ``(method, path)``."""

    def __init__(self) -> None:
        import hashlib
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.modified: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, body: bool) -> None:
                server.requests.append((self.command, self.path))
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.md5(data).hexdigest() + '"'
                wanted = self.headers.get("If-Match")
                if wanted and wanted != etag:
                    self.send_error(412)
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", server.modified.get(self.path, "Wed, 02 Dec 2026 10:00:00 GMT"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def make_http_server() -> Iterator:
    """Return a function that starts another :class:`LoopbackHttp` (all stopped after the test)."""
    servers: list[LoopbackHttp] = []

    def make() -> LoopbackHttp:
        servers.append(LoopbackHttp())
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def http_server(make_http_server) -> LoopbackHttp:
    """A loopback HTTP server whose files, redirects and received requests a test controls and reads."""
    return make_http_server()


@pytest.fixture
def craft():
    """Return a function that logs a version whose manifest holds exactly the given entries, the way
    a hand-written (or hostile) writer could: ``craft(store, name, entries) -> ArtifactVersion``."""
    from plait.formats import records as R
    from plait.formats.manifest import Manifest

    def make(store, name: str, entries: list):
        manifest = Manifest.of(entries, store.algorithm)
        digest = store.put_manifest(manifest)
        record = store.create_version({"name": name, "type": "dataset", "digest": digest, "size": manifest.size,
                                       "file_count": len(manifest), "created_at": "2026-12-01T00:00:00Z"})
        store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"))
        return store.get(f"{name}:v{record.number}")

    return make


# -- serving and a real browser ---------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent / "ui" / "screenshots"


@contextmanager
def serve(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port in a thread; yield its loopback URL."""
    import uvicorn

    from plait.cli.ui import listen

    sock = listen(host, 0)  # bound here and handed over: no other process can take the port in between
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(500):
        if server.started:
            break
        started.wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def serve_app():
    """:func:`serve`, for test modules (which cannot import this conftest)."""
    return serve


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder screenshots for review go to (ignored by git)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, or skip: the browser tests need it."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium to run the browser tests")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the browser tests")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium):
    """A headless Debian Chromium driven by Playwright (``plait.test`` resolves to loopback)."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)  # not in git: a fresh checkout has no such folder
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP plait.test 127.0.0.1"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page that records dialogs and page errors (an injected script would show up there)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    pg = context.new_page()
    pg.dialogs, pg.errors = [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()
def _option_pairs(options: dict, prefix: str = "") -> list[str]:
    pairs = []
    for key, value in options.items():
        if isinstance(value, dict):
            pairs += _option_pairs(value, f"{prefix}{key}.")
        else:
            pairs += ["--store-option", f"{prefix}{key}={value}"]
    return pairs


@pytest.fixture
def store_cli():
    """Run ``plait`` in-process against a store of any backend (its URL and storage options);
    assert the exit code and return the click result."""
    from click.testing import CliRunner

    from plait.cli import main

    def invoke(store, *args: str, code: int = 0, input: str | None = None):
        argv = ["--store", store.url, *_option_pairs(store.storage_options), *args]
        result = CliRunner().invoke(main, argv, catch_exceptions=False, input=input)
        assert result.exit_code == code, (argv, result.output, result.stderr)
        return result

    return invoke


@pytest.fixture(params=["file", "s3"])
def fresh_cli(request: pytest.FixtureRequest, store_cli):
    """Run ``plait`` in-process against a fresh file or loopback S3 store (ids: file, s3).

    ``fresh_cli(*args, json_out=False, code=0, input=None)`` returns the click result;
    ``fresh_cli.store`` is the same store opened from Python.
    """
    store = request.getfixturevalue(f"{request.param}_store")

    def invoke(*args: str, json_out: bool = False, code: int = 0, input: str | None = None):
        return store_cli(store, *(["--json"] if json_out else []), *args, code=code, input=input)

    invoke.store = store  # type: ignore[attr-defined]
    return invoke
