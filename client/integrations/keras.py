"""Keras 3: a callback that records ``model.fit`` as a trackd run.

Example::

    from trackd.integrations.keras import TrackdCallback

    model.fit(x, y, epochs=5, validation_split=0.2,
              callbacks=[TrackdCallback(project="mnist")])

Rows go at the count of batches trained (``batch/batch_step``): each batch's metrics as
``batch/<name>`` (every ``log_freq`` batches; ``log_freq=None`` logs none), and at the
epoch's last batch its metrics and validation metrics as ``epoch/<name>`` with
``epoch/epoch`` and ``epoch/learning_rate``, as in wandb's ``WandbMetricsLogger``. The
model's summary is saved with the run as ``model_summary.txt``, and its name, parameter
count and layers go to the config (``model/...``). The run is finished when ``fit`` ends; a
later ``fit`` with the same callback continues it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._require import first_of
from ._runs import StepMap, running

_keras = first_of("keras", ("keras",), "keras")

BATCH_STEP = "batch/batch_step"
EPOCH_STEP = "epoch/epoch"
SUMMARY_FILE = "model_summary.txt"


class TrackdCallback(_keras.callbacks.Callback):  # type: ignore[misc,name-defined]
    """Log a Keras model's training to trackd; ``**init_kwargs`` go to ``trackd.init``."""

    def __init__(self, log_freq: int | None = 1, **init_kwargs: Any) -> None:
        super().__init__()
        if log_freq is not None and (type(log_freq) is not int or log_freq < 1):
            raise ValueError(f"TrackdCallback: log_freq={log_freq!r}; pass an int >= 1 or None")
        self.log_freq = log_freq
        self._init = init_kwargs
        self.run: Any = None
        self._batches = 0  # batches trained, over every fit() with this callback
        self._steps = StepMap()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Start (or continue) the run; record the model's summary and the fit's params."""
        first = self.run is None
        self.run = running(self.run, self._init)
        self._init["id"] = self.run.id
        if first:
            self.run.define_metric("batch/*", step_metric=BATCH_STEP)
            self.run.define_metric("epoch/*", step_metric=EPOCH_STEP)
        self.run.config.update(_model_config(self.model, self.params), allow_val_change=True)
        summary = Path(self.run.dir) / SUMMARY_FILE
        summary.write_text(_summary_text(self.model), encoding="utf-8")
        self.run.save(str(summary), policy="now")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Every ``log_freq`` batches, a row of ``batch/<name>`` metrics."""
        self._batches += 1
        if self.log_freq is None or self._batches % self.log_freq or not logs:
            return
        row = {f"batch/{k}": _scalar(v) for k, v in logs.items()}
        row[BATCH_STEP] = self._batches
        self.run.log(row, step=self._steps(self.run, self._batches))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """The epoch's metrics (validation included) at its last batch."""
        row = {f"epoch/{k}": _scalar(v) for k, v in (logs or {}).items()}
        row[EPOCH_STEP] = epoch
        rate = _learning_rate(self.model)
        if rate is not None:
            row["epoch/learning_rate"] = rate
        self.run.log(row, step=self._steps(self.run, self._batches))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Finish the run."""
        if self.run is not None:
            self.run.finish()


def _scalar(value: Any) -> Any:
    """A metric as a Python number (Keras hands torch tensors or numpy values)."""
    value = getattr(value, "value", value)  # a keras Variable
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _learning_rate(model: Any) -> float | None:
    rate = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    if rate is None:
        return None
    value = _scalar(rate)
    return value if isinstance(value, float) else None


def _model_config(model: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """The model's name, size and layers, and ``fit()``'s params, as config entries."""
    config: dict[str, Any] = {
        "model/name": model.name,
        "model/num_parameters": int(model.count_params()) if model.built else None,
        "model/layers": [
            {"name": layer.name, "class": type(layer).__name__, "parameters": _params(layer)}
            for layer in model.layers
        ],
    }
    config.update({f"fit/{k}": v for k, v in (params or {}).items()})
    return config


def _params(layer: Any) -> int | None:
    return int(layer.count_params()) if layer.built else None


def _summary_text(model: Any) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda text, *a, **k: lines.append(str(text)))
    return "\n".join(lines)
