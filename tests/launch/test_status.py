"""`study status` (study/launch/status.py; the states it reads: study/launch/grid_states.py; `study cancel`:
test_cancel.py) against stand-ins for Slurm's commands (fake_slurm): answers the one-node test cluster cannot be
made to give (a held job, a job that ended a second ago, an unreachable controller), and the ledger written by real
`study submit --cluster slurm` runs through them."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import submitit

from study.errors import StudyError
from study.grids import Job, plan_grid
from study.launch.ledger import Ledger
from study.launch.locks import command_lock, try_lock
from study.launch.slurm.state import query, stuck_reason
from study.launch.state import JobState
from study.launch.grid_states import (checkpoints_off_plan, from_this_file, grid_file, grid_states, outside_plan,
                                      ran_from_this_file, results_off_plan)
from study.launch.status import (RETRY_HINT, RUNNING_SHOWN, _ago, _cancelled_by_dependency, _running, _stopped,
                                 print_status, some_ids)
from study.paths import result_path
from study.results import write_result

from launch_helpers import REQUEUED_LOG, grid_text, run_cli, write_checkpoint


def _submit(grid, env, *extra):
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd"), *extra])
    assert code == 0, err
    return err


def _sacct(slurm, states: dict[str, str], end: str = "Unknown") -> None:
    (slurm / "sacct").write_text("".join(f"{sid}|{state}|n1|{end}\n" for sid, state in states.items()))


def _queued(wd, grid: str) -> dict[str, str]:
    return {e["job"]: e["slurm_job_id"] for e in Ledger(wd, grid).events() if e["event"] == "queued"}


def _submitted_pair(env, name: str) -> tuple[Path, dict[str, str], Job, Job]:
    """(grid file, job id -> Slurm id, its pretraining, its evaluation) of a one-seed grid `name` submitted to the
    stand-in Slurm."""
    grid = env / "g.yaml"
    grid.write_text(grid_text(name, seeds=(0,)))
    _submit(grid, env)
    jobs = plan_grid(grid).jobs
    pre, ev = (next(j for j in jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    return grid, _queued(env / "wd", name), pre, ev


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
    twin = env / "twin.yaml"
    twin.write_text(grid_text("samename"))  # the original's very jobs, from another file
    code, out, err = run_cli(["cancel", str(twin), "--workdir", str(env / "wd")])
    assert code == 0 and "cancelled 0 Slurm job(s)" in out, err
    assert f"2 shared job(s) queued by another grid left running (101, 102; queued by {original.resolve()})" in out
    assert not (slurm / "scancelled").exists(), (slurm / "scancelled").read_text()

    original.write_text(grid_text("samename", steps=8))  # an edit in place: its old jobs are its own to cancel
    code, out, _ = run_cli(["cancel", str(original), "--workdir", str(env / "wd")])
    assert code == 0 and "cancelled 2 Slurm job(s) of grid samename (2 of them queued by an earlier version" in out
    assert (slurm / "scancelled").read_text().split() == ["101", "102"]


def test_status_names_the_results_of_jobs_an_edit_of_the_grid_file_took_out_of_its_plan(env, slurm):
    """A job's id hashes its settings: after an edit every job reads missing, and the results of the earlier jobs
    are named (not of a copy of the grid under the same name, whose jobs are the other file's)."""
    grid, copy = env / "g.yaml", env / "copy.yaml"
    grid.write_text(grid_text("edited"))
    copy.write_text(grid_text("edited", steps=9))
    _submit(grid, env)
    ids = _queued(env / "wd", "edited")
    for job in ids:
        result_path(env / "wd", job).parent.mkdir(parents=True, exist_ok=True)
        result_path(env / "wd", job).write_text("{}")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "of no job of its plan now" not in out, out  # all of them planned
    out = run_cli(["status", str(copy), "--workdir", str(env / "wd")])[1]
    assert "of no job of its plan now" not in out, out  # the other file's jobs
    grid.write_text(grid_text("edited", steps=7))
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    said = f"\n{len(ids)} result(s) of jobs this grid file ran are of no job of its plan now ({some_ids(sorted(ids))})"
    assert said in out, out
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd"), "--where", "seed=0"])[1]
    assert (f"\n{len(ids)} result(s) of jobs this grid file ran are of no job of its plan now (of the whole grid: "
            "--where chooses among its plan's jobs only)") in out, out  # the same count: not the part's



def test_jobs_an_older_study_gave_other_ids_are_named_so_and_a_submit_that_queues_them_again_warns(env, slurm,
                                                                                                   monkeypatch):
    """study updated between two submits of an unchanged grid file, where the update changed how job ids hash their
    settings (as 8afefd1 did: a pretraining job's id hashes only its own method's section): the jobs the older study
    queued are of no job of the plan. Status read them as "queued by an earlier version of this grid file" and a
    submit queued the same settings again without a word while they ran: each is now named as an older study's with
    the job it is now, the submit warns that both run (with the scancel that stops the older), and the older ones'
    results and checkpoints are named so (a submit does not resume such a checkpoint)."""
    from study.grids import jobs as grid_jobs

    real = grid_jobs.id_config
    grid = env / "g.yaml"
    grid.write_text(grid_text("upgraded", seeds=(0,)))
    monkeypatch.setattr(grid_jobs, "id_config", lambda config: {**real(config), "an older rule": True})
    _submit(grid, env)  # by the older study
    monkeypatch.setattr(grid_jobs, "id_config", real)  # the update
    wd = env / "wd"
    older = {e["stage"]: (e["job"], e["slurm_job_id"]) for e in Ledger(wd, "upgraded").events()
             if e["event"] == "queued"}
    (old_pre, pre_sid), (old_ev, ev_sid) = older["pretrain"], older["evaluate"]
    pre, ev = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    assert {old_pre, old_ev}.isdisjoint({pre.id, ev.id})
    _sacct(slurm, {pre_sid: "RUNNING", ev_sid: "PENDING"})

    out = run_cli(["status", str(grid), "--workdir", str(wd)])[1]
    assert "earlier version of this grid file" not in out, out
    assert (f"\n2 Slurm job(s) queued by an older version of study are still live ({pre_sid} (job {old_pre}, now "
            f"{pre.id}), {ev_sid} (job {old_ev}, now {ev.id})): the same settings as jobs of this grid file, which "
            f"this version of study gives other ids") in out, out
    assert f"`scancel {pre_sid} {ev_sid}` stops the older ones" in out, out
    err = _submit(grid, env)
    assert (f"study: warning: 2 job(s) queued now have the same settings as Slurm job(s) an older version of study "
            f"queued under other ids, still queued or running: {pre.id} as {old_pre} (slurm {pre_sid}), {ev.id} as "
            f"{old_ev} (slurm {ev_sid})") in err, err
    assert f"`scancel {pre_sid} {ev_sid}` stops the older ones" in err and "queued 2 job(s) in 2 array(s)" in err, err
    assert "have the same settings" not in _submit(grid, env)  # the older ones are no longer queued anew

    _sacct(slurm, {pre_sid: "CANCELLED by 0", ev_sid: "COMPLETED"})  # the older evaluation ended: a result
    write_checkpoint(wd / "jobs" / old_pre / "checkpoint.pt", 5, 6)
    result_path(wd, old_ev).parent.mkdir(parents=True, exist_ok=True)
    result_path(wd, old_ev).write_text("{}")
    out = run_cli(["status", str(grid), "--workdir", str(wd)])[1]
    assert "of no job of its plan now" not in out and "older version of study are still live" not in out, out
    assert (f"\n1 result(s) of jobs an older version of study ran ({old_ev} (now {ev.id})): the same settings as jobs "
            f"of this grid file, which this version of study gives other ids: their jobs (or the encoders they read) "
            f"were queued or run again under the new ids, or their records do not read, so no submit takes these "
            f"over") in out, out
    assert (f"\n1 job(s) an older version of study started did not finish ({old_pre} (now {pre.id}): checkpoint at "
            f"step 5/6): the same settings as jobs of this grid file, which this version of study gives other ids, "
            f"under which a submit runs them from the start") in out, out
    result_path(wd, pre.id).write_text("{}")  # its new id ran since: the older checkpoint is no longer to run
    out = run_cli(["status", str(grid), "--workdir", str(wd)])[1]
    assert (f"\n1 job(s) an older version of study started did not finish ({old_pre} (now {pre.id}): checkpoint at "
            f"step 5/6): the same settings as jobs of this grid file, which this version of study gives other ids, "
            f"under which they have a result now (run again from the start, or taken over): these checkpoints are "
            f"of no use") in out, out
    assert "a submit runs them from the start" not in out, out


def test_status_names_the_checkpoints_of_unfinished_jobs_an_edit_of_the_grid_file_took_out_of_its_plan(tmp_path):
    """A job stopped midway, then taken out of the plan by an edit (an axis value removed): its checkpoint stays in
    its folder, which no submit resumes; status names it with its step, as it names a finished one's result. Not one
    with a result (said as such), one that left no checkpoint, nor one still running."""
    from study.launch.status import status_json

    wd = tmp_path / "wd"
    for job, step in (("gone", 474), ("done", 8), ("running", 3)):
        write_checkpoint(wd / "jobs" / job / "checkpoint.pt", step, 3000 if job == "gone" else 8)
    result_path(wd, "done").parent.mkdir(parents=True)
    result_path(wd, "done").write_text("{}")
    held = try_lock(wd / "locks" / "running.lock")
    try:
        Ledger(wd, "g").append([{"event": "local", "job": job, "stage": "pretrain", "state": state, "log": None,
                                 "pid": 4242, "host": "another-host.invalid"}
                                for job, state in (("gone", "running"), ("done", "done"), ("never", "running"),
                                                   ("running", "running"), ("p1", "running"))])
        out = io.StringIO()
        print_status(_plan(P1), wd, out)
        got = status_json(_plan(P1), wd)
    finally:
        os.close(held)
    text = out.getvalue()
    assert ("\n1 job(s) this grid file started are of no job of its plan now and did not finish (gone: checkpoint at "
            "step 474/3000): their settings were changed since, so no submit resumes them unless the grid file gives "
            f"those settings again; their checkpoints stay in {wd.resolve() / 'jobs'}/<id>/ until removed") in text, \
        text
    assert "\n1 result(s) of jobs this grid file ran are of no job of its plan now (done)" in text, text
    assert got["checkpoints_off_plan"] == {"gone": {".": [474, 3000]}} and got["results_off_plan"] == ["done"]


def test_status_json_asks_slurm_of_jobs_off_the_plan_only_where_they_left_checkpoints(env, slurm, monkeypatch):
    """`checkpoints_off_plan` leaves out the jobs Slurm runs still: without a checkpoint off the plan there is nothing
    to leave out, and Slurm is not asked (it was, at every `status --format json`); with one, a live job's is not
    said."""
    from study.launch import grid_states, status

    wd, asked = env / "wd", []
    Ledger(wd, "g").append([{"event": "queued", "batch": "b", "job": "gone", "slurm_job_id": "402", "folder": "f"}])
    monkeypatch.setattr(grid_states, "outside_plan", lambda *a: asked.append(a) or (["402"], {}))
    assert status.status_json(_plan(P1), wd)["checkpoints_off_plan"] == {} and asked == []
    write_checkpoint(wd / "jobs" / "gone" / "checkpoint.pt", 4, 8)
    assert status.status_json(_plan(P1), wd)["checkpoints_off_plan"] == {} and len(asked) == 1


def test_a_grid_file_moved_since_its_jobs_ran_still_names_their_results_and_checkpoints_off_its_plan(tmp_path):
    """A project folder moved with its workdir: the ledger names the grid file by its old path, no longer there. Its
    results and checkpoints off the plan are this file's still (not those of a file of the grid's name still there),
    as are its jobs' states; cancelling is left to `from_this_file` (an old path is not this file)."""
    wd, grid, other = tmp_path / "wd", tmp_path / "moved" / "g.yaml", tmp_path / "copy.yaml"
    grid.parent.mkdir()
    grid.write_text("name: g\n")
    other.write_text("name: g\n")
    for job in ("old_done", "copy_done"):
        result_path(wd, job).parent.mkdir(parents=True, exist_ok=True)
        result_path(wd, job).write_text("{}")
    write_checkpoint(wd / "jobs" / "old_half" / "checkpoint.pt", 2, 8)
    write_checkpoint(wd / "jobs" / "copy_half" / "checkpoint.pt", 2, 8)
    gone = str(tmp_path / "old" / "g.yaml")
    Ledger(wd, "g").append([{"event": "local", "job": job, "stage": "pretrain", "state": state, "log": None,
                             "grid_file": path, "pid": 4242, "host": "another-host.invalid"}
                            for job, state, path in (("old_done", "done", gone), ("old_half", "running", gone),
                                                     ("copy_done", "done", str(other)),
                                                     ("copy_half", "running", str(other)))])
    plan = SimpleNamespace(name="g", jobs=[P1], path=str(grid))
    assert results_off_plan(plan, wd) == ["old_done"]
    assert checkpoints_off_plan(plan, wd) == {"old_half": {".": [2, 8]}}
    assert not from_this_file({"grid_file": gone}, grid_file(plan)) and ran_from_this_file({"grid_file": gone}, None)


def test_jobs_a_study_cancel_scancelled_are_said_cancelled_by_it_not_by_their_dependency(env, slurm):
    """sacct says CANCELLED of a job `study cancel` scancelled as of one Slurm cancelled after its dependency ended:
    status read the evaluation as "cancelled because its dependency ... cancelled". `study cancel` writes the Slurm
    ids it scancels in the ledger (a `cancelled` line), so status says both were cancelled with it; one Slurm
    cancelled after its dependency failed is still said so."""
    grid, ids, pre, ev = _submitted_pair(env, "cx")
    wd = env / "wd"
    _sacct(slurm, {ids[pre.id]: "RUNNING", ids[ev.id]: "PENDING"})
    code, out, err = run_cli(["cancel", str(grid), "--workdir", str(wd)])
    assert code == 0 and "cancelled 2 Slurm job(s) of grid cx" in out, (out, err)
    assert Ledger(wd, "cx").replay().cancelled == {ids[pre.id], ids[ev.id]}
    _sacct(slurm, {ids[pre.id]: "CANCELLED by 0", ids[ev.id]: "CANCELLED by 0"})
    write_checkpoint(wd / "jobs" / pre.id / "checkpoint.pt", 4, 6)  # where a rerun resumes: said with it
    out = run_cli(["status", str(grid), "--workdir", str(wd)])[1]
    assert f"\ncancelled 2 job(s) with `study cancel`: {pre.id} (checkpoint at step 4/6), {ev.id}\n" in out, out
    assert "because their dependency" not in out and RETRY_HINT in out, out

    _submit(grid, env, "--retry-failed")  # queued again (new Slurm ids): a failure cancels the dependent as before
    again = _queued(wd, "cx")
    _sacct(slurm, {again[pre.id]: "FAILED", again[ev.id]: "CANCELLED by 0"})
    out = run_cli(["status", str(grid), "--workdir", str(wd)])[1]
    assert f"cancelled 1 job(s) because their dependency {pre.id} failed: {ev.id}" in out, out
    assert "with `study cancel`" not in out, out


def test_status_names_pending_jobs_slurm_will_not_start_by_themselves(env, slurm):
    grid = env / "g.yaml"
    grid.write_text(grid_text("held", seeds=(0, 1)))
    _submit(grid, env)  # pretraining array 101 (2 tasks), probes 102 and 103
    _sacct(slurm, {"101_0": "PENDING", "101_1": "PENDING", "102": "PENDING", "103": "PENDING"})
    (slurm / "squeue").write_text("101_0 PENDING JobHeldUser\n101_1 PENDING Priority\n"
                                  "102 PENDING Dependency\n103 PENDING Dependency\n999 PENDING JobHeldAdmin\n")
    ids = {v: k for k, v in _queued(env / "wd", "held").items()}
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "2", "0", "0", "0"]  # still counted pending
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
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "1", "0", "0", "0"]
    assert out.splitlines()[3].split() == ["evaluate", "0", "0", "0", "0", "0", "0", "1"]
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
    answer = query(env, {sid: str(env / "submitit" / "a") for sid in ("7", "8", "9")}, reasons=True)
    assert 25 < answer.ended_s["7"] < 120 and set(answer.ended_s) == {"7"}
    assert answer.states == {"7": "COMPLETED", "8": "PENDING (JobHeldAdmin)", "9": "FAILED"}
    assert query(env, {"8": None}).states == {"8": "PENDING"}  # squeue asked only with reasons
    # a job Slurm requeued and held (sacct still reads its last run's end): the reason squeue gives is read too
    _sacct(slurm, {"7": "NODE_FAIL"})
    (slurm / "squeue").write_text("7 PENDING launch failed requeued held\n")
    assert query(env, {"7": None}, reasons=True).states == {"7": "PENDING (launch failed requeued held)"}
    t0 = time.time()
    assert query(env, {}).states == {} and time.time() - t0 < 1


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


