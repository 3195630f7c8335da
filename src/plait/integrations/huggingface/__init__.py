"""plait for Hugging Face ``datasets``: track datasets as versions, load them back, follow transforms.

::

    from plait.integrations.huggingface import track, load, load_dataset

Importing this package does not import ``datasets``; calling a function without it installed
raises :class:`plait.MissingExtraError` with the ``pip install 'plait[huggingface]'`` hint. Its
names are imported on first access: loading the plugin (every plait command does) imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.integrations.huggingface.api import TRANSFORM_KIND, load, load_dataset, track

__all__ = ["TRANSFORM_KIND", "load", "load_dataset", "track"]


def __getattr__(name: str) -> Any:
    """Import an exported name on first access (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from plait.integrations.huggingface import api

    value = getattr(api, name)
    globals()[name] = value
    return value
