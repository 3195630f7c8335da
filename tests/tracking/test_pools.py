"""Work a run hands to a process pool is recorded in that run: inherited through fork, carried with
``plait.carry`` through spawn and forkserver, and never lost when the pool ends its workers with
``os._exit`` or ``SIGTERM``."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import plait

from .pool_work import nested_run, use_and_log, use_only

pytestmark = [pytest.mark.usefixtures("importable_tests"),
              pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool start methods differ on this system")]

N = 4


@pytest.fixture
def inputs(tmp_path: Path) -> str:
    """A folder with ``in0.txt`` … ``in3.txt``."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    for i in range(N):
        (folder / f"in{i}.txt").write_text(f"input {i}\n")
    return str(folder)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> plait.Store:
    """The default store, for the workers too (they inherit ``PLAIT_STORE``)."""
    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "store"))
    return plait.current_store()


def specs(versions: list[plait.ArtifactVersion]) -> set[str]:
    return {v.spec for v in versions}


IN = {f"in{i}.txt:v0" for i in range(N)}
OUT = {f"out{i}:v0" for i in range(N)}


def _pool_with(work: Callable[..., int], folder: str) -> set[int]:
    with mp.get_context("fork").Pool(2) as pool:  # __exit__ terminates the workers (SIGTERM)
        return set(pool.starmap(work, [(i, folder) for i in range(N)]))


def _pool_join(work: Callable[..., int], folder: str) -> set[int]:
    pool = mp.get_context("fork").Pool(2)
    try:
        return set(pool.starmap(work, [(i, folder) for i in range(N)]))
    finally:
        pool.close()
        pool.join()


def _executor(work: Callable[..., int], folder: str) -> set[int]:
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        return set(pool.map(work, range(N), [folder] * N))


def _raw_fork(work: Callable[..., int], folder: str) -> set[int]:
    pids = set()
    for i in range(N):
        pid = os.fork()
        if pid == 0:  # the child ends with os._exit, as multiprocessing's fork children do: no atexit
            try:
                work(i, folder)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        pids.add(pid)
    return pids


FORKED = {"pool-with": _pool_with, "pool-join": _pool_join, "executor": _executor, "raw-fork": _raw_fork}


@pytest.mark.parametrize("how", FORKED)
def test_forked_workers_record_into_the_run_active_where_they_forked_and_lose_nothing(how, store, inputs):
    with plait.run("parent") as run:
        pids = FORKED[how](use_only, inputs)

    assert os.getpid() not in pids
    assert specs(store.get_run(run.id).inputs) == IN  # the last use of each worker too, killed or not
    assert [r.id for r in store.runs()] == [run.id]  # no implicit runs in the workers


def test_forked_workers_log_outputs_of_the_run_and_a_run_they_start_records_their_own_pid(store, inputs):
    with plait.run("parent") as run:
        pids = _pool_with(use_and_log, inputs)
        with mp.get_context("fork").Pool(2) as pool:
            nested = pool.starmap(nested_run, [(i, inputs) for i in range(2)])

    record = store.get_run(run.id)
    assert specs(record.outputs) == OUT and {v.created_by for v in record.outputs} == {run.id}
    for pid, inner_id in nested:
        inner = store.get_run(inner_id)
        assert (inner.parent, inner.status, inner.info["pid"]) == (run.id, "finished", pid)
    assert os.getpid() not in pids


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_carried_function_records_into_the_run_in_spawned_and_forkserver_workers(method, store, inputs):
    with plait.run("parent") as run, ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as pool:
        pids = set(pool.map(plait.carry(use_and_log), range(N), [inputs] * N))

    assert os.getpid() not in pids
    record = store.get_run(run.id)
    assert specs(record.inputs) == IN and specs(record.outputs) == OUT
    assert [r.id for r in store.runs()] == [run.id]


def test_carry_child_makes_one_child_run_per_call_with_its_own_inputs_outputs_and_pid(store, inputs):
    with plait.run("parent") as run, ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        pids = set(pool.map(plait.carry(use_and_log, child=True), range(N), [inputs] * N))

    children = sorted(store.runs(parent=run.id), key=lambda r: r.outputs[0].name)
    assert [(r.name, r.kind, r.status) for r in children] == [("use_and_log", "call", "finished")] * N
    assert [(specs(r.inputs), specs(r.outputs)) for r in children] == [({f"in{i}.txt:v0"}, {f"out{i}:v0"}) for i in range(N)]
    assert {r.info["pid"] for r in children} == pids and os.getpid() not in pids
    edges = set(store.lineage("out2:v0").edges)
    assert edges == {("in2.txt:v0", f"run:{children[2].id}", "used"), (f"run:{children[2].id}", "out2:v0", "produced"),
                     (f"run:{run.id}", f"run:{children[2].id}", "parent")}


