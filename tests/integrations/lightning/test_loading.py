"""Loading a model never runs code a writer of the store put in it, unless the user trusts the store.

A checkpoint is a pickle: ``torch.load(..., weights_only=False)`` runs whatever its ``__reduce__``
says. plait loads weights only; a file that needs more is refused with one error saying how to
opt in (``trusted=True``, or the store listed in the user's own settings file).
"""

from __future__ import annotations

import io
import os

import pytest
import torch

import plait


class Payload:
    """What a hostile writer pickles into a checkpoint: loading it creates a folder (any code would do)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


class Note:
    """A harmless object a trusting user may keep in a checkpoint (weights-only loading refuses it)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _log_checkpoint(store: plait.Store, name: str, body: dict, entry: str = "model.ckpt") -> plait.ArtifactVersion:
    buffer = io.BytesIO()
    torch.save(body, buffer)
    return store.log(plait.Artifact(name, type="model").add_bytes(buffer.getvalue(), entry))


@pytest.mark.parametrize("entry", ["model.ckpt", "model.pt"])
def test_a_pickled_payload_never_runs_when_loading_a_model(file_store, make_trainer, kit, tmp_path, entry):
    marker = tmp_path / "pwned"
    _log_checkpoint(file_store, "classifier", {"state_dict": {}, "hyper_parameters": {}, "evil": Payload(str(marker))}, entry)
    with pytest.raises(plait.ConversionError, match="holds more than weights .*trusted=True.*\\[load\\] trusted"):
        plait.load("classifier:latest", dict, store=file_store)
    if entry == "model.ckpt":
        with pytest.raises(plait.ConversionError, match="holds more than weights"):
            plait.load("classifier:latest", kit.TinyClassifier, store=file_store)
    assert not marker.exists()
    assert file_store.get("classifier").used_by == []  # a refused load uses nothing


def test_a_real_checkpoint_loads_weights_only(file_store, make_trainer, kit):
    from plait.integrations.lightning import PlaitCheckpoints

    trainer, _ = make_trainer(PlaitCheckpoints("classifier", store=file_store), max_epochs=1)
    trainer.fit(kit.TinyClassifier(lr=0.3), datamodule=kit.TinyData())
    model = plait.load("classifier:best", kit.TinyClassifier, store=file_store)
    assert isinstance(model, kit.TinyClassifier) and model.hparams.lr == 0.3
    assert set(plait.load("classifier:best", dict, store=file_store)) == set(model.state_dict())


def test_the_user_may_trust_a_store_by_argument_or_in_their_own_settings(file_store, tmp_path, monkeypatch):
    _log_checkpoint(file_store, "noted", {"state_dict": {"w": torch.ones(2)}, "note": Note("mine")}, "model.pt")
    with pytest.raises(plait.ConversionError, match="holds more than weights"):
        plait.load("noted", dict, store=file_store)
    assert plait.load("noted", dict, store=file_store, trusted=True)["note"].text == "mine"

    settings = tmp_path / "config.toml"
    monkeypatch.setenv("PLAIT_CONFIG", str(settings))
    settings.write_text(f'[load]\ntrusted = ["{tmp_path / "elsewhere"}"]\n')
    with pytest.raises(plait.ConversionError):
        plait.load("noted", dict, store=file_store)
    settings.write_text(f'[load]\ntrusted = ["{file_store.url}"]\n')
    assert plait.load("noted", dict, store=file_store)["note"].text == "mine"
    settings.write_text("[load]\ntrusted = [unquoted\n")
    with pytest.raises(plait.InvalidInputError, match=f"the settings file {settings} is not valid TOML: .*line 2"):
        plait.load("noted", dict, store=file_store)
