"""`study submit --cluster slurm`: queue what is missing as submitit job arrays, write the ledger, return.

Arrays: one per (stage, resources, dependency set) -- an sbatch dependency holds for a whole array, so the
evaluations of one pretraining job share an array that waits for exactly that job (`afterok:<array>_<task>`),
and a failed pretraining job cancels only its own evaluations (--kill-on-invalid-dep=yes). Each array is split
below the cluster's MaxArraySize. Before the first sbatch, `preflight` asks Slurm what it would refuse (a partition,
a time limit, a placement): refused there, nothing is queued.

Where sbatch refuses an array on a limit of how many jobs the user (or account) may have in Slurm's queue at once
(MaxSubmitJobs of a QOS or association, GrpSubmitJobs: each array task counts as one job), the array is tried again in
halves, down to one job, so that what fits is queued; then the submit stops (its dependents are never queued to wait on
a job that is not), saying how many were queued and that the same `study submit` queues the rest once some have ended.

Each array's sbatch runs with the submitting shell's Slurm variables removed (SLURM_*, SBATCH_*, SRUN_*, as
`submitit.helpers.clean_env` does; SLURM_CONF kept): a submit from inside salloc or srun would otherwise pass them to
the jobs (SLURM_MEM_PER_CPU beside --mem is an error there), and SBATCH_* would override the profile's options.
From its `intent` line (written after each job's jobs/<id>/job.json, which with the intent's `call` rebuilds the
tasks' calls) to its `queued` lines, SIGINT, SIGHUP and SIGTERM are held (delivered just after): a Ctrl-C or a
dropped SSH session during sbatch never leaves an array queued whose tasks' call files were never named.
Should the command die there all the same (SIGKILL), the next command finds the array by name (`recover`) and
writes the missing call files. An sbatch that waits on a busy or unreachable controller (it retries for minutes) is
explained after SBATCH_PATIENCE_S, with the sbatch pid to kill to stop at once.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, TextIO

from study.atomic import atomic_path
from study.grids.profile import CONTROL, MAX_REQUEUES
from study.errors import StudyError
from study.launch.ledger import Ledger, now, user, workdir_ledgers
from study.launch.locks import submit_lock
from study.launch.runner import CODE_DIR_ENV, SUBMIT_DIR, SlurmTask, job_dir, read_job_file, write_job_file
from study.launch.signals import stop_signals_held
from study.launch.select import Selection, select
from study.launch.slurm import state as slurm_state
from study.launch.slurm.params import (array_chunks, cluster_max_array_size, dependency_string, max_array_size,
                                       slurm_config, slurm_parameters)
from study.launch.slurm.preflight import ACCOUNTING_POLICY, check_before_queueing, placement_said
from study.launch.slurm.sbatch import sbatch_script, submission_env
from study.launch.snapshot import code_folder, copy_said, name_the_commit, take_snapshot
from study.launch.grid_states import (dry_run_states, grid_file, locked_states, other_accounts, outside_plan,
                                      renamed_live)
from study.paths import manifests_dir

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan

SBATCH_PATIENCE_S = 30.0  # how long an sbatch may run, stop signals held, before the command says why it waits
# sbatch's refusal for a count of queued jobs at a limit: the reason line the controller sends beside the error
# (QOSMaxSubmitJobPerUserLimit, MaxSubmitJobsPerAccount, AssocMaxSubmitJobLimit, QOSGrpSubmitJobsLimit,
# AssocGrpSubmitJobsLimit, as Slurm 22.05 words them), or where none came its error for any limit of the accounting
# policy (whose limits per job `sbatch --test-only` of one job already passed: what is left is the count)
SUBMIT_REASON = re.compile(r"(QOS|Assoc)\w*Submit\w*Limit|MaxSubmitJobsPerAccount")
SUBMIT_LIMIT = re.compile(f"{SUBMIT_REASON.pattern}|{ACCOUNTING_POLICY.pattern}")


class _OverSubmitLimit(StudyError):
    """sbatch refused an array (recorded lost) on a limit of queued jobs (`SUBMIT_LIMIT`); `said`: what it said."""

    def __init__(self, said: str):
        super().__init__(said)
        self.said = said


def recover_all(workdir: str | Path) -> None:
    """`recover` every grid's ledger of the workdir: an interrupted submit of another grid may have queued jobs
    this grid shares. The caller holds the submit lock."""
    for ledger in workdir_ledgers(workdir):
        recover(ledger)


def recover(ledger: Ledger) -> None:
    """Settle every intent without `queued` lines: found by its job name -> its jobs are queued (and each task's
    call file that submitit had not yet named is written, `_write_missing_calls`); else lost. The caller holds the
    workdir's submit lock (a submit in flight has intents of its own still open)."""
    for intent in ledger.replay().open_intents:
        base = slurm_state.find_by_name(intent["name"], since=intent.get("at"))
        if base is None:
            ledger.append([{"event": "lost", "batch": intent["batch"]}])
            continue
        ids = _array_ids(base, len(intent["jobs"]))
        unwritten = _write_missing_calls(intent, ids)
        ledger.append(_queued_events(intent, intent["jobs"], ids, recovered=True))
        if unwritten:
            print(f"study: warning: Slurm queued array {intent['name']} ({base}), but the call files of its task(s) "
                  f"{', '.join(unwritten[:8])} cannot be written (an intent of an older study, jobs/<id>/job.json "
                  f"gone, or a folder not writable here): they will fail; `study submit --retry-failed` queues them "
                  f"again", file=sys.stderr, flush=True)


