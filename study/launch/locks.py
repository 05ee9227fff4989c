"""File locks on a workdir (flock: released however their holder ends, also by SIGKILL).

- `job_lock(workdir, job)`: the lock a local run holds for one job (`<workdir>/locks/<job id>.lock`), so that two
  commands never run one job at once;
- `submit_lock(workdir)`: the lock a Slurm submit holds from reading the states to its last `queued` line
  (`<workdir>/ledgers/.submit.lock`), so that two submits never queue one job twice.
"""
from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def try_lock(path: Path) -> int | None:
    """An open file descriptor holding the exclusive lock of `path` (created), or None when another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def job_lock(workdir: str | os.PathLike, job_id: str) -> int | None:
    """`try_lock` of the job's lock file."""
    return try_lock(Path(workdir) / "locks" / f"{job_id}.lock")


@contextmanager
def submit_lock(workdir: str | os.PathLike) -> Iterator[None]:
    """Hold the workdir's submit lock; waits, saying so on stderr, while another command holds it."""
    path = Path(workdir) / "ledgers" / ".submit.lock"
    fd = try_lock(path)
    if fd is None:
        print(f"[study] waiting for another study submit on {workdir} to finish queueing", file=sys.stderr,
              flush=True)
        fd = os.open(path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)
