"""The table viewer: one page of rows of a Parquet, Arrow, CSV file or Hugging Face dataset.

Every read goes through :class:`~plait.store.reader.EntryReader`, which fetches only the chunks
a read touches, and only the page asked for is decoded:

- **Parquet**: the footer, then the row groups that hold the page (only the columns shown);
- **Arrow IPC file** (``ARROW1`` magic): the footer, then the record batches of the page;
- **Arrow IPC stream** (a Hugging Face dataset's ``data-*.arrow``) and **CSV**: read batch by
  batch up to the page, one batch in memory at a time; the byte offset of every batch seen is
  remembered, so the next page of the same file starts where it is;
- a **Hugging Face dataset folder** (``state.json`` listing its ``.arrow`` files) is one table
  over its files, in order.

Cells are shown as short text: long values are cut, binary values give their length.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.errors import InvalidInputError, InvalidPathError, MissingExtraError
from plait.store.reader import EntryReader

if TYPE_CHECKING:
    import pyarrow as pa

    from plait.formats.manifest import Entry
    from plait.tracking.nodes import ArtifactVersion

MAX_ROWS = 200
MAX_COLUMNS = 50
#: The most characters a cell shows.
CELL_CHARS = 160
TABLE_EXTENSIONS = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".csv", ".tsv")
_ARROW_MAGIC = b"ARROW1"


@dataclass
class _Stream:
    """Where each record batch of a streamed file starts, ``(byte offset, first row)``, and its rows once known."""

    offsets: list[tuple[int, int]]
    rows: int | None = None


_streams: OrderedDict[str, _Stream] = OrderedDict()
_streams_lock = threading.Lock()


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError("the table viewer needs pyarrow: pip install 'plait[ui]'", extra="ui") from None
    return pyarrow


def is_table(path: str) -> bool:
    """Tell whether the viewer can show ``path`` as a table (by its extension)."""
    return path.lower().endswith(TABLE_EXTENSIONS)


def hf_dataset_files(version: ArtifactVersion, folder: str) -> list[str] | None:
    """Return the data files of the Hugging Face dataset saved in ``folder``, or ``None``.

    :param folder: a folder of the version (``""`` for its top), holding ``state.json``.
    """
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    state = version.manifest.get(prefix + "state.json")
    if state is None or state.ref is not None or state.size > 1 << 20:
        return None
    try:
        files = json.loads(version.store.blobs.read(state.digest)).get("_data_files", [])
        names = [prefix + f["filename"] for f in files]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return names if names and all(version.manifest.get(n) is not None for n in names) else None


def hf_splits(version: ArtifactVersion) -> list[str]:
    """Return the folders of a version that hold a saved Hugging Face dataset (a split each)."""
    folders = {posixpath.dirname(e.path) for e in version.files() if posixpath.basename(e.path) == "state.json"}
    return sorted(f for f in folders if hf_dataset_files(version, f))


def page(version: ArtifactVersion, path: str, *, offset: int = 0, limit: int = 50, column_offset: int = 0,
         columns: int = 20) -> dict[str, Any]:
    """Return one page of a table: its columns (name, type), rows as text, and the total rows.

    :param path: a table file, or a folder holding a saved Hugging Face dataset.
    :returns: ``{"path", "format", "columns", "column_count", "column_offset", "rows", "offset",
        "limit", "total", "fetched"}``; ``total`` is ``None`` while a streamed file's end is unknown.
    :raises InvalidInputError: for a page outside the limits, or a path that is not a table.
    """
    if offset < 0 or not 1 <= limit <= MAX_ROWS or column_offset < 0 or not 1 <= columns <= MAX_COLUMNS:
        raise InvalidInputError(f"offset and column_offset must be 0 or more, limit 1..{MAX_ROWS}, columns 1..{MAX_COLUMNS}")
    pa = _pyarrow()
    files = hf_dataset_files(version, path)
    if files is not None:
        readers = [EntryReader(version.store, version.entry(f)) for f in files]
        result = _streams_page(pa, readers, [version.entry(f) for f in files], offset, limit)
        fmt = "huggingface"
    else:
        entry = version.entry(path)
        if not is_table(path):
            raise InvalidPathError(f"{path!r} is not a Parquet, Arrow or CSV file, nor a saved Hugging Face dataset", path=path)
        reader = EntryReader(version.store, entry)
        readers = [reader]
        fmt, result = _file_page(pa, reader, entry, offset, limit)
    schema, rows, total = result
    names = schema.names
    shown = names[column_offset:column_offset + columns]
    index = [names.index(n) for n in shown]
    return {
        "path": path, "format": fmt, "total": total, "offset": offset, "limit": limit,
        "column_offset": column_offset, "column_count": len(names),
        "columns": [{"name": n, "type": str(schema.field(n).type)} for n in shown],
        "rows": [[_cell(row[i]) for i in index] for row in rows],
        "fetched": sum(r.fetched for r in readers),
    }


def _file_page(pa: Any, reader: EntryReader, entry: Entry, offset: int, limit: int) -> tuple[str, tuple[Any, list[list[Any]], int | None]]:
    lower = entry.path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet", _parquet_page(pa, reader, offset, limit)
    if lower.endswith((".csv", ".tsv")):
        return "csv", _streams_page(pa, [reader], [entry], offset, limit)
    head = reader.read(len(_ARROW_MAGIC))
    reader.seek(0)
    if head == _ARROW_MAGIC:
        return "arrow", _arrow_file_page(pa, reader, offset, limit)
    return "arrow-stream", _streams_page(pa, [reader], [entry], offset, limit)


def _parquet_page(pa: Any, reader: EntryReader, offset: int, limit: int) -> tuple[Any, list[list[Any]], int]:
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(reader, pre_buffer=False)
    except pa.ArrowException as exc:
        raise InvalidPathError(f"not a readable Parquet file: {exc}") from None
    meta = f.metadata
    groups, start, first = [], 0, None
    for i in range(meta.num_row_groups):
        n = meta.row_group(i).num_rows
        if start + n > offset and start < offset + limit:
            groups.append(i)
            first = start if first is None else first
        start += n
    rows: list[list[Any]] = []
    if groups:
        table = f.read_row_groups(groups)
        rows = _rows(table.slice(offset - (first or 0), limit))
    return f.schema_arrow, rows, meta.num_rows


def _arrow_file_page(pa: Any, reader: EntryReader, offset: int, limit: int) -> tuple[Any, list[list[Any]], int | None]:
    try:
        f = pa.ipc.open_file(reader)
    except pa.ArrowException as exc:
        raise InvalidPathError(f"not a readable Arrow file: {exc}") from None
    rows: list[list[Any]] = []
    start = 0
    for i in range(f.num_record_batches):
        batch = f.get_batch(i)
        end = start + batch.num_rows
        if end > offset and len(rows) < limit:
            rows += _rows(batch.slice(max(0, offset - start), limit - len(rows)))
        start = end
        if len(rows) >= limit:
            return f.schema, rows, None if i < f.num_record_batches - 1 else start
    return f.schema, rows, start


def _streams_page(pa: Any, readers: list[EntryReader], entries: list[Entry], offset: int,
                  limit: int) -> tuple[Any, list[list[Any]], int | None]:
    """Read a page across one or more Arrow streams (or CSV files), one batch in memory at a time."""
    schema, rows, base = None, [], 0
    for i, (reader, entry) in enumerate(zip(readers, entries)):
        known = _stream_index(entry)
        if known.rows is not None and base + known.rows <= offset:
            if schema is None:  # the schema only: the file's first message (or CSV block)
                schema = _open_stream(pa, reader, entry, 0, entry.path.lower().endswith((".csv", ".tsv")))[1]
            base += known.rows  # a whole file before the page: skipped unread
            continue
        file_schema, file_rows, count = _stream_page(pa, reader, entry, known, offset - base, limit - len(rows))
        schema = schema or file_schema
        rows += file_rows
        if count is None:
            rest = [_stream_index(e).rows for e in entries[i:]]
            return schema, rows, base + sum(rest) if all(r is not None for r in rest) else None  # type: ignore[arg-type]
        base += count
    return schema, rows, base


def _stream_index(entry: Entry) -> _Stream:
    key = f"{entry.digest}:{entry.path.endswith(('.csv', '.tsv'))}"
    with _streams_lock:
        found = _streams.get(key)
        if found is None:
            found = _streams[key] = _Stream([])
            while len(_streams) > 256:
                _streams.popitem(last=False)
        _streams.move_to_end(key)
        return found


def _stream_page(pa: Any, reader: EntryReader, entry: Entry, known: _Stream, offset: int,
                 limit: int) -> tuple[Any, list[list[Any]], int | None]:
    """Return the schema, the rows of ``[offset, offset+limit)`` and the file's row count when its end was reached."""
    csv = entry.path.lower().endswith((".csv", ".tsv"))
    start_at = (0, 0)
    for byte, row in known.offsets:
        if row <= max(offset, 0) and not csv:
            start_at = (byte, row)
    batches, schema = _open_stream(pa, reader, entry, start_at[0], csv)
    rows: list[list[Any]] = []
    row = start_at[1]
    for position, batch in batches:
        if not csv and (position, row) not in known.offsets:
            known.offsets.append((position, row))
        end = row + batch.num_rows
        if limit > 0 and end > offset and len(rows) < limit:
            rows += _rows(batch.slice(max(0, offset - row), limit - len(rows)))
        row = end
        if limit <= 0 or len(rows) >= limit:
            return schema, rows, None
    known.rows = row
    return schema, rows, row


