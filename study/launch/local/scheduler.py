"""Run a plan's job graph here: worker processes (`python -m study.launch.local.worker`), dependencies honoured.

One worker per usable core (or `--workers N`), or one per GPU with CUDA_VISIBLE_DEVICES set to it (an entry of
the command's own CUDA_VISIBLE_DEVICES when that is set). (Not the cores left free by the load average: that
counts the submitting process's own work, such as the quickstart's data export, and would leave one of two cores
idle.)
SIGTERM, SIGHUP (a closed terminal) or Ctrl-C stops the workers: each gets SIGUSR2 (the training loop checkpoints
at its next step, then ends), and is killed if it has not ended within STOP_GRACE_S. Each job logs to
`<workdir>/logs/<job id>.log`; its start and end go to the grid's ledger (state, log, the error's last line, or the
signal that killed it). A failed job's dependents (transitively) are marked cancelled and never start; the dependents
of a job that ended outside this command without a result (another command stopped) are left missing, for a rerun.
A worker killed by SIGTERM (`kill <pid>`, which the training loop takes as a stop: it checkpoints, then ends) is no
failure: its job and its dependents are left missing, so that a plain `study submit` resumes them.
A job that fails for a full disk or quota (`disk_full`) stops the command starting jobs, which would all fail alike:
the running ones end, the rest stay missing, and the last line says to free space and rerun with --retry-failed.
A job whose call file, log or lock cannot be written (another user's, made without group write in a shared
workdir) is failed without a worker, the reason in its ledger line, and the command goes on with the others.
Progress: one line on stderr per start and end; a start names the checkpoint the job resumes from (an interrupted
run's), an end about how long the run has left (eta.py).

A job runs under an exclusive lock, `<workdir>/locks/<job id>.lock` (flock, held by its worker process, so released
when that ends however it ends): two commands on one workdir (a second `study submit`, another grid sharing a job)
never run one job twice; the second waits for the first's result, as for a dependency run elsewhere. The same lock
tells `study status` whether a `running` job's worker lives (not its pid, which the system may have reused), and
the command's own lock (`locks.command_lock`) whether its `pending` jobs still have a command to run them.
"""
from __future__ import annotations

import errno
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from study.cores import usable_cores
from study.durations import format_clock, format_duration, format_left
from study.errors import StudyError
from study.grids.render import job_text
from study.launch.ledger import Ledger, local_line, user
from study.launch.local.eta import Eta
from study.launch.locks import command_lock, job_lock, submit_lock
from study.launch.local.worker import LOCK_FD_ENV, PARENT_ENV, WRITE_REFUSED, write_refused
from study.launch.runner import CODE_DIR_ENV, SUBMIT_DIR, write_job_file
from study.launch.select import select
from study.launch.snapshot import copy_said, python_path, take_snapshot
from study.launch.signals import STOP_SIGNALS, stop_signals_held
from study.launch.state import LIVE, JobState, cached_result, result_done, written_by_newer
from study.launch.traces import (RUN_HEADER, checkpoint_steps, checkpoint_text, last_lines, progress as log_progress,
                                 since_last)
from study.runtime_keys import TERM_ENDS_ENV
from study.launch.grid_states import dry_run_states, grid_file, grid_states, locked_states
from study.paths import logs_dir, manifests_dir, result_path

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan

POLL_S = 0.1
OUTSIDE_POLL_S = 2.0  # while only waiting for a dependency another command runs
# ours: after this long without a progress line, one says what the running jobs' logs last said (`_LocalRun.
# heartbeat`); each such line doubles the wait for the next, up to QUIET_MAX_S, and any other line starts it over
QUIET_FIRST_S = 60.0
QUIET_MAX_S = 900.0
HEARTBEAT_JOBS = 3  # the running jobs a heartbeat line names (then "and k more")
STOP_GRACE_S = 30.0  # on SIGTERM / Ctrl-C: how long the workers get to checkpoint and end


