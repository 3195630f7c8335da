"""A Dataset or DatasetDict tracked and loaded back is equal: features, rows, split names, format."""

from __future__ import annotations

import json

import datasets
import pytest

import plait
from plait.integrations.huggingface import load, track


def test_dataset_round_trip_on_every_store(any_store, reviews):
    with plait.run("prep", store=any_store):
        returned = track(reviews, "reviews", aliases=["candidate"], description="six reviews")
    assert returned is reviews
    version = any_store.get("reviews:candidate")
    assert (version.type, version.description) == ("dataset", "six reviews")
    assert version.metadata["huggingface"] == {"kind": "Dataset", "num_rows": 6, "columns": ["text", "label", "tokens"]}
    with plait.run("train", store=any_store) as run:
        back = load("reviews:candidate")
    assert back.features == reviews.features
    assert back.to_dict() == reviews.to_dict()
    assert back.features["label"].names == ["neg", "pos"]
    assert [v.spec for v in run.inputs] == ["reviews:v0"]


def test_dataset_dict_round_trip_keeps_split_names_order_and_format(store, reviews):
    dd = datasets.DatasetDict({"train": reviews.select(range(4)), "validation": reviews.select([4, 5])})
    dd.set_format("numpy", columns=["label"])
    with plait.run("prep", store=store):
        track(dd, "reviews-split")
    with plait.run("train", store=store):
        back = load("reviews-split")
        test_only = load("reviews-split", split="validation")
    assert isinstance(back, datasets.DatasetDict)
    assert list(back) == ["train", "validation"]
    assert back["train"].format["type"] == "numpy" and back["train"].format["columns"] == ["label"]
    back.reset_format()
    assert back["validation"].to_dict() == reviews.select([4, 5]).to_dict()
    assert test_only.num_rows == 2 and test_only.split == dd["validation"].split
    files = [e.path for e in store.get("reviews-split").files()]
    assert files[0] == "dataset_dict.json" and "train/data-00000-of-00001.arrow" in files


def test_files_open_with_load_from_disk_and_hold_no_fingerprint(store, reviews):
    with plait.run("prep", store=store):
        track(reviews, "reviews")
    version = store.get("reviews")
    folder = version.download()
    assert datasets.load_from_disk(folder).to_dict() == reviews.to_dict()
    state = json.loads(version.read_bytes("state.json"))
    assert state["_fingerprint"] == "plait" and state["_data_files"] == [{"filename": "data-00000-of-00001.arrow"}]
    info = json.loads(version.read_bytes("dataset_info.json"))
    assert set(info) == {"citation", "description", "features", "homepage", "license"}


def test_same_content_is_one_version_whatever_the_fingerprint(store, reviews):
    # select() adds an indices mapping over the same table: another fingerprint, equal rows
    same_rows = reviews.select(range(len(reviews)))
    flattened = same_rows.flatten_indices()
    assert len({reviews._fingerprint, same_rows._fingerprint, flattened._fingerprint}) == 3
    with plait.run("prep", store=store):
        for ds in (reviews, same_rows, flattened):
            track(ds, "reviews")
    assert [v.spec for v in store.versions("reviews")] == ["reviews:v0"]


def test_changed_content_is_a_new_version(store, reviews):
    with plait.run("prep", store=store):
        track(reviews, "reviews")
        track(reviews.filter(lambda r: r["text"] != ""), "reviews")
    assert [v.metadata["huggingface"]["num_rows"] for v in store.versions("reviews")] == [6, 5]


def test_plait_load_with_a_dataset_type_hint(store, reviews):
    with plait.run("prep", store=store):
        plait.log(reviews, "reviews")  # through the conversion hook, no integration call
    with plait.run("train", store=store):
        as_dataset = plait.load("reviews", as_type=datasets.Dataset, store=store)
        as_hint = plait.load("reviews", as_type="huggingface", store=store)
    assert as_dataset.to_dict() == reviews.to_dict() == as_hint.to_dict()
    assert store.get("reviews").type == "dataset"


def test_loaded_dataset_logged_again_reuses_the_downloaded_files(store, reviews, work):
    with plait.run("prep", store=store):
        track(reviews, "reviews")
    with plait.run("train", store=store) as run:
        loaded = load("reviews")
        written = work["written"].calls
        assert run.use(loaded).spec == "reviews:v0"  # e.g. a Lightning datamodule holding it
    assert work["written"].calls == written


def test_a_spec_naming_a_model_is_refused_clearly(store, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 16)
    with plait.run("prep", store=store):
        plait.log(str(tmp_path / "weights.bin"), "resnet", type="model")
    with pytest.raises(plait.ConversionError, match=r"resnet:v0 is a 'model' artifact, not a dataset"):
        load("resnet", store=store)
    assert store.get("resnet").used_by == []


def test_a_dataset_of_other_files_is_refused_clearly(store, tmp_path):
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    with plait.run("prep", store=store):
        plait.log(str(tmp_path / "rows.csv"), "rows")
    with pytest.raises(plait.ConversionError, match=r"rows:v0 is a dataset but not one saved by Hugging Face .*rows\.csv"):
        load("rows", store=store)


def test_split_errors(store, reviews):
    with plait.run("prep", store=store):
        track(reviews, "single")
        track(datasets.DatasetDict({"train": reviews}), "splits")
    with pytest.raises(plait.ConversionError, match="single:v0 is a single Dataset, not a DatasetDict; load it without split="):
        load("single", split="train", store=store)
    with pytest.raises(plait.NotFoundError, match=r"splits:v0 has no split 'test' \(it has train\)"):
        load("splits", split="test", store=store)
    with pytest.raises(plait.ConversionError, match="splits:v0 holds a DatasetDict, not a Dataset; load one split"):
        plait.load("splits", as_type=datasets.Dataset, store=store)


def test_unknown_spec_lists_what_exists(store, reviews):
    with plait.run("prep", store=store):
        track(reviews, "reviews")
    with pytest.raises(plait.NotFoundError, match="reviewz"):
        load("reviewz", store=store)


def test_a_list_is_refused(store):
    with pytest.raises(plait.ConversionError, match="track\\(\\) takes a datasets.Dataset or DatasetDict, not list"):
        track([1, 2, 3], "numbers", store=store)


@pytest.mark.slow  # the first IterableDataset of a process imports torch: ~20 s on a busy 2-core machine
def test_a_streaming_dataset_is_refused(memory_store, reviews):
    store = memory_store
    streaming = reviews.to_iterable_dataset()
    with pytest.raises(plait.ConversionError, match="materialize an iterable dataset first"):
        track(streaming, "stream", store=store)
    with pytest.raises(plait.ConversionError, match="cannot log a streaming IterableDataset: materialize it first"):
        plait.log(streaming, "stream", store=store)


def test_a_python_transform_format_is_refused(store, reviews):
    reviews.set_transform(lambda batch: batch)
    with pytest.raises(plait.ConversionError, match="call ds.reset_format\\(\\) before logging it"):
        track(reviews, "reviews", store=store)
    assert store.versions("reviews") == [] if store.exists else True
