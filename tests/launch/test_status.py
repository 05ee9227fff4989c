"""`study status` and `study cancel` (study/launch/status.py) against stand-ins for Slurm's commands (fake_slurm):
answers the one-node test cluster cannot be made to give (a held job, a job that ended a second ago, an unreachable
controller), and the ledger written by real `study submit --cluster slurm` runs through them."""
from __future__ import annotations

import datetime as dt
import io
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import submitit

from study.grids import Job, plan_grid
from study.launch.ledger import Ledger
from study.launch.locks import command_lock
from study.launch.slurm.state import query, stuck_reason
from study.launch.state import JobState
from study.launch.status import RUNNING_SHOWN, _cancelled_by_dependency, _running

from launch_helpers import grid_text, run_cli


def _submit(grid, env, *extra):
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), *extra])
    assert code == 0, err
    return err


def _sacct(slurm, states: dict[str, str], end: str = "Unknown") -> None:
    (slurm / "sacct").write_text("".join(f"{sid}|{state}|n1|{end}\n" for sid, state in states.items()))


def _queued(wd, grid: str) -> dict[str, str]:
    return {e["job"]: e["slurm_job_id"] for e in Ledger(wd, grid).events() if e["event"] == "queued"}


def _log(wd, grid: str, sid: str, task: int = 0) -> Path:
    """The stderr log submitit writes for task `task` of Slurm job `sid`, in its array's folder (from the ledger)."""
    return submitit.core.utils.JobPaths(Ledger(wd, grid).replay().slurm_folders()[sid], job_id=sid, task_id=task).stderr


def test_a_copied_grid_file_with_the_same_name_neither_shows_nor_cancels_the_originals_jobs(env, slurm):
    """Ledgers are keyed on the grid's name: the jobs a copy (same `name:`, other settings) did not plan read as
    "queued by an earlier version of this grid file", and `study cancel copy.yaml` scancelled the original's jobs."""
    original, copy = env / "original.yaml", env / "copy.yaml"
    original.write_text(grid_text("samename"))
    copy.write_text(grid_text("samename", steps=7))  # other job ids, same grid name
    _submit(original, env)
    ids = _queued(env / "wd", "samename")
    assert sorted(ids.values()) == ["101", "102"]
    _sacct(slurm, {"101": "RUNNING", "102": "PENDING"})

    out = run_cli(["status", str(copy), "--workdir", str(env / "wd")])[1]
    assert "earlier version" not in out, out
    assert f"2 Slurm job(s) queued by {original.resolve()} under the same grid name 'samename' are live" in out
    code, out, err = run_cli(["cancel", str(copy), "--workdir", str(env / "wd")])
    assert code == 0, err
    assert not (slurm / "scancelled").exists(), (slurm / "scancelled").read_text()
    assert "cancelled 0 Slurm job(s)" in out and f"2 Slurm job(s) queued by {original.resolve()}" in out

    original.write_text(grid_text("samename", steps=8))  # an edit in place: its old jobs are its own to cancel
    code, out, _ = run_cli(["cancel", str(original), "--workdir", str(env / "wd")])
    assert code == 0 and "cancelled 2 Slurm job(s) of grid samename (2 of them queued by an earlier version" in out
    assert (slurm / "scancelled").read_text().split() == ["101", "102"]


def test_cancel_names_the_shared_jobs_it_leaves_also_beside_stale_ones(env, slurm):
    """`len(live) > len(ids)` counted the stale jobs it cancelled against the shared ones it left: here 2 shared,
    2 stale, and it said nothing of the shared ones."""
    a, b = env / "a.yaml", env / "b.yaml"
    a.write_text(grid_text("sha", seeds=(0,)))
    b.write_text(grid_text("shb", seeds=(0, 1)))
    _submit(a, env)  # 101, 102: seed 0's jobs
    _submit(b, env)  # 103, 104: seed 1's (seed 0's are a's, live)
    _sacct(slurm, {sid: "PENDING" for sid in ("101", "102", "103", "104")})
    b.write_text(grid_text("shb", seeds=(0,)))  # b's own jobs (seed 1) left the plan: stale
    code, out, err = run_cli(["cancel", str(b), "--workdir", str(env / "wd")])
    assert code == 0, err
    assert "cancelled 2 Slurm job(s) of grid shb (2 of them queued by an earlier version" in out, out
    assert "2 shared job(s) queued by another grid left running (101, 102; queued by grid sha)" in out, out
    assert (slurm / "scancelled").read_text().split() == ["103", "104"]


