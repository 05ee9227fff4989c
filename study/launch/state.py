"""Where each job of a plan stands: done / running / pending / failed / cancelled / missing.

Order of evidence: a result file that reads means done, one that does not failed (whatever else says); otherwise
the job's latest ledger event (a Slurm submission, whose live state the caller looked up through sacct, or a local
run); no event means missing. `blocked` marks a job that cannot run because a job it depends on failed or was
cancelled. A result computed on a manifest since rebuilt is stale: study.launch.stale.
"""
from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from study.errors import StudyError
from study.launch.ledger import Replay, user
from study.launch.locks import lock_held
from study.paths import logs_dir, result_path, results_dir

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job

STATES = ("done", "running", "pending", "failed", "cancelled", "missing")
LIVE = ("running", "pending")

# sacct's state (first word: "CANCELLED by 0" -> CANCELLED) -> ours
_SLURM = {
    "PENDING": "pending", "REQUEUED": "pending", "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending",
    "CONFIGURING": "pending", "RESV_DEL_HOLD": "pending", "SUSPENDED": "pending",
    "UNKNOWN": "pending",  # submitted, not in sacct yet: never queue it twice
    "RUNNING": "running", "COMPLETING": "running", "SIGNALING": "running", "STAGE_OUT": "running",
    "RESIZING": "running",
    "COMPLETED": "failed",  # completed without a result file: the job did not succeed
    "FAILED": "failed", "TIMEOUT": "failed", "OUT_OF_MEMORY": "failed", "NODE_FAIL": "failed",
    "BOOT_FAIL": "failed", "DEADLINE": "failed", "SPECIAL_EXIT": "failed",
    "CANCELLED": "cancelled", "REVOKED": "cancelled",
    "PREEMPTED": "cancelled",  # final (PreemptMode=CANCEL); a requeued job's latest record reads PENDING/REQUEUED
    "ENDED": "failed",  # ours (slurm.state.GONE): without sacct, a job squeue no longer lists ended, how is unknown
}


def sacct_word(raw: str | None) -> str:
    """sacct's state word: "CANCELLED by 0" -> CANCELLED, "RUNNING+" (truncated) -> RUNNING; UNKNOWN when empty."""
    return (raw or "UNKNOWN").split()[0].rstrip("+").upper()


def slurm_state(raw: str) -> str:
    return _SLURM.get(sacct_word(raw), "pending")


@dataclass(frozen=True)
class JobState:
    job_id: str
    stage: str
    state: str
    detail: str = ""  # the scheduler's own word, e.g. "CANCELLED by 0" or "exit code 1"
    slurm_id: str | None = None
    log: str | None = None  # the log file of the latest attempt, where known
    holder: str = ""  # a live local run's: who runs it (`run_by`); a live Slurm job's another grid or user queued
    # (`queued_by`)
    newer: bool = False  # failed for a result a newer version of study wrote (`NewerRecord`): never rerun here
    account: str | None = None  # a Slurm job's account, as sacct says (slurm.state.Answer.accounts)


def has_result(workdir: str | os.PathLike, job_id: str) -> bool:
    return result_path(workdir, job_id).exists()


def cached_result(path: Path) -> dict:
    """The result record at `path` (read_result), read once per version of the file in this process: status and
    submit ask of each result whether it reads and what it was computed on. A version is the file's inode, mtime and
    size: a result is replaced by a rename (a new inode), also within one tick of a coarse mtime."""
    st = path.stat()
    return _result_version(str(path), st.st_ino, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=1 << 16)
def _result_version(path: str, inode: int, mtime_ns: int, size: int) -> dict:
    from study.results.record import read_result

    return read_result(Path(path))


def unreadable_result(workdir: str | os.PathLike, job_id: str) -> str | None:
    """Why the job's result file cannot be read (corrupt, foreign, another schema), or None when it reads or is
    absent. Such a job is failed, not done: `study submit --retry-failed` reruns it, replacing the file, unless a
    newer version of study wrote it (`JobState.newer`)."""
    problem = _result_problem(workdir, job_id)
    return problem[0] if problem else None


NEWER_KEPT = ("not rerun here (`study submit --retry-failed` leaves it: this version would replace a newer one's "
              "result)")


def _result_problem(workdir: str | os.PathLike, job_id: str) -> tuple[str, bool] | None:
    """(why the job's result file does not read, whether a newer version of study wrote it), or None when it reads
    or is absent."""
    from study.results.record import NewerRecord

    path = result_path(workdir, job_id)
    if not path.exists():
        return None
    try:
        cached_result(path)
    except (StudyError, OSError) as e:
        return str(e), isinstance(e, NewerRecord)
    return None


def written_by_newer(workdir: str | os.PathLike, job_id: str) -> bool:
    """Whether the job's result file is one a newer version of study wrote (which this one never reruns)."""
    problem = _result_problem(workdir, job_id)
    return bool(problem and problem[1])


