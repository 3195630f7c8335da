"""Whoever can write a shared store cannot make a reader read its own files or reach its URLs.

Each test crafts a version the way a hostile writer could (a hand-written manifest, a store
setting) and checks that every read path refuses it before anything is read, fetched or
written: the destination stays empty, the loopback HTTP server sees no request, the exit code
is the refusal's (6) and the message is one line that says how to allow it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from plait import Artifact, Entry, Reference, ReferenceRefusedError, Store
from plait.base.ids import new_ulid, utcnow
from plait.cli import main
from plait.formats import records as R

DIGEST = "0" * 32


def ref_entry(uri: str, path: str = "data.bin", size: int = 5, **fields) -> Entry:
    return Entry(path=path, digest=DIGEST, size=size, ref=Reference(uri=uri, **fields))


def refused_everywhere(store: Store, version, tmp_path: Path, message: str, allow: tuple[str, ...] = ()) -> None:
    """Every read path refuses ``version``'s only file with ``message`` and writes nothing (the CLI
    is given ``allow`` as --allow-reference, as the Store objects of the test were)."""
    dest = tmp_path / "dest"
    refs = Path(store.cache_dir) / "refs"
    cached = sorted(refs.rglob("*"))
    with pytest.raises(ReferenceRefusedError, match=message):
        version.download(dest)
    with pytest.raises(ReferenceRefusedError, match=message):
        version.read_bytes(version.files()[0].path)
    allowed = [arg for folder in allow for arg in ("--allow-reference", folder)]
    result = CliRunner().invoke(main, ["--store", store.url, "get", version.spec, str(dest), *allowed])
    assert result.exit_code == 6, result.output
    assert message.split(".*")[0] in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not dest.exists() or not any(dest.iterdir())
    assert sorted(refs.rglob("*")) == cached
    report = store.verify(version.spec)
    assert [(p.path, p.kind) for p in report.reference_problems] == [(version.files()[0].path, "refused")]
    assert report.exit_code == 5


@pytest.mark.parametrize("uri", ["/etc/passwd", "file:///etc/passwd", "file://localhost/etc/passwd"])
def test_a_local_file_outside_the_allowed_folders_is_never_read(file_store, craft, tmp_path, uri) -> None:
    v = craft(file_store, "crafted", [ref_entry(uri)])
    refused_everywhere(file_store, v, tmp_path, "reference to the local file /etc/passwd.*allow")


def test_a_store_setting_cannot_allow_local_files(file_store, craft, tmp_path) -> None:
    file_store.set_setting("references.allow", ["/etc", "file:///", "http://127.0.0.1/"])
    v = craft(file_store, "crafted", [ref_entry("/etc/passwd")])
    refused_everywhere(file_store, v, tmp_path, "reference to the local file /etc/passwd")


def test_a_symlink_in_an_allowed_folder_cannot_lead_out(file_store, craft, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, allowed / "link.txt")
    store = Store(file_store.url, allow_references=[str(allowed)])
    v = craft(store, "crafted", [ref_entry(str(allowed / "link.txt"), size=6)])
    refused_everywhere(store, v, tmp_path, f"reference to the local file {secret}", allow=(str(allowed),))


def test_a_fifo_in_an_allowed_folder_is_refused_without_hanging(file_store, craft, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    os.mkfifo(allowed / "pipe")
    store = Store(file_store.url, allow_references=[str(allowed)])
    v = craft(store, "crafted", [ref_entry(str(allowed / "pipe"))])
    with pytest.raises(Exception, match="not a regular file|changed since it was logged"):
        v.download(tmp_path / "dest")
    assert not any((tmp_path / "dest").iterdir())


def test_an_internal_url_is_never_fetched(file_store, craft, tmp_path, http_server) -> None:
    http_server.files["/secret"] = b"token"
    v = craft(file_store, "crafted", [ref_entry(f"{http_server.url}/secret")])
    refused_everywhere(file_store, v, tmp_path, f"reference to {http_server.url}/secret; this machine follows http")
    assert http_server.requests == []


def test_a_recorded_endpoint_is_reached_only_where_allowed(file_store, craft, tmp_path, http_server) -> None:
    entry = ref_entry("s3://bucket/key", options={"client_kwargs.endpoint_url": http_server.url})
    v = craft(file_store, "crafted", [entry])
    refused_everywhere(file_store, v, tmp_path, f"was added with the endpoint {http_server.url}")
    assert http_server.requests == []


def test_a_redirect_to_a_place_not_allowed_is_not_followed(file_store, craft, tmp_path, http_server, make_http_server) -> None:
    inner = make_http_server()
    inner.files["/secret"] = b"token"
    http_server.files["/data.bin"] = b"12345"
    http_server.redirects["/data.bin"] = f"{inner.url}/secret"
    store = Store(file_store.url, allow_references=[http_server.url])
    v = craft(store, "crafted", [ref_entry(f"{http_server.url}/data.bin")])
    with pytest.raises(ReferenceRefusedError, match=f"redirected to {inner.url}/secret"):
        v.download(tmp_path / "dest")
    assert inner.requests == [] and not any((tmp_path / "dest").iterdir())


@pytest.mark.parametrize("uri, message", [
    ("ftp://127.0.0.1/x", "follows ftp:// references only below URL prefixes it allows"),
    ("memory://other-store/blobs/x", "follows memory:// references only"),
    ("simplecache::s3://bucket/x", "chained URLs"),
    ("file://otherhost/etc/passwd", "names this machine only"),
    ("https://example.org/a/../../etc/passwd", "'.' or '..' segments"),
])
def test_unknown_schemes_and_malformed_uris_are_refused(file_store, craft, tmp_path, uri, message) -> None:
    v = craft(file_store, "crafted", [ref_entry(uri)])
    refused_everywhere(file_store, v, tmp_path, message)


@pytest.mark.parametrize("option", ["key", "secret", "client_kwargs.verify", "config_kwargs.proxies", "headers"])
def test_recorded_options_other_than_where_the_data_is_are_refused(file_store, craft, tmp_path, option) -> None:
    v = craft(file_store, "crafted", [ref_entry("s3://bucket/key", options={option: "x"})])
    refused_everywhere(file_store, v, tmp_path, f"records the storage option '{option}'")


def test_a_store_setting_narrows_what_a_reader_follows(file_store, craft, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "a.txt").write_text("hello")
    store = Store(file_store.url, allow_references=[str(allowed)])
    v = store.log(Artifact("raw").add_reference(str(allowed / "a.txt")))
    assert v.read_bytes("a.txt") == b"hello"
    store.set_setting("references.allow", ["s3://team-data/"])
    refused_everywhere(store, Store(file_store.url, allow_references=[str(allowed)]).get("raw:v0"), tmp_path,
                       "the store's setting references.allow does not include", allow=(str(allowed),))


def test_a_malformed_store_setting_follows_nothing(file_store, craft, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "a.txt").write_text("hello")
    store = Store(file_store.url, allow_references=[str(allowed)])
    v = craft(store, "crafted", [ref_entry(str(allowed / "a.txt"))])
    store.append_event(R.Event(id=new_ulid(), kind=R.SETTING_SET, time=utcnow(), user="mallory",
                               data={"key": "references.allow", "value": "everything"}))
    refused_everywhere(store, v, tmp_path, "the setting is malformed", allow=(str(allowed),))
