"""Layer 1, bytes: storage primitives, content-addressed blobs, digests and chunking.

:mod:`~plait.storage.backend` reduces any filesystem (a local folder, ``memory://``, any fsspec
object store) to a handful of primitives; :mod:`~plait.storage.blobs` stores bytes by digest on
them; :mod:`~plait.storage.digest` hashes and cuts files. Nothing here knows what a version is.
"""