def test_status_as_json_gives_each_jobs_axes_state_slurm_id_log_and_progress(env, slurm):
    """`--format json`, for scripts: one row per job in the plan's order, the same states and progress line as the
    table, and the table's counts."""
    grid, ids, pre, ev = _submitted_pair(env, "js")
    _sacct(slurm, {ids[pre.id]: "RUNNING", ids[ev.id]: "PENDING"})
    log = _log(env / "wd", "js", ids[pre.id])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("[pretrain] step 4/6 loss 2.5000 lr 0.3 11.0 img/s\n")
    old = time.time() - 600
    os.utime(log, (old, old))

    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "wd"), "--format", "json"])
    assert code == 0, err
    got = json.loads(out)
    assert got["grid"] == "js" and got["workdir"] == str((env / "wd").resolve())
    assert [r["id"] for r in got["jobs"]] == [j.id for j in plan_grid(grid).jobs]
    rows = {r["id"]: r for r in got["jobs"]}
    p, e = rows[pre.id], rows[ev.id]
    assert (p["stage"], p["state"], p["slurm_id"], p["log"]) == ("pretrain", "running", ids[pre.id], str(log))
    assert p["progress"] == "[pretrain] step 4/6 loss 2.5000 lr 0.3 11.0 img/s" and 590 <= p["log_age_s"] <= 900
    assert p["progress_count"] == [4, 6] and e["progress_count"] is None
    assert p["progress_before_restart"] is False and e["progress_before_restart"] is None
    assert (p["method"], p["dataset"], p["depends_on"]) == (pre.axes["method"], pre.axes["dataset"], [])
    assert (e["state"], e["slurm_id"], e["progress"], e["depends_on"]) == ("pending", ids[ev.id], None, [pre.id])
    assert e["protocol"] == ev.axes["protocol"] and e["labeled_sizes"] == ev.config["evaluate"]["labeled_sizes"]
    n = {st: sum(r["state"] == st for r in got["jobs"] if r["stage"] == "evaluate") for st in ("pending", "running")}
    assert got["counts"]["evaluate"]["pending"] == n["pending"] >= 1
    assert got["counts"]["pretrain"]["running"] == 1


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


