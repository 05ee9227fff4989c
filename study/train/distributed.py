"""Several GPUs, of one node or of several: torch.distributed started from submitit's job environment.

`setup()` returns a single-process `World` unless submitit (or torchrun's environment) reports several tasks; then
NCCL on GPUs, gloo on CPUs (the tests run two CPU processes, under torchrun-style variables and under Slurm).
Under Slurm, rank 0's address is the job's first node as SLURM_JOB_NODELIST names it, else, where this host cannot
resolve that name (a NodeName that is not a host name), the NodeAddr Slurm reaches that node by (`master_address`).
"""
from __future__ import annotations

import inspect
import os
import re
import socket
import subprocess
from dataclasses import dataclass

import torch
import torch.distributed as dist

from study.errors import StudyError


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1
    created_group: bool = False  # setup() initialised the process group, so cleanup() destroys it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_kind: str) -> World:
    """Initialise the default process group when several tasks run this job, else return World(). A group the
    caller initialised is used as it is (and left to the caller: `created_group` false)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())
    ntasks = 1
    if "SUBMITIT_EXECUTOR" in os.environ:  # a submitit job (slurm or local executor)
        import submitit

        try:
            ntasks = submitit.JobEnvironment().num_tasks
        except RuntimeError:  # not inside a submitit job after all
            ntasks = 1
        if ntasks > 1:
            # MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE from the Slurm job. CUDA_VISIBLE_DEVICES is left
            # as Slurm set it (a rank takes cuda:LOCAL_RANK % the GPUs it sees: LOCAL_RANK where every task sees the
            # node's GPUs, 0 where the site binds one GPU per task): submitit's default would narrow it to the bare
            # local rank, wrong where Slurm lists other GPU ids.
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
            os.environ["MASTER_ADDR"] = master_address(os.environ["MASTER_ADDR"])
    elif "WORLD_SIZE" in os.environ:  # torchrun
        ntasks = int(os.environ["WORLD_SIZE"])
    if ntasks <= 1:
        return World()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return World(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size(), created_group=True)


def master_address(node: str) -> str:
    """The address of rank 0's node `node` (a Slurm NodeName, as submitit takes it from SLURM_JOB_NODELIST): the name
    where this host resolves it, else its NodeAddr (`scontrol show node`). StudyError where neither resolves: every
    rank would otherwise retry the name until the process group's timeout (30 minutes), its log saying only that the
    name's addresses "cannot be retrieved"."""
    if _resolves(node):
        return node
    addr = _node_addr(node)
    if addr and _resolves(addr):
        return addr
    raise StudyError(f"rank 0's node {node!r} (the first of SLURM_JOB_NODELIST) does not resolve on "
                     f"{socket.gethostname()}, nor does its NodeAddr ({addr or 'scontrol show node did not say'}): "
                     f"torch.distributed cannot reach it; make the nodes' names resolve (DNS or /etc/hosts)")


def _resolves(host: str) -> bool:
    try:
        return bool(socket.getaddrinfo(host, None))
    except (OSError, UnicodeError):
        return False


def _node_addr(node: str) -> str | None:
    """NodeAddr of Slurm node `node` (`scontrol show node -o`), or None where scontrol cannot tell."""
    try:
        run = subprocess.run(["scontrol", "show", "node", "-o", node], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(?:^|\s)NodeAddr=(\S+)", run.stdout) if run.returncode == 0 else None
    return m.group(1) if m else None


def data_parallel(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`module` in DistributedDataParallel on this rank's `device`, its buffers not broadcast from rank 0 before each
    forward (DDP's default; at the start they are equal: seeded alike, or loaded from one checkpoint).

    The buffers the training reads are equal on every rank by construction: MoCo's queue and pointer (written with
    the keys of every rank, all-gathered in rank order); the EMA networks' weights are parameters, updated from the
    all-reduced online ones. BatchNorm running statistics differ by rank (each rank's own batches) with the broadcast
    too, since it comes before the forward that updates them; train-mode BatchNorm does not read them, and rank 0's,
    which the checkpoint and encoder hold, follow from rank 0's batches alone. So the results are the same, less a
    copy of every buffer per step: 32 MiB for MoCo's 65,536 x 128 queue."""
    ids = [device.index] if device.type == "cuda" else None
    ddp = torch.nn.parallel.DistributedDataParallel
    if "forward_sync_buffers" in inspect.signature(ddp).parameters:  # torch >= 2.13: broadcast_buffers is deprecated
        return ddp(module, device_ids=ids, forward_sync_buffers=False)
    return ddp(module, device_ids=ids, broadcast_buffers=False)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums every rank's gradient of the gathered tensor and keeps this rank's slice
    (each rank's loss reads every rank's rows, so a row's gradient is the sum over ranks)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rows = x.shape[0]
        return gather_no_grad(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` (the same shape on every rank) from every rank, in rank order; differentiable."""
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over the ranks, in place."""
    if is_distributed():
        dist.all_reduce(t)
    return t


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag true on any rank (one tiny all-reduce)."""
    if not is_distributed():
        return flags
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def cleanup(world: World) -> None:
    """Destroy the default process group if `setup` created it for `world`; a caller's group stays."""
    if world.created_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
