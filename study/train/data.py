"""Batches of a manifest's images for training: `ViewDataset` (study.train.images.ImageReader's images, per-sample
augmentation with an rng seeded from (seed, epoch, index)), `ResumableBatchSampler` (an epoch's permutation from
(seed, epoch); can start mid-epoch), `make_loader` (its workers), and a run's step counts."""
from __future__ import annotations

import math
import multiprocessing
import signal
import sys
from typing import Any, Iterator

import cv2
import numpy as np
import torch

from study.cores import usable_cores
from study.errors import StudyError
from study.train.allocator import retain_freed_memory
from study.train.images import ImageReader, unreadable


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The per-sample augmentation rng of the architecture contract: seeded from (seed, epoch, index)."""
    return np.random.default_rng([seed, epoch, index])


def batch_generator(seed: int, step: int, device: torch.device, rank: int = 0) -> torch.Generator:
    """The generator for `aug.batch` at `step` (seeded from (seed, step), plus rank on other ranks than 0)."""
    entropy = [seed, step] + ([rank] if rank else [])
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1)))
    return g


class ViewDataset(torch.utils.data.Dataset):
    """Rows of a manifest table; item `(epoch, i)` -> (views: tuple of uint8 CxHxW tensors, label)."""

    def __init__(self, reader: ImageReader, rows, aug: Any, seed: int):
        self.reader = reader
        self.rows = rows.reset_index(drop=True)
        self.labels = self.rows["label"].to_numpy(dtype=np.int64)
        self.aug = aug
        self.seed = seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: tuple[int, int]):
        epoch, i = item
        row = self.rows.iloc[i]
        img = self.reader.open(row)
        try:
            views = self.aug.sample(img, sample_rng(self.seed, epoch, i))
        except (OSError, SyntaxError) as e:  # a lazily decoded file turned out truncated or corrupt (PIL raises both)
            raise unreadable(self.reader.manifest.abs_path(row), self.reader.manifest.name, str(e)) from None
        return tuple(views), int(self.labels[i])


def collate_views(items):
    """(views, labels): one uint8 B x 3 x S x S tensor per view, and the labels."""
    views = [torch.stack([it[0][v] for it in items]) for v in range(len(items[0][0]))]
    labels = torch.tensor([it[1] for it in items], dtype=torch.long)
    return views, labels


class ResumableBatchSampler(torch.utils.data.Sampler):
    """Endless batches of `(epoch, index)`: each epoch is a permutation of range(n) drawn from (seed, epoch),
    cut into `steps_per_epoch` global batches (the remainder dropped); rank r takes its slice of each.
    Starts at global step `start_step` (epoch = start_step // steps_per_epoch, batch = the remainder)."""

    def __init__(self, n: int, global_batch: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise StudyError(f"batch_size {global_batch} is not divisible by the {world} devices")
        if n < global_batch:
            raise StudyError(f"batch_size {global_batch} is larger than the {n} images of the training set")
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self.start_step, self.rank, self.world = start_step, rank, world
        self.per_device = global_batch // world
        self.steps_per_epoch = n // global_batch

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(self.n)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) of global step `step`."""
        return divmod(step, self.steps_per_epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, pos = self.position(self.start_step)
        while True:
            perm = self.permutation(epoch)
            for b in range(pos, self.steps_per_epoch):
                lo = b * self.global_batch + self.rank * self.per_device
                yield [(epoch, int(i)) for i in perm[lo : lo + self.per_device]]
            epoch, pos = epoch + 1, 0

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 2**62


def default_workers() -> int:
    """Loader workers where a config gives none: one per usable core (its cgroup quota counted) less the main
    process's, at most 8."""
    return min(8, max(0, usable_cores() - 1))


def make_loader(dataset: ViewDataset, sampler: ResumableBatchSampler, num_workers: int, pin_memory: bool,
                seed: int = 0):
    """Worker processes only run `aug.sample` with per-sample rngs; the loader's own seed comes from a private
    generator so that it never draws from (and shifts) the global torch RNG. The workers start as `worker_options`
    says."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_views,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers else None,
        **worker_options(num_workers),
        generator=torch.Generator().manual_seed(seed),
    )


def worker_options(num_workers: int) -> dict[str, Any]:
    """The DataLoader arguments that start `num_workers` worker processes, as every DataLoader with workers here
    starts them (make_loader, study.evaluate.features.forward_rows): one core each with Slurm's signals left to this
    process (`worker_init`), forked where the start method is forkserver (`loader_context`). With workers, this
    process's OpenCV runs on one thread from here on (`opencv_before_fork`)."""
    opencv_before_fork(num_workers)
    return {"num_workers": num_workers, "worker_init_fn": worker_init if num_workers else None,
            "multiprocessing_context": loader_context(num_workers)}


def loader_context(num_workers: int) -> Any:
    """How a DataLoader with `num_workers` workers starts them: forked on Linux where the start method is forkserver
    (Python 3.14's default there), else None (the start method as set: fork on Linux before 3.14, spawn on macOS or
    for CUDA). A fork server's children are not this process's: it dies of the SIGTERM or SIGUSR2 Slurm sends every
    process of a job step (the workers ignore them, `worker_init`), and this process would then find its workers gone
    (exit code 255) and fail instead of checkpointing."""
    # allow_none: not fixing the start method here (a later set_start_method without force would fail); unset, the
    # default is the first of get_all_start_methods
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
    if num_workers and sys.platform.startswith("linux") and method == "forkserver":
        return multiprocessing.get_context("fork")
    return None


def opencv_before_fork(num_workers: int) -> None:
    """Leave this process's OpenCV on one thread when a DataLoader is about to fork `num_workers` workers: a worker
    forked after OpenCV's thread pool ran here (its photometric ops on CPU at >= ~320 px, a training without
    workers in this process) hangs for ever in `worker_init`'s own `cv2.setNumThreads(1)` (the pool's state copied
    without its threads)."""
    if num_workers:
        cv2.setNumThreads(1)


def worker_init(_: int) -> None:
    """One core's share per worker; freed memory kept for reuse (allocator.py: forked workers inherit it, spawned
    ones need the call); SIGTERM and SIGUSR2 left to the main process. Slurm signals every process of a job step
    (preemption, `scancel --signal`, `--signal=USR2@T`): torch's worker handler would die of a SIGTERM that its
    parent did not send, and the main process would fail mid-step instead of checkpointing. The main
    process ends its workers through the DataLoader as usual."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # OpenCV's own pool would oversubscribe the node
    retain_freed_memory()
    for name in ("SIGTERM", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def next_batch(batches: Iterator) -> Any:
    """next(batches); a StudyError raised in a loader worker comes back with its own message, without the worker
    traceback torch wraps it in."""
    try:
        return next(batches)
    except StudyError as e:
        msg = str(e)
        marker = "StudyError: "
        raise StudyError(msg[msg.rfind(marker) + len(marker):].strip() if marker in msg else msg) from None


def close_batches(batches: Iterator | None) -> None:
    """End the worker processes of a DataLoader's iterator now (a no-op without workers or when they have ended).
    Call it in a `finally`: after an error the traceback keeps the iterator alive until interpreter exit, whose join
    of its workers would then wait for ever, as they ignore SIGTERM (`worker_init`)."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


def steps_per_epoch(n: int, global_batch: int) -> int:
    return max(0, n // global_batch)


def total_steps(epochs: float, steps: int | None, n: int, global_batch: int) -> int:
    """`steps`, else epochs x steps per epoch rounded up; the product is rounded to 9 decimals first, so that float
    error (0.07 x 100 = 7.000000000000001) adds no step."""
    if steps is not None:
        return int(steps)
    return int(math.ceil(round(epochs * steps_per_epoch(n, global_batch), 9)))
