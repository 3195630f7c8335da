"""Write a ``Dataset``/``DatasetDict`` as deterministic files, and read them back.

The layout is the one ``save_to_disk`` writes, so ``datasets.load_from_disk`` opens a downloaded
version too::

    dataset_info.json                    features and the user's description, citation, homepage, license
    state.json                           shard list, format and split
    data-00000-of-00002.arrow            Arrow IPC stream shards
    dataset_dict.json                    (DatasetDict) {"splits": [...]}, one folder per split

Unlike ``save_to_disk`` the bytes depend only on the content, so equal datasets give equal
files and one plait version:

- record batches have a fixed number of rows, chosen from the first rows' size (not from
  ``_estimate_nbytes``, which depends on how the table happens to be held in memory);
- shards hold a fixed number of rows derived the same way;
- ``state.json`` holds no fingerprint (it depends on paths and mtimes) and ``dataset_info.json``
  no download checksums, local paths or size estimates.

Record batches are kept small (~4 MiB) so that a changed row rewrites little: the core cuts files
of 8 MiB and more into content-defined chunks, and only chunks that changed are stored again.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

from plait import ConversionError
from plait.integrations.huggingface._extra import require_datasets

STATE = "state.json"
INFO = "dataset_info.json"
DICT = "dataset_dict.json"
#: Written to ``state.json`` instead of the dataset's fingerprint; ``load`` sets a fingerprint
#: derived from the version digest.
PLACEHOLDER_FINGERPRINT = "plait"
#: Target bytes per record batch. Small batches keep an edit local: a longer string shifts the
#: offsets of the rows after it, but only within its batch.
BATCH_BYTES = 4 << 20
#: At most this many rows per batch (the ``datasets`` default).
MAX_BATCH_ROWS = 1000
#: Target bytes per shard file (``save_to_disk`` uses 500 MB).
SHARD_BYTES = 512 << 20
#: Rows whose size decides the batch and shard sizes.
SAMPLE_ROWS = 1000
INFO_KEYS = ("citation", "description", "homepage", "license")


#: Opens a file of the dataset for writing, by its path in the layout (``/``-separated): a
#: context manager giving a binary file (a local file, or a file written straight into a store).
Opener = Callable[[str], AbstractContextManager[BinaryIO]]


def in_folder(folder: str) -> Opener:
    """Return an :data:`Opener` writing below a local ``folder`` (created as needed)."""

    def open_file(path: str) -> AbstractContextManager[BinaryIO]:
        local = os.path.join(folder, *path.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        return open(local, "wb")

    return open_file


def write(obj: Any, open_file: Opener) -> dict[str, Any]:
    """Write a ``Dataset`` or ``DatasetDict`` as the files of the layout above.

    :param obj: the dataset.
    :param open_file: opens each file for writing (:func:`in_folder` for a local folder).
    :returns: a JSON summary for the version's metadata (kind, rows, columns, splits).
    :raises ConversionError: for a dataset that cannot be stored as is (an index attached,
        a format with a Python transform).
    """
    datasets = require_datasets()
    if isinstance(obj, datasets.DatasetDict):
        splits = list(obj.keys())
        _write_json(open_file, DICT, {"splits": splits})
        summary: dict[str, Any] = {"kind": "DatasetDict", "splits": {}}
        for split in splits:
            part = _write_dataset(obj[split], open_file, f"{split}/")
            summary["splits"][split] = part["num_rows"]
            summary.setdefault("columns", part["columns"])
            summary.update({k: v for k, v in part.items() if k in ("builder_name", "config_name", "dataset_name")})
        return summary
    if isinstance(obj, datasets.Dataset):
        return {"kind": "Dataset", **_write_dataset(obj, open_file, "")}
    raise ConversionError(f"cannot store a {type(obj).__name__} as a Hugging Face dataset: give a datasets.Dataset or DatasetDict")


def _write_dataset(ds: Any, open_file: Opener, prefix: str) -> dict[str, Any]:
    from datasets.arrow_writer import ArrowWriter

    from plait.integrations.huggingface.transforms import paused

    if ds.list_indexes():
        raise ConversionError(f"the dataset has indexes attached ({', '.join(ds.list_indexes())}); drop them with "
                              "ds.drop_index(name) before logging it, and add them again after loading")
    state = _state(ds)
    with paused():  # our own with_format/iter calls are not transforms of the user's data
        arrow = ds.with_format("arrow")
        batch_rows, shard_rows = _sizes(arrow, len(ds))
        num_shards = max(1, -(-len(ds) // shard_rows))
        names = [f"data-{i:05d}-of-{num_shards:05d}.arrow" for i in range(num_shards)]
        batches = arrow.iter(batch_rows) if len(ds) else iter(())
        per_shard = shard_rows // batch_rows
        for name in names:
            with open_file(prefix + name) as f:
                writer = ArrowWriter(features=ds.features, stream=f, writer_batch_size=batch_rows, embed_local_files=True)
                try:
                    for _ in range(per_shard):
                        table = next(batches, None)
                        if table is None:
                            break
                        writer.write_table(table)
                    writer.finalize()
                finally:
                    writer.close()
    state["_data_files"] = [{"filename": n} for n in names]
    _write_json(open_file, prefix + STATE, state)
    info = {k: getattr(ds.info, k) or "" for k in INFO_KEYS}
    info["features"] = ds.features.to_dict()
    _write_json(open_file, prefix + INFO, info)
    summary: dict[str, Any] = {"num_rows": len(ds), "columns": list(ds.column_names)}
    for key in ("builder_name", "config_name", "dataset_name"):
        value = getattr(ds.info, key, None)
        if value:
            summary[key] = str(value)
    return summary


def _state(ds: Any) -> dict[str, Any]:
    fmt = ds.format
    for key, value in (fmt.get("format_kwargs") or {}).items():
        try:
            json.dumps(value)
        except TypeError:
            raise ConversionError(
                f"the dataset's format has a {key!r} that is not JSON ({type(value).__name__}), so it cannot be "
                "stored; call ds.reset_format() before logging it and set the format or transform again after loading"
            ) from None
    # the same keys save_to_disk writes, from the same attributes, minus the fingerprint
    return {
        "_fingerprint": PLACEHOLDER_FINGERPRINT,
        "_format_columns": ds._format_columns,
        "_format_kwargs": ds._format_kwargs,
        "_format_type": ds._format_type,
        "_output_all_columns": ds._output_all_columns,
        "_split": str(ds.split) if ds.split is not None else None,
    }


def _sizes(arrow_ds: Any, num_rows: int) -> tuple[int, int]:
    """Return ``(rows per batch, rows per shard)`` from the serialized size of the first rows."""
    if num_rows == 0:
        return 1, 1
    import pyarrow as pa

    sample = arrow_ds[: min(num_rows, SAMPLE_ROWS)]
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, sample.schema) as writer:
        writer.write_table(sample)
    per_row = max(1, sink.tell() // max(1, sample.num_rows))
    batch_rows = max(1, min(MAX_BATCH_ROWS, BATCH_BYTES // per_row))
    shard_rows = max(1, SHARD_BYTES // (per_row * batch_rows)) * batch_rows
    return batch_rows, shard_rows


def _write_json(open_file: Opener, path: str, value: Any) -> None:
    with open_file(path) as f:
        f.write((json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def layout(paths: list[str]) -> str | None:
    """Tell what a version's file list holds: ``"Dataset"``, ``"DatasetDict"`` or ``None``.

    :param paths: the version's entry paths.
    """
    present = set(paths)
    if DICT in present:
        return "DatasetDict"
    if STATE in present and INFO in present:
        return "Dataset"
    return None


def read(folder: str, *, kind: str, keep_in_memory: bool | None = None) -> Any:
    """Open a folder written by :func:`write` (or by ``save_to_disk``).

    A version is written by anyone who can write the store: before ``datasets`` opens it, every
    shard and split its JSON names must be a file or folder of the version itself, and after,
    no image, audio or video cell may point at a file elsewhere (``write`` embeds their bytes).

    :param folder: the local folder.
    :param kind: ``"Dataset"`` or ``"DatasetDict"`` (see :func:`layout`).
    :param keep_in_memory: copy the data into memory instead of memory-mapping the files.
    :returns: the dataset.
    :raises ConversionError: if the version names files outside itself.
    """
    datasets = require_datasets()
    check_layout(folder, kind)
    cls = datasets.DatasetDict if kind == "DatasetDict" else datasets.Dataset
    obj = cls.load_from_disk(folder, keep_in_memory=keep_in_memory)
    for split in obj.values() if kind == "DatasetDict" else [obj]:
        _check_no_outside_files(split, folder)
    return obj


def check_layout(folder: str, kind: str) -> None:
    """Refuse a dataset folder whose JSON names a split or shard that is not its own file.

    :raises ConversionError: naming the file and what it names.
    """
    if kind != "DatasetDict":
        _check_shards(folder)
        return
    splits = _read_json(folder, DICT).get("splits")
    if not isinstance(splits, list):
        raise ConversionError(f"{os.path.join(folder, DICT)} has no list of splits; the version is damaged")
    for split in splits:
        if not _plain_name(split) or not os.path.isdir(os.path.join(folder, split)):
            raise ConversionError(f"{os.path.join(folder, DICT)} names a split {split!r} that is not a folder of the "
                                  "version; refusing to read outside it")
        _check_shards(os.path.join(folder, split))


def _check_shards(folder: str) -> None:
    shards = _read_json(folder, STATE).get("_data_files")
    if not isinstance(shards, list):
        raise ConversionError(f"{os.path.join(folder, STATE)} has no list of data files; the version is damaged")
    for shard in shards:
        name = shard.get("filename") if isinstance(shard, dict) else None
        if not _plain_name(name) or not os.path.isfile(os.path.join(folder, name)):
            raise ConversionError(f"{os.path.join(folder, STATE)} names a data file {name!r} that is not a file of the "
                                  "version; refusing to read outside it")


def _plain_name(name: Any) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0:")
            and not os.path.isabs(name))


def _read_json(folder: str, name: str) -> dict[str, Any]:
    path = os.path.join(folder, name)
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError, RecursionError) as exc:
        raise ConversionError(f"{path} cannot be read ({exc}); the version is damaged") from None
    if not isinstance(value, dict):
        raise ConversionError(f"{path} is not a JSON object; the version is damaged")
    return value


def _check_no_outside_files(ds: Any, folder: str) -> None:
    """Refuse a dataset whose image, audio or video cells name a file instead of holding its bytes.

    Decoding such a cell opens the path (or fetches the URL) it names, wherever that is.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for column, feature in ds.features.items():
        storage = getattr(feature, "pa_type", None)
        if not getattr(feature, "decode", False) or not pa.types.is_struct(storage):
            continue
        if storage.get_field_index("bytes") < 0 or storage.get_field_index("path") < 0:
            continue
        cells = ds.data.column(column)
        outside = pc.and_(pc.is_null(pc.struct_field(cells, "bytes")), pc.is_valid(pc.struct_field(cells, "path")))
        if pc.any(outside).as_py():
            raise ConversionError(f"the dataset in {folder} has {column!r} cells that name files instead of holding "
                                  "their bytes; refusing to read outside the version")
