"""Fixtures for the Lightning integration: a tiny model, its data, and quiet, fast trainers on CPU."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytorch_lightning")

sys.path.insert(0, os.path.dirname(__file__))  # so ddp_spawn's processes can import the kit

from plait_lightning_kit import LIGHTNING_NOISE, make_trainer_in  # noqa: E402 (after the sys.path line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Silence Lightning's training advice in these tests only."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for spec in LIGHTNING_NOISE:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def kit():
    """The module with TinyClassifier and TinyData."""
    import plait_lightning_kit

    return plait_lightning_kit


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., Any]:
    """Build a quiet CPU trainer writing checkpoints under ``tmp_path/<dirname>`` (see the kit)."""
    return make_trainer_in(tmp_path)