def _write_missing_calls(intent: dict, ids: list[str]) -> list[str]:
    """Write the call file (`<id>_submitted.pkl`) of each task of a recovered array that lacks one, rebuilt from the
    intent's `call` and each job's jobs/<id>/job.json (both written before sbatch); returns the ids it could not."""
    import submitit

    folder = Path(intent["folder"])
    missing = [(sid, job) for sid, job in zip(ids, intent["jobs"])
               if not submitit.core.utils.JobPaths(folder, job_id=sid).submitted_pickle.exists()]
    call = intent.get("call")
    try:
        workdir, grid, env, time_min = call["workdir"], call["grid"], dict(call["env"]), int(call["time_min"])
    except (TypeError, KeyError, ValueError):  # an intent of an older study, or an edited ledger
        return [sid for sid, _ in missing]
    unwritten = []
    for sid, job_id in missing:
        try:  # each on its own: one that cannot be written (a folder not ours) leaves the others, and the ledger
            job = read_job_file(job_dir(workdir, job_id) / "job.json")
            _write_task_pickles(folder, [sid], SlurmTask(), [(job, workdir, grid, env)], time_min)
        except (OSError, ValueError, KeyError):
            unwritten.append(sid)
    return unwritten


def _array_ids(base: str, n: int) -> list[str]:
    """The Slurm ids of the n tasks of the array `base` (a lone job has no task suffix)."""
    return [base] if n == 1 else [f"{base}_{i}" for i in range(n)]


def _queued_events(intent: dict, job_ids: list[str], slurm_ids: list[str], recovered: bool = False) -> list[dict]:
    """The `queued` lines of an intent's jobs, given their Slurm ids; `code`: the copy of study's code they import
    (study.launch.snapshot), where the intent's call names one; `user`: who ran the submit that queued them, where the
    intent says (an array another user's interrupted submit queued is recorded as theirs)."""
    call = intent.get("call") if isinstance(intent.get("call"), dict) else {}
    env = call.get("env") if isinstance(call.get("env"), dict) else {}  # an intent of an older study: none
    code = env.get(CODE_DIR_ENV)
    return [{"event": "queued", "batch": intent["batch"], "job": j, "stage": intent["stage"], "config_hash": j,
             "slurm_job_id": sid, "array_job_id": sid.split("_")[0], "submitted_at": intent["at"],
             "folder": intent["folder"], **({"grid_file": intent["grid_file"]} if intent.get("grid_file") else {}),
             **({"user": intent["user"]} if intent.get("user") else {}),
             **({"code": code} if isinstance(code, str) else {}), **({"recovered": True} if recovered else {})}
            for j, sid in zip(job_ids, slurm_ids)]


