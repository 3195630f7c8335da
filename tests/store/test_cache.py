"""The local cache of downloads: never inside a store, bounded by the user's setting after each
download, cleaned by size and age; ``plait get`` never overwrites a different file unasked."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from plait.errors import InvalidInputError, NotFoundError, SettingsError
from plait.store import cache

KIB = 1024


def _cache_root() -> Path:
    return Path(os.environ["PLAIT_CACHE_DIR"])


def _cached_files() -> dict[str, int]:
    root = _cache_root() / "stores"
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != "origin.json"
            and p.parts[len(root.parts) + 1] in cache.AREAS}


def _settings(text: str) -> None:
    Path(os.environ["PLAIT_CONFIG"]).write_text(text)


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_downloads_go_to_the_user_cache_never_inside_the_store(request, backend, make_files):
    any_store = request.getfixturevalue(f"{backend}_store")
    big = os.urandom(9 << 20)  # chunked: v.open() assembles it in the cache
    v = any_store.log(str(make_files({"a.txt": "a", "big.bin": big})), name="ds")
    folder = v.download()
    assert Path(folder).is_relative_to(_cache_root()) and (Path(folder) / "a.txt").read_text() == "a"
    assert v.read_bytes("big.bin") == big
    if any_store.backend.is_local:
        inside = {p.name for p in Path(any_store.backend.local_path("cache")).iterdir()}
        assert not inside & set(cache.AREAS), inside  # the store's own cache/ holds its index only
    found = cache.info()
    assert [s.url for s in found.stores] == [any_store.url] and found.size >= len(big)


def test_the_bound_is_enforced_after_each_download_least_recently_used_first(file_store, make_files, tmp_path):
    _settings('[cache]\nmax_size = "100KiB"\n')
    versions = [file_store.log(str(make_files({"f.bin": os.urandom(40 * KIB)}, f"d{i}")), name=f"ds{i}") for i in range(4)]
    folders = []
    for i, v in enumerate(versions):
        folders.append(Path(v.download()))
        os.utime(folders[-1] / "f.bin", (time.time() - 1000 + i, time.time() - 1000 + i))  # each used later than the one before
    assert sum(_cached_files().values()) <= 100 * KIB
    assert [(f / "f.bin").exists() for f in folders] == [False, False, True, True]  # the oldest went, the new one stayed
    assert versions[0].download() == str(folders[0]) and (folders[0] / "f.bin").exists()  # fetched again on demand


def test_a_bound_larger_than_a_download_keeps_what_it_just_wrote(file_store, make_files):
    _settings('[cache]\nmax_size = "10KiB"\n')
    v = file_store.log(str(make_files({"f.bin": os.urandom(40 * KIB)})), name="ds")
    assert (Path(v.download()) / "f.bin").stat().st_size == 40 * KIB


def test_a_malformed_bound_is_one_clear_error(file_store, make_files):
    _settings('[cache]\nmax_size = "lots"\n')
    v = file_store.log(str(make_files({"f.bin": "x"})), name="ds")
    with pytest.raises(SettingsError, match="cache.max_size in .*_config.toml 'lots' is not a size"):
        v.download()


def test_clean_by_age_and_size(file_store, make_files):
    versions = [file_store.log(str(make_files({"f.bin": os.urandom(10 * KIB)}, f"d{i}")), name=f"ds{i}") for i in range(3)]
    folders = [Path(v.download()) for v in versions]
    old = time.time() - 10 * 86400
    os.utime(folders[0] / "f.bin", (old, old))
    report = cache.clean(older_than=7 * 86400, dry_run=True)
    assert (report.removed, report.bytes) == (1, 10 * KIB) and (folders[0] / "f.bin").exists()
    report = cache.clean(older_than=7 * 86400)
    assert report.removed == 1 and not (folders[0] / "f.bin").exists() and (folders[1] / "f.bin").exists()
    report = cache.clean(max_size=10 * KIB)
    assert report.removed == 1 and report.left == 10 * KIB
    assert cache.clean().left == 0 and _cached_files() == {}


def test_get_refuses_to_overwrite_a_different_file_unless_forced(fresh_cli, make_files, tmp_path):
    fresh_cli("log", str(make_files({"a.txt": "a", "b/c.txt": "c", "b/d.txt": "d"})), "--name", "ds")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "a.txt").write_text("a")  # the same bytes: fine
    (dest / "b").mkdir()
    (dest / "b" / "c.txt").write_text("mine")
    (dest / "keep.txt").write_text("not the version's")
    result = fresh_cli("get", "ds:v0", str(dest), code=2)
    assert "already holds 1 file that differs from ds:v0: b/c.txt; pass --force" in result.stderr
    assert (dest / "b" / "c.txt").read_text() == "mine" and not (dest / "b" / "d.txt").exists()
    fresh_cli("get", "ds:v0", str(dest), "--force")
    assert (dest / "b" / "c.txt").read_text() == "c" and (dest / "keep.txt").read_text() == "not the version's"


def test_get_a_folder_or_a_file_of_a_version(fresh_cli, make_files, tmp_path):
    fresh_cli("log", str(make_files({"a.txt": "a", "b/c.txt": "c", "b/e/f.txt": "f", "bb.txt": "x"})), "--name", "ds")
    out = tmp_path / "out"
    fresh_cli("get", "ds", str(out), "--path", "b", "--path", "a.txt")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["a.txt", "b/c.txt", "b/e/f.txt"]
    result = fresh_cli("get", "ds", str(tmp_path / "none"), "--path", "zz", code=3)
    assert "ds:v0 has no file or folder 'zz'" in result.stderr
    v = fresh_cli.store.get("ds")
    assert [e.path for e in v.select(["b/e/", "bb.txt"])] == ["b/e/f.txt", "bb.txt"]
    with pytest.raises(NotFoundError):
        v.download(tmp_path / "x", paths=["b/e/f"])


def test_cache_commands(file_store, make_files, tmp_path):
    from click.testing import CliRunner

    from plait.cli import main

    v = file_store.log(str(make_files({"f.bin": os.urandom(10 * KIB)})), name="ds")
    v.download()
    run = lambda *a, code=0: (r := CliRunner().invoke(main, list(a)), r.exit_code == code or pytest.fail(r.output))[0]  # noqa: E731
    info = json.loads(run("cache", "info", "--json").output)
    assert info["size"] == 10 * KIB and info["stores"][0]["url"] == file_store.url and info["max_size"] is None
    assert "10.0 KiB in 1 files" in run("cache", "info").output
    assert "would remove 1 files (10.0 KiB)" in run("cache", "clean", "--all", "--dry-run").output
    assert "say what to remove" in run("cache", "clean", code=2).output
    assert "is not a size" in run("cache", "clean", "--max-size", "big", code=2).output
    assert "is not a duration" in run("cache", "clean", "--older-than", "soon", code=2).output
    assert _cached_files()
    assert "removed 1 files" in run("cache", "clean", "--max-size", "0").output and _cached_files() == {}


def test_size_parsing():
    from plait.base.sizes import parse_size

    assert [parse_size(t) for t in ("0", "10GB", "1.5G", "512MiB", "2k", 7)] == [0, 10**10, 3 << 29, 512 << 20, 2048, 7]
    for bad in ("", "-1GB", "ten", "5 parsecs", -3):
        with pytest.raises(InvalidInputError):
            parse_size(bad)
