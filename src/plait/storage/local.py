"""LocalBackend: the storage primitives on a local folder, with ``os`` directly."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from typing import IO, Any

from plait.base.parallel import BATCH_FILES, parallel_map
from plait.storage.backend import Backend, temporary_name, unlink_quietly

#: Threads for :meth:`LocalBackend.read_many` (waits on the disk, not the CPU).
READ_WORKERS = 8
#: ``ioctl(FICLONE)``: a copy-on-write clone (reflink) on btrfs, XFS, bcachefs, OCFS2.
_FICLONE = 0x40049409
#: Devices where a clone was refused (ext4, tmpfs, …): not asked again in this process.
_NO_CLONE: set[int] = set()


def clone_file(src: str, dst: str) -> None:
    """Copy ``src`` to a new file ``dst``: a reflink where the filesystem can, else an in-kernel copy.

    A reflink shares the data blocks until either file is written, so a store copy costs no
    bytes and no time, and an edit of the user's file later never reaches the store (unlike a
    hard link, which plait never makes). Elsewhere ``shutil.copyfile`` uses ``sendfile``.
    """
    if sys.platform == "linux":
        dev = os.stat(os.path.dirname(dst) or ".").st_dev  # one stat, not two opens, once refused
        if dev not in _NO_CLONE:
            import fcntl

            with open(src, "rb") as fin, open(dst, "wb") as fout:
                try:
                    fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                    return
                except OSError:
                    _NO_CLONE.add(dev)
    shutil.copyfile(src, dst)


class LocalBackend(Backend):
    """Primitives on a local folder, using ``os`` directly."""

    is_local = True

    def __init__(self, url: str, root: str) -> None:
        self.url = url
        self.protocol = "file"
        self.root = os.path.abspath(root)

    def local_path(self, key: str) -> str:
        """Return the local file path of ``key``."""
        return os.path.join(self.root, *key.split("/"))

    def read(self, key: str) -> bytes:
        """Return the bytes at ``key``."""
        try:
            with open(self.local_path(key), "rb") as f:
                return f.read()
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(key) from None

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Return bytes ``start`` to ``end`` of ``key`` with one ``pread``."""
        try:
            fd = os.open(self.local_path(key), os.O_RDONLY)
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(key) from None
        try:
            return os.pread(fd, max(0, end - start), start)
        finally:
            os.close(fd)

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Return ``{key: bytes}`` for the keys that exist, read on a few threads.

        Small records are handed out in batches (one task per file costs more than the file); on
        a cold disk or a network filesystem the threads overlap the waits.
        """
        if len(keys) < 2 * BATCH_FILES:
            return super().read_many(keys)
        batches = [keys[i : i + BATCH_FILES] for i in range(0, len(keys), BATCH_FILES)]
        out: dict[str, bytes] = {}
        for got in parallel_map(super().read_many, batches, READ_WORKERS):
            out.update(got)
        return out

    def _place(self, key: str, fill: Any, *, exclusive: bool, check: Callable[[IO[bytes]], None] | None = None) -> bool:
        """Fill a temporary file beside ``key`` and move it into place; the temporary never stays.

        Whatever fails — a full disk, a vanished source, a failed ``check`` — removes the
        temporary file before the error goes on.
        """
        path = self.local_path(key)
        tmp = temporary_name(path)
        try:
            try:
                fill(tmp)
            except FileNotFoundError:  # a new folder (or a vanished source: then this fails again)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fill(tmp)
            if check is not None:
                with open(tmp, "rb") as f:
                    check(f)
            if not exclusive:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            unlink_quietly(tmp)  # gone already after os.replace: one cheap system call

    def write(self, key: str, data: bytes) -> None:
        """Write ``data`` to a temporary file beside ``key`` and rename it into place."""

        def fill(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        self._place(key, fill, exclusive=False)

    def write_file(self, key: str, local_path: str, check: Callable[[IO[bytes]], None] | None = None) -> None:
        """Copy a local file into place (``copy_file_range`` / reflink where the OS offers them).

        :param check: called with the copy, open for reading, before it is moved into place.
        """
        self._place(key, lambda tmp: clone_file(local_path, tmp), exclusive=False, check=check)

    def create(self, key: str, data: bytes) -> bool:
        """Create ``key`` exclusively: the whole record appears at once, or not at all."""

        def fill(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        return self._place(key, fill, exclusive=True)

    def exists(self, key: str) -> bool:
        """Tell whether ``key`` exists."""
        return os.path.isfile(self.local_path(key))

    def size(self, key: str) -> int:
        """Return the size of ``key``."""
        return os.stat(self.local_path(key)).st_size

    def modified(self, key: str) -> float | None:
        """Return the mtime of ``key``."""
        try:
            return os.stat(self.local_path(key)).st_mtime
        except FileNotFoundError:
            return None

    def touch(self, key: str) -> None:
        """Set the mtime of ``key`` to now (the bytes stay as they are).

        :raises FileNotFoundError: if ``key`` is absent.
        """
        os.utime(self.local_path(key))

    def listdir(self, prefix: str) -> list[str]:
        """Return the names under ``prefix``, skipping temporary files."""
        try:
            return sorted(n for n in os.listdir(self.local_path(prefix)) if not n.endswith(".tmp"))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def find(self, prefix: str) -> dict[str, int]:
        """Return ``{key: size}`` of every file below ``prefix``."""
        base = self.local_path(prefix)
        out: dict[str, int] = {}
        for dirpath, _, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                if name.endswith(".tmp"):
                    continue
                try:
                    out[name if rel == "." else f"{rel}/{name}"] = os.stat(os.path.join(dirpath, name)).st_size
                except FileNotFoundError:
                    pass
        return out

    def delete(self, key: str) -> None:
        """Delete ``key`` if present."""
        unlink_quietly(self.local_path(key))

    def stale_temporaries(self, prefix: str, older_than: float) -> dict[str, int]:
        """Return ``{key: size}`` of ``.tmp`` files below ``prefix`` older than ``older_than``."""
        out: dict[str, int] = {}
        for dirpath, _, files in os.walk(self.local_path(prefix)):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        continue
                    if st.st_mtime < older_than:
                        out[f"{rel}/{name}"] = st.st_size
        return out

    def get_to_file(self, key: str, local_path: str) -> None:
        """Copy the stored file out."""
        shutil.copyfile(self.local_path(key), local_path)
