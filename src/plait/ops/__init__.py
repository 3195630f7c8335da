"""Layer 6, operations: whole-store verbs built on versions and runs.

Garbage collection (:mod:`~plait.ops.gc`), verification (:mod:`~plait.ops.verify`),
compaction of old events (:mod:`~plait.ops.compact`), sync between stores
(:mod:`~plait.ops.sync`) and diffs between versions (:mod:`~plait.ops.diff`).
"""
