"""Progress reporting as a null object: the core reports, only the CLI draws.

The core calls :meth:`Progress.start`, :meth:`Progress.advance` (from any thread) and
:meth:`Progress.finish`; :data:`NO_PROGRESS` ignores them. The CLI passes a progress bar.
"""

from __future__ import annotations


class Progress:
    """Receives progress of long work. This base class ignores everything."""

    def start(self, label: str, total: int) -> None:
        """A phase begins: ``label`` (``hashing``, ``storing``, ``downloading``) over ``total`` bytes."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes are done (may be called from worker threads)."""

    def finish(self) -> None:
        """The current phase is over."""


NO_PROGRESS = Progress()
