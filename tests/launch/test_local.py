"""`study submit --cluster local`: real tiny jobs in worker processes, dependencies, failures, idempotence; and
the bad input every `study submit` refuses (exit 2, nothing submitted)."""
from __future__ import annotations

import json
import re
import os
import signal
import time
from pathlib import Path

import pytest

from study.grids import plan_grid
from study.grids.render import job_text
from study.launch.ledger import Ledger
from study.launch.locks import try_lock

from launch_helpers import fake_plan, grid_text, run_cli, stand_in_workers


def _events(workdir, grid):
    return [e for e in Ledger(workdir, grid).events() if e["event"] == "local"]


SLOW_S = 300  # how long a test waits for what takes seconds on an idle machine: on 2 loaded cores, minutes


def _until(condition, seconds=SLOW_S, every=0.5):
    """`condition()` once true, or its value after `seconds` of asking every `every` s."""
    deadline = time.time() + seconds
    while not (ok := condition()) and time.time() < deadline:
        time.sleep(every)
    return ok


def test_local_run_honours_dependencies_and_cancels_dependents_of_a_failure(env):
    grid = env / "g.yaml"
    grid.write_text(grid_text("localg", datasets=("toy", "bad")))
    wd = env / "wd"
    plan = plan_grid(grid)
    code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "2"])
    assert code == 1, err  # a job failed
    by = {j.axes["dataset"] + ":" + j.stage: j for j in plan.jobs}
    results = {p.stem for p in (wd / "results").glob("*.json")}
    assert results == {by["toy:pretrain"].id, by["toy:evaluate"].id}
    events = _events(wd, "localg")
    order = [(e["job"], e["state"]) for e in events]
    # the evaluation started only after its pretraining job was done
    assert order.index((by["toy:pretrain"].id, "done")) < order.index((by["toy:evaluate"].id, "running"))
    last = {e["job"]: e for e in events}
    assert last[by["bad:pretrain"].id]["state"] == "failed"
    assert last[by["bad:evaluate"].id]["state"] == "cancelled"
    assert (by["bad:evaluate"].id, "running") not in order  # never started
    assert {e.get("grid_file") for e in events} == {str(grid.resolve())}  # every line, the failed and cancelled too
    assert "FAILED pretrain" in err and "cancelled evaluate" in err
    bad, toy_eval = by["bad:pretrain"], by["toy:evaluate"]  # progress lines name what a job is, not only its hash
    assert f"FAILED pretrain {bad.id} [{job_text(bad)}]" in err and "bad" in job_text(bad)
    assert f"started evaluate {toy_eval.id} [{job_text(toy_eval)}]" in err
    toy_pre = by["toy:pretrain"].id  # the time left follows a job's end, once one has calibrated the estimates
    done_line = rf"\[study\] +\d+:\d\d  .* \| done pretrain {toy_pre} in \d+ s; about \d+ (s|min) left$"
    assert re.search(done_line, err, re.M), err

    code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("pretrain", "evaluate"))}
    assert rows["pretrain"] == ["1", "0", "0", "0", "1", "0", "0"]  # done, stale, running, pending, failed, ...
    assert rows["evaluate"] == ["1", "0", "0", "0", "0", "1", "0"]
    log = wd / "logs" / f"{by['bad:pretrain'].id}.log"
    assert f"log: {log}" in out and "bad_train" in out  # the failure's log path and its last error lines
    bad_pre, bad_eval = by["bad:pretrain"].id, by["bad:evaluate"].id
    assert f"cancelled 1 job(s) because their dependency {bad_pre} failed: {bad_eval}" in out  # one line per cause
    # the evaluations alone (--where): the cause still named, though the failed pretraining is not among them
    code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd), "--where", "stage=evaluate"])
    assert code == 0 and f"cancelled 1 job(s) because their dependency {bad_pre} failed: {bad_eval}" in out, out
    assert f"failed pretrain {bad_pre}" not in out and "bad_train" not in out  # its failure is not shown

    # a rerun queues nothing: done jobs are skipped, failed ones wait for --retry-failed; the grid is not done, so
    # the command fails as the first one did (a script's `submit && report` does not go on)
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 1 and "no job to run here" in err and "1 failed (rerun with --retry-failed)" in err
    assert err.strip().splitlines()[-1].endswith("| finished; 2 job(s) not run, failed or cancelled before or blocked "
                                                 "by such a dependency: `study submit --retry-failed` reruns them"), err
    # --only its dependent: still blocked by the failed job, which --retry-failed reruns only when named too
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--retry-failed",
                            "--only", by["bad:evaluate"].id])
    assert code == 1 and err.strip().splitlines()[-1].endswith(
        "| finished; 1 job(s) not run, failed or cancelled before or blocked by such a dependency: name their failed "
        "dependencies with --only too"), err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--retry-failed"])
    assert code == 1 and "running 2 job(s)" in err  # the failed one again, and its cancelled dependent


def _run_grid(env, name: str):
    """(grid file, workdir) of the tiny grid `name`, run here to the end."""
    grid = env / "g.yaml"
    grid.write_text(grid_text(name))
    wd = env / "wd"
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0, err
    assert err.strip().splitlines()[-1].endswith("| finished"), err  # nothing failed: nothing more to say
    return grid, wd


def test_result_record_follows_the_contract(env, monkeypatch):
    from study.launch.local import scheduler

    measured, real = [], scheduler.job_seconds
    monkeypatch.setattr(scheduler, "job_seconds", lambda *a: measured.append(a[1]) or real(*a))
    grid, wd = _run_grid(env, "rec")
    # the time left is calibrated by each job's seconds over all its sessions, as its result records them
    assert sorted(measured) == sorted(j.id for j in plan_grid(grid).jobs)
    for job in plan_grid(grid).jobs:
        rec = json.loads((wd / "results" / f"{job.id}.json").read_text())
        assert rec["job_id"] == job.id and rec["grid"] == "rec" and rec["axes"] == job.axes
        assert rec["stage"] == job.stage and rec["protocol_fingerprint"]
        header = (wd / "logs" / f"{job.id}.log").read_text().splitlines()[0]  # its local time says its offset
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}"
        assert re.fullmatch(f"==== {stamp} {job.stage} job {job.id}", header), header
    assert (wd / "jobs" / plan_grid(grid).jobs[0].id / "encoder.pt").exists()


@pytest.mark.parametrize("case", ["no_partition", "missing_manifest", "unknown_method"])
def test_bad_input_exits_2_and_submits_nothing(env, case):
    grid = env / "g.yaml"
    text = grid_text("badin")
    args = ["--profile", str(env / "profile.yaml")]
    if case == "no_partition":
        (env / "nopart.yaml").write_text("name: nopart\ngpus_per_node: 0\ncpus_per_node: 8\nmem_per_node: 8G\n"
                                         "stages: {pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m},"
                                         " evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}}\n")
        args = ["--profile", str(env / "nopart.yaml")]
        expect = "no 'partition'"
    elif case == "missing_manifest":
        text = text.replace("toy_test", "nowhere_test")
        expect = "manifest 'nowhere_test' not found"
    else:
        text = text.replace("method: [simclr]", "method: [simclrr]")
        expect = "simclr"
    grid.write_text(text)
    for cluster in ("slurm", "local"):
        if case == "no_partition" and cluster == "local":
            continue
        code, out, err = run_cli(["submit", str(grid), "--cluster", cluster, "--workdir", str(env / "wd"), *args])
        assert code == 2 and expect in err, err
        assert not (env / "wd").exists()


def _start_long_local_run(env, name, loader_workers=0, checkpoint_at_stop_only=False):
    """A real `study submit --cluster local` of a job far longer than any test waits, once the job has written a
    checkpoint: (its process, the workdir, the worker's `running` event, the checkpoint path). With
    `checkpoint_at_stop_only`, the job writes no checkpoint but the one a stop makes: returned once it logs a step."""
    import subprocess
    import sys

    grid = env / "g.yaml"
    text = grid_text(name, steps=100_000, loader_workers=loader_workers)
    if checkpoint_at_stop_only:
        text = text.replace("checkpoint_every_steps: 1,", "checkpoint_every_steps: 1000000,").replace(
            "log_every_steps: 10", "log_every_steps: 1")
    grid.write_text(text)
    wd = env / "wd"
    proc = subprocess.Popen([sys.executable, "-m", "study.cli", "submit", str(grid), "--cluster", "local",
                             "--workdir", str(wd), "--workers", "1"], stderr=subprocess.PIPE, text=True)

    def started():
        running = [e for e in _events(wd, name) if e["state"] == "running"] if (
            wd / "ledgers" / f"{name}.jsonl").exists() else []
        return running[0] if running else None

    try:
        _until(lambda: started() is not None or proc.poll() is not None)
        worker = started()
        assert worker is not None, f"no job started (the command's exit code: {proc.poll()})"
        ckpt = wd / "jobs" / worker["job"] / "checkpoint.pt"
        log = Path(worker["log"])
        under_way = (lambda: "] step " in log.read_text()) if checkpoint_at_stop_only else ckpt.exists
        _until(lambda: under_way() or proc.poll() is not None)  # a checkpoint, or a log line a step
        assert under_way(), f"training not under way (the command's exit code: {proc.poll()})"
        assert ckpt.exists() != checkpoint_at_stop_only
    except BaseException:
        proc.kill()
        raise
    return proc, wd, worker, ckpt


def _assert_stopped_after_checkpoint(wd, worker, ckpt, orphan=False):
    """The worker is gone (not left running, nor a zombie), its checkpoint is there to resume from, no result.
    `orphan`: its command was killed, so the worker's parent is PID 1, which in this sandbox reaps nobody: ended
    means a zombie there."""
    def state() -> str:
        proc_file = f"/proc/{worker['pid']}/status"
        try:
            with open(proc_file) as f:
                return next((ln.split()[1] for ln in f if ln.startswith("State:")), "")
        except FileNotFoundError:
            return "gone"

    ended = ("gone", "Z") if orphan else ("gone",)
    _until(lambda: state() in ended)  # an orphan checkpoints at its next step first, then its interpreter exits
    # the worker is not left running (a zombie would mean nobody reaped it: our command must)
    assert state() in ended, f"worker {worker['pid']} left behind (state {state()})"
    from study.train.checkpoint import load_checkpoint

    assert load_checkpoint(ckpt)["step"] >= 1  # a rerun resumes from here
    assert not (wd / "results" / f"{worker['job']}.json").exists()


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_stops_the_workers_which_checkpoint_first(env, signame):
    """`kill <study submit>` (or its terminal closing: SIGHUP) leaves no worker behind: each gets SIGUSR2 (it
    checkpoints, then ends), SIGKILL if late. The job writes no checkpoint before the stop: the one there after it is
    the stop's. The worker runs in a session of its own (a Ctrl-C at the terminal reaches only the command, which
    stops it so) and holds its job's lock."""
    proc, wd, worker, ckpt = _start_long_local_run(env, "termg", checkpoint_at_stop_only=True)
    try:
        assert os.getsid(worker["pid"]) == worker["pid"]
        assert str((wd / "locks" / f"{worker['job']}.lock").resolve()) in _open_files(worker["pid"])
        proc.send_signal(getattr(signal, signame))
        assert proc.wait(timeout=SLOW_S) == 128 + getattr(signal, signame)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr.read().endswith(f"study: stopped by {signame}\n")  # its last line says why it ended
    _assert_stopped_after_checkpoint(wd, worker, ckpt)


