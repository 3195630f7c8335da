"""PlaitCheckpoints: each checkpoint Lightning writes is a version; each fit is a lightning.fit run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import plait
from plait.integrations.lightning import PlaitCheckpoints, checkpoint_path
from plait.integrations.lightning.callback import CheckpointLoggingWarning


def live_files(store, name="classifier"):
    return {v.metadata["filename"]: v for v in store.versions(name)}


def test_versions_aliases_and_metadata_follow_model_checkpoint(file_store, make_trainer, kit):
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=3)
    trainer.fit(kit.TinyClassifier(lr=0.3), datamodule=kit.TinyData())

    on_disk = sorted(os.listdir(mc.dirpath))
    assert len(on_disk) == 3 and "last.ckpt" in on_disk  # top 2 + last
    live = file_store.versions("classifier")
    # the live versions are exactly the files ModelCheckpoint kept (last.ckpt has the bytes of the newest)
    for f in on_disk:
        assert any(v.read_bytes("model.ckpt") == Path(mc.dirpath, f).read_bytes() for v in live), f
    assert len(live) == 2 and len({v.digest for v in live}) == 2

    best = file_store.get("classifier:best")
    assert best.metadata["filename"] == os.path.basename(mc.best_model_path)
    assert best.metadata["score"] == pytest.approx(float(mc.best_model_score))
    assert best.read_bytes("model.ckpt") == Path(mc.best_model_path).read_bytes()
    latest = file_store.get("classifier:latest")
    assert latest.read_bytes("model.ckpt") == Path(mc.dirpath, "last.ckpt").read_bytes()
    assert latest.metadata["epoch"] == 2 and latest.metadata["global_step"] == 12
    assert latest.metadata["monitor"] == "val_loss" and latest.metadata["mode"] == "min"
    assert latest.metadata["checkpoint"]["save_top_k"] == 2 and latest.metadata["checkpoint"]["save_last"] is True
    assert latest.type == "model" and [e.path for e in latest.files()] == ["model.ckpt"]

    run = file_store.runs(kind="lightning.fit")[0]
    assert run.status == "finished" and run.name == "TinyClassifier"
    assert run.config["hparams"]["lr"] == 0.3 and run.config["trainer"]["max_epochs"] == 3
    assert run.config["datamodule"] == {"seed": 0, "shift": 0.0}
    assert run.info["lightning"]["artifact"] == "classifier"
    # every write was logged (epoch 0 top-k, epoch 0 last, then shared bytes), evicted ones deleted
    assert {v.spec for v in run.outputs} >= {v.spec for v in live}
    deleted = [v for v in run.outputs if v.spec not in {x.spec for x in live}]
    assert deleted and all(v.deleted for v in deleted)


def test_log_all_keeps_evicted_checkpoints_marked(file_store, make_trainer, kit):
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store, log="all"), max_epochs=3, save_top_k=1, save_last=False)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())
    versions = file_store.versions("classifier")
    assert [v.metadata["epoch"] for v in versions] == [0, 1, 2]  # one file per epoch, all kept
    assert len(os.listdir(mc.dirpath)) == 1
    assert [bool(v.metadata.get("evicted")) for v in versions] == [True, True, False]
    assert file_store.get("classifier:best").metadata["filename"] == os.path.basename(mc.best_model_path)


def test_log_last_keeps_newest_and_best(file_store, make_trainer, kit):
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store, log="last"), max_epochs=3,
                               monitor="val_loss", mode="max", save_top_k=3, save_last=False)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())
    live = file_store.versions("classifier")
    best = file_store.get("classifier:best")
    assert best.metadata["filename"] == os.path.basename(mc.best_model_path) == "epoch=0-val_loss={:.4f}.ckpt".format(
        float(mc.best_model_score))  # mode="max": the worst loss is "best", and best respects mode
    assert {v.spec for v in live} == {best.spec, file_store.get("classifier:latest").spec}
    assert file_store.get("classifier:latest").metadata["epoch"] == 2


def test_manual_save_checkpoint_is_a_version(file_store, make_trainer, kit, tmp_path):
    class SaveAtEnd(__import__("pytorch_lightning").Callback):
        def on_train_end(self, trainer, pl_module):
            trainer.save_checkpoint(str(tmp_path / "manual.ckpt"))

    trainer, _ = make_trainer(SaveAtEnd(), PlaitCheckpoints("classifier", store=file_store), max_epochs=1, save_last=False)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())
    latest = file_store.get("classifier:latest")
    assert latest.metadata["kind"] == "manual" and latest.metadata["filename"] == "manual.ckpt"
    assert latest.read_bytes("model.ckpt") == (tmp_path / "manual.ckpt").read_bytes()


def test_fine_tune_from_best_links_the_two_fits(file_store, make_trainer, kit):
    with plait.run("pipeline", store=file_store) as outer:
        trainer, _ = make_trainer(PlaitCheckpoints("classifier"), max_epochs=2, dirname="first")
        trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())
        best = file_store.get("classifier:best")
        path = checkpoint_path("classifier:best")
        assert Path(path).read_bytes() == best.read_bytes("model.ckpt")
        trainer2, _ = make_trainer(PlaitCheckpoints("tuned"), max_epochs=3, dirname="second")
        trainer2.fit(kit.TinyClassifier(), datamodule=kit.TinyData(seed=1, shift=0.5), ckpt_path=path)

    first, second = sorted(file_store.runs(kind="lightning.fit"), key=lambda r: r.id)
    assert first.parent == second.parent == outer.id
    assert [v.spec for v in second.inputs] == [best.spec]
    assert second.summary["ckpt_path"] == [path] and second.summary["resumed_from"] == [best.spec]
    tuned = file_store.get("tuned:latest")
    assert tuned.metadata["epoch"] == 2  # resumed after the best epoch of the first fit
    graph = plait.lineage(tuned.spec, store=file_store)
    assert graph.to_json() and best.spec in graph.to_mermaid() and first.id in graph.to_json()


@pytest.mark.parametrize("scope", ["fit", "name"])
def test_a_fit_records_its_metrics_and_best_follows_the_newest_fit_unless_asked_otherwise(
        file_store, make_trainer, kit, scope):
    """Pre-train on easy data, fine-tune on a harder validation set: the fine-tune's losses are
    worse but are not comparable with the pre-training's, so by default its best is ``best``."""
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store, best=scope), max_epochs=3, dirname="pre")
    trainer.fit(kit.TinyClassifier(lr=0.5), datamodule=kit.TinyData())
    pretrained = file_store.get("classifier:best")
    trainer2, mc2 = make_trainer(PlaitCheckpoints("classifier", store=file_store, best=scope), max_epochs=6, dirname="fine")
    trainer2.fit(kit.TinyClassifier(lr=0.05), datamodule=kit.TinyData(seed=3, shift=1.5),
                 ckpt_path=checkpoint_path(pretrained.spec, store=file_store))

    pre, fine = sorted(file_store.runs(kind="lightning.fit"), key=lambda r: r.id)
    for run, callback in ((pre, mc), (fine, mc2)):
        assert set(run.summary["metrics"]) == {"val_loss", "val_acc"}
        best = run.summary["best"]
        assert (best["monitor"], best["mode"]) == ("val_loss", "min")
        assert best["score"] == pytest.approx(float(callback.best_model_score))
        assert best["metrics"]["val_loss"] == pytest.approx(best["score"])
        assert file_store.get(best["version"]).metadata["metrics"] == best["metrics"]
    assert fine.summary["best"]["score"] > pre.summary["best"]["score"]  # a harder validation set
    now = file_store.get("classifier:best")
    expected = fine.summary["best"]["version"] if scope == "fit" else pretrained.spec
    assert now.spec == expected


