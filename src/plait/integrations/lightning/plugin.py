"""The lightning plugin: registered through the "plait" entry-point group; imports cleanly without lightning.

* ``plait_object_to_artifact``: a ``torch.nn.Module`` (a LightningModule too) becomes a ``model``
  artifact holding its ``state_dict`` as ``model.pt`` (so a Prefect task returning a module logs it).
* ``plait_artifact_to_object``: a checkpoint version loads as a LightningModule subclass
  (``plait.load("classifier:best", MyModule)``), any model version as ``dict`` (its state dict).

torch is never imported here: an object can only be a torch module if torch is already loaded.
"""

from __future__ import annotations

import io
import os
import sys
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
def plait_artifact_to_object(version: Any, as_type: Any) -> Any:
    """Load a model version as a LightningModule subclass (from its checkpoint) or as a state ``dict``."""
    if version.type != "model" or as_type is None:
        return None
    paths = [e.path for e in version.files()]
    if isinstance(as_type, type) and hasattr(as_type, "load_from_checkpoint") and _is_lightning_class(as_type):
        from plait.integrations.lightning.paths import checkpoint_entry

        entry = checkpoint_entry(version)
        path = os.path.join(version.download(paths=[entry]), *entry.split("/"))
        return as_type.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    if as_type in (dict, "state_dict") and (STATE_DICT_ENTRY in paths or any(p.endswith(".ckpt") for p in paths)):
        import torch

        entry = STATE_DICT_ENTRY if STATE_DICT_ENTRY in paths else next(p for p in paths if p.endswith(".ckpt"))
        with version.open(entry) as f:
            data = torch.load(f, map_location="cpu", weights_only=False)
        return data.get("state_dict", data) if entry != STATE_DICT_ENTRY else data
    return None


def _is_lightning_class(cls: type) -> bool:
    return any(plait.type_name(c).endswith("core.module.LightningModule") for c in cls.__mro__)


def type_to_name(obj: Any) -> str:
    """Name a module's artifact after its class, lower-cased (``TinyClassifier`` -> ``tinyclassifier``)."""
    return plait.safe_name(type(obj).__name__.lower(), "model")