def test_status_says_how_many_running_jobs_it_did_not_show(tmp_path):
    states = {f"j{i}": JobState(f"j{i}", "pretrain", "running") for i in range(RUNNING_SHOWN + 3)}
    out = io.StringIO()
    _running(states, tmp_path, out)
    text = out.getvalue()
    assert f"running ({RUNNING_SHOWN + 3}):" in text and text.count("  pretrain j") == RUNNING_SHOWN
    assert "  pretrain j0: log not known\n" in text  # no log yet: not "no progress line in its log"
    assert text.endswith("  ... and 3 more\n")
    out = io.StringIO()
    _running(dict(list(states.items())[:RUNNING_SHOWN]), tmp_path, out)
    assert out.getvalue().count("  pretrain j") == RUNNING_SHOWN and "more" not in out.getvalue()


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
    assert out.rstrip().endswith("failed and cancelled jobs stay so: `study submit --retry-failed` (the grid, "
                                 "--cluster and --workdir as before) reruns them, each from its last checkpoint"), out


# a local command's stand-in: holds its command lock until SIGTERM, then takes a while to end (as the real one
# waits for its workers to checkpoint)
HOLDS_ITS_LOCK = ("import fcntl, os, signal, sys, time\n"
                  "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                  "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.5), sys.exit(143)))\n"
                  "print('held', flush=True); time.sleep(60)\n")


def test_limits_that_clear_as_other_jobs_end_are_not_called_stuck():
    """A limit on how many jobs a user, account or association runs at once clears as those end: not "will not
    start"; a limit of the job itself (its wall time, a minimum it does not reach) does not."""
    for reason in ("AssocMaxJobsLimit", "QOSMaxJobsPerUserLimit", "QOSMaxGRESPerAccount", "AssocGrpGRES",
                   "Priority", "Resources"):
        assert stuck_reason(f"PENDING ({reason})") is None, reason
    for reason in ("QOSMaxWallDurationPerJobLimit", "AssocMaxWallDurationPerJobLimit", "QOSMinGRES",
                   "PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints",
                   # a QOS or account the partition does not take (AllowQos, DenyAccounts: as squeue said them on the
                   # localhost cluster under EnforcePartLimits=NO, and PartitionConfig once the controller restarted)
                   "Job's QOS not permitted to use this partition (short allows long not plain)",
                   "Job's account not permitted to use this partition (acct denies root including root)",
                   "PartitionConfig", "InvalidQOS", "MaxMemPerLimit"):
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


def _plan(*jobs):
    return SimpleNamespace(name="g", jobs=list(jobs), path=None)


P1 = Job(id="p1", stage="pretrain", config={"axes": {}})
P2 = Job(id="p2", stage="pretrain", config={"axes": {}})


def test_an_event_is_this_files_unless_it_names_another_file(tmp_path, monkeypatch):
    """An event without a path (an older study) or a plan without one is this file's; a grid file is named by its
    resolved path, however it was given."""
    assert from_this_file({"grid_file": "/a.yaml"}, "/a.yaml") and not from_this_file({"grid_file": "/a.yaml"}, "/b")
    assert from_this_file({}, "/b.yaml") and from_this_file({"grid_file": "/a.yaml"}, None)
    (tmp_path / "real.yaml").write_text("name: g\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.yaml")
    monkeypatch.chdir(tmp_path)
    assert grid_file(SimpleNamespace(path="link.yaml")) == str((tmp_path / "real.yaml").resolve())
    assert grid_file(SimpleNamespace(path=None)) is None and grid_file(object()) is None


