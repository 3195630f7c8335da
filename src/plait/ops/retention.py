"""Expiring versions: per-name retention policies (the ``retention`` store setting) and
per-version TTLs, applied by ``plait gc``.

:func:`plan` says what would expire and why, and what was kept that would otherwise have
expired and why (an alias pointing at it, a tag the policy keeps); :func:`expire` deletes the
planned versions, each with a ``version.deleted`` event that carries the reason, so the history
says why. A version is never expired silently while an alias points at it: a TTL or a policy
with ``keep_aliased`` keeps it and says so; a policy with ``keep_aliased: false`` expires it and
the plan names the aliases it removes. A policy that would expire every live version of its
name expires none of them, and the plan says so.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from plait.base.times import iso, now, parse_duration
from plait.errors import InvalidInputError
from plait.formats.retention import RETENTION, RetentionPolicy, parse_policies
from plait.index import retention as RQ
from plait.index import tags as T
from plait.index import versions as V
from plait.store.base import BaseStore as Store


@dataclass(frozen=True)
class Decision:
    """What retention decided about one version.

    :ivar spec: ``name:vN``.
    :ivar reason: why it expires, or why it is kept.
    :ivar aliases: the aliases pointing at it (an expiring one loses them).
    """

    spec: str
    reason: str
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return it as JSON."""
        return {"spec": self.spec, "reason": self.reason, "aliases": list(self.aliases)}


@dataclass
class RetentionReport:
    """What :func:`plan` found (and :func:`expire` did).

    :ivar dry_run: whether nothing was deleted.
    :ivar expired: versions that expire (or would), with why.
    :ivar kept: versions that would have expired but are kept, with why.
    :ivar refused: names whose policy would expire every live version (nothing of them expires).
    """

    dry_run: bool = True
    expired: list[Decision] = field(default_factory=list)
    kept: list[Decision] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON."""
        return {"dry_run": self.dry_run, "expired": [d.to_dict() for d in self.expired],
                "kept": [d.to_dict() for d in self.kept], "refused": self.refused}


def policies(store: Store) -> dict[str, RetentionPolicy]:
    """Return the store's retention policies by name."""
    return parse_policies(store.setting(RETENTION) or {})


def plan(store: Store, *, at: _dt.datetime | None = None) -> RetentionReport:
    """Decide which versions expire now under the TTLs and the policies; delete nothing.

    :param at: the time to decide at (default: now).
    """
    moment = at or now()
    report = RetentionReport()
    catalog = store.catalog
    chosen: dict[str, Decision] = {}
    for name, number, when in RQ.expired(catalog, iso(moment)):
        aliases = tuple(V.aliases_of(catalog, name, number).get(number, []))
        spec = f"{name}:v{number}"
        if aliases:
            report.kept.append(Decision(spec, f"its TTL passed at {when}, but alias {', '.join(aliases)} points at it",
                                        aliases))
        else:
            chosen[spec] = Decision(spec, f"its TTL passed at {when}")
    try:
        found = policies(store)
    except InvalidInputError as exc:  # a hand-written setting: apply no policy rather than a guess
        report.refused.append(f"the retention setting cannot be read ({exc}); no policy applies: fix it with plait retain")
        found = {}
    for name, policy in sorted(found.items()):
        expiring, kept, every = _apply_policy(store, name, policy, moment)
        if every:
            report.refused.append(f"{name}: the policy ({policy}) would expire every one of its {len(expiring)} versions; "
                                  "none expires: keep some (plait retain NAME --keep-last 1)")
            continue
        report.kept += kept
        for decision in expiring:
            chosen.setdefault(decision.spec, decision)
    report.expired = sorted(chosen.values(), key=lambda d: _key(d.spec))
    return report


def _key(spec: str) -> tuple[str, int]:
    name, _, number = spec.rpartition(":v")
    return name, int(number)


def _apply_policy(store: Store, name: str, policy: RetentionPolicy,
                  moment: _dt.datetime) -> tuple[list[Decision], list[Decision], bool]:
    """Return the versions of ``name`` the policy expires, those it keeps that it would otherwise
    expire, and whether it would expire every live version."""
    catalog = store.catalog
    ordered = RQ.by_recency(catalog, name)
    if not ordered:
        return [], [], False
    aliases = V.aliases_of(catalog, name)
    tags = T.of_keys(catalog, [(name, n) for n, _ in ordered])
    cutoff = iso(moment - parse_duration(policy.older_than)) if policy.older_than else None
    expiring, kept = [], []
    for rank, (number, logged) in enumerate(ordered):
        if policy.keep_last is not None and rank < policy.keep_last:
            continue
        if cutoff is not None and logged > cutoff:
            continue
        spec, on = f"{name}:v{number}", tuple(aliases.get(number, []))
        why = _why(policy, rank)
        if on and policy.keep_aliased:
            kept.append(Decision(spec, f"{why}, but alias {', '.join(on)} points at it", on))
            continue
        held = sorted(set(tags.get((name, number), ())) & set(policy.keep_tagged))
        if held:
            kept.append(Decision(spec, f"{why}, but it is tagged {', '.join(held)}"))
            continue
        expiring.append(Decision(spec, why + (f"; its aliases {', '.join(on)} are removed" if on else ""), on))
    return expiring, kept, len(expiring) == len(ordered)


def _why(policy: RetentionPolicy, rank: int) -> str:
    parts = [f"not among the last {policy.keep_last}" if policy.keep_last is not None else ""]
    parts.append(f"last logged more than {policy.older_than} ago" if policy.older_than else "")
    return "retention: " + " and ".join(p for p in parts if p)


def expire(store: Store, *, dry_run: bool = True, at: _dt.datetime | None = None) -> RetentionReport:
    """Plan (see :func:`plan`) and, unless ``dry_run``, delete the versions that expire.

    Each deletion is a ``version.deleted`` event carrying the reason; aliases on a version a
    policy expires (with ``keep_aliased: false``) are removed first, each an event too.
    """
    report = plan(store, at=at)
    report.dry_run = dry_run
    if not dry_run:
        for decision in report.expired:
            store.delete(decision.spec, force=True, reason=decision.reason)
    return report


def set_policy(store: Store, name: str, policy: RetentionPolicy | None, *, run: str | None = None,
               at: _dt.datetime | None = None) -> RetentionReport:
    """Set (or with ``None`` remove) the retention policy of ``name``; return what it would expire now.

    :param at: the time "now" is (default: now).
    :raises InvalidInputError: if the policy would expire every live version of ``name`` (nothing is set).
    """
    current = {n: p.to_json() for n, p in policies(store).items()}
    if policy is None:
        current.pop(name, None)
        store.set_setting(RETENTION, current or None, run=run)
        return RetentionReport()
    expiring, kept, every = _apply_policy(store, name, policy, at or now())
    if every:
        raise InvalidInputError(f"the policy ({policy}) would expire every one of the {len(expiring)} versions of {name}; "
                                "keep some: --keep-last 1, --keep-tagged TAG, or a longer --older-than")
    current[name] = policy.to_json()
    store.set_setting(RETENTION, current, run=run)
    return RetentionReport(dry_run=True, expired=expiring, kept=kept)
