"""``find``: versions selected by type, name, tags, aliases, metadata conditions and time, sorted and
paged, from the index; the --where language is parsed into values and bound (no text reaches the SQL);
malformed filters are one clear error. Through the API and the CLI, on every backend."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import plait
from plait import InvalidInputError, Store
from plait.formats.query import Condition, Key, parse_condition, parse_sort


@pytest.fixture
def models(any_store: Store) -> Store:
    """model:v0-v3 (accuracy 0.5 .. 0.95, v3's is text), data:v0, a deleted model:v4."""
    for i, acc in enumerate([0.5, 0.91, 0.95, "high"]):
        any_store.log(f"m{i}".encode(), name="model", type="model", metadata={"metrics": {"accuracy": acc}, "lr": i})
    any_store.log(b"d", name="data", type="dataset", metadata={"rows": 10, "reviewed": True})
    any_store.get("model:v1").add_tags("eu", "candidate")
    any_store.get("model:v2").add_tags("eu")
    any_store.get("model:v2").set_alias("production")
    any_store.log(b"gone", name="model", type="model", metadata={"metrics": {"accuracy": 0.99}}).delete()
    return any_store


def specs(found) -> list[str]:
    return [v.spec for v in found]


def test_filters_combine_and_sort(models: Store) -> None:
    assert specs(models.find(type="model", tag="eu", where="metrics.accuracy>0.9", sort="-metrics.accuracy")) == [
        "model:v2", "model:v1"]
    assert specs(plait.find(alias="production", store=models)) == ["model:v2"]
    assert specs(models.find(alias="latest", sort="name")) == ["data:v0", "model:v3"]
    assert specs(models.find(tag=["eu", "candidate"])) == ["model:v1"]
    assert specs(models.find(where="metrics.accuracy<0.6")) == ["model:v0"]  # "high" is text: never a number
    assert specs(models.find(where='metrics.accuracy="high"')) == ["model:v3"]
    assert specs(models.find(where="metrics.accuracy=high")) == ["model:v3"]
    assert specs(models.find(where="reviewed=true")) == ["data:v0"]
    assert specs(models.find(where=["!reviewed", "lr>=2"], sort="lr")) == ["model:v2", "model:v3"]
    assert specs(models.find(where="name~mod*", sort=["-lr"])) == ["model:v3", "model:v2", "model:v1", "model:v0"]
    assert specs(models.find(name="d*")) == ["data:v0"]
    assert specs(models.find(where="size>100")) == []
    assert specs(models.find(where="metrics.accuracy!=0.5", type="model", sort="lr")) == ["model:v1", "model:v2", "model:v3"]
    assert "model:v4" not in specs(models.find()) and "model:v4" in specs(models.find(deleted=True))
    assert specs(models.find(sort="-metrics.accuracy", type="model"))[-1] == "model:v3"  # text sorts apart from numbers


def test_time_filters(models: Store) -> None:
    assert len(models.find(created_after="1d")) == 5
    assert models.find(created_before="2000-01-01") == []
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert len(models.find(created_before=later)) == 5 and models.find(created_after=later) == []


def test_pages(models: Store) -> None:
    first = models.find(sort="lr", type="model", limit=2)
    assert (specs(first), first.total, first.more) == (["model:v0", "model:v1"], 4, True)
    second = models.find(sort="lr", type="model", limit=2, offset=2)
    assert (specs(second), second.total, second.more) == (["model:v2", "model:v3"], 4, False)
    past = models.find(type="model", limit=2, offset=10)
    assert (list(past), past.total) == ([], 4)
    assert second.to_dict()["total"] == 4 and second.to_dict()["versions"][0]["spec"] == "model:v2"


def test_the_where_language_parses_into_values() -> None:
    assert parse_condition("metrics.accuracy>=0.9") == Condition(Key(None, ("metrics", "accuracy")), ">=", 0.9)
    assert parse_condition(" size < 10 ") == Condition(Key("size"), "<", 10)
    assert parse_condition("metadata.size==3") == Condition(Key(None, ("size",)), "=", 3)
    assert parse_condition("!archived") == Condition(Key(None, ("archived",)), "missing")
    assert parse_condition('note="a > b"') == Condition(Key(None, ("note",)), "=", "a > b")
    assert parse_sort("-metrics.val-loss").descending and Key(None, ("metrics", "val-loss")).json_path == '$."metrics"."val-loss"'


@pytest.mark.parametrize("where, message", [
    ("metrics.accuracy>", "has no value after '>'"),
    ("", "an empty --where condition"),
    ("metrics..accuracy>1", "is not a condition"),
    ("a b>1", "is not a condition"),
    ("metrics.accuracy>>1", "has two operators"),
    ("x'); DROP TABLE versions; --=1", "is not a condition"),
    ('a" OR 1=1 --', "is not a condition"),
    ("size>big", "size is a number"),
    ("name=3", "name is text"),
    ("ok>true", "compare only with = or !="),
    ("name~3", "matches text against a glob"),
    ("!a=1", "'!' goes only before a key alone"),
    (".".join(["k"] * 17) + "=1", "nests 17 keys deep"),
])
def test_malformed_conditions_are_one_clear_error(models: Store, store_cli, where, message) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        models.find(where=where)
    result = store_cli(models, "find", "--where", where, code=2)
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert len(models.find()) == 5  # the index is intact


@pytest.mark.parametrize("kwargs, message", [
    ({"sort": "-"}, "is not a key"),
    ({"created_after": "yesterday"}, "neither a date nor a duration"),
    ({"tag": "b@d"}, "tag 'b@d' is not allowed"),
    ({"limit": 0}, "limit 0 must be a whole number"),
    ({"offset": -1}, "offset -1 must be"),
    ({"name": "no spaces"}, "is not allowed"),
])
def test_malformed_filters_are_refused(models: Store, kwargs, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        models.find(**kwargs)


def test_plait_find_prints_a_page_and_json(models: Store, store_cli) -> None:
    out = store_cli(models, "find", "--type", "model", "--tag", "eu", "--where", "metrics.accuracy>0.9",
                    "--sort", "-metrics.accuracy").output.splitlines()
    assert out[0].split() == ["VERSION", "TYPE", "SIZE", "ALIASES", "TAGS", "METRICS.ACCURACY", "CREATED"]
    assert [line.split()[0] for line in out[1:]] == ["model:v2", "model:v1"]
    assert "production" in out[1] and "0.95" in out[1]
    paged = store_cli(models, "find", "--sort", "name", "--limit", "2").output.splitlines()
    assert paged[-1] == "1-2 of 5; --offset 2 for more"
    data = json.loads(store_cli(models, "--json", "find", "--alias", "production").output)
    assert (data["total"], data["versions"][0]["spec"], data["versions"][0]["tags"]) == (1, "model:v2", ["eu"])
    assert store_cli(models, "find", "--tag", "nothing").output.strip() == "no versions match"
    assert "model:v4 (deleted)" in store_cli(models, "find", "--deleted").output
    assert store_cli(models, "find", "--created-after", "2026-13-01", code=2).stderr.startswith("plait: error: created_after")
