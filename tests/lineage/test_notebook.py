"""A notebook executed by a real Jupyter kernel (``nbclient``): the natural sequence works, the
implicit run is named after the notebook and is the active run, and ``plait.run()`` in a cell
works as anywhere else."""

from __future__ import annotations

import pytest

pytest.importorskip("datasets")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from plait_pipelines import NATURAL_SEQUENCE, labels, specs, up

import plait
from plait.tracking.environment import notebook_name

CELLS = [
    NATURAL_SEQUENCE,
    "import plait\nrun = plait.active_run()\nprint(run.name, run.implicit, run.info['previous'] == run.id)",
    'with plait.run("summarize") as cell:\n    cell.use("c:latest")\n    cell.log(b"2 positive reviews", name="summary")\n'
    "    print(plait.active_run().name)\nprint(plait.active_run().name)",
    # the name when the kernel is not told the notebook's path, and under VS Code
    "import os\nfrom plait.tracking.environment import notebook_name\nos.environ.pop('JPY_SESSION_NAME')\n"
    "print(notebook_name())\n__vsc_ipynb_file__ = '/home/me/Explore Reviews.ipynb'\nprint(notebook_name())",
]


def test_a_notebook_run_by_a_kernel(store, tmp_path, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "reviews analysis.ipynb"))  # as Jupyter Server 2 sets it
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "") for o in cell.outputs).strip() for cell in notebook.cells]
    assert outputs[1:] == ["reviews-analysis True False", "summarize\nreviews-analysis", "notebook\nExplore Reviews"]

    names = labels(store)
    assert sorted(names.values()) == ["reviews-analysis#1", "reviews-analysis#2", "summarize#1", "transform-b#1",
                                      "transform-c#1"]
    assert {r.status for r in store.runs()} == {"finished"}  # the kernel's exit ended the last segment
    summarize = store.get_run(next(i for i, n in names.items() if n == "summarize#1"))
    assert summarize.parent is None and specs(summarize.inputs) == ["c:v0"]  # not a child of the notebook's run
    assert up(store, "summary:v0") == (
        {"summary:v0", "c:v0", "b:v0", "a:v0"}, {"summarize#1", "transform-c#1", "transform-b#1", "reviews-analysis#1"})


def test_outside_a_kernel_there_is_no_notebook_name():
    assert notebook_name() is None
    assert plait.active_run() is None
