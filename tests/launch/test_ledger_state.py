"""Ledger replay (torn lines, open intents, latest event per job) and job classification / selection."""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from launch_helpers import fake_commands

import study.launch.state as state_mod
from study.errors import StudyError
from study.flock import NO_FLOCK_ERRNOS
from study.grids import Job
from study.launch.ledger import Ledger, complete_event
from study.launch.locks import submit_lock
from study.launch.select import BEHIND_NEWER, NEWER, only_names, resolve_ids, select
from study.launch.slurm.state import (REMOVED, _seconds_since, failing_task_log, find_by_name, first_task_log,
                                      pending_reasons, query, scancel)
from study.launch.stale import stale_results
from study.launch.state import JobState, classify, result_done, sacct_word, slurm_state
from study.manifests.store import load_meta


def _jobs():
    p1 = Job(id="p1", stage="pretrain", config={"axes": {}})
    p2 = Job(id="p2", stage="pretrain", config={"axes": {}})
    e1 = Job(id="e1", stage="evaluate", config={"axes": {}}, depends_on=("p1",))
    e2 = Job(id="e2", stage="evaluate", config={"axes": {}}, depends_on=("p2",))
    return [p1, p2, e1, e2]


def test_replay_keeps_latest_event_per_job_and_ignores_a_torn_last_line(tmp_path):
    led = Ledger(tmp_path, "g")
    led.append([{"event": "intent", "batch": "b1", "name": "n1", "stage": "pretrain", "jobs": ["p1", "p2"]}])
    led.append([{"event": "queued", "batch": "b1", "job": "p1", "slurm_job_id": "5_0"},
                {"event": "queued", "batch": "b1", "job": "p2", "slurm_job_id": "5_1"}])
    led.append([{"event": "intent", "batch": "b2", "name": "n2", "stage": "pretrain", "jobs": ["p2"]}])
    led.append([{"event": "queued", "batch": "b2", "job": "p2", "slurm_job_id": "9"}])
    led.append([{"event": "intent", "batch": "b3", "name": "n3", "stage": "evaluate", "jobs": ["e1"]}])
    with open(led.path, "a") as f:
        f.write('{"event": "queued", "batch": "b3", "job": "e1", "slu')  # killed mid-write
    r = led.replay()
    assert r.slurm_ids() == {"p1": "5_0", "p2": "9"}
    assert r.slurm_folders(["p2"]) == {"9": None}  # sacct is asked of the jobs wanted only
    assert [i["batch"] for i in r.open_intents] == ["b3"]
    assert all(json.loads(line)["at"] for line in led.path.read_text().splitlines()[:-1])
    led.append([{"event": "lost", "batch": "b3"}])  # settled: no longer open
    assert led.replay().open_intents == []


def test_a_job_another_grid_queued_is_seen_as_queued_not_missing(tmp_path):
    """One config in two grids is one job: grid b sees grid a's live submission of the shared p1 (and selects
    nothing to queue for it), while its own events win for the jobs it submitted itself."""
    a, b = Ledger(tmp_path, "a"), Ledger(tmp_path, "b")
    a.append([{"event": "intent", "batch": "x", "name": "na", "stage": "pretrain", "jobs": ["p1", "p2"]}])
    a.append([{"event": "queued", "batch": "x", "job": "p1", "slurm_job_id": "7_0"},
              {"event": "queued", "batch": "x", "job": "p2", "slurm_job_id": "7_1"}])
    b.append([{"event": "queued", "batch": "y", "job": "p2", "slurm_job_id": "8"}])
    assert b.replay().slurm_ids() == {"p2": "8"}
    r = b.replay_with_shared()
    assert r.slurm_ids() == {"p1": "7_0", "p2": "8"} and r.latest["p1"]["grid"] == "a"
    assert r.open_intents == [] and a.replay_with_shared().open_intents == []
    jobs = _jobs()
    states = classify(jobs, tmp_path, r, live={"7_0": "RUNNING", "8": "PENDING"})
    sel = select(jobs, states, retry_failed=False)
    assert [j.id for j in sel.to_run] == ["e1", "e2"]  # p1 is not queued again; its evaluation waits for it


def test_classify_prefers_results_then_ledger_and_sacct(tmp_path):
    jobs = _jobs()
    _write_result(tmp_path, "p1")
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": j, "slurm_job_id": s}
                for j, s in (("p1", "3_0"), ("p2", "3_1"), ("e1", "4"))])
    states = classify(jobs, tmp_path, led.replay(), {"3_0": "FAILED", "3_1": "FAILED", "4": "PENDING"})
    assert {k: v.state for k, v in states.items()} == {"p1": "done", "p2": "failed", "e1": "pending",
                                                       "e2": "missing"}
    assert slurm_state("CANCELLED by 0") == "cancelled" and slurm_state("RUNNING") == "running"
    assert slurm_state("COMPLETED") == "failed"  # completed without a result file
    assert slurm_state("PREEMPTED") == "cancelled" and slurm_state("REQUEUED") == "pending"  # preempted for good
    sel = select(jobs, states, retry_failed=False)
    assert sel.to_run == []  # e2 is missing but its pretraining failed: blocked, not queued
    assert sel.skipped["blocked by a failed dependency"] == ["e2"]
    sel = select(jobs, states, retry_failed=True)
    assert [j.id for j in sel.to_run] == ["p2", "e2"]


def test_a_final_timeout_is_failed_and_a_cancelled_job_is_retried_with_retry_failed(tmp_path):
    """sacct's last TIMEOUT is final (submitit requeues a timed-out job itself, up to its limit): failed, so that
    --retry-failed reruns it, not pending forever. A cancelled job (scancel, preempted for good) is rerun only with
    --retry-failed, as a failed one."""
    jobs = _jobs()
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": j, "slurm_job_id": s}
                for j, s in (("p1", "3_0"), ("p2", "3_1"))])
    states = classify(jobs, tmp_path, led.replay(), {"3_0": "TIMEOUT", "3_1": "CANCELLED by 0"})
    assert (states["p1"].state, states["p2"].state) == ("failed", "cancelled")
    assert select(jobs, states, retry_failed=False).to_run == []
    assert [j.id for j in select(jobs, states, retry_failed=True).to_run] == ["p1", "p2", "e1", "e2"]


def test_only_selects_the_jobs_named_whose_dependencies_are_done_live_or_named(tmp_path):
    """--only: the named jobs that would run; a dependency with no result that is neither live nor named is refused,
    naming both jobs; the skipped count tells only of the named jobs."""
    jobs = _jobs()
    _write_result(tmp_path, "p1")
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": "p2", "slurm_job_id": "3"}])
    states = classify(jobs, tmp_path, led.replay(), {"3": "RUNNING"})
    sel = select(jobs, states, retry_failed=False, only={"e1", "e2"})
    assert [j.id for j in sel.to_run] == ["e1", "e2"]  # p1 done, p2 queued on Slurm: e2 waits for it there
    sel = select(jobs, states, retry_failed=False, only={"p1", "e1"})
    assert [j.id for j in sel.to_run] == ["e1"] and sel.summary() == "1 done"  # p2 and e2 are not counted
    states = classify(jobs, tmp_path, Ledger(tmp_path, "none").replay())  # p2 missing
    with pytest.raises(StudyError, match="--only/--where: job e2 needs job p2, which has no result: name it too"):
        select(jobs, states, retry_failed=False, only={"e2"})
    assert [j.id for j in select(jobs, states, retry_failed=False, only={"p2", "e2"}).to_run] == ["p2", "e2"]


def test_only_takes_ids_or_their_unique_prefixes():
    jobs = [Job(id=i, stage="pretrain", config={"axes": {}}) for i in ("a1b2", "a1c3", "ff00")]
    assert resolve_ids(jobs, ["a1b", "ff00"], "g.yaml") == {"a1b2", "ff00"}
    with pytest.raises(StudyError, match=r"--only 'a1': .* one job of g.yaml, matched 2: a1b2, a1c3 \(`study plan"):
        resolve_ids(jobs, ["a1"], "g.yaml")
    for name in ("zz", "", "1b2"):  # "1b2": inside an id, not its start
        with pytest.raises(StudyError, match="matched none"):
            resolve_ids(jobs, [name], "g.yaml")
    with pytest.raises(StudyError, match=r"\(`study plan 'my grids/g.yaml'` lists them\)"):  # pasted as it is
        resolve_ids(jobs, ["zz"], "my grids/g.yaml")


def test_only_values_split_at_commas_and_a_stray_comma_adds_no_name():
    """`--only a1b2,ff00, --only c3` names three jobs; `--only ,` names none: refused as itself, not as an id ''."""
    assert only_names(["a1b2,ff00,", " c3 "]) == ["a1b2", "ff00", "c3"]
    for value in (",", " , ,", ""):
        with pytest.raises(StudyError, match=rf"^--only {re.escape(repr(value))}: names no job: "):
            only_names(["a1b2", value])


def _write_result(workdir, job_id, protocol=None):
    from study.results import write_result

    write_result(workdir, {"job_id": job_id, "stage": "pretrain", "grid": "g", "axes": {},
                           "metrics": [{"metric": "loss", "value": 1.0}], "protocol": protocol or {"epochs": 1}})