def test_a_spawned_worker_without_carry_records_to_its_own_implicit_run_and_says_so_once(store, inputs, capfd):
    with plait.run("parent") as run, ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        [pid] = set(pool.map(use_only, range(2), [inputs] * 2))

    err = capfd.readouterr().err
    [implicit] = [r for r in store.runs() if r.id != run.id]
    assert err.count("plait: process") == 1
    assert (f"plait: process {pid}, started by multiprocessing from process {os.getpid()}, records to its own implicit "
            f"run '{implicit.name}' ({implicit.id}): a process started with spawn or forkserver does not inherit") in err
    assert "hand the pool plait.carry(fn) instead of fn" in err
    assert specs(implicit.inputs) == {"in0.txt:v0", "in1.txt:v0"} and implicit.status == "finished"
    assert implicit.parent is None and store.get_run(run.id).inputs == []


def test_a_forked_worker_of_a_process_outside_any_run_finishes_its_implicit_run(store, inputs, capfd):
    pids = _pool_join(use_only, inputs)

    runs = store.runs()
    assert {r.info["pid"] for r in runs} == pids
    assert {r.status for r in runs} == {"finished"}  # ended by the pool's exit hook, not atexit
    assert set().union(*(specs(r.inputs) for r in runs)) == IN
    assert "plait: process" not in capfd.readouterr().err  # a forked child inherits whatever run there was


def test_a_forked_child_records_into_its_parents_implicit_run_and_never_ends_it(store, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("a\n")
    b.write_text("b, made from a\n")
    plait.log(str(a), name="a")  # the parent's implicit run
    implicit = plait.active_run()
    with plait.run("derive") as run:
        run.use("a:v0")
        run.log(str(b), name="b")

    pid = os.fork()
    if pid == 0:  # uses what was made from the implicit run's output: in the parent that would roll it over
        try:
            plait.use("b:v0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)

    record = store.get_run(implicit.id)
    assert record.status == "running" and specs(record.inputs) == {"b:v0"}  # recorded, not ended by the child
    assert plait.active_run() is implicit and [r.id for r in store.runs() if r.info.get("implicit")] == [implicit.id]


def test_carry_in_this_process_makes_the_run_active_for_the_call(store, inputs):
    from concurrent.futures import ThreadPoolExecutor

    with plait.run("parent") as run:
        carried = plait.carry(use_only)
        with ThreadPoolExecutor(2) as pool:  # threads that do not copy the context
            list(pool.map(carried, range(N), [inputs] * N))

    assert specs(store.get_run(run.id).inputs) == IN
    assert carried.run_id == run.id and carried.__name__ == "use_only" and carried.__wrapped__ is use_only
    assert repr(carried).startswith(f"<plait.carry 'use_only' recording into run {run.id}")


def test_carry_binds_the_implicit_run_outside_any_run(store, inputs):
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        carried = plait.carry(use_only)
        list(pool.map(carried, range(2), [inputs] * 2))

    [implicit] = store.runs()
    assert implicit.id == carried.run_id and implicit.info["implicit"] is True
    assert specs(implicit.inputs) == {"in0.txt:v0", "in1.txt:v0"}


def test_carry_refuses_what_it_cannot_carry(store):
    with pytest.raises(plait.InvalidInputError, match=r"plait.carry\(\) takes the function to call in the worker, not a str"):
        plait.carry("use_only")
    with pytest.raises(plait.InvalidInputError, match=r"plait.carry\(run=...\) takes a live plait.Run .* not a str"):
        plait.carry(use_only, run="01J")
    with pytest.raises(plait.InvalidInputError, match=r"plait.carry\(child=...\) takes True, False or a run name, not 3"):
        plait.carry(use_only, child=3)
    with pytest.raises(plait.InvalidNameError):
        plait.carry(use_only, child="no spaces")
    assert store.runs() == []


def test_a_carried_call_where_the_store_is_another_runs_unrecorded_and_says_so_once(inputs, capfd):
    store = plait.Store("memory://plait-carry-test")  # lives in this process only: a worker finds no store there
    with plait.run("parent", store=store) as run, ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        pids = list(pool.map(plait.carry(use_only), range(2), [inputs] * 2))

    err = capfd.readouterr().err
    assert len(pids) == 2 and err.count("CarryWarning") == 1
    assert (f"plait: the store of run {run.id}, memory://plait-carry-test (id {store.id}), is not what process "
            f"{pids[0]} finds at that URL (no store), so the carried calls here are not recorded.") in err
    assert store.get_run(run.id).inputs == []
