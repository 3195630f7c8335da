"""Worker processes a test starts with pipes: what a test does with them when it is over."""

from __future__ import annotations

import subprocess


def stop_and_close(procs: list[subprocess.Popen]) -> None:
    """Kill those still running and close every pipe; empty ``procs``.

    A test that failed leaves its workers behind: their pipes, never closed, would be reported
    as unclosed files by whichever later test happens to collect them.
    """
    while procs:
        proc = procs.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
