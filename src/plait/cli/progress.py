"""A progress bar for the CLI (rich), attached to a store only when stderr is a terminal."""

from __future__ import annotations

import threading
from typing import Any

from plait.base.progress import Progress


class RichProgress(Progress):
    """Draws one rich progress bar per phase (hashing, storing, downloading)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None

    def start(self, label: str, total: int) -> None:
        """Open a bar for a phase with work to do."""
        if total <= 0:
            return
        from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        """Move the bar (thread-safe)."""
        if self._bar is not None:
            with self._lock:
                self._bar.advance(self._task, amount)

    def finish(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
