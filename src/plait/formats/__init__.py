"""Layer 2, formats: what plait writes and how it is named.

Names, aliases, specs and entry paths (:mod:`~plait.formats.names`); manifests and their
canonical digest (:mod:`~plait.formats.manifest`); version records and events, validated when
read back (:mod:`~plait.formats.records`); drafts of new versions (:mod:`~plait.formats.artifact`).
"""
