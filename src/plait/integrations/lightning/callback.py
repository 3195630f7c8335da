"""PlaitCheckpoints: the Lightning callback that makes ``trainer.fit`` a run and checkpoints versions.

How it hooks in (read from Lightning's source): ``Callback.on_save_checkpoint`` runs on every rank
and never sees a path, but ``trainer.strategy.checkpoint_io`` is called with the path of every
checkpoint write and delete, on global rank 0 only. So ``setup`` (after the datamodule's own setup)
starts a ``lightning.fit`` run on rank 0 and wraps ``checkpoint_io``; the wrapper logs each file
right after it is written. ``teardown`` ends the run; after an exception, ``on_exception`` keeps the
error and the strategy's teardown (which follows it) ends the run as failed. Other ranks do nothing.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import plait
from plait import Run, Store
from plait.integrations.lightning.compat import lightning
from plait.integrations.lightning.paths import link_checkpoint
from plait.integrations.lightning.recorder import BEST_SCOPES, LOG_MODES, CheckpointRecorder, _jsonable, metrics

_L = lightning()

KIND = "lightning.fit"

#: Trainer attributes recorded as the run's ``config["trainer"]``.
TRAINER_SETTINGS = ("max_epochs", "min_epochs", "max_steps", "min_steps", "accumulate_grad_batches", "gradient_clip_val",
                    "gradient_clip_algorithm", "precision", "num_devices", "num_nodes", "world_size", "val_check_interval",
                    "check_val_every_n_epoch", "limit_train_batches", "limit_val_batches", "log_every_n_steps")


class CheckpointLoggingWarning(plait.PlaitWarning):
    """Warned when plait could not record a checkpoint or the fit; training goes on."""


class PlaitCheckpoints(_L.Callback):  # type: ignore[misc,name-defined]
    """Record each ``trainer.fit`` as a ``lightning.fit`` run and each checkpoint file as a version.

    Add it beside ``ModelCheckpoint``; every file Lightning writes (top-k, ``last``, manual
    ``trainer.save_checkpoint``) becomes a version of ``name`` with its epoch, global step,
    monitored metric, the metrics logged so far and the ModelCheckpoint settings. ``latest``
    follows the newest version; ``best`` follows ModelCheckpoint's best file of the newest fit
    (``best="fit"``), or the best by the monitored metric across every fit of the name
    (``best="name"``). The run's summary holds the final metrics (``summary["metrics"]``) and the
    best checkpoint with the metrics logged with it (``summary["best"]``). Only global rank 0
    records anything.

    :param name: the model artifact's name (e.g. ``classifier``).
    :param log: what stays live: ``"best"`` (default; versions mirror the files ModelCheckpoint
        keeps), ``"all"`` (every file written, also evicted ones), ``"last"`` (the newest and the best).
    :param store: the store (default: the active run's, else the default store).
    :param run_name: the run's name (default: the LightningModule's class name).
    :param description: a description for each checkpoint version.
    :param best: which checkpoints ``best`` compares: ``"fit"`` (default; the newest fit's best) or
        ``"name"`` (every fit's checkpoints of the name, by the monitored metric).
    :raises InvalidNameError: for a name that is not allowed.
    :raises ValueError: for an unknown ``log`` or ``best``.
    """

    def __init__(self, name: str, *, log: str = "best", store: Store | str | None = None, run_name: str | None = None,
                 description: str = "", best: str = "fit") -> None:
        for option, value, allowed in (("log", log, LOG_MODES), ("best", best, BEST_SCOPES)):
            if value not in allowed:
                raise ValueError(f"{option}={value!r} is not one of {', '.join(map(repr, allowed))}: "
                                 + "; ".join(f"{k}: {v}" for k, v in allowed.items()))
        self.best_scope = best
        self.name = plait.Artifact(name, type="model").name  # checks the name now, not at the first checkpoint
        self.log_mode = log  # not self.log: Lightning sets callback.log to the module's log()
        self.run_name = plait.Artifact(run_name).name if run_name else None
        self.description = description
        self._store_url = store.url if isinstance(store, Store) else (os.fspath(store) if store is not None else None)
        outer = _explicit_run()
        # ddp_spawn pickles this object into new processes, where the active run is not set.
        self._outer = (outer.store.url, outer.id) if outer is not None else None
        self.run: Run | None = None
        self.recorder: CheckpointRecorder | None = None
        self._io: Any = None
        self._error: BaseException | None = None
        self._trainer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(run=None, recorder=None, _io=None, _error=None, _trainer=None)
        return state

    @property
    def state_key(self) -> str:
        """Tell several PlaitCheckpoints apart in a checkpoint's ``callbacks`` state."""
        return self._generate_state_key(name=self.name)

    # -- lifecycle ----------------------------------------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Start the ``lightning.fit`` run on global rank 0 and watch checkpoint writes."""
        if stage != "fit" or not trainer.is_global_zero or self.run is not None:
            return
        self._error = None
        try:
            self._start(trainer, pl_module)
        except Exception as exc:  # plait must never stop training
            self._warn("could not start the plait run of this fit", exc)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Record the tracked datasets the dataloaders hand to the model as inputs."""
        if self.run is None:
            return
        for loader in _loaders(trainer):
            self._use_datasets([getattr(loader, "dataset", None)])

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Keep the error; the run ends as failed once Lightning tore the strategy down."""
        if self.run is None:
            return
        self._error = exception
        if self._io is None:
            self._finish()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """End the run (finished) and put Lightning's own ``checkpoint_io`` back."""
        if stage == "fit" and self.run is not None:
            self._finish()

    # -- internals ----------------------------------------------------------------------------------

    def _start(self, trainer: Any, pl_module: Any) -> None:
        store, parent = self._target()
        config = {"hparams": _jsonable(dict(getattr(pl_module, "hparams", {}) or {})), "trainer": _trainer_settings(trainer)}
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and getattr(datamodule, "hparams", None):
            config["datamodule"] = _jsonable(dict(datamodule.hparams))
        info = {"lightning": {"package": _L.package, "version": _L.version, "model": plait.type_name(pl_module),
                              "artifact": self.name, "log": self.log_mode}}
        run = Run(store, self.run_name or type(pl_module).__name__, kind=KIND, config=config, parent=parent, info=info)
        run.__enter__()
        self.run = run
        self.recorder = CheckpointRecorder(run, self.name, self.log_mode, self.description, self.best_scope)
        self._trainer = trainer
        self._io = _wrap_checkpoint_io(trainer, self)
        if datamodule is not None:
            self._use_datasets(list(vars(datamodule).values()))

    def _target(self) -> tuple[Store, str | None]:
        outer = _explicit_run()
        if self._store_url is None and outer is not None:
            return outer.store, outer.id
        url = self._store_url or (self._outer[0] if self._outer else None)
        store = plait.current_store(url)
        if outer is not None and outer.store == store:
            return store, outer.id
        return store, self._outer[1] if self._outer and self._outer[0] == store.url else None

    def _use_datasets(self, objects: list[Any]) -> None:
        """Record each Hugging Face dataset among ``objects`` as an input (the HF plugin converts it)."""
        assert self.run is not None
        for obj in objects:
            while obj is not None and not _is_hf_dataset(obj) and hasattr(obj, "dataset"):
                obj = obj.dataset  # Subset, wrappers
            if obj is None or not _is_hf_dataset(obj):
                continue
            try:
                self.run.use(obj)
            except plait.ConversionError:
                continue  # no plugin for it (plait[huggingface] not installed): nothing to link
            except Exception as exc:
                self._warn(f"could not record the dataset {type(obj).__name__} as an input", exc)

    def _loaded(self, path: Any) -> None:
        """Record the checkpoint the fit resumes or fine-tunes from (Lightning reads it after ``setup``)."""
        if self.run is None:
            return
        try:
            version = link_checkpoint(self.run, path)
            self.run.summary.setdefault("ckpt_path", []).append(os.fspath(path))
            if version is not None:
                self.run.summary.setdefault("resumed_from", []).append(version.spec)
        except Exception as exc:
            self._warn(f"could not record the checkpoint {path} this fit starts from", exc)

    def _saved(self, path: Any, checkpoint: Any, trainer: Any) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.saved(os.fspath(path), checkpoint, trainer)
        except Exception as exc:
            self._warn(f"could not log the checkpoint {path}", exc)

    def _removed(self, path: Any) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.removed(os.fspath(path))
        except Exception as exc:
            self._warn(f"could not record the removal of {path}", exc)

    def _finish(self) -> None:
        run, error, recorder, trainer = self.run, self._error, self.recorder, self._trainer
        if run is not None and recorder is not None and trainer is not None:
            try:
                run.summary["metrics"] = metrics(trainer)
                best = recorder.best_summary(trainer)
                if best is not None:
                    run.summary["best"] = best
            except Exception as exc:
                self._warn("could not record the metrics of this fit", exc)
        self.run, self.recorder, self._error, self._trainer = None, None, None, None
        io, self._io = self._io, None
        if io is not None:
            io.unwrap()
        if run is None:
            return
        try:
            if run.status == "running":
                run.__exit__(type(error) if error else None, error, None)
        except ValueError:  # the context that set the active run is gone; still finish the run
            run.finish(error)
        except Exception as exc:
            self._warn("could not record the end of this fit", exc)

    @staticmethod
    def _warn(what: str, exc: BaseException) -> None:
        warnings.warn(f"plait: {what} ({type(exc).__name__}: {exc}); training goes on", CheckpointLoggingWarning, stacklevel=3)


class _PlaitCheckpointIO(_L.CheckpointIO):  # type: ignore[misc,name-defined]
    """Lightning's CheckpointIO, unchanged, telling PlaitCheckpoints about every write and delete."""

    def __init__(self, strategy: Any, inner: Any, callback: PlaitCheckpoints) -> None:
        super().__init__()
        self.strategy, self.inner, self.callback = strategy, inner, callback
        self.trainer: Any = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Write the checkpoint with Lightning's CheckpointIO, then log the file."""
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)
        self.callback._saved(path, checkpoint, self.trainer)

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Read a checkpoint with Lightning's CheckpointIO, then record it as an input of the fit."""
        checkpoint = self.inner.load_checkpoint(path, *args, **kwargs)
        self.callback._loaded(path)
        return checkpoint

    def remove_checkpoint(self, path: Any) -> None:
        """Record the removal, then let Lightning's CheckpointIO delete the file."""
        self.callback._removed(path)
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        """Tear Lightning's CheckpointIO down; after an exception, end the failed run here."""
        self.inner.teardown()
        if self.callback._error is not None:
            self.callback._finish()

    def unwrap(self) -> None:
        """Put Lightning's own CheckpointIO back on the strategy."""
        if self.strategy.checkpoint_io is self:
            self.strategy.checkpoint_io = self.inner

    def __getattr__(self, name: str) -> Any:  # AsyncCheckpointIO and friends expose more
        if name in ("inner", "strategy", "callback", "trainer"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def _wrap_checkpoint_io(trainer: Any, callback: PlaitCheckpoints) -> _PlaitCheckpointIO:
    strategy = trainer.strategy
    io = _PlaitCheckpointIO(strategy, strategy.checkpoint_io, callback)
    io.trainer = trainer
    strategy.checkpoint_io = io
    return io


def _trainer_settings(trainer: Any) -> dict[str, Any]:
    settings = {k: _jsonable(getattr(trainer, k, None)) for k in TRAINER_SETTINGS}
    settings["strategy"] = type(trainer.strategy).__name__
    settings["accelerator"] = type(trainer.accelerator).__name__
    return settings


def _loaders(trainer: Any) -> list[Any]:
    loaders: list[Any] = []
    for attr in ("train_dataloader", "val_dataloaders"):
        value = getattr(trainer, attr, None)
        if value is None:
            continue
        if isinstance(value, dict):
            loaders.extend(value.values())
        elif isinstance(value, (list, tuple)):
            loaders.extend(value)
        else:
            loaders.append(getattr(value, "iterables", value) if not hasattr(value, "dataset") else value)
    return loaders


def _explicit_run() -> Run | None:
    """The run a fit runs inside: the active run, unless it is the implicit run (which has no children)."""
    run = plait.active_run()
    return None if run is None or run.implicit else run


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and type(obj).__name__ in ("Dataset", "DatasetDict", "IterableDataset")



__all__ = ["CheckpointLoggingWarning", "PlaitCheckpoints"]
