"""The table viewer reads only the page asked for: Parquet row groups, Arrow batches, CSV blocks,
Hugging Face dataset shards; a 1 GiB Parquet file pages without being loaded whole."""

from __future__ import annotations

import os
import random

import pytest

pa = pytest.importorskip("pyarrow", reason="the table viewer needs the ui extra")
import pyarrow.feather as feather  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from plait.errors import InvalidPathError, PlaitError  # noqa: E402
from plait.ui import tables  # noqa: E402

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def write_arrow_stream(path, table, rows_per_batch):
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        for batch in table.to_batches(max_chunksize=rows_per_batch):
            w.write_batch(batch)


@pytest.fixture(autouse=True)
def no_stream_seen_before():
    """The viewer remembers where a stream's batches start, by content: each test starts without."""
    tables._streams.clear()


@pytest.fixture
def versions(file_store, tmp_path):
    # incompressible text, so every file is over the 8 MiB from which files are stored in chunks;
    # seeded, so the chunk boundaries are the same on every run
    noise = random.Random(0)
    t = pa.table({"i": list(range(10_000)), "s": [f"row {i} " + noise.randbytes(500).hex() for i in range(10_000)]})
    folder = tmp_path / "tables"
    folder.mkdir()
    pq.write_table(t, folder / "t.parquet", row_group_size=1000)
    write_arrow_stream(folder / "s.arrow", t, 500)
    feather.write_feather(t, folder / "f.feather", chunksize=500)
    t.to_pandas().to_csv(folder / "c.csv", index=False)
    return file_store.log(str(folder), name="tables")


@pytest.mark.parametrize("path", ["t.parquet", "s.arrow", "f.feather", "c.csv"])
def test_every_format_pages_the_same_rows(versions, path):
    page = tables.page(versions, path, offset=4321, limit=3, columns=1, column_offset=0)
    assert page["rows"] == [[4321], [4322], [4323]] and page["columns"] == [{"name": "i", "type": "int64"}]
    assert page["column_count"] == 2
    last = tables.page(versions, path, offset=9_998, limit=50)
    assert [r[0] for r in last["rows"]] == [9_998, 9_999] and last["total"] == 10_000


@pytest.mark.parametrize(("path", "has_footer"), [("t.parquet", True), ("f.feather", True), ("s.arrow", False)])
def test_a_first_page_fetches_only_the_chunks_that_hold_it(versions, path, has_footer):
    # the first chunk holds the header and the first row group or batch; a file format's footer is in the last
    chunks = [size for _, size in versions.entry(path).blobs]
    page = tables.page(versions, path, offset=0, limit=20)
    assert len(chunks) > 5
    assert page["fetched"] == chunks[0] + (chunks[-1] if has_footer else 0)


def test_a_stream_page_seen_before_is_read_from_its_batch_on(versions):
    first = tables.page(versions, "s.arrow", offset=9_000, limit=5)  # reads every batch before the page
    again = tables.page(versions, "s.arrow", offset=9_000, limit=5)  # starts at the batch's known offset
    assert first["rows"] == again["rows"] and again["rows"][0][0] == 9_000
    chunks = [size for _, size in versions.entry("s.arrow").blobs]
    # again: the schema in the first chunk and the chunk that holds the batch, not the chunks between
    assert again["fetched"] <= chunks[0] + max(chunks[1:]) < first["fetched"]


def test_long_cells_are_cut(versions):
    cell = tables.page(versions, "t.parquet", offset=0, limit=1, column_offset=1, columns=1)["rows"][0][0]
    assert len(cell) == tables.CELL_CHARS and cell.endswith("…")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"path": "t.parquet", "limit": 0}, "limit 1..200"),
    ({"path": "t.parquet", "offset": -1}, "offset and column_offset must be 0 or more"),
    ({"path": "nothing.parquet"}, "has no file 'nothing.parquet'"),
])
def test_bad_pages_are_refused(versions, kwargs, message):
    with pytest.raises(PlaitError, match=message):
        tables.page(versions, **kwargs)


def test_a_file_that_is_not_a_table_says_so(file_store, tmp_path):
    v = file_store.log(b"not parquet at all", name="fake", type="dataset")
    with pytest.raises(InvalidPathError, match="not a Parquet"):
        tables.page(v, v.files()[0].path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.parquet").write_bytes(b"PAR1garbagePAR1")
    bad = file_store.log(str(tmp_path / "bad"), name="bad")
    with pytest.raises(InvalidPathError, match="not a readable Parquet file"):
        tables.page(bad, "x.parquet")


@pytest.mark.slow
def test_a_one_gib_parquet_file_pages_without_loading_it(file_store, tmp_path):
    psutil = pytest.importorskip("psutil")
    path = tmp_path / "big.parquet"
    schema = pa.schema([("id", pa.int64()), ("payload", pa.binary())])
    rows_per_group, value = 512, 16 << 10
    with pq.ParquetWriter(str(path), schema, compression="none", use_dictionary=False) as writer:
        for g in range(128):  # 128 groups x 512 rows x 16 KiB = 1 GiB of incompressible bytes
            ids = list(range(g * rows_per_group, (g + 1) * rows_per_group))
            payload = [os.urandom(value) for _ in ids]
            writer.write_table(pa.table({"id": ids, "payload": payload}, schema=schema), row_group_size=rows_per_group)
    size = path.stat().st_size
    assert size > 1 << 30
    version = file_store.log(str(path), name="big", type="dataset")
    path.unlink()
    process = psutil.Process()
    before = process.memory_info().rss
    first = tables.page(version, "big.parquet", offset=0, limit=50)
    middle = tables.page(version, "big.parquet", offset=40_000, limit=50)
    grew = process.memory_info().rss - before
    assert [r[0] for r in first["rows"][:2]] == [0, 1] and middle["rows"][0][0] == 40_000
    assert first["rows"][0][1] == f"<{value} bytes>" and first["total"] == middle["total"] == 65_536
    # each page read the footer and one row group (8 MiB) out of 1 GiB, and memory stayed small
    assert first["fetched"] < 24 << 20 and middle["fetched"] < 24 << 20, (first["fetched"], middle["fetched"])
    assert grew < 200 << 20, grew
