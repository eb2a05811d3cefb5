"""Keras 3 with trackd (torch backend): a tiny regression fitted on CPU, logged as one run.

    pip install -e '.[dev]'         # or: pip install trackd keras torch
    KERAS_BACKEND=torch python examples/integrations/keras_example.py

Offline unless ``TRACKD_BASE_URL``/``TRACKD_API_KEY`` point at a server (``trackd login``).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from trackd.integrations.keras import TrackdCallback  # noqa: E402


def main() -> None:
    x = np.random.default_rng(0).random((256, 3), dtype=np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)],
        name="regression",
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    callback = TrackdCallback(project="keras-example", log_freq=4)
    model.fit(x, y, batch_size=16, epochs=5, validation_split=0.2, callbacks=[callback])
    print(f"run {callback.run.id}: {callback.run.dir}")


if __name__ == "__main__":
    main()
