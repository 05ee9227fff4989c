"""What a job leaves on disk as it goes, read back for `study status`: its log's last lines and latest progress line,
the requeues and resumes its log records, and the step of each training checkpoint in its folder. Nothing here
imports torch or runs code of the files it reads.
"""
from __future__ import annotations

import os
import pickle
import re
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

from study.train.run_files import CHECKPOINT, CHECKPOINT_FORMAT


def file_tail(path: str | os.PathLike | None, size: int) -> bytes | None:
    """The last `size` bytes of the file at `path` (all of a smaller one); None without a path or a readable file."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read()
    except OSError:
        return None


def last_lines(path: str | os.PathLike | None, n: int = 8) -> list[str]:
    """The last `n` non-empty lines of a log file (with the error), or [] when there is none."""
    text = file_tail(path, 16384)
    if text is None:
        return []
    lines = [ln for ln in text.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    return lines[-n:]


def since_last(lines: list[str], header: str | None) -> list[str]:
    """The `lines` after the last that starts with `header` (a local run's header: a log holds every run's lines);
    all of them where none does, or `header` is None."""
    starts = [i for i, ln in enumerate(lines) if header is not None and ln.startswith(header)]
    return lines[starts[-1] + 1:] if starts else lines


RUN_HEADER = "==== "  # the line each run of a job starts its log with (a log holds every run's lines; a Slurm job's
# too, each start of a requeued one: study.launch.runner.say_run_start)
_PROGRESS = re.compile(r"^\[[\w-]+\] ")  # the training loop's `[pretrain] step 40/100 ...`, `[evaluate] ...` lines


_COUNT = re.compile(r" step (\d+)/(\d+)\b|: (\d+)/(\d+) images\b")


def progress_count(line: str) -> list[int] | None:
    """[done, total] of what a progress line counts: its training run's steps (`[pretrain] step 40/100 ...`, a
    fine-tuning's per labeled size), its extraction's images (`[evaluate] ...: 1200/5000 images`); None for another."""
    m = _COUNT.search(line)
    return [int(g) for g in m.groups() if g is not None] if m else None


class Progress(NamedTuple):
    """A job's latest progress line, as its log holds it."""
    line: str  # a `[tag] ...` line: the training loop's steps, the feature extraction's images
    age_s: float  # seconds since the log was last written
    before_restart: bool  # older than Slurm's latest stop of the job to run it again: its new run has said nothing yet


def progress(path: str | os.PathLike | None, since: str | None = None) -> Progress | None:
    """The latest progress line of a job's log; None without a log or such a line in its last 16 KiB. Slurm
    appends each start of a requeued job to its log, so a line may be the previous run's (`before_restart`): one
    written before Slurm's latest stop line; one before the RUN_HEADER of a run started since that stop (the new
    run has said nothing yet); or one after it while no RUN_HEADER has followed, of a job whose runs write one (its
    log's first lines hold one: the stopped run trains on until its SIGKILL, and a job of a study that wrote none
    reads as before); with `since`, only the lines after the last that starts with it count (a local run's header,
    `==== `)."""
    lines = since_last(last_lines(path, 400), since)
    at = next((i for i in range(len(lines) - 1, -1, -1) if _PROGRESS.match(lines[i])), None)
    if at is None:
        return None
    stops = [i for i, ln in enumerate(lines) if _STOPPED.search(ln.encode())]
    starts = [i for i, ln in enumerate(lines) if ln.startswith(RUN_HEADER)]
    if not stops:
        restarted = False
    elif starts and starts[-1] > stops[-1]:  # a run started after the latest stop: a line before it is older
        restarted = at < starts[-1]
    else:  # no run started since the latest stop (its header would follow it, in these lines)
        restarted = at < stops[-1] or bool(starts) or _writes_headers(path)
    try:
        return Progress(lines[at].strip(), max(0.0, time.time() - os.stat(path).st_mtime), restarted)
    except OSError:
        return None


def _writes_headers(path: str | os.PathLike | None, size: int = 65536) -> bool:
    """Whether the log at `path` holds a RUN_HEADER line in its first `size` bytes (after what a profile's `setup`
    lines print): its job's runs write one each (study.launch.runner.say_run_start), those of an older study none.
    Read only for a requeued job's log whose tail shows no header after the stop."""
    try:
        with open(path, "rb") as f:  # type: ignore[arg-type]
            head = f.read(size)
    except (OSError, TypeError):
        return False
    return any(ln.startswith(RUN_HEADER.encode()) for ln in head.splitlines())


