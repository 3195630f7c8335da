"""The core: digests, store, manifests, versions, runs, the index and lineage. No frameworks."""
