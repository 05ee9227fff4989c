"""`no_flock(error)`: whether an error of `fcntl.flock` means the file's filesystem gives no file locks at all."""
from __future__ import annotations

import errno

# Lustre mounted without `-o flock` (ENOSYS), an NFS mount with no lock manager (ENOLCK), some FUSE and network
# filesystems (EOPNOTSUPP, EINVAL: study only asks valid operations, so EINVAL comes from the filesystem)
NO_FLOCK_ERRNOS = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL})


def no_flock(error: OSError) -> bool:
    """True when `error`, raised by `fcntl.flock`, says the filesystem has no flock (not that a lock is taken)."""
    return error.errno in NO_FLOCK_ERRNOS
