"""What a store tells the plugins after a version's life changed: an alias moved, tags changed,
a note or metadata was edited, a version was deleted.

The store layer knows no plugin manager: :class:`ChangeRelay` is the null relay, and the plugin
layer installs one that calls the lifecycle hooks (:mod:`plait.plugins`). A change is relayed
once, by the process that made it, right after its event is in the store (whichever way it was
made: the API, the CLI, the dashboard, a retention run); events that arrive from other writers
or through ``sync`` are history, not news, and are not relayed.
"""

from __future__ import annotations

from plait.formats import records as R

#: The event kinds that are relayed.
LIFECYCLE_KINDS = frozenset({R.ALIAS_SET, R.ALIAS_REMOVED, R.TAGS_CHANGED, R.VERSION_UPDATED, R.VERSION_DELETED})


class ChangeRelay:
    """Hears about each lifecycle change a process makes. This base class is the null relay."""

    def changed(self, store: object, event: R.Event) -> None:
        """Called after ``event`` (of a kind in :data:`LIFECYCLE_KINDS`) was written to ``store``
        (a :class:`~plait.store.base.BaseStore`; typed ``object`` because that module imports this one)."""


_relay: ChangeRelay = ChangeRelay()


def install_change_relay(relay: ChangeRelay) -> None:
    """Make every store relay its lifecycle changes to ``relay`` (the plugin layer's)."""
    global _relay
    _relay = relay


def relay_change(store: object, event: R.Event) -> None:
    """Tell the installed relay about ``event`` if it is a lifecycle change."""
    if event.kind in LIFECYCLE_KINDS:
        _relay.changed(store, event)
