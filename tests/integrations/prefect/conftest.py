"""One ephemeral Prefect server for the whole session, and stores for the flows to record into.

Prefect 3 starts a local API server for the first flow (6-10 s, more on a busy machine); one
``prefect_test_harness`` per session keeps that cost to once. The flow heartbeat is turned off
(it adds about a second per flow) and task results go to a session folder, so a cached task
never finds a result from an earlier session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("prefect", reason="the Prefect integration needs Prefect 3: pip install 'plait[prefect]'")

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run every test of this folder against one ephemeral Prefect server."""
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    results = tmp_path_factory.mktemp("prefect-results")
    with prefect_test_harness(server_startup_timeout=180), temporary_settings(
        updates={"flows.heartbeat_frequency": None, "results.local_storage_path": str(results)}
    ):
        yield
    collect_closed_sockets()


def collect_closed_sockets() -> None:
    """Collect the sockets Prefect's async client leaves to the ephemeral server, without a ResourceWarning."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def data(tmp_path: Path, make_files) -> Path:
    """A raw folder of three small files."""
    return make_files({"a.txt": "alpha\n", "b.txt": "beta\n", "sub/c.bin": bytes(range(256))}, folder="raw")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The default store of this test (``PLAIT_STORE``), which tracked flows record into."""
    import plait

    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "store"))
    return plait.Store(str(tmp_path / "store"))


def task_runs(store, name: str | None = None) -> list:
    """Return the ``prefect.task`` runs of a store, oldest first."""
    return sorted(store.runs(name=name, kind="prefect.task"), key=lambda r: r.id)


def flow_runs(store, name: str | None = None) -> list:
    """Return the ``prefect.flow`` runs of a store, oldest first."""
    return sorted(store.runs(name=name, kind="prefect.flow"), key=lambda r: r.id)
