"""The Prefect plugin, registered in the ``plait`` entry-point group; imports cleanly without Prefect.

It implements no hooks: Prefect objects reach plait as what tasks return (paths, datasets,
models), which the other conversions already handle, and tracking is opt-in per flow with
:func:`plait.integrations.prefect.track`, which patches Prefect's run engines only when first
called (see ``_engine.py``). Registering keeps the integration listed by ``plait plugins``.
"""

from __future__ import annotations