def test_a_result_file_that_cannot_be_read_is_a_failed_job_not_a_done_one(tmp_path):
    """A truncated result (a copied workdir, a damaged disk) used to count done, so no submit would ever rerun the
    job while the report called it missing: it is failed, naming the file, and --retry-failed reruns it."""
    jobs = _jobs()[:2]
    _write_result(tmp_path, "p1")
    _write_result(tmp_path, "p2")
    path = tmp_path / "results" / "p2.json"
    path.write_text(path.read_text()[:40])
    states = classify(jobs, tmp_path, Ledger(tmp_path, "g").replay())
    assert states["p1"].state == "done" and states["p2"].state == "failed"
    assert f"{path}: unreadable result file" in states["p2"].detail and "--retry-failed" in states["p2"].detail
    assert select(jobs, states, retry_failed=False).to_run == []
    assert [j.id for j in select(jobs, states, retry_failed=True).to_run] == ["p2"]
    _write_result(tmp_path, "p2")  # rerun: the same process (a local submit's loop) reads the new file, not a memo
    assert classify(jobs, tmp_path, Ledger(tmp_path, "g").replay())["p2"].state == "done"
    path.write_text(path.read_text()[:40])  # and a damaged one again, though it read before
    assert classify(jobs, tmp_path, Ledger(tmp_path, "g").replay())["p2"].state == "failed"


def test_a_result_replaced_within_one_mtime_tick_and_of_the_same_size_is_read_anew(tmp_path):
    """A filesystem of coarse timestamps gives a rerun's result, written by a rename, the old file's mtime; of the
    same size, only its inode tells the versions apart, and the memo must not answer with the old record."""
    path = tmp_path / "results" / "p1.json"
    _write_result(tmp_path, "p1", {"epochs": 1})
    st = path.stat()
    assert state_mod.cached_result(path)["protocol"]["epochs"] == 1
    _write_result(tmp_path, "p1", {"epochs": 2})
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert state_mod.cached_result(path)["protocol"]["epochs"] == 2


def test_a_local_run_whose_process_is_gone_counts_as_missing(tmp_path):
    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "running", "pid": 2 ** 22 + 7, "host": "nowhere"}])
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "missing"


def test_an_unanswered_lookup_never_marks_a_submission_lost(monkeypatch, tmp_path):
    """recover() marks an open intent lost only when Slurm answered and knows no such job."""
    monkeypatch.setenv("PATH", str(tmp_path))  # neither squeue nor sacct can be run
    with pytest.raises(StudyError, match="cannot ask Slurm"):
        find_by_name("study-g-pretrain-deadbeef", since="2026-11-27T10:00:00+00:00")
    fake_commands(tmp_path, squeue="exit 0")  # squeue answers, with nothing
    assert find_by_name("study-g-pretrain-deadbeef") is None


def test_sacct_start_time_is_local_time_an_hour_early(monkeypatch):
    import time

    from study.launch.slurm.state import _sacct_time

    monkeypatch.setenv("TZ", "XST+8")  # POSIX: 8 hours west of UTC, no tzdata needed
    time.tzset()
    try:
        assert _sacct_time("2026-11-27T10:00:00+00:00") == "2026-11-27T01:00:00"  # 10:00 UTC = 02:00 there, - 1 h
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_failed_multi_task_job_points_at_the_task_that_failed(tmp_path):
    """Task 0's log is the default; of a failed job's per-task logs, the first holding the error is shown (the
    other ranks were only killed). Files as submitit names them: <array>_<index>_<task>_log.err."""
    folder = tmp_path / "238_3"
    folder.mkdir()
    logs = {t: folder / f"238_3_{t}_log.err" for t in (0, 1, 2, 10)}
    logs[0].write_text("[train] step 10\nsrun: forcing job termination\n")
    logs[1].write_text("[train] step 10\n")
    logs[2].write_text("Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory\n")
    logs[10].write_text("study: error: unreadable image\n")
    (folder / "238_30_1_log.err").write_text("Traceback (most recent call last):\n")  # another array element
    assert failing_task_log(str(logs[0])) == str(logs[2])
    logs[2].write_text("fine\n")
    assert failing_task_log(str(logs[0])) == str(logs[10])  # by task number, not by name
    logs[10].write_text("fine\n")
    assert failing_task_log(str(logs[0])) == str(logs[0])  # none holds an error: task 0's
    assert failing_task_log(str(tmp_path / "elsewhere.log")) == str(tmp_path / "elsewhere.log")


def test_states_wait_for_a_submit_in_flight_instead_of_judging_its_array_lost(tmp_path, monkeypatch):
    """An intent without `queued` lines is an interrupted submit only when no submit holds the workdir's lock. A
    status read while a submit sits between sbatch and its `queued` lines waits for it; it used to ask squeue at
    once, find nothing yet, and record the array lost."""
    import threading
    from types import SimpleNamespace

    from study.launch.locks import try_lock
    from study.launch.grid_states import grid_states

    bin_dir = fake_commands(tmp_path / "bin", squeue="exit 0")  # Slurm answers: no such job (yet)
    monkeypatch.setenv("PATH", str(bin_dir))
    wd = tmp_path / "wd"
    led = Ledger(wd, "g")
    led.append([{"event": "intent", "batch": "b1", "name": "study-g-pretrain-b1", "stage": "pretrain",
                 "jobs": ["p1", "p2"], "folder": "f"}])
    fd = try_lock(wd / "ledgers" / ".submit.lock")  # the submit in flight
    assert fd is not None
    got = {}
    reader = threading.Thread(target=lambda: got.update(grid_states(SimpleNamespace(name="g", jobs=_jobs()), wd)))
    reader.start()
    reader.join(1.0)
    assert reader.is_alive() and not [e for e in led.events() if e["event"] == "lost"]
    led.append([{"event": "lost", "batch": "b1"}])  # the submit settles its own intent (here: sbatch refused)
    os.close(fd)
    reader.join(10)
    assert not reader.is_alive()
    assert [e["event"] for e in led.events()] == ["intent", "lost"]  # nothing appended by the reader
    assert got["p1"].state == "missing"


def test_a_running_event_is_live_while_its_job_lock_is_held_whatever_its_pid_or_host(tmp_path):
    """A worker holds its job's lock for as long as it lives: a pid since reused by another process does not keep a
    dead run 'running', and a run on another host of a shared workdir is not 'missing'."""
    import socket

    from study.launch.locks import job_lock

    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "running", "pid": os.getpid(),  # a live, reused pid
                 "host": socket.gethostname()}])
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "missing"
    led.append([{"event": "local", "job": "p1", "state": "running", "pid": 7, "host": "compute-node-3"}])
    lock = job_lock(tmp_path, "p1")
    try:
        assert classify(jobs, tmp_path, led.replay())["p1"].state == "running"
    finally:
        os.close(lock)
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "missing"


def test_a_pending_event_is_live_while_its_command_lock_is_held(tmp_path):
    from study.launch.locks import command_lock

    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    with command_lock(tmp_path) as name:
        led.append([{"event": "local", "job": "p1", "state": "pending", "pid": 7, "host": "elsewhere", "lock": name}])
        assert classify(jobs, tmp_path, led.replay())["p1"].state == "pending"
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "missing"
    assert not (tmp_path / "locks" / name).exists()


def test_a_killed_commands_lock_file_is_removed_by_a_later_command_once_old_and_free(tmp_path):
    from study.launch.locks import command_lock, try_lock

    locks = tmp_path / "locks"
    locks.mkdir()
    stale, young, held = (locks / f"command-h-{i}-x.lock" for i in (1, 2, 3))
    for p in (stale, young, held):
        p.touch()
    for p in (stale, held):
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    fd = try_lock(held)  # a live command's lock: kept however old
    try:
        with command_lock(tmp_path) as name:
            assert sorted(p.name for p in locks.iterdir()) == sorted([young.name, held.name, name])
    finally:
        os.close(fd)


def test_the_newest_event_of_any_grid_sharing_a_job_wins(tmp_path):
    """An old event in this grid's ledger (its command stopped long ago) does not hide another grid's run since."""
    for grid, job, state, day in (("a", "p1", "running", 1), ("b", "p1", "done", 2), ("b", "p2", "failed", 1),
                                  ("a", "p2", "pending", 3)):
        Ledger(tmp_path, grid).append([{"event": "local", "job": job, "state": state,
                                        "at": f"2026-01-0{day}T00:00:00+00:00"}])
    latest = Ledger(tmp_path, "a").replay_with_shared().latest
    assert (latest["p1"]["state"], latest["p1"]["grid"]) == ("done", "b")
    assert latest["p2"]["state"] == "pending" and "grid" not in latest["p2"]


def test_another_grids_interrupted_submit_leaves_this_grid_unsettled(tmp_path):
    """An open intent of grid a may have queued jobs grid b shares: b's states wait for it to be settled."""
    a, b = Ledger(tmp_path, "a"), Ledger(tmp_path, "b")
    a.append([{"event": "intent", "batch": "x", "name": "na", "stage": "pretrain", "jobs": ["p1"]}])
    b.append([{"event": "local", "job": "p2", "state": "done"}])
    assert not b.replay().unsettled
    r = b.replay_with_shared()
    assert r.unsettled and r.open_intents == [] and [i["batch"] for i in r.shared_open_intents] == ["x"]
    a.append([{"event": "lost", "batch": "x"}])
    assert not b.replay_with_shared().unsettled


def test_appending_nothing_writes_nothing(tmp_path):
    led = Ledger(tmp_path, "g")
    led.append([])
    assert not (tmp_path / "ledgers").exists() and led.events() == []