def _queued_anyway(intent: dict, said: str) -> list[str] | None:
    """After sbatch exited with an error, whether Slurm queued the array anyway (a controller timeout can answer an
    error for a submission it accepted): its task ids, or None when Slurm knows no such array. When Slurm cannot
    be asked, a StudyError: the intent stays open for the next command to settle."""
    try:
        base = slurm_state.find_by_name(intent["name"], since=intent["at"])
    except StudyError as e:
        raise StudyError(f"sbatch failed ({said}), and whether it queued array {intent['name']!r} anyway is not known: "
                         f"{e}; the next submit, status or cancel asks Slurm again before deciding") from None
    return None if base is None else _array_ids(base, len(intent["jobs"]))


def _write_task_pickles(folder: Path, ids: list[str], task: Any, calls: list[tuple], time_min: int) -> None:
    """What submitit writes once sbatch returns an id: each task's call where the task looks for it
    (`<id>_submitted.pkl`, waited for 60 s when the task starts), written atomically."""
    import submitit

    for sid, args in zip(ids, calls):
        target = submitit.core.utils.JobPaths(folder, job_id=sid).submitted_pickle
        delayed = submitit.helpers.DelayedSubmission(task, *args)
        delayed.set_timeout(time_min, MAX_REQUEUES)
        with atomic_path(target) as tmp:
            delayed.dump(tmp)


def _groups(jobs: list[Job], stage: str, dep_ids: dict[str, str]) -> dict[tuple, list[Job]]:
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        if job.stage != stage:
            continue
        deps = tuple(sorted(dep_ids[d] for d in job.depends_on if d in dep_ids))
        groups.setdefault((job.resources, deps), []).append(job)
    return groups


def slurm_unsafe(path: str) -> str:
    """Why Slurm cannot take `path` in a job script's `#SBATCH --output=` and srun's `--output` (its log paths), or ""
    where it can. Quoted as the shell quotes it, a path may hold spaces, quotes, `$`, parentheses, `#`, non-ASCII."""
    if "%" in path:
        return ("a '%' (Slurm reads it in a log path as a pattern, %j the job id: the tasks' logs would go to a "
                "folder that does not exist)")
    if "\\" in path:
        return ("a backslash (sbatch's #SBATCH reader drops it, even quoted, and in a log path it turns Slurm's "
                "patterns off: the job fails to start, with no log)")
    if CONTROL.search(path):
        return "a line break or control character (sbatch reads its options one line each)"
    return ""


def submit_slurm(plan: Plan, workdir: str | Path, *, dry_run: bool = False, retry_failed: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None, only: set[str] | None = None,
                 taking: Mapping[str, str] | None = None) -> int:
    """Queue the plan's missing jobs (see module docstring; of `only`, where given, those ids: see
    study.launch.select); with `dry_run`, print each array's sbatch script (`taking`: as `dry_run_states` reads
    it)."""
    plan.profile.require_partition()
    workdir = Path(workdir).resolve()
    refused = slurm_unsafe(str(workdir))
    if refused:
        raise StudyError(f"--cluster slurm: workdir {str(workdir)!r} holds {refused}: choose a workdir without "
                         "(spaces, quotes, `$`, parentheses and non-ASCII letters are fine)")
    with nullcontext() if dry_run else submit_lock(workdir):  # from reading the states to the last `queued` line
        return _submit(plan, workdir, dry_run, retry_failed, out or sys.stdout, err or sys.stderr, only, taking)


