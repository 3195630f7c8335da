"""Turn datasets into plait drafts and versions back into datasets; shared by the hooks and the API."""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
from typing import Any

import plait
from plait.integrations.huggingface import serialize, transforms
from plait.integrations.huggingface._extra import kind_of, require_datasets

#: Set while :func:`~plait.integrations.huggingface.track` logs, which records the sources itself.
tracking: contextvars.ContextVar[bool] = contextvars.ContextVar("plait_hf_tracking", default=False)


def resolve_store(store: plait.Store | str | None) -> plait.Store:
    """Return the store to work on: the given one, else the active run's, else the default store."""
    return plait.current_store(store)


def split_fingerprints(obj: Any) -> list[str]:
    """Return the fingerprints of a dataset's splits (one for a ``Dataset``)."""
    if kind_of(obj) == "DatasetDict":
        return [obj[split]._fingerprint for split in obj]
    return [obj._fingerprint]


def object_fingerprint(obj: Any) -> str | None:
    """Return a dataset's identity for the ``plait_fingerprint`` hook, or ``None`` for other objects.

    A ``Dataset``'s is its ``_fingerprint``; a ``DatasetDict``'s is a hash of its split names
    and their fingerprints, in order.
    """
    kind = kind_of(obj)
    if kind == "Dataset":
        return str(obj._fingerprint)
    if kind == "DatasetDict":
        parts = json.dumps([[str(k), str(v._fingerprint)] for k, v in obj.items()]).encode()
        return "dict-" + hashlib.blake2b(parts, digest_size=16).hexdigest()
    return None


def default_name(obj: Any) -> str:
    """Return an artifact name for a dataset: its dataset or builder name, else ``dataset``."""
    info = obj.info if kind_of(obj) == "Dataset" else next(iter(obj.values())).info if len(obj) else None
    raw = (getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "dataset") if info else "dataset"
    return safe_name(str(raw))


def safe_name(text: str) -> str:
    """Return ``text`` made into a valid artifact name (unusable characters become ``-``)."""
    return plait.safe_name(text, "dataset")


def known_spec(store: plait.Store, fingerprint: str) -> str | None:
    """Return the spec a dataset fingerprint is known as in ``store``, or ``None``.

    Asks this process's registry (tracked and loaded datasets, files read by ``load_dataset``),
    then the store's index of fingerprints the core remembered when it logged a dataset.
    """
    spec = transforms.origin(store.url, fingerprint)
    if spec is not None:
        return spec
    datasets = require_datasets()
    version = store.by_fingerprint(f"{plait.type_name(datasets.Dataset)}:{fingerprint}")
    return version.spec if version is not None else None


def derivation(obj: Any, store: plait.Store) -> tuple[list[str], list[transforms.Step]]:
    """Return the versions a dataset was derived from and the transform steps since.

    Both are empty when the dataset is itself a known version or no step leads to one.
    """
    fingerprints = split_fingerprints(obj)
    if all(known_spec(store, fp) is not None for fp in fingerprints):
        return [], []
    return transforms.derivation(fingerprints, lambda fp: known_spec(store, fp))


def remember(obj: Any, version: plait.ArtifactVersion, folder: str | None = None) -> None:
    """Remember that a dataset (and each of its splits) is ``version``, for lineage and reuse."""
    url = version.store.url
    paths = [e.path for e in version.files()] if folder is not None else None
    whole = object_fingerprint(obj)
    if whole is not None:
        transforms.remember_origin(url, whole, version.spec, folder, paths)
    for fp in split_fingerprints(obj):
        transforms.remember_origin(url, fp, version.spec)


