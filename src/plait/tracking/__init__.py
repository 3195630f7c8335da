"""Layer 5, runs and lineage: versions and runs as objects, the live run, and the lineage graph.

:mod:`~plait.tracking.nodes` holds the two node kinds (``ArtifactVersion``, ``RunRecord``),
:mod:`~plait.tracking.run` the live :class:`~plait.tracking.run.Run` and the active run of a
context, :mod:`~plait.tracking.lineage` the graph queries and drawings.
"""
