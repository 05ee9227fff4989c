"""Live states of submitted jobs, from sacct asked at each call (read with submitit's parser), and squeue."""
from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

import submitit

from study.errors import StudyError
from study.launch.slurm.params import slurm_env
from study.launch.state import sacct_word, slurm_state
from study.launch.traces import file_tail


def submitit_folder(workdir: str | Path, name: str) -> Path:
    """The folder of one array's pickles and logs, on the workdir (which the compute nodes share), named as the array
    (`study-<grid>-<stage>-<batch>`). It holds no `%j`, so submitit makes it before sbatch: Slurm fails a task whose
    log folder is missing when it starts (exit 0:53, no log), and submitit makes a `%j` folder only after sbatch
    returned, task by task."""
    return Path(workdir).resolve() / "submitit" / name


def array_folder(workdir: str | Path, recorded: str | None) -> Path:
    """Where an array's submitit files are in this workdir: the folder its `queued` lines record, by name under this
    workdir's submitit/ (a moved or copied workdir reads its own files); a line that records submitit's `%j` folder
    (a workdir an older study submitted to), or none, gives `submitit/%j`."""
    return submitit_folder(workdir, Path(recorded).name if recorded else "%j")


def task_log(folder: Path, slurm_id: str, task: int = 0) -> Path:
    """The stderr log of task `task` of Slurm job `slurm_id` in its array's submitit folder (`array_folder`'s)."""
    return submitit.core.utils.JobPaths(folder, job_id=slurm_id, task_id=task).stderr


class Answer(NamedTuple):
    """What `query` found: `states` {slurm id: sacct state, with squeue's pending reason in parentheses when asked
    for, e.g. "PENDING (JobHeldUser)"}, `logs` {slurm id: stderr log path}, `ended_s` {slurm id: seconds since a
    COMPLETED job ended, where sacct says}, `accounts` {slurm id: the Slurm account the job is on, where sacct says:
    the profile's `account` when it was queued, or, where the cluster does not enforce associations and the user has
    none with that account, the user's default account; a cluster without accounting has no accounts}."""

    states: dict[str, str]
    logs: dict[str, str]
    ended_s: dict[str, float]
    accounts: Mapping[str, str] = {}


def query(workdir: str | Path, folders: Mapping[str, str | None], reasons: bool = False, warn: bool = True) -> Answer:
    """The states of the Slurm ids `folders` maps to their arrays' recorded submitit folders (the ledger's `queued`
    lines; read in `workdir`: array_folder), from sacct asked now (never a cached answer). When sacct is missing or
    fails, from squeue (`_from_squeue`: on a cluster without accounting a job it no longer lists ended, elsewhere
    it reads "UNKNOWN"); when squeue fails too, every state is "UNKNOWN" (the caller treats it as still queued:
    never queue a job twice); a warning says which. The log is task 0's, or for a failed job of several tasks the
    first task's whose log holds the error (`failing_task_log`). With `reasons`, squeue is asked why each pending
    job waits (`stuck_reason` reads it), and a job sacct still reads pending that squeue lists running reads running
    (`started`: sacct lags the controller). `warn` false: no warning (a second query of one command, whose first said
    it)."""
    ids = sorted(folders)
    where: dict[str | None, Path] = {}  # recorded folder -> array_folder (which resolves the workdir): once per array
    for recorded in set(folders.values()):
        where[recorded] = array_folder(workdir, recorded)
    logs = {sid: str(task_log(where[folders[sid]], sid)) for sid in ids}
    if not ids:
        return Answer({}, logs, {})
    answer = _sacct(ids)
    squeued = isinstance(answer, str)  # sacct could not say: squeue's records (current states, pending reasons)
    if squeued:
        answer = _from_squeue(ids, answer, warn)
        if answer is None:
            return Answer({sid: "UNKNOWN" for sid in ids}, logs, {})
    states = {sid: answer.get(sid, {}).get("State") or "UNKNOWN" for sid in ids}
    ended = {sid: age for sid in ids if sacct_word(states[sid]) == "COMPLETED"
             and (age := _seconds_since(answer[sid].get("End"))) is not None}
    accounts = {sid: account for sid in ids if (account := answer.get(sid, {}).get("Account"))}
    requeued = [] if squeued else [sid for sid, raw in states.items() if sacct_word(raw) in REQUEUE_STATES]
    reasons = reasons and (bool(requeued) or any(slurm_state(raw) == "pending" for raw in states.values()))
    listing = _squeue(ids) if (requeued or reasons) and not squeued else None  # squeue's answer is in `answer`
    if requeued:
        states.update(still_queued(requeued, listing))
    if listing is not None:
        states.update(started(states, listing))
    if not squeued:
        states.update(removed_tasks(states, answer, listing))
    if reasons:
        why = ({sid: r["Reason"] for sid, r in answer.items() if r.get("Reason")} if squeued
               else pending_reasons(listing) if listing is not None else {})
        states.update({sid: f"{raw} ({why[sid]})" for sid, raw in states.items()
                       if slurm_state(raw) == "pending" and why.get(sid)})
    listings: dict[Path, dict[str, list[tuple[int, str]]]] = {}  # each array folder listed once (failing_task_log)
    for sid, raw in states.items():
        if slurm_state(raw) == "failed":
            logs[sid] = failing_task_log(logs[sid], listings=listings)
    return Answer(states, logs, ended, accounts)


