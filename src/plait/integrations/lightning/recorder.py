"""CheckpointRecorder: each checkpoint file Lightning writes becomes a version; deletions follow.

It is called by the wrapped ``CheckpointIO`` right after a file is written and right before one
is removed, which Lightning does on global rank 0 only. It needs no torch or Lightning import:
the trainer and its ``ModelCheckpoint`` callbacks are read through their attributes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plait import Artifact, PlaitError
from plait.integrations.lightning.paths import CHECKPOINT_ENTRY

if TYPE_CHECKING:
    from plait import ArtifactVersion, Run

#: What ``log=`` accepts, and what each keeps live.
LOG_MODES = {
    "all": "every checkpoint file written stays a version, also those Lightning deletes later",
    "best": "the live versions mirror the files ModelCheckpoint keeps: evicted or overwritten ones are deleted",
    "last": "only the newest checkpoint (and the one 'best' points at) stays live",
}

#: The ModelCheckpoint settings recorded with each version.
SETTINGS = ("monitor", "mode", "save_top_k", "save_last", "save_weights_only", "every_n_epochs",
            "every_n_train_steps", "train_time_interval", "save_on_train_epoch_end", "filename", "dirpath")

BEST = "best"
#: What ``best=`` accepts: which checkpoints the ``best`` alias compares.
BEST_SCOPES = {
    "fit": "the best checkpoint of the newest fit (a fine-tune on other data does not compete with the pre-training)",
    "name": "the best checkpoint of every fit of the name, by the monitored metric",
}


class CheckpointRecorder:
    """Log checkpoint files of one fit as versions of one artifact, and keep ``best`` on the best.

    :param run: the fit's run; versions are its outputs.
    :param name: the model artifact's name.
    :param log: ``all``, ``best`` or ``last`` (see :data:`LOG_MODES`).
    :param description: the description given to each version.
    :param best: ``fit`` or ``name`` (see :data:`BEST_SCOPES`).
    """

    def __init__(self, run: Run, name: str, log: str, description: str = "", best: str = "fit") -> None:
        self.run = run
        self.name = name
        self.mode = log
        self.description = description
        self.best_scope = best
        self._by_path: dict[str, ArtifactVersion | None] = {}  # realpath -> version of its current bytes
        self.logged: list[ArtifactVersion] = []

    # -- writes -------------------------------------------------------------------------------------

    def saved(self, path: str, checkpoint: Mapping[str, Any], trainer: Any) -> ArtifactVersion | None:
        """Log the file just written at ``path`` as a version; return it (``None`` if not local).

        :param checkpoint: the dict Lightning wrote (for ``epoch`` and ``global_step``).
        :param trainer: the trainer (for its ``ModelCheckpoint`` callbacks and metrics).
        """
        real = _local(path)
        if real is None:
            return None
        role, callback = _role(real, trainer)
        metadata = {
            "epoch": _number(checkpoint.get("epoch", getattr(trainer, "current_epoch", None))),
            "global_step": _number(checkpoint.get("global_step", getattr(trainer, "global_step", None))),
            "kind": role, "filename": os.path.basename(real), "path": real,
            **_monitored(real, role, callback, trainer), "metrics": metrics(trainer),
        }
        if callback is not None:
            metadata["checkpoint"] = {k: _jsonable(getattr(callback, k, None)) for k in SETTINGS}
        draft = Artifact(self.name, type="model", description=self.description, metadata=metadata)
        version = self.run.log(draft.add_file(real, name=CHECKPOINT_ENTRY))
        previous = self._by_path.get(real)
        self._by_path[real] = version
        if all(v.spec != version.spec for v in self.logged):
            self.logged.append(version)
        version = self._update_best(trainer, version)
        if self.mode != "all" and previous is not None and previous.spec != version.spec:
            self._retire(previous)  # the file was overwritten in place (last.ckpt)
        if self.mode == "last":
            for old in [v for v in self.logged if v.spec != version.spec]:
                self._retire(old, even_on_disk=True)
        return version

    def removed(self, path: str) -> None:
        """Record that Lightning is about to delete the file at ``path``.

        With ``log="all"`` the version stays and is marked ``evicted``; otherwise it is deleted,
        unless another live file has the same bytes or someone put an alias on it.
        """
        real = _local(path)
        if real is None:
            return
        version = self._by_path.pop(real, None) if real in self._by_path else self._find_by_path(real)
        if version is None:
            return
        if self.mode == "all":
            version.update(metadata={"evicted": True})
        else:
            self._retire(version)

    # -- helpers ------------------------------------------------------------------------------------

    def _retire(self, version: ArtifactVersion, *, even_on_disk: bool = False) -> None:
        if not even_on_disk and any(v is not None and v.spec == version.spec for v in self._by_path.values()):
            return  # another checkpoint file still holds these bytes
        if any(r.id != self.run.id for r in version.producers):
            return  # another fit made the same bytes: it is that fit's checkpoint too
        try:
            version.delete()
        except PlaitError:
            return  # an alias (best, or one a person set) keeps it; already deleted is fine too
        self.logged = [v for v in self.logged if v.spec != version.spec]

    def best_summary(self, trainer: Any) -> dict[str, Any] | None:
        """Return this fit's best checkpoint as ModelCheckpoint judged it: metric, score, version and
        the metrics logged when it was written; ``None`` without a monitored metric or a best file."""
        callback = _monitoring_callback(trainer)
        best_path = _local(getattr(callback, "best_model_path", "") or "") if callback is not None else None
        version = self._by_path.get(best_path) if best_path else None
        if version is None:
            version = next((v for v in self.logged if v.metadata.get("path") == best_path), None)
        if callback is None or version is None:
            return None
        return {"monitor": callback.monitor, "mode": callback.mode, "score": _number(callback.best_model_score),
                "version": version.spec, "epoch": version.metadata.get("epoch"),
                "metrics": dict(version.metadata.get("metrics") or {})}

    def _find_by_path(self, real: str) -> ArtifactVersion | None:
        """The newest live version of a file written by an earlier fit (resumed into the same folder)."""
        try:
            versions = self.run.store.versions(self.name)
        except PlaitError:
            return None
        for version in reversed(versions):
            if version.metadata.get("path") == real:
                return version
        return None

    def _update_best(self, trainer: Any, version: ArtifactVersion) -> ArtifactVersion:
        """Point ``best`` at ModelCheckpoint's best file: always when ``best`` is on another fit's
        checkpoint and the scope is ``fit``; with ``name``, only if it beats the current ``best``."""
        callback = _monitoring_callback(trainer)
        best_path = _local(getattr(callback, "best_model_path", "") or "") if callback is not None else None
        target = self._by_path.get(best_path) if best_path else None
        if target is None:
            return version
        target = target.refresh()
        if BEST in target.aliases:
            return version.refresh()
        current = _alias_target(self.run, self.name)
        mine = current is not None and any(current.spec == v.spec for v in self.logged)
        if current is not None and not mine and self.best_scope == "name" and not _better(target, current, callback.mode):
            return version
        target.set_alias(BEST)
        return version.refresh()


def metrics(trainer: Any) -> dict[str, Any]:
    """Return the scalar metrics the trainer last logged (``logged_metrics`` then ``callback_metrics``)."""
    out: dict[str, Any] = {}
    for source in ("logged_metrics", "callback_metrics"):
        for key, value in (getattr(trainer, source, None) or {}).items():
            if getattr(value, "ndim", 0) == 0:
                number = _number(value)
                if isinstance(number, (int, float)) and not isinstance(number, bool):
                    out[str(key)] = number
    return dict(sorted(out.items()))


def _alias_target(run: Run, name: str) -> ArtifactVersion | None:
    try:
        return run.store.get(f"{name}:{BEST}")
    except PlaitError:
        return None


def _better(new: ArtifactVersion, old: ArtifactVersion, mode: str) -> bool:
    """Whether ``new`` beats ``old`` by the monitored metric; a ``best`` on another metric is replaced."""
    a, b = new.metadata.get("score"), old.metadata.get("score")
    if old.metadata.get("monitor") != new.metadata.get("monitor") or b is None:
        return True
    if a is None:
        return False
    return a > b if mode == "max" else a < b


def _local(path: Any) -> str | None:
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        return None
    return os.path.realpath(text.removeprefix("file://"))


def _checkpoint_callbacks(trainer: Any) -> list[Any]:
    return [c for c in getattr(trainer, "checkpoint_callbacks", []) if hasattr(c, "best_k_models")]


def _monitoring_callback(trainer: Any) -> Any:
    return next((c for c in _checkpoint_callbacks(trainer) if getattr(c, "monitor", None)), None)


def _role(real: str, trainer: Any) -> tuple[str, Any]:
    """Say why the file was written: ``top_k``, ``last`` or ``manual``, and by which callback."""
    for callback in _checkpoint_callbacks(trainer):
        if real in {_local(p) for p in callback.best_k_models} or (
            not callback.monitor and _local(callback.best_model_path or "") == real
        ):
            return "top_k", callback
        if callback.last_model_path and _local(callback.last_model_path) == real:
            return "last", callback
    return "manual", _monitoring_callback(trainer)


def _monitored(real: str, role: str, callback: Any, trainer: Any) -> dict[str, Any]:
    if callback is None or not callback.monitor:
        return {"monitor": None, "score": None}
    value = None
    if role == "top_k":
        value = next((v for p, v in callback.best_k_models.items() if _local(p) == real), None)
    if value is None:
        value = getattr(trainer, "callback_metrics", {}).get(callback.monitor)
    return {"monitor": callback.monitor, "mode": callback.mode, "score": _number(value)}


def _number(value: Any) -> Any:
    """A tensor or number as a JSON number; NaN and infinities (not JSON) as ``None``."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (int, float)) else _jsonable(value)


def _jsonable(value: Any) -> Any:
    """Turn hyperparameters and settings into JSON: containers kept, scalars kept, the rest ``repr``'d."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return repr(value)[:1000]
