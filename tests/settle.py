"""Files as a user's files usually are when logged again: written a while before; and a store's
files as old as a test of the grace period needs them, without waiting.

The stat cache trusts only a file that had settled when plait stat'ed it (see
:mod:`plait.index.statcache`): a test that logs files it has just written, then checks that a
re-log reads none of them, first moves their mtimes back with :func:`settle`. A test that needs a
file it has just written to stay unsettled until it is done asks for the ``slow_to_settle``
fixture (tests/conftest.py), so no pause of the machine can let the file settle meanwhile.
"""

from __future__ import annotations

import os

#: How far back :func:`settle` moves an mtime: a day, past :data:`plait.index.statcache.SETTLE_NS`
#: even as the ``slow_to_settle`` fixture sets it (an hour).
SETTLED_AGO_NS = 86_400 * 10**9


def settle(*paths: str | os.PathLike[str]) -> None:
    """Move the mtime of each file, and of every file below each folder (links not followed), a day back."""
    for path in map(os.fspath, paths):
        if not os.path.isdir(path):
            _back(path)
            continue
        for folder, _, names in os.walk(path):
            for name in names:
                if os.path.isfile(file := os.path.join(folder, name)) and not os.path.islink(file):
                    _back(file)


def _back(file: str) -> None:
    st = os.stat(file)
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns - SETTLED_AGO_NS))


def rewrite_within_one_tick(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` over ``path`` and give the file back the mtime it had: two writes within one
    tick of a coarse filesystem clock (Linux before 6.13 stamps writes up to 10 ms apart alike)."""
    st = os.stat(path)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def backdate(store, prefix: str, when: float = 1_000_000_000) -> None:
    """Make every file of a local ``store`` under ``prefix`` years old (older than any grace period)."""
    for key in store.backend.find(prefix):
        os.utime(store.backend.local_path(key), (1, when))
