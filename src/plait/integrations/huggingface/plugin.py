"""The Hugging Face plugin: datasets as artifacts through plait's conversion hooks.

Registered through the ``plait`` entry-point group. It imports cleanly without ``datasets``:
each hook first checks whether the object could be a dataset at all (``datasets`` already
imported by the user) and returns ``None`` otherwise, so plait never imports it for a path.

- ``plait_fingerprint``: a dataset's ``_fingerprint`` (a ``DatasetDict``'s split fingerprints),
  so logging the same dataset again hashes nothing.
- ``plait_object_to_artifact``: a ``Dataset``/``DatasetDict`` becomes a ``dataset`` draft
  (a Prefect task returning one, ``plait.log(ds)``, a run using one).
- ``plait_artifact_to_object``: ``as_type`` ``datasets.Dataset``, ``datasets.DatasetDict`` or
  ``"huggingface"`` opens a version as a dataset (``plait.load(spec, as_type=Dataset)``).
"""

from __future__ import annotations

from typing import Any

from plait import ConversionError, hookimpl

#: String hints accepted as ``as_type`` for "whatever the version holds".
TYPE_HINTS = ("huggingface", "datasets", "hf")


@hookimpl
def plait_fingerprint(obj: Any) -> str | None:
    """Return a dataset's fingerprint, or ``None`` for anything else."""
    from plait.integrations.huggingface._extra import loaded_datasets

    if loaded_datasets() is None:
        return None
    from plait.integrations.huggingface.convert import object_fingerprint

    return object_fingerprint(obj)


@hookimpl
def plait_object_to_artifact(obj: Any, name: str | None, type: str | None, store: Any) -> Any:
    """Turn a ``Dataset``/``DatasetDict`` into a draft of type ``dataset``; ``None`` for anything else.

    :raises ConversionError: for an iterable (streaming) dataset, which has no content to store yet.
    """
    from plait.integrations.huggingface._extra import kind_of, loaded_datasets

    datasets = loaded_datasets()
    if datasets is None:
        return None
    if kind_of(obj) is None:
        if isinstance(obj, (datasets.IterableDataset, datasets.IterableDatasetDict)):
            raise ConversionError(
                f"cannot log a streaming {obj.__class__.__name__}: materialize it first, e.g. "
                "Dataset.from_generator(lambda: (yield from it)), or log the files it reads"
            )
        return None
    from plait.integrations.huggingface.convert import to_draft

    return to_draft(obj, name, type, store)


@hookimpl
def plait_artifact_to_object(version: Any, as_type: Any) -> Any:
    """Open a version as a ``Dataset``/``DatasetDict`` when ``as_type`` asks for one; else ``None``.

    :raises ConversionError: if the version is not a Hugging Face dataset, or holds a
        ``DatasetDict`` when a ``Dataset`` is asked (or the reverse).
    """
    from plait.integrations.huggingface._extra import loaded_datasets

    wanted = _wanted(as_type, loaded_datasets())
    if wanted is None:
        return None
    from plait.integrations.huggingface.convert import dataset_kind, open_version

    kind = dataset_kind(version)
    if wanted != "any" and kind != wanted:
        hint = ("load one split with plait.integrations.huggingface.load(spec, split=...)" if kind == "DatasetDict"
                else "ask for datasets.Dataset")
        raise ConversionError(f"{version.spec} holds a {kind}, not a {wanted}; {hint}")
    return open_version(version)


def _wanted(as_type: Any, datasets: Any) -> str | None:
    if isinstance(as_type, str) and as_type.lower() in TYPE_HINTS:
        from plait.integrations.huggingface._extra import require_datasets

        require_datasets()
        return "any"
    if datasets is None:
        return None
    if as_type is datasets.Dataset:
        return "Dataset"
    if as_type is datasets.DatasetDict:
        return "DatasetDict"
    return None
