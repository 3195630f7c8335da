"""The records of a distributed version: parts sent by workers, the close, and the finish.

Several processes contribute files to one version of ``name`` under one distributed id. Each
part is an immutable record, created exclusively under a fresh ULID key::

    distributed/<name>/<id>/parts/<ulid>   a part: its manifest digest, the run that sent it
    distributed/<name>/<id>/closing        the finish began: parts from now on wait for its decision
    distributed/<name>/<id>/finish         the decision: the parts the version holds, and its digest

The close comes before the finisher lists the parts, so a part written before the close is
always seen; a part written after it is in the version only if the finish record names it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plait.formats.names import check_name
from plait.formats.records import RECORD_FORMAT

#: Where a store keeps distributed versions.
PREFIX = "distributed"
_DIGEST = r"^[0-9a-f]{32,64}$"
_ULID = r"^[0-9A-HJKMNP-TV-Z]{26}$"


def check_distributed_id(value: object) -> str:
    """Return ``value`` if it can name a distributed version (the rules of artifact names), else raise.

    :raises InvalidNameError: saying what is allowed.
    """
    return check_name(value, what="distributed_id")


def folder(name: str, distributed_id: str) -> str:
    """Return the store folder of one distributed version."""
    return f"{PREFIX}/{name}/{distributed_id}"


def part_key(name: str, distributed_id: str, part_id: str) -> str:
    """Return the store key of one part."""
    return f"{folder(name, distributed_id)}/parts/{part_id}"


def closing_key(name: str, distributed_id: str) -> str:
    """Return the store key of the record saying a finish began."""
    return f"{folder(name, distributed_id)}/closing"


def finish_key(name: str, distributed_id: str) -> str:
    """Return the store key of the finish decision."""
    return f"{folder(name, distributed_id)}/finish"


class PartRecord(BaseModel):
    """One worker's contribution to a distributed version.

    :ivar id: the part's ULID (parts apply in id order: a later part's file replaces an earlier one's).
    :ivar name: the artifact name.
    :ivar distributed_id: the distributed version it belongs to.
    :ivar type: the artifact type the worker gave.
    :ivar description: the description the worker gave (the last non-empty one wins).
    :ivar metadata: the worker's metadata (merged in part order).
    :ivar digest: the digest of the part's manifest (its blobs are stored before the record).
    :ivar size: bytes in the part.
    :ivar file_count: files in the part.
    :ivar run: the run that sent it.
    :ivar time: ISO UTC time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    format: int = RECORD_FORMAT
    id: str = Field(pattern=_ULID)
    name: str
    distributed_id: str
    type: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=1 << 20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    digest: str = Field(pattern=_DIGEST)
    size: int = Field(ge=0)
    file_count: int = Field(ge=0)
    run: str | None = Field(default=None, max_length=64)
    time: str = Field(max_length=64)

    _name = field_validator("name", "distributed_id")(lambda v: check_name(v))


class ClosingRecord(BaseModel):
    """A finish began: who began it, and when.

    :ivar run: the finishing run.
    :ivar time: ISO UTC time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    format: int = RECORD_FORMAT
    run: str | None = Field(default=None, max_length=64)
    time: str = Field(max_length=64)


class FinishRecord(BaseModel):
    """The finish decision: which parts the version holds.

    :ivar parts: the part ids, in the order they apply.
    :ivar runs: the runs that sent them, oldest part first, each once.
    :ivar digest: the digest of the merged manifest.
    :ivar run: the finishing run.
    :ivar time: ISO UTC time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    format: int = RECORD_FORMAT
    parts: list[str]
    runs: list[str]
    digest: str = Field(pattern=_DIGEST)
    run: str | None = Field(default=None, max_length=64)
    time: str = Field(max_length=64)