def test_states_without_settling_wait_for_no_lock_and_write_nothing(tmp_path):
    """A submit that holds the submit lock and settled the intents itself reads states with settle=False: they must
    not wait for the lock it holds, nor judge an intent of its own still open."""
    wd = tmp_path / "wd"
    led = Ledger(wd, "g")
    led.append([{"event": "intent", "batch": "b1", "name": "study-g-pretrain-b1", "stage": "pretrain",
                 "jobs": ["p1"], "folder": "f"}])
    fd = try_lock(wd / "ledgers" / ".submit.lock")
    assert fd is not None
    got: dict = {}
    try:
        reader = threading.Thread(target=lambda: got.update(grid_states(_plan(P1), wd, settle=False)), daemon=True)
        reader.start()
        reader.join(10)
        assert not reader.is_alive()
    finally:
        os.close(fd)
    assert got["p1"].state == "missing" and [e["event"] for e in led.events()] == ["intent"]


def test_unsettled_jobs_read_pending_only_where_nothing_else_says_so(tmp_path, monkeypatch):
    """Slurm cannot be asked to settle an interrupted submit: a command that decides from the states stops; status
    (tolerate_unsettled) reads the intent's jobs pending, "unsettled", except one a live local command still holds."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    wd = tmp_path / "wd"
    led = Ledger(wd, "g")
    led.append([{"event": "intent", "batch": "b1", "name": "study-g-pretrain-b1", "stage": "pretrain",
                 "jobs": ["p1", "p2"], "folder": "f"}])
    with pytest.raises(StudyError, match="cannot ask Slurm"):
        grid_states(_plan(P1, P2), wd)
    with command_lock(wd) as lock:
        led.append([{"event": "local", "job": "p2", "stage": "pretrain", "state": "pending", "pid": 7,
                     "host": "elsewhere", "lock": lock}])
        states = grid_states(_plan(P1, P2), wd, tolerate_unsettled=True)
    assert (states["p1"].state, states["p1"].detail) == ("pending",
                                                         "unsettled: array study-g-pretrain-b1 may have queued it")
    assert (states["p2"].state, states["p2"].detail) == ("pending", "")
    assert [e["event"] for e in led.events()] == ["intent", "local"]


def test_states_read_the_jobs_a_settled_intent_is_found_to_have_queued(env, slurm):
    """An interrupted submit whose array Slurm knows by name: its jobs read as queued (here running), at once."""
    wd = env / "wd"
    Ledger(wd, "g").append([{"event": "intent", "batch": "b1", "name": "study-g-pretrain-b1", "stage": "pretrain",
                             "jobs": ["p1"], "folder": str(wd / "submitit" / "%j")}])
    (slurm / "squeue_name").write_text("301\n")
    _sacct(slurm, {"301": "RUNNING"})
    st = grid_states(_plan(P1), wd)["p1"]
    assert (st.state, st.slurm_id) == ("running", "301"), st


def test_a_job_that_left_the_plan_with_its_result_is_not_live(env, slurm):
    """A done job no longer in the plan is not asked of sacct: sacct, which forgets old jobs, would not answer for it,
    and unknown reads pending, so `study cancel` scancelled it and status called it live."""
    wd = env / "wd"
    Ledger(wd, "g").append([{"event": "queued", "batch": "b", "job": "old", "slurm_job_id": "401", "folder": "f"},
                            {"event": "queued", "batch": "b", "job": "gone", "slurm_job_id": "402", "folder": "f"}])
    write_result(wd, {"job_id": "old", "stage": "pretrain", "grid": "g", "axes": {},
                      "metrics": [{"metric": "loss", "value": 1.0}], "protocol": {"epochs": 1}})
    assert outside_plan(_plan(P1), wd) == (["402"], {})  # 402: no answer, no result: may still be queued
    Ledger(wd, "g").append([{"event": "queued", "batch": "c", "job": "ended", "slurm_job_id": "403", "folder": "f"}])
    _sacct(slurm, {"403": "FAILED"})
    assert outside_plan(_plan(P1), wd) == (["402"], {})  # 403 ended: nothing to cancel
    assert results_off_plan(_plan(P1), wd) == ["old"]  # 402 and 403 left no result


def test_states_of_some_jobs_are_of_those_jobs_only(tmp_path):
    """`grid_states(plan, workdir, jobs)` answers for `jobs` only (a local command asks of the dependencies it
    waits for, and takes every live one it is given for a run outside it)."""
    assert set(grid_states(_plan(P1, P2), tmp_path / "wd", [P2])) == {"p2"}


def test_an_unsettled_intents_job_with_a_result_reads_done(tmp_path, monkeypatch):
    """A result comes first, also for a job of an interrupted submit Slurm cannot be asked about."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    wd = tmp_path / "wd"
    Ledger(wd, "g").append([{"event": "intent", "batch": "b1", "name": "study-g-pretrain-b1", "stage": "pretrain",
                             "jobs": ["p1", "p2"], "folder": "f"}])
    write_result(wd, {"job_id": "p1", "stage": "pretrain", "grid": "g", "axes": {},
                      "metrics": [{"metric": "loss", "value": 1.0}], "protocol": {"epochs": 1}})
    states = grid_states(_plan(P1, P2), wd, tolerate_unsettled=True)
    assert (states["p1"].state, states["p2"].state) == ("done", "pending")


def test_status_prints_the_log_of_a_failed_job_not_of_a_cancelled_one(env):
    wd = env / "wd"
    logs = {j: env / f"{j}.log" for j in ("p1", "p2")}
    for j, log in logs.items():
        log.write_text(f"==== header\nlast words of {j}\n")
    Ledger(wd, "g").append([
        {"event": "local", "job": "p1", "stage": "pretrain", "state": "failed", "log": str(logs["p1"]),
         "error": "exit code 1"},
        {"event": "local", "job": "p2", "stage": "pretrain", "state": "cancelled", "log": str(logs["p2"]),
         "error": "stopped"}])
    out = io.StringIO()
    print_status(_plan(P1, P2), wd, out)
    text = out.getvalue()
    assert f"failed pretrain p1 (exit code 1)\n  log: {logs['p1']}\n  | ==== header\n  | last words of p1\n" in text
    assert f"cancelled pretrain p2 (stopped)\n  log: {logs['p2']}\n" in text and "last words of p2" not in text
    assert text.count("--retry-failed") == 1  # the way out, said once
    out = io.StringIO()
    print_status(_plan(P1, P2), env / "none", out)
    assert "--retry-failed" not in out.getvalue()  # nothing ended: no hint


def test_status_of_a_result_a_newer_study_wrote_sends_to_that_version_not_to_retry_failed(env):
    """A colleague's updated study wrote p1's result (schema 2) in the shared workdir: this older one cannot read it,
    names the newer version and does not advise --retry-failed, which would replace that result with its own."""
    wd = env / "wd"
    write_result(wd, {"job_id": "p1", "stage": "pretrain", "grid": "g", "axes": {},
                      "metrics": [{"metric": "loss", "value": 1.0}], "protocol": {"epochs": 1}})
    path = result_path(wd, "p1")
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 2}))
    out = io.StringIO()
    print_status(_plan(P1), wd, out)
    text = out.getvalue()
    assert "schema_version 2, this study reads 1: written by a newer version of study" in text, text
    assert "not rerun here (`study submit --retry-failed` leaves it" in text and RETRY_HINT not in text, text
    e1 = Job(id="e1", stage="evaluate", config={"axes": {}}, depends_on=("p1",))
    out = io.StringIO()
    print_status(_plan(P1, e1), wd, out)  # its evaluation: waits on that version, not on --retry-failed
    assert ("1 job(s) missing (not run yet, or stopped): `study submit` (the grid, --cluster and --workdir as before) "
            "runs none of them; 1 wait for a dependency a newer version of study ran, which this one never reruns "
            "(update this checkout): e1\n") in out.getvalue(), out.getvalue()
    Ledger(wd, "g").append([{"event": "local", "job": "e1", "stage": "evaluate", "state": "cancelled", "log": None,
                             "error": "dependency p1 failed"}])
    out = io.StringIO()
    print_status(_plan(P1, e1), wd, out)  # cancelled with it (this version's p1 had failed): no retry runs it either
    assert "cancelled 1 job(s) because their dependency p1 failed: e1" in out.getvalue(), out.getvalue()
    assert RETRY_HINT not in out.getvalue(), out.getvalue()


