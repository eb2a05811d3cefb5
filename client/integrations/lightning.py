"""PyTorch Lightning: a logger that records a fit as one trackd run.

Example::

    from lightning.pytorch import Trainer
    from trackd.integrations.lightning import TrackdLogger

    logger = TrackdLogger(project="mnist", log_model=True)
    Trainer(logger=logger, max_epochs=3).fit(model, data)

It follows Lightning's ``Logger`` interface as its built-in loggers do: hyperparameters
(``save_hyperparameters()``) become the run's config; metrics are logged at the trainer's
step (``trainer/global_step`` records it too; a step behind the run, as from a fresh
trainer on a resumed run, shifts the steps after it rather than dropping them), and what is
logged without a step joins the row of the next one; ``log_image``, ``log_table`` and ``watch``
log trackd values; with ``log_model=True`` the checkpoints left at the end of the fit are
saved with the run (``"all"``: each one as it is written). Only rank 0 logs (the other
ranks' ``experiment`` is a stand-in that does nothing). ``finalize`` finishes the run,
``failed`` when the fit failed; logging after it (``trainer.test`` after ``fit``) resumes
the same run. Pass ``id=`` (and ``resume="allow"``) to continue an earlier run.
``pytorch_lightning`` is used where ``lightning`` is not installed.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._require import first_of
from ._runs import StepMap, running

_pl = first_of("lightning", ("lightning.pytorch", "pytorch_lightning"), "lightning")
_base = first_of("lightning", (_pl.__name__ + ".loggers.logger",), "lightning")
_rank = first_of("lightning", (_pl.__name__ + ".utilities.rank_zero",), "lightning")
rank_zero_only = _rank.rank_zero_only
rank_zero_experiment = _base.rank_zero_experiment

STEP_KEY = "trainer/global_step"


class TrackdLogger(_base.Logger):  # type: ignore[misc,name-defined]
    """A Lightning logger writing to a trackd run; ``**init_kwargs`` go to ``trackd.init``
    (``entity``, ``group``, ``tags``, ``notes``, ``dir``, ``mode``, ``config`` ...).

    Example::

        Trainer(logger=TrackdLogger(project="mnist", name="baseline", log_model="all"))
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - the name trackd.init and wandb use
        resume: bool | str | None = None,
        log_model: bool | str = False,
        prefix: str = "",
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if log_model not in (True, False, "all"):
            raise ValueError(f"TrackdLogger: log_model={log_model!r}; pass True, False or 'all'")
        self._init = dict(init_kwargs, project=project, name=name, id=id, resume=resume)
        self._log_model = log_model
        self._prefix = prefix
        self._run: Any = None
        self._checkpoints: dict[str, str] = {}  # path -> the folder it is named from
        self._steps = StepMap()

    # -- identity ---------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """The project (Lightning's logger name), as in ``WandbLogger``."""
        run = self._run
        return run.project if run is not None else self._init.get("project")

    @property
    def version(self) -> str | None:
        """The run id (created with the run on first use)."""
        run = self._run
        return run.id if run is not None else self._init.get("id")

    @property
    def save_dir(self) -> str | None:
        """The ``dir=`` given (where Lightning puts checkpoints: ``<save_dir>/<project>/<run
        id>/checkpoints``), else None, and Lightning uses the trainer's ``default_root_dir``;
        never the run's own directory, which trackd owns."""
        save_dir = self._init.get("dir")
        return None if save_dir is None else str(save_dir)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The :class:`trackd.Run`, started on first use (rank 0 only)."""
        if self._run is None or self._run.state != "running":
            self._run = running(self._run, self._init)
            self._init["id"] = self._run.id
            self._run.define_metric(STEP_KEY)
        return self._run

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for spawned workers without the run (it belongs to this process)."""
        state = self.__dict__.copy()
        state["_run"] = None
        return state

    # -- logging ------------------------------------------------------------------------
    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kw: Any) -> None:
        """Add the hyperparameters to the run's config (later values replace earlier ones)."""
        self.experiment.config.update(_params(params), allow_val_change=True)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log metrics at the trainer's step (``trainer/global_step`` records it too)."""
        row = {self._key(k): v for k, v in metrics.items()}
        self._log(row, step)

    @rank_zero_only
    def log_image(self, key: str, images: list[Any], step: int | None = None, **kw: Any) -> None:
        """Log images under ``key``; each keyword (``caption=[...]``) is a list, one per image."""
        import trackd

        for name, values in kw.items():
            if len(values) != len(images):
                raise ValueError(
                    f"log_image({key!r}): {name} has {len(values)} items for {len(images)} "
                    "images; pass one per image"
                )
        per_image = [{name: values[i] for name, values in kw.items()} for i in range(len(images))]
        row = {
            self._key(key): [
                trackd.Image(img, **k) for img, k in zip(images, per_image, strict=True)
            ]
        }
        self._log(row, step)

    @rank_zero_only
    def log_table(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """Log a :class:`trackd.Table` from ``columns`` and ``data`` rows, or a DataFrame."""
        import trackd

        table = trackd.Table(columns=columns, data=data, dataframe=dataframe)
        self._log({self._key(key): table}, step)

    @rank_zero_only
    def log_text(self, key: str, columns: list[str] | None = None, data: Any = None, **kw: Any):
        """Text rows, logged as a table (as ``WandbLogger.log_text``)."""
        self.log_table(key, columns, data, **kw)

    @rank_zero_only
    def watch(self, model: Any, log: str | None = "gradients", log_freq: int = 100) -> None:
        """Histograms of the model's gradients and/or parameters (:func:`trackd.watch`)."""
        import trackd

        self.experiment  # noqa: B018 - the run must exist to be watched into
        trackd.watch(model, log=log, log_freq=log_freq)

    def _key(self, key: str) -> str:
        return f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._prefix else key

    def _log(self, row: dict[str, Any], step: int | None) -> None:
        run = self.experiment
        if step is None:  # joins the row of the trainer's next step, as Lightning's own do
            run.log(row, commit=False)
            return
        row[STEP_KEY] = step
        run.log(row, step=self._steps(run, step))

    # -- checkpoints and the end --------------------------------------------------------
    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """With ``log_model``, remember (or, ``"all"``, save now) the checkpoints written."""
        if not self._log_model:
            return
        folder = str(checkpoint_callback.dirpath)
        paths = [checkpoint_callback.last_model_path, checkpoint_callback.best_model_path]
        paths += list(getattr(checkpoint_callback, "best_k_models", {}))
        for path in {str(p) for p in paths if p}:
            if self._log_model == "all" and path not in self._checkpoints:
                self._save(path, folder)
            self._checkpoints[path] = folder

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``failed`` when ``status`` is ``"failed"``, else finished; with
        ``log_model=True``, the checkpoints still on disk are saved with it first."""
        run = self._run
        if run is None or run.state != "running":
            return
        if self._log_model is True:
            for path, folder in self._checkpoints.items():
                self._save(path, folder)
        run.finish(exit_code=1 if status == "failed" else 0)

    def _save(self, path: str, folder: str) -> None:
        if os.path.isfile(path):
            base = folder if Path(path).is_relative_to(folder) else str(Path(path).parent)
            self.experiment.save(path, base_path=base, policy="now")


def _params(params: Mapping[str, Any] | Namespace) -> dict[str, Any]:
    """Hyperparameters as a config dict: a Namespace as its vars, callables by their name."""
    items = vars(params) if isinstance(params, Namespace) else dict(params)
    return {str(k): _param(v) for k, v in items.items()}


def _param(value: Any) -> Any:
    if isinstance(value, Namespace):
        return _params(value)
    if isinstance(value, Mapping):
        return {str(k): _param(v) for k, v in value.items()}
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return value
