"""plait for Hugging Face ``datasets``: track datasets as versions, load them back, follow transforms.

::

    from plait.integrations.huggingface import track, load, load_dataset

Importing this package does not import ``datasets``; calling a function without it installed
raises :class:`plait.MissingExtraError` with the ``pip install 'plait[huggingface]'`` hint.
"""

from __future__ import annotations

from plait.integrations.huggingface.api import TRANSFORM_KIND, load, load_dataset, track

__all__ = ["TRANSFORM_KIND", "load", "load_dataset", "track"]