def _seconds_since(end: str | None) -> float | None:
    """Seconds since sacct's End (local time, "2026-11-30T10:00:00"); None when it says none ("Unknown")."""
    try:
        return max(0.0, time.time() - _dt.datetime.fromisoformat(end or "").timestamp())
    except ValueError:
        return None


def _sacct(ids: list[str]) -> dict[str, dict[str, str]] | str:
    """sacct's records of the jobs (arrays expanded to their tasks, by submitit's parser), or why it could not say."""
    if not shutil.which("sacct"):
        return "sacct is not on this host's PATH"
    from submitit.slurm.slurm import SlurmInfoWatcher

    records: dict[str, dict[str, str]] = {}
    for arrays in _array_groups(ids):
        cmd = ["sacct", "-o", "JobID,State,NodeList,End,Account", "--parsable2", "-j", arrays]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=slurm_env())
        except (OSError, subprocess.SubprocessError) as e:
            return f"sacct could not be run ({type(e).__name__})"
        if proc.returncode != 0:
            return f"sacct failed: {(proc.stderr.strip().splitlines() or ['exit status %d' % proc.returncode])[-1]}"
        records.update(SlurmInfoWatcher().read_info(proc.stdout))
    return records


# the state of a job squeue no longer lists on a cluster without accounting: it ended (slurmctld forgets an ended job
# MinJobAge after its end), how is unknown; without a result file it reads failed (study.launch.state). Not so for
# another user's job that slurm.conf's PrivateData=jobs hides from squeue (README: no shared workdir there)
GONE = "ENDED"
GONE_DETAIL = f"{GONE} (how is unknown: sacct cannot be asked, and squeue no longer lists it)"
# what sacct says on a cluster without accounting (AccountingStorageType=accounting_storage/none), which then has no
# other clusters either (a multi-cluster or federated setup needs slurmdbd): squeue (without -M) lists all its jobs.
# Where sacct fails otherwise (slurmdbd down, a timeout) a job squeue does not list has ended, but whether it failed
# only sacct can tell once it answers: it reads UNKNOWN, pending (never queued twice)
NO_ACCOUNTING = "accounting storage is disabled"