def _open_stream(pa: Any, reader: EntryReader, entry: Entry, byte: int, csv: bool) -> tuple[Any, Any]:
    if csv:
        from pyarrow import csv as pacsv

        delimiter = "\t" if entry.path.lower().endswith(".tsv") else ","
        try:
            stream = pacsv.open_csv(reader, read_options=pacsv.ReadOptions(block_size=1 << 20),
                                    parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True))
        except pa.ArrowException as exc:
            raise InvalidPathError(f"not a readable CSV file: {exc}") from None
        return ((0, b) for b in stream), stream.schema
    try:
        messages = pa.ipc.MessageReader.open_stream(reader)
        schema = pa.ipc.read_schema(messages.read_next_message())
    except (pa.ArrowException, StopIteration) as exc:
        raise InvalidPathError(f"not a readable Arrow stream: {exc}") from None
    if byte:
        reader.seek(byte)
        messages = pa.ipc.MessageReader.open_stream(reader)

    def batches() -> Any:
        while True:
            position = reader.tell()
            try:
                message = messages.read_next_message()
            except StopIteration:
                return
            if message.type == "record batch":
                yield position, pa.ipc.read_record_batch(message, schema)

    return batches(), schema


def _rows(table: pa.Table | pa.RecordBatch) -> list[list[Any]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [list(r) for r in zip(*columns)] if columns else [[] for _ in range(table.num_rows)]


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
