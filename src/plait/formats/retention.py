"""Retention policies: which versions of a name ``plait gc`` may expire, stored as the store
setting ``retention`` (``{name: policy}``, shared by everyone using the store).

A policy keeps the ``keep_last`` versions logged most recently, every version an alias points
at (``keep_aliased``, on unless turned off) and every version carrying one of ``keep_tagged``;
of the rest, it expires those last logged more than ``older_than`` ago (all of them without
``older_than``). It must say ``keep_last`` or ``older_than``. What a policy does is decided by
:mod:`plait.ops.retention`; a policy that would expire every version of its name is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plait.base.times import parse_duration
from plait.errors import InvalidInputError, InvalidNameError
from plait.formats.names import check_name, check_tags

RETENTION = "retention"
#: The fields a policy takes.
POLICY_FIELDS = ("keep_last", "keep_aliased", "keep_tagged", "older_than")
MAX_POLICIES = 1000


@dataclass(frozen=True)
class RetentionPolicy:
    """Which versions of one name ``plait gc`` may expire.

    :ivar keep_last: keep this many versions logged most recently (``None``: no such rule).
    :ivar keep_aliased: keep every version an alias points at.
    :ivar keep_tagged: keep every version carrying any of these tags.
    :ivar older_than: expire only versions last logged longer ago than this (``30d``), or ``None``.
    """

    keep_last: int | None = None
    keep_aliased: bool = True
    keep_tagged: tuple[str, ...] = ()
    older_than: str | None = None

    @classmethod
    def parse(cls, value: Any, name: str = "") -> RetentionPolicy:
        """Return the policy a setting's JSON value holds.

        :raises InvalidInputError: saying which field is wrong.
        """
        where = f"the retention policy of {name}" if name else "a retention policy"
        if not isinstance(value, dict):
            raise InvalidInputError(f"{where} must be an object with {', '.join(POLICY_FIELDS)}")
        unknown = sorted(set(value) - set(POLICY_FIELDS))
        if unknown:
            raise InvalidInputError(f"{where} has no field {unknown[0]!r}; it takes {', '.join(POLICY_FIELDS)}")
        keep_last = value.get("keep_last")
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
            raise InvalidInputError(f"{where}: keep_last must be a whole number of at least 1 (a policy keeps something)")
        keep_aliased = value.get("keep_aliased", True)
        if not isinstance(keep_aliased, bool):
            raise InvalidInputError(f"{where}: keep_aliased must be true or false")
        try:
            tags = tuple(check_tags(value.get("keep_tagged") or []))
        except InvalidNameError as exc:
            raise InvalidInputError(f"{where}: keep_tagged: {exc}") from None
        older_than = value.get("older_than")
        if older_than is not None:
            if not isinstance(older_than, str):
                raise InvalidInputError(f"{where}: older_than must be a duration like 30d")
            parse_duration(older_than, what=f"{where}: older_than")
        if keep_last is None and older_than is None:
            raise InvalidInputError(f"{where} says neither keep_last nor older_than, so it would expire every version "
                                    "not aliased or tagged; give --keep-last N or --older-than 30d")
        return cls(keep_last, keep_aliased, tags, older_than)

    def to_json(self) -> dict[str, Any]:
        """Return the policy as stored in the setting (fields left at their default omitted)."""
        out: dict[str, Any] = {}
        if self.keep_last is not None:
            out["keep_last"] = self.keep_last
        if not self.keep_aliased:
            out["keep_aliased"] = False
        if self.keep_tagged:
            out["keep_tagged"] = list(self.keep_tagged)
        if self.older_than is not None:
            out["older_than"] = self.older_than
        return out

    def __str__(self) -> str:
        parts = [f"keep the last {self.keep_last}"] if self.keep_last is not None else []
        parts += ["keep aliased" if self.keep_aliased else "aliased versions may expire"]
        parts += [f"keep tagged {', '.join(self.keep_tagged)}"] if self.keep_tagged else []
        parts += [f"expire what is older than {self.older_than}"] if self.older_than else ["expire the rest"]
        return "; ".join(parts)


def parse_policies(value: Any) -> dict[str, RetentionPolicy]:
    """Return ``{name: policy}`` from the ``retention`` setting's value.

    :raises InvalidInputError: for a bad name or policy.
    """
    if not isinstance(value, dict):
        raise InvalidInputError('must be an object of artifact names and policies, like {"checkpoints": {"keep_last": 5}}')
    if len(value) > MAX_POLICIES:
        raise InvalidInputError(f"holds {len(value)} policies; at most {MAX_POLICIES}")
    out = {}
    for name, policy in value.items():
        try:
            check_name(name)
        except InvalidNameError as exc:
            raise InvalidInputError(str(exc)) from None
        out[name] = RetentionPolicy.parse(policy, name)
    return out


def check_retention(value: Any) -> dict[str, Any]:
    """Check the ``retention`` setting's value (for :func:`~plait.formats.settings.register_setting`).

    :raises ValueError: saying what is wrong.
    """
    try:
        return {name: policy.to_json() for name, policy in parse_policies(value).items()}
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None