def to_draft(obj: Any, name: str | None, type: str | None, store: plait.Store) -> plait.Artifact:
    """Build the draft of a dataset: its files written deterministically (see :mod:`.serialize`).

    A dataset loaded from a version is not written again: its downloaded files are the draft.
    When the dataset was derived from known versions by transforms, the steps go in the
    metadata, and (outside :func:`track`, which makes a transform run) the logging run is
    recorded as using the sources.
    """
    transforms.install()
    draft_name = name or default_name(obj)
    sources, steps = derivation(obj, store)
    loaded = transforms.origin_folder(store.url, object_fingerprint(obj) or "")
    if loaded is not None and all(os.path.isfile(os.path.join(loaded[0], *p.split("/"))) for p in loaded[1]):
        draft = plait.Artifact(draft_name, type=type or "dataset", metadata={"huggingface": summary(obj)})
        for path in loaded[1]:
            draft.add_file(os.path.join(loaded[0], *path.split("/")), name=path)
        return draft
    # the files go straight into the store as they are written: no local copy, no second read
    draft = plait.Artifact(draft_name, type=type or "dataset")
    info = serialize.write(obj, lambda path: store.write_file(draft, path))
    if sources:
        info["transforms"] = [step.to_dict() for step in steps]
        info["sources"] = sources
    draft.metadata["huggingface"] = info
    if sources and not tracking.get():
        for spec in sources:
            plait.use(spec, store=store)
    return draft


def summary(obj: Any) -> dict[str, Any]:
    """Return the metadata summary of a dataset without writing it."""
    if kind_of(obj) == "DatasetDict":
        first = next(iter(obj.values()), None)
        return {"kind": "DatasetDict", "splits": {k: len(v) for k, v in obj.items()},
                "columns": list(first.column_names) if first is not None else []}
    return {"kind": "Dataset", "num_rows": len(obj), "columns": list(obj.column_names)}


def dataset_kind(version: plait.ArtifactVersion) -> str:
    """Return ``Dataset`` or ``DatasetDict`` for a version holding a Hugging Face dataset.

    :raises ConversionError: if the version is not a dataset, or holds other files.
    """
    if version.type != "dataset":
        raise plait.ConversionError(
            f"{version.spec} is a {version.type!r} artifact, not a dataset; the Hugging Face integration loads "
            "versions logged with track() or plait.log(dataset) (use plait.load() or version.download() for other files)"
        )
    paths = [e.path for e in version.files()]
    kind = serialize.layout(paths)
    if kind is None:
        sample = ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")
        raise plait.ConversionError(
            f"{version.spec} is a dataset but not one saved by Hugging Face datasets (it holds {sample or 'no files'}; "
            f"expected {serialize.INFO} and {serialize.STATE}, or {serialize.DICT}); read its files with version.download()"
        )
    return kind


def open_version(version: plait.ArtifactVersion, *, split: str | None = None, keep_in_memory: bool | None = None) -> Any:
    """Download a dataset version (verified, cached) and open it as a ``Dataset``/``DatasetDict``.

    The result's fingerprints derive from the version's digest, so transforms of it are traced
    back to this version and ``datasets``' cache is shared by equal content.

    :param split: return only this split of a ``DatasetDict``.
    :raises ConversionError: for a version that is not a Hugging Face dataset, or a ``split``
        asked of a single ``Dataset``.
    :raises NotFoundError: for a split that does not exist.
    """
    kind = dataset_kind(version)
    if split is not None and kind != "DatasetDict":
        raise plait.ConversionError(f"{version.spec} is a single Dataset, not a DatasetDict; load it without split=")
    transforms.install()
    folder = version.download()
    obj = serialize.read(folder, kind=kind, keep_in_memory=keep_in_memory)
    if kind == "DatasetDict":
        for key, part in obj.items():
            part._fingerprint = _fingerprint_for(version.digest, key)
    else:
        obj._fingerprint = _fingerprint_for(version.digest, None)
    remember(obj, version, folder)
    if split is None:
        return obj
    if split not in obj:
        raise plait.NotFoundError(f"{version.spec} has no split {split!r} (it has {', '.join(obj) or 'none'})",
                                  name=split, candidates=list(obj))
    return obj[split]


def _fingerprint_for(digest: str, split: str | None) -> str:
    # 16 hex digits, like datasets' own, so concatenate_datasets' joined fingerprints split apart
    text = digest if split is None else f"{digest}/{split}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
