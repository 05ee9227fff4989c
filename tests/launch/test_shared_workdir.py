"""One workdir shared by several users or commands (a lab's results folder): the ledger others append to follows the
umask, a command that finds a job run by another says by whom (pid, host, user, grid, since when), and a file one
user keeps from the others (made without group write) fails what writes it, naming its owner."""
from __future__ import annotations

import io
import json
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

from launch_helpers import fake_commands, fake_plan, grid_text, run_cli, submit
from other_user import another_users


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
        scheduler.run_local(fake_plan("ours", jobs), wd, workers=1, err=err)
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


def test_status_says_which_labmate_and_grid_queued_a_shared_slurm_job(slurm, env):
    """Grid `theirs`, another user's, queued on Slurm a job grid `ours` shares (a job is queued once): the status of
    `ours` names that user and grid; a job this user's own submit of `ours` queued names no one."""
    from study.launch.grid_states import grid_states
    from study.launch.status import _queued_elsewhere

    wd = env / "wd"
    Ledger(wd, "theirs").append([{"event": "queued", "batch": "t", "job": "a", "stage": "pretrain",
                                  "slurm_job_id": "101_0", "user": "ana"}])
    Ledger(wd, "ours").append([{"event": "queued", "batch": "o", "job": "b", "stage": "pretrain",
                                "slurm_job_id": "102_0", "user": user()}])
    (slurm / "sacct").write_text("101_0|RUNNING|n1|Unknown\n102_0|PENDING|None|Unknown\n")
    jobs = [Job(id=i, stage="pretrain", config={"axes": {}}) for i in ("a", "b")]
    states = grid_states(SimpleNamespace(name="ours", jobs=jobs, path=None), wd)
    assert (states["a"].state, states["a"].holder) == ("running", "queued on Slurm by user ana, grid theirs")
    assert (states["b"].state, states["b"].holder) == ("pending", "")
    out = io.StringIO()
    _queued_elsewhere(states, out)
    assert "1 live job(s) of this grid queued by another grid or user of the workdir:\n  1 queued on Slurm by user " \
        "ana, grid theirs: a\n" in out.getvalue(), out.getvalue()


def test_cancel_of_a_grid_a_labmate_queued_says_scancel_refused_their_jobs(env, monkeypatch):
    """Ana queued grid g's jobs; another user's `study cancel` of g meets scancel's refusal: said cancelled (and to be
    run again with --retry-failed) they were not, and recorded cancelled by it in the ledger. (Stand-ins for sacct
    and scancel: the test cluster runs its tests as root, whom scancel never refuses.)"""
    from study.grids import plan_grid

    grid = env / "g.yaml"
    grid.write_text(grid_text("g", seeds=(0,)))
    job = plan_grid(grid).jobs[0]
    Ledger(env / "wd", "g").append([{"event": "queued", "batch": "b1", "job": job.id, "stage": job.stage,
                                     "slurm_job_id": "101", "array_job_id": "101", "folder": "f", "user": "ana"}])
    bin_dir = fake_commands(env / "bin", sacct='printf "JobID|State|NodeList\\n101|RUNNING|n1\\n"',
                            scancel='echo "scancel: error: Kill job error on job id 101: Access/permission denied" '
                                    '>&2; exit 1')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(env / "wd")])
    assert code == 0, err
    assert out.startswith("cancelled 0 Slurm job(s) of grid g\n1 Slurm job(s) of grid g not cancelled, another user's "
                          "(101; queued by user ana): scancel refused them"), out
    assert "to run them again" not in out and "scancel refused some" not in out, out
    assert "cancelled" not in [e["event"] for e in Ledger(env / "wd", "g").events()]