def test_status_says_an_ended_jobs_log_was_never_written(env):
    """A job cancelled before it started (a Slurm job scancelled while pending; here local events stand in) has no
    log: its path is named with the note that the file is not there (a user looked for it); a job that ran keeps its
    path alone."""
    wd = env / "wd"
    ran, never = env / "p1.log", env / "p2.log"
    ran.write_text("==== header\n")
    Ledger(wd, "g").append([
        {"event": "local", "job": "p1", "stage": "pretrain", "state": "cancelled", "log": str(ran), "error": "x"},
        {"event": "local", "job": "p2", "stage": "pretrain", "state": "cancelled", "log": str(never), "error": "y"}])
    out = io.StringIO()
    print_status(_plan(P1, P2), wd, out)
    text = out.getvalue()
    assert f"cancelled pretrain p1 (x)\n  log: {ran}\n" in text, text
    assert f"cancelled pretrain p2 (y)\n  log: {never} (not written: the job never started" in text, text


def test_status_names_at_most_eight_results_of_rebuilt_manifests(env):
    wd = env / "wd"
    jobs = [Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in range(9)]
    for job in jobs:
        write_result(wd, {"job_id": job.id, "stage": "pretrain", "grid": "g", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}],
                          "protocol": {"manifest": "toy_train", "manifest_content_hash": "b" * 64}})
    out = io.StringIO()
    print_status(_plan(*jobs), wd, out)
    text = out.getvalue()
    assert "9 done job(s) used a manifest since rebuilt" in text, text
    assert text.count("its result used manifest toy_train") == 8 and "  ... and 1 more\n" in text


def test_status_counts_a_stale_result_under_stale_not_done(env):
    """A result computed on a manifest since rebuilt is no done job: `study submit` refuses to go on until it is set
    aside, then runs it again. The table and the JSON counts put it under `stale`; the job's row says why."""
    from study.launch.status import status_json

    wd = env / "wd"
    old, fresh = (Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in (0, 1))
    for job, manifest in ((old, {"manifest": "toy_train", "manifest_content_hash": "b" * 64}), (fresh, {})):
        write_result(wd, {"job_id": job.id, "stage": "pretrain", "grid": "g", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}], "protocol": manifest})
    out = io.StringIO()
    print_status(_plan(old, fresh, P1), wd, out)
    header, row = [line.split() for line in out.getvalue().splitlines()[1:3]]
    assert dict(zip(header[1:], row[1:])) == {"done": "1", "stale": "1", "running": "0", "pending": "0",
                                              "failed": "0", "cancelled": "0", "missing": "1"}, out.getvalue()
    assert "`study submit` (the grid, --cluster and --workdir as before) runs them, with --set-aside-stale" in \
        out.getvalue()
    got = status_json(_plan(old, fresh, P1), wd)
    assert (got["counts"]["pretrain"]["done"], got["counts"]["pretrain"]["stale"]) == (1, 1)
    assert [(r["state"], bool(r["stale"])) for r in got["jobs"]] == [("done", True), ("done", False),
                                                                     ("missing", False)]


def test_status_names_the_checkpoint_a_stopped_job_resumes_from_past_its_logs_last_step(tmp_path):
    """A local run killed at step 7 of 8 (its log's last line) had checkpointed at step 6: the rerun resumes there,
    which the table and the JSON say, with how long ago that checkpoint was written (what a stop loses: a run
    checkpoints every 10 minutes by default); a failed job's checkpoint is named with --retry-failed."""
    from study.launch.status import status_json

    wd = tmp_path / "wd"
    log = tmp_path / "p1.log"
    log.write_text("[pretrain] step 6/8 loss 2.3 lr 0.1 10.0 img/s\n[pretrain] step 7/8 loss 2.2 lr 0.04 10.0 img/s\n")
    write_checkpoint(wd / "jobs" / "p1" / "checkpoint.pt", 6, 8)
    write_checkpoint(wd / "jobs" / "p2" / "checkpoint.pt", 40, 100)
    written = time.time() - 300
    os.utime(wd / "jobs" / "p1" / "checkpoint.pt", (written, written))
    Ledger(wd, "g").append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "running",
                             "log": str(log), "pid": 4242, "host": "another-host.invalid"},
                            {"event": "local", "job": "p2", "stage": "pretrain", "state": "failed", "log": None,
                             "error": "exit code 1"}])
    out = io.StringIO()
    print_status(_plan(P1, P2), wd, out)
    text = out.getvalue()
    assert ("  pretrain p1: [pretrain] step 7/8 loss 2.2 lr 0.04 10.0 img/s  [" in text
            and f"    log: {log}\n    checkpoint at step 6/8, written 5 min ago: a rerun resumes there\n" in text), text
    assert "failed pretrain p2 (exit code 1)\n  checkpoint at step 40/100: `study submit --retry-failed` resumes it " \
           "there\n" in text, text
    rows = status_json(_plan(P1, P2), wd)["jobs"]
    assert [(r["state"], r["progress_count"], r["checkpoint"]) for r in rows] == \
        [("missing", [7, 8], {".": [6, 8]}), ("failed", None, {".": [40, 100]})]
    assert 299 < rows[0]["checkpoint_age_s"] < 330 and rows[1]["checkpoint_age_s"] < 30


def test_status_json_reads_each_checkpoint_once_for_its_step_and_age(tmp_path, monkeypatch):
    """`checkpoint` and `checkpoint_age_s` of every job not done come from one read of each checkpoint file: asked
    apart, a grid of thousands of unfinished jobs on a shared filesystem had each read twice."""
    from study.launch import traces
    from study.launch.status import status_json

    wd = tmp_path / "wd"
    write_checkpoint(wd / "jobs" / "p1" / "checkpoint.pt", 6, 8)
    write_checkpoint(wd / "jobs" / "p2" / "finetune-50" / "checkpoint.pt", 1, 3)
    write_checkpoint(wd / "jobs" / "p2" / "finetune-200" / "checkpoint.pt", 2, 3)
    Ledger(wd, "g").append([{"event": "local", "job": j, "stage": "pretrain", "state": "failed", "log": None,
                             "error": "exit code 1"} for j in ("p1", "p2")])
    read = []
    step = traces.checkpoint_step
    monkeypatch.setattr(traces, "checkpoint_step", lambda path: read.append(Path(path)) or step(path))
    rows = status_json(_plan(P1, P2), wd)["jobs"]
    assert [(r["checkpoint"], r["checkpoint_age_s"] < 30) for r in rows] == \
        [({".": [6, 8]}, True), ({"finetune-50": [1, 3], "finetune-200": [2, 3]}, True)]
    assert sorted(map(str, read)) == sorted(map(str, wd.glob("jobs/*/**/checkpoint.pt"))) and len(read) == 3, read


