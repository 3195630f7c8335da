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
    """Return the name of the running program: in a Jupyter kernel the notebook's (see
    :func:`notebook_name`), else the script's stem, else ``python``."""
    notebook = notebook_name()
    if notebook is not None:
        return notebook
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"


def notebook_name() -> str | None:
    """In a Jupyter kernel, return the notebook's file stem, or ``notebook`` when the kernel does
    not know it; outside a kernel (a script, the IPython terminal) return ``None``.

    The notebook's path comes from VS Code (``__vsc_ipynb_file__`` in the user namespace), else
    from Jupyter Server 2, which starts each kernel with ``$JPY_SESSION_NAME`` set to it.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":  # ipykernel's shell: a notebook or console
        return None
    path = getattr(shell, "user_ns", {}).get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME")
    stem = Path(str(path)).stem if path else ""
    return stem or "notebook"
