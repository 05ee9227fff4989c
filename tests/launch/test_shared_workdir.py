"""One workdir shared by several users or commands (a lab's results folder): the ledger others append to follows the
umask, and a command that finds a job run by another says by whom (pid, host, user, grid, since when)."""
from __future__ import annotations

import io
import os
import socket
import stat
from types import SimpleNamespace

import pytest

from study.grids import Job
from study.launch.ledger import Ledger, user
from study.launch.locks import command_lock, try_lock
from study.launch.state import JobState, run_by
from study.launch.status import _running


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o027, 0o640)])
def test_a_new_ledger_gets_the_umask_mode_so_a_group_sharing_the_workdir_appends_to_it(tmp_path, umask, mode):
    """With umask 002 the second user of a lab's group appends to the first's ledger (a fixed 0644 refused them)."""
    old = os.umask(umask)
    try:
        Ledger(tmp_path, "g").append([{"event": "local", "job": "a", "state": "pending"}])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ledgers" / "g.jsonl").stat().st_mode) == mode


def test_run_by_names_the_process_its_host_user_grid_and_since_when():
    pending = {"event": "local", "job": "a", "state": "pending", "pid": 41, "host": "n1", "user": "ana",
               "grid": "other", "at": "2026-01-01T00:00:00+00:00"}
    assert run_by(pending) == ("pending in the command of pid 41 on n1 (user ana, grid other, since "
                               "2026-01-01T00:00:00+00:00)")
    running = {"event": "local", "job": "a", "state": "running", "pid": 42, "host": "n1"}  # an older study's line
    assert run_by(running) == "running in the worker of pid 42 on n1"


def test_a_second_submit_names_who_runs_the_jobs_it_skips(monkeypatch, tmp_path):
    """A job pending in another live command (another user's, of another grid sharing it): skipped, and said by
    whom; the command's own pending lines record its user."""
    from study.launch.local import scheduler

    wd = tmp_path / "wd"
    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}), Job(id="b", stage="pretrain", config={"axes": {}})]
    with command_lock(wd) as lock:
        Ledger(wd, "theirs").append([{"event": "local", "job": "a", "stage": "pretrain", "state": "pending",
                                      "log": None, "pid": 1, "host": "n7", "user": "ana", "lock": lock}])
        monkeypatch.setattr(scheduler, "job_lock", lambda workdir, job_id: None)  # `b`: taken, not started here
        err = io.StringIO()
        scheduler.run_local(SimpleNamespace(name="ours", jobs=jobs, path=None), wd, workers=1, err=err)
    said = err.getvalue()
    assert "skipped: 1 pending or running" in said, said
    assert "ours: not run here, as run elsewhere: 1 pending in the command of pid 1 on n7 (user ana, grid theirs, " \
           "since " in said, said
    ours = [e for e in Ledger(wd, "ours").events() if e["event"] == "local"]
    assert [(e["job"], e["state"], e["user"], e["pid"]) for e in ours] == [("b", "pending", user(), os.getpid())]


def test_status_says_who_runs_a_running_job(tmp_path):
    held = try_lock(tmp_path / "locks" / "a.lock")  # its worker lives
    Ledger(tmp_path, "g").append([{"event": "local", "job": "a", "stage": "pretrain", "state": "running",
                                   "pid": 99, "host": socket.gethostname(), "user": "ana", "log": None}])
    from study.launch.grid_states import grid_states

    try:
        states = grid_states(SimpleNamespace(name="g", jobs=[Job(id="a", stage="pretrain", config={"axes": {}})],
                                             path=None), tmp_path)
    finally:
        os.close(held)
    assert states["a"].state == "running" and states["a"].holder.startswith(
        f"running in the worker of pid 99 on {socket.gethostname()} (user ana, since "), states["a"]
    out = io.StringIO()
    _running(states, tmp_path, out)
    assert f"\n    {states['a'].holder}\n" in out.getvalue(), out.getvalue()
    assert JobState("b", "pretrain", "missing").holder == ""  # nothing live: no one named
