"""Stop a grid's `study submit --cluster local` commands: what `study cancel` does for the jobs they run.

A command is found by the `pending` lines it wrote to the grid's ledger (its pid, host and command lock) and counts
as live while it holds that lock, so a pid the system has since reused is never signalled. One on this host gets
SIGTERM, which stops it as Ctrl-C does (its workers checkpoint, then end; a rerun of `study submit` resumes them);
one on another host sharing the workdir is named, for the user to stop there. `study cancel` waits for those it
signalled to end, so that a `study submit` right after it finds their jobs stopped, not running.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from study.launch.ledger import Ledger
from study.launch.locks import lock_held


@dataclass(frozen=True)
class LocalCommand:
    pid: int
    host: str
    lock: Path | None = field(default=None, compare=False)  # its command lock, held while it runs
    user: str | None = field(default=None, compare=False)  # who runs it, as its `pending` lines say

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}" + (f" (user {self.user})" if self.user else "")


def live_commands(workdir: str | os.PathLike, grid: str, grid_file: str | None = None) -> list[LocalCommand]:
    """The local commands of `grid` on `workdir` that still hold their command lock, in the order they started;
    with `grid_file`, not those that say they run another file of the same grid name."""
    locks = Path(workdir) / "locks"
    seen: dict[str, LocalCommand] = {}
    for e in Ledger(workdir, grid).events():
        name, pid, host = e.get("lock"), e.get("pid"), e.get("host")
        if (e["event"] != "local" or e.get("state") != "pending" or name in seen or not isinstance(name, str)
                or not isinstance(pid, int) or not isinstance(host, str)):
            continue
        if grid_file and e.get("grid_file") not in (None, grid_file):
            continue
        if lock_held(locks / name):
            who = e.get("user")
            seen[name] = LocalCommand(pid, host, locks / name, who if isinstance(who, str) and who else None)
    return list(seen.values())


def stop_commands(commands: list[LocalCommand]) -> tuple[list[LocalCommand], list[LocalCommand]]:
    """SIGTERM to each command of this host; returns (signalled, left: on another host or not ours to signal)."""
    here = socket.gethostname()
    signalled, left = [], []
    for c in commands:
        if c.host != here:
            left.append(c)
            continue
        try:
            os.kill(c.pid, signal.SIGTERM)
        except ProcessLookupError:  # ended since its lock was read
            continue
        except PermissionError:
            left.append(c)
            continue
        signalled.append(c)
    return signalled, left


def wait_stopped(commands: list[LocalCommand], timeout: float) -> list[LocalCommand]:
    """Wait, up to `timeout` seconds, until each of `commands` has let go of its command lock (its workers have
    checkpointed and ended, and it has ended); returns those still holding it."""
    deadline = time.monotonic() + timeout
    left = [c for c in commands if c.lock is not None]
    while True:
        left = [c for c in left if lock_held(c.lock)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)