def test_a_worker_killed_by_a_signal_is_recorded_as_such(tmp_path):
    from study.launch.local.scheduler import _failure

    log = tmp_path / "j.log"
    log.write_text("==== 2026-11-29 22:09:32 pretrain job j\n")
    assert _failure(-9, log) == f"killed by SIGKILL (out of memory?); log {log}"
    assert _failure(-15, log) == f"killed by SIGTERM; log {log}"
    assert _failure(-77, log) == f"killed by signal 77; log {log}"  # a number no signal of Python's names
    assert _failure(1, log) == "exit code 1 (this run wrote nothing to its log)"
    assert _failure(0, log) == "exit code 0 (this run wrote nothing to its log)"  # ended well, but without a result
    spaced = tmp_path / "my project" / "j.log"  # a log path with a space: quoted, one word to copy into `tail -f`
    spaced.parent.mkdir()
    spaced.write_text(log.read_text())
    assert _failure(-15, spaced) == f"killed by SIGTERM; log '{spaced}'"
    log.write_text("==== header\nstudy: error: manifest toy not found\n")
    assert _failure(2, log) == "exit code 2: study: error: manifest toy not found"
    log.write_text("==== header\nstudy: error: /w/jobs/p/checkpoint.pt: cannot be read (UnpicklingError)\n"
                   "    Check the documentation of torch.load to learn more.\nremove it to start over\n")
    assert _failure(2, log) == "exit code 2: study: error: /w/jobs/p/checkpoint.pt: cannot be read (UnpicklingError)"


def test_a_rerun_that_fails_is_recorded_with_its_own_error_not_an_earlier_runs(tmp_path):
    """A job's log holds each of its runs after a `==== ` header: a rerun (`--retry-failed`, once the cause of the
    first failure is fixed) that fails otherwise (a traceback, or no word at all) is not said to have failed of the
    first run's `study: error:` line, which `study status` would then print as its cause."""
    from study.launch.local.scheduler import _failure

    log = tmp_path / "j.log"
    first = ("==== 2026-12-03 01:48:36 +0000 pretrain job j\n[pretrain] step 1/4 loss 5.4012\n"
             "study: error: cannot read image /d/a.png (manifest m): OSError: image file is truncated\n")
    log.write_text(first + "==== 2026-12-03 02:10:00 +0000 pretrain job j\n[pretrain] step 1/4 loss 5.4012\n"
                   "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                   "RuntimeError: CUDA out of memory\n")
    assert _failure(1, log) == "exit code 1: RuntimeError: CUDA out of memory"
    log.write_text(first + "==== 2026-12-03 02:10:00 +0000 pretrain job j\n")
    assert _failure(1, log) == "exit code 1 (this run wrote nothing to its log)"
    log.write_text("[pretrain] step 1/4 loss 5.4012\n" * 50 + "study: error: manifest toy not found\n")
    assert _failure(2, log) == "exit code 2: study: error: manifest toy not found"  # its header 40+ lines up


def test_a_local_job_said_done_whose_result_is_gone_says_so(tmp_path):
    """A removed result file (to rerun the job) left `failed ... (no detail)` and a log ending in "result written"."""
    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "done", "log": "x.log"}])
    st = classify(jobs, tmp_path, led.replay())["p1"]
    assert st.state == "failed" and st.detail.startswith(f"said done, but {tmp_path}/results/p1.json is gone")
    assert st.log == "x.log"  # the log of its run, which status prints the end of


def test_a_done_job_keeps_the_log_of_the_run_that_wrote_its_result(tmp_path):
    """A done job names its log (status --format json read `log: null`): a local run's, a Slurm submission's stderr
    (and its Slurm id); a job whose latest event set its result aside names none."""
    jobs = _jobs()[:2]
    for j in ("p1", "p2"):
        _write_result(tmp_path, j)
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "done", "log": "p1.log"},
                {"event": "queued", "batch": "b", "job": "p2", "slurm_job_id": "7"}])
    states = classify(jobs, tmp_path, led.replay(), {"7": "COMPLETED"}, logs={"7": "/x/7_0_log.err"})
    assert [(states[j].state, states[j].slurm_id, states[j].log) for j in ("p1", "p2")] == [
        ("done", None, "p1.log"), ("done", "7", "/x/7_0_log.err")]
    led.append([{"event": "set_aside", "job": "p1", "folder": "old"}])
    assert classify(jobs, tmp_path, led.replay())["p1"].log is None


def test_a_preempted_job_still_in_the_queue_is_pending_not_cancelled():
    """With PreemptMode=REQUEUE (or after a node failure) sacct's record reads PREEMPTED (NODE_FAIL) while Slurm
    waits to restart the job: read as cancelled, it was queued a second time by --retry-failed and left out of
    `study cancel`. squeue's listing decides. (Preemption cannot be made on the one-node test cluster: squeue's
    output is given here as text.)"""
    from study.launch.slurm.state import still_queued

    squeue = "700_0 PENDING\n700_[2-5] PENDING\n701 RUNNING\n"
    got = still_queued(["700_0", "700_1", "701", "702"], squeue)
    assert got == {"700_0": "PENDING", "701": "RUNNING"}  # 700_1 and 702 left the queue: preempted for good
    assert {sid: slurm_state(raw) for sid, raw in got.items()} == {"700_0": "pending", "701": "running"}
    assert still_queued(["700_0"], None) == {"700_0": "REQUEUED"}  # squeue not answering: never queue it twice


