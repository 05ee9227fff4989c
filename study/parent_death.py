"""A child process that ends with its parent: the kernel signals it when the parent dies, also by SIGKILL."""
from __future__ import annotations

import os
import sys


def signal_when_parent_dies(sig: int, parent: int) -> bool:
    """Have the kernel send `sig` to this process when its parent dies (Linux's PR_SET_PDEATHSIG; elsewhere
    nothing is asked). False where the parent, pid `parent`, died before the request took effect (this process has
    been re-parented): the caller acts as the signal would."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    return os.getppid() == parent
