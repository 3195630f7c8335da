"""Where a run runs: host, user, process, command line, working folder, Python and git state."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from plait.store.base import current_user

#: The longest command line recorded, in characters.
MAX_COMMAND = 4000


@functools.lru_cache(maxsize=8)
def git_state(cwd: str) -> dict[str, Any] | None:
    """Return ``{"commit", "dirty"}`` of the git checkout at ``cwd``, or ``None`` outside one."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                                text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    """Return where the current process runs, for a run's start record (a nested run shares its parent's)."""
    cwd = os.getcwd()
    return {
        "host": platform.node(), "user": current_user(), "pid": os.getpid(),
        "command": " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])[:MAX_COMMAND],
        "cwd": cwd, "python": platform.python_version(), "git": git_state(cwd),
    }


def program_name() -> str:
    """Return the name of the running program (the script's stem), or ``python``."""
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"