def test_squeue_is_asked_of_the_queried_arrays_only_and_an_unknown_one_reads_as_gone(tmp_path, monkeypatch):
    """Not the whole cluster's queue (100,000s of lines on a large cluster): squeue is given the arrays' ids; it
    answers "Invalid job id specified" (exit 1) when it knows none of them, which means none is still queued (a
    preempted task that left the queue has ended), not that squeue could not be asked (read as still queued)."""
    bin_dir, asked = tmp_path / "bin", tmp_path / "squeue_args"
    fake_commands(bin_dir, sacct='echo "JobID|State|NodeList|End"; echo "101_0|PREEMPTED|n1|Unknown"; '
                                 'echo "102|PENDING|None|Unknown"',
                  squeue=f'echo "$@" >> "{asked}"; echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    states = query(tmp_path, {"101_0": str(tmp_path / "a"), "102": str(tmp_path / "b")}, reasons=True).states
    assert asked.read_text().split()[-1] == "--jobs=101,102"
    assert slurm_state(states["101_0"]) != "pending" and states["102"] == "PENDING"
    # a large grid: at most 500 arrays a call (one argument of 14,000 ids would pass Linux's 128 KiB limit)
    asked.unlink()
    query(tmp_path, dict.fromkeys([str(1000 + i) for i in range(1001)]), reasons=True)
    calls = [line.split()[-1] for line in asked.read_text().splitlines()]
    assert [len(c.split(",")) for c in calls] == [500, 500, 1] and calls[0].startswith("--jobs=1000,1001,")


def test_a_job_sacct_still_reads_pending_that_squeue_lists_running_reads_running(tmp_path, monkeypatch):
    """slurmdbd hears of a start some seconds after slurmctld (on the localhost cluster: `study status` run 3 s after
    `study submit --retry-failed`): sacct read PENDING while the job ran and had written its log, and status said it
    was "requeued, waiting in Slurm's queue to start again". squeue, asked for the pending reasons, decides; a job
    pending in both, or one squeue no longer lists, keeps sacct's state."""
    bin_dir = tmp_path / "bin"
    fake_commands(bin_dir, sacct='echo "JobID|State|NodeList|End"; echo "301|PENDING|None|Unknown"; '
                                 'echo "302_0|PENDING|None|Unknown"; echo "302_1|PENDING|None|Unknown"; '
                                 'echo "303|PENDING|None|Unknown"',
                  squeue='printf "301 RUNNING None\\n302_0 PENDING Resources\\n302_1 COMPLETING None\\n"')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ids = dict.fromkeys(["301", "302_0", "302_1", "303"], str(tmp_path / "a"))
    states = query(tmp_path, ids, reasons=True).states
    assert {sid: slurm_state(raw) for sid, raw in states.items()} == \
        {"301": "running", "302_0": "pending", "302_1": "running", "303": "pending"}
    assert states["301"] == "RUNNING" and states["302_0"] == "PENDING (Resources)"


def test_a_pending_task_squeue_does_not_list_reads_removed_and_one_it_lists_ended_does_not(tmp_path, monkeypatch):
    """`scancel 301_2` of a pending task: Slurm keeps no record of it, sacct reads it pending (its array's record
    still spans it) and squeue lists it no more: cancelled (slurm.state.REMOVED). A task sacct still reads pending
    that squeue lists ended (sacct lags the controller), and a lone job squeue does not list, keep sacct's state."""
    bin_dir, asked = tmp_path / "bin", tmp_path / "squeue_args"
    fake_commands(bin_dir, sacct='echo "JobID|State|NodeList|End"; echo "301_0|RUNNING|n1|Unknown"; '
                                 'echo "301_[1-3]|PENDING|None|Unknown"; echo "302|PENDING|None|Unknown"',
                  squeue=f'echo "$@" >> "{asked}"; printf "301_0 RUNNING Unknown None\n301_1 PENDING Unknown '
                         f'Priority\n301_3 COMPLETED 2026-12-07T10:00:00 None\n"')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    states = query(tmp_path, dict.fromkeys(["301_0", "301_1", "301_2", "301_3", "302"], str(tmp_path / "a"))).states
    assert {sid: slurm_state(raw) for sid, raw in states.items()} == \
        {"301_0": "running", "301_1": "pending", "301_2": "cancelled", "301_3": "pending", "302": "pending"}
    assert states["301_2"] == REMOVED
    assert "--jobs=301" in asked.read_text().split()  # the candidates' array alone
    # a status (pending reasons asked of squeue) whose pending tasks squeue lists asks squeue once, not twice
    asked.unlink()
    states = query(tmp_path, dict.fromkeys(["301_0", "301_1", "302"], str(tmp_path / "a")), reasons=True).states
    assert slurm_state(states["301_1"]) == "pending" and len(asked.read_text().splitlines()) == 1


def test_a_task_squeue_hides_by_default_or_by_a_squeue_variable_is_not_read_removed(tmp_path, monkeypatch):
    """squeue leaves out the jobs of a hidden partition, or of one the user's groups may not use (a labmate's), unless
    asked with -a, and filters its listing by the user's SQUEUE_USERS, SQUEUE_PARTITION... as by its options: such a
    live pending task read cancelled (REMOVED), and `study submit --retry-failed` queued it a second time; an
    interrupted submit's array, looked for by its name, read lost on a cluster whose sacct cannot say."""
    hides = 'case " $* " in *" -a "*) ;; *) exit 0;; esac\nif env | grep -q "^SQUEUE_"; then exit 0; fi\n'
    listing, named = tmp_path / "bin", tmp_path / "bin_named"
    fake_commands(listing, sacct='echo "JobID|State|NodeList|End"; echo "401_[0-1]|PENDING|None|Unknown"',
                  squeue=hides + 'printf "401_0 PENDING Unknown Priority\\n401_1 PENDING Unknown Priority\\n"')
    fake_commands(named, sacct="exit 1", squeue=hides + "echo 401")
    ids = dict.fromkeys(["401_0", "401_1"], str(tmp_path / "a"))
    for name, value in ((None, None), ("SQUEUE_USERS", "bob"), ("SQUEUE_PARTITION", "gpu"),
                        ("SQUEUE_STATES", "RUNNING")):
        if name:
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PATH", f"{listing}:/usr/bin:/bin")
        assert query(tmp_path, ids).states == {"401_0": "PENDING", "401_1": "PENDING"}, name
        monkeypatch.setenv("PATH", f"{named}:/usr/bin:/bin")
        assert find_by_name("study-g-pretrain-deadbeef") == "401", name
        if name:
            monkeypatch.delenv(name)


def test_query_asks_sacct_every_time_reads_array_tasks_one_by_one_and_says_when_sacct_fails(tmp_path, monkeypatch,
                                                                                           capsys):
    """Stand-ins for sacct and squeue (the one-node test cluster cannot preempt a job), answering as Slurm does:
    - squeue without -r folds an array's pending tasks, also a requeued one, into one line `101_[0-1]`: asked with
      -r, the preempted task 101_0 is found waiting to restart (pending), not taken for cancelled;
    - a state that changes between two calls in one process is read anew (submitit's watcher keeps the first answer
      of a job it counts as ended, CONFIGURING among them);
    - a sacct that fails, with a squeue that fails too, makes every state unknown (read as pending: nothing is
      queued twice), and says so (a squeue that answers: test_no_accounting.py)."""
    bin_dir, answer = tmp_path / "bin", tmp_path / "sacct.txt"
    fake_commands(bin_dir, sacct=f'cat "{answer}"',
                  squeue='case "$*" in *-r*) printf "101_0 PENDING\\n101_1 PENDING\\n";; '
                          '*) printf "101_[0-1] PENDING\\n";; esac')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    answer.write_text("JobID|State|NodeList\n101_0|PREEMPTED|n1\n101_1|PENDING|None\n102|CONFIGURING|n1\n")
    # each id's array folder, as the ledger's `queued` lines give it: 101 in a workdir submitted to before arrays had
    # folders of their own (submitit's `%j` folders; 101_1's line records none), 102 and 201 in the folder of their
    # array, recorded where the workdir was before it was moved here: its logs are read here
    folders = {"101_0": str(tmp_path / "submitit" / "%j"), "101_1": None,
               **{sid: f"/moved/from/wd/submitit/study-g-pretrain-{sid}" for sid in ("102", "201")}}
    said = query(tmp_path, {sid: folders[sid] for sid in ("101_0", "101_1", "102")})
    states, logs = said.states, said.logs
    assert {sid: slurm_state(raw) for sid, raw in states.items()} == \
        {"101_0": "pending", "101_1": "pending", "102": "pending"}
    assert logs["101_0"].endswith("submitit/101_0/101_0_0_log.err")
    assert logs["101_1"] == str(tmp_path.resolve() / "submitit" / "101_1" / "101_1_0_log.err")
    assert logs["102"] == str(tmp_path.resolve() / "submitit" / "study-g-pretrain-102" / "102_0_log.err")
    answer.write_text("JobID|State|NodeList\n102|FAILED|n1\n")
    assert slurm_state(query(tmp_path, {"102": folders["102"]})[0]["102"]) == "failed"
    # a node failure: requeued by Slurm while squeue still lists it (101_0), final once it has left the queue (201)
    answer.write_text("JobID|State|NodeList\n101_0|NODE_FAIL|n1\n201|NODE_FAIL|n1\n")
    states = query(tmp_path, {sid: folders[sid] for sid in ("101_0", "201")})[0]
    assert {sid: slurm_state(raw) for sid, raw in states.items()} == {"101_0": "pending", "201": "failed"}

    fake_commands(bin_dir, sacct='echo "sacct: error: Problem talking to the database" >&2; exit 1',
                  squeue='echo "squeue: error: Unable to contact slurm controller (connect failure)" >&2; exit 1')
    assert query(tmp_path, {"102": folders["102"]})[0] == {"102": "UNKNOWN"}
    assert "sacct failed: sacct: error: Problem talking to the database, and squeue could not be asked either: the " \
           "states of 1 Slurm job(s) are unknown" in capsys.readouterr().err


def test_submits_waiting_for_the_submit_lock_take_it_one_at_a_time(tmp_path):
    """Two submits that wait for a third's submit lock must not both go ahead when it ends: each would queue the
    jobs the other queues."""
    import threading

    from study.launch.locks import submit_lock, try_lock

    held = try_lock(tmp_path / "ledgers" / ".submit.lock")
    spans = []

    def submit():
        with submit_lock(tmp_path):
            start = time.monotonic()
            time.sleep(0.3)
            spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # both are waiting now
    os.close(held)
    for t in threads:
        t.join(10)
    (_, first_end), (second_start, _) = sorted(spans)
    assert first_end <= second_start


@pytest.mark.parametrize("code", sorted(NO_FLOCK_ERRNOS))
def test_a_workdir_without_flock_is_a_clear_error_naming_the_lock_file(tmp_path, monkeypatch, code):
    """Lustre mounted without `-o flock` answers flock with ENOSYS, an NFS mount without its lock manager with
    ENOLCK: the submit said only "study: error: Function not implemented", naming no file."""
    def no_flock(fd, op):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.raises(StudyError) as e:
        with submit_lock(tmp_path):
            raise AssertionError("ran without the lock")
    assert str(e.value).startswith(f"{tmp_path / 'ledgers' / '.submit.lock'}: the workdir's filesystem gives no "
                                   f"file locks (flock: {os.strerror(code)})")
    assert "-o flock" in str(e.value)


def test_a_result_a_newer_study_wrote_is_failed_here_but_never_rerun(tmp_path):
    """On a workdir shared with a colleague who updated study, a result of a newer schema does not read here: the
    job is failed (its evaluation waits), but --retry-failed reran it and replaced the newer version's result with
    this older code's. It is skipped under its own reason, which the end-of-run 'left unfinished' hint leaves out;
    a damaged result beside it is still rerun."""
    jobs = _jobs()[:2]
    _write_result(tmp_path, "p1")
    _write_result(tmp_path, "p2")
    path = tmp_path / "results" / "p1.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 2}))
    (tmp_path / "results" / "p2.json").write_text("{torn")
    states = classify(jobs, tmp_path, Ledger(tmp_path, "g").replay())
    assert (states["p1"].state, states["p1"].newer, states["p2"].state, states["p2"].newer) == \
        ("failed", True, "failed", False)
    assert "written by a newer version of study" in states["p1"].detail
    assert "not rerun here" in states["p1"].detail and "--retry-failed` reruns" not in states["p1"].detail
    sel = select(jobs, states, retry_failed=True)
    assert [j.id for j in sel.to_run] == ["p2"] and sel.skipped[NEWER] == ["p1"]
    assert sel.left_unfinished() == [] and "1 written by a newer version of study" in sel.summary()


def test_the_dependents_of_a_result_a_newer_study_wrote_are_not_left_for_retry_failed(tmp_path):
    """e1 needs p1, whose result a newer study wrote: no submit of this version runs e1 (its dependency is never
    rerun here), so it is skipped under its own reason, not as "blocked by a failed dependency", which a local run's
    end counted as left for `--retry-failed` (which reran nothing); e2, blocked by a damaged p2, still is."""
    jobs = _jobs()
    _write_result(tmp_path, "p1")
    path = tmp_path / "results" / "p1.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 2}))
    (tmp_path / "results" / "p2.json").write_text("{torn")
    states = classify(jobs, tmp_path, Ledger(tmp_path, "g").replay())
    for retry, only in ((False, None), (True, None), (True, {"e1", "e2"})):
        sel = select(jobs, states, retry_failed=retry, only=only)
        assert sel.skipped[BEHIND_NEWER] == ["e1"] and "e1" not in sel.left_unfinished(), (retry, only)
        assert "e1" not in sel.skipped["blocked by a failed dependency"]
    assert select(jobs, states, retry_failed=False).skipped["blocked by a failed dependency"] == ["e2"]
    assert [j.id for j in select(jobs, states, retry_failed=True).to_run] == ["p2", "e2"]
    Ledger(tmp_path, "g").append([{"event": "local", "job": "e1", "stage": "evaluate", "state": "cancelled",
                                   "log": None, "error": "dependency p1 failed"}])  # cancelled with this p1
    states = classify(jobs, tmp_path, Ledger(tmp_path, "g").replay())
    assert states["e1"].state == "cancelled"
    sel = select(jobs, states, retry_failed=False)
    assert sel.skipped[BEHIND_NEWER] == ["e1"] and sel.left_unfinished() == ["p2", "e2"], sel.skipped


def test_a_job_whose_dependency_is_blocked_is_blocked_too(tmp_path):
    """A chain p1 <- e1 <- x with p1 failed: e1 is blocked, and so is x (its dependency will not run either); x was
    queued, to wait for ever on a dependency nobody runs."""
    p1, _, e1, _ = _jobs()
    jobs = [p1, e1, Job(id="x", stage="evaluate", config={"axes": {}}, depends_on=("e1",))]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "failed", "error": "exit code 1"}])
    states = classify(jobs, tmp_path, led.replay())
    sel = select(jobs, states, retry_failed=False)
    assert sel.to_run == [] and sel.skipped["blocked by a failed dependency"] == ["e1", "x"]
    assert [j.id for j in select(jobs, states, retry_failed=True).to_run] == ["p1", "e1", "x"]