def test_cancel_waits_for_a_submit_in_progress_and_cancels_what_it_queued(env, slurm):
    """Without an open intent, cancel took no lock: run while a submit was between its states and its `queued`
    lines, it cancelled nothing of what that submit then queued."""
    from study.launch.locks import try_lock

    grid = env / "g.yaml"
    grid.write_text(grid_text("inflight"))
    wd = env / "wd"
    jobs = plan_grid(grid).jobs
    fd = try_lock(wd / "ledgers" / ".submit.lock")  # the submit in flight
    assert fd is not None
    got: dict = {}
    canceller = threading.Thread(target=lambda: got.update(zip(("code", "out", "err"), run_cli(
        ["cancel", str(grid), "--workdir", str(wd)]))))
    try:
        canceller.start()
        canceller.join(1.5)
        assert canceller.is_alive(), got  # waits for the submit
        Ledger(wd, "inflight").append([{"event": "queued", "batch": "b", "job": j.id, "stage": j.stage,
                                        "slurm_job_id": str(201 + i), "array_job_id": str(201 + i), "folder": "f"}
                                       for i, j in enumerate(jobs)])
        _sacct(slurm, {"201": "RUNNING", "202": "PENDING"})
    finally:
        os.close(fd)
    canceller.join(30)
    assert not canceller.is_alive()
    assert got["code"] == 0 and "cancelled 2 Slurm job(s)" in got["out"], got
    assert (slurm / "scancelled").read_text().split() == ["201", "202"]


def test_status_names_pending_jobs_slurm_will_not_start_by_themselves(env, slurm):
    grid = env / "g.yaml"
    grid.write_text(grid_text("held", seeds=(0, 1)))
    _submit(grid, env)  # pretraining array 101 (2 tasks), probes 102 and 103
    _sacct(slurm, {"101_0": "PENDING", "101_1": "PENDING", "102": "PENDING", "103": "PENDING"})
    (slurm / "squeue").write_text("101_0 PENDING JobHeldUser\n101_1 PENDING Priority\n"
                                  "102 PENDING Dependency\n103 PENDING Dependency\n999 PENDING JobHeldAdmin\n")
    ids = {v: k for k, v in _queued(env / "wd", "held").items()}
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "2", "0", "0", "0"]  # still counted pending
    assert (f"1 pending job(s) that Slurm will not start as they stand: JobHeldUser: held; `scontrol release <id>` "
            f"frees it: pretrain {ids['101_0']} (slurm 101_0)") in out, out
    assert "Priority" not in out and "Dependency" not in out and "999" not in out

    (slurm / "squeue").write_text("101_0 PENDING PartitionTimeLimit\n101_1 PENDING QOSMaxJobsPerUserLimit\n"
                                  "102 PENDING DependencyNeverSatisfied\n103 PENDING launch failed requeued held\n")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "PartitionTimeLimit: it asks for what its partition" in out and "(slurm 101_0)" in out
    assert "QOSMaxJobsPerUserLimit" not in out  # clears as the user's other jobs end
    assert "DependencyNeverSatisfied: a job it waits for failed or was cancelled" in out
    assert "launch failed requeued held: held" in out

    (slurm / "squeue").write_text("101_0 PENDING JobHeldAdmin\n101_1 PENDING ReqNodeNotAvail, Reserved for "
                                  "maintenance\n102 PENDING Dependency\n103 PENDING Dependency\n")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "JobHeldAdmin: held by an administrator; ask them to release it" in out  # users cannot release it
    assert "ReqNodeNotAvail" not in out  # a drained node or a maintenance reservation: it clears by itself


