"""A store handed to another process: it pickles as what opens it again, and a version another
process logged a moment ago is found, not copied, even on a remote store listed once a second."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest

import plait


def test_a_store_pickles_as_its_absolute_url_and_options_and_reopens_once_per_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = plait.Store("relative-store")
    version = plait.log(b"hello", name="greeting", store=store)

    again = pickle.loads(pickle.dumps(store))

    assert again.url == str(tmp_path / "relative-store")  # a worker may run in another folder
    assert again is pickle.loads(pickle.dumps(store)) is plait.current_store(str(tmp_path / "relative-store"))
    assert again.id == store.id
    copy = pickle.loads(pickle.dumps(version))  # versions (and what holds them) pickle too
    assert copy.spec == "greeting:v0" and copy.read_bytes(copy.files()[0].path) == b"hello"


def test_a_pickled_store_keeps_its_storage_options(s3_store, s3_options):
    s3_store.init()
    payload = pickle.dumps(s3_store)

    again = pickle.loads(payload)

    assert again.storage_options == s3_options and again.id == s3_store.id
    other = plait.Store(s3_store.url)  # the same URL, opened without options elsewhere in the process
    assert pickle.loads(pickle.dumps(other)) is not again


def test_a_pickled_store_keeps_what_its_references_may_read(tmp_path):
    allowed, options = (str(tmp_path / "raw"),), {"s3://data/": {"anon": True}}
    store = plait.Store(tmp_path / "store", allow_references=allowed, reference_options=options)

    again = pickle.loads(pickle.dumps(store))

    assert again._reader_overrides == (allowed, options)
    plain = plait.Store(tmp_path / "store")
    assert pickle.loads(pickle.dumps(plain)) is not again  # other reference settings: another store object


def test_a_pickled_store_not_yet_created_keeps_its_format_and_hash(tmp_path):
    store = plait.Store(tmp_path / "flat", format=1, hash="blake3")  # nothing written yet

    again = pickle.loads(pickle.dumps(store))
    again.init()  # a worker creates it

    config = json.loads((tmp_path / "flat" / "plait.json").read_text())
    assert (config["format"], config["algorithm"]) == (1, "blake3")
    assert (store.format, store.algorithm) == (1, "blake3")


def test_a_use_on_a_remote_store_links_the_version_another_process_logged_a_moment_ago(s3_url, s3_options, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("PLAIT_SYNC_INTERVAL", "3600")  # as if the other process logged within the same second
    store = plait.Store(s3_url, storage_options=s3_options)
    store.init()
    assert store.runs() == []  # listed now: the next listing is an hour away
    data = tmp_path / "made.txt"
    data.write_text("made elsewhere\n")
    code = ("import json, plait, sys\n"
            "store = plait.Store(sys.argv[1], storage_options=json.loads(sys.argv[2]))\n"
            "with plait.run('maker', store=store) as run:\n"
            "    print(run.log(sys.argv[3], name='made').spec, run.id)\n")
    env = {**os.environ, "PLAIT_CACHE_DIR": str(tmp_path / "other-cache")}  # another machine's index
    done = subprocess.run([sys.executable, "-c", code, s3_url, json.dumps(s3_options), str(data)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    spec, maker = done.stdout.split()

    with plait.run("reader", store=store) as run:
        used = run.use(str(data))

    assert (spec, used.spec, used.created_by) == ("made:v0", "made:v0", maker)
    assert [v.spec for v in store.versions("made")] == ["made:v0"]  # no copy nobody produced


def test_runs_can_be_found_by_what_their_info_holds(file_store):
    for task_run in ("a1", "b2", "c3"):
        with plait.run("task", store=file_store, info={"prefect": {"task_run_id": task_run}}):
            pass

    found = file_store.runs(info={"prefect.task_run_id": ["a1", "c3", "zz"]})

    assert sorted(r.info["prefect"]["task_run_id"] for r in found) == ["a1", "c3"]
    assert [r.info["prefect"]["task_run_id"] for r in file_store.runs(info={"prefect.task_run_id": "b2"})] == ["b2"]
    assert file_store.runs(info={"prefect.task_run_id": []}) == []
    with pytest.raises(plait.InvalidInputError, match=r"dotted keys of words like 'prefect.task_run_id', not '\$\.x'"):
        file_store.runs(info={"$.x": "1"})


def test_refresh_lists_a_remote_store_at_once(s3_url, s3_options, monkeypatch, tmp_path):
    monkeypatch.setenv("PLAIT_SYNC_INTERVAL", "3600")
    store = plait.Store(s3_url, storage_options=s3_options)
    store.init()
    assert store.runs() == []
    code = ("import json, plait, sys\n"
            "with plait.run('elsewhere', store=plait.Store(sys.argv[1], storage_options=json.loads(sys.argv[2]))): pass\n")
    env = {**os.environ, "PLAIT_CACHE_DIR": str(tmp_path / "other-cache")}
    subprocess.run([sys.executable, "-c", code, s3_url, json.dumps(s3_options)], check=True, timeout=120, env=env)

    assert store.runs() == []  # not listed again yet
    store.refresh()
    assert [r.name for r in store.runs()] == ["elsewhere"]


def test_a_remote_store_open_in_one_process_reads_the_packs_another_process_stored_since(s3_url, s3_options, tmp_path):
    store = plait.Store(s3_url, storage_options=s3_options)
    plait.log(b"first", name="weights", store=store)
    assert store.verify().ok  # the index folder listed here, after this process last wrote to it
    code = ("import json, plait, sys\n"
            "store = plait.Store(sys.argv[1], storage_options=json.loads(sys.argv[2]))\n"
            "print(plait.log(b'second', name='weights', store=store).spec)\n")
    env = {**os.environ, "PLAIT_CACHE_DIR": str(tmp_path / "other-cache")}  # another machine
    done = subprocess.run([sys.executable, "-c", code, s3_url, json.dumps(s3_options)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr

    store.refresh()
    second = store.get(done.stdout.strip())

    assert second.read_bytes(second.files()[0].path) == b"second"  # its pack's index file is listed afresh
    assert store.verify().ok