def test_select_files_each_job_it_does_not_queue_under_its_own_reason_and_counts_them():
    """Every job not queued is skipped under its state's reason (a done job whose dependency failed is done, not
    blocked; a job queued is under none), and the summary counts each non-empty reason in order, or says nothing."""
    ids = {"p1": "done", "p2": "failed", "p3": "cancelled", "p4": "pending", "p5": "running", "p6": "missing",
           "e1": "missing", "e3": "done"}
    jobs = [Job(id=i, stage="pretrain", config={"axes": {}}) for i in ids if i.startswith("p")]
    jobs += [Job(id=i, stage="evaluate", config={"axes": {}}, depends_on=("p2",)) for i in ("e1", "e3")]
    states = {i: JobState(job_id=i, stage="pretrain", state=st) for i, st in ids.items()}
    sel = select(jobs, states, retry_failed=False)
    assert [j.id for j in sel.to_run] == ["p6"]
    assert sel.skipped == {"done": ["p1", "e3"], "pending or running": ["p4", "p5"],
                           "failed (rerun with --retry-failed)": ["p2"],
                           "cancelled (rerun with --retry-failed)": ["p3"],
                           "blocked by a failed dependency": ["e1"]}
    assert sel.summary() == ("2 done, 2 pending or running, 1 failed (rerun with --retry-failed), "
                             "1 cancelled (rerun with --retry-failed), 1 blocked by a failed dependency")
    sel = select(jobs, states, retry_failed=True)
    assert [j.id for j in sel.to_run] == ["p2", "p3", "p6", "e1"]
    assert {k: v for k, v in sel.skipped.items() if v} == {"done": ["p1", "e3"], "pending or running": ["p4", "p5"]}
    assert sel.summary() == "2 done, 2 pending or running"
    fresh = {i: JobState(job_id=i, stage="pretrain", state="missing") for i in ids}
    assert select(jobs, fresh, retry_failed=False).summary() == "nothing"


def test_a_job_runs_once_its_dependency_is_done_and_waits_on_a_live_one_but_not_on_an_unknown_one():
    """A missing evaluation is queued when its pretraining is done or live (pending, running); one whose dependency
    has no state at all (not in the plan: nothing will run it) is blocked, not taken for done."""
    p1, _, e1, _ = _jobs()
    for dep_state in ("done", "pending", "running"):
        states = {"p1": JobState(job_id="p1", stage="pretrain", state=dep_state),
                  "e1": JobState(job_id="e1", stage="evaluate", state="missing")}
        assert [j.id for j in select([p1, e1], states, retry_failed=False).to_run] == ["e1"], dep_state
    sel = select([e1], {"e1": JobState(job_id="e1", stage="evaluate", state="missing")}, retry_failed=True)
    assert sel.to_run == [] and sel.skipped["blocked by a failed dependency"] == ["e1"]


def test_a_sacct_state_study_does_not_know_is_pending_and_a_truncated_one_is_read():
    """A state word of a newer Slurm is pending, and one sacct marks truncated (`RUNNING+`) is read without its
    mark: read as failed, either would let --retry-failed queue a second copy of a job Slurm still runs."""
    assert slurm_state("SOME_NEW_STATE") == "pending"
    assert slurm_state("RUNNING+") == "running"


def test_a_submission_sacct_does_not_know_yet_is_pending(tmp_path):
    """A job just submitted may not be in sacct yet (no answer for it, or an empty state): pending, never failed,
    which --retry-failed would queue a second time."""
    assert sacct_word("") == sacct_word(None) == "UNKNOWN"
    assert slurm_state("") == slurm_state("UNKNOWN") == "pending"
    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": "3"}])
    st = classify(jobs, tmp_path, led.replay(), live={})["p1"]
    assert (st.state, st.detail, st.slurm_id) == ("pending", "UNKNOWN", "3")


def test_a_line_that_is_not_an_event_is_skipped_like_a_torn_one(tmp_path):
    """A JSON line without "event" (a note pasted into the ledger, another tool's line) used to stop every command
    that reads the ledger with a KeyError."""
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "failed"}])
    with open(led.path, "a") as f:
        f.write('{"note": "p1 rerun after the fix"}\n[1, 2]\n"text"\n')
    with open(led.path, "ab") as f:
        f.write(b"\xff\xfe not UTF-8\n")  # another tool's bytes
    led.append([{"event": "local", "job": "p2", "state": "cancelled"}])
    assert [e["job"] for e in led.events()] == ["p1", "p2"]
    assert {j: e["state"] for j, e in led.replay().latest.items()} == {"p1": "failed", "p2": "cancelled"}


def test_each_final_sacct_state_is_failed_or_cancelled_and_each_live_one_pending_or_running(tmp_path):
    """A job that ended without a result (out of memory, its node failed to boot, past its deadline) must read failed
    or cancelled, which --retry-failed reruns: read pending (as an unknown word is) it was never rerun and its
    evaluations waited for ever."""
    words = {"FAILED": "failed", "TIMEOUT": "failed", "OUT_OF_MEMORY": "failed", "NODE_FAIL": "failed",
             "BOOT_FAIL": "failed", "DEADLINE": "failed", "COMPLETED": "failed", "CANCELLED by 1000": "cancelled",
             "CANCELLED": "cancelled", "REVOKED": "cancelled", "PREEMPTED": "cancelled", "PENDING": "pending",
             "REQUEUED": "pending", "REQUEUE_HOLD": "pending", "SUSPENDED": "pending", "CONFIGURING": "pending",
             "RUNNING": "running", "COMPLETING": "running", "SIGNALING": "running", "STAGE_OUT": "running",
             "RESIZING": "running", "REQUEUE_FED": "pending", "RESV_DEL_HOLD": "pending", "SPECIAL_EXIT": "failed"}
    assert {w: slurm_state(w) for w in words} == words
    jobs = _jobs()
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": "3_0"}])
    states = classify(jobs, tmp_path, led.replay(), {"3_0": "OUT_OF_MEMORY"})
    assert states["p1"].state == "failed" and states["p1"].detail == "OUT_OF_MEMORY"
    assert [j.id for j in select(jobs, states, retry_failed=True).to_run] == ["p1", "p2", "e1", "e2"]


def test_sacct_is_asked_in_groups_and_reads_every_job_of_a_large_grid(tmp_path, monkeypatch):
    """sacct is asked of at most 500 jobs at a time: every one of 1001 jobs is read, none left UNKNOWN (pending)."""
    # the stand-in answers RUNNING for each job it is asked of (-j <id>,<id>,...)
    bin_dir = fake_commands(tmp_path / "bin", sacct='echo "JobID|State|NodeList|End"\n'
                            'prev=""; for a in "$@"; do [ "$prev" = "-j" ] && ids=$a; prev=$a; done\n'
                            'for i in $(echo "$ids" | tr , " "); do echo "$i|RUNNING|n1|Unknown"; done')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ids = [str(1000 + i) for i in range(1001)]
    states = query(tmp_path, dict.fromkeys(ids, str(tmp_path / "submitit" / "a"))).states
    assert set(states) == set(ids) and set(states.values()) == {"RUNNING"}


def test_result_done_only_for_a_result_that_reads(tmp_path):
    """The local scheduler starts a dependent when its dependency's result reads: an unreadable one is not done."""
    assert not result_done(tmp_path, "p1")
    _write_result(tmp_path, "p1")
    assert result_done(tmp_path, "p1")
    path = tmp_path / "results" / "p1.json"
    path.write_text(path.read_text()[:40])
    assert not result_done(tmp_path, "p1")


def test_a_pending_event_without_a_lock_is_live_only_while_its_pid_lives_on_this_host(tmp_path):
    """An event of an older study (no lock named): its pid decides, and only on the host that wrote it (the same pid
    on another host of a shared workdir is another process)."""
    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "pending", "pid": os.getpid(), "host": socket.gethostname()}])
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "pending"
    led.append([{"event": "local", "job": "p1", "state": "pending", "pid": os.getpid(), "host": "another-host"}])
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "missing"
    gone = subprocess.Popen(["true"])  # a command of this host that has ended
    gone.wait()
    led.append([{"event": "local", "job": "p1", "state": "pending", "pid": gone.pid, "host": socket.gethostname()}])
    assert classify(jobs, tmp_path, led.replay())["p1"].state == "missing"


