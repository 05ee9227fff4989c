"""Where a run computes: the torch device a config's `device` key names for this process (one GPU per rank on a
node), and the GPU memory peak a run reports."""
from __future__ import annotations

import re

import torch

from study.errors import StudyError
from study.train import distributed


def resolve_device(name: str, world: distributed.World | None = None, key: str = "pretrain.device") -> torch.device:
    """The torch device of `name` (the config's `key`) for this rank ("auto": cuda when available, else cpu)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StudyError(f"{key}: {name!r} asked for but CUDA is not available")
        world = world or distributed.World()
        index = cuda_index(name, world.size, world.local_rank, torch.cuda.device_count(),
                           torch.cuda.current_device, key)
        return torch.device("cuda", index)
    return torch.device(name)


def cuda_index(name: str, world_size: int, local_rank: int, device_count: int, current,
               key: str = "pretrain.device") -> int:
    """The CUDA device index of `name` ("cuda" or "cuda:N") for a rank. One process: N, else the current device
    (`current()`). Several ranks: an explicit N is refused (every rank would take GPU N); rank r takes
    r % device_count, which is r where every task sees the node's GPUs and 0 where a site binds one GPU per task.
    Errors name the config's `key`."""
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m is None:
        raise StudyError(f"{key}: expected 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    explicit = m.group(1)
    if world_size > 1:
        if explicit:
            raise StudyError(f"{key}: {name!r} names one GPU, but this run has {world_size} processes "
                             "(each takes its own GPU): use 'cuda' or 'auto'")
        if device_count < 1:
            raise StudyError(f"{key}: CUDA reports no device")
        return local_rank % device_count
    return int(explicit) if explicit else int(current())


def peak_gpu_memory_gb(device: torch.device) -> float | None:
    """The most GPU memory this process's tensors on `device` held since `reset_gpu_peak`, in GB; None off CUDA."""
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def reset_gpu_peak(device: torch.device) -> None:
    """Start `peak_gpu_memory_gb`'s count on `device` at what its tensors hold now (nothing off CUDA): a run's peak is
    its own, not that of an earlier run in this process (an evaluation fine-tunes, then scores, once per labeled
    size)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
