"""Fixtures for the Hugging Face integration: small real datasets, and counters of hashing work."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

# must be set before datasets is imported, or it reaches the network (tests/conftest.py also does)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def hf_quiet(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Keep datasets' own cache inside the test folder and its progress bars off."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "_hf_cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "_hf_cache"))
    datasets.disable_progress_bars()


@pytest.fixture
def reviews() -> Any:
    """A small Dataset of reviews with a ClassLabel and a sequence column."""
    features = datasets.Features({
        "text": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["neg", "pos"]),
        "tokens": datasets.Sequence(datasets.Value("int32")),
    })
    return datasets.Dataset.from_dict({
        "text": ["great film", "", "boring", "loved it", "meh", "superb acting"],
        "label": [1, 0, 0, 1, 0, 1],
        "tokens": [[1, 2], [], [3], [4, 5], [6], [7, 8]],
    }, features=features)


class Counter:
    """Counts calls to a function while forwarding them."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> dict[str, Counter]:
    """Count files hashed by plait and datasets written by the integration."""
    from plait.integrations.huggingface import serialize
    from plait.storage import packed
    from plait.storage.filewriter import FileWriter
    from plait.store import publish, treebuild

    counters = {"hashed": Counter(publish.digest_file), "written": Counter(serialize.write)}
    monkeypatch.setattr(publish, "digest_file", counters["hashed"])  # format 1
    monkeypatch.setattr(treebuild, "digest_file", counters["hashed"])  # format 2
    read_small = packed.read_small  # format 2, small files: read, hashed and stored in one pass

    def small(*args: Any, **kwargs: Any) -> Any:
        counters["hashed"].calls += 1
        return read_small(*args, **kwargs)

    monkeypatch.setattr(packed, "read_small", small)
    monkeypatch.setattr(serialize, "write", counters["written"])
    close = FileWriter.close  # files written straight into the store: hashed as they are written

    def hashed_as_written(self: FileWriter) -> None:
        if not self.closed:
            counters["hashed"].calls += 1
        close(self)

    monkeypatch.setattr(FileWriter, "close", hashed_as_written)
    return counters
