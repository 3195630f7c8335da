"""What a fit used, DDP on two CPU processes, and the torch module conversion plugin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import plait
from plait.integrations.lightning import PlaitCheckpoints


def test_tracked_hf_dataset_and_versions_used_during_the_fit_are_inputs(file_store, make_trainer, kit, make_files):
    datasets = pytest.importorskip("datasets")
    from plait.integrations.huggingface import track

    rows = {f"x{i}": [float((j * (i + 3)) % 7) - 3 for j in range(24)] for i in range(4)}
    rows["y"] = [int(rows["x0"][j] > 0) for j in range(24)]
    dataset = track(datasets.Dataset.from_dict(rows), "points", store=file_store)
    labels = file_store.log(make_files({"labels.txt": "neg\npos\n"}), name="labels")

    trainer, _ = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=1, save_last=False)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.HFData(dataset, extra="labels:v0"))

    run = file_store.runs(kind="lightning.fit")[0]
    assert {v.spec for v in run.inputs} == {"points:v0", labels.spec}
    graph = plait.lineage("classifier:latest", store=file_store)
    assert "points:v0" in graph.to_mermaid() and "labels:v0" in graph.to_mermaid()


@pytest.mark.slow  # ~100 s here: each spawned process imports torch and Lightning afresh
def test_ddp_on_two_cpu_processes_logs_each_checkpoint_once(file_store, make_trainer, kit):
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=2, save_last=False,
                               strategy="ddp_spawn", devices=2, deterministic=False)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())

    (run,) = file_store.runs(kind="lightning.fit")  # rank 1 started no run
    assert run.status == "finished" and run.config["trainer"]["world_size"] == 2
    assert run.config["trainer"]["strategy"] == "DDPStrategy"
    outputs = run.outputs
    assert sorted(v.metadata["filename"] for v in outputs) == sorted(os.listdir(mc.dirpath))
    assert len(outputs) == len({v.digest for v in outputs}) == 2  # each file exactly once
    assert file_store.get("classifier:best").metadata["filename"] == os.path.basename(trainer.checkpoint_callback.best_model_path)


def test_a_module_logs_as_a_model_and_a_checkpoint_loads_as_its_class(file_store, make_trainer, kit):
    import torch

    model = kit.TinyClassifier(lr=0.1)
    version = file_store.log(model, name="tiny")
    assert version.type == "model" and [e.path for e in version.files()] == ["model.pt"]
    assert version.metadata["class"].endswith("TinyClassifier") and version.metadata["hparams"]["lr"] == 0.1
    assert file_store.log(model, name="tiny").spec == version.spec  # same weights, same bytes, same version
    state = plait.load("tiny:v0", dict, store=file_store)
    assert torch.equal(state["net.0.weight"], model.net[0].weight.detach())

    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=1, save_last=False)
    trainer.fit(kit.TinyClassifier(hidden=3), datamodule=kit.TinyData())
    loaded = plait.load("classifier:best", kit.TinyClassifier, store=file_store)
    assert isinstance(loaded, kit.TinyClassifier) and loaded.hparams.hidden == 3
    assert torch.equal(loaded.net[0].weight, torch.load(mc.best_model_path, weights_only=False)["state_dict"]["net.0.weight"])


def test_the_plugin_imports_without_torch():
    code = ("import sys, plait.integrations.lightning.plugin, plait.integrations.lightning as L; "
            "assert 'torch' not in sys.modules and 'pytorch_lightning' not in sys.modules; print(L.checkpoint_path.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "checkpoint_path"