def _submit(plan: Plan, workdir: Path, dry_run: bool, retry_failed: bool, out: TextIO, err: TextIO,
            only: set[str] | None, taking: Mapping[str, str] | None) -> int:
    ledger = Ledger(workdir, plan.name)
    # under the submit lock this command holds, unless a dry run
    states = dry_run_states(plan, workdir, err, taking) if dry_run else locked_states(plan, workdir)
    sel: Selection = select(plan.jobs, states, retry_failed, only)
    held = _held_outside_slurm(sel.to_run, states)
    to_run = [j for j in sel.to_run if j.id not in held]
    missing = [cmd for cmd in ("sbatch", "srun") if not shutil.which(cmd)] if to_run and not dry_run else []
    if missing:
        raise StudyError(f"--cluster slurm: {' and '.join(missing)} not found on this host's PATH; submit from a "
                         f"Slurm login node, or run the jobs here with --cluster local")
    code = _code_copy(plan, workdir, dry_run) if to_run else None  # taken before the checks, which may be slow
    # nothing to queue: a copy of this code taken before its edit was committed names the commit all the same
    named = name_the_commit(workdir) if not (to_run or dry_run) and plan.profile.snapshot_code else None
    check_before_queueing(plan, workdir, to_run, dry_run, err)
    for said in other_accounts(plan.profile, states):  # left where they are: said before what is queued
        print(f"study: warning: {said}", file=err, flush=True)
    for said in _live_off_plan(plan, workdir, to_run):
        print(f"study: warning: {said}", file=err, flush=True)
    # Slurm id of every dependency that is not done: live ones from the ledger, new ones as they are queued
    dep_ids = {j: st.slurm_id for j, st in states.items() if st.state in ("pending", "running") and st.slurm_id}
    arrays = _Arrays(plan, workdir, ledger, dep_ids, dry_run, out, err, len(to_run), code)
    for stage in ("pretrain", "evaluate"):
        arrays.add_stage(stage, to_run)
    verb = "would queue" if dry_run else "queued"
    print(f"[study] {plan.name}: {verb} {arrays.n_jobs} job(s) in {arrays.n_arrays} array(s); skipped: "
          f"{sel.summary()}" + (f", {len(held)} waiting for a dependency that runs outside Slurm (submit again once "
                                f"it is done)" if held else "") + ("" if dry_run else f"; ledger {ledger.path}"),
          file=err, flush=True)
    if dry_run and to_run:  # the plan's estimate counts every job of the grid, done or not
        print(f"[study] {plan.name}: {queued_estimate(plan, to_run)}", file=err, flush=True)
    if arrays.n_jobs and arrays.code is not None:
        print(f"[study] {plan.name}: {copy_said(arrays.code, dry_run)}", file=err, flush=True)
    theirs: dict[str, int] = {}  # the live jobs skipped that another grid or user queued (`queued_by`), by whom
    for j in sel.skipped.get("pending or running", []):
        if states[j].holder:
            theirs[states[j].holder] = theirs.get(states[j].holder, 0) + 1
    if theirs:
        print(f"[study] {plan.name}: of those pending or running, {'; '.join(f'{n} {h}' for h, n in theirs.items())}"
              f" (`study status` follows them)", file=err, flush=True)
    if named:
        print(f"[study] {plan.name}: the copy of this code that a submit took before its edit was committed "
              f"({code_folder(workdir)}) names the commit now, {named}: its queued jobs that start from now on "
              f"record it", file=err, flush=True)
    return 0


def queued_estimate(plan: Plan, to_run: list[Any]) -> str:
    """The estimate of the jobs a submit would queue alone (`study plan`'s counts every job of the grid, those done
    too), by the profile's rates and parallel GPUs or jobs: what is left to pay for."""
    from study.grids.render import estimate_said
    from study.grids.where import plan_of

    e = plan_of(plan, to_run).estimate
    return (f"estimate of the {len(to_run)} job(s) it would queue alone (profile {e['profile']}; `study plan` "
            f"counts the whole grid, done jobs too): {estimate_said(e)}")


def _code_copy(plan: Plan, workdir: Path, dry_run: bool) -> Path | None:
    """The copy of study's code the jobs import (study.launch.snapshot), taken once the submit knows it has jobs to
    queue, before it asks Slurm whether it takes them (`check_before_queueing`: sbatch --test-only, sacctmgr), so
    that an edit of the checkout meanwhile reaches none of them (an edit during the plan's checks and the reading of
    the jobs' states, before it, still does; a dry run's scripts name where it would be, and no copy is made); None
    where the profile's `snapshot_code` is false."""
    if not plan.profile.snapshot_code:
        return None
    return code_folder(workdir) if dry_run else take_snapshot(workdir)


