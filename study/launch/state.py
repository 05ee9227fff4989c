"""Where each job of a plan stands: done / running / pending / failed / cancelled / missing.

Order of evidence: a result file that reads means done, one that does not failed (whatever else says); otherwise
the job's latest ledger event (a Slurm submission, whose live state the caller looked up through sacct, or a local
run); no event means missing. `blocked` marks a job that cannot run because a job it depends on failed or was
cancelled. A result computed on a manifest since rebuilt is stale: study.launch.stale.
"""
from __future__ import annotations

import functools
import os
import pickle
import re
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from study.errors import StudyError
from study.launch.ledger import Replay
from study.launch.locks import lock_held
from study.paths import logs_dir, result_path, results_dir
from study.train.run_files import CHECKPOINT, CHECKPOINT_FORMAT

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
    absent. Such a job is failed, not done: `study submit --retry-failed` reruns it, replacing the file."""
    path = result_path(workdir, job_id)
    if not path.exists():
        return None
    try:
        cached_result(path)
    except (StudyError, OSError) as e:
        return str(e)
    return None


def result_done(workdir: str | os.PathLike, job_id: str) -> bool:
    """Whether the job has a result that reads (an unreadable one is rerun, see `unreadable_result`)."""
    return has_result(workdir, job_id) and unreadable_result(workdir, job_id) is None


def set_aside_detail(event: dict) -> str:
    """What a `set_aside` ledger event says of its job (study.launch.stale), which then reads missing."""
    return f"its result, computed on a manifest since rebuilt, was set aside in {event.get('folder')}"


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
             ended_s: dict[str, float] | None = None) -> dict[str, JobState]:
    """job id -> JobState. `live`: Slurm id -> sacct state of the ledger's submissions (see slurm.state);
    `logs`: Slurm id -> its stderr file; `ended_s`: Slurm id -> seconds since a COMPLETED job ended.

    A COMPLETED job without a result file is failed, unless the results folder, listed anew (on NFS a fresh read
    of the folder, where a file's absence may be cached for up to a minute), holds it after all (done), or the job
    ended less than FINISHING_S ago (running, "finishing": it is not rerun nor queued again meanwhile)."""
    live = live or {}
    logs = logs or {}
    ended_s = ended_s or {}
    listing: set[str] | None = None  # the results folder's names, listed once, when a COMPLETED job needs them
    out: dict[str, JobState] = {}
    for job in jobs:
        e = replay.latest.get(job.id)
        if has_result(workdir, job.id):
            sid = e["slurm_job_id"] if e is not None and e["event"] == "queued" else None
            out[job.id] = _state_of_result(workdir, job, _event_log(e, workdir, logs), sid)
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
                    out[job.id] = _state_of_result(workdir, job, logs.get(sid), sid)
                    continue
                age = ended_s.get(sid)
                if age is not None and age < FINISHING_S:
                    state, raw = "running", (f"COMPLETED {age:.0f} s ago, finishing: its result file is not seen "
                                             f"here yet (a shared filesystem can show it up to a minute late)")
                else:
                    raw = f"{raw} without a result file"
            out[job.id] = JobState(job.id, job.stage, state, raw, sid, logs.get(sid))
        else:  # a local run
            state = local_state(e, workdir)
            detail = e.get("error") or (f"said done, but {result_path(workdir, job.id)} is gone: "
                                        f"`study submit --retry-failed` reruns the job"
                                        if e.get("state") == "done" else "")
            out[job.id] = JobState(job.id, job.stage, state, detail, None, _local_log(e.get("log"), workdir))
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


def _state_of_result(workdir: str | os.PathLike, job: Job, log: str | None, slurm_id: str | None) -> JobState:
    """Done, or failed for a result file that does not read; with the Slurm id and log of the run behind it."""
    why = unreadable_result(workdir, job.id)
    detail = "" if why is None else f"{why}; `study submit --retry-failed` reruns the job"
    return JobState(job.id, job.stage, "done" if why is None else "failed", detail, slurm_id, log)


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


def last_lines(path: str | os.PathLike | None, n: int = 8) -> list[str]:
    """The last `n` non-empty lines of a log file (with the error), or [] when there is none."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-n:]


_PROGRESS = re.compile(r"^\[[\w-]+\] ")  # the training loop's `[pretrain] step 40/100 ...`, `[evaluate] ...` lines


_COUNT = re.compile(r" step (\d+)/(\d+)\b|: (\d+)/(\d+) images\b")


def progress_count(line: str) -> list[int] | None:
    """[done, total] of what a progress line counts: its training run's steps (`[pretrain] step 40/100 ...`, a
    fine-tuning's per labeled size), its extraction's images (`[evaluate] ...: 1200/5000 images`); None for another."""
    m = _COUNT.search(line)
    return [int(g) for g in m.groups() if g is not None] if m else None


def progress(path: str | os.PathLike | None) -> tuple[str, float] | None:
    """The latest progress line of a job's log (a `[tag] ...` line: the training loop's steps, the feature
    extraction's images) and the seconds since the log was last written; None without a log or such a line in its
    last 16 KiB."""
    line = next((ln.strip() for ln in reversed(last_lines(path, 400)) if _PROGRESS.match(ln)), None)
    if line is None:
        return None
    try:
        return line, max(0.0, time.time() - os.stat(path).st_mtime)
    except OSError:
        return None


# Slurm's own line in a job's log each time the job is requeued (`scontrol requeue`, submitit's requeue on a timeout
# or a preemption's USR2): slurmstepd writes one for the job and one for its step; the job's is counted
_REQUEUED = re.compile(rb"\*\*\* JOB \S+ ON \S+ CANCELLED AT \S+ DUE TO JOB REQUEUE \*\*\*")
_RESUMED = re.compile(rb"^\[[\w-]+\] resuming \S.* at step (\d+)/(\d+)\s*$", re.M)  # study.train.loop's line
HISTORY_MAX_BYTES = 8 * 2**20  # ours: a log's last 8 MiB are read for its requeues (a job writes well under 1 MiB)


def requeue_history(path: str | os.PathLike | None) -> tuple[int, list[list[int]]] | None:
    """(how many times the job was requeued, [step, total] of each resume of a training run in it) as the log of a
    Slurm job records them (Slurm appends each start of a requeued job to the same log): Slurm's `DUE TO JOB REQUEUE`
    lines and the training loop's `resuming <run folder> at step N/T` lines; None without a log."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - HISTORY_MAX_BYTES))
            text = f.read()
    except OSError:
        return None
    return len(_REQUEUED.findall(text)), [[int(a), int(b)] for a, b in _RESUMED.findall(text)]


def requeue_text(history: tuple[int, list[list[int]]] | None) -> str:
    """`requeued 2 time(s), resumed at step 173/1500, then 226/1500`; "" where the log records no requeue nor
    resume."""
    if not history or not (history[0] or history[1]):
        return ""
    n, resumed = history
    said = [f"requeued {n} time(s)"] if n else []
    if resumed:
        said.append("resumed at step " + ", then ".join(f"{s}/{t}" for s, t in resumed))
    return ", ".join(said)


# ours: the largest `data.pkl` read for a step (a ResNet-50 checkpoint's is ~70 KB: its tensors are stored beside it);
# a larger one (a foreign file, a zip bomb) is not read
CHECKPOINT_PICKLE_MAX = 16 * 2**20


class _Opaque(dict):
    """What `_StepReader` makes of every object of a checkpoint but the builtins: an empty mapping (no code of the file
    runs; an OrderedDict's items may be set on it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _StepReader(pickle.Unpickler):
    """Unpickles a checkpoint's `data.pkl` without torch and without running any of its code: tensors, storages and
    every class are `_Opaque` (an OrderedDict too): the plain values beside them, step and total, are all it reads."""

    def find_class(self, module: str, name: str) -> Any:
        return _Opaque

    def persistent_load(self, pid: Any) -> Any:
        return None


def checkpoint_step(path: str | os.PathLike) -> list[int] | None:
    """[step, total steps] of the training checkpoint at `path` (`torch.save`'s zip, as study.train.checkpoint writes
    it), read from its pickle alone (milliseconds, no torch, no tensor read); None where there is none, or it does not
    read as one a rerun resumes from (a torn or foreign file, one of another CHECKPOINT_FORMAT: the run that loads it
    says so; a pickle over CHECKPOINT_PICKLE_MAX bytes)."""
    try:
        with zipfile.ZipFile(path) as z:
            info = next((i for i in z.infolist() if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"), None)
            if info is None or info.file_size > CHECKPOINT_PICKLE_MAX:
                return None
            with z.open(info) as f:  # zipfile stops at the size the entry declares: no more is read
                state = _StepReader(f).load()
    except Exception:  # any unreadable file (zipfile, pickle and OSError raise many kinds): no step to name
        return None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        return None
    step, total = state.get("step"), state.get("total_steps")
    if isinstance(step, int) and isinstance(total, int) and not isinstance(step, bool):
        return [step, total]
    return None


def checkpoint_steps(workdir: str | os.PathLike, job_id: str) -> dict[str, list[int]]:
    """Run folder -> [step, total] of each training checkpoint in the job's folder: "." the job's own (a
    pretraining), `<protocol>-<labeled size>` each fine-tuning's (an evaluation); where a rerun of the job resumes
    (an interrupted run's log may have gone past it: the steps after the checkpoint are trained again)."""
    folder = Path(workdir) / "jobs" / job_id
    out: dict[str, list[int]] = {}
    runs = sorted(folder.glob(f"*/{CHECKPOINT}"), key=lambda p: [int(t) if t.isdigit() else t
                                                                    for t in re.split(r"(\d+)", p.parent.name)])
    for path in [folder / CHECKPOINT, *runs]:  # fine-tunings by labeled size: finetune-50 before finetune-200
        seen = checkpoint_step(path) if path.is_file() else None
        if seen is not None:
            out["." if path.parent == folder else path.parent.name] = seen
    return out


def checkpoint_text(steps: dict[str, list[int]]) -> str:
    """`checkpoint at step 6/8`, or `checkpoints: finetune-50 at step 3/3, finetune-200 at step 1/3`; "" for none."""
    if not steps:
        return ""
    if list(steps) == ["."]:
        return "checkpoint at step {}/{}".format(*steps["."])
    return "checkpoints: " + ", ".join(f"{'the job' if k == '.' else k} at step {s}/{t}" for k, (s, t) in steps.items())