def test_a_kill_of_a_worker_ends_its_job_after_a_checkpoint(env):
    """`kill <worker pid>` (SIGTERM to the worker itself, not its command): it checkpointed, then trained on, as a
    Slurm job does (there a SIGKILL or the requeue follows); a local worker now ends by it, its checkpoint written
    first (none before: the one there is the stop's), and the command says so. A stop, not a failure: the job and the
    probe waiting for it read missing, and a plain `study submit` (no --retry-failed) resumes them."""
    proc, wd, worker, ckpt = _start_long_local_run(env, "killw", checkpoint_at_stop_only=True)
    try:
        os.kill(worker["pid"], signal.SIGTERM)
        _assert_stopped_after_checkpoint(wd, worker, ckpt)
        assert proc.wait(timeout=SLOW_S) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert f"stopped pretrain {worker['job']} [" in err and "(SIGTERM: a kill of its worker)" in err, err
    assert ("; 1 stopped by a kill of its worker: `study submit` resumes it and runs the 1 job(s) waiting" in err
            and "failed" not in err.splitlines()[-1].split("|", 1)[1]), err
    events = _events(wd, "killw")
    last = next(e for e in reversed(events) if e.get("job") == worker["job"])
    assert last["state"] == "missing" and "stopped by SIGTERM" in last["error"], events
    (probe,) = [j.id for j in plan_grid(env / "g.yaml").jobs if j.stage == "evaluate"]
    waits = [e for e in events if e.get("job") == probe][-1]  # at once, not `pending` until the command ends
    assert waits["state"] == "missing" and f"waits for {worker['job']}, stopped by SIGTERM" in waits["error"], events
    code, out, _ = run_cli(["submit", str(env / "g.yaml"), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and worker["job"] in out and len(plan_grid(env / "g.yaml").jobs) == 2, out
    assert all(j.id in out for j in plan_grid(env / "g.yaml").jobs), out  # the probe too: nothing failed


def test_a_second_ctrl_c_during_the_stop_does_not_cut_it_short(env):
    """Ctrl-C, then Ctrl-C again while the workers checkpoint: the command still waits for them (it ignores stop
    signals once the stop has begun), so when it ends its worker has already checkpointed and ended; cut short, the
    command would return at the second Ctrl-C and leave the worker running without it."""
    import threading

    proc, wd, worker, ckpt = _start_long_local_run(env, "twice", checkpoint_at_stop_only=True)
    guard = threading.Timer(2 * SLOW_S, proc.kill)  # a hung read below fails the test, not the run
    guard.start()
    try:
        proc.send_signal(signal.SIGINT)
        lines = []
        while not any("[study] stopping 1 worker(s)" in line for line in lines):
            lines.append(proc.stderr.readline())
            assert lines[-1], "".join(lines)  # end of stderr before the stop's message
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=SLOW_S) == 130
        assert not os.path.exists(f"/proc/{worker['pid']}"), "the command ended before its worker"  # reaped by it
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
    assert "study: interrupted" in proc.stderr.read()
    _assert_stopped_after_checkpoint(wd, worker, ckpt)


def test_cancel_stops_the_grids_local_command_which_checkpoints_first(env):
    """`study cancel` of a grid run by `study submit --cluster local` in another shell stops that command as Ctrl-C
    would, naming its pid; the job then reads missing (a rerun resumes it), status names it as stopped, and a second
    cancel finds nothing."""
    proc, wd, worker, ckpt = _start_long_local_run(env, "cang")
    try:
        code, out, err = run_cli(["cancel", str(env / "g.yaml"), "--workdir", str(wd)])
        assert code == 0, err
        assert f"stopped 1 `study submit --cluster local` of grid cang (pid {proc.pid} on " in out, out
        assert "Slurm" not in out, out  # a grid run here only: no word of Slurm jobs it never had
        assert proc.wait(timeout=SLOW_S) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_stopped_after_checkpoint(wd, worker, ckpt)
    code, out, _ = run_cli(["status", str(env / "g.yaml"), "--workdir", str(wd)])
    assert code == 0 and "missing" in out
    # counted missing, as a job never submitted, and said no more: the stopped job is named, with where it got to
    assert ("stopped before they finished (1), counted missing: their `study submit --cluster local` ended; the next "
            "`study submit` resumes them (from their last checkpoint, where they wrote one):\n  pretrain "
            + worker["job"] + ": ") in out, out
    assert f"    log: {worker['log']}" in out, out
    code, out, _ = run_cli(["cancel", str(env / "g.yaml"), "--workdir", str(wd)])
    assert code == 0 and "stopped" not in out and "local" not in out, out


def test_a_closed_terminal_with_a_dead_stderr_still_stops_the_workers(env):
    """SIGHUP when stderr is a closed pipe (a terminal gone, `2>&1 | head`): the stop's own message cannot be
    written, and used to raise before any worker got its signal, leaving them all training."""
    proc, wd, worker, ckpt = _start_long_local_run(env, "hupg")
    try:
        proc.stderr.close()  # nobody reads the command's stderr any more: writing it raises BrokenPipeError
        proc.send_signal(signal.SIGHUP)
        proc.wait(timeout=SLOW_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_stopped_after_checkpoint(wd, worker, ckpt)


def test_a_killed_command_takes_its_workers_down(env):
    """`kill -9` of `study submit --cluster local` cannot stop its workers itself; they run in sessions of their
    own, and used to train on with no command to stop them (study cancel found none). Each now ends with its
    parent, checkpointing first, and the job reads missing: a rerun resumes it."""
    proc, wd, worker, ckpt = _start_long_local_run(env, "killg")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=SLOW_S)
    _assert_stopped_after_checkpoint(wd, worker, ckpt, orphan=True)
    code, out, _ = run_cli(["status", str(env / "g.yaml"), "--workdir", str(wd)])
    assert code == 0 and "missing" in out


def test_a_killed_workers_data_loader_processes_do_not_keep_its_job_locked(env):
    """SIGKILL of a worker whose data loader has processes of its own: they inherit the job lock's descriptor and
    can outlive it for seconds (torch checks for their parent every 5 s; here one is stopped, so it outlives it for
    sure); the lock must be free once the command has reaped the worker, or `study status` says running and a retry
    skips the job meanwhile."""
    proc, wd, worker, _ = _start_long_local_run(env, "lockg", loader_workers=1)
    lock = wd / "locks" / f"{worker['job']}.lock"
    loaders = _children(worker["pid"])
    try:
        assert loaders, "the worker runs no data loader process"
        for pid in loaders:
            os.kill(pid, signal.SIGSTOP)
        os.kill(worker["pid"], signal.SIGKILL)
        fd = _until(lambda: try_lock(lock), every=0.1)  # the stopped loader process would hold it for ever
        assert fd is not None, "the job lock is still held by the killed worker's data loader process"
        os.close(fd)
    finally:
        for pid in loaders:
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=SLOW_S)


def _open_files(pid):
    """The paths of the files `pid` has open, as /proc lists them."""
    paths = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            paths.add(os.readlink(fd))
        except OSError:  # closed meanwhile
            pass
    return paths


def _children(pid):
    """The child processes of `pid`, as /proc lists them."""
    return [int(c) for f in Path(f"/proc/{pid}/task").glob("*/children") for c in f.read_text().split()]


def test_retry_failed_reruns_a_job_whose_result_file_cannot_be_read(env):
    """status calls such a job failed and says --retry-failed reruns it: the local scheduler used to count the file
    as done and run nothing."""
    from study.results.record import read_result

    grid, wd = _run_grid(env, "unread")
    ev = next(j for j in plan_grid(grid).jobs if j.stage == "evaluate")
    path = wd / "results" / f"{ev.id}.json"
    path.write_text(path.read_text()[:50])
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--retry-failed"])
    assert code == 0 and "running 1 job(s)" in err and f"done evaluate {ev.id}" in err, err
    assert read_result(path)["job_id"] == ev.id


def test_a_job_whose_result_does_not_read_is_to_run_with_retry_failed_so_its_files_are_checked(env):
    """`study submit --retry-failed` reruns a job whose result file does not read: the roots and encoder files it
    reads are checked before anything runs (a local run refused for a dataset moved), as of a job without a result;
    without --retry-failed it does not run, and a result a newer version of study wrote is never rerun here."""
    from study.launch.cli import _to_run

    grid = env / "g.yaml"
    grid.write_text(grid_text("unread_todo"))
    plan, wd = plan_grid(grid), env / "wd"
    pre, ev = (next(j for j in plan.jobs if j.stage == stage) for stage in ("pretrain", "evaluate"))
    (wd / "results").mkdir(parents=True)
    (wd / "results" / f"{pre.id}.json").write_text('{"job_id": "cut sho')
    assert _to_run(plan, wd, set_aside=False) == {ev.id}
    assert _to_run(plan, wd, set_aside=False, retry_failed=True) == {pre.id, ev.id}


def test_two_commands_on_one_workdir_never_run_a_job_twice(env):
    """A second `study submit` while the first runs (a user's retry): each job runs once; the second finds the
    first's jobs pending or running and starts none of them."""
    import subprocess
    import sys

    grid = env / "g.yaml"
    grid.write_text(grid_text("twice", steps=40))
    wd = env / "wd"
    cmd = [sys.executable, "-m", "study.cli", "submit", str(grid), "--cluster", "local", "--workdir", str(wd),
           "--workers", "1"]
    first = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    _until(lambda: any(e["state"] == "running" for e in (
        _events(wd, "twice") if (wd / "ledgers" / "twice.jsonl").exists() else [])), every=0.2)
    second = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    errs = [p.communicate(timeout=2 * SLOW_S)[1] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, errs
    starts = [e["job"] for e in _events(wd, "twice") if e["state"] == "running"]
    assert sorted(starts) == sorted(j.id for j in plan_grid(grid).jobs)  # each job started once, by one command
    for job in plan_grid(grid).jobs:
        assert (wd / "logs" / f"{job.id}.log").read_text().count("====") == 1


def test_a_failed_dependency_counts_its_dependents_cancelled_not_failed(env):
    grid = env / "g.yaml"
    grid.write_text(grid_text("onlybad", datasets=("bad",)))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(env / "wd"), "--workers", "1"])
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert "0/2 done, 0 running, 1 failed, 1 cancelled | finished" in last, err
    assert last.endswith("finished; 1 failed: `study status` shows each one's error and log, and `study submit "
                         "--retry-failed` reruns them (and the jobs cancelled with them)"), last
    assert "dependency ended outside this command" not in err


