"""The ``plait`` command: one group, global ``--store`` and ``--json``, commands in sibling modules.

Every :class:`plait.PlaitError` becomes one line on stderr and the error's exit code; a user
mistake never prints a traceback. Each command module registers its commands on ``main``.
"""

from __future__ import annotations

from plait.cli import (  # noqa: F401  (importing registers their commands)
    cache,
    config,
    demo,
    distributed,
    find,
    retention,
    runs,
    sync,
    tags,
    ui,  # noqa: F401  (registers `plait ui`)
    users,
    versions,
)
from plait.cli.app import main

__all__ = ["main"]