def _live_off_plan(plan: Plan, workdir: Path, to_run: list[Job]) -> list[str]:
    """What to say, where this submit queues jobs, of the Slurm jobs this grid file queued that are still queued or
    running but no longer in its plan (`grid_states.outside_plan`): those with the settings of a job of `to_run`,
    which an older version of study queued under another id (`grid_states.renamed`): each runs twice, the older
    one's result counting for no job of the grid; and those an earlier version of the grid file queued (an edit
    changed their settings), whose results will count for no job of it either (before, only `study status` named
    them, and a submit after an edit queued the new jobs beside them in silence). Empty where there are none."""
    ids = {j.id for j in to_run}
    if not ids:  # nothing queued: `study status` names them
        return []
    latest = Ledger(workdir, plan.name).replay().latest
    live, _ = outside_plan(plan, workdir, latest)
    if not live:
        return []
    older = renamed_live(plan, workdir, latest, live)
    said = []
    twins = {sid: jobs for sid, jobs in older.items() if jobs[1] in ids}
    if twins:
        listed = ", ".join(f"{new} as {old} (slurm {sid})" for sid, (old, new) in list(twins.items())[:4])
        more = f" and {len(twins) - 4} more" if len(twins) > 4 else ""
        said.append(f"{len(twins)} job(s) queued now have the same settings as Slurm job(s) an older version of study "
                    f"queued under other ids, still queued or running: {listed}{more}. This version of study gives "
                    f"those settings other ids, so both run and the older one's result counts for no job of the grid "
                    f"(`study status` names it); `scancel {' '.join(twins)}` stops the older ones")
    edited = [sid for sid in live if sid not in older]
    if edited:
        more = f" and {len(edited) - 4} more" if len(edited) > 4 else ""
        said.append(f"{len(edited)} Slurm job(s) queued by an earlier version of this grid file are still queued or "
                    f"running ({', '.join(edited[:4])}{more}): the grid file no longer asks for their settings, so "
                    f"their results will count for no job of it (`study status` names them); `scancel "
                    f"{' '.join(edited)}` stops them alone")
    return said


def _held_outside_slurm(to_run: list[Any], states: dict) -> list[str]:
    """Ids of the jobs of `to_run` (topological order) that depend on a job live outside Slurm (a local run: it gives
    no Slurm id to wait for) or on such a held job: they wait for a later submit."""
    outside = {j for j, st in states.items() if st.state in ("pending", "running") and not st.slurm_id}
    held: list[str] = []
    for job in to_run:
        if any(d in outside or d in held for d in job.depends_on):
            held.append(job.id)
    return held


