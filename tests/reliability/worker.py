"""A writer process for the reliability tests: ``python worker.py ACTION URL OPTIONS_JSON ARGS…``.

Actions:
  ``log NAME COUNT TAG``   log COUNT small versions of NAME (bytes unique to TAG and i)
  ``alias NAME ALIAS N``   point ALIAS at NAME:v0…v(N-1) in turn (starting at a random one)
  ``big NAME FOLDER``      log FOLDER as NAME (the crash test kills this one)
Every action waits for the file named by $PLAIT_TEST_GO (if set) before starting, so that all
writers start together.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time


def main() -> None:
    action, url, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) or None
    go = os.environ.get("PLAIT_TEST_GO")
    while go and not os.path.exists(go):
        time.sleep(0.005)
    import plait

    store = plait.Store(url, storage_options=options)
    if action == "log":
        name, count, tag = sys.argv[4], int(sys.argv[5]), sys.argv[6]
        for i in range(count):
            store.log(f"{tag} item {i}".encode(), name=name)
    elif action == "alias":
        name, alias, n = sys.argv[4], sys.argv[5], int(sys.argv[6])
        start = random.randrange(n)
        for i in range(n):
            store.set_alias(f"{name}:v{(start + i) % n}", alias)
    elif action == "big":
        name, folder = sys.argv[4], sys.argv[5]
        print("started", flush=True)
        store.log(folder, name=name)
        print("done", flush=True)
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
