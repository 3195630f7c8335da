"""plait's Prefect 3 integration: ``@track`` a flow and every task run's data is versioned and linked.

::

    from plait.integrations.prefect import track

    @track
    @flow
    def pipeline(raw: Path, lr: float = 1e-3): ...

Importing this module does not import Prefect; ``track`` does. Its names are imported on first
access: loading the plugin (every plait command does) imports none of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.integrations.prefect.options import TrackError, TrackOptions
    from plait.integrations.prefect.track import track
    from plait.integrations.prefect.tracker import PrefectTrackingWarning

__all__ = ["PrefectTrackingWarning", "TrackError", "TrackOptions", "track"]

_EXPORTS = {"TrackError": "options", "TrackOptions": "options", "track": "track", "PrefectTrackingWarning": "tracker"}


def __getattr__(name: str) -> Any:
    """Import an exported name on first access (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
