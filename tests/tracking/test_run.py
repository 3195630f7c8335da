"""Runs: what a run records, failure, nesting, the active run across threads and tasks,
stitching by content, and two processes sharing one store."""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import plait
from plait.base.ids import ulid_time

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def write(path: str, data: bytes) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return path


def git(*args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], check=True, capture_output=True)


def test_a_run_records_who_where_what_and_which_commit(file_store):
    git("init", "-q")
    write("train.py", b"print(1)\n")
    git("add", "train.py")
    git("commit", "-qm", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    write("train.py", b"print(2)\n")  # uncommitted change: the tree is dirty

    file_store.log(b"raw bytes", name="raw")
    with plait.run("prepare", config={"split": 0.9, "seed": 7}, store=file_store) as run:
        assert plait.active_run() is run
        raw = run.use("raw:latest")
        out = run.log(write("clean.csv", b"a,b\n1,2\n"), name="clean")

    loaded = file_store.get_run(run.id)
    assert len(loaded.id) == 26 and ulid_time(loaded.id).year >= 2024
    assert (loaded.name, loaded.kind, loaded.parent, loaded.status) == ("prepare", "manual", None, "finished")
    assert loaded.config == {"split": 0.9, "seed": 7}
    assert loaded.started_at <= loaded.ended_at
    assert loaded.host and loaded.user
    assert loaded.command.startswith(Path(sys.argv[0]).name)
    assert (loaded.git_commit, loaded.git_dirty) == (head, True)
    assert [v.spec for v in loaded.inputs] == [raw.spec] == ["raw:v0"]
    assert [v.spec for v in loaded.outputs] == [out.spec] == ["clean:v0"]
    assert file_store.get("clean:v0").produced_by == run
    assert file_store.get("raw:v0").used_by == [run]
    assert loaded.to_dict()["inputs"] == ["raw:v0"] and loaded.to_dict()["outputs"] == ["clean:v0"]


def test_an_exception_marks_the_run_failed_keeps_its_records_and_propagates(store):
    store.log(b"input", name="raw")
    with pytest.raises(KeyError, match="boom"):
        with plait.run("train", store=store) as run:
            run.use("raw:v0")
            run.log(b"half a model", name="model")
            raise KeyError("boom")
    failed = store.get_run(run.id)
    assert failed.status == "failed" and failed.ended_at
    assert failed.error == "KeyError: 'boom'"
    assert [v.spec for v in failed.inputs] == ["raw:v0"]
    assert [v.spec for v in failed.outputs] == ["model:v0"]
    assert store.get("model:v0").read_bytes("model") == b"half a model"
    assert plait.active_run() is None


def test_runs_nest_and_record_their_parent(store):
    with plait.run("pipeline", store=store) as outer:
        with plait.run("step-a") as a:
            with plait.run("step-a1") as a1:
                assert plait.active_run() is a1
            assert plait.active_run() is a
        with plait.run("step-b") as b:
            pass
        assert plait.active_run() is outer
    assert (a.parent, a1.parent, b.parent, outer.parent) == (outer.id, a.id, outer.id, None)
    assert a.store == store  # the inner run writes to the outer run's store
    assert [r.name for r in store.get_run(outer.id).children] == ["step-a", "step-b"]
    assert store.get_run(a1.id).parent_run == a
    assert [r.name for r in store.runs(parent=outer.id)] == ["step-b", "step-a"]


def test_runs_can_be_listed_by_name_and_kind(store):
    with plait.run("train", store=store, kind="lightning.fit"):
        pass
    with plait.run("train", store=store):
        pass
    with plait.run("eval", store=store):
        pass
    assert [r.kind for r in store.runs(name="train")] == ["manual", "lightning.fit"]
    assert [r.name for r in store.runs(kind="manual")] == ["eval", "train"]
    assert len(store.runs(limit=1)) == 1


def test_a_thread_started_with_a_copied_context_sees_the_active_run(store):
    seen: dict[str, object] = {}

    def work(key: str) -> None:
        seen[key] = plait.active_run()

    with plait.run("parallel", store=store) as run:
        ctx = contextvars.copy_context()
        t1 = threading.Thread(target=ctx.run, args=(work, "copied"))
        t2 = threading.Thread(target=work, args=("plain",))  # threads do not inherit contextvars
        t1.start(), t2.start()
        t1.join(), t2.join()
    assert seen == {"copied": run, "plain": None}


def test_asyncio_tasks_each_see_their_own_run(store):
    async def stage(name: str) -> tuple[str, str | None, str]:
        with plait.run(name) as run:
            await asyncio.sleep(0.01)  # interleave the two tasks
            run.log(name.encode(), name=name)
            return run.id, run.parent, plait.active_run().name

    async def pipeline() -> list[tuple[str, str | None, str]]:
        with plait.run("flow", store=store) as flow:
            results = await asyncio.gather(stage("left"), stage("right"))
            assert plait.active_run() is flow
            return [(flow.id, None, "flow"), *results]

    (flow_id, _, _), (left, left_parent, left_seen), (right, right_parent, right_seen) = asyncio.run(pipeline())
    assert (left_parent, right_parent) == (flow_id, flow_id)
    assert (left_seen, right_seen) == ("left", "right")
    assert store.get("left:v0").created_by == left and store.get("right:v0").created_by == right


def test_using_a_path_with_the_same_bytes_links_the_existing_version_without_its_name(store):
    write("out/clean/part-0.csv", b"x\n1\n")
    with plait.run("prepare", store=store) as prepare:
        clean = prepare.log("out/clean", name="clean")
    write("elsewhere/copy/part-0.csv", b"x\n1\n")  # same bytes, other folder name
    with plait.run("train", store=store) as train:
        used = train.use("elsewhere/copy")
    assert used.spec == "clean:v0" and used.digest == clean.digest
    assert store.versions("clean") == [clean] and [a.name for a in store.artifacts()] == ["clean"]
    assert [r.name for r in store.lineage("clean:v0", direction="downstream").runs.values()] == ["train"]
    assert [r.id for r in store.get("clean:v0").used_by] == [train.id]


def test_using_unknown_bytes_logs_them_first_as_a_version_nobody_produced(store):
    store.log(b"known", name="known")
    with plait.run("train", store=store) as run:
        same = run.use(b"known", name="known")  # bytes become one file named after the artifact
        new = run.use(b"never seen", name="external")
    assert same.spec == "known:v0"
    assert new.spec == "external:v0" and new.created_by is None
    assert new.read_bytes("external") == b"never seen"
    assert [v.spec for v in store.get_run(run.id).inputs] == ["known:v0", "external:v0"]


def test_reading_back_ones_own_output_is_not_an_input(store):
    with plait.run("train", store=store) as run:
        out = run.log(b"model", name="model")
        assert run.use("model:v0") == out
    assert store.get_run(run.id).inputs == []


def test_a_run_may_use_a_version_made_from_its_own_outputs(store):
    """The use is recorded (the graph holds a loop), but ``y`` was logged before ``a`` used ``z``:
    it is not made from ``z``, while ``w``, logged after, is."""
    with plait.run("a", store=store) as a:
        a.log(b"y", name="y")
        with plait.run("b", parent=None) as b:
            b.use("y:v0")
            b.log(b"z", name="z")
        a.use("z:v0")
        a.log(b"w", name="w")
    assert [v.spec for v in store.get_run(a.id).inputs] == ["z:v0"]
    assert set(store.lineage("y:v0").versions) == {"y:v0"}
    assert set(store.lineage("w:v0").versions) == {"w:v0", "z:v0", "y:v0"}
    assert set(store.lineage("y:v0", direction="downstream").versions) == {"y:v0", "z:v0", "w:v0"}


def test_using_something_that_is_neither_a_path_nor_a_spec_says_so(store):
    with plait.run("r", store=store) as run:
        with pytest.raises(plait.NotFoundError, match="neither an existing path nor a version spec"):
            run.use("no such/thing here")
        with pytest.raises(plait.NotFoundError, match="no artifact named 'ghost'"):
            run.use("ghost:v1")


def test_outside_a_run_log_and_use_go_to_one_implicit_run_for_the_process(file_store):
    first = plait.log(b"x", name="x", store=file_store)
    plait.use("x:v0", store=file_store)
    second = plait.log(b"y", name="y", store=file_store)
    assert first.created_by == second.created_by
    implicit = file_store.get_run(first.created_by)
    assert implicit.info["implicit"] is True and implicit.status == "running"
    plait.tracking.run.end_implicit_runs()
    assert file_store.get_run(first.created_by).status == "finished"


def test_a_bad_run_name_or_config_is_refused_before_anything_is_written(store):
    with pytest.raises(plait.InvalidNameError):
        with plait.run("no spaces allowed", store=store):
            pass
    with pytest.raises(plait.InvalidMetadataError, match="run config must be JSON-serializable"):
        with plait.run("ok", store=store, config={"f": object()}):
            pass
    assert store.runs() == []


_CHILD = textwrap.dedent(
    """
    import json, sys, plait
    store = plait.Store(sys.argv[1])
    with plait.run("train", store=store, config={"pid": "child"}) as run:
        run.use("raw:v0")
        model = run.log(b"weights from the child", name="model")
    print(json.dumps({"run": run.id, "model": model.spec}))
    """
)

_READER = textwrap.dedent(
    """
    import json, sys, plait
    store = plait.Store(sys.argv[1])
    print(store.lineage("report:v0").to_json())
    """
)


def test_two_processes_logging_and_using_one_store_see_each_others_runs(file_store):
    file_store.log(b"raw", name="raw")
    assert file_store.runs(name="train") == []  # the parent's index is open and synced
    child = subprocess.run([sys.executable, "-c", _CHILD, file_store.url], capture_output=True, text=True, check=True)
    made = json.loads(child.stdout)

    model = file_store.get("model:latest")  # the same Store object, synced incrementally
    assert model.spec == made["model"] and model.read_bytes("model") == b"weights from the child"
    assert model.produced_by.id == made["run"] and model.produced_by.config == {"pid": "child"}
    assert [r.id for r in file_store.get("raw:v0").used_by] == [made["run"]]

    with plait.run("report", store=file_store) as report:
        report.use("model:v0")
        report.log(b"accuracy 0.9", name="report")
    reader = subprocess.run([sys.executable, "-c", _READER, file_store.url], capture_output=True, text=True, check=True)
    graph = json.loads(reader.stdout)
    runs = {n["name"] for n in graph["nodes"] if n["type"] == "run"}
    assert {"train", "report"} <= runs
    assert {"source": "model:v0", "target": f"run:{report.id}", "kind": "used"} in graph["edges"]
    assert {"source": f"run:{made['run']}", "target": "model:v0", "kind": "produced"} in graph["edges"]
    assert os.path.exists(os.path.join(file_store.url, "events"))


def test_the_same_bytes_under_another_file_name_link_the_version(store, tmp_path):
    """A checkpoint the trainer logged as ``model.ckpt`` is found again from its own path."""
    ckpt = tmp_path / "epoch=3-step=40.ckpt"
    ckpt.write_bytes(b"weights after epoch 3")
    logged = store.log(plait.Artifact("classifier", type="model").add_file(str(ckpt), name="model.ckpt"))

    with plait.run("evaluate", store=store) as run:
        used = run.use(str(ckpt))

    assert used.spec == logged.spec == "classifier:v0"
    assert [v.spec for v in run.inputs] == ["classifier:v0"]
    assert [a.name for a in store.artifacts()] == ["classifier"]


def test_a_run_handing_on_what_a_run_inside_it_logged_returns_that_version(store, tmp_path):
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"best weights")
    with plait.run("train-task", store=store) as task:
        with plait.run("fit", store=store, kind="lightning.fit") as fit:
            inner = fit.log(plait.Artifact("classifier", type="model").add_file(str(ckpt), name="model.ckpt"))
        handed_on = task.log(str(ckpt), name="train")

    assert handed_on.spec == inner.spec == "classifier:v0"
    assert handed_on.created_by == fit.id
    assert [a.name for a in store.artifacts()] == ["classifier"]
    with plait.run("other", store=store) as other:  # outside that scope the same bytes are a new version
        assert other.log(str(ckpt), name="copy").spec == "copy:v0"