class _Arrays:
    """The arrays of one submit, queued (with `dry_run`, printed) one at a time; `dep_ids` (job id -> Slurm id of
    each dependency not done) gains each array's ids as it is queued, for the arrays after it to wait on."""

    def __init__(self, plan: Plan, workdir: Path, ledger: Ledger, dep_ids: dict[str, str], dry_run: bool,
                 out: TextIO, err: TextIO, total: int = 0, code: Path | None = None):
        self.plan, self.workdir, self.ledger, self.dep_ids = plan, workdir, ledger, dep_ids
        self.code = code  # the copy of study's code the jobs import (`_code_copy`); None: the study where they start
        self.total = total  # jobs this submit queues, all going well
        self.dry_run, self.out, self.err = dry_run, out, err
        self.limit = max_array_size(plan.profile, cluster_max_array_size(slurm_config()))
        self.submit_dir = os.getcwd()  # where the jobs read the grid's relative paths from
        self.task = SlurmTask()
        self.n_arrays, self.n_jobs = 0, 0

    @functools.cached_property
    def env(self) -> dict[str, str]:
        """The variables each job's call sets (`SlurmTask`), recorded in each array's `intent` line."""
        return {"STUDY_MANIFESTS": str(manifests_dir().resolve()), "STUDY_WORKDIR": str(self.workdir),
                SUBMIT_DIR: self.submit_dir, **({CODE_DIR_ENV: str(self.code)} if self.code is not None else {})}

    def add_stage(self, stage: str, to_run: list[Any]) -> None:
        """Every job of `stage` in `to_run`: one array per (resources, dependencies), split below the size limit; one
        refused on a limit of queued jobs is tried again in halves, and one job refused so stops the submit."""
        for (resources, deps), jobs in _groups(to_run, stage, self.dep_ids).items():
            chunks = array_chunks(jobs, self.limit)
            while chunks:
                chunk = chunks.pop(0)
                self.n_arrays += 1
                batch = uuid.uuid4().hex
                name = f"study-{self.plan.name}-{stage}-{batch[:8]}"
                folder = slurm_state.submitit_folder(self.workdir, name)
                params = slurm_parameters(self.plan.profile, stage, resources, job_name=name,
                                          dependency=dependency_string(deps), array_size=len(chunk), code=self.code)
                try:
                    ids = (self._print(stage, chunk, params, folder) if self.dry_run else
                           self._queue(stage, chunk, params, folder, batch, name))
                except _OverSubmitLimit as e:
                    self.n_arrays -= 1
                    if len(chunk) == 1:
                        raise StudyError(self._limit_reached(e.said)) from None
                    half = (len(chunk) + 1) // 2
                    chunks[:0] = [chunk[:half], chunk[half:]]
                    continue
                self.dep_ids.update({j.id: sid for j, sid in zip(chunk, ids)})
                self.n_jobs += len(chunk)

    def _limit_reached(self, said: str) -> str:
        """What a submit stopped by a limit of queued jobs (sbatch said `said`) says: what it queued, how to go on.
        Without Slurm's reason line, where no job was queued, the refusal may be a limit per job that `sbatch
        --test-only` did not see (it did not answer): that is said too."""
        reason = SUBMIT_REASON.search(said)
        limit = ("a limit on how many jobs you may have in Slurm's queue at once (MaxSubmitJobs of your QOS or "
                 "association; each array task counts as one job)" if reason else
                 "Slurm's accounting policy, most likely its limit on how many jobs you may have in the queue at once "
                 "(MaxSubmitJobs of your QOS or association; each array task counts as one job)"
                 + ("" if self.n_jobs else ", else a limit of yours per job (time, CPUs, memory, GPUs: change the "
                    "profile or the grid's resources)"))
        return (f"sbatch refused to queue more jobs ({said}): {limit}. Queued by this submit: {self.n_jobs} job(s) in "
                f"{self.n_arrays} array(s); not queued: {self.total - self.n_jobs}. Run the same `study submit` again "
                f"once some of your jobs have left the queue (squeue -u {user()}; `study status` counts those not "
                f"queued as missing): it queues the rest, to wait on those queued. The profile's max_parallel_jobs "
                f"caps how many run at once, not how many are queued")

    def _print(self, stage: str, chunk: list[Any], params: dict, folder: Path) -> list[str]:
        """Write the array's sbatch script to `out` -> placeholder ids for its dependents' scripts."""
        n = self.n_arrays
        self.out.write(f"# ---- array {n}: {stage}, {len(chunk)} job(s): {', '.join(j.id for j in chunk)}\n")
        self.out.write(sbatch_script(params, folder, len(chunk), self.plan.profile.python) + "\n")
        return [f"<array{n}>" if len(chunk) == 1 else f"<array{n}>_{i}" for i in range(len(chunk))]

    def _queue(self, stage: str, chunk: list[Any], params: dict, folder: Path, batch: str, name: str) -> list[str]:
        """Queue the array, its `intent` line first -> its Slurm ids."""
        import submitit

        # a fresh executor per array: parameters (the dependency above all) never leak between arrays
        executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES, python=self.plan.profile.python)
        for j in chunk:  # what `recover` rebuilds the tasks' calls from
            write_job_file(self.workdir, j)
        intent = {"event": "intent", "batch": batch, "name": name, "cluster": "slurm", "stage": stage,
                  "jobs": [j.id for j in chunk], "folder": str(folder), "at": now(), "user": user(),
                  "grid_file": grid_file(self.plan), "call": {"workdir": str(self.workdir), "grid": self.plan.name,
                                                              "env": self.env, "time_min": params["time"]}}
        executor.update_parameters(**params)
        args = (str(self.workdir), self.plan.name, self.env)
        # from the intent to the `queued` lines; Ctrl-C lands after them
        with stop_signals_held(), _said_if_slow(self.err, name):
            self.ledger.append([intent])
            ids, refused = _sbatch(executor, self.task, chunk, args, intent, self.ledger)
        if refused is not None:  # squeue/sacct may take minutes: not with the signals held
            ids = _settle_refused(refused, self.task, chunk, args, intent, self.ledger, self.err, self.n_arrays,
                                  self.n_jobs, self.plan.profile)
        return ids


