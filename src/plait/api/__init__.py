"""Layer 8, the public API: :class:`~plait.api.store.Store` and the module-level functions.

``plait/__init__.py`` re-exports what is public from here and from the layers below.
"""