def _s3_env(s3_options: dict) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": s3_options["client_kwargs"]["endpoint_url"],
            "AWS_ACCESS_KEY_ID": s3_options["key"], "AWS_SECRET_ACCESS_KEY": s3_options["secret"],
            "PLAIT_DISABLE_PLUGIN_AUTOLOAD": "1"}


def test_an_implicit_run_on_s3_finishes_when_a_python_process_exits(s3_url, s3_options, tmp_path):
    """concurrent.futures shuts down before atexit handlers run; the run's end must still reach S3."""
    script = textwrap.dedent(f"""
        import plait
        store = plait.Store({s3_url!r}, storage_options={s3_options!r})
        plait.log(b"weights", name="model", store=store)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "cannot schedule" not in done.stderr and "plait:" not in done.stderr, done.stderr
    store = plait.Store(s3_url, storage_options=s3_options)
    (run,) = store.runs()
    assert run.info["implicit"] is True and run.status == "finished" and run.outputs[0].spec == "model:v0"


def test_plait_log_on_s3_ends_its_implicit_run_before_the_command_returns(s3_url, s3_options, tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(b"bytes")
    env = _s3_env(s3_options)
    logged = subprocess.run([sys.executable, "-m", "plait", "--store", s3_url, "log", str(data), "--name", "data"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert logged.returncode == 0 and logged.stderr == "", logged.stderr
    listed = subprocess.run([sys.executable, "-m", "plait", "--store", s3_url, "--json", "runs"],
                            capture_output=True, text=True, timeout=120, env=env)
    (run,) = json.loads(listed.stdout)
    assert run["status"] == "finished" and run["outputs"] == ["data:v0"]