@pytest.mark.parametrize("theirs_first", [False, True])
def test_cancel_names_another_grids_jobs_left_waiting_on_what_it_cancelled(env, monkeypatch, theirs_first):
    """Grid b shares grid a's pretraining job, queued by a, and queued its probe with an afterok on it; `study cancel`
    of a leaves that probe pending for ever (DependencyNeverSatisfied), which it says. A probe queued before a's job
    was (its dependency another, older Slurm job) is not named. (Stand-ins for sacct and scancel.)"""
    from study.grids import plan_grid
    from study.launch.runner import write_job_file

    grid, wd = env / "a.yaml", env / "wd"
    grid.write_text(grid_text("a", seeds=(0,)))
    pretrain, probe = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    write_job_file(wd, probe)
    Ledger(wd, "a").append([{"event": "queued", "batch": "b1", "job": pretrain.id, "stage": "pretrain",
                             "slurm_job_id": "101", "array_job_id": "101", "folder": "f",
                             "at": "2026-12-07T10:00:00+00:00"}])
    Ledger(wd, "b").append([{"event": "queued", "batch": "b2", "job": probe.id, "stage": "evaluate",
                             "slurm_job_id": "102", "array_job_id": "102", "folder": "f",
                             "at": f"2026-12-07T{'09' if theirs_first else '11'}:00:00+00:00"}])
    bin_dir = fake_commands(env / "bin", sacct='printf "JobID|State|NodeList\\n101|PENDING|None\\n102|PENDING|None\\n"',
                            scancel="exit 0")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
    assert code == 0, err
    assert out.startswith("cancelled 1 Slurm job(s) of grid a\n"), out
    said = (f"1 job(s) of grid b wait on jobs cancelled here and will not start (Slurm: DependencyNeverSatisfied; "
            f"{probe.id}): `study cancel` that grid, then submit it again once these are queued again\n")
    assert (said in out) != theirs_first, out


def test_retry_failed_queues_no_pending_task_that_a_plain_squeue_does_not_list(slurm, env, monkeypatch):
    """The grid's arrays wait in a hidden partition (or one of a group the user is not in: a labmate's), which squeue
    lists only with -a, and the user's login profile exports SQUEUE_USERS: a plain squeue lists none of the pending
    tasks, which read cancelled as tasks Slurm dropped (slurm.state.REMOVED), and `--retry-failed` queued every one
    of them a second time, their first copies still pending."""
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("hidden", seeds=(0, 1)))
    assert "queued 4 job(s)" in submit(grid, wd)
    sids = sorted(e["slurm_job_id"] for e in Ledger(wd, "hidden").events() if e["event"] == "queued")
    assert len(sids) == 4 and sum("_" in sid for sid in sids) == 2, sids  # the pretraining array's tasks, probes
    (slurm / "sacct").write_text("".join(f"{sid}|PENDING|None|Unknown\n" for sid in sids))
    ended, live = ("".join(f"{sid} PENDING {cols}\\n" for sid in sids) for cols in ("Unknown Priority", "Priority"))
    fake_commands(slurm / "bin", squeue='case "$*" in *--name*) exit 0;; esac\n'
                                        'case " $* " in *" -a "*) ;; *) exit 0;; esac\n'
                                        'if env | grep -q "^SQUEUE_"; then exit 0; fi\n'
                                        f'case "$*" in *%e*) printf "{ended}";; *) printf "{live}";; esac')
    monkeypatch.setenv("SQUEUE_USERS", user())
    out = run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])[1]
    assert {r["state"] for r in json.loads(out)["jobs"]} == {"pending"}, out
    err = submit(grid, wd, "--retry-failed")
    assert "queued 0 job(s)" in err and "4 pending or running" in err, err