def test_status_of_a_workdir_that_does_not_exist_says_so(env):
    grid = env / "g.yaml"
    grid.write_text(grid_text("nowd"))
    code, out, _ = run_cli(["status", str(grid), "--workdir", str(env / "elsewhere")])
    assert code == 0 and f"workdir {env / 'elsewhere'}" in out and "no such folder" in out
    (env / "afile").write_text("")
    code, out, _ = run_cli(["status", str(grid), "--workdir", str(env / "afile")])
    assert code == 0 and "(a file, not a folder: nothing was submitted with this workdir" in out


def test_status_and_report_of_a_grid_with_a_mistyped_key_warn_naming_its_line(env, capsys):
    """A key mistyped in the grid (`temprature`) changes every job's id: `study status` would read every job missing
    and `study report` draw nothing, without a word of why. Both warn on stderr naming the grid's file, line and key
    (as `study submit` refuses it; status where none of its jobs ran, as it reads no config otherwise), and status
    still prints its table (JSON stays whole on stdout)."""
    grid = env / "typo.yaml"
    grid.write_text(grid_text("typo").replace("log_every_steps: 10,", "log_every_steps: 10, temprature: 0.2,"))
    wd = env / "wd"
    (wd / "results").mkdir(parents=True)
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert code == 0 and "missing" in out, out
    assert f"study: warning: {grid}:" in err and "unknown key(s) 'temprature'" in err, err
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])
    assert code == 0 and json.loads(out)["jobs"] and "'temprature'" in err, err
    from study.cli import main

    capsys.readouterr()
    main(["report", str(grid), "--workdir", str(wd), "--out", str(env / "rep")])
    err = capsys.readouterr().err
    assert f"study report: warning: {grid}:" in err and "'temprature'" in err, err
    (env / "ok.yaml").write_text(grid_text("ok"))
    code, _, err = run_cli(["status", str(env / "ok.yaml"), "--workdir", str(wd)])
    assert code == 0 and "warning" not in err, err


def test_status_json_of_a_workdir_that_does_not_exist_says_so_on_stderr(env):
    """The table's "(no such folder: ...)" line had no counterpart in `--format json`: a mistyped --workdir read as a
    grid never submitted, every job missing, and nothing said. Now a warning on stderr; stdout stays JSON."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("nowdj"))
    code, out, err = run_cli(["status", str(grid), "--workdir", str(env / "elsewhere"), "--format", "json"])
    assert code == 0 and json.loads(out)["workdir"] == str((env / "elsewhere").resolve())
    assert err == (f"study: warning: workdir {(env / 'elsewhere').resolve()}: no such folder: nothing was submitted "
                   "with this workdir; give the one `study submit` used, --workdir or $STUDY_WORKDIR\n"), err


def test_cancel_with_a_workdir_nothing_was_submitted_to_says_so_and_creates_nothing(env):
    """A mistyped --workdir: `study cancel` made `<it>/ledgers/.submit.lock` (and the folders above it) and said only
    "cancelled 0"."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("nowdc"))
    code, out, _ = run_cli(["cancel", str(grid), "--workdir", str(env / "typo")])
    assert code == 0 and "cancelled 0 Slurm job(s) of grid nowdc: nothing was submitted with workdir" in out, out
    assert not (env / "typo").exists()


def test_jobs_queued_by_a_running_local_command_are_pending_for_status(env):
    """While `study submit --cluster local` runs, the jobs it has queued read pending, not missing (a second submit
    would otherwise be invited to take them); once it is gone they read missing again."""
    import socket

    from study.launch.grid_states import grid_states

    grid = env / "g.yaml"
    grid.write_text(grid_text("pend"))
    wd = env / "wd"
    plan = plan_grid(grid)
    ev = next(j for j in plan.jobs if j.stage == "evaluate")
    Ledger(wd, "pend").append([{"event": "local", "job": ev.id, "stage": "evaluate", "state": "pending",
                                "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    assert grid_states(plan, wd)[ev.id].state == "pending"
    Ledger(wd, "pend").append([{"event": "local", "job": ev.id, "stage": "evaluate", "state": "pending",
                                "pid": 2**22 + 12345, "host": socket.gethostname(), "log": None}])  # no such pid
    assert grid_states(plan, wd)[ev.id].state == "missing"


def test_a_result_of_a_manifest_since_rebuilt_is_not_counted_done(env):
    grid, wd = _run_grid(env, "rebuilt")
    from study.paths import manifests_dir

    meta_path = manifests_dir() / "toy_train.json"  # the session's shared manifest: restored below
    original = meta_path.read_text()
    meta = json.loads(original)
    try:
        meta_path.write_text(json.dumps({**meta, "content_hash": "f" * 64}))  # as a rebuild of other images
        code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
        assert code == 2 and "computed on a manifest since rebuilt" in err and "toy_train" in err, err
        # status said every job done and nothing of it: the user learnt it only from a submit that refused
        code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd)])
        assert code == 0 and ("2 done job(s) used a manifest since rebuilt under the same name (or an encoder file "
                              "since replaced): `study submit` refuses to go on") in out, out
        assert "its result used manifest toy_train with content" in out, out
        rows = {ln.split()[0]: ln.split()[1:3] for ln in out.splitlines() if ln.startswith(("pretrain", "evaluate"))}
        assert rows == {"pretrain": ["0", "1"], "evaluate": ["0", "1"]}, out  # not done: stale
        code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])  # scripts too
        stale = {j["id"]: j["stale"] for j in json.loads(out)["jobs"]}
        assert code == 0 and len(stale) == 2 and all("used manifest toy_train" in why for why in stale.values()), out
        code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--set-aside-stale"])
        [aside] = (wd / "stale").iterdir()
        assert (f"set aside 2 result(s) computed on a manifest since rebuilt or an encoder file since replaced "
                f"(and their job folders) in {aside}") in err
        assert len(list((aside / "results").iterdir())) == 2 and len(list((aside / "jobs").iterdir())) == 2, err
        assert "started pretrain" in err, err  # run again (on the edited manifest file, which may fail it)
    finally:
        meta_path.write_text(original)


def test_rerun_runs_chosen_done_jobs_again_from_the_start_with_the_evaluations_that_used_them(env):
    """After a change to the code, `--rerun --where stage=pretrain`: a pretraining job whose result alone was removed
    by hand resumed from its last checkpoint, at its end, and gave the old encoder again; with --rerun its result and
    folder are set aside, it trains from step 0, and its evaluation (done, of the old encoder) runs again too."""
    grid, wd = _run_grid(env, "rerun")
    plan = plan_grid(grid)
    pre, ev = (next(j for j in plan.jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    before = {j.id: json.loads((wd / "results" / f"{j.id}.json").read_text()) for j in (pre, ev)}
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--rerun"])
    assert code == 2 and "--rerun runs again the jobs --only or --where selects: give one of them" in err, err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1",
                            "--where", "stage=pretrain", "--rerun"])
    assert code == 0, err
    [aside] = (wd / "stale").iterdir()
    assert (f"set aside 2 job(s) to run again, their results and job folders, in {aside}; 1 of them used those "
            f"chosen: evaluate job {ev.id}: it used the result of job {pre.id}, which runs again") in err, err
    assert sorted(p.name for p in (aside / "results").iterdir()) == sorted(f"{j}.json" for j in before)
    assert (aside / "jobs" / pre.id / "encoder.pt").is_file()
    assert f"started pretrain {pre.id}" in err and f"started evaluate {ev.id}" in err, err
    log = (wd / "logs" / f"{pre.id}.log").read_text().split("==== ")[-1]
    assert "resum" not in log.lower(), log  # trained from step 0, not from the set-aside checkpoint
    after = {j: json.loads((wd / "results" / f"{j}.json").read_text()) for j in before}
    assert all(after[j]["metrics"] == before[j]["metrics"] for j in before)  # the same code: the same results
    assert all(after[j]["finished_at"] != before[j]["finished_at"] for j in before)
    events = [e for e in Ledger(wd, "rerun").events() if e["event"] == "set_aside"]
    assert {(e["job"], e.get("reason")) for e in events} == {(pre.id, "rerun"), (ev.id, "rerun")}