def _local_end(seconds_ago: float) -> str:
    return (dt.datetime.now() - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_job_completed_seconds_ago_without_a_visible_result_is_finishing_not_failed(env, slurm):
    """On NFS the login node may not see a result file written on a compute node for up to a minute: a COMPLETED
    job read then as failed was rerun by --retry-failed. Within FINISHING_S of its end it is running (finishing);
    later it is failed."""
    from study.launch.status import grid_states

    grid = env / "g.yaml"
    grid.write_text(grid_text("finish"))
    _submit(grid, env)
    plan = plan_grid(grid)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    _sacct(slurm, {"101": "COMPLETED", "102": "PENDING"}, end=_local_end(10))
    st = grid_states(plan, env / "wd")[pre.id]
    assert st.state == "running" and "finishing" in st.detail, st
    err = _submit(grid, env, "--retry-failed")
    assert "queued 0 job(s)" in err and "2 pending or running" in err, err
    code, out, _ = run_cli(["cancel", str(grid), "--workdir", str(env / "wd")])
    assert code == 0 and (slurm / "scancelled").read_text().split() == ["102"]  # nothing to cancel of a finished one

    _sacct(slurm, {"101": "COMPLETED", "102": "PENDING"}, end=_local_end(600))
    st = grid_states(plan, env / "wd")[pre.id]
    assert st.state == "failed" and st.detail == "COMPLETED without a result file", st


def test_status_prints_its_table_when_slurm_cannot_settle_an_interrupted_submit(env, monkeypatch):
    """An open intent and no Slurm to ask: status exited 2 with no table. It prints the table, the intent's jobs
    counted pending and named unsettled; submit and cancel still refuse (they would decide from a guess)."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("unreach"))
    plan = plan_grid(grid)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    wd = env / "wd"
    Ledger(wd, "unreach").append([{"event": "intent", "batch": "b1", "name": "study-unreach-pretrain-b1",
                                   "stage": "pretrain", "jobs": [pre.id], "folder": str(wd / "submitit" / "%j")}])
    monkeypatch.setenv("PATH", str(env / "no-slurm-here"))
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert code == 0, err
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "1", "0", "0", "0"]
    assert out.splitlines()[3].split() == ["evaluate", "0", "0", "0", "0", "0", "1"]
    assert "1 job(s) unsettled, counted pending: an interrupted submit may have queued them" in out and pre.id in out
    assert "study: warning:" in err and "cannot ask Slurm" in err
    assert [e["event"] for e in Ledger(wd, "unreach").events()] == ["intent"]  # nothing decided
    code, _, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
    assert code == 2 and "cannot ask Slurm" in err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(wd)])
    assert code == 2 and "cannot ask Slurm" in err


def test_query_reads_the_end_of_completed_jobs_and_the_reasons_of_pending_ones(env, slurm):
    _sacct(slurm, {"7": "COMPLETED", "8": "PENDING", "9": "FAILED"}, end=_local_end(30))
    (slurm / "squeue").write_text("8 PENDING JobHeldAdmin\n")
    answer = query({sid: str(env / "submitit" / "a") for sid in ("7", "8", "9")}, reasons=True)
    assert 25 < answer.ended_s["7"] < 120 and set(answer.ended_s) == {"7"}
    assert answer.states == {"7": "COMPLETED", "8": "PENDING (JobHeldAdmin)", "9": "FAILED"}
    assert query({"8": str(env / "submitit" / "a")}).states == {"8": "PENDING"}  # squeue asked only with reasons
    t0 = time.time()
    assert query({}).states == {} and time.time() - t0 < 1


def test_status_shows_each_running_jobs_latest_progress_line_and_its_age(env, slurm):
    """A running job was only a count in the table: where it stands (its log's latest `[tag] ...` line) and how long
    ago its log was written (a job silent for hours may hang) are printed, from the log submitit writes."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("prog"))
    _submit(grid, env)
    ids = _queued(env / "wd", "prog")
    pre = next(j.id for j in plan_grid(grid).jobs if j.stage == "pretrain")
    ev = next(j.id for j in plan_grid(grid).jobs if j.stage == "evaluate")
    _sacct(slurm, {ids[pre]: "RUNNING", ids[ev]: "RUNNING"})
    log = _log(env / "wd", "prog", ids[pre])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("[pretrain] step 2/6 loss 2.7000 lr 0.3 10.0 img/s\n"
                   "[pretrain] step 4/6 loss 2.5000 lr 0.3 11.0 img/s\nsome library's line\n")
    old = time.time() - 3 * 3600
    os.utime(log, (old, old))

    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "running (2):" in out, out
    assert (f"pretrain {pre} (slurm {ids[pre]}): [pretrain] step 4/6 loss 2.5000 lr 0.3 11.0 img/s  [3.0 h ago]\n"
            f"    log: {log}\n" in out), out
    assert f"evaluate {ev} (slurm {ids[ev]}): no progress line in its log yet" in out, out


def test_status_without_workdir_reads_the_workdir_study_workdir_names(env, monkeypatch):
    """Without --workdir, a command reads the workdir $STUDY_WORKDIR names (./runs only where it is unset)."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("envwd", seeds=(0,)))
    monkeypatch.chdir(env)
    monkeypatch.setenv("STUDY_WORKDIR", str(env / "shared"))
    code, out, err = run_cli(["status", str(grid)])
    assert code == 0 and f"workdir {(env / 'shared').resolve()}\n" in out, err
    monkeypatch.delenv("STUDY_WORKDIR")
    code, out, err = run_cli(["status", str(grid)])
    assert code == 0 and f"workdir {(env / 'runs').resolve()}\n" in out, err


def test_status_says_how_many_running_jobs_it_did_not_show():
    states = {f"j{i}": JobState(f"j{i}", "pretrain", "running") for i in range(RUNNING_SHOWN + 3)}
    out = io.StringIO()
    _running(states, out)
    text = out.getvalue()
    assert f"running ({RUNNING_SHOWN + 3}):" in text and text.count("  pretrain j") == RUNNING_SHOWN
    assert text.endswith("  ... and 3 more\n")


def test_jobs_cancelled_because_their_dependency_was_cancelled_are_grouped_under_it():
    """A pretraining job cancelled (scancel, or `study cancel`) takes its evaluations with it: status groups them
    under it, as it does under a failed one."""
    p1 = Job(id="p1", stage="pretrain", config={"axes": {}})
    e1 = Job(id="e1", stage="evaluate", config={"axes": {}}, depends_on=("p1",))
    e2 = Job(id="e2", stage="evaluate", config={"axes": {}}, depends_on=("p1",))
    states = {"p1": JobState("p1", "pretrain", "cancelled", "CANCELLED by 1000"),
              "e1": JobState("e1", "evaluate", "cancelled", "CANCELLED by 0"),
              "e2": JobState("e2", "evaluate", "cancelled", "CANCELLED by 0")}
    groups = _cancelled_by_dependency(SimpleNamespace(jobs=[p1, e1, e2]), states)
    assert {cause: [st.job_id for st in group] for cause, group in groups.items()} == {"p1": ["e1", "e2"]}


def test_status_names_a_job_cancelled_by_its_dependency_once_under_its_cause(env):
    """A dependent cancelled because its pretraining failed is named in the group line of its cause, not also on a
    line of its own (as a job cancelled for another reason is)."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("casc"))
    plan = plan_grid(grid)
    pre = next(j.id for j in plan.jobs if j.stage == "pretrain")
    ev = next(j.id for j in plan.jobs if j.stage == "evaluate")
    wd = env / "wd"
    Ledger(wd, "casc").append([
        {"event": "local", "job": pre, "stage": "pretrain", "state": "failed", "log": None,
         "error": "exit code 2: study: error: boom"},
        {"event": "local", "job": ev, "stage": "evaluate", "state": "cancelled", "log": None,
         "error": f"dependency {pre} failed"}])
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert code == 0, err
    assert f"failed pretrain {pre} (exit code 2: study: error: boom)" in out, out
    assert f"cancelled 1 job(s) because their dependency {pre} failed: {ev}" in out, out
    assert f"cancelled evaluate {ev}" not in out and out.count(ev) == 1, out


def test_cancel_stops_only_the_live_local_commands_of_this_grid_file(env):
    """`study cancel` stops this grid file's local command also while all its jobs are still pending (waiting for a
    worker or a dependency); it leaves alone a command that ended long ago (its lock free, its pid since reused by
    another process) and a live command of another file under the same grid name. The commands' processes are
    stand-ins (`sleep`), each with its `pending` lines and its command lock as a real one has."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("stopg"))
    plan = plan_grid(grid)
    wd = env / "wd"
    host = socket.gethostname()
    ended, other_file, ours = procs = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        with command_lock(wd) as our_lock, command_lock(wd) as other_lock:
            Ledger(wd, "stopg").append([
                {"event": "local", "job": j.id, "stage": j.stage, "state": "pending", "log": None, "pid": p.pid,
                 "host": host, "lock": lock, "grid_file": file}
                for p, lock, file in ((ended, "command-ended.lock", str(grid.resolve())),
                                      (other_file, other_lock, str(env / "copy.yaml")),
                                      (ours, our_lock, str(grid.resolve())))
                for j in plan.jobs])
            code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
        assert code == 0, err
        assert f"stopped 1 `study submit --cluster local` of grid stopg (pid {ours.pid} on {host})" in out, out
        assert ours.wait(timeout=10) == -signal.SIGTERM
        assert ended.poll() is None and other_file.poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_limits_that_clear_as_other_jobs_end_are_not_called_stuck():
    """A limit on how many jobs a user, account or association runs at once clears as those end: not "will not
    start"; a limit of the job itself (its wall time, a minimum it does not reach) does not."""
    for reason in ("AssocMaxJobsLimit", "QOSMaxJobsPerUserLimit", "QOSMaxGRESPerAccount", "AssocGrpGRES",
                   "Priority", "Resources"):
        assert stuck_reason(f"PENDING ({reason})") is None, reason
    for reason in ("QOSMaxWallDurationPerJobLimit", "AssocMaxWallDurationPerJobLimit", "QOSMinGRES"):
        assert stuck_reason(f"PENDING ({reason})").startswith(f"{reason}: it asks for what its partition"), reason


def test_status_of_a_failed_multi_task_job_shows_the_log_of_the_task_that_failed(env, slurm):
    """Task 0 of a job of several ranks was often only killed (srun --kill-on-bad-exit): status points at the first
    task whose log holds the error, and prints its last lines."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("ranks"))
    _submit(grid, env)
    ids = _queued(env / "wd", "ranks")
    pre = next(j.id for j in plan_grid(grid).jobs if j.stage == "pretrain")
    _sacct(slurm, {ids[pre]: "FAILED", "102": "CANCELLED by 0"})
    logs = [_log(env / "wd", "ranks", ids[pre], t) for t in (0, 1)]
    logs[0].parent.mkdir(parents=True, exist_ok=True)
    logs[0].write_text("[pretrain] step 2/6\nsrun: error: task 0: Terminated\n")
    logs[1].write_text("Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory\n")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert f"failed pretrain {pre} (slurm {ids[pre]}, FAILED)\n  log: {logs[1]}\n" in out, out
    assert "  | torch.OutOfMemoryError: CUDA out of memory" in out and "Terminated" not in out, out
