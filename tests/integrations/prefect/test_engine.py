"""The private Prefect names the integration relies on, the idempotent patch, and life without Prefect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prefect import flow, task

from plait.integrations.prefect import _engine, track
from plait.integrations.prefect.runners import on_start

from .conftest import flow_runs, task_runs


def test_the_prefect_internals_plait_patches_are_still_there():
    # If this fails, a Prefect release moved the run engines' `start`, `_return_value` or `_raised`:
    # update _engine.py (the only module that touches them) before anything else.
    assert _engine.check() == []


def test_installing_the_patch_again_wraps_each_engine_once():
    from prefect.task_engine import SyncTaskRunEngine

    _engine.install(on_start)
    first = SyncTaskRunEngine.__dict__["start"]
    _engine.install(on_start)

    assert _engine.installed() and SyncTaskRunEngine.__dict__["start"] is first
    assert not getattr(first.__wrapped__, _engine.MARK, False)


def test_flows_and_tasks_nobody_tracked_leave_no_trace(store):
    @task
    def quiet() -> Path:
        Path("q.txt").write_text("q")
        return Path("q.txt")

    @flow
    def plain() -> str:
        return quiet().read_text()

    _engine.install(on_start)
    assert plain() == "q"

    assert flow_runs(store) == [] and task_runs(store) == []


def test_the_plugin_and_the_package_import_without_prefect_and_track_says_what_to_install(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['prefect'] = None  # as if Prefect were not installed\n"
        "import plait.integrations.prefect.plugin\n"
        "from plait.integrations.prefect import track\n"
        "try:\n"
        "    track(object())\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.extra, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MissingExtraError prefect plait's Prefect integration needs Prefect 3")
    assert done.stdout.rstrip().endswith("pip install 'plait[prefect]'")


def test_track_returns_the_same_flow_object_marked():
    @flow
    def f() -> None: ...

    assert track(f) is f and track(names={"f": "out"})(f) is f