def test_rerun_of_a_shared_pretraining_whose_result_was_removed_trains_from_step_0_and_sets_aside_all_its_uses(env):
    """`--rerun --only` a pretraining job whose result was removed by hand (it reads failed, its checkpoint at its
    end): it was skipped as failed, its evaluation set aside with "which runs again" (and --retry-failed resumed the
    old encoder). Now its folder is set aside too and it trains from step 0. Another grid's evaluation of it (the job
    is shared) kept its result of the old encoder, counted done, and one that waited to run had the encoder moved
    from under it: the one waiting stops the rerun, the done one is set aside, said, and reads missing in its grid,
    whose next submit runs it."""
    import socket

    grid, wd = _run_grid(env, "rerun")
    other = env / "h.yaml"
    other.write_text(grid_text("h").replace("protocol: linear", "protocol: knn"))
    code, _, err = run_cli(["submit", str(other), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0, err
    pre, ev = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    theirs = plan_grid(other).by_stage("evaluate")[0]
    (wd / "results" / f"{pre.id}.json").unlink()
    rerun = ["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1", "--only", pre.id,
             "--rerun"]
    result = wd / "results" / f"{theirs.id}.json"
    kept = result.rename(env / "kept.json")  # the other grid's evaluation, queued again by a command of it
    Ledger(wd, "h").append([{"event": "local", "job": theirs.id, "stage": "evaluate", "state": "pending",
                             "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    code, _, err = run_cli(rerun)
    assert code == 2 and f"job(s) to set aside, or that use a result to set aside, run or wait to run: evaluate " \
                         f"{theirs.id} (pending)" in err, err
    assert (wd / "jobs" / pre.id / "encoder.pt").is_file() and not (wd / "stale").exists()
    kept.rename(result)  # its run done
    code, _, err = run_cli(rerun)
    assert code == 0, err
    [aside] = (wd / "stale").iterdir()
    assert (f"set aside 3 job(s) to run again, their results and job folders, in {aside}; 1 of them used those "
            f"chosen: evaluate job {ev.id}: it used the result of job {pre.id}, which runs again; 1 of them of "
            f"another grid (its next `study submit` runs them again): evaluate job {theirs.id}: it used the result "
            f"of job {pre.id}, which runs again (grid h)") in err, err
    assert sorted(p.name for p in (aside / "jobs").iterdir()) == sorted((pre.id, ev.id, theirs.id))
    assert f"started pretrain {pre.id}" in err and f"started evaluate {ev.id}" in err, err
    log = (wd / "logs" / f"{pre.id}.log").read_text().split("==== ")[-1]
    assert "resum" not in log.lower(), log  # trained from step 0, not from the set-aside checkpoint
    assert not result.exists()
    code, out, _ = run_cli(["status", str(other), "--workdir", str(wd), "--format", "json"])
    state = next(j for j in json.loads(out)["jobs"] if j["id"] == theirs.id)
    assert (state["state"], state["detail"]) == ("missing", f"its result, to run again, was set aside in {aside}")
    code, _, err = run_cli(["submit", str(other), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0 and f"started evaluate {theirs.id}" in err, err
    # its line is in its grid's ledger: in this grid's, its result read as one of a job this grid ran and dropped
    code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd)])
    assert "of no job of its plan" not in out, out


def test_rerun_says_an_evaluation_an_edit_took_off_the_plan_is_of_this_grid_not_of_another(env):
    """After an edit of an evaluation's labeled sizes, `--rerun --only` of its pretraining set aside the old
    evaluation's result (it used the encoder trained again) and said it was "of another grid (its next `study
    submit` runs them again)", naming this grid: no submit runs it again, as the grid no longer asks for it."""
    grid, wd = _run_grid(env, "rerunedit")
    pre, old = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    grid.write_text(grid_text("rerunedit").replace("labeled_sizes: [16, 32]", "labeled_sizes: [16]"))
    new = plan_grid(grid).by_stage("evaluate")[0]
    assert new.id != old.id
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1",
                            "--only", pre.id, "--rerun"])
    assert code == 0, err
    assert "of another grid" not in err, err
    assert (f"1 of them of an earlier version of this grid file, off its plan now (a submit runs them again only "
            f"if an edit asks for their settings again): evaluate job {old.id}: it used the result of job "
            f"{pre.id}, which runs again") in err, err


def test_set_aside_stale_refuses_while_another_grids_evaluation_of_the_shared_encoder_waits_to_run(env):
    """A stale pretraining shared by two grids: `--set-aside-stale` of one grid moved the encoder from under the other
    grid's evaluation of it that waited to run (it would fail, or score the old encoder): nothing is moved."""
    import socket

    from study.paths import manifests_dir

    grid, wd = _run_grid(env, "staleshared")
    other = env / "h.yaml"
    other.write_text(grid_text("h").replace("protocol: linear", "protocol: knn"))
    code, _, err = run_cli(["submit", str(other), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0, err
    pre = plan_grid(grid).by_stage("pretrain")[0]
    theirs = plan_grid(other).by_stage("evaluate")[0]
    (wd / "results" / f"{theirs.id}.json").unlink()  # queued again by a command of its grid
    Ledger(wd, "h").append([{"event": "local", "job": theirs.id, "stage": "evaluate", "state": "pending",
                             "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    meta_path = manifests_dir() / "toy_train.json"  # the session's shared manifest: restored below
    original = meta_path.read_text()
    try:
        meta_path.write_text(json.dumps({**json.loads(original), "content_hash": "f" * 64}))  # as a rebuild
        code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--set-aside-stale"])
    finally:
        meta_path.write_text(original)
    assert code == 2 and f"--set-aside-stale: 1 job(s) to set aside, or that use a result to set aside, run or wait " \
                         f"to run: evaluate {theirs.id} (pending)" in err, err
    assert (wd / "jobs" / pre.id / "encoder.pt").is_file() and not (wd / "stale").exists()


def test_the_jobs_a_copy_of_the_grid_ran_here_are_not_the_originals_stale_results(env):
    """Only a local run's `pending` lines recorded its grid file: the `running` and `done` lines after them read as any
    file's, so `study status original.yaml` (and its report) named the jobs a copy under the same `name:` ran here as
    results of jobs "this grid file ran" that its plan no longer has."""
    original, copy = env / "original.yaml", env / "copy.yaml"
    original.write_text(grid_text("samelocal"))
    copy.write_text(grid_text("samelocal", steps=7))  # other job ids, same grid name: one ledger
    wd = env / "wd"
    code, _, err = run_cli(["submit", str(copy), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0, err
    ran = {e.get("grid_file") for e in _events(wd, "samelocal")}
    assert ran == {str(copy.resolve())}, ran  # every line of the run, not only its `pending` ones
    code, out, _ = run_cli(["status", str(original), "--workdir", str(wd)])
    assert code == 0 and "of no job of its plan now" not in out, out
    copy.write_text(grid_text("samelocal", steps=8))  # an edit of the file that ran them: now its stale results
    code, out, _ = run_cli(["status", str(copy), "--workdir", str(wd)])
    assert "2 result(s) of jobs this grid file ran are of no job of its plan now" in out, out
    code, out, _ = run_cli(["status", str(copy), "--workdir", str(wd), "--format", "json"])
    assert len(json.loads(out)["results_off_plan"]) == 2, out
    code, out, _ = run_cli(["status", str(original), "--workdir", str(wd), "--format", "json"])
    assert json.loads(out)["results_off_plan"] == [] and {j["stale"] for j in json.loads(out)["jobs"]} == {None}


def test_a_job_locked_by_another_command_is_waited_for_and_given_up_when_released(env):
    """The per-job lock: a command that finds a job's lock held does not start it and waits for it; when the holder
    lets go without a result (a Ctrl-C'd command, another grid's failed run), the waiting command ends instead of
    polling for ever."""
    import subprocess
    import sys

    from study.launch.locks import job_lock

    grid = env / "g.yaml"
    grid.write_text(grid_text("locked"))
    wd = env / "wd"
    pre = next(j for j in plan_grid(grid).jobs if j.stage == "pretrain")
    lock = job_lock(wd, pre.id)  # as another command running it would hold it
    log = env / "err.txt"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "study.cli", "submit", str(grid), "--cluster", "local",
                                 "--workdir", str(wd), "--workers", "1"], stderr=f)
    try:
        assert _until(lambda: "another command on this workdir runs it" in log.read_text(), every=0.2), \
            log.read_text()
        time.sleep(3)  # it waits while the lock is held
        assert proc.poll() is None, log.read_text()
        os.close(lock)
        lock = None
        assert proc.wait(timeout=SLOW_S) == 1
    finally:
        if lock is not None:
            os.close(lock)
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert err.strip().splitlines()[-1].endswith("| finished"), err  # not run, none failed: no retry hint
    assert f"not starting pretrain {pre.id}" in err, err
    assert err.count(f"waiting for pretrain {pre.id} (another command on this workdir)") == 1, err  # said once
    assert f"their dependencies {pre.id} ended outside this command without a result" in err, err
    # its dependent is left missing, as the message says (it used to be recorded cancelled, which a plain rerun
    # skips: the rerun ran the dependency and left the evaluation out)
    from study.launch.grid_states import grid_states

    plan = plan_grid(grid)
    ev = next(j for j in plan.jobs if j.stage == "evaluate")
    assert not [e for e in _events(wd, "locked") if e["state"] == "cancelled"]
    assert {j.id: st.state for j, st in zip(plan.jobs, grid_states(plan, wd).values())} == \
        {pre.id: "missing", ev.id: "missing"}
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0 and "running 2 job(s)" in err, err
    assert {p.stem for p in (wd / "results").glob("*.json")} == {pre.id, ev.id}


def test_a_local_submit_that_leaves_its_jobs_to_another_command_says_so_at_the_end(env):
    """A command whose jobs another command on the workdir runs (their job locks held) ends without running them;
    its last line says they are still run there, not just `finished` beside 0/0 done."""
    from study.launch.locks import job_lock

    grid = env / "g.yaml"
    grid.write_text(grid_text("taken"))
    wd = env / "wd"
    pre = next(j for j in plan_grid(grid).jobs if j.stage == "pretrain")
    lock = job_lock(wd, pre.id)  # as another command running it would hold it
    try:
        code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1",
                                "--only", pre.id])
    finally:
        os.close(lock)
    last = err.strip().splitlines()[-1]
    assert code == 0 and f"not starting pretrain {pre.id}" in err, err
    assert last.endswith(f"| finished; 1 job(s) still run by another command on this workdir ({pre.id}): "
                         "`study status` follows them"), err


def test_a_local_submit_waits_for_a_slurm_submit_queueing_the_same_jobs(env):
    """A Slurm submit holds the workdir's submit lock from reading the states to its `queued` lines; a local submit
    used to read the states meanwhile and pick the same jobs. Here the test plays the Slurm submit: it holds the
    lock while a real local submit starts, then records the grid's jobs queued (Slurm ids sacct does not know read
    as still pending) and lets go: the local command runs none of them."""
    import subprocess
    import sys
    import threading

    from study.launch.locks import submit_lock

    grid = env / "g.yaml"
    grid.write_text(grid_text("race"))
    wd = env / "wd"
    jobs = plan_grid(grid).jobs
    cmd = [sys.executable, "-m", "study.cli", "submit", str(grid), "--cluster", "local", "--workdir", str(wd),
           "--workers", "1"]
    local, said = None, []
    try:
        with submit_lock(wd):
            local = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
            guard = threading.Timer(SLOW_S, local.kill)  # a hung read below fails the test, not the run
            guard.start()
            try:  # until the local command waits for the submit lock (it holds its own command lock by then)
                while not said or "waiting for another study submit" not in said[-1]:
                    said.append(local.stderr.readline())
                    assert said[-1], "".join(said)  # it ended without waiting
            finally:
                guard.cancel()
            time.sleep(1)  # a command that said so but did not wait would have queued its jobs by now
            assert not _events(wd, "race"), "the local command read the states while the lock was held"
            Ledger(wd, "race").append([{"event": "queued", "batch": "b", "job": j.id, "stage": j.stage,
                                        "slurm_job_id": f"98765432{i}", "array_job_id": f"98765432{i}",
                                        "folder": str(wd / "submitit" / "study-race-pretrain-b")}
                                       for i, j in enumerate(jobs)])
        err = "".join(said) + local.communicate(timeout=SLOW_S)[1]
    finally:
        if local is not None and local.poll() is None:
            local.terminate()  # its workers end with it (SIGTERM: see test_sigterm_stops_the_workers...)
            local.wait(timeout=60)
    assert "waiting for another study submit" in err and "no job to run here" in err, err
    assert f"skipped: {len(jobs)} pending or running" in err and not _events(wd, "race")  # nothing queued here


def test_a_job_finished_by_another_command_just_before_its_turn_is_not_run_again(env, monkeypatch):
    """The race between a command's reading of the states and its taking of a job's lock: another command ran the
    pretraining job and wrote its encoder and result in between. With the lock free and the result there, the job
    counts done: it is not run again (that would redo it and replace the other's result), and its evaluation runs
    on the other's encoder."""
    import shutil

    from study.launch.local import scheduler

    grid = env / "g.yaml"
    grid.write_text(grid_text("race"))
    other, wd, real = env / "other", env / "wd", scheduler.job_lock
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(other), "--workers", "1"])
    assert code == 0, err
    pre, ev = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    theirs = other / "results" / f"{pre.id}.json"

    def lock_after_the_other_finished(workdir, job_id):
        if job_id == pre.id and not (wd / "results" / theirs.name).exists():  # the other's files, written just now
            shutil.copytree(other / "jobs" / pre.id, wd / "jobs" / pre.id)
            (wd / "results").mkdir(exist_ok=True)
            shutil.copy(theirs, wd / "results" / theirs.name)
        return real(workdir, job_id)

    monkeypatch.setattr(scheduler, "job_lock", lock_after_the_other_finished)
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0 and "running 2 job(s)" in err, err
    assert f"started pretrain {pre.id}" not in err and not (wd / "logs" / f"{pre.id}.log").exists()
    assert (wd / "results" / theirs.name).read_bytes() == theirs.read_bytes()  # theirs, not replaced
    assert [e["state"] for e in _events(wd, "race") if e["job"] == pre.id] == ["pending"]
    assert f"done evaluate {ev.id}" in err and (wd / "results" / f"{ev.id}.json").is_file()
    code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd)])
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("pretrain", "evaluate"))}
    assert code == 0 and rows["pretrain"] == rows["evaluate"] == ["1", "0", "0", "0", "0", "0", "0"], out  # done


