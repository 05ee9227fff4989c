"""study.flock: `locked`, one holder at a time across processes, a killed holder blocking nobody; `no_flock`, the
errors of a filesystem without flock, not those of a taken lock or a bad call."""
import errno
import fcntl
import multiprocessing
import os
import signal
import threading
import time

import pytest

from study.errors import StudyError
from study.flock import NO_FLOCK_ERRNOS, locked, no_flock


def _hold(path, ready):
    with locked(path, "waiting"):
        ready.set()
        time.sleep(600)


def test_a_killed_holder_leaves_no_lock_and_a_live_one_is_refused_or_waited_for(tmp_path, capsys):
    path = tmp_path / "sub" / ".x.lock"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StudyError, match="busy"):
            with locked(path, "busy", wait=False):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(60)
        assert path.exists()  # the file stays; the kernel dropped the lock with its holder
        with locked(path, "waiting", wait=False):
            with open(path) as other:  # held: another open file cannot take it
                with pytest.raises(BlockingIOError):
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not path.exists()
    finally:
        if holder.is_alive():
            holder.kill()
    assert "waiting" not in capsys.readouterr().err


def test_a_waiter_whose_holder_removed_the_file_locks_the_file_now_at_the_path(tmp_path, capsys):
    """The holder removes the lock file before it lets go, so the waiter it wakes holds a file no longer at the
    path: the waiter must lock the path's file instead (made anew), else a third caller takes the lock beside it."""
    path = tmp_path / ".x.lock"
    acquired, release = threading.Event(), threading.Event()

    def waiter():
        with locked(path, "second waits"):
            acquired.set()
            release.wait(60)

    thread = threading.Thread(target=waiter)
    try:
        with locked(path, "first waits"):
            thread.start()
            err, deadline = "", time.monotonic() + 60
            while "second waits" not in err and time.monotonic() < deadline:  # it opened the file and blocks on it
                time.sleep(0.01)
                err += capsys.readouterr().err
            assert "second waits" in err
        assert acquired.wait(60)
        assert path.exists()
        with pytest.raises(StudyError, match="busy"):
            with locked(path, "busy", wait=False):
                pass
    finally:
        release.set()
        if thread.is_alive():
            thread.join(60)
    assert not path.exists()


@pytest.mark.parametrize("code", sorted(NO_FLOCK_ERRNOS))
def test_a_filesystem_without_flock_runs_the_block_unlocked(tmp_path, monkeypatch, code):
    """A manifest folder on a filesystem without flock (Lustre without `-o flock`, NFS without lockd): the build
    runs, told it holds no lock; another flock error is raised."""
    def refuse(fd, op):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", refuse)
    with locked(tmp_path / ".x.lock", "busy") as held:
        assert held is False


def test_a_lock_file_that_cannot_be_made_runs_the_block_unlocked(tmp_path, monkeypatch):
    """A folder not ours to write (another user's manifests, read only): nothing we write there needs the lock.
    (Stood in by `os.open` failing: tests run as root, whom no folder's mode stops.)"""
    def denied(path, flags, mode=0o777):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(os, "open", denied)
    with locked(tmp_path / ".x.lock", "busy") as held:
        assert held is False


def test_another_flock_error_is_raised(tmp_path, monkeypatch):
    def bad_descriptor(fd, op):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(fcntl, "flock", bad_descriptor)
    with pytest.raises(OSError) as e:
        with locked(tmp_path / ".x.lock", "busy"):
            raise AssertionError("ran")
    assert e.value.errno == errno.EBADF


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL])
def test_a_filesystem_without_flock(code):
    assert no_flock(OSError(code, "x"))


@pytest.mark.parametrize("code", [errno.EWOULDBLOCK, errno.EBADF, errno.EINTR, None])
def test_other_errors(code):
    assert not no_flock(OSError(code, "x") if code is not None else OSError("x"))
