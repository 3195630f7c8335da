"""Without ``datasets`` installed, the plugin still imports and the API says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["datasets"] = None  # what an environment without the extra looks like to import
    import plait
    import plait.integrations.huggingface.plugin
    from plait.integrations.huggingface import load, track
    print(plait.log(b"still works", "x").spec)  # plait without the extra is unaffected
    for call in (lambda: track(object(), "x"), lambda: load("x:v0"), lambda: plait.load("x", as_type="huggingface")):
        try:
            call()
        except plait.MissingExtraError as exc:
            print(type(exc).__name__, exc.extra, exc)
""")


def test_missing_datasets_gives_the_install_hint(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    hint = ("MissingExtraError huggingface the Hugging Face integration needs the datasets library, "
            "which is not installed: pip install 'plait[huggingface]'")
    assert lines == ["x:v0", hint, hint, hint]
