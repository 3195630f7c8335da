"""Writers that log the same content under one name at the same moment make one version: the
one that comes second takes the version the first just made, whether its index had not seen it
yet or it lost the race for the very number (workers: tests/reliability/test_concurrency.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import plait
from plait.cli import main
from plait.formats import records as R


def rows(data: bytes, name: str = "prepared") -> plait.Artifact:
    return plait.Artifact(name).add_bytes(data, "rows.csv")


def made_behind_the_index(store: plait.Store, name: str, like: plait.ArtifactVersion, number: int = 0) -> None:
    """Create ``name:v<number>`` holding ``like``'s content as another writer would, between its
    record and its event: the record is there, the event not yet, so no index knows it."""
    fields = store.read_version_record(like.name, like.number).model_dump()
    record = R.VersionRecord(**{**fields, "name": name, "number": number, "created_by": None})
    assert store.backend.create(R.version_key(name, number), R.encode(record))


def listed_before_it_was_made(store: plait.Store, monkeypatch) -> None:
    """Make the writer list ``versions/prepared/`` as a moment before the other writer created its
    record: it then tries that very number, and its exclusive create is refused."""
    real = store.backend.listdir
    monkeypatch.setattr(store.backend, "listdir", lambda prefix: [] if prefix == "versions/prepared" else real(prefix))


def test_the_same_content_another_writer_just_made_is_taken_not_copied(any_store):
    same = any_store.log(rows(b"prepared rows", "scratch"))
    made_behind_the_index(any_store, "prepared", same)

    with plait.run("prepare", store=any_store) as run:
        version = run.log(rows(b"prepared rows"))

    assert version.spec == "prepared:v0"
    assert any_store.backend.listdir("versions/prepared") == ["0"]
    assert [v.spec for v in any_store.versions("prepared")] == ["prepared:v0"]
    assert run.id in [r.id for r in version.producers]  # the run that logged it made it too


@pytest.mark.parametrize("made, number", [(b"prepared rows", 0), (b"other rows", 1)],
                         ids=["same content: taken", "other content: the next number"])
def test_a_writer_that_loses_the_race_for_a_number_takes_what_won_it_only_if_it_holds_the_same_content(
        any_store, monkeypatch, made, number):
    theirs = any_store.log(rows(made, "scratch"))
    made_behind_the_index(any_store, "prepared", theirs)
    listed_before_it_was_made(any_store, monkeypatch)

    version = any_store.log(rows(b"prepared rows"))

    monkeypatch.undo()
    assert version.spec == f"prepared:v{number}" and version.read_bytes("rows.csv") == b"prepared rows"
    records = [any_store.read_version_record("prepared", n) for n in range(number + 1)]
    assert [r.digest for r in records] == [theirs.digest, version.digest][: number + 1]
    assert any_store.backend.listdir("versions/prepared") == [str(n) for n in range(number + 1)]


def test_a_damaged_record_is_never_taken_for_the_same_content(any_store):
    any_store.init()
    assert any_store.backend.create(R.version_key("prepared", 0), b"{not a record")

    version = any_store.log(rows(b"prepared rows"))

    assert version.spec == "prepared:v1"  # v0 keeps its number for verify to report


def test_plait_log_says_existing_when_another_writer_just_made_the_same_content(file_store, tmp_path):
    rows_file = tmp_path / "rows.csv"
    rows_file.write_bytes(b"prepared rows")
    same = file_store.log(plait.Artifact("scratch").add_file(str(rows_file)))
    made_behind_the_index(file_store, "prepared", same)

    result = CliRunner().invoke(main, ["--store", file_store.url, "--json", "log", str(rows_file), "--name", "prepared"],
                                catch_exceptions=False)

    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["spec"], out["created"]) == ("prepared:v0", False)
