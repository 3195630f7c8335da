"""A hostile (or careless) writer against a file store and the loopback S3 server.

Whoever can write the bucket can add objects, rewrite them and delete them. Against each thing
such a writer can do, plait must hold: nothing it finds is executed, nothing outside the
destination is read or written, no live version is lost, ``plait verify`` names every damaged
record, and every failure is one line. Each test plays one attack on both backends (the
``hostile`` fixture); read-only and full-disk stores need a mount and run on local folders.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import zlib

import pytest
from click.testing import CliRunner
from ulid import ULID

import plait
from plait.cli import main
from plait.formats import records as R
from plait.formats.manifest import Entry, Manifest
from plait.storage.digest import hash_bytes
from plait.store.base import manifest_key


@pytest.fixture(params=["file", "s3"])
def hostile(request) -> plait.Store:
    """A store on a local folder, then on the loopback S3 server."""
    return request.getfixturevalue(f"{request.param}_store")


def env_for(store: plait.Store) -> dict[str, str]:
    """The environment a CLI process needs to open ``store`` (S3: the endpoint and keys)."""
    fs = getattr(store.backend, "fs", None)
    if fs is None or store.backend.protocol != "s3":
        return {}
    return {"AWS_ENDPOINT_URL": fs.storage_options["client_kwargs"]["endpoint_url"],
            "AWS_ACCESS_KEY_ID": fs.storage_options["key"], "AWS_SECRET_ACCESS_KEY": fs.storage_options["secret"]}


def cli(store: plait.Store, *args: str):
    """Run the real CLI in this process on ``store``; return click's result."""
    return CliRunner().invoke(main, ["--store", store.url, *args], env=env_for(store))


