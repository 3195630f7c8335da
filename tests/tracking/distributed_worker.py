"""One worker of a distributed version: ``python distributed_worker.py URL OPTIONS_JSON INDEX [PHASE]``.

It sends ``preds/<INDEX>.json`` (and a file every worker shares, with equal bytes) as one part of
``preds`` with distributed_id ``eval-42``, in a run named ``worker-<INDEX>``. With PHASE
(``before-record``: its blobs are stored, its part record is not; ``after-record``: the record
exists), it says PHASE on stdout and stops there for good, for the test to kill it.
"""

from __future__ import annotations

import json
import sys
import threading


def main() -> None:
    url, options, index = sys.argv[1], json.loads(sys.argv[2]) or None, int(sys.argv[3])
    if len(sys.argv) > 4:
        pause_at(sys.argv[4])
    import plait

    store = plait.Store(url, storage_options=options)
    with plait.run(f"worker-{index}", store=store):
        art = plait.Artifact("preds", type="result", distributed_id="eval-42", metadata={f"worker{index}": True})
        art.add_json({"worker": index, "scores": list(range(index * 10, index * 10 + 10))}, f"preds/{index}.json")
        art.add_bytes(b"label names\n", "labels.txt")
        plait.upsert(art, store=store)
    print("done", flush=True)


def pause_at(phase: str) -> None:
    """Stop for good just before (``before-record``) or just after (``after-record``) the part record is written."""
    from plait.store import distributed

    original = distributed._write_part

    def write_part(*args, **kwargs):
        if phase == "after-record":
            original(*args, **kwargs)
        print(phase, flush=True)
        threading.Event().wait()  # forever: the test kills the process here

    distributed._write_part = write_part


if __name__ == "__main__":
    main()