def _from_squeue(ids: list[str], why: str, warn: bool = True) -> dict[str, dict[str, str]] | None:
    """The jobs' records as slurmctld has them (`squeue -t all`: the live jobs, and those that ended less than
    MinJobAge ago, with their final state, end and a pending job's reason), for when sacct cannot say (`why`; a
    cluster without accounting answers "Slurm accounting storage is disabled"); a job it no longer lists reads GONE
    there (NO_ACCOUNTING), and UNKNOWN where sacct failed otherwise (how it ended is sacct's to say). None when squeue
    cannot be asked either: every state is then unknown. Either way a warning says what could not be told, unless
    `warn` is false."""
    listed = _squeue(ids, ended=True)
    if listed is None:
        if warn:
            print(f"study: warning: {why}, and squeue could not be asked either: the states of {len(ids)} Slurm "
                  f"job(s) are unknown, and they read as pending (nothing is queued again for them)", file=sys.stderr,
                  flush=True)
        return None
    known, pending = {}, pending_reasons(listed, before=3)
    for line in listed.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            known[parts[0]] = {"State": parts[1], "End": parts[2] if len(parts) > 2 else "",
                               "Reason": pending.get(parts[0], "")}
    gone = sum(sid not in known for sid in ids)
    ended = NO_ACCOUNTING in why
    if not gone:
        said = ""
    elif ended:
        said = (f"; {gone} it no longer lists ended, how is unknown: those without a result read failed ({GONE}), "
                f"and `study submit --retry-failed` reruns them")
    else:  # accounting is there (slurmdbd down?): how a job squeue no longer lists ended, sacct will say
        said = (f"; {gone} it does not list read pending (they ended, but how only sacct can say): nothing is "
                f"queued again for them until sacct answers")
    if warn:
        print(f"study: warning: {why}: the states of {len(ids)} Slurm job(s) are read from squeue instead, which "
              f"lists a job only until MinJobAge (slurm.conf) after it ends{said}", file=sys.stderr, flush=True)
    unlisted = {"State": GONE_DETAIL if ended else "UNKNOWN"}
    return {sid: known.get(sid, unlisted) for sid in ids}


# sacct's last record of a job Slurm requeues (preemption with PreemptMode=REQUEUE, a failed node) reads PREEMPTED
# or NODE_FAIL until it restarts: final only once the job has left the queue
REQUEUE_STATES = ("PREEMPTED", "NODE_FAIL")


def still_queued(ids: Iterable[str], squeue_out: str | None) -> dict[str, str]:
    """Of `ids` (sacct read PREEMPTED or NODE_FAIL), those squeue still lists, with squeue's state (PENDING,
    REQUEUED, RUNNING...): waiting to restart, not ended. `squeue_out`: lines `<id> <state> ...` (None: squeue could not
    be asked, and they read as still queued: never queue a job twice)."""
    ids = list(ids)
    if squeue_out is None:
        return {sid: "REQUEUED" for sid in ids}
    listed = _listed_states(squeue_out)
    return {sid: listed[sid] for sid in ids if sid in listed}


def started(states: Mapping[str, str], squeue_out: str) -> dict[str, str]:
    """Of `states` (sacct's), the jobs sacct still reads pending that squeue lists running (RUNNING, COMPLETING...),
    with squeue's state: slurmctld tells slurmdbd of a start some seconds later (minutes on a busy cluster), and the
    controller knows; read pending, a job that has just started and written its log was said to be requeued and
    waiting to start again. `squeue_out`: lines `<id> <state> ...`."""
    listed = _listed_states(squeue_out)
    return {sid: listed[sid] for sid, raw in states.items()
            if slurm_state(raw) == "pending" and slurm_state(listed.get(sid, "PENDING")) == "running"}


# what sacct reads of a pending array task scancelled on its own (`scancel 123_4`, `study cancel --where`): Slurm takes
# it out of its array's pending record and keeps no record of it, so sacct reads it pending while the array's record
# in its database still spans it, then lists it no more, and squeue never lists it again (Slurm 22.05)
REMOVED = "CANCELLED (while pending, on its own: Slurm no longer lists this task of its array)"


def removed_tasks(states: Mapping[str, str], answer: Mapping[str, Mapping[str, str]],
                  live: str | None = None) -> dict[str, str]:
    """Of `states` (sacct's), the array tasks sacct reads pending, or does not list of an array it lists (`answer`:
    its records), that squeue does not list either, also among the jobs that ended less than MinJobAge ago: REMOVED
    each. Read pending, such a task would never run nor be queued again, and its dependents would start at once (an
    `afterok` on a task Slurm no longer knows is dropped). {} where squeue cannot be asked. `live`: squeue's listing
    of the live jobs where the caller asked for it already (pending reasons): squeue is asked again only of the
    tasks it leaves out (none, as a rule: no second call for a status of pending tasks)."""
    arrays = {sid.split("_")[0] for sid in answer}
    listed_live = _listed_states(live) if live is not None else {}
    candidates = [sid for sid, raw in states.items() if "_" in sid and sid.split("_")[0] in arrays
                  and sacct_word(raw) in ("PENDING", "UNKNOWN") and sid not in listed_live]
    listing = _squeue(candidates, ended=True) if candidates else None
    if listing is None:
        return {}
    listed = _listed_states(listing)
    return {sid: REMOVED for sid in candidates if sid not in listed}