# slurmstepd's own line in a job's log each time Slurm stops it to run again: `DUE TO JOB REQUEUE` (`scontrol
# requeue`, submitit's requeue on a time limit's or a preemption's USR2) or `DUE TO PREEMPTION` (a cluster's
# PreemptMode=REQUEUE; under CANCEL the job ends there); it writes one for the job and one for its step: the job's
# is counted
_STOPPED = re.compile(rb"\*\*\* JOB \S+ ON \S+ CANCELLED AT \S+ DUE TO (JOB REQUEUE|PREEMPTION) \*\*\*")
_RESUMED = re.compile(rb"^\[[\w-]+\] resuming \S.* at step (\d+)/(\d+)\s*$", re.M)  # study.train.loop's line
HISTORY_MAX_BYTES = 8 * 2**20  # ours: a log's last 8 MiB are read for its requeues (a job writes well under 1 MiB)


class Restarts(NamedTuple):
    """What a Slurm job's log says of its restarts: Slurm appends each start of a requeued job to the same log."""
    requeued: int  # `DUE TO JOB REQUEUE` lines
    preempted: int  # `DUE TO PREEMPTION` lines
    resumed: list[list[int]]  # [step, total] of each `resuming <run folder> at step N/T` of a training run in it


def requeue_history(path: str | os.PathLike | None) -> Restarts | None:
    """The restarts the log at `path` records (its last HISTORY_MAX_BYTES); None without a log."""
    text = file_tail(path, HISTORY_MAX_BYTES)
    if text is None:
        return None
    why = _STOPPED.findall(text)
    return Restarts(why.count(b"JOB REQUEUE"), why.count(b"PREEMPTION"),
                    [[int(a), int(b)] for a, b in _RESUMED.findall(text)])


def requeue_text(history: Restarts | None) -> str:
    """`requeued 2 time(s), preempted 1 time(s), resumed at step 173/1500, then 226/1500`; "" where the log records
    none of them."""
    if not history:
        return ""
    said = [f"{what} {n} time(s)" for what, n in (("requeued", history.requeued), ("preempted", history.preempted))
            if n]
    if history.resumed:
        said.append("resumed at step " + ", then ".join(f"{s}/{t}" for s, t in history.resumed))
    return ", ".join(said)


# ours: the largest `data.pkl` read for a step (a ResNet-50 checkpoint's is ~70 KB: its tensors are stored beside it);
# a larger one (a foreign file, a zip bomb) is not read
CHECKPOINT_PICKLE_MAX = 16 * 2**20


class _Opaque(dict):
    """What `_StepReader` makes of every object of a checkpoint but the builtins: an empty mapping (no code of the file
    runs; an OrderedDict's items may be set on it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Takes nothing of the file's constructor arguments: the object stays empty."""

    def __setstate__(self, state: Any) -> None:
        """Takes nothing of the file's state (a tensor's, a module's): no `__setstate__` of the file runs."""


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
    return checkpoints(workdir, job_id)[0]


def checkpoints(workdir: str | os.PathLike, job_id: str) -> tuple[dict[str, list[int]], float | None]:
    """(`checkpoint_steps`, the seconds since the newest of those checkpoints was written) of the job, each
    checkpoint read once. The age is what a stop now would lose (a run checkpoints every `checkpoint_every_*`, and
    at a signal): 0 for one written in the future (a shared filesystem's clock ahead), None where there is none."""
    folder = Path(workdir) / "jobs" / job_id
    steps: dict[str, list[int]] = {}
    written = []
    for path in _checkpoint_paths(folder):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        seen = checkpoint_step(path)
        if seen is not None:
            steps["." if path.parent == folder else path.parent.name] = seen
            written.append(mtime)
    return steps, max(0.0, time.time() - max(written)) if written else None


def _checkpoint_paths(folder: Path) -> list[Path]:
    """The job's own training checkpoint's path in its folder, then each fine-tuning's by labeled size (finetune-50
    before finetune-200), whether or not the files are there."""
    runs = sorted(folder.glob(f"*/{CHECKPOINT}"), key=lambda p: [int(t) if t.isdigit() else t
                                                                    for t in re.split(r"(\d+)", p.parent.name)])
    return [folder / CHECKPOINT, *runs]


def checkpoint_text(steps: dict[str, list[int]]) -> str:
    """`checkpoint at step 6/8`, or `checkpoints: finetune-50 at step 3/3, finetune-200 at step 1/3`; "" for none."""
    if not steps:
        return ""
    if list(steps) == ["."]:
        return "checkpoint at step {}/{}".format(*steps["."])
    return "checkpoints: " + ", ".join(f"{'the job' if k == '.' else k} at step {s}/{t}" for k, (s, t) in steps.items())