def test_resume_from_plain_path_links_the_stored_version(file_store, make_trainer, kit, tmp_path):
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=2)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())
    last = file_store.get("classifier:latest")
    resumed, _ = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=3)
    resumed.fit(kit.TinyClassifier(), datamodule=kit.TinyData(), ckpt_path=os.path.join(mc.dirpath, "last.ckpt"))

    second = max(file_store.runs(kind="lightning.fit"), key=lambda r: r.id)
    assert [v.spec for v in second.inputs] == [last.spec]
    assert file_store.get("classifier:latest").metadata["epoch"] == 2
    assert file_store.get("classifier:latest").created_by == second.id


def test_unknown_checkpoint_is_recorded_as_an_input(file_store, make_trainer, kit, tmp_path):
    trainer, mc = make_trainer(max_epochs=1, dirname="elsewhere", save_last=False)
    trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())  # no plait: the store never saw this file
    outside = mc.best_model_path
    resumed, _ = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=2)
    resumed.fit(kit.TinyClassifier(), datamodule=kit.TinyData(), ckpt_path=outside)
    run = file_store.runs(kind="lightning.fit")[0]
    (used,) = run.inputs
    assert used.type == "model" and used.created_by is None
    assert used.read_bytes("model.ckpt") == Path(outside).read_bytes()


@pytest.mark.parametrize("interrupt", [False, True], ids=["exception", "keyboard-interrupt"])
def test_interrupted_fit_keeps_checkpoints_and_fails_the_run(file_store, make_trainer, kit, interrupt):
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=4)
    model = kit.TinyClassifier(fail_at_epoch=2, interrupt=interrupt)
    with pytest.raises(SystemExit if interrupt else RuntimeError):
        trainer.fit(model, datamodule=kit.TinyData())
    run = file_store.runs(kind="lightning.fit")[0]
    assert run.status == "failed"
    assert run.error.startswith("KeyboardInterrupt" if interrupt else "RuntimeError: the GPU caught fire")
    assert sorted(v.metadata["epoch"] for v in file_store.versions("classifier")) == [0, 1]
    assert file_store.get("classifier:best").metadata["filename"] == os.path.basename(mc.best_model_path)
    assert plait.active_run() is None
    assert trainer.strategy.checkpoint_io.__class__.__name__ == "TorchCheckpointIO"  # unwrapped


def test_plait_errors_become_warnings_and_training_goes_on(tmp_path, make_trainer, kit):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    trainer, mc = make_trainer(PlaitCheckpoints("classifier", store=str(blocker / "store")), max_epochs=2, save_last=False)
    with pytest.warns(CheckpointLoggingWarning, match="could not start the plait run of this fit .*training goes on"):
        trainer.fit(kit.TinyClassifier(), datamodule=kit.TinyData())
    assert trainer.current_epoch == 2 and len(os.listdir(mc.dirpath)) == 2


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="log='everything' is not one of 'all', 'best', 'last'"):
        PlaitCheckpoints("classifier", log="everything")
    with pytest.raises(ValueError, match="best='ever' is not one of 'fit', 'name'"):
        PlaitCheckpoints("classifier", best="ever")
    with pytest.raises(plait.InvalidNameError):
        PlaitCheckpoints("no spaces please")
    with pytest.raises(plait.NotFoundError, match="no artifact named 'nothing'"):
        checkpoint_path("nothing:best", store=plait.Store("store"))


def test_checkpoint_path_refuses_versions_without_one_checkpoint(file_store, make_files):
    folder = make_files({"a.txt": "a", "b.txt": "b"})
    file_store.log(folder, name="notes")
    with pytest.raises(plait.SourceError, match="notes:v0 holds 2 files and 0 .ckpt files"):
        checkpoint_path("notes:v0", store=file_store)
