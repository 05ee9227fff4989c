"""study.launch.locks: a job's lock against another command's instant probe or holder, the probe against such a
probe, and a submit waiting for another."""
from __future__ import annotations

import errno
import fcntl
import os
import threading
import time

import study.launch.locks as locks
from study.launch.locks import command_lock, job_lock, lock_held, submit_lock, try_lock


def _probe_for(path, seconds: float) -> threading.Timer:
    """Hold a shared lock of `path` as `lock_held` does, released after `seconds` (another command's probe)."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    timer = threading.Timer(seconds, os.close, (fd,))
    timer.start()
    return timer


def test_a_job_lock_is_taken_once_another_commands_probe_of_it_ends(tmp_path):
    path = tmp_path / "locks" / "j1.lock"
    path.parent.mkdir()
    path.touch()
    timer = _probe_for(path, 0.01)  # ends after the first try; many tries (20 ms apart): a loaded machine is late
    try:
        fd = job_lock(tmp_path, "j1", tries=250)
    finally:
        timer.join()
    assert fd is not None
    try:
        assert lock_held(path) is True
    finally:
        os.close(fd)
    assert lock_held(path) is False


def test_another_commands_probe_is_not_taken_for_a_holder(tmp_path):
    """Two commands probing one free lock at once: each sees it free (the probes share the lock)."""
    path = tmp_path / "j1.lock"
    path.touch()
    timer = _probe_for(path, 5.0)
    try:
        assert lock_held(path) is False
    finally:
        timer.cancel()
        timer.function(*timer.args)


def test_a_job_lock_another_command_holds_is_refused_leaving_no_descriptor_open(tmp_path):
    held = job_lock(tmp_path, "j1")
    try:
        before = len(os.listdir("/proc/self/fd"))
        assert job_lock(tmp_path, "j1") is None
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        os.close(held)


def test_a_submit_waiting_for_another_says_so_and_goes_on_once_it_ends(tmp_path, capsys):
    other = try_lock(tmp_path / "ledgers" / ".submit.lock")
    timer = threading.Timer(0.5, os.close, (other,))  # long enough that the submit tries first on a loaded machine
    timer.start()
    with submit_lock(tmp_path):
        assert lock_held(tmp_path / "ledgers" / ".submit.lock") is True
    timer.join()
    assert f"waiting for another study submit on {tmp_path} to finish queueing" in capsys.readouterr().err


def test_a_job_lock_is_tried_again_by_default_while_another_commands_probe_holds_it(tmp_path, monkeypatch):
    answers = [None] * 4 + [7]
    monkeypatch.setattr(locks, "try_lock", lambda path: answers.pop(0))
    monkeypatch.setattr(locks.time, "sleep", lambda s: None)
    assert job_lock(tmp_path, "j1") == 7


def test_a_command_lock_is_released_and_its_file_removed_when_the_block_ends(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    with command_lock(tmp_path) as name:
        assert lock_held(tmp_path / "locks" / name) is True
    assert len(os.listdir("/proc/self/fd")) == before and not (tmp_path / "locks" / name).exists()


def test_a_lock_that_cannot_be_probed_is_unknown_not_held_and_its_file_stays(tmp_path, monkeypatch):
    """flock failing otherwise than "held" (an NFS server without its lock manager): None, so that the caller falls
    back on the pid, rather than a dead run read as live for ever; an old command lock so unknown is not removed."""
    old = tmp_path / "locks" / "command-h-1-x.lock"
    old.parent.mkdir()
    old.touch()
    os.utime(old, (time.time() - 3600,) * 2)

    def flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", flock)
    assert lock_held(old) is None
    locks._remove_stale_command_locks(old.parent)
    assert old.exists()