def one_line_error(result, code: int) -> str:
    """Assert the CLI failed with exit ``code`` and one line on stderr, no traceback; return the line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plait: error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def fresh(store: plait.Store) -> plait.Store:
    """Another reader of the same store, its index rebuilt from the store alone."""
    other = plait.Store(store.url, storage_options=getattr(store.backend, "fs", None) and store.backend.fs.storage_options
                        if store.backend.protocol == "s3" else None)
    other.reindex()
    return other


def forged_event(kind: str, data: dict, *, before: str) -> R.Event:
    """An event whose id sorts just before the event ``before`` (so it is folded first)."""
    moment = ULID.from_str(before).timestamp - 0.001
    return R.Event(id=str(ULID.from_timestamp(moment)), kind=kind, time="2020-01-01T00:00:00Z", user="mallory", data=data)


def plant(store: plait.Store, event: R.Event) -> None:
    """Write an event record straight into the store, as a writer with bucket access can."""
    assert store.backend.create(event.key, R.encode(event))


def logged_event(store: plait.Store, name: str, number: int) -> R.Event:
    """Return the ``version.logged`` event that announced ``name:v<number>``."""
    keys = [k for k in store.backend.find("events") if k.count("/") == 2]
    events, _ = R.decode_events(store.backend.read_many(keys))
    return next(e for e in events if e.kind == R.VERSION_LOGGED and (e.data["name"], e.data["number"]) == (name, number))


def evil_version_data(store: plait.Store, name: str, number: int, payload: bytes) -> dict:
    """Store a manifest for ``payload`` and return version data that claims it is ``name:v<number>``."""
    digest = store.blobs.put_bytes(payload)
    manifest = Manifest.of([Entry(path="model.pt", digest=digest, size=len(payload))], store.algorithm)
    return {"name": name, "number": number, "type": "model", "digest": store.put_manifest(manifest),
            "size": len(payload), "file_count": 1, "created_at": "2020-01-01T00:00:00Z", "algorithm": store.algorithm}


# -- records are the truth; events are the history ---------------------------------------------


@pytest.mark.parametrize("algorithm", ["xxh3-128", "blake3"])
def test_a_forged_older_event_cannot_change_what_a_version_is_nor_make_gc_delete_it(hostile, algorithm):
    store = plait.Store(hostile.url, hash=algorithm,
                        storage_options=hostile.backend.fs.storage_options if hostile.backend.protocol == "s3" else None)
    real = store.log(b"real weights", name="model", type="model", aliases=["production"])
    forged = forged_event(R.VERSION_LOGGED, evil_version_data(store, "model", 0, b"evil weights"),
                          before=logged_event(store, "model", 0).id)
    plant(store, forged)
    plant(store, forged_event(R.VERSION_LOGGED, {**evil_version_data(store, "ghost", 0, b"boo"), "name": "ghost"},
                              before=forged.id))  # announces a version that has no record at all

    reader = fresh(store)
    for spec in ("model:v0", "model:production", "model"):
        assert reader.get(spec).digest == real.digest
    assert reader.get("model:v0").read_bytes("model") == b"real weights"
    with pytest.raises(plait.NotFoundError):
        reader.get("ghost:v0")
    report = reader.verify()
    assert not report.ok
    ignored = {(spec, path) for spec, path, _, reason in report.problems if reason.startswith("event ignored")}
    assert {s for s, _ in ignored} == {"model:v0", "ghost:v0"} and ("model:v0", forged.key) in ignored
    assert any("it announces model:v0 with digest" in r for _, _, _, r in report.problems)
    assert any(r.endswith("the record versions/ghost/0 it announces is missing") for _, _, _, r in report.problems)
    reader.gc(dry_run=False, grace_seconds=0)
    assert fresh(store).get("model:production").read_bytes("model") == b"real weights"
    assert fresh(store).get("model:v0").verify() == []
    assert store.blobs.has(real.digest)  # its tree's root node


def test_a_deleted_version_record_is_reported_and_its_number_never_reused(hostile):
    first = hostile.log(b"first", name="data")
    hostile.backend.delete(R.version_key("data", 0))
    reader = fresh(hostile)
    problems = {(s, p): r for s, p, _, r in reader.verify().problems}
    assert "is missing" in problems[("data:v0", R.version_key("data", 0))]
    result = cli(hostile, "verify")
    assert result.exit_code == 4 and "DAMAGED versions/data/0: " in result.output
    again = reader.log(b"second", name="data")
    assert again.spec == "data:v1" and again.read_bytes("data") == b"second" and again.digest != first.digest
    result = cli(hostile, "log", __file__, "--name", "data")
    assert result.exit_code == 0 and result.output.startswith("data:v2"), result.output


def test_a_garbled_version_record_is_named_by_verify_and_never_shadowed(hostile):
    hostile.log(b"kept", name="data")
    hostile.backend.write(R.version_key("data", 0), b'{"format": 1, "name": "data", "numb')
    reader = fresh(hostile)
    problems = {(s, p): r for s, p, _, r in reader.verify().problems}
    assert "cannot be read" in problems[("data:v0", R.version_key("data", 0))]
    assert reader.log(b"new", name="data").spec == "data:v1"


def test_a_rewritten_version_record_is_reported_and_another_versions_record_is_refused(hostile):
    hostile.log(b"a bytes", name="a")
    b = hostile.log(b"b bytes", name="b")
    hostile.flush()
    rewritten = hostile.read_version_record("a", 0).model_copy(update={"digest": b.digest})
    hostile.backend.write(R.version_key("a", 0), R.encode(rewritten))  # an immutable record, rewritten in place
    problems = {(s, p): r for s, p, _, r in hostile.verify().problems}
    assert "rewritten after it was indexed (digest changed)" in problems[("a:v0", R.version_key("a", 0))]
    hostile.backend.write(R.version_key("a", 0), hostile.backend.read(R.version_key("b", 0)))  # b's record copied to a
    reader = fresh(hostile)
    problems = {(s, p): r for s, p, _, r in reader.verify().problems}
    assert "holds the record of b:v0" in problems[("a:v0", R.version_key("a", 0))]
    assert reader.get("b:v0").read_bytes("b") == b"b bytes"


# -- what a writer puts in: payloads, crafted manifests, oversized and invalid records ------------


def test_a_pickled_payload_in_a_model_never_runs(hostile, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_lightning")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "x": Payload()}, buffer)
    hostile.log(plait.Artifact("model", type="model").add_bytes(buffer.getvalue(), "model.pt"))
    with pytest.raises(plait.ConversionError, match="holds more than weights"):
        plait.load("model", dict, store=hostile)
    assert not marker.exists()


@pytest.mark.parametrize("path", ["../escaped.txt", "/tmp/escaped.txt", "a/../../escaped.txt", "C:/escaped.txt"])
def test_a_crafted_manifest_never_writes_outside_the_destination(hostile, tmp_path, path):
    digest = hostile.init().blobs.put_bytes(b"escaped")
    raw = json.dumps({"algorithm": hostile.algorithm, "format": 1, "entries": [
        {"path": "ok.txt", "digest": digest, "size": 7}, {"path": path, "digest": digest, "size": 7}]}).encode()
    manifest_digest = hash_bytes(raw, hostile.algorithm)
    hostile.backend.write(manifest_key(manifest_digest), zlib.compress(raw))
    record = hostile.create_version({"name": "evil", "type": "dataset", "digest": manifest_digest, "size": 14,
                                     "file_count": 2, "created_at": "2024-01-01T00:00:00Z"})
    hostile.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"))
    dest = tmp_path / "box" / "dest"
    line = one_line_error(cli(hostile, "get", "evil:v0", str(dest)), 4)
    assert "entry" in line and "cannot be read" in line
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*")) and not os.path.exists("/tmp/escaped.txt")
    assert [(s, p) for s, p, _, _ in hostile.verify().problems] == [("evil:v0", "")]


def test_oversized_and_invalid_records_are_named_and_never_block_reads(hostile):
    hostile.log(b"fine", name="fine")
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    big, bad = f"events/{day}/{ULID()}", f"events/{day}/{ULID()}"
    hostile.backend.create(big, b'{"kind": "alias.set", "data": "' + b"x" * (17 << 20) + b'"}')
    hostile.backend.create(bad, b'{"format": 1, "id": "not a ulid", "kind": "run.started"')
    hostile.backend.create(R.version_key("huge", 0), b"{" + b" " * (17 << 20) + b"}")
    reader = fresh(hostile)
    assert reader.get("fine").read_bytes("fine") == b"fine"
    named = {p for _, p, _, _ in reader.verify().problems}
    assert {big, bad, R.version_key("huge", 0)} <= named
    result = cli(hostile, "verify")
    assert result.exit_code == 4 and f"DAMAGED {big}: " in result.output and "more than a record may be" in result.output


def test_reordered_alias_events_cannot_undo_a_later_move(hostile):
    hostile.log(b"one", name="m")
    hostile.log(b"two", name="m")
    hostile.set_alias("m:v0", "prod")
    hostile.set_alias("m:v1", "prod")
    moves = [e for e in R.decode_events(hostile.backend.read_many(
        [k for k in hostile.backend.find("events") if k.count("/") == 2]))[0] if e.kind == R.ALIAS_SET]
    last = max(moves, key=lambda e: e.id)
    plant(hostile, forged_event(R.ALIAS_SET, {"name": "m", "alias": "prod", "number": 0}, before=last.id))
    assert fresh(hostile).get("m:prod").spec == "m:v1"  # the move with the greatest id wins, in any index
    assert hostile.get("m:prod").spec == "m:v1"


def test_a_garbled_index_is_rebuilt_with_one_line_saying_so(hostile):
    hostile.log(b"kept", name="kept")
    index = os.path.join(hostile.cache_dir, "index.sqlite")
    hostile.catalog.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(index + suffix):
            os.unlink(index + suffix)
    with open(index, "wb") as f:
        f.write(os.urandom(8192))
    result = cli(hostile, "ls")
    assert result.exit_code == 0 and "kept" in result.output
    assert result.stderr.splitlines() == [f"plait: warning: the index {index} was damaged (file is not a database); "
                                          "rebuilding it from the store"]
    with open(index, "wb") as f:
        f.write(b"garbage again" * 100)
    assert cli(hostile, "reindex").exit_code == 0 and "kept" in cli(hostile, "ls").output


# -- stores that cannot be written: a read-only mount, a full disk -------------------------------


def _mount(args: list[str], target) -> None:
    """Mount something at ``target`` or skip the test, saying why (needs root and mount rights)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a read-only folder or a small tmpfs needs Linux and root")
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine does not let the tests mount ({done.stderr.strip()})")


