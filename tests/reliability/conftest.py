"""Helpers for the reliability tests: start writer processes that begin at the same instant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from processes import stop_and_close

WORKER = str(Path(__file__).with_name("worker.py"))


def store_options(store) -> dict | None:
    """Return the storage options a child process needs to open ``store`` (S3: the endpoint)."""
    fs = getattr(store.backend, "fs", None)
    return dict(fs.storage_options) if fs is not None and store.backend.protocol == "s3" else None


@pytest.fixture
def spawn(tmp_path: Path):
    """Start worker processes held at a gate; ``spawn.go()`` opens it, ``spawn.wait()`` joins them."""

    class Spawner:
        def __init__(self) -> None:
            self.gate = tmp_path / "go"
            self.procs: list[subprocess.Popen] = []

        def start(self, store, *args: str, user: str = "tester", gated: bool = True, **popen) -> subprocess.Popen:
            env = {**os.environ, "PLAIT_USER": user}
            if gated:
                env["PLAIT_TEST_GO"] = str(self.gate)
            cmd = [sys.executable, WORKER, args[0], store.url, json.dumps(store_options(store)), *args[1:]]
            proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, **popen)
            self.procs.append(proc)
            return proc

        def go(self) -> None:
            self.gate.write_text("go")

        def wait(self, timeout: float = 120) -> None:
            for proc in self.procs:
                _, err = proc.communicate(timeout=timeout)
                assert proc.returncode == 0, err.decode()[-3000:]
                if err:  # warnings of a worker that succeeded: pytest shows them if the test fails
                    print(f"worker {' '.join([proc.args[2], *proc.args[5:]])} wrote to stderr:\n{err.decode()[-3000:]}")
            self.procs.clear()

    spawner = Spawner()
    yield spawner
    stop_and_close(spawner.procs)