def test_status_says_no_requeue_history_of_a_local_log_which_holds_every_submissions_runs(tmp_path):
    """A local log keeps the lines of each run of its job, of earlier submissions too (a run whose result was set
    aside): its `resuming ... at step` lines are no history of the job's Slurm requeues, in the table or the JSON."""
    from study.launch.status import status_json

    wd = tmp_path / "wd"
    logs = {job: tmp_path / f"{job}.log" for job in ("p1", "p2")}
    for log in logs.values():
        log.write_text("==== 2026-01-01 pretrain\n[pretrain] resuming /wd/jobs/p at step 3/8\n"
                       "[pretrain] step 4/8 loss 2.3 lr 0.1 10.0 img/s\n")
    Ledger(wd, "g").append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "running",
                             "log": str(logs["p1"]), "pid": 4242, "host": "another-host.invalid"},
                            {"event": "local", "job": "p2", "stage": "pretrain", "state": "failed",
                             "log": str(logs["p2"]), "error": "exit code 1"}])
    out = io.StringIO()
    print_status(_plan(P1, P2), wd, out)
    assert "failed pretrain p2 (exit code 1)" in out.getvalue() and "resumed at" not in out.getvalue(), out.getvalue()
    rows = status_json(_plan(P1, P2), wd)["jobs"]
    assert [(r["state"], r["requeues"], r["resumed_at"]) for r in rows] == [("missing", None, None),
                                                                            ("failed", None, None)]


def test_status_where_names_a_selected_evaluation_stale_through_its_pretraining_left_out(env):
    """Of a plan `--where` reduced to an evaluation: its result is stale through its pretraining's (a record that
    names no pretraining, as an older study's), though --where leaves the pretraining out; the pretraining itself is
    not listed."""
    wd = env / "wd"
    p0 = Job(id="p0", stage="pretrain", config={"axes": {}})
    e0 = Job(id="e0", stage="evaluate", config={"axes": {}}, depends_on=("p0",))
    protocols = {"p0": {"manifest": "toy_train", "manifest_content_hash": "b" * 64}, "e0": {}}
    for job in (p0, e0):
        write_result(wd, {"job_id": job.id, "stage": job.stage, "grid": "g", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}], "protocol": protocols[job.id]})
    reduced = SimpleNamespace(name="g", jobs=[e0], whole=[p0, e0], grid_jobs=[p0, e0], path=None,
                              job={"p0": p0, "e0": e0}.__getitem__)
    out = io.StringIO()
    print_status(reduced, wd, out)
    text = out.getvalue()
    assert text.startswith(f"grid g: 1 job(s) (those --where selects of its 2), workdir {wd.resolve()}\n"), text
    assert "1 done job(s) used a manifest since rebuilt" in text, text
    assert "evaluate job e0: it used the result of job p0, which is stale" in text and "pretrain job p0" not in text


def test_status_json_of_a_where_selection_says_how_many_jobs_the_grid_has(tmp_path):
    """As `study plan --where --format json`'s `grid_jobs`: a program reading `counts` of a part is told it is one (the
    table's first line says "those --where selects of its 2"); the whole grid's has no such key."""
    from study.launch.status import status_json

    p0 = Job(id="p0", stage="pretrain", config={"axes": {}})
    e0 = Job(id="e0", stage="evaluate", config={"axes": {}, "evaluate": {}}, depends_on=("p0",))
    reduced = SimpleNamespace(name="g", jobs=[e0], whole=[p0, e0], grid_jobs=[p0, e0], path=None,
                              job={"p0": p0, "e0": e0}.__getitem__)
    got = status_json(reduced, tmp_path / "wd")
    assert got["grid_jobs"] == 2 and [j["id"] for j in got["jobs"]] == ["e0"]
    assert "grid_jobs" not in status_json(_plan(P1, P2), tmp_path / "wd")


def test_status_lists_as_stopped_only_the_missing_jobs_that_had_started_here(tmp_path):
    """A missing job with a log had started under a local command since ended; one without never started."""
    states = {"a": JobState("a", "pretrain", "missing", log="a.log"), "b": JobState("b", "pretrain", "missing"),
              "c": JobState("c", "pretrain", "failed", log="c.log"),
              "d": JobState("d", "pretrain", "missing", slurm_id="7", log="d.log")}  # Slurm's, not a local run's
    out = io.StringIO()
    _stopped(states, tmp_path, out)
    assert "stopped before they finished (1)" in out.getvalue() and "pretrain a: no progress line in its log" in \
        out.getvalue() and "pretrain b" not in out.getvalue() and "pretrain d" not in out.getvalue()


def test_status_as_json_gives_where_a_stopped_local_job_had_got_to(tmp_path):
    """A job a local command started and left unfinished (its worker gone: missing) has, as in the table, its log's
    latest progress line in `--format json`: where the next submit resumes it."""
    from study.launch.status import status_json

    wd = tmp_path / "wd"
    log = tmp_path / "p1.log"
    log.write_text("==== header\n[pretrain] step 3/6 loss 2.6000 lr 0.3 10.0 img/s\n")
    Ledger(wd, "g").append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "running",
                             "log": str(log), "pid": 4242, "host": "another-host.invalid"}])
    row, never = status_json(_plan(P1, P2), wd)["jobs"]
    assert (row["state"], row["log"], row["slurm_id"]) == ("missing", str(log), None)
    assert (never["state"], never["detail"], never["log"], never["progress"]) == ("missing", None, None, None)
    assert row["progress"] == "[pretrain] step 3/6 loss 2.6000 lr 0.3 10.0 img/s" and row["progress_count"] == [3, 6]
    assert row["log_age_s"] is not None


def test_ages_read_in_seconds_then_minutes_then_hours():
    assert [_ago(s) for s in (0, 89, 90, 5399, 5400, 9000)] == \
        ["0 s ago", "89 s ago", "2 min ago", "90 min ago", "1.5 h ago", "2.5 h ago"]


def test_some_names_the_first_ids_and_marks_the_rest():
    ids = [str(i) for i in range(10)]
    assert some_ids(ids) == "0, 1, 2, 3, 4, 5, 6, 7 ..." and some_ids(ids[:8]) == "0, 1, 2, 3, 4, 5, 6, 7"
    assert some_ids(ids, 2) == "0, 1 ..."


def test_only_pending_jobs_get_a_reason_and_only_failed_ones_a_failing_tasks_log(env, slurm):
    """A job sacct reads RUNNING that squeue still lists pending (it started between the two) gets no reason; a
    cancelled job of several tasks keeps task 0's log (a killed rank's traceback does not make it the failed one)."""
    _sacct(slurm, {"7": "RUNNING", "8": "CANCELLED by 0", "9": "FAILED", "10": "PENDING"})
    (slurm / "squeue").write_text("7 PENDING Priority\n10 PENDING Priority\n")
    folder = env / "submitit" / "a"
    folder.mkdir(parents=True)
    for sid in ("8", "9"):
        (folder / f"{sid}_1_log.err").write_text("Traceback (most recent call last):\nKilled\n")
    answer = query(env, {sid: str(folder) for sid in ("7", "8", "9", "10")}, reasons=True)
    assert answer.states == {"7": "RUNNING", "8": "CANCELLED by 0", "9": "FAILED", "10": "PENDING (Priority)"}
    assert answer.logs["8"] == str(folder.resolve() / "8_0_log.err")
    assert answer.logs["9"] == str(folder.resolve() / "9_1_log.err")


def test_stopping_a_command_that_has_just_ended_is_no_error():
    """A command may end between the read of its lock and its SIGTERM: it is neither signalled nor left to stop."""
    from study.launch.local.stop import LocalCommand, stop_commands

    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped: its pid names no process
    gone, elsewhere = LocalCommand(ended.pid, socket.gethostname()), LocalCommand(1, "another-host.invalid")
    assert stop_commands([gone, elsewhere]) == ([], [elsewhere])