def test_an_event_with_an_empty_field_its_kind_is_read_by_is_incomplete():
    assert complete_event({"event": "local", "job": "p1"}) and not complete_event({"event": "local", "job": ""})
    assert not complete_event({"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": ""})


def test_a_pid_of_another_user_on_this_host_is_alive(tmp_path, monkeypatch):
    """os.kill(pid, 0) refused (EPERM): the process lives, another user's; its pending job is live."""
    def refuse(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(state_mod.os, "kill", refuse)
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "pending", "pid": 12345, "host": socket.gethostname()}])
    assert classify(_jobs()[:1], tmp_path, led.replay())["p1"].state == "pending"


def test_only_a_job_whose_unnamed_dependency_failed_is_blocked_not_refused(tmp_path):
    """--only: a failed dependency not named is the blocked case (reported, nothing raised), not a missing one."""
    jobs = _jobs()
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": "3"}])
    states = classify(jobs, tmp_path, led.replay(), {"3": "FAILED"})
    sel = select(jobs, states, retry_failed=True, only={"e1"})
    assert sel.to_run == [] and sel.skipped["blocked by a failed dependency"] == ["e1"]


def test_a_completed_job_whose_result_only_a_fresh_listing_shows_is_done(tmp_path, monkeypatch):
    """On NFS a lookup of results/<id>.json may answer from a cached absence for up to a minute while a listing of the
    folder, read anew, holds it: such a COMPLETED job is done, not failed (which --retry-failed would rerun). The
    cached absence cannot be made here: `has_result` answers it instead."""
    jobs = _jobs()[:1]
    _write_result(tmp_path, "p1")
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": "3"}])
    monkeypatch.setattr(state_mod, "has_result", lambda workdir, job_id: False)
    st = classify(jobs, tmp_path, led.replay(), live={"3": "COMPLETED"}, ended_s={"3": 600.0})["p1"]
    assert st.state == "done", st
    (tmp_path / "results" / "p1.json").unlink()
    st = classify(jobs, tmp_path, led.replay(), live={"3": "COMPLETED"}, ended_s={"3": 600.0})["p1"]
    assert (st.state, st.detail) == ("failed", "COMPLETED without a result file")


def test_stale_results_names_each_result_of_a_rebuilt_manifest_once(manifests, tmp_path, monkeypatch):
    """A result whose manifest now holds another content hash is named, once however many of its manifests were
    rebuilt, as is an evaluation one of whose encoders was pretrained on such a manifest; one whose manifest is
    unchanged, or gone (plan.check names that), or that records no content hash, is not."""
    copy = tmp_path / "manifests"
    shutil.copytree(manifests, copy)
    monkeypatch.setenv("STUDY_MANIFESTS", str(copy))
    now = {name: load_meta(name)["content_hash"] for name in ("toy_train", "toy_test")}
    wd = tmp_path / "wd"
    _write_result(wd, "same", {"manifest": "toy_train", "manifest_content_hash": now["toy_train"]})
    _write_result(wd, "gone", {"manifest": "gone_train", "manifest_content_hash": "a" * 64})
    _write_result(wd, "both", {"train_manifest": "toy_train", "train_manifest_content_hash": "b" * 64,
                               "test_manifest": "toy_test", "test_manifest_content_hash": "c" * 64})
    _write_result(wd, "nohash", {"manifest": "toy_train"})  # a record without the hash: nothing to tell by
    _write_result(wd, "two", {"train_manifest": "toy_train", "train_manifest_content_hash": now["toy_train"],  # two
                              "pretrain": [{"manifest": "toy_train", "manifest_content_hash": now["toy_train"]},
                                           {"manifest": "toy_test", "manifest_content_hash": "d" * 64}]})  # encoders
    _write_result(wd, "test", {"train_manifest": "toy_train", "train_manifest_content_hash": now["toy_train"],
                               "test_manifest": "toy_test", "test_manifest_content_hash": "e" * 64})
    _write_result(wd, "older", {"pretrain": "p0"})  # an older study's record: its encoder named, not described
    jobs = [Job(id=i, stage="evaluate", config={"axes": {}})
            for i in ("same", "gone", "both", "none", "nohash", "two", "test", "older")]
    assert stale_results(jobs, wd) == {"both": f"evaluate job both: its result used manifest toy_train with content "
                                               f"{'b' * 12}, which now holds {now['toy_train'][:12]}",
                                       "test": f"evaluate job test: its result used manifest toy_test with content "
                                               f"{'e' * 12}, which now holds {now['toy_test'][:12]}",
                                       "two": f"evaluate job two: its encoder was pretrained on manifest toy_test "
                                              f"with content {'d' * 12}, which now holds {now['toy_test'][:12]}"}


def test_pending_reasons_are_those_of_pending_lines_with_a_reason():
    """Only PENDING lines with a reason other than "None" count; a line without a reason column is skipped."""
    listing = ("5 PENDING launch failed requeued held\n6 RUNNING Prolog\n7 PENDING None\n8 PENDING\n"
               "9 PENDING Priority\n10 COMPLETING NonZeroExitCode\n")
    assert pending_reasons(listing) == {"5": "launch failed requeued held", "9": "Priority"}
    # `squeue -t all -o "%i %T %e %r"` (sacct unavailable): the end time before the reason
    ended = "5 PENDING Unknown launch failed requeued held\n6 COMPLETED 2026-12-06T11:31:51 None\n7 PENDING Unknown\n"
    assert pending_reasons(ended, before=3) == {"5": "launch failed requeued held"}


def test_a_failing_task_is_judged_by_the_end_of_its_log_only(tmp_path):
    """A traceback early in a long log (a warning printed and survived) does not make that task the failing one."""
    logs = [tmp_path / f"40_{t}_log.err" for t in (0, 1)]
    logs[0].write_text("Traceback (most recent call last):\n  caught, went on\n" + "[train] step\n" * 200)
    logs[1].write_text("[train] step\nTraceback (most recent call last):\nRuntimeError: NCCL\n")
    assert failing_task_log(str(logs[0]), tail_bytes=256) == str(logs[1])


def _rank_logs(folder, started: dict[int, list[str]], raised: dict[int, list[str]]) -> list:
    """Task logs of job 16 of two ranks as submitit and torch write them on a real cluster (scripts/slurm_two_nodes.sh):
    each task's stdout its `Starting with JobEnvironment` lines (`started`: the times), its stderr the traceback
    of each time it raised (`raised`: the times), rank 0's a lost peer's, rank 1's its own error."""
    error = {0: "[rank0]: RuntimeError: [gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:40351",
             1: "[rank1]: OSError: [Errno 5] Input/output error: '/data/fmnist/train/00042.png'"}
    logs = []
    for task in (0, 1):
        (folder / f"16_{task}_log.out").write_text("".join(
            f"submitit INFO ({t}) - Starting with JobEnvironment(job_id=16, node={task}(2), global_rank={task}(2))\n"
            for t in started[task]))
        (folder / f"16_{task}_log.err").write_text("[pretrain] step 10/300 loss 4.1236\n" * (task == 0) + "".join(
            f"submitit ERROR ({t}) - Submitted job triggered an exception\n[rank{task}]: Traceback (most recent "
            f"call last):\n[rank{task}]:   File \"loop.py\", line 218, in train\n{error[task]}\n" for t in raised[task])
            + "srun: error: n2: task 1: Exited with exit code 1\n" * (task == 0))
        logs.append(folder / f"16_{task}_log.err")
    return logs


def test_a_failed_job_of_two_ranks_points_at_the_rank_that_raised_first_not_at_the_one_that_lost_its_peer(tmp_path):
    """Rank 1 raised; rank 0, in a collective with it, raised two seconds later (gloo's "Connection closed by peer",
    once srun --kill-on-bad-exit signalled it): both logs end in a traceback, and rank 1's is the error. It used to
    be rank 0's, the first by task holding one, which `study status` showed as the job's error."""
    start = ["2026-12-07 22:48:18,545"]
    logs = _rank_logs(tmp_path, {0: start, 1: start}, {0: ["2026-12-07 22:48:32,183"], 1: ["2026-12-07 22:48:30,278"]})
    assert failing_task_log(str(logs[0])) == str(logs[1])
    # rank 0 raised first: its own error
    logs = _rank_logs(tmp_path, {0: start, 1: start}, {0: ["2026-12-07 22:48:29,001"], 1: ["2026-12-07 22:48:30,278"]})
    assert failing_task_log(str(logs[0])) == str(logs[0])
    # rank 1's traceback is of a run before a requeue (its log holds every run's lines): not this run's error
    logs = _rank_logs(tmp_path, {0: start + ["2026-12-07 23:00:00,000"], 1: start + ["2026-12-07 23:00:00,100"]},
                      {0: ["2026-12-07 23:01:00,000"], 1: ["2026-12-07 22:48:30,278"]})
    assert failing_task_log(str(logs[0])) == str(logs[0])
    # without submitit's lines (another launcher's logs): the first by task holding an error, as before
    for task in (0, 1):
        (tmp_path / f"16_{task}_log.out").unlink()
        logs[task].write_text("Traceback (most recent call last):\nRuntimeError: x\n")
    assert failing_task_log(str(logs[0])) == str(logs[0])