def test_an_evaluation_of_two_encoders_waits_for_both(env):
    """A concat job depends on two pretraining jobs: with one done before (an earlier command) and the other
    running, a free worker must not start it."""
    wd = env / "wd"
    first = env / "one.yaml"
    first.write_text(grid_text("one"))  # SimCLR's pretraining (and its probe): done before
    assert run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])[0] == 0
    grid = env / "pair.yaml"
    grid.write_text(grid_text("pair").replace("method: [simclr]", "method: [simclr, byol]").replace(
        "    - protocol: linear\n", "    - protocol: concat\n      pairs: [[{method: simclr}, {method: byol}]]\n"))
    jobs = {(j.stage, j.axes.get("protocol"), j.axes["method"]): j.id for j in plan_grid(grid).jobs}
    byol, concat = jobs[("pretrain", None, "byol")], jobs[("evaluate", "concat", "simclr|byol")]
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "2"])
    assert code == 0, err
    order = [(e["job"], e["state"]) for e in _events(wd, "pair")]
    assert order.index((byol, "done")) < order.index((concat, "running"))


def test_a_failed_job_cancels_its_dependents_transitively(env):
    """A chain a <- b <- c: when a fails, b and c are both cancelled and never started (c was left pending, its
    dependency b cancelled, and read missing afterwards), though free workers wait. The worker of a fails at once: its
    stage is unknown. The command leaves the stop signals' handlers as it found them."""
    import io

    from study.grids import Job
    from study.launch.local.scheduler import run_local
    from study.launch.signals import STOP_SIGNALS

    jobs = [Job(id="a", stage="nostage", config={"axes": {}}),
            Job(id="b", stage="evaluate", config={"axes": {}}, depends_on=("a",)),
            Job(id="c", stage="evaluate", config={"axes": {}}, depends_on=("b",))]
    wd, err = env / "wd", io.StringIO()
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    plan = fake_plan("chain", jobs)
    assert run_local(plan, wd, workers=3, err=err) == 1
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == handlers
    events = _events(wd, "chain")
    last = {e["job"]: e for e in events}
    assert {j: e["state"] for j, e in last.items()} == {"a": "failed", "b": "cancelled", "c": "cancelled"}
    assert last["c"]["error"] == "dependency a failed"
    assert last["a"]["error"].startswith("exit code ") and last["a"]["error"] != "exit code 0"  # what status prints
    assert not [e for e in events if e["job"] in ("b", "c") and e["state"] == "running"]
    assert "0/3 done, 0 running, 1 failed, 2 cancelled | finished; 1 failed: `study status`" in err.getvalue()
    assert "| FAILED nostage a [" in err.getvalue(), err.getvalue()
    assert "not run" not in err.getvalue(), err.getvalue()  # cancelled, not left waiting for an outside run


def test_the_workers_flag_sets_how_many_workers_run(env, monkeypatch):
    """`--workers 3` overrides the default of one worker per core or GPU (mocked here to 1). The evaluation is
    pending in another live command, so this one runs the pretraining alone."""
    import socket

    from study.launch.local import scheduler
    from study.launch.locks import command_lock

    monkeypatch.setattr(scheduler, "default_workers", lambda: (1, [None]))
    grid = env / "g.yaml"
    grid.write_text(grid_text("nworkers"))
    wd = env / "wd"
    with command_lock(wd) as name:
        Ledger(wd, "nworkers").append([{"event": "local", "job": j.id, "stage": j.stage, "state": "pending",
                                        "log": None, "pid": os.getpid(), "host": socket.gethostname(), "lock": name}
                                       for j in plan_grid(grid).jobs if j.stage == "evaluate"])
        code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "3"])
    assert code == 0 and "running 1 job(s) here with 3 worker(s)" in err, err


def test_a_run_with_fewer_workers_than_the_estimate_counted_says_its_own_estimate(env):
    """The quickstart's profile counts 2 CPU jobs at once (`max_parallel_jobs`); on a one-core machine its run has
    1 worker, and its first line says the estimate with 1 (the plan's alone read as half the wait)."""
    from study.launch.local.scheduler import workers_estimate

    grid = env / "g.yaml"
    grid.write_text(grid_text("fewer", seeds=(0, 1, 2, 3)))
    plan = plan_grid(grid, Path(__file__).resolve().parents[2] / "grids" / "profiles" / "local.yaml")
    assert plan.estimate["max_parallel_jobs"] == 2
    one = workers_estimate(plan, plan.jobs, 1, [None])
    assert one.startswith(" (the plan's estimate counts 2 job(s) at once: with 1, about "), one
    assert workers_estimate(plan, plan.jobs, 2, [None, None]) == ""  # as counted
    assert workers_estimate(plan, plan.jobs, 1, ["0"]) == ""  # a GPU worker: the estimate counts GPUs
    assert workers_estimate(plan, [], 1, [None]) == ""


def test_fewer_than_one_worker_is_refused(env):
    """`run_local` called with workers=0 (not through the command line, whose --workers refuses it) used to run
    with the default count instead of saying so."""
    import io

    from study.errors import StudyError
    from study.launch.local.scheduler import run_local

    with pytest.raises(StudyError, match=r"--workers: expected an integer >= 1, got 0"):
        run_local(fake_plan("none", []), env / "wd", workers=0, err=io.StringIO())
    assert not (env / "wd").exists()


def test_a_worker_that_ends_well_without_its_result_is_failed_not_done(env, monkeypatch):
    """Exit code 0 is not enough: a worker that wrote no result (here: run as another task than a Slurm job's first,
    which leaves the result to that one) is failed, and its dependents cancelled; counted done, the command would
    say it succeeded while `study status` reads the job missing."""
    monkeypatch.setenv("SLURM_PROCID", "1")
    grid = env / "g.yaml"
    grid.write_text(grid_text("nores", steps=2))
    wd = env / "wd"
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 1, err
    stages = {j.id: j.stage for j in plan_grid(grid).jobs}
    assert {stages[e["job"]]: e["state"] for e in _events(wd, "nores")} == {"pretrain": "failed",
                                                                              "evaluate": "cancelled"}
    assert not (wd / "results").exists()


def exit_read_as_sigkill(monkeypatch, job_id: str) -> None:
    """The worker of job `job_id` runs as it is, but `run_local` reads its exit status as SIGKILL's (a kill that a
    test cannot time)."""
    from study.launch.local import scheduler

    real_start = scheduler._start

    class Killed:
        def __init__(self, proc):
            self.proc = proc

        def poll(self):
            return None if self.proc.poll() is None else -signal.SIGKILL

        def __getattr__(self, name):
            return getattr(self.proc, name)

    def start(job, *args):
        running = real_start(job, *args)
        if job.id == job_id:
            running.proc = Killed(running.proc)
        return running

    monkeypatch.setattr(scheduler, "_start", start)


def test_a_worker_killed_after_writing_its_result_is_done_and_its_dependents_run(env, monkeypatch):
    """A worker's interpreter takes seconds to exit after `run_job` wrote the result (torch's teardown: 3 s measured
    on 2 cores); one killed then (SIGKILL, the OOM killer, a crash at exit) has done its job. It used to be counted
    failed with its evaluation cancelled (exit 1, `--retry-failed` needed) while `study status` read it done. Here the
    pretraining's real worker runs to its end; its exit status is read as SIGKILL's."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("lateexit", steps=2))
    wd = env / "wd"
    pre = next(j for j in plan_grid(grid).jobs if j.stage == "pretrain")
    exit_read_as_sigkill(monkeypatch, pre.id)
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 0, err
    assert f"done pretrain {pre.id} in " in err and "(then its worker ended, killed by SIGKILL (out of memory?))" in err
    assert {e["stage"]: e["state"] for e in _events(wd, "lateexit")} == {"pretrain": "done", "evaluate": "done"}


def test_a_local_dry_run_lists_the_jobs_it_would_run_and_writes_nothing(env):
    """`--dry-run` with --cluster local: what a submit would run here, a line each in start order (a grown grid's
    new jobs, before running them), and the skipped ones counted; no workdir made, no ledger line, no lock."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("dry"))
    plan = plan_grid(grid)
    wd = env / "wd"
    code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0, err
    assert out.splitlines() == [f"{j.stage} {j.id} [{job_text(j)}]" for j in plan.jobs]  # pretraining first
    # with what these jobs alone would take here: the plan's estimate of them, with this machine's workers
    assert f"[study] dry: would run {len(plan.jobs)} job(s) here (about " in err and "; skipped: nothing" in err, err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run",
                            "--workers", "3"])
    assert code == 0 and " with 3 worker(s), by profile " in err, err
    assert not wd.exists()
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    Ledger(wd, "dry").append([{"event": "local", "job": pre.id, "stage": "pretrain", "state": "cancelled",
                               "log": None, "error": "stopped"}])
    before = sorted((p, p.read_bytes()) for p in wd.rglob("*") if p.is_file())
    code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and pre.id not in out and "skipped: 1 cancelled (rerun with --retry-failed)" in err, (out, err)
    code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run",
                              "--retry-failed"])
    assert code == 0 and out.splitlines()[0] == f"pretrain {pre.id} [{job_text(pre)}]", out
    assert sorted((p, p.read_bytes()) for p in wd.rglob("*") if p.is_file()) == before


