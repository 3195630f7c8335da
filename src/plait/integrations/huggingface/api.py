"""``track``, ``load`` and ``load_dataset``: Hugging Face datasets as plait versions."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from typing import Any

import plait
from plait.integrations.huggingface import convert, transforms
from plait.integrations.huggingface._extra import kind_of, require_datasets

#: Kind of the run that links a derived dataset to the versions it came from.
TRANSFORM_KIND = "huggingface.transform"


def track(dataset: Any, name: str | None = None, *, aliases: Iterable[str] = (), description: str | None = None,
          metadata: Mapping[str, Any] | None = None, store: plait.Store | str | None = None) -> Any:
    """Log a ``Dataset`` or ``DatasetDict`` as a version of type ``dataset``; return the dataset.

    Equal content gives one version, whatever the fingerprint. A fingerprint already logged
    costs no hashing. When the dataset was derived by ``map``/``filter``/``select``/… from a
    tracked or loaded version, it is logged by a run of kind ``huggingface.transform`` that uses
    that version and records the transform chain in its config.

    :param dataset: the dataset.
    :param name: the artifact name (default: the dataset's name, else ``dataset``).
    :param aliases: aliases to point at the version.
    :param description: the version's description.
    :param metadata: merged into the version's metadata.
    :param store: the store (default: the active run's, else the default store).
    :returns: ``dataset`` itself, so a pipeline can go on with it.
    :raises MissingExtraError: if ``datasets`` is not installed.
    :raises ConversionError: for anything but a ``Dataset``/``DatasetDict``.
    """
    require_datasets()
    if kind_of(dataset) is None:
        raise plait.ConversionError(
            f"track() takes a datasets.Dataset or DatasetDict, not {plait.type_name(dataset)}"
            + ("; materialize an iterable dataset first, e.g. Dataset.from_generator(lambda: (yield from it))"
               if "Iterable" in type(dataset).__name__ else "")
        )
    transforms.install()
    target = convert.resolve_store(store)
    name = name if name is not None else convert.default_name(dataset)
    sources, steps = convert.derivation(dataset, target)
    token = convert.tracking.set(True)
    try:
        kwargs = {"aliases": list(aliases), "description": description, "metadata": metadata}
        if sources:
            config = {"sources": sources, "transforms": [step.to_dict() for step in steps]}
            run_name = f"transform-{name}"[:128].rstrip(".")
            with plait.run(run_name, kind=TRANSFORM_KIND, store=target, config=config) as run:
                for spec in sources:
                    run.use(spec)
                version = run.log(dataset, name, "dataset", **kwargs)
        else:
            version = plait.log(dataset, name, "dataset", store=target, **kwargs)
    finally:
        convert.tracking.reset(token)
    convert.remember(dataset, version)
    return dataset


def load(spec: str, *, split: str | None = None, keep_in_memory: bool | None = None,
         store: plait.Store | str | None = None) -> Any:
    """Return the ``Dataset``/``DatasetDict`` a spec names, and record that the active run uses it.

    The files are downloaded to plait's cache (verified) and memory-mapped from there.

    :param spec: ``name``, ``name:v3``, ``name:latest``, ``name:<alias>``.
    :param split: return only this split of a ``DatasetDict``.
    :param keep_in_memory: copy the data into memory instead of memory-mapping it.
    :param store: the store (default: the active run's, else the default store).
    :returns: a ``Dataset`` or ``DatasetDict`` equal to the one tracked (features, rows, splits,
        format).
    :raises MissingExtraError: if ``datasets`` is not installed.
    :raises NotFoundError: for an unknown spec or split.
    :raises ConversionError: if the spec names something that is not a Hugging Face dataset.
    """
    require_datasets()
    target = convert.resolve_store(store)
    version = plait.get(spec, store=target)
    convert.dataset_kind(version)  # refuse before recording a use
    version = plait.use(version, store=target)
    return convert.open_version(version, split=split, keep_in_memory=keep_in_memory)


def load_dataset(path: str, *args: Any, store: plait.Store | str | None = None, **kwargs: Any) -> Any:
    """Call ``datasets.load_dataset`` and record that the active run uses its source files.

    The data files ``datasets`` resolved (local files by content, remote ones by reference) are
    one input, matched by digest to any version holding the same files, else logged as a new
    version named after them. Datasets derived from the result and then tracked are linked to it.

    :param path: as for ``datasets.load_dataset`` (``"csv"``, ``"json"``, a folder, a Hub id, …).
    :param store: the plait store (default: the active run's, else the default store); every other
        argument goes to ``datasets.load_dataset``.
    :returns: what ``datasets.load_dataset`` returns.
    :raises MissingExtraError: if ``datasets`` is not installed.
    """
    datasets = require_datasets()
    transforms.install()
    result = datasets.load_dataset(path, *args, **kwargs)
    files = _data_files(datasets, path, args, kwargs)
    if not files:
        return result
    target = convert.resolve_store(store)
    version = plait.use(_files_draft(path, files), store=target)
    if kind_of(result) is not None:
        convert.remember(result, version)
    return result


def _data_files(datasets: Any, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    bound = inspect.signature(datasets.load_dataset).bind(path, *args, **kwargs).arguments
    accepted = inspect.signature(datasets.load_dataset_builder).parameters
    builder_args = {k: v for k, v in bound.items() if k in accepted and k != "config_kwargs"}
    builder_args.update(bound.get("config_kwargs") or {})
    builder = datasets.load_dataset_builder(**builder_args)
    found = builder.config.data_files or {}
    files: list[str] = []
    for split_files in found.values():
        files.extend(str(f) for f in split_files if str(f) not in files)
    return files


def _files_draft(path: str, files: list[str]) -> plait.Artifact:
    local = [f for f in files if "://" not in f]
    remote = [f for f in files if "://" in f]
    if len(files) == 1:
        name = os.path.basename(files[0].rstrip("/"))
    else:
        name = os.path.basename(os.path.commonpath(local)) if local else os.path.basename(path.rstrip("/"))
    draft = plait.Artifact(convert.safe_name(name), type="dataset")
    root = os.path.commonpath([os.path.dirname(f) for f in local]) if local else ""
    for f in local:
        draft.add_file(f, name=os.path.relpath(f, root).replace(os.sep, "/"))
    for uri in remote:
        draft.add_reference(uri, name=uri.split("://", 1)[1].lstrip("/"))
    return draft
