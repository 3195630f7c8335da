"""Fixtures that build a fresh world per test: an empty cache, no default store, and stores
parametrized over the backends (``file``, ``memory``; ``s3`` joins where the loopback server runs)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PLAIT_DISABLE_PLUGIN_AUTOLOAD", "")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test in its own folder with its own cache and no default store from outside."""
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path / "_cache"))
    monkeypatch.delenv("PLAIT_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    from plait import api
    from plait.core.run import end_implicit_runs

    end_implicit_runs()
    api._default_stores.clear()


@pytest.fixture
def file_store(tmp_path: Path):
    """A fresh local-folder store."""
    import plait

    return plait.Store(str(tmp_path / "store"))


@pytest.fixture
def memory_store():
    """A fresh memory:// store with a unique name."""
    import plait

    return plait.Store(f"memory://plait-test-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh store on each backend (ids: file, memory)."""
    return request.getfixturevalue(f"{request.param}_store")


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
