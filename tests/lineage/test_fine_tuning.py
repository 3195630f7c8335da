"""Twenty stages of fine-tuning with three branches each, a backtrack that reverts to earlier
weights, then a real Lightning pre-training and fine-tune configured by the search's result:
every model's lineage is exactly the path it was made on, and ``best`` follows the newest fit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")
sys.path.insert(0, str(Path(__file__).parents[1] / "integrations" / "lightning"))

import plait_lightning_kit as kit
from plait_pipelines import down, labels, specs, up

import plait
from plait.integrations.lightning import PlaitCheckpoints, checkpoint_path

pytestmark = [pytest.mark.filterwarnings(spec) for spec in kit.LIGHTNING_NOISE]

STAGES, BRANCHES, BACKTRACK_STAGE, BACKTRACK_TO = 20, 3, 12, 9


def search(store: plait.Store) -> list[str]:
    """Return the adapter chosen at each stage. Stage 12 backtracks to stage 9's adapter, and its
    first branch diverges, so it keeps stage 9's weights: a revert, not a new version."""
    with plait.run("download", store=store) as run:
        corpus = run.log(b"a large corpus", name="corpus", type="dataset")
        start = run.log(b"adapter weights 0", name="adapter", type="model").spec
    chosen: list[str] = []
    for stage in range(STAGES):
        if stage == BACKTRACK_STAGE:
            start = chosen[BACKTRACK_TO]
        tried = []
        for branch in range(BRANCHES):
            with plait.run(f"stage-{stage:02d}", store=store, config={"branch": branch}) as run:
                run.use(corpus)
                before = run.use(start)
                diverged = stage == BACKTRACK_STAGE and branch == 0
                weights = before.read_bytes(before.files()[0].path) if diverged else f"adapter {stage}.{branch}".encode()
                tried.append(run.log(weights, name="adapter", type="model").spec)
        start = tried[stage % BRANCHES]
        chosen.append(start)
    return chosen


def test_twenty_stages_then_a_real_fine_tune(store, tmp_path):
    chosen = search(store)
    names = labels(store)
    adapters = store.versions("adapter")
    assert len(adapters) == 1 + STAGES * BRANCHES - 1 == len({v.digest for v in adapters})  # the revert made none
    reverted = store.get(chosen[BACKTRACK_TO])
    assert sorted(names[r.id] for r in reverted.producers) == [f"stage-{BACKTRACK_TO:02d}#{BACKTRACK_TO % BRANCHES + 1}",
                                                                f"stage-{BACKTRACK_STAGE:02d}#1"]

    # the final adapter's path: stages 0..9, then 13..19; stage 12 kept stage 9's weights (it handed
    # them on, it did not make them) and stages 10 and 11 were backtracked over
    path = [*range(BACKTRACK_TO + 1), *range(BACKTRACK_STAGE + 1, STAGES)]
    assert chosen[BACKTRACK_STAGE] == chosen[BACKTRACK_TO]
    assert up(store, chosen[-1]) == ({"corpus:v0", "adapter:v0", *(chosen[s] for s in path)},
                                     {"download#1", *(f"stage-{s:02d}#{s % BRANCHES + 1}" for s in path)})
    assert names[reverted.produced_by.id] == f"stage-{BACKTRACK_TO:02d}#{BACKTRACK_TO % BRANCHES + 1}"
    versions, runs = up(store, chosen[-1], producers="all")
    assert f"stage-{BACKTRACK_STAGE:02d}#1" in runs and chosen[10] not in versions

    make = kit.make_trainer_in(tmp_path)
    with plait.run("pretrain", store=store) as job:
        job.use(chosen[-1])  # the searched adapter configures the classifier
        trainer, mc = make(PlaitCheckpoints("classifier"), max_epochs=3, dirname="pre")
        trainer.fit(kit.TinyClassifier(lr=0.5), datamodule=kit.TinyData())
    pretrained = store.get("classifier:best")
    with plait.run("finetune", store=store) as job:
        trainer, fine_mc = make(PlaitCheckpoints("classifier"), max_epochs=6, dirname="fine")
        trainer.fit(kit.TinyClassifier(lr=0.05), datamodule=kit.TinyData(seed=3, shift=1.5),
                    ckpt_path=checkpoint_path(pretrained.spec))

    names = labels(store)
    pre_fit, fine_fit = sorted(store.runs(kind="lightning.fit"), key=lambda r: r.id)
    best = store.get("classifier:best")
    assert best.spec == fine_fit.summary["best"]["version"] != pretrained.spec  # best of the newest fit
    assert fine_fit.summary["best"]["score"] == pytest.approx(float(fine_mc.best_model_score))
    assert set(pre_fit.summary["metrics"]) == set(fine_fit.summary["metrics"]) == {"val_loss", "val_acc"}

    versions, runs = up(store, best.spec)
    assert {best.spec, pretrained.spec, chosen[-1], "corpus:v0"} <= versions and chosen[10] not in versions
    assert {"TinyClassifier#1", "TinyClassifier#2", "pretrain#1", "finetune#1"} <= runs
    assert specs(store.get_run(fine_fit.id).inputs) == [pretrained.spec]

    # downstream of the searched adapter: the fit inside "pretrain" and its checkpoints, then the fine-tune
    versions, runs = down(store, chosen[-1])
    assert {pretrained.spec, best.spec} <= versions and {"pretrain#1", "TinyClassifier#1", "TinyClassifier#2"} <= runs
    tree = store.lineage(chosen[-1], direction="downstream").to_tree()
    assert "TinyClassifier [lightning.fit, finished]" in tree and pretrained.spec in tree and best.spec in tree
