"""``trackd.watch()``: histograms of a torch model's gradients and parameters, as wandb logs
them.

- gradients: a hook on each parameter that requires a gradient counts its backward passes;
  every ``log_freq``-th one, the gradient's histogram is taken (``gradients/<name>``);
- parameters: a forward hook on the model counts its forward calls; every ``log_freq``-th
  one, each parameter's histogram is taken (``parameters/<name>``).

Histograms (64 bins) are computed on the tensor's own device; only the bins are copied to
the host, once per backward pass or forward call, not once per tensor. They are logged with
``commit=False``, so they join the row of the next ``log()`` call, at its step. The second and
later models watched in a run get a prefix (``gradients/graph_1.<name>``), as wandb's
``graph_1`` prefix; ``DataParallel`` and ``DistributedDataParallel`` wrappers are looked
through, so names carry no ``module.``. Hooks are removed by :func:`unwatch` and when the run
finishes.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from ._histogram import Histogram, device_histogram, histogram_from_device
from .errors import UsageError

BINS = 64
LOG_CHOICES = ("gradients", "parameters", "all", None)

_lock = threading.Lock()
_watches: weakref.WeakKeyDictionary[Any, _Watch] = weakref.WeakKeyDictionary()
# per run: the key prefix of each model it watched (the first has none, as in wandb)
_prefixes: weakref.WeakKeyDictionary[Any, dict[int, str]] = weakref.WeakKeyDictionary()


class _Watch:
    """The hooks on one model, logging into one run."""

    def __init__(self, run: Any, model: Any, prefix: str, log: str | None, log_freq: int):
        import torch

        self.run = run
        self.torch = torch
        self.log_freq = log_freq
        self.handles: list[Any] = []
        self.pending: list[tuple[str, Any]] = []  # gradient histograms of this backward pass
        self.flush_queued = False
        self.warned = False
        self.lock = threading.Lock()
        inner = _unwrap(torch, model)
        self.params = [(prefix + name, p) for name, p in inner.named_parameters()]
        if log in ("parameters", "all"):
            self.forward_count = 0
            self.handles.append(model.register_forward_hook(self._after_forward))
        if log in ("gradients", "all"):
            for name, param in self.params:
                if param.requires_grad:
                    self.handles.append(param.register_hook(self._grad_hook(name)))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _live(self) -> bool:
        return self.run.state == "running"

    def _after_forward(self, module: Any, inputs: Any, output: Any) -> None:
        self.forward_count += 1
        if self.forward_count < self.log_freq or not self._live():
            return
        self.forward_count = 0
        try:
            with self.torch.no_grad():
                hists = [(f"parameters/{n}", device_histogram(p, BINS)) for n, p in self.params]
            self._log(hists)
        except Exception as exc:  # noqa: BLE001 - never break the user's training step
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"watch(): a histogram could not be logged ({type(exc).__name__}: {exc}); "
                "training goes on, the histograms of this model may be missing",
                RuntimeWarning,
                stacklevel=2,
            )

    def _grad_hook(self, name: str) -> Callable[[Any], None]:
        key = f"gradients/{name}"
        count = [0]

        def hook(grad: Any) -> None:
            count[0] += 1
            if count[0] < self.log_freq:
                return
            count[0] = 0
            if self._live():
                try:
                    self._add_gradient(key, grad)
                except Exception as exc:  # noqa: BLE001 - never break the user's backward
                    self._failed(exc)

        return hook

    def _add_gradient(self, key: str, grad: Any) -> None:
        with self.torch.no_grad():
            hist = device_histogram(grad, BINS)
        with self.lock:
            self.pending.append((key, hist))
            if self.flush_queued:
                return
            self.flush_queued = True
        try:  # once the whole backward pass is done: one copy to the host for all of them
            self.torch.autograd.Variable._execution_engine.queue_callback(self._flush)
        except RuntimeError:  # not inside a backward pass the engine runs
            self._flush()

    def _flush(self) -> None:
        with self.lock:
            hists, self.pending, self.flush_queued = self.pending, [], False
        if hists and self._live():
            try:
                self._log(hists)
            except Exception as exc:  # noqa: BLE001 - it runs inside the user's backward
                self._failed(exc)

    def _log(self, hists: list[tuple[str, Any]]) -> None:
        by_device: dict[Any, list[tuple[str, Any]]] = {}
        for key, hist in hists:
            by_device.setdefault(hist.device, []).append((key, hist))
        row: dict[str, Any] = {}
        size = BINS + 5
        for group in by_device.values():
            numbers = self.torch.cat([h for _, h in group]).tolist()  # the one host copy
            for i, (key, _) in enumerate(group):
                value = histogram_from_device(numbers[i * size : (i + 1) * size], BINS)
                row[key] = Histogram._of(value)
        try:
            self.run.log(row, commit=False)
        except UsageError:  # the run finished between the check and the log
            pass


def _unwrap(torch: Any, model: Any) -> Any:
    wrappers = (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def watch(
    models: Any,
    criterion: Any = None,
    log: str | None = "gradients",
    log_freq: int = 1000,
    idx: int | None = None,
    log_graph: bool = False,
) -> None:
    """Log histograms of the gradients (``log="gradients"``), the parameters
    (``"parameters"``) or both (``"all"``) of a torch model, or a list of models, every
    ``log_freq`` steps, into the current run. ``criterion`` is accepted for wandb's
    signature; ``log_graph`` is not supported (a warning says so). Watching a model again
    replaces its hooks.

    Example::

        trackd.watch(model, log="all", log_freq=100)
    """
    from ._session import current_run

    run = current_run()
    if run is None or run.state != "running":
        raise UsageError("watch(): no run is running; call trackd.init() before trackd.watch()")
    _check_args(log, log_freq, idx)
    models = _check_models("watch()", models)
    if log_graph:
        warnings.warn(
            "watch(): log_graph=True is not supported by trackd; the graph is not logged",
            UserWarning,
            stacklevel=2,
        )
    with _lock:
        for i, model in enumerate(models):
            old = _watches.pop(model, None)
            if old is not None:
                old.remove()
            prefix = _prefix(run, model, None if idx is None else idx + i)
            if log is not None:
                _watches[model] = _Watch(run, model, prefix, log, log_freq)
        _on_finish(run)


def _check_args(log: Any, log_freq: Any, idx: Any) -> None:
    if log not in LOG_CHOICES:
        raise ValueError(f"watch(): log is {log!r}; pass 'gradients', 'parameters', 'all' or None")
    if isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1:
        raise ValueError(f"watch(): log_freq is {log_freq!r}; pass an int of 1 or more")
    if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or idx < 0):
        raise ValueError(f"watch(): idx is {idx!r}; pass a non-negative int or None")


def _check_models(where: str, models: Any) -> list[Any]:
    try:
        import torch
    except ImportError:
        raise UsageError(
            f"{where}: torch is not installed; watch() logs torch models (pip install torch)"
        ) from None
    if isinstance(models, (list, tuple)):
        models = list(models)
    else:
        models = [models]
    for m in models:
        if not isinstance(m, torch.nn.Module):
            raise TypeError(
                f"{where}: {type(m).__name__} is not a torch.nn.Module; pass a model or a "
                "list of models"
            )
    return models


def _prefix(run: Any, model: Any, index: int | None) -> str:
    """The key prefix of ``model`` in ``run``: the first model watched has none, the next
    ``graph_1.`` and so on; a model watched again keeps its prefix."""
    known = _prefixes.setdefault(run, {})
    if index is None:
        if id(model) in known:
            return known[id(model)]
        index = len(known)
    known[id(model)] = prefix = f"graph_{index}." if index else ""
    return prefix


def _on_finish(run: Any) -> None:
    """Remove the run's hooks when it finishes (once per run)."""
    if _unhook_run not in run._finish_hooks:
        run._finish_hooks.append(_unhook_run)


def _unhook_run(run: Any) -> None:
    _remove(lambda w: w.run is run)


def _remove(which: Callable[[_Watch], bool]) -> None:
    with _lock:
        for model, w in list(_watches.items()):
            if which(w):
                w.remove()
                del _watches[model]


def unwatch(models: Any = None) -> None:
    """Remove the hooks :func:`watch` put on ``models`` (a model or a list), or on every
    watched model when ``models`` is None.

    Example::

        trackd.unwatch(model)
    """
    if models is None:
        _remove(lambda w: True)
        return
    targets = {id(m) for m in _check_models("unwatch()", models)}
    with _lock:
        for model in list(_watches.keys()):
            if id(model) in targets:
                _watches.pop(model).remove()
