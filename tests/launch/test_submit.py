"""`study submit --cluster slurm` (study/launch/slurm/submit.py) through stand-ins for sbatch and friends
(fake_slurm): what sbatch is given, and submits cut short while sbatch runs, as the test cluster cannot cut them."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from study.grids import plan_grid
from study.grids.profile import MAX_REQUEUES
from study.launch.ledger import Ledger
from study.launch.locks import try_lock
from study.launch.runner import job_dir, write_job_file
from study.launch.slurm import submit

from launch_helpers import fake_commands, fake_test_only, grid_text, run_cli, running_locally


def _submit_cmd(grid, env) -> list[str]:
    return [sys.executable, "-m", "study.cli", "submit", str(grid), "--cluster", "slurm", "--profile",
            str(env / "profile.yaml"), "--workdir", str(env / "wd")]


def _sbatch_then(slurm, action: str) -> None:
    """sbatch queues (prints its id, as the real one does once the controller took the job) around `action`."""
    real = (slurm / "bin" / "sbatch").read_text().split("\n", 1)[1]
    (slurm / "bin" / "sbatch").write_text(f"#!/bin/sh\n{fake_test_only(slurm)}\n{action}\n{real}")


def _submitted_call(wd, sid: str):
    import submitit

    found = list((wd / "submitit").rglob(f"{sid}_submitted.pkl"))  # in its array's folder
    assert len(found) == 1, f"no call file for task {sid}: {sorted(p.name for p in (wd / 'submitit').rglob('*'))}"
    return submitit.helpers.DelayedSubmission.load(found[0])


def test_sbatch_runs_without_the_submitting_shells_slurm_variables(env, slurm, monkeypatch):
    """A submit from inside salloc/srun passed SLURM_* (and SBATCH_*) to sbatch, and so to the jobs: srun there said
    SLURM_MEM_PER_CPU and --mem are mutually exclusive. Only SLURM_CONF (which cluster) is kept."""
    for name, value in (("SLURM_MEM_PER_CPU", "4000"), ("SLURM_JOB_ID", "77"), ("SLURM_CPUS_PER_TASK", "2"),
                        ("SBATCH_TIMELIMIT", "5"), ("SRUN_CPUS_PER_TASK", "2"), ("SLURM_CONF", "/etc/slurm/x.conf")):
        monkeypatch.setenv(name, value)
    grid = env / "g.yaml"
    grid.write_text(grid_text("cleanenv"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    for n in ("101", "102"):
        seen = dict(line.split("=", 1) for line in (slurm / f"sbatch_env_{n}").read_text().splitlines() if "=" in line)
        assert not [k for k in seen if k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "SLURM_CONF"], seen
        assert seen["SLURM_CONF"] == "/etc/slurm/x.conf"
    assert os.environ["SLURM_MEM_PER_CPU"] == "4000" and os.environ["SBATCH_TIMELIMIT"] == "5"  # restored after


def test_a_ctrl_c_during_sbatch_lands_after_the_arrays_queued_lines(env, slurm):
    """Ctrl-C while sbatch ran interrupted the submit after Slurm queued the array and before submitit named its
    tasks' call files (<id>_submitted.pkl): the tasks waited 60 s for them and failed. The signal is now held until
    the array's `queued` lines are written."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("ctrlc", seeds=(0, 1)))
    _sbatch_then(slurm, "kill -INT $PPID; sleep 0.5")  # the user's Ctrl-C reaches `study submit` mid-sbatch
    proc = subprocess.run(_submit_cmd(grid, env), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and "study: interrupted" in proc.stderr, proc.stderr
    events = Ledger(env / "wd", "ctrlc").events()
    assert [e["event"] for e in events] == ["intent", "queued", "queued"]  # the first array, then the stop
    assert Ledger(env / "wd", "ctrlc").replay().open_intents == []
    for sid, job in (("101_0", events[1]["job"]), ("101_1", events[2]["job"])):
        assert _submitted_call(env / "wd", sid).args[0].id == job


def test_a_slow_sbatch_is_explained_while_the_stop_signals_are_held(env, slurm, monkeypatch):
    """An sbatch waiting on a busy or unreachable controller (it retries for minutes) held Ctrl-C and said nothing:
    the command looked hung and could not be stopped. Past SBATCH_PATIENCE_S it says why it waits, and the pid of the
    sbatch to kill (killing the command alone would leave sbatch queueing an array no one records)."""
    monkeypatch.setattr(submit, "SBATCH_PATIENCE_S", 2.0)  # past the ledger line and submitit's pickling, under load
    grid = env / "g.yaml"
    grid.write_text(grid_text("slow"))
    _sbatch_then(slurm, f'[ -e "{slurm}/counter" ] || sleep 4.5')  # the first array's sbatch is slow, not the next
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    said = [line for line in err.splitlines() if "has taken 2 s so far" in line]
    assert len(said) == 1 and "[study] queueing study-slow-pretrain-" in said[0], err
    pid = int(re.search(r"to stop now: kill -KILL (\d+) \(sbatch", said[0]).group(1))
    assert pid != os.getpid()


def test_an_array_queued_by_a_submit_killed_during_sbatch_gets_its_call_files_from_the_next_command(env, slurm):
    """A submit that dies during sbatch (SIGKILL, a crash) leaves the array queued and its intent open; the next
    command finds the array by name and recorded it queued, but never wrote its tasks' call files."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("killed", seeds=(0, 1)))
    _sbatch_then(slurm, "kill -KILL $PPID")
    proc = subprocess.run(_submit_cmd(grid, env), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    wd = env / "wd"
    (intent,) = Ledger(wd, "killed").replay().open_intents
    (slurm / "squeue_name").write_text("101\n")  # Slurm knows the array by its name
    (slurm / "sacct").write_text("101_0|PENDING|None|Unknown\n101_1|PENDING|None|Unknown\n")
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert code == 0, err
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "0", "2", "0", "0", "0"]
    plan = plan_grid(grid)
    by_id = {j.id: j for j in plan.jobs}
    for sid, job_id in zip(("101_0", "101_1"), intent["jobs"]):
        call = _submitted_call(wd, sid)
        job, workdir, grid_name, env_vars = call.args
        assert job == by_id[job_id] and job.config == by_id[job_id].config
        assert (workdir, grid_name) == (str(wd.resolve()), "killed")
        assert env_vars["STUDY_WORKDIR"] == str(wd.resolve())
        assert call._timeout_min == 10  # the profile's time: submitit's requeue bookkeeping
        assert call._timeout_countdown == MAX_REQUEUES  # requeued after as many timeouts as the plan counts



def test_a_recovered_arrays_call_files_that_cannot_be_written_are_named_not_a_traceback(env, tmp_path):
    """An intent without a usable `call` (an older study's, an edited ledger), a job file gone, or a submitit folder
    that cannot be written: those tasks come back as unwritten (`recover` warns, and still records the array
    queued) instead of an error that every later command would meet again."""
    from study.launch.slurm.submit import _write_missing_calls

    grid = env / "g.yaml"
    grid.write_text(grid_text("calls"))
    job = plan_grid(grid).jobs[0]
    wd = tmp_path / "wd"
    write_job_file(wd, job)
    call = {"workdir": str(wd), "grid": "calls", "env": {}, "time_min": 10}
    intent = {"folder": str(tmp_path / "submitit"), "jobs": [job.id, "gone"]}
    assert _write_missing_calls(intent, ["7_0", "7_1"]) == ["7_0", "7_1"]  # no call at all
    assert _write_missing_calls({**intent, "call": {"workdir": str(wd)}}, ["7_0", "7_1"]) == ["7_0", "7_1"]
    (tmp_path / "not_a_folder").write_text("")
    assert _write_missing_calls({**intent, "folder": str(tmp_path / "not_a_folder"), "call": call},
                                ["7_0", "7_1"]) == ["7_0", "7_1"]
    assert _write_missing_calls({**intent, "call": call}, ["7_0", "7_1"]) == ["7_1"]  # its job file is gone
    assert (tmp_path / "submitit" / "7_0_submitted.pkl").is_file()
    torn = plan_grid(grid).jobs[1]
    write_job_file(wd, torn)
    (job_dir(wd, torn.id) / "job.json").write_text('{"id": ')  # a job file cut short (a full disk)
    assert _write_missing_calls({**intent, "jobs": [job.id, torn.id], "call": call}, ["8_0", "8_1"]) == ["8_1"]


def test_an_evaluation_queued_later_depends_on_its_pending_pretraining_job(env, slurm):
    """The pretraining job is queued by an earlier submit and still pending: the evaluation a later submit queues
    for it waits for it (afterok on its Slurm id), instead of starting without an encoder."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("later"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    (slurm / "sacct").write_text("101|PENDING|None|Unknown\n102|PENDING|None|Unknown\n")  # lone jobs: no task id
    (slurm / "squeue").write_text("101 PENDING None\n102 PENDING None\n")
    grid.write_text(grid_text("later") + "    - protocol: knn\n      eval_datasets: same\n      labeled_sizes: [16]\n")
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 1 job(s) in 1 array(s)" in err, err
    deps = {p.name: [ln for ln in p.read_text().splitlines() if "--dependency" in ln]
            for p in (env / "wd" / "submitit").rglob("*_submission.sh")}
    assert deps["103_submission.sh"] == deps["102_submission.sh"] != [], deps  # both wait for pretraining job 101


def _scripts(wd) -> dict[str, str]:
    return {p.name: p.read_text() for p in (wd / "submitit").rglob("*_submission.sh")}


def test_an_evaluation_queued_later_depends_on_its_running_pretraining_job(env, slurm):
    """A pretraining job that is running (not only pending) when a later submit queues its new evaluation: the
    evaluation waits for it (afterok), instead of starting at once without an encoder."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("running"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    pre = next(j.id for j in plan_grid(grid).jobs if j.stage == "pretrain")
    assert {e["job"]: e["slurm_job_id"] for e in Ledger(env / "wd", "running").events()
            if e["event"] == "queued"}[pre] == "101"  # a lone job: no array task suffix
    (slurm / "sacct").write_text("101|RUNNING|n1|Unknown\n102|PENDING|None|Unknown\n")
    knn = "    - protocol: knn\n      eval_datasets: same\n      labeled_sizes: [16]\n"
    grid.write_text(grid_text("running") + knn)
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 1 job(s) in 1 array(s)" in err, err
    assert "#SBATCH --dependency=afterok:101\n" in _scripts(env / "wd")["103_submission.sh"]


@pytest.mark.parametrize("max_size, arrays", [(1, 4), (2, 3)])
def test_arrays_are_split_below_the_clusters_max_array_size(env, slurm, max_size, arrays):
    """scontrol's MaxArraySize N bounds every array, below the profile's max_array_size: task ids 0..N-1, so N tasks
    are one array (two seeds: two pretraining jobs, an array of them at N = 2, and their two evaluations)."""
    fake_commands(slurm / "bin", scontrol=f'echo "MaxArraySize = {max_size}"')
    grid = env / "g.yaml"
    grid.write_text(grid_text(f"maxarray{max_size}", seeds=(0, 1)))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and f"queued 4 job(s) in {arrays} array(s)" in err, err
    scripts = _scripts(env / "wd")
    assert sorted(scripts) == [f"{n}_submission.sh" for n in range(101, 101 + arrays)]
    assert {name: re.findall(r"#SBATCH --array=.*", text) for name, text in scripts.items() if "--array" in text} == \
        ({} if max_size == 1 else {"101_submission.sh": ["#SBATCH --array=0-1%2"]})


def test_each_arrays_log_folder_exists_when_sbatch_queues_it(env, slurm):
    """Slurm opens a task's log before its script runs and fails the task (exit 0:53, no log) where the log's
    folder is missing; submitit makes a `%j` folder only after sbatch returned, so each array has a folder of its
    own, made first. The stand-in sbatch notes, as it queues, whether the script's log folder exists."""
    _sbatch_then(slurm, f'out=$(sed -n "s/^#SBATCH --output=//p" "$1"); '
                        f'if [ -d "$(dirname "$out")" ]; then echo ok >> "{slurm}/log_folders"; '
                        f'else echo "missing $out" >> "{slurm}/log_folders"; fi')
    grid = env / "g.yaml"
    grid.write_text(grid_text("logs", seeds=(0, 1)))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 4 job(s) in 3 array(s)" in err, err
    assert (slurm / "log_folders").read_text().split("\n") == ["ok", "ok", "ok", ""]
    folders = Ledger(env / "wd", "logs").replay().slurm_folders()
    assert len(set(folders.values())) == 3 and all("%" not in f for f in folders.values())


def test_a_lone_job_queued_by_a_submit_killed_during_sbatch_is_recorded_under_its_own_id(env, slurm):
    """A one-job array is a plain Slurm job (id 101, no task suffix): recovered as 101_0 it was never found by
    sacct and read pending for ever, and its task waited in vain for a call file named 101_0."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("lone"))
    _sbatch_then(slurm, "kill -KILL $PPID")
    proc = subprocess.run(_submit_cmd(grid, env), capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    wd = env / "wd"
    (slurm / "squeue_name").write_text("101\n")
    (slurm / "sacct").write_text("101|RUNNING|n1|Unknown\n")
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert code == 0, err
    assert out.splitlines()[2].split() == ["pretrain", "0", "0", "1", "0", "0", "0", "0"], out
    (queued,) = [e for e in Ledger(wd, "lone").events() if e["event"] == "queued"]
    assert queued["slurm_job_id"] == "101" and queued["recovered"] is True
    assert _submitted_call(wd, "101").args[0].id == queued["job"]


def test_every_task_is_requeued_after_as_many_timeouts_as_the_plan_counts(env, slurm):
    """submitit requeues a job that reached its time limit (or was preempted) up to the executor's max_num_timeout:
    MAX_REQUEUES, which the plan's cost notes count on; submitit's own default is 3."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("requeues"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0, err
    for sid in ("101", "102"):
        call = _submitted_call(env / "wd", sid)
        assert (call._timeout_min, call._timeout_countdown) == (10, MAX_REQUEUES)


def test_an_array_slurm_queued_although_sbatch_reported_an_error_is_recorded_queued(env, slurm):
    """A controller timeout can make sbatch exit with an error for a job Slurm accepted: found by its name, the
    array is recorded queued (with its call files) and its evaluation waits for it, instead of being recorded lost
    and queued a second time by the next submit."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("anyway"))
    real = (slurm / "bin" / "sbatch").read_text()
    (slurm / "bin" / "sbatch").write_text(real + '\n[ "$n" = 101 ] && { echo "sbatch: error: Batch job submission '
                                          'failed: Socket timed out on send/recv operation" >&2; exit 1; }\nexit 0\n')
    (slurm / "squeue_name").write_text("101\n")  # Slurm knows the first array by its name
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0, err
    assert "sbatch reported an error (" in err and "but Slurm had queued study-anyway-pretrain-" in err, err
    assert "queued 2 job(s) in 2 array(s)" in err, err
    events = Ledger(env / "wd", "anyway").events()
    assert [e["event"] for e in events] == ["intent", "queued", "intent", "queued"]
    pre = next(j.id for j in plan_grid(grid).jobs if j.stage == "pretrain")
    assert (events[1]["job"], events[1]["slurm_job_id"], events[1]["recovered"]) == (pre, "101", True)
    assert _submitted_call(env / "wd", "101").args[0].id == pre
    assert "#SBATCH --dependency=afterok:101\n" in _scripts(env / "wd")["102_submission.sh"]


def test_retry_failed_queues_failed_and_cancelled_slurm_jobs_again(env, slurm):
    grid = env / "g.yaml"
    grid.write_text(grid_text("retry"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    (slurm / "sacct").write_text("101|OUT_OF_MEMORY|n1|Unknown\n102|CANCELLED by 0|None|Unknown\n")
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 0 job(s)" in err, err
    code, _, err = run_cli(_submit_cmd(grid, env)[3:] + ["--retry-failed"])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    latest = {e["job"]: e["slurm_job_id"] for e in Ledger(env / "wd", "retry").events() if e["event"] == "queued"}
    assert sorted(latest.values()) == ["103", "104"]
    assert "#SBATCH --dependency=afterok:103\n" in _scripts(env / "wd")["104_submission.sh"]


def test_recovery_writes_only_the_missing_call_files_and_records_each_tasks_array(env, slurm, capsys):
    """A call file submitit wrote before the submit died is left as it is (its job file may be gone by now); the
    `queued` lines name each task's id and its array's."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("partly", seeds=(0, 1)))
    jobs = [j for j in plan_grid(grid).jobs if j.stage == "pretrain"]
    wd, folder = env / "wd", env / "wd" / "submitit" / "study-partly-pretrain-0"
    write_job_file(wd, jobs[0])  # jobs[1]'s job file is gone, but submitit had written its call file
    folder.mkdir(parents=True)
    (folder / "301_1_submitted.pkl").write_text("submitit's")
    intent = {"event": "intent", "batch": "b1", "name": "study-partly-pretrain-0", "stage": "pretrain",
              "jobs": [j.id for j in jobs], "folder": str(folder), "at": "2026-11-27T10:00:00+00:00",
              "call": {"workdir": str(wd), "grid": "partly", "env": {}, "time_min": 10}}
    led = Ledger(wd, "partly")
    led.append([intent])
    (slurm / "squeue_name").write_text("301\n")
    submit.recover(led)
    assert "cannot be written" not in capsys.readouterr().err  # 301_1's call file was there: not rebuilt
    assert (folder / "301_1_submitted.pkl").read_text() == "submitit's"
    assert _submitted_call(wd, "301_0").args[0].id == jobs[0].id
    queued = [(e["job"], e["slurm_job_id"], e["array_job_id"]) for e in led.events() if e["event"] == "queued"]
    assert queued == [(jobs[0].id, "301_0", "301"), (jobs[1].id, "301_1", "301")]


def test_recovery_records_an_intent_slurm_knows_nothing_of_as_lost(env, slurm):
    """squeue and sacct answered and neither knows the array: `lost` (its jobs are missing again), no `queued`."""
    led = Ledger(env / "wd", "gone")
    led.append([{"event": "intent", "batch": "b1", "name": "study-gone-pretrain-0", "stage": "pretrain",
                 "jobs": ["p1"], "folder": str(env / "f"), "at": "2026-11-27T10:00:00+00:00"}])
    submit.recover(led)
    assert [e["event"] for e in led.events()] == ["intent", "lost"] and not led.replay().open_intents


def _sacct_by_name(slurm) -> None:
    """sacct asked by job name notes its arguments and, asked from a start time (-S), prints `sacct_name`: an array
    that has left the queue, queued before midnight (outside sacct's default window)."""
    fake_commands(slurm / "bin", sacct=f'case "$*" in *--name*) echo "$@" >> "{slurm}/sacct_name_args"\n'
                                       f'  case "$*" in *" -S "*) cat "{slurm}/sacct_name" 2>/dev/null;; esac\n'
                                       '  exit 0;; esac\n'
                                       f'echo "JobID|State|NodeList|End"\ncat "{slurm}/sacct" 2>/dev/null')


def test_recovery_asks_sacct_from_the_intents_time_not_from_midnight(env, slurm):
    """A submit killed yesterday whose array has ended since is known to sacct only from a start time before
    midnight: recorded lost, its jobs were queued a second time."""
    _sacct_by_name(slurm)
    (slurm / "sacct_name").write_text("301_[0-1]\n")
    led = Ledger(env / "wd", "yesterday")
    led.append([{"event": "intent", "batch": "b1", "name": "study-yesterday-pretrain-0", "stage": "pretrain",
                 "jobs": ["p1"], "folder": str(env / "f"), "at": "2026-11-27T10:00:00+00:00", "user": "ana"}])
    submit.recover(led)
    assert [(e["event"], e.get("slurm_job_id")) for e in led.events()] == [("intent", None), ("queued", "301")]
    assert " -S " in (slurm / "sacct_name_args").read_text()
    assert led.events()[1]["user"] == "ana"  # queued by the labmate whose submit was killed, not by who settled it


def test_an_sbatch_error_asks_sacct_from_the_intents_time_whether_slurm_queued_the_array(env, slurm):
    """The array sbatch reported an error for had already left the queue (squeue knows it no more): found by sacct,
    asked from the intent's time, it is recorded queued, not lost and queued again."""
    _sacct_by_name(slurm)
    (slurm / "sacct_name").write_text("101\n")
    grid = env / "g.yaml"
    grid.write_text(grid_text("ended"))
    real = (slurm / "bin" / "sbatch").read_text()
    (slurm / "bin" / "sbatch").write_text(real + '\n[ "$n" = 101 ] && { echo "sbatch: error: Socket timed out on '
                                          'send/recv operation" >&2; exit 1; }\nexit 0\n')
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "but Slurm had queued study-ended-pretrain-" in err, err
    assert [e["event"] for e in Ledger(env / "wd", "ended").events()] == ["intent", "queued", "intent", "queued"]
    assert " -S " in (slurm / "sacct_name_args").read_text()


def test_an_array_sbatch_refuses_is_named_with_sbatchs_error_and_recorded_lost(env, slurm):
    """sbatch's last line is its error (warnings come first); the intent is settled lost by the submit itself."""
    fake_commands(slurm / "bin", sbatch=f'{fake_test_only(slurm)}\necho "sbatch: warning: --mem ignored" >&2\n'
                                        'echo "sbatch: error: Batch job submission failed: Invalid partition name '
                                        'specified" >&2; exit 1')
    grid = env / "g.yaml"
    grid.write_text(grid_text("refused"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 2 and "sbatch refused array 1 (pretrain, 1 job(s); profile " in err, err
    assert err.rstrip().endswith("): sbatch: error: Batch job submission failed: Invalid partition name specified"), err
    wd = env / "wd"
    assert [e["event"] for e in Ledger(wd, "refused").events()] == ["intent", "lost"]
    assert not Ledger(wd, "refused").replay().open_intents


def test_a_placement_slurm_refuses_is_named_before_anything_is_queued(env, slurm):
    """An evaluation QOS the account lacks: sbatch queued the pretraining array, then refused the evaluations', which
    were never queued. `sbatch --test-only` per stage and resources asks first: the refusal names the stage, its
    resources and the profile keys that place it, and nothing is queued."""
    profile = (env / "profile.yaml").read_text().replace("partition: debug\n", "partition: debug\naccount: lab\n")
    (env / "profile.yaml").write_text(profile.replace("  evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}",
                                                      "  evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m, qos: short}"))
    (slurm / "test_only_refuse").write_text("#SBATCH --qos=short\nallocation failure: Invalid qos specification\n")
    grid = env / "g.yaml"
    grid.write_text(grid_text("qos"))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 2, err
    assert ("Slurm refuses the evaluate jobs (--cpus-per-task=1, --mem=1GB, --nodes=1, --time=10; partition: 'debug', "
            "account: "
            "'lab', stages.evaluate.qos: 'short'): sbatch --test-only said: allocation failure: Invalid qos "
            "specification; ") in err, err
    assert err.rstrip().endswith("nothing was queued"), err
    assert not (slurm / "counter").exists() and not Ledger(env / "wd", "qos").path.exists()  # nothing queued
    assert len((slurm / "test_only_calls").read_text().splitlines()) == 2  # pretrain asked, then evaluate
    (slurm / "test_only_refuse").unlink()  # the account given the QOS: asked again, then both stages queued
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    assert len((slurm / "test_only_calls").read_text().splitlines()) == 4
    # munge down: --test-only could not say who asks, which says nothing of the placement (sbatch decides)
    (slurm / "test_only_refuse").write_text("#SBATCH\nsbatch: error: Batch job submission failed: Protocol "
                                           "authentication error\n")
    grid.write_text(grid_text("qos2", seeds=(1,)))  # other jobs: the first two are queued
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "Slurm refuses" not in err and "queued 2 job(s) in 2 array(s)" in err, err
    assert ("study: warning: sbatch --test-only said: sbatch: error: Batch job submission failed: Protocol "
            "authentication error: the placement of the pretrain jobs and the stages after is not checked") in err, err
    assert len((slurm / "test_only_calls").read_text().splitlines()) == 5  # not asked again for the evaluations


def _submit_answered(env, slurm, name: str, refuse: str | None = None) -> tuple[int, str]:
    """Submit grid `name` (two jobs) to the stand-in Slurm, whose `sbatch --test-only` refuses a script holding the
    first line of `refuse` with its other lines (`launch_helpers.fake_test_only`); (exit code, stderr)."""
    if refuse is not None:
        (slurm / "test_only_refuse").write_text(refuse)
    grid = env / "g.yaml"
    grid.write_text(grid_text(name))
    code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    return code, err


def test_an_sbatch_option_of_the_profile_sbatch_does_not_take_is_refused_before_anything_is_queued(env, slurm):
    """A misspelt option of `additional` (or a value-less one) was left to sbatch, which refused the evaluations' array
    after the pretraining one was queued. sbatch answers it (as below, on the real one) after 'Try "sbatch --help"',
    which --test-only asks first: refused, naming the key that holds the profile's own options."""
    profile = (env / "profile.yaml").read_text()
    (env / "profile.yaml").write_text(profile.replace("  evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}",
                                                      "  evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m, "
                                                      "additional: {mai: x}}"))
    code, err = _submit_answered(env, slurm, "typo", "#SBATCH --mai=x\nsbatch: option '--mai=x' is ambiguous; "
                                 "possibilities: '--mail-type' '--mail-user'\n"
                                 "Try \"sbatch --help\" for more information\n")
    assert code == 2 and "Slurm refuses the evaluate jobs" in err, err
    assert ("sbatch --test-only said: sbatch: option '--mai=x' is ambiguous; possibilities: '--mail-type' "
            "'--mail-user' (set by the profile's `stages.evaluate.additional`: `mai`)") in err, err
    assert not (slurm / "counter").exists()  # nothing queued


@pytest.mark.parametrize("additional, refused, said", [
    # the misspelt option is the top-level one's, though the stage has options of its own
    ("additional: {mai: x}\n", "--mai=x", " (set by the profile's `additional`: `mai`)"),
    ("", "--cpus-per-task=1", ""),  # one study writes (a sbatch older than it): no profile key holds it
], ids=["top-level", "study's own"])
def test_an_sbatch_option_sbatch_does_not_take_names_the_profile_key_that_sets_it(env, slurm, additional, refused,
                                                                                  said):
    profile = (env / "profile.yaml").read_text()
    (env / "profile.yaml").write_text(additional + profile.replace(
        "  pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m}",
        "  pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m, additional: {exclusive: true}}" if additional else
        "  pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m}"))
    code, err = _submit_answered(env, slurm, "typo2", f"#SBATCH {refused}\nsbatch: unrecognized option '{refused}'\n"
                                 "Try \"sbatch --help\" for more information\n")
    assert code == 2 and "Slurm refuses the pretrain jobs" in err, err
    assert f"sbatch --test-only said: sbatch: unrecognized option '{refused}'{said}; change the profile" in err, err


def test_a_test_only_that_does_not_answer_is_a_warning_and_not_asked_again(env, slurm, monkeypatch):
    """A busy controller: `sbatch --test-only` past its timeout says nothing of the placement. The submit goes on
    (sbatch decides), says what was not checked, and does not wait as long again for the next stage."""
    from study.launch.slurm import preflight

    monkeypatch.setattr(preflight, "TEST_ONLY_TIMEOUT_S", 0.5)
    real = (slurm / "bin" / "sbatch").read_text().split("\n", 1)[1]
    (slurm / "bin" / "sbatch").write_text('#!/bin/sh\ncase "$1" in --test-only) '
                                          f'echo x >> "{slurm}/test_only_calls"; exec sleep 5;; esac\n{real}')
    code, err = _submit_answered(env, slurm, "busy")
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    assert ("study: warning: sbatch --test-only did not answer (within 0.5 s, or could not start): the placement of "
            "the pretrain jobs and the stages after is not checked; submitting, sbatch decides") in err, err
    assert (slurm / "test_only_calls").read_text() == "x\n"  # the evaluations' placement not asked


def test_a_test_only_answer_that_nodes_down_now_also_give_is_a_warning_and_the_jobs_are_queued(env, slurm):
    """`sbatch --test-only` weighs only the nodes up now: with a partition's nodes drained it answers "Requested node
    configuration is not available", where sbatch queues the jobs to wait. That answer was a refusal with nothing
    queued (and no way around it until the nodes came back); it is a warning, and sbatch decides. With every node of
    the partition up, the same answer means no node has what the jobs ask: refused, nothing queued."""
    code, err = _submit_answered(env, slurm, "drained", "#SBATCH --partition=debug\n"
                                 "allocation failure: Requested node configuration is not available\n")
    assert code == 2 and "Requested node configuration is not available; change the profile" in err, err
    assert not (slurm / "counter").exists()
    (slurm / "sinfo_states").write_text("idle\ndrain\n")
    code, err = _submit_answered(env, slurm, "drained")
    assert code == 0 and "queued 2 job(s) in 2 array(s)" in err, err
    assert ("study: warning: profile " in err and "Slurm refuses the pretrain jobs" in err
            and "down or drained now (sinfo -p debug)" in err), err
    assert (slurm / "counter").read_text().strip() == "102"  # both arrays queued


def test_an_evaluation_and_a_concatenations_of_two_encoders_wait_in_arrays_of_their_own_dependency_sets():
    """An evaluation of encoders a and b waits for both: grouped with the evaluations of a alone, it would wait for
    a only and start without b's encoder. A dependency that is done (no Slurm id) is not waited for."""
    from study.launch.slurm.submit import _groups

    def job(i, deps):
        return SimpleNamespace(id=i, stage="evaluate", depends_on=deps, resources="r")

    jobs = [job("e1", ("a",)), job("e2", ("a", "done")), job("ab", ("a", "b")), job("ba", ("b", "a"))]
    groups = _groups(jobs, "evaluate", {"a": "7_0", "b": "7_1"})
    assert {deps: [j.id for j in group] for (_, deps), group in groups.items()} == \
        {("7_0",): ["e1", "e2"], ("7_0", "7_1"): ["ab", "ba"]}


def test_a_submit_waits_for_the_workdirs_submit_lock(env, slurm):
    """A submit reads the states and queues under the workdir's submit lock: two at once would each queue the jobs
    the other queues."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("waits"))
    fd = try_lock(env / "wd" / "ledgers" / ".submit.lock")  # another submit in flight
    assert fd is not None
    got: dict = {}
    submitter = threading.Thread(target=lambda: got.update(zip(("code", "out", "err"),
                                                               run_cli(_submit_cmd(grid, env)[3:]))))
    try:
        submitter.start()
        submitter.join(1.5)
        assert submitter.is_alive() and not (slurm / "counter").exists(), got
    finally:
        os.close(fd)
    submitter.join(60)
    assert got["code"] == 0 and "queued 2 job(s) in 2 array(s)" in got["err"], got


def test_an_evaluation_of_a_pretraining_job_running_locally_is_held_not_queued_without_a_dependency(env, slurm):
    """Its pretraining job has no Slurm id to wait for (afterok): queued, it would start without its encoder."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("mixed"))
    with running_locally(grid, env / "wd"):
        code, _, err = run_cli(_submit_cmd(grid, env)[3:])
    assert code == 0 and "queued 0 job(s)" in err and "1 waiting for a dependency that runs outside Slurm" in err, err
    assert not (slurm / "counter").exists()


def test_a_quick_sbatch_is_never_said_to_be_slow_after_it_returned(monkeypatch):
    """The patience timer of an array ends with its sbatch: a later array (or the rest of a long submit) is not
    told about an sbatch that took a second."""
    monkeypatch.setattr(submit, "SBATCH_PATIENCE_S", 0.2)
    err = io.StringIO()
    with submit._said_if_slow(err, "study-quick-pretrain-0"):
        pass
    time.sleep(0.6)
    assert err.getvalue() == ""
