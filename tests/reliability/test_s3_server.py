"""The loopback S3 server the tests use is as strict as S3 about two writers creating one key.

plait allocates version numbers with ``If-None-Match: *``; a test server that let two racing
creates both succeed would make the concurrency tests fail at random (see ``_make_puts_atomic``
in ``tests/conftest.py``).
"""

from __future__ import annotations

import threading

import pytest


def test_the_second_of_two_racing_creates_is_refused(s3_fs, s3_url, monkeypatch: pytest.MonkeyPatch):
    from moto.s3.models import S3Backend

    key = f"{s3_url}/versions/model/0"
    inside, release = threading.Event(), threading.Event()
    store_object = S3Backend.put_object

    def paused_on_first_store(self: S3Backend, bucket_name: str, key_name: str, *args: object, **kwargs: object) -> object:
        if key_name.endswith("versions/model/0") and not inside.is_set():
            inside.set()  # the first create has passed its check and not yet stored
            release.wait(10)
        return store_object(self, bucket_name, key_name, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", paused_on_first_store)
    outcomes: dict[str, str] = {}

    def create(writer: str) -> None:
        try:
            s3_fs.pipe_file(key, writer.encode(), mode="create")
            outcomes[writer] = "created"
        except FileExistsError:
            outcomes[writer] = "refused"

    first = threading.Thread(target=create, args=("first",))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=create, args=("second",))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # held until the first create has stored its object
    release.set()
    first.join(10)
    second.join(10)
    assert outcomes == {"first": "created", "second": "refused"}
    assert s3_fs.cat_file(key) == b"first"