def test_a_worker_killed_before_its_result_is_said_killed_by_its_signal(env, monkeypatch):
    """A worker killed without a result (the OOM killer, a `kill -9`): its FAILED line names the signal, as status
    does, not `exit code -9`. Here the worker writes no result (a Slurm task other than the first) and its exit
    status is read as SIGKILL's."""
    monkeypatch.setenv("SLURM_PROCID", "1")
    grid = env / "g.yaml"
    grid.write_text(grid_text("killednores", steps=2))
    wd = env / "wd"
    pre = next(j for j in plan_grid(grid).jobs if j.stage == "pretrain")
    exit_read_as_sigkill(monkeypatch, pre.id)
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"])
    assert code == 1, err
    assert f"FAILED pretrain {pre.id} [{job_text(pre)}] (killed by SIGKILL (out of memory?)); log " in err, err
    assert "exit code -9" not in err


def test_a_local_submit_refuses_a_manifest_whose_images_are_not_here(env, monkeypatch):
    """Its workers run here: a manifest whose recorded root is not a folder on this machine is an error before
    anything runs (on Slurm only a warning: the nodes may mount it)."""
    import shutil

    from launch_helpers import build_manifests

    monkeypatch.setenv("STUDY_MANIFESTS", str(env / "data" / "manifests"))
    build_manifests(env / "data", ("moved",))
    shutil.rmtree(env / "data" / "images" / "moved" / "train")
    grid = env / "g.yaml"
    grid.write_text(grid_text("movedg", datasets=("moved",)))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(env / "wd")])
    assert code == 2 and "moved_train" in err, err
    assert not (env / "wd").exists()
    code, out, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--dry-run", "--workdir", str(env / "wd"),
                              "--profile", str(env / "profile.yaml")])
    assert code == 0 and "#SBATCH" in out, err
    assert "study: warning: " in err and "moved_train" in err.split("study: warning: ", 1)[1], err


def test_only_runs_the_jobs_named_and_refuses_one_whose_dependency_would_never_run(env):
    """`--only` with an id's prefix: that job alone runs; an evaluation whose pretraining has no result is refused
    (exit 2, nothing run) until its pretraining is named too or done."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("onlyg"))
    wd = env / "wd"
    pre, ev = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    cmd = ["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"]
    code, _, err = run_cli(cmd + ["--only", ev.id[:6]])
    assert code == 2 and f"job {ev.id} needs job {pre.id}, which has no result" in err
    assert not (wd / "results").exists()
    code, _, err = run_cli(cmd + ["--only", pre.id[:6]])
    assert code == 0 and "running 1 job(s)" in err, err
    assert {p.stem for p in (wd / "results").glob("*.json")} == {pre.id}
    code, _, err = run_cli(cmd + ["--only", f"{pre.id},{ev.id}"])
    assert code == 0 and "running 1 job(s)" in err and "skipped: 1 done" in err, err
    assert {p.stem for p in (wd / "results").glob("*.json")} == {pre.id, ev.id}


def test_where_runs_the_jobs_it_selects_under_the_rule_of_only(env):
    """`--where stage=pretrain` runs the pretraining job alone; `--where protocol=linear` (the evaluation) is refused
    while its pretraining has no result, then runs; with --only, a job named that --where does not select is
    refused. `study status
    --where` shows the jobs it selects."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("whereg"))
    wd = env / "wd"
    pre, ev = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    cmd = ["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--workers", "1"]
    code, _, err = run_cli(cmd + ["--where", "protocol=linear"])
    assert code == 2 and f"--only/--where: job {ev.id} needs job {pre.id}, which has no result" in err, err
    code, _, err = run_cli(cmd + ["--where", "stage=pretrain", "--only", ev.id])
    assert code == 2 and f"--only names 1 job(s) --where does not select: {ev.id};" in err, err
    assert not (wd / "results").exists()
    code, _, err = run_cli(cmd + ["--where", "stage=pretrain"])
    assert code == 0 and "running 1 job(s)" in err, err
    assert {p.stem for p in (wd / "results").glob("*.json")} == {pre.id}
    # `study status --where`: the selected jobs' counts alone; the done pretraining job is neither counted nor taken
    # for a result off the plan
    code, out, err = run_cli(["status", str(grid), "--workdir", str(wd), "--where", "stage=evaluate"])
    assert code == 0 and "grid whereg: 1 job(s) (those --where selects of its 2)" in out, out + err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:4] if line.strip()}
    assert list(rows) == ["evaluate"] and rows["evaluate"][-1] == "1" and "no job of its plan" not in out, out
    code, out, _ = run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json", "--where", "stage=pretrain"])
    assert code == 0 and [(j["id"], j["state"]) for j in json.loads(out)["jobs"]] == [(pre.id, "done")]
    code, _, err = run_cli(cmd + ["--where", "protocol=linear"])
    assert code == 0 and "running 1 job(s)" in err, err
    assert {p.stem for p in (wd / "results").glob("*.json")} == {pre.id, ev.id}


def _run_stand_ins(monkeypatch, tmp_path, jobs, workers, fail=(), before=(), retry_failed=False, found_done=(),
                   err=None, command=None):
    """run_local's exit code and its (job, state) ledger lines, over `jobs` whose workers are stand-ins: each sleeps a
    moment, then writes `results/<id>.ok`, which counts as its result (those in `fail` exit 1 instead). `before`:
    (job id, state) lines of an earlier command; `found_done`: jobs whose result another command writes after this
    one read the states (there when their turn comes); `err`: the progress lines' stream; `command`: the stand-in's
    shell command (given the job id), in place of the sleep."""
    import io

    from study.launch.local import scheduler

    wd = tmp_path / "wd"
    (wd / "results").mkdir(parents=True)
    for job_id in found_done:
        (wd / "results" / f"{job_id}.ok").touch()
    Ledger(wd, "fake").append([{"event": "local", "job": j, "stage": "pretrain", "state": s, "log": None}
                               for j, s in before])
    stand_in_workers(monkeypatch, lambda job_id, env: ["sh", "-c", command(job_id) if command else "sleep 0.3; " + (
        "exit 1" if job_id in fail else f"touch {wd}/results/{job_id}.ok")])
    monkeypatch.setattr(scheduler, "result_done", lambda workdir, job_id: (wd / "results" / f"{job_id}.ok").exists())
    plan = fake_plan("fake", jobs)  # sh workers
    code = scheduler.run_local(plan, wd, workers=workers, retry_failed=retry_failed, err=err or io.StringIO())
    return code, [(e["job"], e["state"]) for e in _events(wd, "fake")][len(before):]


def _most_at_once(order):
    """The most jobs running at once, by the ledger lines `order`."""
    running, most = set(), 0
    for job, state in order:
        if state == "running":
            running.add(job)
        else:
            running.discard(job)
        most = max(most, len(running))
    return most


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_as_many_jobs_run_at_once_as_there_are_workers(monkeypatch, tmp_path, workers):
    """Four independent jobs on `workers` workers: never more at once, and as many while there are jobs to start
    (the first `workers` start together). Each runs once."""
    from study.grids import Job

    jobs = [Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in range(4)]
    code, order = _run_stand_ins(monkeypatch, tmp_path, jobs, workers)
    assert code == 0
    assert [s for _, s in order[:4 + workers]] == ["pending"] * 4 + ["running"] * workers, order
    assert _most_at_once(order) == workers, order
    assert sorted(j for j, s in order if s == "running") == sorted(j for j, s in order if s == "done") == \
        [j.id for j in jobs]


@pytest.mark.parametrize("fails_again", [False, True])
def test_retry_failed_starts_a_dependent_only_once_its_failed_dependency_is_done(monkeypatch, tmp_path, fails_again):
    """`--retry-failed` reruns a failed job and its cancelled dependent: the dependent starts once the rerun is
    done (a free worker waits meanwhile), and never when it fails again (cancelled again): a failed dependency is
    not a done one."""
    from study.grids import Job

    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}),
            Job(id="b", stage="evaluate", config={"axes": {}}, depends_on=("a",))]
    code, order = _run_stand_ins(monkeypatch, tmp_path, jobs, 2, fail={"a"} if fails_again else set(),
                                 before=[("a", "failed"), ("b", "cancelled")], retry_failed=True)
    if fails_again:
        assert code == 1 and order == [("a", "pending"), ("b", "pending"), ("a", "running"), ("a", "failed"),
                                       ("b", "cancelled")], order
    else:
        assert code == 0 and order == [("a", "pending"), ("b", "pending"), ("a", "running"), ("a", "done"),
                                       ("b", "running"), ("b", "done")], order


def test_a_long_job_is_said_to_run_with_its_logs_last_progress_line(monkeypatch, tmp_path):
    """Nothing was said between a job's start and its end: hours of training, or the quickstart's fine-tuning
    (~40 s), read as a hung command. After QUIET_FIRST_S without a line, one names each running job and the progress
    line its log last holds (or that it holds none yet)."""
    import io

    from study.grids import Job
    from study.launch.local import scheduler

    monkeypatch.setattr(scheduler, "QUIET_FIRST_S", 0.3)
    err = io.StringIO()
    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}), Job(id="b", stage="pretrain", config={"axes": {}})]
    code, _ = _run_stand_ins(monkeypatch, tmp_path, jobs, 2, err=err, command=lambda job_id: (
        "echo '[pretrain] step 5/10 loss 1.0'; " if job_id == "a" else "") + f"sleep 1; touch {tmp_path}/wd/results/"
        f"{job_id}.ok")
    beats = [line for line in err.getvalue().splitlines() if "| running " in line]
    assert code == 0 and beats, err.getvalue()
    assert re.search(r"running pretrain a \d+ s in: \[pretrain\] step 5/10 loss 1\.0( \(its log silent for \d+ s\))?; "
                     r"pretrain b \d+ s in: no progress line in its log yet", beats[0]), beats


