"""Place a layered graph: the Sugiyama steps behind :func:`plait.tracking.layout.layout`.

Layers from a topological order once cycles are broken, a point per layer for long edges,
barycentre ordering with groups kept together and in one order across columns, crossings
counted with a Fenwick tree, heights relaxed towards neighbours, and group boxes pushed apart.
It knows nodes by id only; :mod:`plait.tracking.layout` decides what they are and draws boxes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

NODE_W, NODE_H = 184, 54
COL_W = 236
ROW_GAP = 20
GROUP_PAD = 12
GROUP_HEAD = 22
#: Barycentre sweeps at most, and sweeps without improvement before stopping.
SWEEPS, PATIENCE = 24, 4


@dataclass
class Shown:
    """What a drawing shows: its nodes (by id), edges, the groups each node sits in (outermost first), the
    group runs, the root, and how many deleted versions and failed runs were hidden."""

    nodes: dict[str, Any] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    group: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> group run ids, outermost first
    group_runs: dict[str, Any] = field(default_factory=dict)
    root: str = ""
    hidden: dict[str, int] = field(default_factory=lambda: {"deleted": 0, "failed": 0})


def acyclic(nodes: Sequence[str], edges: Iterable[tuple[str, str, str]]) -> tuple[list[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """Return the edges with those that close a cycle reversed, and the set of reversed ones."""
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for e in sorted(edges):
        out[e[0]].append(e)
    state: dict[str, int] = {}
    back: set[tuple[str, str, str]] = set()
    for start in nodes:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, it = stack[-1]
            edge = next(it, None)
            if edge is None:
                state[node] = 2
                stack.pop()
                continue
            nxt = edge[1]
            if state.get(nxt) == 1:
                back.add(edge)
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
    fixed = [(t, s, k) if (s, t, k) in back else (s, t, k) for s, t, k in edges if s != t]
    return fixed, back


def layers(nodes: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """Return each node's column: one right of its furthest predecessor, then as far right as its first consumer allows.

    :param edges: acyclic (see :func:`acyclic`).
    """
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(nodes, 0)
    for s, t, _ in edges:
        succs[s].append(t)
        preds[t].append(s)
        indeg[t] += 1
    layer = dict.fromkeys(nodes, 0)
    order = [n for n in nodes if indeg[n] == 0]
    for n in order:  # the list grows as it is walked: a topological order
        for m in succs[n]:
            layer[m] = max(layer[m], layer[n] + 1)
            indeg[m] -= 1
            if indeg[m] == 0:
                order.append(m)
    for n in reversed(order):  # a side branch sits just before its first consumer, not in column 0
        if succs[n]:
            layer[n] = max(layer[n], min(layer[m] for m in succs[n]) - 1)
    return layer


def crossings(upper: dict[str, int], lower: dict[str, int], pairs: Sequence[tuple[str, str]]) -> int:
    """Count crossings between two adjacent layers: inversions of the lower ends (a Fenwick tree)."""
    seq = [lower[b] for _, b in sorted(pairs, key=lambda p: (upper[p[0]], lower[p[1]]))]
    size = max(lower.values(), default=0) + 2
    tree = [0] * (size + 1)
    count = 0
    for seen, value in enumerate(seq):
        i, smaller_or_equal = value + 1, 0
        while i > 0:
            smaller_or_equal += tree[i]
            i -= i & -i
        count += seen - smaller_or_equal
        i = value + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


class Placer:
    """Order and place the shown graph: layers, long-edge points, order within columns, heights."""

    def __init__(self, g: Shown, root: str) -> None:
        """Take the shown graph: layer it and add a point per column to every long edge."""
        self.g, self.root = g, root
        names = sorted(g.nodes)
        self.edges, self.back = acyclic(names, g.edges)
        self.layer = layers(names, self.edges)
        self.path: dict[str, tuple[str, ...]] = dict(g.group)
        self.up: dict[str, list[str]] = defaultdict(list)
        self.down: dict[str, list[str]] = defaultdict(list)
        self.chains: list[tuple[tuple[str, str, str], list[str]]] = []
        self._dummies()
        count = max(self.layer.values(), default=0) + 1
        self.layers: list[list[str]] = [[] for _ in range(count)]
        for n in self._first_order(names):
            self.layers[self.layer[n]].append(n)

    def _dummies(self) -> None:
        for i, (s, t, k) in enumerate(sorted(self.edges)):
            chain = [s]
            shared = common(self.path[s], self.path[t])
            for j, lay in enumerate(range(self.layer[s] + 1, self.layer[t])):
                d = f"\0{i}.{j}"
                self.layer[d], self.path[d] = lay, shared
                chain.append(d)
            chain.append(t)
            for a, b in zip(chain, chain[1:]):
                self.down[a].append(b)
                self.up[b].append(a)
            self.chains.append(((s, t, k), chain))

    def _first_order(self, names: list[str]) -> list[str]:
        """A depth-first order from the sources, so the first sweep starts from a sensible place."""
        seen: dict[str, None] = {}
        every = names + sorted(n for n in self.layer if n.startswith("\0"))
        for start in sorted(every, key=lambda n: (self.layer[n], n)):
            stack = [start]
            while stack:
                n = stack.pop()
                if n in seen:
                    continue
                seen[n] = None
                stack.extend(reversed(self.down[n]))
        return list(seen)

    def order(self) -> int:
        """Order every column (barycentre sweeps, groups together), keep the best order; return its crossings."""
        pos = {n: i for layer in self.layers for i, n in enumerate(layer)}
        self._consistent(pos)
        best, best_x, calm = [list(x) for x in self.layers], self._count(pos), 0
        for sweep in range(SWEEPS):
            if best_x == 0 or calm >= PATIENCE:
                break
            downwards = sweep % 2 == 0
            indices = range(1, len(self.layers)) if downwards else range(len(self.layers) - 2, -1, -1)
            ranks = self._ranks(pos)
            for li in indices:
                self._sort(li, self.up if downwards else self.down, pos, ranks)
            crossings = self._count(pos)
            if crossings < best_x:
                best, best_x, calm = [list(x) for x in self.layers], crossings, 0
            else:
                calm += 1
        self.layers = best
        pos = {n: i for layer in self.layers for i, n in enumerate(layer)}
        self._consistent(pos)
        return self._count(pos)

    def _ranks(self, pos: dict[str, int]) -> dict[tuple[str, ...], float]:
        """Return each group's mean relative height over every column: one order of groups for all columns."""
        sums: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for layer in self.layers:
            for n in layer:
                where = pos[n] / max(1, len(layer) - 1)
                for d in range(1, len(self.path[n]) + 1):
                    acc = sums[self.path[n][:d]]
                    acc[0] += where
                    acc[1] += 1
        return {k: v[0] / v[1] for k, v in sums.items()}

    def _key(self, n: str, own: float, ranks: dict[tuple[str, ...], float]) -> tuple[Any, ...]:
        p = self.path[n]
        parts: list[Any] = []
        for d in range(1, len(p) + 1):
            parts += [ranks[p[:d]], "g" + p[d - 1]]
        return (*parts, own, "n" + n)

    def _sort(self, li: int, neighbours: dict[str, list[str]], pos: dict[str, int], ranks: dict[tuple[str, ...], float]) -> None:
        layer = self.layers[li]
        own = {}
        for n in layer:
            ns = neighbours[n]
            if ns:
                size = max(1, len(self.layers[self.layer[ns[0]]]) - 1)
                own[n] = sum(pos[m] for m in ns) / len(ns) / size
            else:
                own[n] = pos[n] / max(1, len(layer) - 1)
        layer.sort(key=lambda n: self._key(n, own[n], ranks))
        for i, n in enumerate(layer):
            pos[n] = i

    def _consistent(self, pos: dict[str, int]) -> None:
        """Order every column's groups the same way (so their boxes cannot interleave), keeping the rest."""
        ranks = self._ranks(pos)
        for layer in self.layers:
            size = max(1, len(layer) - 1)
            layer.sort(key=lambda n: self._key(n, pos[n] / size, ranks))
            for i, n in enumerate(layer):
                pos[n] = i

    def _count(self, pos: dict[str, int]) -> int:
        total = 0
        for upper, lower in zip(self.layers, self.layers[1:]):
            pairs = [(a, b) for a in upper for b in self.down[a]]
            total += crossings(pos, pos, pairs)
        return total

    def place(self) -> dict[str, float]:
        """Return each node's top y (dummies: their centre line)."""
        y: dict[str, float] = {}
        for layer in self.layers:
            top = 0.0
            for i, n in enumerate(layer):
                if i:
                    top += self._gap(layer[i - 1], n)
                y[n] = top
        for sweep in range(16):
            ordered = self.layers if sweep % 2 == 0 else list(reversed(self.layers))
            for layer in ordered:
                for n in layer:
                    ns = self.up[n] + self.down[n]
                    if ns:
                        y[n] = sum(y[m] for m in ns) / len(ns)
                for i in range(1, len(layer)):
                    need = y[layer[i - 1]] + self._gap(layer[i - 1], layer[i])
                    if y[layer[i]] < need:
                        y[layer[i]] = need
        return y

    def separate(self, y: dict[str, float]) -> None:
        """Push group boxes down until none overlaps another box or a node outside it.

        Boxes are drawn around their members across several columns, so two groups that share
        columns (or a node of neither sitting between their members) can overlap although every
        column keeps its gaps. Moving the lower one, and whatever lies below it in its columns,
        keeps each column's order.
        """
        for _ in range(8 + 4 * len(self.g.group_runs)):
            found = self._overlap(y)
            if found is None:
                return
            nodes, delta = found
            for layer in self.layers:
                inside = [y[n] for n in layer if n in nodes]
                if inside:
                    top = min(inside) - 0.5
                    for n in layer:
                        if y[n] >= top:
                            y[n] += delta

    def _boxes(self, y: dict[str, float]) -> tuple[dict[str, list[float]], dict[str, set[str]]]:
        rects: dict[str, list[float]] = {}
        members: dict[str, set[str]] = defaultdict(set)
        for n, path in self.path.items():
            for i, run_id in enumerate(path):
                members[run_id].add(n)
                if n.startswith("\0"):
                    continue
                levels = len(path) - i
                x = self.layer[n] * COL_W
                edge = [x - GROUP_PAD * levels, y[n] - (GROUP_PAD + GROUP_HEAD) * levels,
                        x + NODE_W + GROUP_PAD * levels, y[n] + NODE_H + GROUP_PAD * levels]
                have = rects.setdefault(run_id, edge)
                rects[run_id] = [min(have[0], edge[0]), min(have[1], edge[1]), max(have[2], edge[2]), max(have[3], edge[3])]
        return rects, members

    def _overlap(self, y: dict[str, float]) -> tuple[set[str], float] | None:
        """Return what lies below in the first overlap found, and how far to push it down.

        Which of two boxes is below is decided in a column they share (groups keep one order in
        every column), so pushing it never drags the other one along.
        """
        rects, members = self._boxes(y)
        index = {n: (li, i) for li, layer in enumerate(self.layers) for i, n in enumerate(layer)}
        gap = ROW_GAP / 2

        def hit(a: list[float], b: list[float]) -> bool:
            return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] + gap and b[1] < a[3] + gap

        def first_below(a: set[str], b: set[str], a_top: float, b_top: float) -> bool:
            """Tell whether ``a`` lies above ``b``: by their order in a shared column, else by height."""
            rows_a: dict[int, int] = {}
            for n in a:
                li, i = index[n]
                rows_a[li] = min(rows_a.get(li, i), i)
            for n in b:
                li, i = index[n]
                if li in rows_a:
                    return rows_a[li] < i
            return a_top <= b_top

        ids = sorted(rects, key=lambda r: rects[r][1])
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                nested = any(a in self.path[n] for n in members[b]) or any(b in self.path[n] for n in members[a])
                if nested or not hit(rects[a], rects[b]):
                    continue
                upper, lower = (a, b) if first_below(members[a], members[b], rects[a][1], rects[b][1]) else (b, a)
                return members[lower], rects[upper][3] + gap - rects[lower][1]
        for run_id in ids:
            box = rects[run_id]
            for n in self.g.nodes:
                x = self.layer[n] * COL_W
                node = [x, y[n], x + NODE_W, y[n] + NODE_H]
                if n in members[run_id] or not hit(box, node):
                    continue
                if first_below(members[run_id], {n}, box[1], y[n]):
                    return {n}, box[3] + gap - y[n]
                return members[run_id], node[3] + gap - box[1]
        return None

    def _gap(self, a: str, b: str) -> float:
        dummy_a, dummy_b = a.startswith("\0"), b.startswith("\0")
        base = 10.0 if dummy_a and dummy_b else (NODE_H / 2 + ROW_GAP / 2 if dummy_a or dummy_b else NODE_H + ROW_GAP)
        pa, pb = self.path[a], self.path[b]
        shared = len(common(pa, pb))
        opened = len(pb) - shared
        return base + GROUP_PAD * ((len(pa) - shared) + opened) + GROUP_HEAD * opened


def common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Return the groups two nodes share (the common start of their group paths)."""
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return a[:n]