def _gpu_count() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_workers() -> tuple[int, list[str | None]]:
    """(workers, device per worker): one per GPU when there are GPUs, else one per usable core.

    A worker's device is what its CUDA_VISIBLE_DEVICES becomes: the i-th entry of this process's own
    CUDA_VISIBLE_DEVICES when that is set (the device count is relative to it; entries may be indices, UUIDs or MIG
    ids), else the index i."""
    gpus = _gpu_count()
    if gpus:
        devices = gpu_devices(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
        return len(devices), devices
    n = usable_cores()
    return n, [None] * n


def gpu_devices(count: int, visible: str | None) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each of `count` workers, one GPU each, given the parent's `visible` (None: unset)."""
    entries = [e.strip() for e in visible.split(",") if e.strip()] if visible and visible.strip() else []
    if not entries:
        return [str(i) for i in range(count)]
    return list(entries[:count])


def _ending(rc: int, log: Path) -> str:
    """How a worker ended (rc != 0): the signal that killed it, or its exit code and the last line this run of the
    job wrote to its log (after its RUN_HEADER line: the log holds every run's lines, and an earlier run's error is
    not this one's)."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"killed by {name}" + (" (out of memory?)" if -rc == signal.SIGKILL else "")
    tail = since_last(last_lines(log, 40), RUN_HEADER)
    said = [line for line in tail if line.startswith("study: error: ")]  # a StudyError's first line names the cause
    last = said[-1] if said else tail[-1] if tail else ""
    return f"exit code {rc}: {last}" if last else f"exit code {rc} (this run wrote nothing to its log)"


FULL_DISK_SAYS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), " 0.00 GB free there now")


def disk_full(error: str) -> bool:
    """Whether a failed job's error (`_ending`) is a full disk or quota's (an OSError's reason, or
    `study.atomic.write_failure`'s torch.save with no space left): every job started after it would fail alike."""
    return any(said in error for said in FULL_DISK_SAYS)


def job_seconds(workdir: Path, job_id: str, took: float) -> float:
    """What a finished job took, to calibrate the time left: its result's wall time over every session (one resumed
    near its end took its worker seconds), or `took`, the worker's, where that is more (the job process's start)."""
    try:
        recorded = cached_result(result_path(workdir, job_id)).get("wall_time_s")  # as `result_done` read it
    except (StudyError, OSError):  # unreadable, or gone, since
        return took
    return max(took, float(recorded)) if isinstance(recorded, (int, float)) else took


def _failure(rc: int, log: Path) -> str:
    """The error a failed worker leaves in the ledger: `_ending`, and its log where a signal left it no words."""
    return _ending(rc, log) + (f"; log {shlex.quote(str(log))}" if rc < 0 else "")


def _say(line: str, err: TextIO) -> None:
    """A progress line on `err`; one that cannot be written (a closed terminal or pipe) is dropped, so that it
    never stops the scheduler from stopping its workers."""
    try:
        print(line, file=err, flush=True)
    except (OSError, ValueError):
        pass


def _exit_on_stop_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_local's cleanup, which stops the workers


@dataclass
class _Running:
    job: Job
    proc: subprocess.Popen
    slot: int
    log: Path
    started: float
    lock: int  # the job's lock file descriptor (also held by the worker)


def run_local(plan: Plan, workdir: str | Path, *, retry_failed: bool = False, workers: int | None = None,
              err: TextIO | None = None, only: set[str] | None = None, dry_run: bool = False,
              out: TextIO | None = None, taking: Mapping[str, str] | None = None) -> int:
    """Run every job of `plan` that is missing (and failed/cancelled ones with `retry_failed`; of `only`, where
    given, those ids: see study.launch.select). Returns 0 when
    every job it ran succeeded and none was left unrun (a dependency that another command abandoned without a
    result leaves its dependents missing; a job failed or cancelled before, or blocked by one, is skipped without
    `retry_failed`), 1 otherwise. With `dry_run`, list those jobs on `out` (a line each, in the order they
    would be started, dependencies first) and run, write or lock nothing (`taking`: as `dry_run_states` reads it)."""
    err = err or sys.stderr
    if workers is not None and workers < 1:
        raise StudyError(f"--workers: expected an integer >= 1, got {workers}")
    workdir = Path(workdir).resolve()
    if dry_run:
        sel = select(plan.jobs, dry_run_states(plan, workdir, err, taking), retry_failed, only)
        for job in sel.to_run:
            print(f"{job.stage} {job.id} [{job_text(job)}]", file=out or sys.stdout)
        n_workers, devices = default_workers() if workers is None else (workers, [None] * workers)
        _say(f"[study] {plan.name}: would run {len(sel.to_run)} job(s) here"
             f"{todo_estimate(plan, sel.to_run, n_workers, devices)}; skipped: {sel.summary()}", err)
        return 0
    with command_lock(workdir) as lock_name:  # held while this command lives: its pending jobs read as live
        return _run_local(plan, workdir, Ledger(workdir, plan.name), retry_failed, workers, err, lock_name, only)


def _run_local(plan: Plan, workdir: Path, ledger: Ledger, retry_failed: bool, workers: int | None, err: TextIO,
               lock_name: str, only: set[str] | None) -> int:
    """run_local under its command lock: queue the jobs to run (their `pending` lines), then run them here."""
    with submit_lock(workdir):  # from reading the states to the `pending` lines, as a Slurm submit does
        states = locked_states(plan, workdir)  # Slurm submissions of these jobs too, as sacct sees them
        sel = select(plan.jobs, states, retry_failed, only)
        host, this_file, who = socket.gethostname(), grid_file(plan), user()
        # queued here: `study status` and other commands see them pending, not missing
        ledger.append([local_line(j, "pending", this_file, log=None, pid=os.getpid(), host=host, user=who,
                                  lock=lock_name) for j in sel.to_run])
    n_workers, devices = default_workers()
    if workers:
        n_workers, devices = workers, [devices[i % len(devices)] for i in range(workers)]
    threads = max(1, usable_cores() // n_workers)
    logs_dir(workdir).mkdir(parents=True, exist_ok=True)
    done = {j.id for j in plan.jobs if states[j.id].state == "done"}
    left_hint = ("`study submit --retry-failed` reruns them" if not retry_failed else  # then: --only left them out
                 "name their failed dependencies with --only too")
    code = take_snapshot(workdir) if plan.profile.snapshot_code and sel.to_run else None  # what the workers import
    local = _LocalRun(plan, workdir, ledger, err, list(sel.to_run), done, list(range(n_workers)), devices, threads,
                      sel.left_unfinished(), left_hint, code)
    running = (f"running {len(local.todo)} job(s) here with {n_workers} worker(s)"
               f"{workers_estimate(plan, local.todo, n_workers, devices)}" if local.todo else "no job to run here")
    _say(f"[study] {plan.name}: {running}; skipped: {sel.summary()}", err)
    if code is not None:
        _say(f"[study] {plan.name}: {copy_said(code)}", err)
    elsewhere = run_elsewhere([states[j] for j in sel.skipped.get("pending or running", [])])
    if elsewhere:
        _say(f"[study] {plan.name}: {elsewhere}", err)
    return local.run()


def workers_estimate(plan: Plan, todo: list[Job], n_workers: int, devices: list[str | None]) -> str:
    """Where the plan's wall-time estimate counted another number of CPU jobs at once (its profile's
    `max_parallel_jobs`) than the `n_workers` that run `todo` here (a one-core machine: 1 where the quickstart's
    profile counts 2), `todo`'s estimate with that many, for the run's first line; "" where they agree, where the
    workers run on GPUs (the estimate counts GPUs), or without an estimate."""
    counted = (getattr(plan, "estimate", None) or {}).get("max_parallel_jobs")
    if not todo or any(devices) or counted in (None, n_workers):
        return ""
    hours = _wall_hours(plan, todo, max_parallel_jobs=n_workers)
    return (f" (the plan's estimate counts {counted} job(s) at once: with {n_workers}, about "
            f"{format_duration(hours * 3600)})")


def _wall_hours(plan: Plan, todo: list[Job], **profile: Any) -> float:
    """The estimate's wall hours of `todo` alone, with the plan's profile changed by `profile` (its job slots)."""
    import dataclasses

    from study.grids.where import plan_of

    changed = dataclasses.replace(plan, profile=dataclasses.replace(plan.profile, **profile))
    return plan_of(changed, todo).estimate["wall_hours"]


def todo_estimate(plan: Plan, todo: list[Job], n_workers: int, devices: list[str | None]) -> str:
    """" (about 49 s with 2 worker(s), by profile local's rates)": the plan's estimate of `todo` alone (those a
    submit here would run, not the done ones), as `n_workers` workers run them (GPU workers: that many GPUs at
    once); "" where there is none to run."""
    if not todo:
        return ""
    gpus = sum(d is not None for d in devices)
    hours = _wall_hours(plan, todo, max_parallel_jobs=n_workers, **({"max_parallel_gpus": gpus} if gpus else {}))
    return (f" (about {format_duration(hours * 3600)} with {n_workers} worker(s), by profile "
            f"{plan.profile.name}'s rates)")


SHOWN_HOLDERS = 3  # the commands named, that run the jobs a local submit skips as pending or running


def run_elsewhere(live: list[JobState]) -> str:
    """Who runs the live jobs a submit skips (another command on the workdir, Slurm), so that a second user of the
    workdir knows whose run they are waiting for and where to look: empty without any."""
    by: dict[str, list[str]] = {}
    for st in live:
        where = st.holder or (f"{st.state} on Slurm" if st.slurm_id else st.state)
        by.setdefault(where, []).append(st.job_id)
    if not by:
        return ""
    said = [f"{len(ids)} {where}" for where, ids in list(by.items())[:SHOWN_HOLDERS]]
    more = len(by) - SHOWN_HOLDERS
    return (f"not run here, as run elsewhere: {'; '.join(said)}" + (f"; and {more} more" if more > 0 else "")
            + "; `study status` follows them")


@dataclass(eq=False)
class _LocalRun:
    """One local command's run of its jobs: those still to start, those its workers run, and how each ended."""
    plan: Plan
    workdir: Path
    ledger: Ledger
    err: TextIO
    todo: list[Job]  # to start, in topological order
    done: set[str]  # with a result, run here or outside this command
    free: list[int]  # the worker slots no job uses
    devices: list[str | None]  # per slot: its worker's CUDA_VISIBLE_DEVICES
    threads: int  # per worker
    left: list[str] = field(default_factory=list)  # skipped: failed or cancelled before, or blocked by such a job
    left_hint: str = ""  # what reruns them
    code: Path | None = None  # the copy of study's code the workers start in (study.launch.snapshot)
    failed: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    not_run: set[str] = field(default_factory=set)  # waiting for a dependency that ended outside without a result
    stopped: set[str] = field(default_factory=set)  # their worker killed by SIGTERM (`kill <pid>`): a stop, no failure
    stopped_waiting: set[str] = field(default_factory=set)  # not started: they wait for a stopped job
    full: str = ""  # the first job that failed for a full disk or quota, and its error: no job starts after it
    taken: set[str] = field(default_factory=set)  # found run by another command on this workdir, so not started
    running: dict[str, _Running] = field(default_factory=dict)
    announced: list[str] = field(default_factory=list)  # the outside runs last said to be waited for
    t0: float = field(default_factory=time.time)
    said_at: float = field(default_factory=time.time)  # the last progress line's time
    quiet_s: float = QUIET_FIRST_S  # how long without a line before the next heartbeat
    run_ids: set[str] = field(init=False)  # the jobs this command runs (less those found run by another)
    by_id: dict[str, Any] = field(init=False)  # every job of the plan
    eta: Eta = field(init=False)  # the time left, after the first job this command ran is done
    workers: int = field(init=False)
    this_file: str | None = field(init=False)  # the grid file, on each ledger line (another of its name is told apart)

    def __post_init__(self) -> None:
        self.run_ids = {j.id for j in self.todo}
        self.by_id = {j.id: j for j in self.plan.jobs}
        self.eta = Eta.of_plan(self.plan, self.todo)
        self.workers = len(self.free)
        self.this_file = grid_file(self.plan)

    def run(self) -> int:
        """Run the jobs to the end, or stop the workers on a stop signal or error; 0 when none failed or was left."""
        in_main_thread = threading.current_thread() is threading.main_thread()
        # a closed terminal (SIGHUP) or SIGTERM stops the workers as Ctrl-C does; they run in sessions of their own
        held = list(STOP_SIGNALS) if in_main_thread else []  # held while a worker starts, ignored in a stop
        stop_signals = [sig for sig in held if sig != signal.SIGINT]  # SIGINT: KeyboardInterrupt
        previous = {sig: signal.signal(sig, _exit_on_stop_signal) for sig in stop_signals}
        try:
            while self.todo or self.running:
                if not self.full:
                    self.start_ready()
                time.sleep(POLL_S)
                self.reap()
                self.heartbeat()
                self.todo = [j for j in self.todo if j.id not in self.cancelled]  # dependents of a job that just failed
                if self.full and not self.running:  # the rest stay missing (no ledger line): a plain rerun runs them
                    self.not_run.update(j.id for j in self.todo)
                    break
                if self.stalled() and not self.wait_outside():
                    break
        except BaseException:
            for sig in held:  # a second Ctrl-C or TERM must not cut the stop short: the workers come first
                previous.setdefault(sig, signal.signal(sig, signal.SIG_IGN))
            self.stop_workers()
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        others = self.still_run_elsewhere()
        unstarted = sorted(j.id for j in self.todo) if self.full else []
        self.progress((f"stopped: {self.full}; {len(unstarted)} job(s) not started, as they would fail alike: free "
                       "space, then `study submit --retry-failed` reruns the failed and runs these"
                       if self.full else "finished") + (
            f"; {len(self.failed)} failed: `study status` shows each one's error and log, and `study submit "
            "--retry-failed` reruns them (and the jobs cancelled with them)" if self.failed else "") + (
            self.stopped_text()) + (
            f"; {len(self.left)} job(s) not run, failed or cancelled before or blocked by such a dependency: "
            f"{self.left_hint}" if self.left else "") + (
            f"; {len(others)} job(s) still run by another command on this workdir ({', '.join(others)}): "
            "`study status` follows them" if others else ""))
        return 1 if self.failed or self.not_run or self.left or self.stopped else 0

    def stopped_text(self) -> str:
        """`; 1 stopped by a kill of its worker: ...` for the last line, or "" where none was."""
        if not self.stopped:
            return ""
        waiting = f" and runs the {len(self.stopped_waiting)} job(s) waiting" if self.stopped_waiting else ""
        them = "it" if len(self.stopped) == 1 else "them"
        return f"; {len(self.stopped)} stopped by a kill of its worker: `study submit` resumes {them}{waiting}"

    def still_run_elsewhere(self) -> list[str]:
        """The jobs this command left to another command on this workdir (`taken`) that it still runs: no result
        yet, their job lock held."""
        out = []
        for job_id in sorted(self.taken - self.done):
            lock = job_lock(self.workdir, job_id)
            if lock is None:
                out.append(job_id)
            else:
                os.close(lock)
        return out

    def progress(self, msg: str, heartbeat: bool = False) -> None:
        """A progress line: the time since the start, the jobs done, running, failed and cancelled, then `msg`; the
        next `heartbeat` is due QUIET_FIRST_S after a line of news, twice the last wait after a heartbeat's."""
        self.said_at = time.time()
        self.quiet_s = min(2 * self.quiet_s, QUIET_MAX_S) if heartbeat else QUIET_FIRST_S
        _say(f"[study] {format_clock(time.time() - self.t0):>7}  {len(self.done & self.run_ids)}/{len(self.run_ids)} "
             f"done, {len(self.running)} running, {len(self.failed)} failed, {len(self.cancelled)} cancelled | {msg}",
             self.err)

    def heartbeat(self) -> None:
        """Where jobs run and nothing was said for `quiet_s` (a long job: hours of training say nothing here until it
        ends), a line of what each running job's log last said in this run (its steps, its extraction's images; how
        long ago, where that is QUIET_FIRST_S or more), and the time left."""
        if not self.running or time.time() - self.said_at < self.quiet_s:
            return
        said = []
        for r in list(self.running.values())[:HEARTBEAT_JOBS]:
            seen = log_progress(r.log, since=RUN_HEADER)  # not an earlier run's line: a rerun appends to its log
            said.append(f"{r.job.stage} {r.job.id} {format_duration(time.time() - r.started)} in: "
                        + (seen.line if seen else "no progress line in its log yet")
                        + (f" (its log silent for {format_duration(seen.age_s)})"
                           if seen and seen.age_s >= QUIET_FIRST_S else ""))
        more = len(self.running) - HEARTBEAT_JOBS
        self.progress(f"running {'; '.join(said)}" + (f"; and {more} more" if more > 0 else "") + self.time_left(),
                      heartbeat=True)

    def time_left(self) -> str:
        """`; about 12 min left` (Eta), or empty with nothing left or no estimate yet."""
        now = time.time()
        todo = [j for j in self.todo if j.id not in self.cancelled]
        left = self.eta.left(todo, [(r.job, now - r.started) for r in self.running.values()], self.workers)
        return f"; about {format_left(left)} left" if left else ""

    def set_aside_dependents(self, stopped_id: str) -> list[str]:
        """Take the jobs to start that depend on `stopped_id` (transitively) out of this command's: their ledger
        lines read `missing` at once (not `pending` while the command runs its other jobs), so that `study status`
        says they wait for the next `study submit`, which runs them."""
        blocked, out = {stopped_id}, []
        for job in list(self.todo):  # topological order: a dependent comes after what it waits for
            if any(d in blocked for d in job.depends_on):
                blocked.add(job.id)
                self.todo.remove(job)
                out.append(job)
        self.ledger.append([local_line(job, "missing", self.this_file, log=None,
                                       error=f"not started: it waits for {stopped_id}, stopped by SIGTERM; "
                                             f"`study submit` runs it") for job in out])
        return [job.id for job in out]

    def cancel_dependents(self, failed_id: str) -> None:
        """Cancel the jobs to start that depend on `failed_id` or on a job cancelled with it (transitively)."""
        for job in self.todo:
            if job.id in self.cancelled:
                continue
            if any(d == failed_id or d in self.cancelled for d in job.depends_on):
                self.cancelled.add(job.id)
                self.ledger.append([local_line(job, "cancelled", self.this_file,
                                               error=f"dependency {failed_id} failed", log=None)])
                self.progress(f"cancelled {job.stage} {job.id} (dependency {failed_id} failed)")

    def ready(self, job: Job) -> bool:
        """Every dependency done, here or outside this command (another grid's run of a shared job)."""
        for d in job.depends_on:
            if d not in self.done and d not in self.run_ids and result_done(self.workdir, d):
                self.done.add(d)
        return all(d in self.done for d in job.depends_on)

    def stalled(self) -> bool:
        """Jobs to start, but none running here and none ready: only runs outside this command can move them on."""
        return bool(self.todo) and not self.running and not any(self.ready(j) for j in self.todo)

    def outside_live(self, waiting: list[Any]) -> list[str]:
        """The dependencies of `waiting` that still run outside this command (on Slurm, or in another command here),
        each as "<stage> <id> (<where>)". A job this command queued (its own `pending` event) but found taken by
        another command is live only while that command holds the job's lock: the other may end without a result,
        or without a word (Ctrl-C)."""
        deps = {d for j in waiting for d in j.depends_on
                if d not in self.done and d not in self.run_ids and d in self.by_id}
        now = grid_states(self.plan, self.workdir, [self.by_id[d] for d in deps])
        latest = self.ledger.replay_with_shared().latest
        live = []
        for d, st in sorted(now.items()):
            if st.state not in LIVE:
                continue
            e = latest.get(d, {})
            if st.slurm_id is None and e.get("pid") == os.getpid():
                lock = job_lock(self.workdir, d)
                if lock is not None:
                    os.close(lock)
                    continue
                where = "another command on this workdir"
            elif st.slurm_id is not None:
                where = f"Slurm job {st.slurm_id}"
            elif st.holder or e.get("pid"):
                where = st.holder or f"{st.state} in the command of pid {e['pid']} on {e.get('host')}"
            else:  # no command holds it: an interrupted Slurm submit's array may have queued it
                where = st.detail or st.state
            live.append(f"{self.by_id[d].stage} {d} ({where})")
        return live

    def start_ready(self) -> None:
        """Start every ready job a free worker can take; one another command runs or has just finished is not run."""
        for job in list(self.todo):
            if not self.free or self.full:
                break
            if job.id in self.cancelled:
                self.todo.remove(job)
                continue
            if not self.ready(job):
                continue
            self.todo.remove(job)
            try:
                lock = job_lock(self.workdir, job.id)
            except OSError as e:  # its lock file not ours to open (another user's, made without group write)
                if e.errno not in WRITE_REFUSED:
                    raise
                self.not_started(job, e)
                continue
            if lock is None or result_done(self.workdir, job.id):  # another command runs it, or just finished it
                self.run_ids.discard(job.id)  # from now on waited for like a dependency run elsewhere
                if lock is None:
                    self.taken.add(job.id)
                    self.progress(f"not starting {job.stage} {job.id}: another command on this workdir runs it")
                else:
                    os.close(lock)
                    self.done.add(job.id)
                continue
            slot = self.free.pop(0)
            saved = checkpoint_text(checkpoint_steps(self.workdir, job.id))  # an interrupted run's: it resumes there
            try:
                with stop_signals_held():  # a stop then knows every worker it must stop
                    self.running[job.id] = _start(job, self.plan.name, self.workdir, logs_dir(self.workdir), slot,
                                                  self.devices[slot], self.threads, self.ledger, lock, self.this_file,
                                                  self.code)
            except StartRefused as e:
                os.close(lock)
                self.free = sorted([*self.free, slot])
                self.not_started(job, e.error)
                continue
            log = shlex.quote(str(self.running[job.id].log))  # a path with spaces: one word to copy
            self.progress(f"started {job.stage} {job.id} [{job_text(job)}]" + (f" from its {saved}" if saved else "")
                          + f" (log {log})")

    def reap(self) -> None:
        """Record each worker that has ended, done or failed (its dependents cancelled), and free its slot. Done is
        a result that reads, as for `study status`, also where the worker was killed (or crashed) after writing it:
        its interpreter's exit takes seconds (torch's), and its dependents need nothing more."""
        for job_id, r in list(self.running.items()):
            rc = r.proc.poll()
            if rc is None:
                continue
            del self.running[job_id]
            os.close(r.lock)
            self.free.append(r.slot)
            self.free.sort()
            if result_done(self.workdir, job_id):
                self.done.add(job_id)
                self.ledger.append([local_line(r.job, "done", self.this_file, log=str(r.log))])
                took = time.time() - r.started
                self.eta.finish(r.job, job_seconds(self.workdir, job_id, took))
                late = f" (then its worker ended, {_ending(rc, r.log)})" if rc else ""
                self.progress(f"done {r.job.stage} {job_id} in {format_duration(took)}{late}{self.time_left()}")
            elif rc == -signal.SIGTERM:  # `kill <worker>`: it checkpointed (where it trains), then ended by it
                self.stopped.add(job_id)
                error = ("stopped by SIGTERM (a kill of its worker), after a checkpoint where it trains: "
                         "`study submit` resumes it")
                self.ledger.append([local_line(r.job, "missing", self.this_file, log=str(r.log), error=error)])
                waiting = self.set_aside_dependents(job_id)
                self.stopped_waiting.update(waiting)
                self.progress(f"stopped {r.job.stage} {job_id} [{job_text(r.job)}] (SIGTERM: a kill of its worker); "
                              "`study submit` resumes it" + (f", and runs the {len(waiting)} job(s) waiting for it "
                                                             "(not started here)" if waiting else ""))
            else:
                self.failed.add(job_id)
                error = _failure(rc, r.log)
                self.ledger.append([local_line(r.job, "failed", self.this_file, log=str(r.log), error=error)])
                said = _ending(rc, r.log) if rc < 0 else f"exit code {rc}"  # killed: by what, not "exit code -9"
                self.progress(f"FAILED {r.job.stage} {job_id} [{job_text(r.job)}] ({said}); "
                              f"log {shlex.quote(str(r.log))}")
                self.after_failure(r.job, error)

    def not_started(self, job: Job, e: OSError) -> None:
        """A job this command could not start for a write refused (`StartRefused`, or its lock file's): failed, as
        if its worker had failed so, and the command goes on with the others (a shared workdir's file of another
        user's, made without group write, fails the jobs that write it, not every job the command runs)."""
        self.failed.add(job.id)
        error = f"not started: {write_refused(e)}"
        self.ledger.append([local_line(job, "failed", self.this_file, log=None, error=error)])
        self.progress(f"FAILED {job.stage} {job.id} [{job_text(job)}] ({error})")
        self.after_failure(job, error)

    def after_failure(self, job: Job, error: str) -> None:
        """A full disk or quota's failure stops jobs starting (`disk_full`); the failed job's dependents are
        cancelled."""
        if not self.full and disk_full(error):
            self.full = f"{job.stage} {job.id} failed for a full disk or quota ({error})"
            self.progress(f"{self.full}: no more jobs start" + ("; the running ones end" if self.running else ""))
        self.cancel_dependents(job.id)

    def wait_outside(self) -> bool:
        """Wait OUTSIDE_POLL_S for dependencies run outside this command (True; said when they change, and again
        after `quiet_s`), or, with none live, leave the jobs waiting for them not run (False)."""
        live = self.outside_live(self.todo)  # dependencies run outside this command (a grid sharing them)
        if live:
            again = live == self.announced  # said already: again, as a heartbeat, after `quiet_s`
            if not again or time.time() - self.said_at >= self.quiet_s:
                self.announced = live
                self.progress(f"{'still ' if again else ''}waiting for {', '.join(live)}", heartbeat=again)
            time.sleep(OUTSIDE_POLL_S)
            return True
        # left without a ledger line: their `pending` lines read missing once this command ends, so a plain rerun
        # runs them (after their dependency, or once --retry-failed reruns a failed one)
        gone = sorted({d for j in self.todo for d in j.depends_on if d not in self.done})
        newer = [d for d in gone if written_by_newer(self.workdir, d)]
        gone = [d for d in gone if d not in newer]
        self.not_run.update(j.id for j in self.todo)
        said = ([f"{', '.join(gone)} ended outside this command without a result"] if gone else []) + (
            [f"{', '.join(newer)} have results a newer version of study wrote, which this one does not read (update "
             "this checkout)"] if newer else [])
        self.progress(f"{len(self.todo)} job(s) not run ({', '.join(j.id for j in self.todo)}): their dependencies "
                      f"{'; '.join(said)}; they stay missing: `study submit` runs them"
                      + (" (`--retry-failed` if a dependency failed)" if gone else ""))
        return False

    def stop_workers(self) -> None:
        """SIGUSR2 to every worker (checkpoint, then end); those alive after one shared STOP_GRACE_S are killed."""
        for r in self.running.values():  # our own worker processes, by their handle
            r.proc.send_signal(signal.SIGUSR2)  # the training loop: checkpoint, then the default action (end)
        if self.running:  # after the signals: stderr may be a closed terminal or pipe (SIGHUP, `| head`)
            _say(f"[study] stopping {len(self.running)} worker(s): each checkpoints at its next step, then ends (a "
                 f"rerun resumes there); killed after {STOP_GRACE_S:.0f} s", self.err)
        deadline = time.time() + STOP_GRACE_S
        for r in self.running.values():  # one deadline for all of them, not one each
            try:
                r.proc.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
            os.close(r.lock)


class StartRefused(Exception):
    """`_start` could not write the job's call file or open its log (WRITE_REFUSED: a permission, a full disk): no
    worker was started. `error`: that OSError."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _start(job: Job, grid: str, workdir: Path, logs: Path, slot: int, device: str | None, threads: int,
           ledger: Ledger, lock: int, this_file: str | None = None, code: Path | None = None) -> _Running:
    """Start `job`'s worker (in `code`, the copy of study's code it imports, where given), its `running` line
    written."""
    log = logs / f"{job.id}.log"
    try:
        job_file = write_job_file(workdir, job)
        f = open(log, "ab")
    except OSError as e:
        if e.errno not in WRITE_REFUSED:
            raise
        raise StartRefused(e) from e
    env = dict(os.environ, STUDY_THREADS=str(threads), OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1",
               STUDY_MANIFESTS=str(manifests_dir().resolve()), STUDY_WORKDIR=str(workdir),
               **{PARENT_ENV: str(os.getpid()),  # the worker ends when this process does (worker._end_with_parent)
                  LOCK_FD_ENV: str(lock),  # and its forked children do not hold the lock (worker._lock_not_inherited)
                  TERM_ENDS_ENV: "1"})  # `kill <worker>` stops its job after a checkpoint (Slurm's trains on)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    if code is not None:  # started there, it enters this command's folder again (worker.main)
        env.update({SUBMIT_DIR: os.getcwd(), CODE_DIR_ENV: str(code), "PYTHONPATH": python_path(code, env)})
    with f:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")  # local time with its UTC offset: TZ may differ on a rerun
        f.write(f"{RUN_HEADER}{stamp} {job.stage} job {job.id}\n".encode())
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "study.launch.local.worker", "--workdir", str(workdir),
                                 "--job", str(job_file), "--grid", grid],
                                stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                pass_fds=(lock,), cwd=code)  # the worker holds the lock too, for as long as it lives
    ledger.append([local_line(job, "running", this_file, log=str(log), pid=proc.pid, host=socket.gethostname(),
                              user=user())])
    return _Running(job, proc, slot, log, time.time(), lock)