def test_a_job_whose_files_another_user_keeps_fails_not_started_and_the_others_run(monkeypatch, tmp_path):
    """A lab's workdir where one user forgot umask 002: a job's lock file (or call file, or log) is theirs, not group
    writable. That job fails, "not started" with the refusal in its ledger line and its dependents cancelled; the
    command goes on with the others (it ended, stopping every worker it ran, at the first such file)."""
    import errno
    import subprocess
    import sys

    from study.launch.local import scheduler

    wd = tmp_path / "wd"
    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}),
            Job(id="b", stage="evaluate", config={"axes": {}}, depends_on=("a",)),
            Job(id="c", stage="pretrain", config={"axes": {}}),
            Job(id="d", stage="pretrain", config={"axes": {}})]
    real_lock, real_job_file, real_popen = scheduler.job_lock, scheduler.write_job_file, subprocess.Popen

    def job_lock(workdir, job_id):
        if job_id == "a":
            raise PermissionError(errno.EACCES, "Permission denied", str(wd / "locks" / "a.lock"))
        return real_lock(workdir, job_id)

    def write_job_file(workdir, job):
        if job.id == "c":
            raise PermissionError(errno.EACCES, "Permission denied", str(wd / "jobs" / "c" / "job.json"))
        return real_job_file(workdir, job)

    monkeypatch.setattr(scheduler, "job_lock", job_lock)
    monkeypatch.setattr(scheduler, "write_job_file", write_job_file)
    monkeypatch.setattr(scheduler.subprocess, "Popen",  # a worker that ends at once (without a result)
                        lambda argv, **kw: real_popen([sys.executable, "-c", "pass"], **kw))
    err = io.StringIO()
    code = scheduler.run_local(fake_plan("g", jobs), wd, workers=1, err=err)
    said = err.getvalue()
    assert code == 1, said
    states = {e["job"]: e for e in Ledger(wd, "g").events() if e["state"] != "pending"}
    assert states["a"]["state"] == "failed" and states["a"]["error"] == \
        f"not started: {wd / 'locks' / 'a.lock'}: Permission denied", states["a"]
    assert states["c"]["state"] == "failed" and states["c"]["error"] == \
        f"not started: {wd / 'jobs' / 'c' / 'job.json'}: Permission denied", states["c"]
    assert states["b"]["state"] == "cancelled" and states["b"]["error"] == "dependency a failed"
    assert states["d"]["state"] == "failed" and "started pretrain d" in said, said  # run: its worker ran
    assert f"FAILED pretrain a [] (not started: {wd / 'locks' / 'a.lock'}: Permission denied)" in said, said
    free = try_lock(wd / "locks" / "c.lock")  # the lock of the job not started is let go
    assert free is not None
    os.close(free)


def test_a_worker_refused_a_write_names_whose_file_it_is(tmp_path, monkeypatch):
    """The one line a worker ends with (and `study status` shows) for a file another user of the workdir keeps."""
    import errno

    from study.launch.local.worker import write_refused

    theirs = another_users(tmp_path / "jobs" / "x" / "scored", monkeypatch)
    said = write_refused(PermissionError(errno.EACCES, "Permission denied", str(theirs / "20.json")))
    assert said.startswith(f"{theirs / '20.json'}: Permission denied; {theirs} belongs to "), said
    assert "umask 002" in said


def test_set_aside_refused_names_whose_job_folder_it_is(tmp_path, monkeypatch):
    """--set-aside-stale moves a job folder by one rename, which another user's folder refuses (renaming a folder
    across folders rewrites its `..`): the message names its owner and the remedy."""
    import errno

    from study.errors import StudyError
    from study.launch import stale

    folder = another_users(tmp_path / "jobs" / "a", monkeypatch)

    def refuse(src, dest):
        raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dest))

    monkeypatch.setattr(stale.os, "replace", refuse)
    plan = fake_plan("g", [Job(id="a", stage="pretrain", config={"axes": {}})])
    with pytest.raises(StudyError) as e:
        stale.set_aside(plan, tmp_path, ["a"])
    assert f"cannot move {folder} to " in str(e.value) and f"Permission denied; {folder} belongs to " in str(e.value)


def test_cancel_names_the_user_of_a_command_it_may_not_stop(tmp_path, monkeypatch):
    """Another user's `study submit --cluster local` on this host: its SIGTERM is refused, and `study cancel` names
    whose it is and who may stop it (os.kill stands in for the refusal)."""
    from study.launch import cancel
    from study.launch.local import stop

    def refuse(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(stop.os, "kill", refuse)
    wd, host = tmp_path / "wd", socket.gethostname()
    with command_lock(wd) as lock:
        Ledger(wd, "g").append([{"event": "local", "job": "a", "stage": "pretrain", "state": "pending", "log": None,
                                 "pid": 4242, "host": host, "user": "ana", "lock": lock}])
        out = io.StringIO()
        cancel._stop_local(fake_plan("g", []), wd, None, 1, out)
    assert out.getvalue() == ("stop these `study submit --cluster local` of grid g where they run (Ctrl-C or kill; "
                              f"another user's: by that user or root): pid 4242 on {host} (user ana)\n")
