"""What a small step costs in requests on S3 (the loopback server): every request is a round trip
to the bucket, and a team's store sees thousands of small logs.

No step reads back what it has just written, asks for an object's size before reading it whole,
or asks whether an empty folder is a file.
"""

from __future__ import annotations

import plait


def test_each_small_log_of_a_run_is_eight_requests_none_of_them_a_read_of_its_own_writes(s3_url, s3_options, s3_requests,
                                                                                        monkeypatch):
    # the index lists the events once a second at most: a slow machine would add that listing
    # to some logs, so it is put off here (what a log itself asks for is what is counted)
    monkeypatch.setenv("PLAIT_SYNC_INTERVAL", "3600")
    store = plait.Store(s3_url, storage_options=s3_options).init()
    with plait.run("writer", store=store) as run:
        run.log(b"item 0", name="shared")  # the first log of a process also reads the store's state
        costs = []
        for i in range(1, 4):
            before = s3_requests()
            run.log(f"item {i}".encode(), name="shared")
            after = s3_requests()
            costs.append({k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)})
    # per log: a listing of the index files, of the gc marks and of the name's versions (GET); two
    # packs (data, tree nodes), their index file, the version record and its event (PUT)
    assert costs == [{"GET": 3, "PUT": 5}] * 3
    assert [v.read_bytes("shared") for v in store.versions("shared")] == [f"item {i}".encode() for i in range(4)]


def test_verify_reads_each_record_once_and_never_asks_a_size_first(s3_store, s3_requests):
    with plait.run("writer", store=s3_store.init()) as run:
        for i in range(5):
            run.log(f"item {i}".encode(), name="shared")
    fresh = plait.Store(s3_store.url, storage_options=s3_store.storage_options)
    before = s3_requests()
    assert fresh.verify().ok
    after = s3_requests()
    assert after.get("HEAD", 0) == before.get("HEAD", 0)


def test_finding_below_an_empty_folder_is_one_listing_and_a_full_one_lists_only_that_folder(s3_store, s3_requests):
    backend = s3_store.init().backend
    backend.write("gcx/not-below", b"x")  # a sibling whose name starts the same is not below "gc"
    before = s3_requests()
    assert backend.find("gc") == {}
    assert s3_requests().get("GET", 0) - before.get("GET", 0) == 1 and s3_requests().get("HEAD", 0) == before.get("HEAD", 0)
    backend.write("gc/a/one", b"12")
    backend.write("gc/two", b"345")
    assert backend.find("gc") == {"gc/a/one": 2, "gc/two": 3}
    assert backend.find("gc/a") == {"gc/a/one": 2}


def test_reading_many_records_leaves_out_the_missing_ones_and_reads_each_with_one_get(s3_store, s3_requests):
    backend = s3_store.init().backend
    backend.write("events/a", b"first")
    backend.write("events/b", b"second")
    before = s3_requests()
    assert backend.read_many(["events/a", "events/gone", "events/b"]) == {"events/a": b"first", "events/b": b"second"}
    after = s3_requests()
    assert {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)} == {"GET": 3}
