"""Opening the SQLite files plait keeps (the index and the stat cache) in WAL mode.

Several threads and processes open the same new file at once. Switching a new file to WAL needs
a lock that SQLite does not wait for (``PRAGMA journal_mode=WAL`` answers "database is locked"
at once, whatever the busy timeout), so a switch that finds the file locked is retried until
the file is in WAL mode, whoever switched it.
"""

from __future__ import annotations

import sqlite3
import time


def connect_wal(path: str, *, timeout: float, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode with WAL journaling (``:memory:`` keeps its own journal).

    :param timeout: seconds to wait for another connection's lock, and for the switch to WAL.
    :raises sqlite3.OperationalError: if the file stays locked for ``timeout`` seconds.
    """
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread)
    if path == ":memory:":
        return db
    deadline = time.monotonic() + timeout
    pause = 0.001
    try:
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    # a file system without WAL support answers with the mode it keeps: use that
                    db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        db.close()
        raise
    return db