def _listed_states(squeue_out: str) -> dict[str, str]:
    """{slurm id: squeue's state} of `squeue_out`'s lines `<id> <state> ...`."""
    return dict(line.split()[:2] for line in squeue_out.splitlines() if len(line.split()) >= 2)


def squeue_env() -> dict[str, str]:
    """slurm_env() without squeue's SQUEUE_* variables: SQUEUE_USERS, SQUEUE_PARTITION, SQUEUE_ACCOUNT, SQUEUE_QOS,
    SQUEUE_NAMES, SQUEUE_STATES... (a login profile's `export SQUEUE_USERS=$USER`) filter what squeue lists as its
    options do, and a job of the grid it does not list reads ended (removed, preempted for good, lost)."""
    return {k: v for k, v in slurm_env().items() if not k.startswith("SQUEUE_")}


def _squeue(ids: Iterable[str], ended: bool = False) -> str | None:
    """The queued jobs of the arrays of `ids` (not the whole cluster's queue, whoever submitted them), a line
    `<id> <state> <reason>` each; "" when Slurm has none of them any more; None when squeue cannot be asked.
    With `ended`, also the jobs that ended less than MinJobAge ago, a line `<id> <state> <end> <reason>` each.
    Every one of them is listed (`-a`: also those of a hidden partition or one the user's groups may not use, which
    squeue leaves out by default, a labmate's or even the user's own; squeue_env: no SQUEUE_* filter)."""
    if not shutil.which("squeue"):
        return None
    listing = []
    what = ["-t", "all", "-o", "%i %T %e %r"] if ended else ["-o", "%i %T %r"]
    for arrays in _array_groups(ids):
        try:
            # -r: one line per array task; without it the pending tasks of an array, also requeued ones, share a line
            proc = subprocess.run(["squeue", "-h", "-a", "-r", *what, f"--jobs={arrays}"], capture_output=True,
                                  text=True, timeout=60, env=squeue_env())
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:  # that one: it knows none of them any more
            return None
        listing.append(proc.stdout if proc.returncode == 0 else "")
    return "".join(listing)


def _array_groups(ids: Iterable[str], size: int = 500) -> list[str]:
    """The array ids of `ids` (`123` of `123_4`), sorted, comma-joined in groups of at most `size`: one sacct or
    squeue call each (one argument of 14,000 ids would pass Linux's 128 KiB limit)."""
    arrays = sorted({sid.split("_")[0] for sid in ids})
    return [",".join(arrays[i:i + size]) for i in range(0, len(arrays), size)]


def pending_reasons(squeue_out: str, before: int = 2) -> dict[str, str]:
    """{slurm id: squeue's reason} of the PENDING jobs in `squeue_out` (lines `<id> <state> <reason>`, or with
    `before` 3 `<id> <state> <end> <reason>`: the reason last, as it may hold spaces: "launch failed requeued
    held")."""
    out = {}
    for line in squeue_out.splitlines():
        parts = line.split(None, before)
        if len(parts) == before + 1 and parts[1] == "PENDING" and parts[-1].strip() != "None":
            out[parts[0]] = parts[-1].strip()
    return out


