"""study/launch/local/worker.py: a local worker process's exit code, its job lock in forked children, its signals."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from study.grids import Job
from study.launch.local.worker import PARENT_ENV, _end_with_parent, main
from study.launch.locks import try_lock
from study.launch.runner import write_job_file
from study.launch.signals import STOP_SIGNALS


def test_a_worker_exits_with_its_errors_exit_code_and_says_why(tmp_path, monkeypatch, capsys):
    """The local scheduler records a worker's exit code and its `study: error:` line in the ledger."""
    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.delenv("STUDY_THREADS", raising=False)
    job_file = write_job_file(tmp_path, Job(id="j1", stage="nostage", config={"axes": {}}))
    assert main(["--workdir", str(tmp_path), "--job", str(job_file), "--grid", "g"]) == 2
    assert "study: error: job j1: unknown stage 'nostage'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_worker_runs_its_job_on_the_threads_its_scheduler_gave_it(tmp_path, monkeypatch):
    """The local scheduler shares the usable cores among its workers (STUDY_THREADS): the worker sets torch's
    threads to its share before the job runs."""
    import torch

    before = torch.get_num_threads()
    share = 1 if before != 1 else 2
    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.setenv("STUDY_THREADS", str(share))
    job_file = write_job_file(tmp_path, Job(id="j1", stage="nostage", config={"axes": {}}))
    try:
        assert main(["--workdir", str(tmp_path), "--job", str(job_file), "--grid", "g"]) == 2
        assert torch.get_num_threads() == share
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("closed", [True, False])
def test_a_workers_forked_children_do_not_hold_its_job_lock(tmp_path, closed):
    """A worker holding its job lock forks a child (as its data loader does), then dies: with the lock's descriptor
    named in the environment the lock is free at once; without, the child still holds it. In a process of its own:
    an at-fork hook cannot be undone."""
    lock = tmp_path / "job.lock"
    script = textwrap.dedent(f"""
        import multiprocessing, os, sys, time
        from pathlib import Path
        from study.launch.locks import try_lock
        from study.launch.local import worker
        fd = try_lock(Path({str(lock)!r}))
        if {closed!r}:
            os.environ[worker.LOCK_FD_ENV] = str(fd)
        worker._lock_not_inherited()

        def live():  # runs after the at-fork hooks: says so, then lives on
            Path({str(tmp_path / "ready")!r}).write_text("")
            time.sleep(30)

        child = multiprocessing.get_context("fork").Process(target=live, daemon=True)
        child.start()
        Path({str(tmp_path / "child")!r}).write_text(str(child.pid))
        os._exit(0)  # the worker dies; its child lives on
    """)
    subprocess.run([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                   check=True)  # no pipe: the child would hold it open
    child = int((tmp_path / "child").read_text())
    deadline = time.time() + 30  # the child may not have run its at-fork hook yet (a loaded machine)
    while not (tmp_path / "ready").exists() and time.time() < deadline:
        time.sleep(0.05)
    try:
        fd = try_lock(lock)
        assert (fd is not None) == closed
    finally:
        subprocess.run(["kill", "-KILL", str(child)], capture_output=True)


def test_a_forked_childs_own_fork_leaves_the_file_that_took_the_locks_number_open(tmp_path):
    """The child closes the lock's descriptor; a file it opens next may take that number; its own child (a data
    loader worker's pipe, say) must find that file open, not closed again by the hook."""
    lock, out = tmp_path / "job.lock", tmp_path / "grandchild"
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from study.launch.locks import try_lock
        from study.launch.local import worker
        fd = try_lock(Path({str(lock)!r}))
        os.environ[worker.LOCK_FD_ENV] = str(fd)
        worker._lock_not_inherited()
        if os.fork() == 0:  # the child: the lock's number is free, the next file takes it
            again = os.open({str(tmp_path / "other")!r}, os.O_RDWR | os.O_CREAT)
            if os.fork() == 0:  # the grandchild
                try:
                    os.fstat(again)
                    Path({str(out)!r}).write_text(f"open {{again == fd}}")
                except OSError:
                    Path({str(out)!r}).write_text("closed")
                os._exit(0)
            os.wait()
            os._exit(0)
        os.wait()
    """)
    subprocess.run([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                   check=True)
    assert out.read_text() == "open True"  # the number was reused, and the file behind it stayed open


def test_a_lock_descriptor_that_is_not_a_number_is_ignored(monkeypatch):
    """STUDY_JOB_LOCK_FD is the scheduler's; any other value (empty, or not a number) starts the job all the same,
    with no descriptor to close in forked children (and none registered: nothing to undo in this process)."""
    from study.launch.local import worker

    for value in ("", "none", "-1"):
        monkeypatch.setenv(worker.LOCK_FD_ENV, value)
        worker._lock_not_inherited()
        assert worker._inherited_lock is None


def test_a_worker_unblocks_the_stop_signals_its_scheduler_held_while_starting_it(monkeypatch):
    """The scheduler starts a worker with the stop signals blocked (signals.stop_signals_held), and a child inherits
    its parent's mask: left blocked, a SIGTERM or Ctrl-C sent to the worker itself would never arrive."""
    monkeypatch.delenv(PARENT_ENV, raising=False)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {*STOP_SIGNALS, signal.SIGUSR2})
    try:
        _end_with_parent()
        assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {*STOP_SIGNALS, signal.SIGUSR2}
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_whose_scheduler_died_before_it_asked_to_be_told_stops_at_once():
    """Its `study submit` gone before the request took effect (the worker was adopted by another process), the
    kernel will never signal it: it signals itself, and stops as it would have (SIGUSR2: checkpoint, then end)."""
    script = textwrap.dedent(f"""
        import os, signal
        from study.launch.local.worker import _end_with_parent
        got = []
        signal.signal(signal.SIGUSR2, lambda *a: got.append(1))
        os.environ[{PARENT_ENV!r}] = str(os.getppid())
        _end_with_parent()
        print(len(got), end=" ")
        os.environ[{PARENT_ENV!r}] = str(os.getpid())  # not its parent: as one that died
        _end_with_parent()
        print(len(got))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout == "0 1\n", done.stderr[-2000:]


@pytest.mark.parametrize("code", ["ENOSPC", "EACCES", "EIO"])
def test_a_worker_that_cannot_write_says_the_file_and_why_in_one_line(tmp_path, monkeypatch, capsys, code):
    """A write the machine refuses (a full disk, a quota, no permission: simulated here by monkeypatching run_job to
    raise the OSError a write would, no tmpfs mount) ends the worker with exit 2 and one `study: error:` line naming
    the file (which the scheduler puts in the ledger and `study status` shows), with the space left for a full disk,
    not a traceback; another OSError (EIO: perhaps a bug) keeps its traceback."""
    import errno
    import os

    from study.launch.local import worker

    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.delenv("STUDY_THREADS", raising=False)
    job_file = write_job_file(tmp_path, Job(id="j1", stage="pretrain", config={"axes": {}}))
    target = str(tmp_path / "jobs" / "j1" / "encoder.pt")
    err = OSError(getattr(errno, code), os.strerror(getattr(errno, code)), target)

    def refused(*args):
        raise err

    monkeypatch.setattr(worker, "run_job", refused)
    if code == "EIO":
        with pytest.raises(OSError):
            main(["--workdir", str(tmp_path), "--job", str(job_file)])
        return
    assert main(["--workdir", str(tmp_path), "--job", str(job_file)]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"study: error: {target}: {os.strerror(getattr(errno, code))}") and "Traceback" not in said
    assert ("GB free there now" in said) == (code == "ENOSPC"), said
