"""`run_jobs`: one function over many files' jobs, here or in a pool of processes, with a progress line; for jobs
that read images, `init_image_reader` (the initializer) and `image_reader()` (in the job)."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

from study.manifests.manifest import Manifest
from study.parent_death import signal_when_parent_dies

_WORKER: dict = {}  # this process's image reader, set by init_image_reader
PROGRESS_EVERY_S = 60.0  # off a terminal, a progress line at least this often (a tenth of ImageNet takes minutes)


def run_jobs(fn: Callable[[Any], str | None], jobs: list, workers: int, what: str,
             initializer: Callable | None = None, initargs: tuple = ()) -> list[str]:
    """`fn(job)` for every job (in `workers` processes when more than one, each set up by `initializer`), returning
    the results that are not None in job order. A worker ends when this process dies, also by SIGKILL (Linux): an
    orphan would wait for jobs forever, holding the locks it inherited (materialize's folder lock). Progress on stderr,
    "[manifest] <i>/<n> <what>": rewritten in place on a terminal, else a line every tenth of the jobs, and after a job
    that ends `PROGRESS_EVERY_S` after the last line (a log file gets lines, not one run-on line, and is never silent
    for long: a tenth of ImageNet's images decodes in minutes)."""
    tty = sys.stderr.isatty()
    step = max(1, len(jobs) // (100 if tty else 10))
    start, end = ("\r", "") if tty else ("", "\n")
    found: list[str] = []

    def collect(results) -> None:
        said = time.monotonic()
        for i, r in enumerate(results, 1):
            if r:
                found.append(r)
            if i % step == 0 or i == len(jobs) or (not tty and time.monotonic() - said >= PROGRESS_EVERY_S):
                said = time.monotonic()
                print(f"{start}[manifest] {i}/{len(jobs)} {what}", end=end, file=sys.stderr, flush=True)

    if workers > 1 and len(jobs) > 1:
        # forked on Linux whatever the default start method (Python 3.14's is forkserver, whose children outlive
        # this process): a worker must be this process's own child, whose death it is told of
        fork = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
        with ProcessPoolExecutor(workers, mp_context=fork, initializer=_start_worker,
                                 initargs=(os.getpid() if fork else None, initializer, initargs)) as pool:
            collect(pool.map(fn, jobs, chunksize=max(1, min(256, len(jobs) // (workers * 4) or 1))))
    else:
        if initializer is not None:
            initializer(*initargs)
        collect(map(fn, jobs))
    if jobs and tty:
        print(file=sys.stderr)
    return found


def _start_worker(parent: int | None, initializer: Callable | None, initargs: tuple) -> None:
    """A pool worker's start: killed when its parent (pid `parent`; None: whichever started it) dies, then
    `initializer(*initargs)`."""
    if not signal_when_parent_dies(signal.SIGKILL, os.getppid() if parent is None else parent):  # it died already
        os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def init_image_reader(name: str, meta: dict) -> None:
    """`run_jobs`' initializer for jobs that read images: this process's reader, training's (`ImageReader`), made
    from the manifest's metadata only (each job carries its row's values; the table is never read)."""
    from study.train.images import ImageReader

    _WORKER["reader"] = ImageReader(Manifest(name, meta))


def image_reader():
    """The reader `init_image_reader` set up in this process."""
    return _WORKER["reader"]
