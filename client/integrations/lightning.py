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
saved with the run (``"all"``: each one as it is written). By default only rank 0 logs (the
other ranks' ``experiment`` is a stand-in that does nothing); ``log_rank="all"`` makes every
rank a writer of the one shared run (writer label ``rank-<global rank>``, rank 0 the primary,
as ``trackd.init_distributed("shared")``), each logging its metrics, images and tables under
its own label (``rank-1/train_loss``); checkpoints are still saved by rank 0, which writes
them. The ranks agree on the run id: ``id=``, else ``TRACKD_RUN_ID``, else the id the first
rank to use the logger stores in the job's ``torch.distributed`` store. ``finalize`` finishes the run,
``failed`` when the fit failed; logging after it (``trainer.test`` after ``fit``) resumes
the same run. Pass ``id=`` (and ``resume="allow"``) to continue an earlier run.
``pytorch_lightning`` is used where ``lightning`` is not installed.
"""

from __future__ import annotations

import itertools
import os
from argparse import Namespace
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from .._names import new_run_id
from ._require import first_of
from ._runs import StepMap, running

_pl = first_of("lightning", ("lightning.pytorch", "pytorch_lightning"), "lightning")
_base = first_of("lightning", (_pl.__name__ + ".loggers.logger",), "lightning")
_rank = first_of("lightning", (_pl.__name__ + ".utilities.rank_zero",), "lightning")
rank_zero_only = _rank.rank_zero_only

STEP_KEY = "trainer/global_step"
LOG_RANKS = ("zero", "all")
_STORE_KEY = "trackd/lightning/run-id/{}"
_ordinals = itertools.count()  # the "all" loggers made in this process, in order

F = TypeVar("F", bound=Callable[..., Any])


def _writing(fn: F) -> F:
    """``fn`` on the ranks that log (rank 0; every rank with ``log_rank="all"``)."""

    @wraps(fn)
    def on_writing_ranks(self: TrackdLogger, *args: Any, **kw: Any) -> Any:
        return fn(self, *args, **kw) if self._writes() else None

    return on_writing_ranks  # type: ignore[return-value]


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
        log_rank: str = "zero",
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if log_model not in (True, False, "all"):
            raise ValueError(f"TrackdLogger: log_model={log_model!r}; pass True, False or 'all'")
        if log_rank not in LOG_RANKS:
            raise ValueError(f"TrackdLogger: log_rank={log_rank!r}; pass 'zero' or 'all'")
        for taken in ("writer", "primary") if log_rank == "all" else ():
            if taken in init_kwargs:
                raise ValueError(
                    f"TrackdLogger: {taken}= is set from the rank with log_rank='all'; leave it out"
                )
        self._init = dict(init_kwargs, project=project, name=name, id=id, resume=resume)
        self._log_rank = log_rank
        # with log_rank="all": this logger's place among the process's, the same in every rank
        self._ordinal = next(_ordinals) if log_rank == "all" else -1
        self._agreed = False  # the ranks agreed on self._init["id"]
        self._proposed = new_run_id()  # this process's proposal (ddp_spawn: every rank's)
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
        if run is not None:
            return run.id
        if self._log_rank == "all":
            return self._init.get("id") or self._proposed
        return self._init.get("id")

    @property
    def save_dir(self) -> str | None:
        """The ``dir=`` given (where Lightning puts checkpoints: ``<save_dir>/<project>/<run
        id>/checkpoints``), else None, and Lightning uses the trainer's ``default_root_dir``;
        never the run's own directory, which trackd owns."""
        save_dir = self._init.get("dir")
        return None if save_dir is None else str(save_dir)

    @property
    def experiment(self) -> Any:
        """The :class:`trackd.Run`, started on first use (on rank 0, or every rank with
        ``log_rank="all"``; a stand-in that does nothing on the others)."""
        if not self._writes():
            return _base.DummyExperiment()
        if self._run is None or self._run.state != "running":
            self._run = running(self._run, self._init_kwargs())
            self._init["id"] = self._run.id
            self._run.define_metric(STEP_KEY)
        return self._run

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for spawned workers without the run (it belongs to this process)."""
        state = self.__dict__.copy()
        state["_run"] = None
        return state

    def _writes(self) -> bool:
        return self._log_rank == "all" or _global_rank() == 0

    def _init_kwargs(self) -> dict[str, Any]:
        """``trackd.init``'s arguments for this rank (a writer of the shared run with
        ``log_rank="all"``)."""
        if self._log_rank != "all":
            return self._init
        if not self._agreed:
            self._init["id"] = _agreed_id(self._init.get("id"), self._proposed, self._ordinal)
            self._agreed = True
        rank = _global_rank()
        return dict(self._init, writer=f"rank-{rank}", primary=rank == 0)

    # -- logging ------------------------------------------------------------------------
    @_writing
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kw: Any) -> None:
        """Add the hyperparameters to the run's config (later values replace earlier ones)."""
        self.experiment.config.update(_params(params), allow_val_change=True)

    @_writing
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log metrics at the trainer's step (``trainer/global_step`` records it too)."""
        row = {self._key(k): v for k, v in metrics.items()}
        self._log(row, step)

    @_writing
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

    @_writing
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

    @_writing
    def log_text(self, key: str, columns: list[str] | None = None, data: Any = None, **kw: Any):
        """Text rows, logged as a table (as ``WandbLogger.log_text``)."""
        self.log_table(key, columns, data, **kw)

    @_writing
    def watch(self, model: Any, log: str | None = "gradients", log_freq: int = 100) -> None:
        """Histograms of the model's gradients and/or parameters (:func:`trackd.watch`)."""
        import trackd

        self.experiment  # noqa: B018 - the run must exist to be watched into
        trackd.watch(model, log=log, log_freq=log_freq)

    def _key(self, key: str) -> str:
        if self._prefix:
            key = f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}"
        return f"rank-{_global_rank()}/{key}" if self._log_rank == "all" else key

    def _log(self, row: dict[str, Any], step: int | None) -> None:
        run = self.experiment
        if step is None:  # joins the row of the trainer's next step, as Lightning's own do
            run.log(row, commit=False)
            return
        row[STEP_KEY] = step
        run.log(row, step=self._steps(run, step))

    # -- checkpoints and the end --------------------------------------------------------
    @_writing
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """With ``log_model``, remember (or, ``"all"``, save now) the checkpoints written
        (rank 0's: it is the rank that writes them)."""
        if not self._log_model or _global_rank() != 0:
            return
        folder = str(checkpoint_callback.dirpath)
        paths = [checkpoint_callback.last_model_path, checkpoint_callback.best_model_path]
        paths += list(getattr(checkpoint_callback, "best_k_models", {}))
        for path in {str(p) for p in paths if p}:
            if self._log_model == "all" and path not in self._checkpoints:
                self._save(path, folder)
            self._checkpoints[path] = folder

    @_writing
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


def _global_rank() -> int:
    """This process's global rank, as Lightning's strategy set it."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


def _agreed_id(given: str | None, proposed: str, ordinal: int) -> str:
    """The run id every rank of the job logs to: ``given``, else ``TRACKD_RUN_ID``, else the
    one the first rank here stored in the process group's store (no collective: a rank may
    get here before or after the others, or never), else (one process) ``proposed``."""
    chosen = given or os.environ.get("TRACKD_RUN_ID")
    if chosen:
        return chosen
    store = _process_group_store()
    if store is None:
        return proposed
    value = store.compare_set(_STORE_KEY.format(ordinal), "", proposed)
    return value.decode() if isinstance(value, bytes) else str(value)


def _process_group_store() -> Any:
    """The key-value store of the initialised default ``torch.distributed`` group, or None."""
    import sys

    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist.distributed_c10d._get_default_store()


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
