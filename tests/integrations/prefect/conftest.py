"""The session's Prefect server for every test here, and stores for the flows to record into.

The server itself (one ``prefect_test_harness`` per session, shared with ``tests/lineage``) is
the root conftest's ``prefect_server`` fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("prefect", reason="the Prefect integration needs Prefect 3: pip install 'plait[prefect]'")

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(scope="session", autouse=True)
def _prefect_for_every_test(prefect_server: None) -> None:
    """Run every test of this folder against the session's Prefect server (see the root conftest)."""


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
