"""Damaged bytes in the store are found, named and never passed on.

A flipped byte or a truncated blob makes ``plait verify`` name every version and path that
holds it and exit non-zero; ``download`` raises ``IntegrityError`` and leaves nothing at the
destination; a healthy copy already in the local cache is neither trusted less nor overwritten.
"""

from __future__ import annotations

import json
import os

import pytest
from blobview import Blobs
from click.testing import CliRunner

import plait
from plait.cli import main


def _damage(store: plait.Store, digest: str, how: str) -> None:
    key, start, end = Blobs.where(store, digest)
    if how == "flip":
        Blobs.flip(store, digest, (end - start) // 2)
    elif key.startswith("packs/"):  # a blob inside a pack cannot shrink: its second half is lost instead
        data = store.backend.read(key)[start:end]
        Blobs.overwrite(store, digest, data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    else:
        store.backend.write(key, store.backend.read(key)[: (end - start) // 2])


@pytest.fixture
def damaged(any_store, make_files):
    """A store with three versions: a blob shared by two is flipped, another one truncated."""
    shared, lonely = b"shared weights " * 500, b"only in v1 " * 300
    folder = make_files({"weights.bin": shared, "readme.md": "# model\n"})
    a = any_store.log(str(folder), name="model")
    b = any_store.log(plait.Artifact("model").add_bytes(shared, "weights.bin").add_bytes(lonely, "extra.bin"))
    c = any_store.log(b"untouched", name="other")
    _damage(any_store, a.entry("weights.bin").digest, "flip")
    _damage(any_store, b.entry("extra.bin").digest, "truncate")
    return any_store, a, b, c


def test_verify_names_every_damaged_version_and_path_and_exits_non_zero(damaged):
    store, a, b, c = damaged
    report = store.verify()
    assert not report.ok and report.versions == 3
    assert sorted((spec, path) for spec, path, digest, _ in report.problems if digest) == [
        ("model:v0", "weights.bin"), ("model:v1", "extra.bin"), ("model:v1", "weights.bin")]
    assert store.verify("other:v0").ok

    runner = CliRunner()
    result = runner.invoke(main, ["--store", store.url, "verify"], env=_env(store))
    assert result.exit_code == 4
    for line in ("DAMAGED model:v0 weights.bin", "DAMAGED model:v1 extra.bin", "DAMAGED model:v1 weights.bin"):
        assert line in result.output
    assert "FAILED: 3 versions" in result.output
    if store.format == 2:  # the damaged packs are named too
        assert {p for s, p, d, _ in report.problems if s == "packs"} == {
            Blobs.where(store, a.entry("weights.bin").digest)[0], Blobs.where(store, b.entry("extra.bin").digest)[0]}
    as_json = json.loads(runner.invoke(main, ["--store", store.url, "--json", "verify"], env=_env(store)).output)
    assert {(p["version"], p["path"]) for p in as_json["problems"] if p["digest"]} == {
        ("model:v0", "weights.bin"), ("model:v1", "extra.bin"), ("model:v1", "weights.bin")}


def test_download_of_damaged_version_raises_and_leaves_nothing(damaged, tmp_path):
    store, a, b, c = damaged
    for version in (a, b):
        dest = tmp_path / f"out-{version.number}"
        with pytest.raises(plait.IntegrityError) as err:
            version.download(dest)
        assert err.value.digest in {a.entry("weights.bin").digest, b.entry("extra.bin").digest}
        assert os.listdir(dest) == []  # not a half folder, not the healthy files either
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(plait.IntegrityError):
        a.download(existing)
    assert sorted(os.listdir(existing)) == ["mine.txt"]  # what was there stays, nothing new


def test_a_healthy_copy_elsewhere_is_not_overwritten(any_store, tmp_path):
    data = b"model bytes " * 1000
    v = any_store.log(data, name="m")
    good = tmp_path / "good"
    v.download(good)
    cached = [os.path.join(d, f) for d, _, fs in os.walk(any_store.cache_dir) for f in fs if f == v.entry("m").digest]
    _damage(any_store, v.entry("m").digest, "flip")
    assert (good / "m").read_bytes() == data  # the copy made before the damage is untouched
    if any_store.backend.is_local:
        with pytest.raises(plait.IntegrityError):
            v.download(tmp_path / "again")
    else:  # a remote store's verified cache copy keeps serving and stays as it was
        assert cached and v.download(tmp_path / "again") and (tmp_path / "again" / "m").read_bytes() == data
        with open(cached[0], "rb") as f:
            assert f.read() == data
    assert (good / "m").read_bytes() == data
    assert not any_store.verify().ok  # the store's own copy is still reported


def _env(store: plait.Store) -> dict:
    fs = getattr(store.backend, "fs", None)
    if fs is None or store.backend.protocol != "s3":
        return {}
    # the CLI takes no storage options: the endpoint comes from the environment, as in CI
    return {"AWS_ENDPOINT_URL": fs.storage_options["client_kwargs"]["endpoint_url"],
            "AWS_ACCESS_KEY_ID": fs.storage_options["key"], "AWS_SECRET_ACCESS_KEY": fs.storage_options["secret"]}
