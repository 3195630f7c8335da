"""Import ``datasets`` on demand, with the ``pip install`` hint when it is missing."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from plait import MissingExtraError

HINT = "pip install 'plait[huggingface]'"


def require_datasets() -> ModuleType:
    """Import and return the ``datasets`` module.

    :returns: the module.
    :raises MissingExtraError: if ``datasets`` is not installed, with the ``pip install`` hint.
    """
    try:
        import datasets
    except ImportError as exc:
        raise MissingExtraError(
            f"the Hugging Face integration needs the datasets library, which is not installed: {HINT}",
            extra="huggingface",
        ) from exc
    return datasets


def loaded_datasets() -> ModuleType | None:
    """Return the ``datasets`` module if the process already imported it, else ``None``.

    Hooks use this so that a plait call on a path or bytes never imports ``datasets``: an object
    can only be a ``Dataset`` if the module that defines it is loaded.
    """
    module = sys.modules.get("datasets")
    return module if isinstance(module, ModuleType) else None


def kind_of(obj: Any) -> str | None:
    """Return ``"Dataset"`` or ``"DatasetDict"`` for a Hugging Face dataset object, else ``None``."""
    datasets = loaded_datasets()
    if datasets is None:
        return None
    if isinstance(obj, datasets.Dataset):
        return "Dataset"
    if isinstance(obj, datasets.DatasetDict):
        return "DatasetDict"
    return None