def test_a_command_this_user_may_not_signal_is_left_to_stop_not_dropped(monkeypatch):
    """Another user's `study submit` on this host: its SIGTERM is refused, and `study cancel` names it for the user
    to stop (os.kill stands in for the refusal: no process of another user is signalled by a test)."""
    from study.launch.local import stop

    def refuse(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(stop.os, "kill", refuse)
    theirs = stop.LocalCommand(4242, socket.gethostname())
    assert stop.stop_commands([theirs]) == ([], [theirs])


def test_status_prints_the_first_ended_jobs_one_by_one_and_groups_the_rest_by_detail(env):
    """At a study's scale (a hundred failures) the status names each way a job ended once in full, up to ENDED_SHOWN
    of them, then the jobs that ended alike, and the rest by detail, rather than a log tail per job."""
    from study.launch.status import ENDED_SHOWN

    wd = env / "wd"
    jobs = [Job(id=f"f{i:02d}", stage="pretrain", config={"axes": {}}) for i in range(ENDED_SHOWN + 12)]
    logs = {j.id: env / f"{j.id}.log" for j in jobs}
    for i, j in enumerate(jobs):  # the first ENDED_SHOWN + 2 each with its own last words, then two causes
        logs[j.id].write_text(f"==== {j.id}\n" + (f"error {i}\n" if i < ENDED_SHOWN + 2 else "shared error\n"))
    events = [{"event": "local", "job": j.id, "stage": "pretrain", "state": "failed", "log": str(logs[j.id]),
               "error": "CUDA out of memory" if i % 3 else "exit code 1"} for i, j in enumerate(jobs[:-2])]
    events += [{"event": "local", "job": j.id, "stage": "pretrain", "state": "cancelled", "log": None,
                "error": "stopped"} for j in jobs[-2:]]
    Ledger(wd, "g").append(events)
    out = io.StringIO()
    print_status(_plan(*jobs), wd, out)
    text = out.getvalue()
    shown = [j.id for j in jobs if f"failed pretrain {j.id} (" in text]
    assert shown == [j.id for j in jobs[:ENDED_SHOWN]], text
    rest = jobs[ENDED_SHOWN:-2]
    oom = [j.id for i, j in enumerate(jobs) if j in rest and i % 3]
    exit1 = [j.id for i, j in enumerate(jobs) if j in rest and not i % 3]
    assert f"\n{len(oom)} more failed job(s) (CUDA out of memory): {some_ids(oom)}\n" in text, text
    assert f"\n{len(exit1)} more failed job(s) (exit code 1): {some_ids(exit1)}\n" in text, text
    assert f"\n2 more cancelled job(s) (stopped): {jobs[-2].id}, {jobs[-1].id}\n" in text, text


def test_status_prints_jobs_that_ended_alike_once_in_full_and_names_the_others(env):
    """Seven evaluations failing on one unreadable test image (the same detail, the same last log line): one log
    tail, then the other six by id, not five copies of the same error; a job that ended otherwise is shown too."""
    wd = env / "wd"
    jobs = [Job(id=f"e{i}", stage="evaluate", config={"axes": {}}) for i in range(8)]
    events = []
    for i, j in enumerate(jobs):
        log = env / f"{j.id}.log"
        said = "study: error: cannot read image 00000.png" if i < 7 else "study: error: out of memory"
        log.write_text(f"==== evaluate job {j.id}\n[evaluate] features of p{i}/encoder.pt: 200/200 images\n{said}\n")
        events.append({"event": "local", "job": j.id, "stage": "evaluate", "state": "failed", "log": str(log),
                       "error": f"exit code 2: {said}"})
    Ledger(wd, "g").append(events)
    out = io.StringIO()
    print_status(_plan(*jobs), wd, out)
    text = out.getvalue()
    assert [j.id for j in jobs if f"failed evaluate {j.id} (" in text] == ["e0", "e7"], text
    assert text.count("  | study: error: cannot read image 00000.png") == 1, text
    assert ("\n6 more failed job(s) (ended as e0 above: the same detail and last log line): e1, e2, e3, e4, e5, e6\n"
            in text), text


def test_status_groups_jobs_that_ended_alike_without_a_log_by_their_detail_alone(env):
    """Cancelled jobs (no log tail is read) that ended as one shown did: grouped with it, said alike by their detail
    only, not by a last log line never compared."""
    jobs = [Job(id=f"c{i}", stage="pretrain", config={"axes": {}}) for i in range(3)]
    Ledger(env / "wd", "g").append([{"event": "local", "job": j.id, "stage": "pretrain", "state": "cancelled",
                                     "log": None, "error": "stopped"} for j in jobs])
    out = io.StringIO()
    print_status(_plan(*jobs), env / "wd", out)
    assert "\n2 more cancelled job(s) (ended as c0 above: the same detail): c1, c2\n" in out.getvalue(), out.getvalue()


def test_status_does_not_count_on_a_plain_submit_for_missing_jobs_whose_dependency_failed(env):
    """A missing evaluation of a failed pretraining waits: a plain `study submit` skips it (blocked) until
    --retry-failed reruns the pretraining; the closing line says so, and counts only the missing jobs it runs."""
    p1, p2 = (Job(id=f"p{i}", stage="pretrain", config={"axes": {}}) for i in (1, 2))
    e1 = Job(id="e1", stage="evaluate", config={"axes": {}}, depends_on=("p1",))
    e2 = Job(id="e2", stage="evaluate", config={"axes": {}}, depends_on=("p2",))
    Ledger(env / "wd", "g").append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "failed",
                                     "log": None, "error": "exit code 1"}])
    out = io.StringIO()
    print_status(_plan(p1, p2, e1, e2), env / "wd", out)
    assert ("\n3 job(s) missing (not run yet, or stopped): `study submit` (the grid, --cluster and --workdir as "
            "before) runs 2 of them; 1 wait for a failed or cancelled dependency, which `study submit "
            "--retry-failed` runs first: e1\n") in out.getvalue(), out.getvalue()
    out = io.StringIO()
    print_status(_plan(p1, e1), env / "wd", out)
    assert "`study submit` (the grid, --cluster and --workdir as before) runs none of them; 1 wait" in out.getvalue()


def test_status_of_a_workdir_nothing_was_submitted_to_says_what_it_is(tmp_path):
    """A workdir that is not there, or a file: the table (all missing) and what is wrong with the workdir."""
    for wd, what in ((tmp_path / "nope", "no such folder"), (tmp_path / "file", "a file, not a folder")):
        if what.startswith("a file"):
            wd.write_text("")
        out = io.StringIO()
        print_status(_plan(P1, P2), wd, out)
        assert f"\n({what}: nothing was submitted with this workdir; give the one" in out.getvalue(), out.getvalue()


def test_the_status_tables_counts_stand_under_their_states(tmp_path):
    """Each count right-aligned in its state's column (11 wide, after a 10 wide stage): the columns line up."""
    from study.launch.state import STATES
    from study.launch.status import COUNTED

    assert COUNTED == ("done", "stale", *STATES[1:])
    out = io.StringIO()
    print_status(_plan(P1, P2), tmp_path, out)
    header, row = out.getvalue().splitlines()[1:3]
    assert len(header) == len(row) == 10 + 11 * len(COUNTED)
    assert (header[:10].rstrip(), row[:10].rstrip()) == ("stage", "pretrain")
    columns = [(header[10 + 11 * i:21 + 11 * i], row[10 + 11 * i:21 + 11 * i]) for i in range(len(COUNTED))]
    assert [(h.lstrip(), r.lstrip()) for h, r in columns] == [(s, "2" if s == "missing" else "0") for s in COUNTED]


