"""File locks on `fcntl.flock`: `locked(path)`, one process at a time holding an exclusive lock on the file `path`
(created, removed on exit), and `no_flock(error)`, whether an error of `flock` means the file's filesystem gives no
file locks at all.

The kernel releases a flock when its holder dies, so a killed process never leaves a lock that blocks: the file it
leaves behind is taken by the next caller. Where the file cannot be created (a folder that is not ours to write) or
the filesystem has no flock, `locked`'s block runs unlocked: there, nothing is written by us that a lock would
protect, or nothing could serialise the writers anyway.
"""
from __future__ import annotations

import errno
import fcntl
import os
import sys
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from study.errors import StudyError

# Lustre mounted without `-o flock` (ENOSYS), an NFS mount with no lock manager (ENOLCK), some FUSE and network
# filesystems (EOPNOTSUPP, EINVAL: study only asks valid operations, so EINVAL comes from the filesystem)
NO_FLOCK_ERRNOS = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL})


def no_flock(error: OSError) -> bool:
    """True when `error`, raised by `fcntl.flock`, says the filesystem has no flock (not that a lock is taken)."""
    return error.errno in NO_FLOCK_ERRNOS


@contextmanager
def locked(path: Path, message: str, wait: bool = True) -> Iterator[bool]:
    """Run the block holding the lock file `path`; it is given whether the lock is held (False: run unlocked, see
    above). When another process holds it: print `message` on stderr and wait for it (`wait`), or raise
    StudyError(`message`) at once."""
    path = Path(path)
    fd = _acquire(path, message, wait)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            try:
                # before the unlock: a process waiting on this file then finds it gone (in a folder that no longer
                # lets us delete, the lock is released all the same)
                with suppress(OSError):
                    path.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _acquire(path: Path, message: str, wait: bool) -> int | None:
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            return None  # not ours to write: nothing to protect
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise StudyError(message) from None
                print(message, file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            os.close(fd)
            if no_flock(e):
                return None
            raise
        except BaseException:
            os.close(fd)
            raise
        # the holder we waited for removed the file (and another process may have made a new one): lock that one
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
