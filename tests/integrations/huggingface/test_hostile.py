"""A dataset version crafted by a hostile writer never makes ``load`` read outside the version.

``datasets`` opens whatever ``state.json`` and ``dataset_dict.json`` name, and decodes image
cells from the path they hold; a version could name ``/etc/passwd`` or a URL. Each is refused
with one ``ConversionError`` before anything is read.
"""

from __future__ import annotations

import json

import datasets
import pytest

import plait
from plait.integrations.huggingface import load, track


def _tamper(store: plait.Store, spec: str, path: str, edit) -> str:
    """Log a copy of ``spec`` whose file ``path`` went through ``edit``; return the new spec."""
    version = store.get(spec)
    draft = plait.Artifact(version.name, type=version.type, metadata=dict(version.metadata))
    for entry in version.files():
        data = version.read_bytes(entry.path)
        if entry.path == path:
            data = json.dumps(edit(json.loads(data))).encode()
        draft.add_bytes(data, entry.path)
    return store.log(draft).spec


@pytest.mark.parametrize("filename", ["/etc/hostname", "../../../../etc/hostname", "sub/../data.arrow"])
def test_a_shard_named_outside_the_version_is_refused(store, reviews, filename):
    track(reviews, "reviews", store=store)

    def edit(state):
        state["_data_files"] = [{"filename": filename}]
        return state

    spec = _tamper(store, "reviews:v0", "state.json", edit)
    with pytest.raises(plait.ConversionError, match="refusing to read outside it"):
        load(spec, store=store)


def test_a_split_named_outside_the_version_is_refused(store, reviews):
    track(datasets.DatasetDict({"train": reviews}), "splits", store=store)
    spec = _tamper(store, "splits:v0", "dataset_dict.json", lambda body: {"splits": ["../../../../etc"]})
    with pytest.raises(plait.ConversionError, match="names a split '../../../../etc'"):
        load(spec, store=store)


def test_image_cells_that_name_files_elsewhere_are_refused(store, tmp_path):
    """Decoding an image cell opens the path it holds; a crafted version's cells hold only a path."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for this dataset")
    cell = datasets.Features({"image": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}})
    plain = datasets.Dataset.from_dict({"image": [{"bytes": None, "path": str(secret)}]}, features=cell)
    track(plain, "images", store=store)

    def as_image(info):  # the same cells, now declared images (what datasets writes for an Image column)
        info["features"] = {"image": {"_type": "Image"}}
        return info

    spec = _tamper(store, "images:v0", "dataset_info.json", as_image)
    with pytest.raises(plait.ConversionError, match="'image' cells that name files instead of holding their bytes"):
        load(spec, store=store)