def result_done(workdir: str | os.PathLike, job_id: str) -> bool:
    """Whether the job has a result that reads (an unreadable one is rerun, see `unreadable_result`)."""
    return has_result(workdir, job_id) and unreadable_result(workdir, job_id) is None


RERUN = "rerun"  # a `set_aside` event's reason where `study submit --rerun` set the result aside
TAKEN_OVER = "taken over"  # its reason where a submit took the result over under another id (study.launch.take_over)
TAKEN_OVER_BY = "taken_over_by"  # such a line's key: the id the result and job folder moved to


def set_aside_detail(event: dict) -> str:
    """What a `set_aside` ledger event says of its job (study.launch.stale), which then reads missing: set aside to
    run again (`study submit --rerun`: its `reason`), taken over under the id another version of study gives its
    settings (TAKEN_OVER), or, without a reason, as stale (--set-aside-stale)."""
    if event.get("reason") == TAKEN_OVER:
        return (f"its result and job folder were taken over as job {event.get(TAKEN_OVER_BY)}'s, the id another "
                "version of study gives its settings")
    why = ("to run again" if event.get("reason") == RERUN else "computed on a manifest since rebuilt")
    return f"its result, {why}, was set aside in {event.get('folder')}"


def run_by(event: dict) -> str:
    """Who runs the job of a pending or running `local` ledger event, for the user of another command on the
    workdir: `pending in the command of pid 7352 on vm (user ana, grid data_quantity, since <time>)`, `running in
    the worker of pid 7378 ...` (its `grid` where another grid's ledger recorded it: `replay_with_shared`)."""
    what = "the worker" if event.get("state") == "running" else "the command"
    about = [f"user {event['user']}" if event.get("user") else "", f"grid {event['grid']}" if event.get("grid") else "",
             f"since {event['at']}" if event.get("at") else ""]
    said = ", ".join(a for a in about if a)
    return (f"{event.get('state')} in {what} of pid {event.get('pid')} on {event.get('host')}"
            + (f" ({said})" if said else ""))


def queued_by(event: dict) -> str:
    """Who queued the Slurm job of a `queued` ledger event, for the user of a grid that shares it: `queued on Slurm by
    user ana, grid data_quantity` (its `grid` where another grid's ledger recorded it: `replay_with_shared`; `user`
    where another user ran that submit); empty for this user's own submit of this grid (or a line of an older study
    that records no user)."""
    about = [f"user {event['user']}" if event.get("user") and event["user"] != user() else "",
             f"grid {event['grid']}" if event.get("grid") else ""]
    said = ", ".join(a for a in about if a)
    return f"queued on Slurm by {said}" if said else ""


def local_state(event: dict, workdir: str | os.PathLike) -> str:
    """The state a `local` ledger event stands for, for a job without a result file."""
    state = event.get("state", "missing")
    if state in LIVE and not _holder_alive(event, Path(workdir)):
        return "missing"  # its `study submit --cluster local` was stopped: never finished
    if state == "done":
        return "failed"  # said done, but the result file is gone
    return state


def _holder_alive(event: dict, workdir: Path) -> bool:
    """Whether the process behind a pending or running event lives: a running job's worker holds the job's lock, a
    pending job's command its command lock, for as long as they live (so neither a reused pid nor another host of
    the workdir misleads; see locks.py); without a lock to look at (an event of an older study, a workdir this user
    cannot read), by its pid on this host."""
    held = None
    if event.get("state") == "running":
        held = lock_held(workdir / "locks" / f"{event['job']}.lock")
    elif event.get("lock"):
        held = lock_held(workdir / "locks" / event["lock"])
    return held if held is not None else _pid_alive(event.get("pid"), event.get("host"))


def _pid_alive(pid: Any, host: Any) -> bool:
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


FINISHING_S = 120.0  # a job COMPLETED this recently whose result file is not seen yet: finishing, not failed