@pytest.fixture
def mounts():
    """Mount points made by a test, unmounted at its end."""
    made: list[str] = []
    yield made
    for target in reversed(made):
        subprocess.run(["umount", "-l", target], capture_output=True)


def _pipeline(store: plait.Store, make_files) -> None:
    """A few versions, a run with an input and an output, an alias and a note."""
    store.log(make_files({"a.txt": "alpha", "b/c.txt": "gamma"}, folder="raw"), name="raw")
    with plait.run("prepare", store=store) as run:
        run.use("raw:v0")
        run.log(make_files({"clean.txt": "clean"}, folder="clean"), name="clean", aliases=["good"])
    store.get("clean:v0").update(description="checked")
    store.log(b"other bytes", name="raw")
    store.flush()


READ_COMMANDS = [["ls"], ["versions", "raw"], ["show", "clean:good"], ["history", "clean"], ["diff", "raw:v0", "raw:v1"],
                 ["lineage", "clean:v0"], ["runs"], ["verify"], ["gc"], ["--json", "ls"]]


def test_every_read_command_works_on_a_read_only_mount_and_writes_say_so_in_one_line(file_store, make_files, mounts, tmp_path):
    _pipeline(file_store, make_files)
    file_store.blobs.put_bytes(b"garbage no version needs")
    file_store.blobs.commit()  # stored (its pack and an index file): gc has something to delete
    ro = tmp_path / "ro"
    ro.mkdir()
    _mount(["--bind", "-o", "ro", file_store.url], ro)
    mounts.append(str(ro))
    with pytest.raises(OSError):
        (ro / "probe").write_text("x")  # really read-only, for root too
    store = plait.Store(str(ro))
    assert not store.cache_dir.startswith(str(ro))  # the index goes to the user's cache
    for args in READ_COMMANDS:
        result = cli(store, *args)
        assert result.exit_code == 0 and result.stderr == "", (args, result.output)
    run_id = store.get("clean:v0").created_by
    assert cli(store, "run", "show", run_id).exit_code == 0
    got = cli(store, "get", "clean:v0", str(tmp_path / "out"))
    assert got.exit_code == 0 and (tmp_path / "out" / "clean.txt").read_text() == "clean"
    assert "clean:v0" in cli(store, "show", "clean").output and "checked" in cli(store, "show", "clean").output
    line = one_line_error(cli(store, "log", str(make_files({"n.txt": "new"}, folder="new")), "--name", "new"), 1)
    assert "Read-only file system" in line
    assert "Read-only file system" in one_line_error(cli(store, "gc", "--delete", "--grace", "0"), 1)


