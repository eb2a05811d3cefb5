"""The Keras 3 callback, end to end: ``model.fit`` (torch backend, CPU) trains a tiny model
for a few batches with ``TrackdCallback``; the test reads back from a real server what
landed."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: no TensorFlow here
keras = pytest.importorskip("keras", reason="keras is not installed (pip install -e '.[dev]')")

from trackd.integrations.keras import SUMMARY_FILE, TrackdCallback  # noqa: E402

from tests.e2e.conftest import Remote  # noqa: E402
from tests.integrations.conftest import files, wait_for  # noqa: E402

BATCHES = 3  # per epoch
EPOCHS = 2


def _model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="relu", name="hidden"),
         keras.layers.Dense(1, name="out")],
        name="tiny",
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", metrics=["mae"])
    return model


def test_a_fit_lands_with_batch_and_epoch_metrics_and_the_model_summary(
    online: Any, remote: Remote
) -> None:
    x = np.linspace(0, 1, BATCHES * 8 * 3, dtype="float32").reshape(-1, 3)
    y = x.sum(axis=1, keepdims=True)
    callback = TrackdCallback(project="keras")
    history = _model().fit(
        x, y, batch_size=8, epochs=EPOCHS, validation_data=(x[:8], y[:8]), verbose=0,
        callbacks=[callback],
    )  # fmt: skip
    run_id = callback.run.id
    doc = remote.run("keras", run_id)
    assert doc is not None and doc["state"] == "finished"
    config = doc["config"]
    assert config["model/name"] == "tiny" and config["model/num_parameters"] == 21
    assert [layer["name"] for layer in config["model/layers"]] == ["hidden", "out"]
    assert config["fit/epochs"] == EPOCHS
    rows = remote.history("keras", run_id)
    total = BATCHES * EPOCHS
    assert [r["_step"] for r in rows] == list(range(1, total + 1))
    assert [r["batch/batch_step"] for r in rows] == list(range(1, total + 1))
    assert all("batch/loss" in r and "batch/mae" in r for r in rows)
    epoch_rows = [r for r in rows if "epoch/epoch" in r]
    assert [r["_step"] for r in epoch_rows] == [BATCHES * (e + 1) for e in range(EPOCHS)]
    assert [r["epoch/epoch"] for r in epoch_rows] == list(range(EPOCHS))
    # the epoch metrics are exactly what keras reported
    assert [r["epoch/val_loss"] for r in epoch_rows] == [
        float(v) for v in history.history["val_loss"]
    ]
    assert epoch_rows[0]["epoch/learning_rate"] == pytest.approx(0.01)
    assert wait_for(lambda: files(remote, "keras", run_id)) == [SUMMARY_FILE]
    text = remote._client.get(f"/runs/admin/keras/{run_id}/files/{SUMMARY_FILE}").text
    assert "hidden (Dense)" in text and "Trainable params: 21" in text


def test_batch_logging_follows_log_freq(online: Any, remote: Remote) -> None:
    x = np.ones((BATCHES * 8, 3), dtype="float32")
    callback = TrackdCallback(project="keras", log_freq=2)
    _model().fit(x, x[:, :1], batch_size=8, epochs=EPOCHS, verbose=0, callbacks=[callback])
    rows = remote.history("keras", callback.run.id)
    batch_steps = [r["_step"] for r in rows if "batch/loss" in r]
    assert batch_steps == [2, 4, 6]
    assert [r["_step"] for r in rows if "epoch/loss" in r] == [3, 6]