def classify(jobs: Iterable[Job], workdir: str | os.PathLike, replay: Replay,
             live: dict[str, str] | None = None, logs: dict[str, str] | None = None,
             ended_s: dict[str, float] | None = None, accounts: Mapping[str, str] | None = None
             ) -> dict[str, JobState]:
    """job id -> JobState. `live`: Slurm id -> sacct state of the ledger's submissions (see slurm.state);
    `logs`: Slurm id -> its stderr file; `ended_s`: Slurm id -> seconds since a COMPLETED job ended; `accounts`:
    Slurm id -> the account the job is on (`JobState.account` of a job whose latest submission is on Slurm).

    A COMPLETED job without a result file is failed, unless the results folder, listed anew (on NFS a fresh read
    of the folder, where a file's absence may be cached for up to a minute), holds it after all (done), or the job
    ended less than FINISHING_S ago (running, "finishing": it is not rerun nor queued again meanwhile)."""
    live = live or {}
    logs = logs or {}
    ended_s = ended_s or {}
    accounts = accounts or {}
    listing: set[str] | None = None  # the results folder's names, listed once, when a COMPLETED job needs them
    out: dict[str, JobState] = {}
    for job in jobs:
        e = replay.latest.get(job.id)
        if has_result(workdir, job.id):
            sid = e["slurm_job_id"] if e is not None and e["event"] == "queued" else None
            out[job.id] = _state_of_result(workdir, job, _event_log(e, workdir, logs), sid, accounts.get(sid or ""))
            continue
        if e is None:
            out[job.id] = JobState(job.id, job.stage, "missing")
        elif e["event"] == "set_aside":
            out[job.id] = JobState(job.id, job.stage, "missing", set_aside_detail(e))
        elif e["event"] == "queued":
            sid = e["slurm_job_id"]
            raw = live.get(sid, "UNKNOWN")
            state = slurm_state(raw)
            if sacct_word(raw) == "COMPLETED":
                if listing is None:
                    listing = _listed_results(workdir)
                if f"{job.id}.json" in listing:
                    out[job.id] = _state_of_result(workdir, job, logs.get(sid), sid, accounts.get(sid))
                    continue
                age = ended_s.get(sid)
                if age is not None and age < FINISHING_S:
                    state, raw = "running", (f"COMPLETED {age:.0f} s ago, finishing: its result file is not seen "
                                             f"here yet (a shared filesystem can show it up to a minute late)")
                else:
                    raw = f"{raw} without a result file"
            out[job.id] = JobState(job.id, job.stage, state, raw, sid, logs.get(sid),
                                   queued_by(e) if state in LIVE else "", account=accounts.get(sid))
        else:  # a local run
            state = local_state(e, workdir)
            detail = e.get("error") or (f"said done, but {result_path(workdir, job.id)} is gone: "
                                        f"`study submit --retry-failed` reruns the job"
                                        if e.get("state") == "done" else "")
            out[job.id] = JobState(job.id, job.stage, state, detail, None, _local_log(e.get("log"), workdir),
                                   run_by(e) if state in LIVE else "")
    return out


def _event_log(event: dict | None, workdir: str | os.PathLike, logs: dict[str, str]) -> str | None:
    """The log of the attempt a ledger event records (a Slurm submission's stderr, a local run's log), if any."""
    if event is None:
        return None
    if event["event"] == "queued":
        return logs.get(event["slurm_job_id"])
    return _local_log(event.get("log"), workdir) if event["event"] == "local" else None


def _local_log(log: str | None, workdir: str | os.PathLike) -> str | None:
    """A local run's log as its ledger line names it, or `<workdir>/logs/<its name>` where that file is: a moved or
    copied workdir reads its own logs, not those at the path the line recorded (the original's, or none)."""
    if not log:
        return log
    here = logs_dir(os.path.abspath(workdir)) / Path(log).name
    return str(here) if here.is_file() else log


def _state_of_result(workdir: str | os.PathLike, job: Job, log: str | None, slurm_id: str | None,
                     account: str | None = None) -> JobState:
    """Done, or failed for a result file that does not read; with the Slurm id, log and account of the run behind
    it."""
    problem = _result_problem(workdir, job.id)
    if problem is None:
        return JobState(job.id, job.stage, "done", "", slurm_id, log, account=account)
    why, newer = problem
    detail = f"{why}; " + (NEWER_KEPT if newer else "`study submit --retry-failed` reruns the job")
    return JobState(job.id, job.stage, "failed", detail, slurm_id, log, newer=newer, account=account)


def _listed_results(workdir: str | os.PathLike) -> set[str]:
    """The names in the results folder, from a listing of it (os.listdir: on NFS it reads the folder anew, where a
    lookup of one name may answer from a cached absence)."""
    try:
        return set(os.listdir(results_dir(workdir)))
    except OSError:
        return set()


def state_of(states: dict[str, JobState], job_id: str) -> str:
    """The state of `job_id`, "missing" for a job `states` does not hold (a dependency outside the plan's jobs)."""
    return states[job_id].state if job_id in states else "missing"


def behind_newer(jobs: Iterable[Job], among: set[str], states: dict[str, JobState]) -> set[str]:
    """The jobs of `among` (blocked, failed or cancelled ones) that wait, directly or through another of them, on a
    job whose result a newer version of study wrote (`JobState.newer`): no submit of this version runs that one,
    `--retry-failed` included, so none runs them."""
    out: set[str] = set()
    for job in jobs:  # topological order: dependencies come first
        if job.id in among and any(d in out or (d in states and states[d].newer) for d in job.depends_on):
            out.add(job.id)
    return out


def blocked(jobs: Iterable[Job], will_run: set[str], states: dict[str, JobState]) -> set[str]:
    """Jobs that cannot run: a dependency is neither done, live, nor about to run (transitively)."""
    out: set[str] = set()
    for job in jobs:  # topological order: dependencies come first
        for dep in job.depends_on:
            st = state_of(states, dep)
            if dep in out or (dep not in will_run and st not in ("done",) + LIVE):
                out.add(job.id)
                break
    return out
