"""Layer 4, the store: a store's records on top of its bytes and its index.

:class:`~plait.store.base.BaseStore` holds the configuration, manifests, version records,
events and aliases of one store; beside it, what is built only from those: publishing a draft
(:mod:`~plait.store.publish`), reading files out (:mod:`~plait.store.download`), checking blobs
(:mod:`~plait.store.checks`), gc marks (:mod:`~plait.store.marks`), the background writer of run
events (:mod:`~plait.store.events`) and the per-process state every object of one store URL
shares (:mod:`~plait.store.shared`).
"""