# squeue reasons of a pending job that Slurm will not start as it stands (a hold, a limit of the job itself, a node or
# feature it cannot have, a dependency that failed); not those that clear as other jobs end (Priority, Resources,
# QOSMaxJobsPerUserLimit, AssocGrp..., ...); `scontrol requeuehold` words its hold "job requeued in held state"
_HELD = ("JobHeldAdmin", "JobHeldUser", "launch failed requeued held", "job requeued in held state")
_STUCK = ("PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints", "DependencyNeverSatisfied",
          # an account or QOS the partition does not take (AllowAccounts, AllowQos, ...: squeue words it "Job's QOS
          # not permitted to use this partition (...)", and after a restart of the controller PartitionConfig), or
          # that is not the user's; memory per node above the partition's MaxMemPerNode
          "PartitionConfig", "Job's QOS not permitted", "Job's account not permitted", "QOSNotAllowed",
          "AccountNotAllowed", "InvalidQOS", "InvalidAccount", "MaxMemPerLimit")


def stuck_reason(raw: str) -> str | None:
    """Why a pending job (a state as `query` returns it, "PENDING (<reason>)") will not start by itself, with what to
    do; None when its reason (or none) clears by itself."""
    m = re.search(r"\((.*)\)\s*$", raw or "")
    if m is None:
        return None
    reason = m.group(1)
    if reason == "JobHeldAdmin":
        return f"{reason}: held by an administrator; ask them to release it"
    if reason.startswith(_HELD):
        return f"{reason}: held; `scontrol release <id>` frees it"
    if reason.startswith("DependencyNeverSatisfied"):
        return f"{reason}: a job it waits for failed or was cancelled"
    per_job_limit = (reason.startswith(("QOSMax", "AssocMax", "QOSMin"))
                     and not any(k in reason for k in ("PerUser", "PerAccount", "AssocMaxJobsLimit")))
    if per_job_limit or reason.startswith(_STUCK):
        return (f"{reason}: it asks for what its partition, QOS or association does not allow or cannot give "
                f"(time, nodes, a feature, a limit per job, its account or QOS); change the profile, `study cancel` "
                f"and submit again")
    return None


ERROR_MARKS = ("Traceback (most recent call last)", "study: error")


_TASK_LOG = re.compile(r"(.*)_(\d+)_log\.err")  # `<id>_<task>_log.err`: the id is all before the last `_<digits>`
# submitit's lines in a task's logs as the job's function raised (stderr) and as the task started (stdout), with the
# time of the task's node: of several ranks that raised, the one that raised first failed; the others raised because
# it died (gloo's "Connection closed by peer", NCCL's errors, once srun --kill-on-bad-exit signalled them)
_RAISED = re.compile(rb"^submitit ERROR \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\) - Submitted job triggered an "
                     rb"exception", re.M)
_STARTED = re.compile(rb"^submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\) - Starting with JobEnvironment",
                      re.M)


def failing_task_log(log: str, tail_bytes: int = 65536,
                     listings: dict[Path, dict[str, list[tuple[int, str]]]] | None = None) -> str:
    """Of the per-task stderr files of one job (submitit's `<id>_<task>_log.err`, task 0's given), the one whose end
    holds an error (a Python traceback or `study: error`): of those whose task raised in its latest run (submitit's
    `Submitted job triggered an exception` after its last `Starting with JobEnvironment`), the one that raised first,
    else the first by task; `log` itself when none does. With several ranks the one that failed is often not task 0:
    the others were killed (srun --kill-on-bad-exit), or raised once it had died (a collective's lost peer).
    `listings`: a memo of the folders listed so far, for a caller asking of many jobs of one array folder (`query`),
    which then lists each folder once, not once per failed job."""
    path = Path(log)
    m = _TASK_LOG.fullmatch(path.name)
    if m is None:
        return log
    listings = {} if listings is None else listings
    if path.parent not in listings:
        listings[path.parent] = _task_logs(path.parent)
    tasks = [(task, path.parent / name) for task, name in listings[path.parent].get(m.group(1), [])]
    erred = []  # (task, log, its end) of those whose end holds an error
    for task, p in sorted(tasks):
        text = file_tail(p, tail_bytes)
        if text is not None and any(mark.encode() in text for mark in ERROR_MARKS):
            erred.append((task, p, text))
    raised = []  # (when it raised, task, log) of those that raised in their latest run
    for task, p, text in erred if len(erred) > 1 else []:
        when = _RAISED.findall(text)
        started = _STARTED.findall(file_tail(p.with_name(p.name[:-len("err")] + "out"), tail_bytes) or b"")
        if when and (not started or when[-1] >= started[-1]):  # not an earlier run's, requeued since
            raised.append((when[-1], task, p))
    return str(min(raised)[2] if raised else erred[0][1] if erred else log)


