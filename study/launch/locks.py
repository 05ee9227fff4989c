"""File locks on a workdir (flock: released however their holder ends, also by SIGKILL).

- `job_lock(workdir, job)`: the lock a local run holds for one job (`<workdir>/locks/<job id>.lock`; the command
  from before it starts the worker, the worker for as long as it lives), so that two commands never run one job at
  once, and so that `lock_held` tells a live run from a dead one;
- `command_lock(workdir)`: the lock a `study submit --cluster local` holds while it lives (its pending jobs are live);
  the files of killed commands' locks are removed by a later command once no one holds them;
- `submit_lock(workdir)`: the lock a submit (Slurm or local) holds from reading the states to its last `queued`
  or `pending` line (`<workdir>/ledgers/.submit.lock`), so that two submits never queue one job twice.

Limitation, on an NFS workdir: Linux's NFS client emulates flock with POSIX (fcntl) locks, which belong to the
process that took them, are not held by a child given the descriptor, and are all dropped when that process closes
any descriptor of the file. There, a job's lock is the command's, not its worker's: a killed `study submit --cluster
local` frees its jobs while their workers still run to their next checkpoint (another command may start one of
them meanwhile), and a command that probes a lock it holds itself (`lock_held`) releases it. The submit lock, taken
once per command, is unaffected. Give `--cluster local` a workdir on a local disk (or an NFS mount with
`local_lock=flock`, used from one host only).
"""
from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from study.errors import StudyError, os_reason
from study.flock import no_flock


def try_lock(path: Path) -> int | None:
    """An open file descriptor holding the exclusive lock of `path` (created), or None when another holds it. A
    StudyError naming the file where its filesystem has no flock: the workdir's locks keep two commands from queueing
    or running one job twice, and running without them would do just that."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as e:
        os.close(fd)
        if no_flock(e):
            raise StudyError(f"{path}: the workdir's filesystem gives no file locks (flock: {os_reason(e)}), which "
                             f"study needs so that two commands never queue or run one job twice; use a workdir on "
                             f"a filesystem with flock (Lustre: mounted with -o flock; NFS: with its lock "
                             f"manager running)") from None
        raise
    return fd


def job_lock(workdir: str | os.PathLike, job_id: str, tries: int = 5) -> int | None:
    """`try_lock` of the job's lock file, tried a few times 20 ms apart: another command's `lock_held` holds it for
    an instant."""
    for i in range(tries):
        fd = try_lock(Path(workdir) / "locks" / f"{job_id}.lock")
        if fd is not None or i == tries - 1:
            return fd
        time.sleep(0.02)
    return None


STALE_COMMAND_LOCK_S = 60.0  # a command lock's file is created and locked in one step; older and free: stale


@contextmanager
def command_lock(workdir: str | os.PathLike) -> Iterator[str]:
    """Hold a lock of this command's own under `<workdir>/locks/` while the block runs (and the process lives);
    yields its name. Its file is removed at the end; the files a killed command left (never held again) are
    removed here, once over a minute old and free."""
    name = f"command-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.lock"
    path = Path(workdir) / "locks" / name
    _remove_stale_command_locks(path.parent)
    fd = try_lock(path)
    assert fd is not None  # a new name
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _remove_stale_command_locks(folder: Path) -> None:
    now = time.time()
    for p in folder.glob("command-*.lock"):
        try:
            old = now - p.stat().st_mtime > STALE_COMMAND_LOCK_S
        except OSError:  # removed by another command meanwhile
            continue
        if old and lock_held(p) is False:
            p.unlink(missing_ok=True)


def lock_held(path: Path) -> bool | None:
    """Whether a process holds the lock of `path` now, tested by taking a shared lock on it for an instant (read
    access is enough, also on NFS); None when the file cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also releases the probe's own lock
    return False


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