def _sbatch(executor: Any, task: Any, chunk: list[Any], args: tuple, intent: dict,
            ledger: Ledger) -> tuple[list[str], str | None]:
    """Queue one array through submitit (sbatch, in the environment of `submission_env`) and write its `queued`
    lines -> (its Slurm ids, None); when sbatch reports an error -> ([], what it said: `_error_said`)."""
    import submitit

    try:
        with submission_env(), executor.batch():
            submitted = [executor.submit(task, j, *args) for j in chunk]
    except submitit.core.utils.FailedJobError as e:
        return [], _error_said(str(e))
    ids = [s.job_id for s in submitted]
    ledger.append(_queued_events(intent, [j.id for j in chunk], ids))
    return ids, None


def _error_said(stderr: str) -> str:
    """sbatch's error lines (`sbatch: error: ...`: the controller's reason first where it sends one, as
    QOSMaxSubmitJobPerUserLimit, then "Batch job submission failed: ..."), warnings left out; else its last line."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("sbatch: error:")]
    return " ".join(errors or lines[-1:]) or "sbatch gave no message"


@contextmanager
def _said_if_slow(err: TextIO, name: str) -> Iterator[None]:
    """Once the block (queueing array `name`, stop signals held) has run SBATCH_PATIENCE_S: say on `err` what it
    waits on and how to stop it now."""
    timer = threading.Timer(SBATCH_PATIENCE_S, _say_slow, (err, name))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _say_slow(err: TextIO, name: str) -> None:
    pids = _child_pids()
    how = (f"kill -KILL {' '.join(map(str, pids))} (sbatch: this command then asks Slurm whether the array was "
           f"queued all the same and records what it finds; a Ctrl-C pressed meanwhile then stops it)" if pids else
           f"kill -KILL -- -{os.getpgrp()} (this command and its sbatch; the next study command finds an array Slurm "
           f"queued meanwhile)")
    print(f"[study] queueing {name} has taken {SBATCH_PATIENCE_S:g} s so far (sbatch waits on a busy or unreachable "
          f"Slurm controller, or the job folder's filesystem is slow). Ctrl-C waits until it is done, so that no array "
          f"is queued unrecorded; to stop now: {how}", file=err, flush=True)


def _child_pids() -> list[int]:
    """This process's child processes (sbatch, while it runs), as /proc lists them; none where it does not."""
    pids: set[int] = set()
    for listing in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            pids.update(int(p) for p in listing.read_text().split())
        except (OSError, ValueError):
            pass
    return sorted(pids)


def _settle_refused(said: str, task: Any, chunk: list[Any], args: tuple, intent: dict, ledger: Ledger, err: TextIO,
                    n_arrays: int, n_jobs: int, profile: Any) -> list[str]:
    """After sbatch reported `said`: an array Slurm queued all the same (a controller timeout can answer an error for
    a submission it accepted) is recorded, with the call files submitit did not name, and its ids returned; one
    Slurm does not know is recorded lost and a StudyError."""
    ids = _queued_anyway(intent, said)
    if ids is None:
        ledger.append([{"event": "lost", "batch": intent["batch"]}])
        if SUBMIT_LIMIT.search(said):
            raise _OverSubmitLimit(said)
        raise StudyError(
            f"sbatch refused array {n_arrays} ({intent['stage']}, {len(chunk)} job(s); profile "
            f"{profile.path or 'built-in default'}{placement_said(profile, intent['stage'])}): {said}"
            + (f"; the {n_jobs} job(s) of the arrays before it are queued (study status): fix the profile and submit "
               f"again, which queues the rest to wait on them" if n_jobs else "")) from None
    _write_task_pickles(Path(intent["folder"]), ids, task, [(j, *args) for j in chunk], intent["call"]["time_min"])
    ledger.append(_queued_events(intent, [j.id for j in chunk], ids, recovered=True))
    print(f"[study] sbatch reported an error ({said}), but Slurm had queued {intent['name']}: recorded as "
          f"{ids[0].split('_')[0]}", file=err, flush=True)
    return ids
