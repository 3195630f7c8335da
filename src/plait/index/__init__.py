"""Layer 3, the index: the local SQLite cache of a store, and every SQL statement plait runs.

:mod:`~plait.index.catalog` opens the index and folds the store's events into it
(:mod:`~plait.index.fold`); the query modules (:mod:`~plait.index.versions`,
:mod:`~plait.index.runs`, :mod:`~plait.index.events`, :mod:`~plait.index.graph`,
:mod:`~plait.index.pages`) answer questions with typed rows (:mod:`~plait.index.rows`);
:mod:`~plait.index.statcache` remembers the digests of local files. Nothing outside this
package writes SQL.
"""
