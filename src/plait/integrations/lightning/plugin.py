"""The lightning plugin: registered through the "plait" entry-point group; imports cleanly without lightning.

* ``plait_object_to_artifact``: a ``torch.nn.Module`` (a LightningModule too) becomes a ``model``
  artifact holding its ``state_dict`` as ``model.pt`` (so a Prefect task returning a module logs it).
* ``plait_artifact_to_object``: a checkpoint version loads as a LightningModule subclass
  (``plait.load("classifier:best", MyModule)``), any model version as ``dict`` (its state dict);
  weights only, unless the store is trusted (a full unpickle can run its writer's code).

torch is never imported here: an object can only be a torch module if torch is already loaded.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import Any

import plait
from plait import Artifact, hookimpl

STATE_DICT_ENTRY = "model.pt"


def _is_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


@hookimpl
def plait_object_to_artifact(obj: Any, name: str | None, type: str | None, store: Any) -> Artifact | None:
    """Turn a ``torch.nn.Module`` into a ``model`` draft holding its state dict (``model.pt``)."""
    if not _is_module(obj):
        return None
    import torch

    from plait.integrations.lightning.recorder import _jsonable

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in obj.state_dict().items()}, buffer)  # same weights, same bytes
    cls = plait.type_name(obj)
    metadata: dict[str, Any] = {"class": cls, "parameters": sum(p.numel() for p in obj.parameters())}
    hparams = getattr(obj, "hparams", None)
    if hparams:
        metadata["hparams"] = _jsonable(dict(hparams))
    draft = Artifact(name or type_to_name(obj), type=type or "model", metadata=metadata)
    return draft.add_bytes(buffer.getvalue(), STATE_DICT_ENTRY)


@hookimpl
def plait_artifact_to_object(version: Any, as_type: Any, trusted: bool) -> Any:
    """Load a model version as a LightningModule subclass (from its checkpoint) or as a state ``dict``.

    Weights only (``weights_only=True``): a checkpoint is unpickled in full, which can run code
    its writer put there, only when the store is ``trusted``.
    """
    if version.type != "model" or as_type is None:
        return None
    paths = [e.path for e in version.files()]
    if isinstance(as_type, type) and hasattr(as_type, "load_from_checkpoint") and _is_lightning_class(as_type):
        from plait.integrations.lightning.paths import checkpoint_entry

        entry = checkpoint_entry(version)
        path = os.path.join(version.download(paths=[entry]), *entry.split("/"))
        with _weights_only_errors(version, entry, trusted):
            return as_type.load_from_checkpoint(path, map_location="cpu", weights_only=not trusted)
    if as_type in (dict, "state_dict") and (STATE_DICT_ENTRY in paths or any(p.endswith(".ckpt") for p in paths)):
        import torch

        entry = STATE_DICT_ENTRY if STATE_DICT_ENTRY in paths else next(p for p in paths if p.endswith(".ckpt"))
        with version.open(entry) as f, _weights_only_errors(version, entry, trusted):
            data = torch.load(f, map_location="cpu", weights_only=not trusted)
        return data.get("state_dict", data) if entry != STATE_DICT_ENTRY and isinstance(data, dict) else data
    return None


@contextlib.contextmanager
def _weights_only_errors(version: Any, entry: str, trusted: bool) -> Iterator[None]:
    """Turn torch's refusal to unpickle more than weights into one clear error saying how to opt in."""
    import pickle

    try:
        yield
    except pickle.UnpicklingError as exc:
        if trusted:
            raise
        detail = str(exc).strip().splitlines()
        found = next((line.strip() for line in detail if "GLOBAL" in line or "Unsupported" in line), detail[0] if detail else "")
        raise plait.ConversionError(
            f"{version.spec}/{entry} holds more than weights ({found[:200]}); loading it would run code its writer "
            "put there. Only if you trust every writer of this store: plait.load(..., trusted=True), or list the "
            "store under [load] trusted in your settings file (~/.config/plait/config.toml)"
        ) from None


def _is_lightning_class(cls: type) -> bool:
    return any(plait.type_name(c).endswith("core.module.LightningModule") for c in cls.__mro__)


def type_to_name(obj: Any) -> str:
    """Name a module's artifact after its class, lower-cased (``TinyClassifier`` -> ``tinyclassifier``)."""
    return plait.safe_name(type(obj).__name__.lower(), "model")
