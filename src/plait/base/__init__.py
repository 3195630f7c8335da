"""Layer 0, the base: what every other layer may use.

Identifiers and clocks (:mod:`~plait.base.ids`), where stores and caches are found
(:mod:`~plait.base.paths`), a small thread pool (:mod:`~plait.base.parallel`), the null
progress reporter (:mod:`~plait.base.progress`) and how plait names types in messages
(:mod:`~plait.base.describe`). The error tree, :mod:`plait.errors`, sits beside it.
"""
