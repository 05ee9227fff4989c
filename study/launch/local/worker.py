"""A local worker process (`python -m study.launch.local.worker --workdir W --job FILE`): `run_job` of one job,
started by the local scheduler, which it outlives by no more than a checkpoint (`_end_with_parent`), and whose job
lock its forked children do not hold (`_lock_not_inherited`).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys

from study.atomic import NO_SPACE, free_space
from study.errors import StudyError, not_yours, os_reason
from study.launch.runner import (SUBMIT_DIR, enter_submit_folder, read_job_file, run_job, say_if_not_the_copy,
                                 threads_from_env)
from study.launch.signals import STOP_SIGNALS
from study.parent_death import signal_when_parent_dies

PARENT_ENV = "STUDY_PARENT_PID"  # set by the local scheduler: the `study submit` process that started this worker
LOCK_FD_ENV = "STUDY_JOB_LOCK_FD"  # set by the local scheduler: the descriptor of the job lock it passed this worker


_inherited_lock: int | None = None  # the job lock's descriptor, until a forked child has closed its copy


def _lock_not_inherited() -> None:
    """The job lock (study.launch.locks.job_lock) this worker holds is closed in every process it forks (its data
    loader's workers): a worker killed (SIGKILL) frees its job at once, not once those notice and end seconds later
    (meanwhile `study status` would say running and a retry would skip the job). Closed once: a child's own fork
    leaves alone whatever file has the number by then."""
    global _inherited_lock
    fd = os.environ.get(LOCK_FD_ENV, "")
    if fd.isdigit():
        _inherited_lock = int(fd)
        os.register_at_fork(after_in_child=_close_inherited_lock)


def _close_inherited_lock() -> None:
    global _inherited_lock
    fd, _inherited_lock = _inherited_lock, None
    if fd is not None:
        with contextlib.suppress(OSError):  # closed already
            os.close(fd)


def _end_with_parent() -> None:
    """A local worker ends as if stopped (SIGUSR2: the training loop checkpoints, then ends) when its `study submit`
    dies, also by SIGKILL: it runs in a session of its own, so nothing else would stop it (Linux: PR_SET_PDEATHSIG).
    The stop signals its parent blocked around starting it are unblocked."""
    parent = os.environ.get(PARENT_ENV)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {*STOP_SIGNALS, signal.SIGUSR2})
    if not parent or not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    if not signal_when_parent_dies(signal.SIGUSR2, int(parent)):  # it died already: stop now
        os.kill(os.getpid(), signal.SIGUSR2)


WRITE_REFUSED = NO_SPACE | {errno.EACCES, errno.EPERM, errno.EROFS}  # the machine's doing, not the code's


def write_refused(e: OSError) -> str:
    """A write the machine refused, in one line: the file, the reason, and, for a full disk or quota, the space left
    there and that a rerun resumes (the scheduler's `disk_full` reads this line in the job's log); for a permission,
    whose file or folder refused it (`not_yours`: another user's of a shared workdir)."""
    where = f"{e.filename}: " if e.filename else ""
    if e.errno not in NO_SPACE or not e.filename:
        return f"{where}{os_reason(e)}{not_yours(e)}"
    return (f"{where}{os_reason(e)} ({free_space(e.filename)}): free space, then rerun the job: it resumes from what "
            "it last saved")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m study.launch.local.worker",
                                description="run one job of a grid (worker)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--job", required=True, help="the job's job.json")
    p.add_argument("--grid", default=None)
    args = p.parse_args(argv)
    say_if_not_the_copy()
    enter_submit_folder(os.environ.get(SUBMIT_DIR))  # started in the copy of study's code it imports (snapshot)
    _end_with_parent()
    _lock_not_inherited()
    threads_from_env()
    try:
        path = run_job(read_job_file(args.job), args.workdir, args.grid)
    except StudyError as e:
        print(f"study: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in WRITE_REFUSED:
            raise  # a bug's, with its traceback
        print(f"study: error: {write_refused(e)}", file=sys.stderr)
        return 2
    print(f"[run-job] result written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
