"""Several GPUs of one node: torch.distributed started from submitit's job environment.

Written with care but not exercised here (no GPU, one process in the tests): `setup()` returns a single-process
`World` unless submitit (or torchrun's environment) reports several tasks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_kind: str) -> World:
    """Initialise the default process group when several tasks run this job, else return World()."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())
    ntasks = 1
    if "SUBMITIT_EXECUTOR" in os.environ:  # a submitit job (slurm or local executor)
        try:
            import submitit

            env = submitit.JobEnvironment()
            ntasks = env.num_tasks
            if ntasks > 1:
                # sets MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE from the Slurm job
                submitit.helpers.TorchDistributedEnvironment().export()
        except RuntimeError:  # not inside a submitit job
            ntasks = 1
    elif "WORLD_SIZE" in os.environ:  # torchrun
        ntasks = int(os.environ["WORLD_SIZE"])
    if ntasks <= 1:
        return World()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return World(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every rank (rank order); gradients flow back to each rank's own slice."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def all_reduce_mean(value: float, device: torch.device) -> float:
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag true on any rank (one tiny all-reduce)."""
    if not is_distributed():
        return flags
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
