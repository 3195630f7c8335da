"""A seekable, read-only file over one stored entry, fetching only the blobs a read touches.

A reader such as pyarrow's Parquet reader seeks to the footer, then to the column chunks of
one row group; over this file it fetches (and verifies) only the chunks holding those bytes,
so a page of a 1 GiB table costs a few chunks, not a download.
"""

from __future__ import annotations

import bisect
import io
from collections import OrderedDict
from typing import TYPE_CHECKING

from plait.errors import InvalidPathError

if TYPE_CHECKING:
    from plait.formats.manifest import Entry
    from plait.store.base import BaseStore

#: How many fetched chunks a reader keeps (a footer and the pages around a seek).
KEEP_CHUNKS = 4


class EntryReader(io.RawIOBase):
    """Read one file of a version in place: ``seek``/``read`` map onto its chunks.

    :ivar fetched: bytes fetched from the store so far (each chunk counted once per fetch).
    """

    def __init__(self, store: BaseStore, entry: Entry) -> None:
        """Open ``entry`` of ``store``.

        :raises InvalidPathError: for a reference entry (its bytes are not in the store).
        """
        super().__init__()
        if entry.ref is not None:
            raise InvalidPathError(f"{entry.path} is a reference to {entry.ref.uri}; its bytes are not in the store",
                                   path=entry.path)
        self._store, self._entry = store, entry
        self._blobs = entry.blobs
        self._starts: list[int] = []
        start = 0
        for _, size in self._blobs:
            self._starts.append(start)
            start += size
        self._pos = 0
        self._kept: OrderedDict[int, bytes] = OrderedDict()
        self.fetched = 0

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return self._entry.size

    def readable(self) -> bool:
        """Return ``True``: the file can be read."""
        return True

    def seekable(self) -> bool:
        """Return ``True``: the file can seek anywhere."""
        return True

    def tell(self) -> int:
        """Return the current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` from the start, the current position or the end; return the position."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _chunk(self, index: int) -> bytes:
        data = self._kept.get(index)
        if data is None:
            data = self._store.blobs.read(self._blobs[index][0])
            self.fetched += len(data)
            self._kept[index] = data
            while len(self._kept) > KEEP_CHUNKS:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(index)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Read up to ``len(buffer)`` bytes at the current position into ``buffer``."""
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self.size:
            index = bisect.bisect_right(self._starts, self._pos) - 1
            data = self._chunk(index)
            inside = self._pos - self._starts[index]
            take = min(len(view) - done, len(data) - inside)
            view[done:done + take] = data[inside:inside + take]
            done += take
            self._pos += take
        return done