def test_a_failed_job_s_requeues_are_read_from_task_0_s_log_where_its_failing_task_is_another(tmp_path):
    """slurmstepd's requeue lines and the training's resume lines are in task 0's log alone: status counts them
    there when it shows another task's log (they used to read none, from the failing task's)."""
    from study.launch.status import _restarts

    start = ["2026-12-07 22:48:18,545", "2026-12-07 22:49:00,000"]
    logs = _rank_logs(tmp_path, {0: start, 1: start}, {0: ["2026-12-07 22:49:32,183"], 1: ["2026-12-07 22:49:30,278"]})
    with logs[0].open("a") as f:
        f.write("slurmstepd-n1: error: *** JOB 16 ON n1 CANCELLED AT 2026-12-07T22:48:40 DUE TO JOB REQUEUE ***\n"
                "[pretrain] resuming /wd/jobs/abc at step 100/300\n")
    assert first_task_log(str(logs[1])) == str(logs[0]) and first_task_log(None) is None
    assert first_task_log("/wd/logs/local.log") == "/wd/logs/local.log"  # no task's log: itself
    shown = JobState("abc", "pretrain", "failed", "FAILED", "16", failing_task_log(str(logs[0])))
    assert shown.log == str(logs[1])
    history = _restarts(shown)
    assert (history.requeued, history.resumed) == (1, [[100, 300]]), history


def test_find_by_name_reads_an_array_id_sacct_prints_with_its_tasks_and_asks_since_the_intent(tmp_path, monkeypatch):
    """sacct -X prints an array as `<id>_[0-3]` (or `<id>_0`): its id is the part before `_`; sacct is asked from
    an hour before the intent, in local time (its default window starts at midnight and would miss yesterday's)."""
    asked = tmp_path / "sacct_args"
    bin_dir = fake_commands(tmp_path / "bin", squeue="exit 0",
                            sacct=f'echo "$@" > "{asked}"; printf "4242_[0-3]\\n4242_4\\n"')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("TZ", "UTC0")
    time.tzset()
    try:
        assert find_by_name("study-g-pretrain-deadbeef", since="2026-11-27T10:00:00+00:00") == "4242"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "-S 2026-11-27T09:00:00" in asked.read_text()


def test_find_by_name_finds_an_array_another_user_of_the_workdir_queued(tmp_path, monkeypatch):
    """A labmate's submit, killed after sbatch, left an open intent; its array has ended and left squeue. Settled by
    another user's command: sacct lists only the caller's jobs unless asked for all users (`-a`), so the array read
    never queued (lost), and its jobs, failed or cancelled, ran again on a plain submit."""
    bin_dir = fake_commands(tmp_path / "bin", squeue="exit 0",
                            sacct='case " $* " in *" -a "*|*--allusers*) echo 4242_0;; esac; exit 0')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert find_by_name("study-g-pretrain-deadbeef", since="2026-11-27T10:00:00+00:00") == "4242"


