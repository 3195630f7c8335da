"""Distributed versions: workers in their own processes send parts with ``plait.upsert``; one
``plait.finish`` makes exactly one version holding them all, every sending run a producer; a
part after the finish is refused; a killed worker is retried."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import stop_and_close

import plait
from plait.errors import ConflictError, InvalidInputError, InvalidNameError

WORKER = str(Path(__file__).with_name("distributed_worker.py"))


def _options(store) -> dict | None:
    fs = getattr(store.backend, "fs", None)
    return dict(fs.storage_options) if fs is not None and store.backend.protocol == "s3" else None


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _workers_stopped():
    """Stop the workers a failed test leaves, and close their pipes."""
    yield
    stop_and_close(_STARTED)


def _worker(store, index: int, phase: str | None = None) -> subprocess.Popen:
    args = [sys.executable, WORKER, store.url, json.dumps(_options(store)), str(index), *([phase] if phase else [])]
    _STARTED.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return _STARTED[-1]


def _join(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0 and out.strip() == "done", err[-3000:]


@pytest.mark.parametrize("backend, phase", [("file", "before-record"), ("file", "after-record"), ("s3", "after-record")])
def test_four_workers_one_killed_and_retried_make_exactly_one_version(request, backend, phase):
    shared_store = request.getfixturevalue(f"{backend}_store")
    procs = [_worker(shared_store, i) for i in range(3)]
    doomed = _worker(shared_store, 3, phase)
    assert doomed.stdout.readline().strip() == phase  # it stopped there: kill it at that very point
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate()
    for proc in procs:
        _join(proc)
    _join(_worker(shared_store, 3))  # the retry
    with plait.run("collect", store=shared_store) as run:
        v = plait.finish("preds", distributed_id="eval-42", store=shared_store, aliases=["eval"])
    assert [x.spec for x in shared_store.versions("preds")] == ["preds:v0"] and v.spec == "preds:v0"
    assert [e.path for e in v.files()] == ["labels.txt"] + [f"preds/{i}.json" for i in range(4)]
    assert json.loads(v.read_bytes("preds/3.json"))["worker"] == 3 and v.type == "result"
    assert v.metadata == {f"worker{i}": True for i in range(4)} and "eval" in v.aliases
    names = sorted(r.name for r in v.producers)
    # the killed worker sent its part only if it died after the record: then it is a producer too
    killed = ["worker-3"] if phase == "after-record" else []
    assert names == sorted(["collect", "worker-0", "worker-1", "worker-2", "worker-3", *killed])
    assert v.producers[0].id == run.id and v.created_by == run.id
    assert v.verify() == []


def test_a_part_after_the_finish_is_refused_and_finishing_again_returns_the_version(any_store, listing):
    for i in range(2):
        with plait.run(f"w{i}", store=any_store):
            plait.upsert(plait.Artifact("preds", distributed_id="e1").add_bytes(b"%d" % i, f"{i}.txt"), store=any_store)
    v = plait.finish("preds", distributed_id="e1", store=any_store)
    before = listing(any_store)
    late = plait.Artifact("preds", distributed_id="e1").add_bytes(b"late", "late.txt")
    with pytest.raises(ConflictError, match=r"'preds' with distributed_id 'e1' was finished at .* as preds:v0; this part is not in it"):
        plait.upsert(late, store=any_store)
    assert listing(any_store) == before  # its bytes were not even stored
    assert plait.finish("preds", distributed_id="e1", store=any_store) == v
    assert [x.spec for x in any_store.versions("preds")] == ["preds:v0"]


def test_a_later_part_replaces_a_file_and_equal_content_is_the_same_version(store):
    send = lambda did, data: plait.upsert(plait.Artifact("out", distributed_id=did).add_bytes(data, "a.txt"), store=store)  # noqa: E731
    send("x", b"first")
    send("x", b"second")
    v = plait.finish("out", distributed_id="x", store=store)
    assert v.read_bytes("a.txt") == b"second"
    send("y", b"second")
    assert plait.finish("out", distributed_id="y", store=store) == v  # the same content: the same version


def test_bad_distributed_input_is_refused_and_writes_nothing(any_store, listing):
    before = listing(any_store)
    with pytest.raises(InvalidInputError, match="no parts of 'preds' with distributed_id 'e9' were sent"):
        plait.finish("preds", distributed_id="e9", store=any_store)
    with pytest.raises(InvalidInputError, match="has no distributed_id"):
        plait.upsert(plait.Artifact("preds").add_bytes(b"x", "x"), store=any_store)
    with pytest.raises(InvalidInputError, match=r"send it with plait.upsert\(\)"):
        plait.log(plait.Artifact("preds", distributed_id="e9").add_bytes(b"x", "x"), store=any_store)
    with pytest.raises(InvalidNameError, match="distributed_id '../x' is not allowed"):
        plait.Artifact("preds", distributed_id="../x")
    assert listing(any_store) == before


def test_gc_keeps_the_parts_of_an_unfinished_version(store):
    plait.upsert(plait.Artifact("preds", distributed_id="e1").add_bytes(b"kept until the finish", "a.txt"), store=store)
    store.gc(dry_run=False, grace_seconds=0)
    store.gc(dry_run=False, grace_seconds=0)
    v = plait.finish("preds", distributed_id="e1", store=store)
    assert v.read_bytes("a.txt") == b"kept until the finish" and v.verify() == []


def test_cli_upsert_and_finish(fresh_cli, make_files):
    for i in range(2):
        out = json.loads(fresh_cli("upsert", str(make_files({f"{i}.json": f"[{i}]"}, f"w{i}")), "--name", "preds",
                                   "--distributed-id", "e7", "--prefix", "out", "--meta", f"w{i}=1", json_out=True).output)
        assert out["file_count"] == 1 and out["key"].startswith("distributed/preds/e7/parts/")
    before = fresh_cli.store.backend.find("distributed")
    assert "TTL" in fresh_cli("finish", "preds", "-D", "e7", "--ttl", "0d", code=2).stderr  # refused before the close
    assert "b@d" in fresh_cli("finish", "preds", "-D", "e7", "--tag", "b@d", code=2).stderr
    assert fresh_cli.store.backend.find("distributed") == before
    result = fresh_cli("finish", "preds", "--distributed-id", "e7", "--alias", "eval", "--tag", "eu", "--ttl", "30d")
    assert result.output.startswith("preds:v0  2 files") and "eval" in result.output and "tags: eu" in result.output
    v = fresh_cli.store.get("preds:eval")
    assert v.tags == ("eu",) and v.expires_at is not None
    assert [e.path for e in v.files()] == ["out/0.json", "out/1.json"] and v.metadata == {"w0": 1, "w1": 1}
    late = fresh_cli("upsert", str(make_files({"2.json": "[2]"}, "w2")), "--name", "preds", "--distributed-id", "e7", code=1)
    assert "was finished at" in late.stderr and "Traceback" not in late.output
    assert "no parts of 'preds' with distributed_id 'e8'" in fresh_cli("finish", "preds", "-D", "e8", code=2).stderr


def test_a_part_sent_while_a_finish_runs_waits_for_its_decision(store):
    """A finish began (its close is there) when a worker sends a part: the part waits, and the
    finish that completes it (here one taking over at once) takes the part, so the worker succeeds."""
    import threading

    from plait.base.ids import utcnow
    from plait.formats import distributed as D
    from plait.formats import records as R
    from plait.store.distributed import parts

    plait.upsert(plait.Artifact("preds", distributed_id="e1").add_bytes(b"first", "a.txt"), store=store)
    store.backend.create(D.closing_key("preds", "e1"), R.encode(R.build(D.ClosingRecord, "closing", time=utcnow())))
    done: dict = {}

    def worker() -> None:
        try:
            done["part"] = plait.upsert(plait.Artifact("preds", distributed_id="e1").add_bytes(b"second", "b.txt"),
                                        store=store, wait=120)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            done["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    while len(parts(store, "preds", "e1")) < 2 and thread.is_alive():  # its record is written: it now waits
        time.sleep(0.01)
    v = plait.finish("preds", distributed_id="e1", store=store, wait=0)
    thread.join(60)
    assert "error" not in done and done["part"].record.id in [p.record.id for p in parts(store, "preds", "e1")]
    assert [e.path for e in v.files()] == ["a.txt", "b.txt"]
