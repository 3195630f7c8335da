"""Listing folders in a worker process: the ``stat`` calls of a large walk on every core.

Stat'ing a million files costs seconds of kernel time that threads cannot share out (each call
hands the GIL back and forth), so a large :class:`~plait.formats.walk.DraftWalk` starts worker
processes that run this file as a script (it imports nothing from plait, so one starts in tens
of milliseconds, and nothing of the caller's ``__main__`` is run again, as ``multiprocessing``
would). The worker only lists: each folder's regular files with their ``(inode, size, mtime)``,
its subfolders, and the names of its other entries (symlinks, sockets…), which the walk itself
resolves, together with every rule about what a folder may hold.

The protocol on the worker's stdin and stdout: frames of a 4-byte little-endian length and a
:mod:`marshal` payload of builtins only. A request is ``(number, folder)``, a reply is
``(number, listing)`` where a listing is :data:`Raw` packed by :func:`pack` (two objects, not
hundreds, to send and read), or ``(number, (errno, message))`` when the folder cannot be
listed. The pipe is private to the walk and its child: nothing read from a store passes
through it.
"""

from __future__ import annotations

import marshal
import os
import struct
import sys
from array import array

#: A folder's listing: its regular files' names, their stats flattened (inode, size, mtime_ns a
#: file; a list, or an ``array("q")``), its subfolders' names, its other entries' names (symlinks
#: and the like).
Raw = tuple[list[str], "list[int] | array[int]", list[str], list[str]]

_LENGTH = struct.Struct("<I")


def list_folder(folder: str) -> Raw:
    """List ``folder``: regular files stat'ed (those gone since the listing left out), the rest by kind.

    :raises OSError: when the folder cannot be listed, or a file in it cannot be stat'ed.
    """
    with os.scandir(folder) as it:
        entries = list(it)
    names: list[str] = []
    stats: list[int] = []
    dirs: list[str] = []
    others: list[str] = []
    for item in entries:
        if item.is_file(follow_symlinks=False):  # a regular file (not a link): the common case, asked first
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the listing: not in this version
            names.append(item.name)
            stats += (st.st_ino, st.st_size, st.st_mtime_ns)
        elif item.is_dir(follow_symlinks=False):
            dirs.append(item.name)
        else:
            others.append(item.name)
    return names, stats, dirs, others


def pack(raw: Raw) -> tuple[str, bytes | list[int], list[str], list[str]]:
    """Pack a listing to send: its file names joined by NUL, its stats as 64-bit integers."""
    names, stats, dirs, others = raw
    try:
        packed: bytes | list[int] = array("q", stats).tobytes()
    except OverflowError:  # an inode past 2**63: sent as it is
        packed = stats
    return "\0".join(names), packed, dirs, others


def unpack(packed: tuple[str, bytes | list[int], list[str], list[str]]) -> Raw:
    """Undo :func:`pack`; the stats come back as an ``array("q")`` (or a list, when they did not fit one)."""
    joined, numbers, dirs, others = packed
    if isinstance(numbers, bytes):
        stats = array("q")
        stats.frombytes(numbers)
    else:
        stats = numbers
    return (joined.split("\0") if joined else []), stats, dirs, others  # type: ignore[return-value]


def write_frame(out, value: object) -> None:
    """Write one frame (its length, then ``value`` marshalled) to the binary stream ``out``."""
    data = marshal.dumps(value)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[out.write(view):]  # a raw pipe may take part of it


def read_frame(read) -> object | None:
    """Read one frame with ``read(n)`` (a function returning up to n bytes); ``None`` at the end of the stream."""
    head = _read_exactly(read, _LENGTH.size)
    if head is None:
        return None
    data = _read_exactly(read, _LENGTH.unpack(head)[0])
    if data is None:
        raise EOFError("a frame was cut short")
    return marshal.loads(data)


def _read_exactly(read, n: int) -> bytes | None:
    parts = []
    while n:
        part = read(n)
        if not part:
            if parts:
                raise EOFError("a frame was cut short")
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def serve(read, out) -> None:
    """Answer requests read with ``read`` on ``out`` until the input ends."""
    while (request := read_frame(read)) is not None:
        number, folder = request
        try:
            reply: object = pack(list_folder(folder))
        except OSError as exc:
            reply = (exc.errno or 0, exc.strerror or str(exc))
        write_frame(out, (number, reply))
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer.raw.read, sys.stdout.buffer)