def test_find_by_name_raises_when_squeue_and_sacct_both_fail(tmp_path, monkeypatch):
    """Commands present but failing (controller and database down) are no answer: never judged lost."""
    bin_dir = fake_commands(tmp_path / "bin", squeue="echo 'slurm_load_jobs error: timeout' >&2; exit 1",
                            sacct="echo 'sacct: error: Problem talking to the database' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(StudyError, match="cannot ask Slurm"):
        find_by_name("study-g-pretrain-deadbeef")


def test_scancel_is_given_every_job_in_groups_of_500(tmp_path, monkeypatch):
    asked = tmp_path / "scancelled"
    bin_dir = fake_commands(tmp_path / "bin", scancel=f'echo "$@" >> "{asked}"')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    ids = [str(1000 + i) for i in range(1001)]
    assert scancel(ids + ids[:3]) == []
    calls = [line.split() for line in asked.read_text().splitlines()]
    assert [len(c) for c in calls] == [500, 500, 1] and sorted(sum(calls, [])) == ids


def test_scancel_says_each_job_it_refused(tmp_path, monkeypatch):
    """scancel writes a line per job it refused (each ended meanwhile): all are said, not the first alone."""
    said = "scancel: error: Kill job error on job id {}: Job/step already completing or completed"
    bin_dir = fake_commands(tmp_path / "bin",
                            scancel=f'for id in "$@"; do echo "{said.format("$id")}" >&2; done; exit 1')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert scancel(["102", "101"]) == [said.format("101"), said.format("102")]


def test_a_job_whose_end_sacct_puts_in_the_future_ended_zero_seconds_ago():
    """Clock skew between the database host and this one: never a negative age."""
    future = (dt.datetime.now() + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    assert _seconds_since(future) == 0.0 and _seconds_since("Unknown") is None


def test_an_event_without_the_fields_its_kind_is_read_by_is_skipped_not_a_crash(tmp_path):
    """A line of another version of study, or edited by hand, that lacks a field replay reads (a queued line without
    its job or batch, an intent without its batch) is passed by as a foreign line is: every command of the workdir
    replays every grid's ledger, so one such line would otherwise stop them all with a KeyError."""
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b1", "job": "p1", "slurm_job_id": "5"}])
    with open(led.path, "a") as f:
        for line in ('{"event": "queued", "slurm_job_id": "6"}', '{"event": "intent", "jobs": []}',
                     '{"event": "local", "state": "running"}', '{"event": "lost"}',
                     '{"event": "queued", "batch": "b2", "job": ["p2"], "slurm_job_id": "7"}',
                     '{"event": "requeued", "job": "p1"}'):  # a kind this study does not know: kept, passed by
            f.write(line + "\n")
    Ledger(tmp_path, "other").append([{"event": "intent", "name": "n"}])  # another grid's: replayed with this one
    r = led.replay_with_shared()
    assert r.slurm_ids() == {"p1": "5"} and not r.unsettled
    assert [e["event"] for e in led.events()] == ["queued", "requeued"]


def test_query_lists_an_array_folder_once_for_all_its_failed_jobs(tmp_path, monkeypatch):
    """The failed tasks of one array share its submitit folder: `query` lists it once (not once per failed job, which
    on a large array over NFS is tasks x files), and points each at the same log as `failing_task_log` alone does."""
    import study.launch.slurm.state as slurm_mod

    folder = tmp_path / "submitit" / "study-g-pretrain-b1"
    folder.mkdir(parents=True)
    ids = [f"300_{i}" for i in range(6)]
    for sid in ids:
        (folder / f"{sid}_0_log.err").write_text("srun: forcing job termination\n")
        (folder / f"{sid}_0_log.out").write_text("")
    (folder / "300_2_1_log.err").write_text("Traceback (most recent call last):\nRuntimeError: NCCL\n")
    (folder / "300_4_3_log.err").write_text("study: error: unreadable image\n")
    (folder / "300_40_1_log.err").write_text("Traceback (most recent call last):\n")  # another task's: not 300_4's
    monkeypatch.setattr(slurm_mod, "_sacct", lambda asked: {sid: {"State": "FAILED"} for sid in asked})
    listed = []  # folders listed, by either call (glob scans with os.scandir)
    for name in ("listdir", "scandir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p=".", real=real: listed.append(str(p)) or real(p))
    logs = query(tmp_path, dict.fromkeys(ids, str(folder))).logs
    assert listed == [str(folder.resolve())]
    expected = {sid: str(folder.resolve() / f"{sid}_0_log.err") for sid in ids}
    expected |= {"300_2": str(folder.resolve() / "300_2_1_log.err"), "300_4": str(folder.resolve() / "300_4_3_log.err")}
    assert logs == expected
    monkeypatch.undo()
    assert {sid: failing_task_log(str(folder.resolve() / f"{sid}_0_log.err")) for sid in ids} == expected


def test_a_copied_workdir_reads_the_logs_of_its_local_runs_not_the_originals(tmp_path):
    """A `local` line records its log's absolute path: a copied (or moved) workdir showed the original's log, which
    may have gone on since (or is gone), as the latest progress line of its own stopped or failed job."""
    jobs = _jobs()[:1]
    old, new = tmp_path / "old", tmp_path / "new"
    (old / "logs").mkdir(parents=True)
    (old / "logs" / "p1.log").write_text("==== header\n[pretrain] step 1/4\n")
    Ledger(old, "g").append([{"event": "local", "job": "p1", "state": "running", "log": str(old / "logs" / "p1.log")}])
    shutil.copytree(old, new)
    (old / "logs" / "p1.log").write_text("==== header\n[pretrain] step 3/4\n")  # the original went on
    assert classify(jobs, new, Ledger(new, "g").replay())["p1"].log == str(new / "logs" / "p1.log")
    assert classify(jobs, old, Ledger(old, "g").replay())["p1"].log == str(old / "logs" / "p1.log")


def test_a_set_aside_line_without_a_job_is_skipped_and_a_completed_slurm_job_set_aside_reads_missing(tmp_path):
    """A `set_aside` line edited by hand without its job stopped every command that reads the ledger with a KeyError;
    a COMPLETED Slurm job whose result was set aside reads missing (to run again), not failed for a result gone."""
    jobs = _jobs()[:1]
    led = Ledger(tmp_path, "g")
    led.append([{"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": "3"}])
    with open(led.path, "a") as f:
        f.write('{"event": "set_aside", "folder": "x"}\n')
    assert classify(jobs, tmp_path, led.replay(), live={"3": "COMPLETED"})["p1"].state == "failed"
    led.append([{"event": "set_aside", "job": "p1", "stage": "pretrain", "folder": "stale/t"}])
    st = classify(jobs, tmp_path, led.replay(), live={"3": "COMPLETED"}, ended_s={"3": 600.0})["p1"]
    assert (st.state, st.slurm_id) == ("missing", None) and "set aside in stale/t" in st.detail


def test_a_result_rewritten_in_place_within_one_mtime_tick_is_read_anew(tmp_path):
    """A result edited in place (same inode) keeps the memo honest by its size where the mtime cannot tell."""
    path = tmp_path / "results" / "p1.json"
    _write_result(tmp_path, "p1", {"epochs": 1})
    st = path.stat()
    assert state_mod.cached_result(path)["protocol"]["epochs"] == 1
    path.write_text(path.read_text().replace('"epochs": 1', '"epochs": 100'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_ino == st.st_ino and path.stat().st_mtime_ns == st.st_mtime_ns
    assert state_mod.cached_result(path)["protocol"]["epochs"] == 100


def test_an_appended_ledger_line_is_synced_to_disk(tmp_path, monkeypatch):
    """A line a submit wrote (an intent before sbatch, the queued lines after) must survive a crash of the node."""
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real(fd))
    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "state": "running"}])
    assert synced == [str(led.path)]


def test_an_event_of_the_wrong_types_is_skipped_not_a_crash(tmp_path):
    """An intent whose jobs are not ids, or without its array's name (which recovery asks Slurm by), and a line
    whose "event" is not a string, are passed by like a torn line."""
    led = Ledger(tmp_path, "g")
    led.path.parent.mkdir(parents=True)
    with open(led.path, "w") as f:
        for line in ('{"event": "intent", "batch": "b1", "name": "n", "jobs": [1, 2]}',
                     '{"event": "intent", "batch": "b2", "jobs": ["p1"]}', '{"event": ["local"], "job": "p1"}'):
            f.write(line + "\n")
    led.append([{"event": "local", "job": "p2", "state": "failed"}])
    assert [e["job"] for e in led.events()] == ["p2"] and not led.replay().unsettled


def test_states_of_some_jobs_ask_slurm_of_those_only_and_a_where_plan_keeps_its_grid(tmp_path, monkeypatch):
    """grid_states of a few jobs asks sacct of their submissions only; results_off_plan of a plan `--where`
    reduced does not count the rest of its grid as gone from it."""
    from types import SimpleNamespace

    import study.launch.slurm.state as slurm_state_mod
    from study.launch.grid_states import grid_states, results_off_plan

    asked = []
    monkeypatch.setattr(slurm_state_mod, "query", lambda wd, folders, reasons=False: asked.append(folders) or
                        slurm_state_mod.Answer({"5": "RUNNING"}, {}, {}))
    Ledger(tmp_path, "g").append([{"event": "queued", "batch": "b", "job": j, "slurm_job_id": sid, "folder": "f"}
                                  for j, sid in (("p1", "5"), ("p2", "6"))])
    jobs = _jobs()
    plan = SimpleNamespace(name="g", jobs=jobs, path=None)
    assert grid_states(plan, tmp_path, jobs=jobs[:1])["p1"].state == "running" and asked == [{"5": "f"}]
    _write_result(tmp_path, "p2")
    assert results_off_plan(SimpleNamespace(name="g", jobs=jobs[:1], grid_jobs=jobs, path=None), tmp_path) == []
    assert results_off_plan(SimpleNamespace(name="g", jobs=jobs[:1], path=None), tmp_path) == ["p2"]


def test_a_job_another_grids_unsettled_submit_may_have_queued_reads_pending_unsettled(tmp_path, monkeypatch):
    """With Slurm out of reach, status must not show a job another grid's interrupted array may have queued as
    missing or failed (a submit from it would queue it twice): pending, "unsettled"."""
    from types import SimpleNamespace

    import study.launch.slurm.submit as submit_mod
    from study.launch.grid_states import UNSETTLED, grid_states

    def unreachable(workdir):
        raise StudyError("sacct: not found")

    monkeypatch.setattr(submit_mod, "recover_all", unreachable)
    Ledger(tmp_path, "a").append([{"event": "intent", "batch": "x", "name": "na", "stage": "pretrain",
                                   "jobs": ["p1"]}])
    Ledger(tmp_path, "b").append([{"event": "local", "job": "p1", "state": "failed"}])
    states = grid_states(SimpleNamespace(name="b", jobs=_jobs(), path=None), tmp_path, tolerate_unsettled=True)
    assert states["p1"].state == "pending" and states["p1"].detail.startswith(UNSETTLED)
    assert states["p2"].state == "missing"


def test_a_pretrained_result_is_not_stale_for_the_same_weights_in_another_file(tmp_path):
    """An encoder imported again at the same path with the same weights (another checkpoint's provenance, so other
    bytes) scores the same: its `pretrained` result, which records the weights' sha256, stays done; other weights
    make it stale."""
    import torch

    from study.hashing import file_sha256
    from study.train.backbones import build_backbone, encoder_payload, weights_sha256

    encoder = build_backbone("resnet18", 4)
    torch.save(encoder_payload(encoder), tmp_path / "enc.pt")
    old = file_sha256(tmp_path / "enc.pt")
    wd = tmp_path / "wd"
    _write_result(wd, "p0", {"init_encoder_file": str(tmp_path / "enc.pt"), "init_encoder_sha256": old,
                             "init_encoder_weights_sha256": weights_sha256(encoder)})
    jobs = [Job(id="p0", stage="pretrain", config={"axes": {}})]
    torch.save({**encoder_payload(encoder), "protocol": {"imported": {"source": "another.pth"}}}, tmp_path / "enc.pt")
    assert file_sha256(tmp_path / "enc.pt") != old and stale_results(jobs, wd) == {}
    with torch.no_grad():
        next(encoder.parameters()).add_(1.0)
    torch.save(encoder_payload(encoder), tmp_path / "enc.pt")
    assert list(stale_results(jobs, wd)) == ["p0"]


def test_stale_results_names_a_result_whose_init_encoder_file_was_replaced_and_its_evaluation(tmp_path, monkeypatch):
    """A method `pretrained` run records its `init_encoder` path and that file's sha256: an encoder imported again
    at that path (other weights) makes its result and its evaluation's stale; the same bytes, a file gone (plan.check
    names that) or a record without the hash do not."""
    from study.hashing import file_sha256

    monkeypatch.chdir(tmp_path)  # a relative init_encoder: read from where the command runs, as the jobs read it
    (tmp_path / "enc.pt").write_bytes(b"old weights")
    old = file_sha256(tmp_path / "enc.pt")
    wd = tmp_path / "wd"
    _write_result(wd, "p0", {"init_encoder": "enc.pt", "init_encoder_sha256": old})
    _write_result(wd, "gone", {"init_encoder": "gone.pt", "init_encoder_sha256": old})
    _write_result(wd, "nohash", {"init_encoder": "enc.pt"})
    _write_result(wd, "e0", {"pretrain": {"init_encoder_sha256": old}})
    jobs = [Job(id="p0", stage="pretrain", config={"axes": {}}), Job(id="gone", stage="pretrain", config={"axes": {}}),
            Job(id="nohash", stage="pretrain", config={"axes": {}}),
            Job(id="e0", stage="evaluate", config={"axes": {}}, depends_on=("p0",))]
    assert stale_results(jobs, wd) == {}
    (tmp_path / "enc.pt").write_bytes(b"new weights")
    new = file_sha256(tmp_path / "enc.pt")
    assert stale_results(jobs, wd) == {
        "p0": f"pretrain job p0: its result used encoder file enc.pt with content {old[:12]}, which now holds "
              f"{new[:12]}",
        "e0": "evaluate job e0: it used the result of job p0, which is stale"}
    # the path the run resolved, where it recorded one: found from another folder too
    _write_result(wd, "p0", {"init_encoder": "enc.pt", "init_encoder_file": str(tmp_path / "enc.pt"),
                             "init_encoder_sha256": old})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert list(stale_results(jobs, wd)) == ["p0", "e0"]


def test_a_ledger_line_cut_short_by_a_full_disk_is_an_error_naming_the_ledger(tmp_path, monkeypatch):
    """A full disk makes os.write write what fits and return its count (no error), then fail the rest with ENOSPC:
    the append raises that OSError naming the ledger, not returns as if the event were recorded (a submit then went
    on with a `failed` or `cancelled` line silently torn). The full disk is simulated by monkeypatching the ledger's
    os.write (no tmpfs mount in a test); the torn line is skipped by replay and the next append starts afresh."""
    import errno

    import study.launch.ledger as ledger_mod

    led = Ledger(tmp_path, "g")
    led.append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "running"}])
    real_write, calls = os.write, []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))  # the part that fitted
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ledger_mod.os, "write", full_disk)
    with pytest.raises(OSError) as raised:
        led.append([{"event": "local", "job": "p1", "stage": "pretrain", "state": "failed", "error": "x"}])
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(led.path), raised.value
    assert len(calls) == 2 and calls[1] == calls[0] - 10  # the rest was tried, not dropped
    monkeypatch.setattr(ledger_mod.os, "write", real_write)
    led.append([{"event": "local", "job": "p2", "stage": "pretrain", "state": "done"}])
    assert {j: e["state"] for j, e in led.replay().latest.items()} == {"p1": "running", "p2": "done"}


def test_scancel_denials_are_told_apart_from_its_other_lines():
    """`denied` splits what scancel said into the ids it refused as another user's and the lines left to show."""
    from study.launch.slurm.state import denied

    said = ["scancel: error: Kill job error on job id 101: Access/permission denied",
            "scancel: error: Kill job error on job id 102_3: Invalid job id specified",
            "scancel: error: Kill job error on job id 103_1: Access/permission denied"]
    assert denied(said) == ({"101", "103_1"}, [said[1]])
    assert denied([]) == (set(), [])
