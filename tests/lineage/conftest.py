"""The lineage suite: realistic pipelines, each asserting the exact upstream and downstream sets.

The pipelines and the helpers that read their graphs live in ``plait_pipelines.py`` (importable
by name, so worker processes can import its tasks).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The default store of this test (``PLAIT_STORE``): tracked flows and loose calls record into it."""
    import plait

    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "store"))
    return plait.Store(str(tmp_path / "store"))


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """A raw folder of two small text files."""
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    (folder / "b.txt").write_text("beta\n")
    return folder