def first_task_log(log: str | None) -> str | None:
    """Task 0's stderr log of the job whose task's log `log` is (`failing_task_log` may give another task's): the one
    slurmstepd's requeue and preemption lines and the training's resume lines are written to; `log` where it is no
    task's."""
    m = _TASK_LOG.fullmatch(Path(log).name) if log else None
    return str(Path(log).with_name(f"{m.group(1)}_0_log.err")) if m and log else log


def _task_logs(folder: Path) -> dict[str, list[tuple[int, str]]]:
    """The per-task stderr files in `folder`, by job id: {id: [(task, file name)]}; {} when it cannot be listed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    out: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        t = _TASK_LOG.fullmatch(name)
        if t:
            out.setdefault(t.group(1), []).append((int(t.group(2)), name))
    return out


def find_by_name(name: str, since: str | None = None) -> str | None:
    """The Slurm job id of the job (array) named `name`, from squeue then sacct, or None when Slurm answered and
    knows no such job: how a submission whose sbatch may have gone through before `study submit` was killed is
    found again. StudyError when neither command could be asked (the submission's fate stays open). sacct is asked
    of all users (`-a`; squeue lists them all): in a workdir a lab shares, the interrupted submit may be another
    user's, whose array, ended, sacct would otherwise not list, and read never queued."""
    answered = False
    window = ["-S", _sacct_time(since)] if since else []
    for cmd in (["squeue", "-h", "-a", "--name", name, "-o", "%F"],  # -a, squeue_env: as `_squeue`
                ["sacct", "-n", "-X", "-P", "-a", "--name", name, "-o", "JobID", *window]):
        if not shutil.which(cmd[0]):
            continue
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=squeue_env())
        except (OSError, subprocess.SubprocessError):
            continue
        answered = answered or proc.returncode == 0
        for line in proc.stdout.split():
            base = line.strip().split("_")[0]
            if base.isdigit():
                return base
    if not answered:
        raise StudyError(f"cannot ask Slurm (squeue, sacct) whether job array {name!r} was queued; "
                         "run the command again when they answer")
    return None


def _sacct_time(iso_utc: str, margin_s: int = 3600) -> str:
    """sacct -S reads local time: the ledger's UTC timestamp in local time, `margin_s` earlier (clock skew)."""
    t = _dt.datetime.fromisoformat(iso_utc)
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return (t - _dt.timedelta(seconds=margin_s)).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


# scancel's line for a job the caller may not cancel (another user's: only they, root or a Slurm operator may)
_DENIED = re.compile(r"job id (\S+): Access/permission denied")


def denied(said: Iterable[str]) -> tuple[set[str], list[str]]:
    """(the Slurm ids scancel refused to cancel as another user's, the rest of its lines) of what it said
    (`scancel`'s return)."""
    ids, rest = set(), []
    for line in said:
        if m := _DENIED.search(line):
            ids.add(m.group(1))
        else:
            rest.append(line)
    return ids, rest


def scancel(slurm_ids: Iterable[str]) -> list[str]:
    """scancel the jobs; returns what scancel said on failing for some of them (e.g. a job that ended meanwhile).
    StudyError when scancel cannot be run."""
    ids, said = sorted(set(slurm_ids)), []
    for i in range(0, len(ids), 500):
        try:
            proc = subprocess.run(["scancel", *ids[i:i + 500]], capture_output=True, text=True, timeout=120,
                                  env=slurm_env())
        except (OSError, subprocess.SubprocessError) as e:
            raise StudyError(f"scancel of {len(ids)} Slurm job(s) could not be run ({type(e).__name__}: {e}); "
                             f"nothing past job {ids[i]} was cancelled") from None
        if proc.returncode != 0:
            said += proc.stderr.strip().splitlines() or [f"scancel exited with status {proc.returncode}"]
    return said