def test_a_heartbeat_names_this_runs_progress_line_not_an_earlier_runs_and_says_how_old_it_is(tmp_path):
    """A rerun appends to its job's log: a job that had said nothing yet was said to be at the step an earlier run
    of it reached (and a job whose log had not moved for an hour read as busy). Only the lines after the log's last
    RUN_HEADER count; a line QUIET_FIRST_S old or more says how long the log has been silent."""
    import io

    from study.grids import Job
    from study.launch.local import scheduler

    wd, err = tmp_path / "wd", io.StringIO()
    run = scheduler._LocalRun(fake_plan("fake", []), wd, Ledger(wd, "fake"), err, [],
                              set(), [], [None], 1)
    old = f"{scheduler.RUN_HEADER}earlier run\n[pretrain] step 9/10 loss 0.1\n{scheduler.RUN_HEADER}this run\n"
    for job_id, text in (("a", old + "[pretrain] step 2/10 loss 1.0\n"), ("b", old)):
        (tmp_path / f"{job_id}.log").write_text(text)
        run.running[job_id] = scheduler._Running(Job(id=job_id, stage="pretrain", config={"axes": {}}), None, 0,
                                                 tmp_path / f"{job_id}.log", time.time() - 600, -1)
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / "a.log", (an_hour_ago, an_hour_ago))
    run.said_at = time.time() - run.quiet_s
    run.heartbeat()
    said = err.getvalue()
    assert "pretrain a 10 min in: [pretrain] step 2/10 loss 1.0 (its log silent for 60 min)" in said, said
    assert "pretrain b 10 min in: no progress line in its log yet" in said and "step 9/10" not in said, said


def test_a_wait_for_a_job_run_elsewhere_is_said_again_as_a_heartbeat(monkeypatch, tmp_path):
    """Waiting for a dependency another command or Slurm runs was said once, then nothing for as long as it ran
    (hours): it is said again after `quiet_s`, not at each poll."""
    import io

    from study.launch.local import scheduler

    monkeypatch.setattr(scheduler, "OUTSIDE_POLL_S", 0.0)
    wd, err = tmp_path / "wd", io.StringIO()
    run = scheduler._LocalRun(fake_plan("fake", []), wd, Ledger(wd, "fake"), err, [],
                              set(), [0], [None], 1)
    run.outside_live = lambda waiting: ["pretrain a (Slurm job 5)"]
    assert run.wait_outside() and run.wait_outside()
    assert err.getvalue().count("waiting for pretrain a (Slurm job 5)") == 1, err.getvalue()
    run.said_at -= run.quiet_s
    assert run.wait_outside() and run.wait_outside()
    assert err.getvalue().count("still waiting for pretrain a (Slurm job 5)") == 1, err.getvalue()
    assert run.quiet_s == 2 * scheduler.QUIET_FIRST_S


def test_each_heartbeat_doubles_the_wait_for_the_next_and_news_starts_it_over(tmp_path):
    """A job of hours says what it does at 1, 3, 7, 15 min ... then every QUIET_MAX_S, not every minute."""
    import io

    from study.launch.local import scheduler

    wd = tmp_path / "wd"
    run = scheduler._LocalRun(fake_plan("fake", []), wd, Ledger(wd, "fake"),
                              io.StringIO(), [], set(), [0], [None], 1)
    waits = []
    for _ in range(6):
        run.progress("running ...", heartbeat=True)
        waits.append(run.quiet_s)
    assert waits == [2 * scheduler.QUIET_FIRST_S * 2 ** i for i in range(3)] + [scheduler.QUIET_MAX_S] * 3
    run.progress("done pretrain a")
    assert run.quiet_s == scheduler.QUIET_FIRST_S


def test_a_progress_line_that_cannot_be_written_is_dropped():
    """stderr a closed pipe (`study submit ... 2>&1 | head`, once head has ended): the line is dropped, not raised,
    which would stop every worker of the run."""
    import io

    from study.launch.local.scheduler import _say

    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    _say("[study] done pretrain p1", Closed())
    closed = io.StringIO()
    closed.close()  # a stream closed under the scheduler (a program's): ValueError
    _say("[study] done pretrain p1", closed)


def test_a_run_leaves_no_job_locked_and_counts_only_the_jobs_it_ran(monkeypatch, tmp_path):
    """Each job's lock is let go once its worker has ended, done or failed, and that of a job found done by another
    command when its turn came: a command that held them on (until it ends, or for ever in a program's process)
    would have `study status` and other commands read its failed jobs as run by it. The progress lines count the
    jobs this command ran: not the one another command ran."""
    import io

    from study.grids import Job
    from study.launch.locks import lock_held

    jobs = [Job(id="j0", stage="pretrain", config={"axes": {}}), Job(id="j1", stage="pretrain", config={"axes": {}}),
            Job(id="j2", stage="pretrain", config={"axes": {}}),
            Job(id="j3", stage="evaluate", config={"axes": {}}, depends_on=("j2",))]
    err = io.StringIO()
    code, order = _run_stand_ins(monkeypatch, tmp_path, jobs, 2, fail={"j2"}, found_done={"j0"}, err=err)
    assert code == 1 and ("j0", "running") not in order and ("j3", "cancelled") in order, order
    assert [j.id for j in jobs if lock_held(tmp_path / "wd" / "locks" / f"{j.id}.lock")] == []
    last = err.getvalue().strip().splitlines()[-1]
    assert "1/3 done, 0 running, 1 failed, 1 cancelled | finished" in last, err.getvalue()


def test_a_job_started_again_after_a_stop_says_the_checkpoint_it_resumes_from(monkeypatch, tmp_path):
    """A rerun after Ctrl-C: the start line of a job an interrupted run left a checkpoint of names its step (the
    steps before it are not trained again), where it read as a start from step 0 before; a job without one, none."""
    import io

    from study.grids import Job
    from launch_helpers import write_checkpoint

    write_checkpoint(tmp_path / "wd" / "jobs" / "j0" / "checkpoint.pt", 55, 150)
    write_checkpoint(tmp_path / "wd" / "jobs" / "e0" / "finetune-300" / "checkpoint.pt", 40, 80)
    jobs = [Job(id="j0", stage="pretrain", config={"axes": {}}), Job(id="j1", stage="pretrain", config={"axes": {}}),
            Job(id="e0", stage="evaluate", depends_on=("j0",),
                config={"axes": {"protocol": "finetune", "eval_dataset": "toy"}, "evaluate": {"labeled_sizes": [300]}})]
    err = io.StringIO()
    code, _ = _run_stand_ins(monkeypatch, tmp_path, jobs, 1, err=err)
    started = {ln.split("started ")[1].split()[1]: ln for ln in err.getvalue().splitlines() if "| started " in ln}
    assert code == 0 and sorted(started) == ["e0", "j0", "j1"], err.getvalue()
    assert "started pretrain j0 [] from its checkpoint at step 55/150 (log " in started["j0"], started
    assert "started evaluate e0 [: finetune on toy at 300 labels] from its checkpoints: finetune-300 at step 40/80 " \
        "(log " in started["e0"], started
    assert "from its" not in started["j1"] and "started pretrain j1 [] (log " in started["j1"], started


def test_a_run_stopped_by_ctrl_c_leaves_its_jobs_unlocked(monkeypatch, tmp_path):
    """A KeyboardInterrupt in a program's run_local (a notebook's interrupt) stops the workers and lets go of their
    jobs' locks: held on by the program's process, the next run_local there would find its jobs run by another
    command, and `study status` would read them running."""
    import io

    from study.grids import Job
    from study.launch.local import scheduler
    from study.launch.locks import lock_held

    class InterruptedAtStart(io.StringIO):
        def write(self, s):
            if "started" in s:
                raise KeyboardInterrupt
            return super().write(s)

    wd = tmp_path / "wd"
    stand_in_workers(monkeypatch, lambda job_id, env: ["sleep", "60"])  # SIGUSR2 ends it
    jobs = [Job(id="j0", stage="pretrain", config={"axes": {}})]
    with pytest.raises(KeyboardInterrupt):
        scheduler.run_local(fake_plan("intr", jobs), wd, workers=1,
                            err=InterruptedAtStart())
    assert [(e["job"], e["state"]) for e in _events(wd, "intr")] == [("j0", "pending"), ("j0", "running")]
    assert not lock_held(wd / "locks" / "j0.lock")


def test_a_job_two_of_whose_dependencies_fail_at_once_is_cancelled_once(tmp_path):
    """Two dependencies reaped failed in one pass (a pair's two pretraining jobs on a bad dataset): their dependent
    is cancelled by the first, and not again (a second `cancelled` line and progress line) by the second."""
    import io

    from study.grids import Job
    from study.launch.local.scheduler import _LocalRun

    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}), Job(id="b", stage="pretrain", config={"axes": {}}),
            Job(id="c", stage="evaluate", config={"axes": {}}, depends_on=("a", "b"))]
    plan, err = fake_plan("pairg", jobs), io.StringIO()
    run = _LocalRun(plan, tmp_path, Ledger(tmp_path, "pairg"), err, [jobs[2]], set(), [0], [None], 1)
    run.cancel_dependents("a")
    run.cancel_dependents("b")
    assert [(e["job"], e["state"], e["error"]) for e in _events(tmp_path, "pairg")] == \
        [("c", "cancelled", "dependency a failed")]
    assert err.getvalue().count("cancelled evaluate c") == 1, err.getvalue()