def test_status_prints_the_last_lines_of_a_failed_jobs_log_as_many_as_asked(env):
    wd = env / "wd"
    log = env / "p1.log"
    log.write_text("".join(f"line {i}\n" for i in range(20)))
    Ledger(wd, "g").append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "failed", "log": str(log),
                             "error": "exit code 1"}])
    for lines in (8, 3):
        out = io.StringIO()
        print_status(_plan(P1), wd, out, lines=lines)
        shown = [ln for ln in out.getvalue().splitlines() if ln.startswith("  | ")]
        assert shown == [f"  | line {i}" for i in range(20 - lines, 20)], out.getvalue()


def test_status_names_the_state_of_the_dependency_its_dependents_were_cancelled_for(env):
    """A pretraining cancelled (`study cancel`, scancel) takes its evaluation with it: the line says cancelled, not
    failed."""
    wd = env / "wd"
    e1 = Job(id="e1", stage="evaluate", config={"axes": {}}, depends_on=("p1",))
    Ledger(wd, "g").append([
        {"event": "local", "job": "p1", "stage": "pretrain", "state": "cancelled", "log": None, "error": "stopped"},
        {"event": "local", "job": "e1", "stage": "evaluate", "state": "cancelled", "log": None,
         "error": "dependency p1 cancelled"}])
    out = io.StringIO()
    print_status(_plan(P1, e1), wd, out)
    assert "\ncancelled 1 job(s) because their dependency p1 cancelled: e1\n" in out.getvalue(), out.getvalue()


def test_status_names_at_most_four_of_the_jobs_slurm_will_not_start_for_one_reason(env, monkeypatch):
    import study.launch.status as status

    jobs = [Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in range(5)]
    states = {j.id: JobState(j.id, "pretrain", "pending", "PENDING (JobHeldUser)", slurm_id=f"10{i}")
              for i, j in enumerate(jobs)}
    monkeypatch.setattr(status, "grid_states", lambda *a, **k: states)
    out = io.StringIO()
    print_status(_plan(*jobs), env / "wd", out)
    named = ", ".join(f"pretrain j{i} (slurm 10{i})" for i in range(4))
    assert (f"\n5 pending job(s) that Slurm will not start as they stand: JobHeldUser: held; `scontrol release <id>` "
            f"frees it: {named} ...\n") in out.getvalue(), out.getvalue()


def test_status_names_a_requeued_job_waiting_to_restart_with_its_requeues_and_checkpoint(env, slurm):
    """A requeued pretraining (scontrol requeue, a preemption's USR2, a time limit) waits in Slurm's queue to start
    again: the table counted it pending beside its evaluations and named it nowhere; it is listed, requeued how many
    times and from which checkpoint it resumes, its evaluation still pending (not failed); the JSON has the same."""
    from study.launch.status import status_json

    grid, ids, pre, ev = _submitted_pair(env, "rq")
    _sacct(slurm, {ids[pre.id]: "PENDING", ids[ev.id]: "PENDING"})
    (slurm / "squeue").write_text(f"{ids[pre.id]} PENDING BeginTime\n{ids[ev.id]} PENDING Dependency\n")
    log = _log(env / "wd", "rq", ids[pre.id])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(REQUEUED_LOG)
    write_checkpoint(env / "wd" / "jobs" / pre.id / "checkpoint.pt", 226, 1500)

    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "1", "0", "0", "0"], out
    assert out.splitlines()[3].split() == ["evaluate", "0", "0", "0", "1", "0", "0", "0"], out
    assert "requeued, waiting in Slurm's queue to start again (1)" in out, out
    assert (f"  pretrain {pre.id} (slurm {ids[pre.id]}, PENDING (BeginTime)): [pretrain] checkpoint written at "
            f"step 226/1500 on SIGUSR2") in out, out
    assert re.search(r"    requeued 2 time\(s\), resumed at step 173/1500\n"
                     r"    checkpoint at step 226/1500, written \d+ s ago: a rerun resumes there\n", out), out
    assert ev.id not in out.split("requeued, waiting")[1]  # never started: waits on its dependency, not requeued
    rows = {r["id"]: r for r in status_json(plan_grid(grid), env / "wd")["jobs"]}
    assert (rows[pre.id]["requeues"], rows[pre.id]["preemptions"], rows[pre.id]["resumed_at"]) == \
        (2, 0, [[173, 1500]])
    assert (rows[ev.id]["state"], rows[ev.id]["requeues"]) == ("pending", None)  # no log yet
    killed = "\n".join(REQUEUED_LOG.splitlines()[:3] + ["srun: error: vm: task 0: Killed", ""])  # no checkpoint line
    log.write_text(killed)  # its latest progress line is the run's before the restart: said so
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert re.search(r": \[pretrain\] step 150/1500 .*\]  \(before Slurm stopped the job to run it again; nothing "
                     r"since\)\n", out), out
    row = {r["id"]: r for r in status_json(plan_grid(grid), env / "wd")["jobs"]}[pre.id]
    assert (row["progress_count"], row["progress_before_restart"]) == ([150, 1500], True)  # waiting: its last line
    log.write_text(REQUEUED_LOG)

    # requeued, then held (a launch that failed): not waiting to start, but named with what frees it
    (slurm / "squeue").write_text(f"{ids[pre.id]} PENDING launch failed requeued held\n"
                                  f"{ids[ev.id]} PENDING Dependency\n")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "requeued, waiting" not in out, out
    assert "pending job(s) that Slurm will not start as they stand: launch failed requeued held" in out, out
    # `scontrol requeuehold`: squeue words that hold otherwise; it read as waiting to start by itself, which it never
    (slurm / "squeue").write_text(f"{ids[pre.id]} PENDING job requeued in held state\n"
                                  f"{ids[ev.id]} PENDING Dependency\n")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "requeued, waiting" not in out, out
    assert ("pending job(s) that Slurm will not start as they stand: job requeued in held state: held; `scontrol "
            f"release <id>` frees it: pretrain {pre.id}") in out, out

    # suspended in place (`scontrol suspend`, a preemption under PreemptMode=SUSPEND): it read as requeued, to resume
    # from its checkpoint once started; it goes on where it stopped once resumed
    _sacct(slurm, {ids[pre.id]: "SUSPENDED", ids[ev.id]: "PENDING"})
    (slurm / "squeue").write_text(f"{ids[pre.id]} SUSPENDED None\n{ids[ev.id]} PENDING Dependency\n")
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "1", "0", "0", "0"], out
    assert "requeued, waiting" not in out and "will not start" not in out, out
    assert ("\nsuspended (1), counted pending: Slurm stopped them where they were, keeping their nodes; each goes on "
            "from there once resumed (`scontrol resume <id>`, or once the job that preempted it ends); its checkpoint "
            f"is for a rerun only:\n  pretrain {pre.id} (slurm {ids[pre.id]}, SUSPENDED): [pretrain] checkpoint "
            "written at step 226/1500") in out, out
    row = {r["id"]: r for r in status_json(plan_grid(grid), env / "wd")["jobs"]}[pre.id]
    assert (row["state"], row["detail"], row["progress_count"]) == ("pending", "SUSPENDED", [226, 1500])

    _sacct(slurm, {ids[pre.id]: "FAILED", ids[ev.id]: "CANCELLED by 0"})  # then killed (kill -9 on its node)
    out = run_cli(["status", str(grid), "--workdir", str(env / "wd")])[1]
    assert "requeued, waiting" not in out, out
    assert ("  before it ended: requeued 2 time(s), resumed at step 173/1500\n"
            "  checkpoint at step 226/1500: `study submit --retry-failed` resumes it there\n") in out, out
    assert f"cancelled 1 job(s) because their dependency {pre.id} failed: {ev.id}" in out, out
