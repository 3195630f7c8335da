"""What ``plait demo`` prints at the end: artifacts, dedup, lineage, and what to try next."""

from __future__ import annotations

from typing import Any

from plait.cli.app import human_size, table


def report(store: Any, result: Any, seconds: float) -> str:
    """Return the demo's closing report."""
    rows = []
    for art in store.artifacts():
        versions = store.versions(art.name)
        aliases = ", ".join(f"{a}->{v.version}" for v in versions for a in v.aliases)
        rows.append([art.name, art.type, str(len(versions)), human_size(sum(v.size for v in versions)), aliases])
    counts = store.stats()  # what live versions need, each distinct blob once (not the packs' size: garbage, nodes)
    logged, stored = counts.logged, counts.stored
    tree = store.lineage("classifier:latest").to_tree()
    accuracy = "  ".join(f"{stage}: {acc:.2f}" for stage, acc in result.metrics.items())
    return "\n".join([
        "",
        table(rows, ["ARTIFACT", "TYPE", "VERSIONS", "LOGGED", "ALIASES"]),
        "",
        f"bytes logged {human_size(logged)}, bytes stored {human_size(stored)} "
        f"(deduplicated: {100 * (1 - stored / logged) if logged else 0:.0f}% saved)",
        f"test accuracy  {accuracy}",
        f"first model {result.first}; fine-tuned on changed data {result.surgery}; backtracked {result.backtrack}",
        "",
        "plait lineage classifier:latest",
        tree,
        "",
        f"store: {store.url}   ({seconds:.0f} s)",
        "try next:",
        f"  plait show {result.surgery}",
        f"  plait lineage {result.surgery} --format mermaid",
        f"  plait diff {result.datasets[0] if result.datasets else 'reviews:v0'} {result.datasets[-1] if result.datasets else 'reviews:v1'}",
        "  plait lineage reviews:v0 --down",
        "  plait runs --kind prefect.flow",
    ])