def test_the_workers_of_a_stop_share_one_grace_period(monkeypatch, tmp_path):
    """Workers that do not end on SIGUSR2 (one stuck in a long step) are killed once one STOP_GRACE_S has passed
    since the stop, all of them: a wait of the grace for each in turn kept a stopped command n times as long (30 s a
    worker), past `study cancel`'s wait for it. Here 3 workers that ignore SIGUSR2, a grace of 1 s."""
    import io
    import subprocess
    import sys

    from study.grids import Job
    from study.launch.local import scheduler

    monkeypatch.setattr(scheduler, "STOP_GRACE_S", 1.0)
    jobs = [Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in range(3)]
    plan, err = fake_plan("graceg", jobs), io.StringIO()
    run = scheduler._LocalRun(plan, tmp_path, Ledger(tmp_path, "graceg"), err, [], set(), [], [None] * 3, 1)
    ignores = ("import signal, time; signal.signal(signal.SIGUSR2, signal.SIG_IGN); print('ready', flush=True); "
               "time.sleep(60)")
    procs = []
    try:
        for slot, job in enumerate(jobs):
            proc = subprocess.Popen([sys.executable, "-c", ignores], stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            assert proc.stdout.readline() == "ready\n"  # it ignores SIGUSR2 from here on
            lock = os.open(tmp_path / f"{job.id}.lock", os.O_CREAT | os.O_RDWR)
            run.running[job.id] = scheduler._Running(job, proc, slot, tmp_path / f"{job.id}.log", time.time(), lock)
        t0 = time.monotonic()
        run.stop_workers()
        took = time.monotonic() - t0
        ended = [p.poll() for p in procs]  # before the cleanup below kills what the stop left
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    assert ended == [-signal.SIGKILL] * 3, err.getvalue()  # each outlived the grace: killed
    assert 0.9 <= took < 2.5, took  # one grace of 1 s for the three, not 3 s
    assert "stopping 3 worker(s)" in err.getvalue() and "killed after 1 s" in err.getvalue(), err.getvalue()


@pytest.mark.parametrize("newer", [False, True])
def test_a_dependency_another_command_ends_without_a_result_is_waited_for_then_given_up(monkeypatch, tmp_path,
                                                                                        newer):
    """A dependency pending in another live command (another grid's, sharing it) is waited for; once that command
    has ended without running it (it reads missing), this one leaves its dependent not run (exit 1) instead of
    waiting for ever. `newer`: that command was a newer study's, and its result does not read here: said so (no
    --retry-failed of this version runs it), not "without a result"."""
    import io
    import socket
    import threading

    from study.grids import Job
    from study.launch.local import scheduler

    monkeypatch.setattr(scheduler, "OUTSIDE_POLL_S", 0.1)
    stand_in_workers(monkeypatch, lambda job_id, env: ["true"])
    wd = tmp_path / "wd"
    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}),
            Job(id="b", stage="evaluate", config={"axes": {}}, depends_on=("a",))]
    other = try_lock(wd / "locks" / "command-other.lock")
    Ledger(wd, "outg").append([{"event": "local", "job": "a", "stage": "pretrain", "state": "pending", "log": None,
                                "pid": 1, "host": socket.gethostname(), "lock": "command-other.lock"}])
    err, got = io.StringIO(), []
    run = threading.Thread(target=lambda: got.append(scheduler.run_local(
        fake_plan("outg", jobs), wd, workers=1, err=err)), daemon=True)
    run.start()
    _until(lambda: "waiting for pretrain a" in err.getvalue(), every=0.05)
    time.sleep(0.5)  # polls that find it still waited for: said once, not at each poll
    if newer:
        from study.results import record, write_result

        monkeypatch.setattr(record, "code_version", lambda: "v")  # no git subprocess: Popen stands in for workers
        write_result(wd, {"job_id": "a", "stage": "pretrain", "grid": "outg", "axes": {}, "protocol": {},
                          "metrics": [{"metric": "loss", "value": 1.0}]})
        path = wd / "results" / "a.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 99}))
    os.close(other)  # that command ends, never having run `a` (or having run it, as a newer study)
    run.join(timeout=SLOW_S)
    assert got == [1], err.getvalue()
    assert "waiting for pretrain a (pending in the command of pid 1 on " in err.getvalue()
    assert err.getvalue().count("waiting for") == 1, err.getvalue()
    said = ("their dependencies a have results a newer version of study wrote, which this one does not read (update "
            "this checkout); they stay missing: `study submit` runs them\n" if newer else
            "their dependencies a ended outside this command without a result; they stay missing: `study submit` runs "
            "them (`--retry-failed` if a dependency failed)")
    assert said in err.getvalue(), err.getvalue()
    assert [(e["job"], e["state"]) for e in _events(wd, "outg")] == [("a", "pending"), ("b", "pending")]


def test_a_dependency_an_interrupted_slurm_submit_may_have_queued_is_waited_for_under_that_name(monkeypatch, tmp_path):
    """A dependency read pending from an unsettled Slurm intent (no command, no Slurm id) was waited for as
    "pending in the command of pid None on None": it is named by what the state says."""
    import io

    from study.grids import Job
    from study.launch.local import scheduler
    from study.launch.state import JobState

    monkeypatch.setattr(scheduler, "OUTSIDE_POLL_S", 0.05)
    stand_in_workers(monkeypatch, lambda job_id, env: ["true"])
    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}),
            Job(id="b", stage="evaluate", config={"axes": {}}, depends_on=("a",))]
    polls = []

    def states(plan, workdir, asked=None):
        polls.append(1)
        said = "pending" if len(polls) < 4 else "missing"
        return {j.id: JobState(j.id, j.stage, said if j.id == "a" else "missing",
                               "unsettled: array sx may have queued it" if j.id == "a" else "") for j in asked or jobs}

    monkeypatch.setattr(scheduler, "grid_states", states)
    monkeypatch.setattr(scheduler, "locked_states", states)  # the submit's own read: `a` pending, `b` missing
    err = io.StringIO()
    plan = fake_plan("ung", jobs)
    assert scheduler.run_local(plan, tmp_path / "wd", workers=1, only={"b"}, err=err) == 1
    assert "waiting for pretrain a (unsettled: array sx may have queued it)" in err.getvalue(), err.getvalue()
    assert "pid None" not in err.getvalue()


def test_a_job_is_ready_once_each_of_its_dependencies_is_done_here_or_by_another_command(monkeypatch, tmp_path):
    """An evaluation of two encoders waits for both (one done is not enough); a dependency this command does not
    run counts done once its result reads (another command, or a grid sharing it, has run it)."""
    import io

    from study.grids import Job
    from study.launch.local import scheduler

    outside: set[str] = set()
    monkeypatch.setattr(scheduler, "result_done", lambda workdir, job_id: job_id in outside)
    jobs = [Job(id="a", stage="pretrain", config={"axes": {}}), Job(id="b", stage="pretrain", config={"axes": {}}),
            Job(id="c", stage="evaluate", config={"axes": {}}, depends_on=("a", "b"))]
    plan = fake_plan("readyg", jobs)
    run = scheduler._LocalRun(plan, tmp_path, Ledger(tmp_path, "readyg"), io.StringIO(), [jobs[2]], {"a"}, [0],
                              [None], 1)
    assert not run.ready(jobs[2])  # b is neither done nor run by this command
    outside.add("b")  # another command has run b
    assert run.ready(jobs[2]) and "b" in run.done


def test_an_imported_encoder_runs_through_a_grid_as_method_pretrained(env, monkeypatch):
    """`study encoder import`, then a grid of SimCLR beside `method: pretrained` with `pretrained.encoder_file` (a
    path relative to where submit runs): its job writes that encoder, trains nothing, and its probe scores it (the
    records say where its weights came from), while SimCLR trains from scratch beside it."""
    import pandas as pd
    import torch

    from study.cli import main
    from study.results import collect
    from study.train.backbones import build_backbone

    monkeypatch.chdir(env)
    torch.manual_seed(0)  # a small-image ResNet-18 saved as torchvision saves one, with a classifier to leave out
    state = {**build_backbone("resnet18_small", 4).state_dict(), "fc.weight": torch.zeros(3, 32),
             "fc.bias": torch.zeros(3)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, env / "theirs.pth")
    assert main(["encoder", "import", "theirs.pth", "enc.pt", "--backbone", "resnet18_small", "--width", "4"]) == 0
    grid = env / "g.yaml"
    grid.write_text(grid_text("imported").replace("[simclr]", "[simclr, pretrained]")
                    .replace("pretrain: {", "pretrain: {pretrained: {encoder_file: enc.pt}, "))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(env / "wd"), "--workers", "1"])
    assert code == 0, err
    table = collect(env / "wd")
    pre = table[(table["stage"] == "pretrain") & (table["method"] == "pretrained")].iloc[0]
    assert pd.isna(pre["protocol.steps"]) and pd.isna(pre["value"])  # no metric, no schedule: it trained nothing
    trained = table[(table["stage"] == "pretrain") & (table["method"] == "simclr")]
    assert (trained["protocol.steps"] == 6).all() and trained["protocol.init_encoder"].isna().all()  # from scratch
    assert pre["protocol.imported_from.prefix"] == "module."
    assert json.loads(pre["protocol.imported_from.left_out"]) == ["fc.bias", "fc.weight"]
    probes = table[(table["stage"] == "evaluate") & (table["metric"] == "top1") & (table["method"] == "pretrained")]
    assert sorted(probes["labeled_size"]) == [16, 32] and probes["value"].between(0, 1).all()
    (env / "enc.pt").rename(env / "elsewhere.pt")  # every job that reads it is done: submitting again refuses nothing
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(env / "wd"), "--workers", "1"])
    assert code == 0 and "enc.pt" not in err, err


def test_a_job_failed_for_a_full_disk_stops_the_run_starting_jobs(monkeypatch, tmp_path):
    """A job that fails for a full disk (its worker's `No space left on device` line; simulated by a stand-in worker
    that prints it, no tmpfs mount) stops the command starting jobs: each would fail alike, and be failed or
    cancelled, for `--retry-failed` to run. The jobs not started have no ledger line past `pending`, so a plain
    rerun runs them; the last line says why it stopped and what to do."""
    import io

    from study.grids import Job
    from study.launch.local.scheduler import disk_full

    jobs = [Job(id=f"j{i}", stage="pretrain", config={"axes": {}}) for i in range(3)]
    wd = tmp_path / "wd"
    err = io.StringIO()
    code, order = _run_stand_ins(monkeypatch, tmp_path, jobs, 1, err=err, command=lambda job_id: (
        f"echo 'study: error: {wd}/jobs/{job_id}/encoder.pt: No space left on device'; exit 2") if job_id == "j0"
        else f"touch {wd}/results/{job_id}.ok")
    assert code == 1 and order == [("j0", "pending"), ("j1", "pending"), ("j2", "pending"), ("j0", "running"),
                                   ("j0", "failed")], order
    last = err.getvalue().strip().splitlines()[-1]
    assert "stopped: pretrain j0 failed for a full disk" in last and "2 job(s) not started" in last, last
    assert disk_full("exit code 2: study: error: x: checkpoint not written (RuntimeError: unexpected pos 1 vs 0; "
                     "0.00 GB free there now: a full disk or quota fails writes so)")
    assert not disk_full("exit code 2: study: error: x: checkpoint not written (RuntimeError: unexpected pos 1 vs 0; "
                         "10.00 GB free there now: a full disk or quota fails writes so)")
