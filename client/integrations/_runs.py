"""What the integrations share: starting (or continuing) their run, and mapping a
framework's step onto the run's."""

from __future__ import annotations

from typing import Any


def running(run: Any, init_kwargs: dict[str, Any]) -> Any:
    """``run`` while it runs; else a run started with ``init_kwargs``, or, when ``run`` was
    finished (a framework's ``on_train_end``, then ``evaluate()``), the same run continued."""
    import trackd

    if run is not None and run.state == "running":
        return run
    kwargs = dict(init_kwargs)
    if run is not None:
        kwargs.update(id=run.id, resume="must", name=None)
    return trackd.init(**kwargs)


class StepMap:
    """A framework's step as the run's step: the same while the framework is not behind the
    run; once it is (a fresh trainer on a resumed run), shifted by the difference from then
    on, so that no row is dropped and the steps keep their spacing."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self, run: Any, step: int) -> int:
        """The run step to log the framework's ``step`` at."""
        if step + self.offset < run.step:
            self.offset = run.step - step
        return step + self.offset
