"""Runs for distributed training: which rank this process is, and the run it should log to.

Two ways to organise the ranks of a job (``trackd.init_distributed``):

- ``"rank0"``: rank 0 logs one ordinary run; every other rank gets a disabled run whose
  ``log()`` does nothing, so the training script needs no ``if rank == 0``.
- ``"shared"``: every rank writes one shared run, with its rank as its writer label
  (``rank-3``); rank 0 is the primary writer, so the run ends when rank 0 ends.
- ``"group"``: one run per rank, tied by ``group`` (the job's run id) and
  ``job_type="rank-3"``.

The rank and world size come from the ``torch.distributed`` environment (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, as ``torchrun`` sets them), else from an initialised
``torch.distributed`` process group, else this is rank 0 of 1. The run id all ranks share
comes from ``id=``, else ``TRACKD_RUN_ID``, else rank 0 makes one and broadcasts it over the
process group (which must then be initialised).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from ._names import new_run_id
from ._run import Run
from ._session import init
from .errors import UsageError

ORGANISATIONS = ("rank0", "shared", "group")


@dataclass(frozen=True, slots=True)
class RankInfo:
    """This process's place in a distributed job."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def label(self) -> str:
        """The writer label (or job type) of this rank: ``rank-3``."""
        return f"rank-{self.rank}"


def rank_info() -> RankInfo:
    """This process's rank, local rank and world size (see the module's doc)."""
    env = os.environ
    if "RANK" in env:
        rank = _env_int("RANK")
        world = _env_int("WORLD_SIZE") if "WORLD_SIZE" in env else rank + 1
        local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in env else rank
        return RankInfo(rank, local, world)
    dist = _process_group()
    if dist is not None:
        rank = int(dist.get_rank())
        return RankInfo(rank, rank, int(dist.get_world_size()))
    return RankInfo(0, 0, 1)


def init_distributed(organise: str = "rank0", *, id: str | None = None, **init_args: Any) -> Run:
    """Start this rank's run of a distributed job; ``organise`` is ``"rank0"``,
    ``"shared"`` or ``"group"`` (see the module's doc). Other arguments go to
    :func:`trackd.init`.

    Example (every rank runs this)::

        run = trackd.init_distributed("shared", project="resnet", config=vars(args))
        run.log({f"{run.writer}/loss": loss})  # one key per rank: "rank-3/loss"
    """
    if organise not in ORGANISATIONS:
        raise UsageError(
            f"init_distributed(): organise={organise!r} is not one of {', '.join(ORGANISATIONS)}"
        )
    for taken in ("writer", "primary", "group", "job_type") if organise != "rank0" else ():
        if taken in init_args:
            raise UsageError(
                f"init_distributed(): {taken}= is set from the rank with organise={organise!r}; "
                "leave it out"
            )
    me = rank_info()
    if organise == "rank0":
        if me.rank != 0:
            return init(id=id, **dict(init_args, mode="disabled"))
        return init(id=id, **init_args)
    job_id = _shared_id(id, me)
    if organise == "shared":
        return init(id=job_id, writer=me.label, primary=me.rank == 0, **init_args)
    run_id = f"{job_id}-{me.label}"
    return init(id=run_id, group=job_id, job_type=me.label, **init_args)


def _shared_id(given: str | None, me: RankInfo) -> str:
    """The run id every rank of the job agrees on."""
    chosen = given or os.environ.get("TRACKD_RUN_ID")
    if chosen:
        return chosen
    if me.world_size == 1:
        return new_run_id()
    dist = _process_group()
    if dist is None:
        raise UsageError(
            "init_distributed(): the ranks must agree on a run id: pass id=..., set "
            "TRACKD_RUN_ID in every rank, or initialise torch.distributed first (rank 0's "
            "id is then broadcast)"
        )
    box = [new_run_id() if me.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])


def _process_group() -> Any:
    """``torch.distributed`` if torch is already imported and its group initialised."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"init_distributed(): {name}={value!r} is not an integer") from None
    if number < 0:
        raise UsageError(f"init_distributed(): {name}={value!r} is negative")
    return number
