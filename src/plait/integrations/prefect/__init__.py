"""plait's Prefect 3 integration: ``@track`` a flow and every task run's data is versioned and linked.

::

    from plait.integrations.prefect import track

    @track
    @flow
    def pipeline(raw: Path, lr: float = 1e-3): ...

Importing this module does not import Prefect; ``track`` does.
"""

from plait.integrations.prefect.options import TrackError, TrackOptions
from plait.integrations.prefect.track import track
from plait.integrations.prefect.tracker import PrefectTrackingWarning

__all__ = ["PrefectTrackingWarning", "TrackError", "TrackOptions", "track"]
