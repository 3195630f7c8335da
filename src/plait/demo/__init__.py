"""``plait demo``: a small, real ML pipeline on the local store, offline and on CPU.

Three Prefect flows, each decorated with :func:`plait.integrations.prefect.track`: the first
cleans shipped reviews with Hugging Face ``datasets`` and trains a tiny Lightning classifier, the
second fine-tunes the best model on a changed dataset ("model surgery"), the third backtracks to
the first model and tries again. The lineage graph shows the branch.
"""
