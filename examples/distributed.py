"""Distributed training with trackd: every rank runs this script.

    torchrun --nproc-per-node 4 examples/distributed.py shared   # one run, a writer per rank
    torchrun --nproc-per-node 4 examples/distributed.py group    # a run per rank, one group
    torchrun --nproc-per-node 4 examples/distributed.py rank0    # rank 0 logs, the rest not

CPU only (gloo); a tiny linear model trained with DistributedDataParallel.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import trackd
from torch.nn.parallel import DistributedDataParallel


def main(organise: str) -> None:
    dist.init_process_group("gloo")
    me = trackd.rank_info()
    run = trackd.init_distributed(organise, project="examples", config={"lr": 0.05})
    torch.manual_seed(me.rank)
    model = DistributedDataParallel(torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=run.config.lr)
    key = f"{me.label}/loss" if organise == "shared" else "loss"  # one key per writer
    for _ in range(200):
        x = torch.randn(32, 8)
        loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({key: loss.item()})
    run.finish()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "shared")