def _small_disk(tmp_path, mounts, make_files, size: str) -> plait.Store:
    """A store with a few versions on a tmpfs of ``size`` (``mount``'s notation), nearly full."""
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs"], disk)
    mounts.append(str(disk))
    store = plait.Store(str(disk / "store"))
    _pipeline(store, make_files)
    return store


def _temporary_files(store: plait.Store) -> list[str]:
    return [f for _, _, files in os.walk(os.path.dirname(store.url)) for f in files if f.endswith(".tmp")]


def test_a_full_disk_is_one_line_leaves_no_temporary_files_and_reads_still_work(make_files, mounts, tmp_path):
    store = _small_disk(tmp_path, mounts, make_files, "2m")
    disk = tmp_path / "disk"
    big = make_files({"big.bin": os.urandom(3 << 20)}, folder="big")
    line = one_line_error(cli(store, "log", str(big), "--name", "big"), 1)
    assert "No space left on device" in line
    assert _temporary_files(store) == []
    late = R.Event(id=str(ULID()), kind=R.ALIAS_SET, time="2024-01-01T00:00:00Z", user="elsewhere",
                   data={"name": "raw", "alias": "late", "number": 1})
    plant(store, late)  # written by another machine: this index has yet to fold it
    try:  # fill what is left, to the last block
        with open(disk / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError:
        pass
    for args in READ_COMMANDS:
        result = cli(store, *args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stderr.splitlines() == [f"plait: warning: the index {store.cache_dir}/index.sqlite cannot be updated "
                                              "(database or disk is full); showing what it held, which may miss the newest changes"]
    assert cli(store, "get", "raw:v0", str(tmp_path / "out")).exit_code == 0


def test_a_full_disk_while_a_large_file_is_read_once_into_a_pack_leaves_the_store_clean(make_files, mounts, tmp_path):
    store = _small_disk(tmp_path, mounts, make_files, "12m")
    before = {k: store.backend.size(k) for k in store.backend.find("packs")}
    big = make_files({"big.bin": os.urandom(24 << 20)}, folder="big")  # chunked, and more than the disk holds
    line = one_line_error(cli(store, "log", str(big), "--name", "big"), 1)
    assert "No space left on device" in line
    assert _temporary_files(store) == []
    assert {k: store.backend.size(k) for k in store.backend.find("packs")} == before  # no pack of the failed log
    fresh = plait.Store(store.url)
    assert fresh.verify().ok
    assert [v.name for v in fresh.artifacts()] == ["clean", "raw"]
    os.truncate(big / "big.bin", 9 << 20)  # smaller: it fits now
    result = cli(fresh, "log", str(big), "--name", "big")
    assert result.exit_code == 0, result.output
    assert plait.Store(store.url).verify().ok


@pytest.fixture(scope="module")
def read_only_s3(tmp_path_factory):
    """An S3 server that checks credentials, with a user who may do anything and one who may only read.

    moto checks signatures and IAM policies once its first ``INITIAL_NO_AUTH_ACTION_COUNT``
    requests (the six that make the two users) are done.
    """
    pytest.importorskip("moto.server")
    import socket

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "6"}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):  # the server answers once it has imported every service (seconds on a busy machine)
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                if server.poll() is not None:
                    pytest.skip("moto's S3 server did not start")
                import time

                time.sleep(0.05)
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        keys = {}
        for user, actions in (("admin", ["s3:*"]), ("reader", ["s3:GetObject", "s3:ListBucket"])):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "client_kwargs": {"endpoint_url": endpoint}}
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
        yield keys
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow  # starts an S3 server of its own, with credentials checked
def test_every_read_command_works_for_a_user_who_may_only_read_the_bucket(read_only_s3, make_files, tmp_path):
    import s3fs

    s3fs.S3FileSystem(**read_only_s3["admin"]).mkdir("team-store")
    url = "s3://team-store/plait"
    _pipeline(plait.Store(url, storage_options=read_only_s3["admin"]), make_files)
    plait.tracking.run.end_implicit_runs()
    reader = plait.Store(url, storage_options=read_only_s3["reader"])
    reader.get("raw:v0").read_bytes("a.txt")
    with pytest.raises(plait.StoreError, match="refused access"):
        reader.backend.write("probe", b"x")  # really read-only for this user
    creds = read_only_s3["reader"]
    # as options, not the environment: fsspec reuses a filesystem made from the same (empty) options
    options = ["--store-option", f"key={creds['key']}", "--store-option", f"secret={creds['secret']}",
               "--store-option", f"client_kwargs.endpoint_url={creds['client_kwargs']['endpoint_url']}"]
    for args in [*READ_COMMANDS, ["get", "clean:v0", str(tmp_path / "out")]]:
        result = CliRunner().invoke(main, ["--store", url, *options, *args])
        assert result.exit_code == 0 and result.stderr == "", (args, result.output)
    assert (tmp_path / "out" / "clean.txt").read_text() == "clean"
    folder = str(make_files({"n.txt": "new"}, folder="new"))
    line = one_line_error(CliRunner().invoke(main, ["--store", url, *options, "log", folder, "--name", "new"]), 1)
    assert "refused access" in line
