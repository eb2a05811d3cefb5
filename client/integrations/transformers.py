"""Hugging Face Transformers: a ``TrainerCallback`` that records a training as a trackd run.

Example::

    from transformers import Trainer, TrainingArguments
    from trackd.integrations.transformers import TrackdCallback

    args = TrainingArguments("out", report_to="none", logging_steps=10)
    Trainer(model, args, train_dataset=train, callbacks=[TrackdCallback(project="glue")]).train()

The training arguments and the model's config become the run's config (the arguments win a
clash, as in wandb's callback); each ``on_log`` is one row at the trainer's global step, its
keys rewritten as wandb does (``loss`` -> ``train/loss``, ``eval_loss`` -> ``eval/loss``)
with ``train/global_step`` as their step metric; the end-of-training figures
(``train_runtime``, ``train_loss`` ...) go to the summary. ``log_model="end"`` saves the
final model (``save_pretrained``) with the run, ``"checkpoint"`` each checkpoint the trainer
writes. Only the main process logs. The run is finished at the end of training;
``trainer.evaluate()`` afterwards continues it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._require import first_of
from ._runs import StepMap, running

_tf = first_of("transformers", ("transformers",), "transformers")

STEP_KEY = "train/global_step"
# logged once at the end of training: summary values, not history (as in wandb's callback)
SUMMARY_ONLY = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
)
LOG_MODEL = (False, "end", "checkpoint")


class TrackdCallback(_tf.TrainerCallback):  # type: ignore[misc,name-defined]
    """Log a ``transformers.Trainer``'s training to trackd; ``**init_kwargs`` go to
    ``trackd.init`` (``project``, ``name``, ``tags``, ``group``, ``id``, ``resume`` ...)."""

    def __init__(self, log_model: bool | str = False, **init_kwargs: Any) -> None:
        if log_model not in LOG_MODEL:
            raise ValueError(
                f"TrackdCallback: log_model={log_model!r}; pass False, 'end' or 'checkpoint'"
            )
        self.log_model = log_model
        self._init = init_kwargs
        self.run: Any = None
        self._steps = StepMap()

    def _start(self, args: Any, state: Any, model: Any) -> Any:
        if self.run is not None and self.run.state == "running":
            return self.run
        kwargs = dict(self._init)
        if args.run_name and "name" not in kwargs and args.run_name != args.output_dir:
            kwargs["name"] = args.run_name
        self.run = running(self.run, kwargs)
        self._init["id"] = self.run.id
        self.run.define_metric(STEP_KEY)
        self.run.define_metric("train/*", step_metric=STEP_KEY)
        self.run.define_metric("eval/*", step_metric=STEP_KEY)
        self.run.config.update(_config(args, model), allow_val_change=True)
        return self.run

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any):
        """Start the run (on the main process) with the arguments and model config."""
        if state.is_world_process_zero:
            self._start(args, state, model)

    def on_log(
        self, args: Any, state: Any, control: Any, model: Any = None, logs: Any = None, **kw: Any
    ) -> None:
        """One row at the global step; the end-of-training figures to the summary."""
        if not state.is_world_process_zero or not logs:
            return
        run = self._start(args, state, model)
        run.summary.update({k: v for k, v in logs.items() if k in SUMMARY_ONLY})
        row = {_rewrite(k): v for k, v in logs.items() if k not in SUMMARY_ONLY}
        if row:
            row[STEP_KEY] = state.global_step
            run.log(row, step=self._steps(run, state.global_step))

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """With ``log_model="checkpoint"``, save the checkpoint just written with the run."""
        if self.log_model != "checkpoint" or not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and self.run is not None:
            _save_tree(self.run, folder, base=Path(args.output_dir))

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        """Save the model (``log_model="end"``) and finish the run."""
        run = self.run
        if not state.is_world_process_zero or run is None or run.state != "running":
            return
        if self.log_model == "end" and model is not None:
            folder = Path(run.dir) / "model"
            model.save_pretrained(folder)
            _save_tree(run, folder, base=Path(run.dir))
        run.finish()


def _config(args: Any, model: Any) -> dict[str, Any]:
    """The model's config overlaid with the training arguments, as one flat dict."""
    config: dict[str, Any] = {}
    model_config = getattr(model, "config", None)
    if model_config is not None:
        config.update(model_config if isinstance(model_config, dict) else model_config.to_dict())
    config.update(args.to_dict())
    return config


def _rewrite(key: str) -> str:
    """wandb's names: ``eval_loss`` -> ``eval/loss``, ``test_x`` -> ``test/x``, else ``train/``."""
    for prefix in ("eval_", "test_"):
        if key.startswith(prefix):
            return prefix[:-1] + "/" + key[len(prefix) :]
    return "train/" + key


def _save_tree(run: Any, folder: Path, base: Path) -> None:
    """Save every file under ``folder`` with the run, named relative to ``base``."""
    for root, _, names in os.walk(folder):
        for name in names:
            run.save(os.path.join(root, name), base_path=str(base), policy="now")
