"""The CLI passes storage options (--store-option KEY=VALUE, $PLAIT_STORE_OPTIONS) to every store
it opens, and an unreachable endpoint is one clear line, not a traceback."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

import plait
from plait.cli import main
from plait.cli.app import parse_store_options


def _options_args(options: dict) -> list[str]:
    return ["--store-option", f"key={options['key']}", "--store-option", f"secret={options['secret']}",
            "--store-option", f"client_kwargs.endpoint_url={options['client_kwargs']['endpoint_url']}"]


def test_store_options_nest_dotted_keys_parse_json_and_override_the_environment():
    env = json.dumps({"anon": True, "client_kwargs": {"region_name": "eu-west-1"}})
    got = parse_store_options(["client_kwargs.endpoint_url=http://127.0.0.1:9000", "anon=false",
                               "config_kwargs.retries.max_attempts=2", "key=abc=def"], env)
    assert got == {"anon": False, "key": "abc=def", "config_kwargs": {"retries": {"max_attempts": 2}},
                   "client_kwargs": {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9000"}}


@pytest.mark.parametrize("pair, env, message", [
    ("endpoint", None, "is not KEY=VALUE"),
    ("a..b=1", None, "is not KEY=VALUE"),
    ("a=1", "[1, 2]", "must be a JSON object"),
    ("a=1", "{oops", "is not valid JSON"),
])
def test_bad_store_options_are_one_line_errors(pair, env, message):
    result = CliRunner().invoke(main, ["--store-option", pair, "ls"], env={"PLAIT_STORE_OPTIONS": env})
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_cli_logs_to_s3_with_store_options_and_from_the_environment(s3_url, s3_options, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"weights " * 64)
    runner = CliRunner()
    logged = runner.invoke(main, ["--store", s3_url, *_options_args(s3_options), "log", str(tmp_path / "model.bin"), "-n", "model"])
    assert logged.exit_code == 0, logged.output
    stored = plait.Store(s3_url, storage_options=s3_options).get("model:v0")
    assert stored.read_bytes("model.bin") == b"weights " * 64
    listed = runner.invoke(main, ["--json", "--store", s3_url, "ls"], env={"PLAIT_STORE_OPTIONS": json.dumps(s3_options)})
    assert listed.exit_code == 0, listed.output
    assert [v["name"] for v in json.loads(listed.output)] == ["model"]


def test_sync_to_an_s3_store_uses_the_store_options(file_store, s3_url, s3_options):
    file_store.log(b"rows\n" * 100, name="data")
    result = CliRunner().invoke(main, ["--store", file_store.url, *_options_args(s3_options), "sync", "--to", s3_url])
    assert result.exit_code == 0, result.output
    copied = plait.Store(s3_url, storage_options=s3_options).get("data:v0")
    assert copied.digest == file_store.get("data:v0").digest and copied.read_bytes("data") == b"rows\n" * 100


def test_an_unreachable_endpoint_is_one_clear_line(s3_options):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(main, [
        "--store", "s3://nowhere/store", "--store-option", f"client_kwargs.endpoint_url={endpoint}",
        "--store-option", "retries=1", "--store-option", "config_kwargs.retries.max_attempts=1",
        "--store-option", "config_kwargs.connect_timeout=1", "ls"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert f"cannot reach s3://nowhere/store at {endpoint}" in result.output
    assert "--store-option client_kwargs.endpoint_url" in result.output
    assert isinstance(result.exception, SystemExit)


def test_global_options_also_work_after_the_command(s3_url, s3_options, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"weights")
    runner = CliRunner()
    logged = runner.invoke(main, ["log", str(tmp_path / "model.bin"), "-n", "model", "--store", s3_url,
                                  *_options_args(s3_options)])
    assert logged.exit_code == 0, logged.output
    listed = runner.invoke(main, ["ls", "--json", "--store", s3_url, *_options_args(s3_options)])
    assert listed.exit_code == 0 and [v["name"] for v in json.loads(listed.output)] == ["model"]
    run_id = json.loads(listed.output)[0]["created_by"]
    shown = runner.invoke(main, ["run", "show", run_id, "--json", "--store", s3_url, *_options_args(s3_options)])
    assert shown.exit_code == 0 and json.loads(shown.output)["id"] == run_id
    bad = runner.invoke(main, ["ls", "--store", s3_url, "--reference-option", "nope"])
    assert bad.exit_code == 2 and "--reference-option 'nope' is not KEY=VALUE" in bad.output


def test_on_s3_every_plait_process_ends_its_run_finished(s3_url, s3_options, tmp_path):
    """Real processes, ended by the interpreter: s3fs's requests run on an executor that Python
    shuts down before ``atexit`` handlers, so the last run events must be written before that."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PLAIT_STORE_OPTIONS": json.dumps(s3_options), "PLAIT_CACHE_DIR": str(tmp_path / "cache")}
    done = []
    for i in range(2):  # a CLI `plait log`, a second time over an existing store
        (tmp_path / f"model{i}.bin").write_bytes(b"weights %d" % i)
        done.append(subprocess.run([sys.executable, "-m", "plait", "--store", s3_url, "log",
                                    str(tmp_path / f"model{i}.bin"), "-n", "model"],
                                   capture_output=True, text=True, timeout=120, env=env))
    script = ("import json, os, plait\n"  # a script's implicit run, ended only by the interpreter's exit
              "store = plait.Store(os.environ['URL'], storage_options=json.loads(os.environ['PLAIT_STORE_OPTIONS']))\n"
              "plait.log(b'a result', name='result', store=store)\n")
    done.append(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                               env={**env, "URL": s3_url}))

    assert [(d.returncode, d.stderr) for d in done] == [(0, "")] * 3
    store = plait.Store(s3_url, storage_options=s3_options)
    runs = store.runs()
    assert sorted(r.status for r in runs) == ["finished"] * 3 and all(r.ended_at for r in runs)
    assert sorted(v.spec for r in runs for v in r.outputs) == ["model:v0", "model:v1", "result:v0"]


def test_a_command_with_an_option_of_its_own_named_like_a_global_one_keeps_it():
    """`plait demo --store URL` is demo's own option: it takes no late --store beside it (click
    warned "The parameter --store is used more than once" on every `plait demo`)."""
    demo = main.commands["demo"]
    assert [p.opts for p in demo.params].count(["--store"]) == 1
    assert ["--store-option"] in [p.opts for p in demo.params] and ["--json"] in [p.opts for p in demo.params]
    result = CliRunner().invoke(main, ["--store", "memory://x", "demo", "--help"])
    assert result.exit_code == 0 and "used more than once" not in result.output
