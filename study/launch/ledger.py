"""The ledger of one grid: `<workdir>/ledgers/<grid>.jsonl`, append-only, one JSON object per line.

Events (every line has "event" and "at"):
- `intent`  {batch, name, cluster, stage, jobs: [job ids], folder, grid_file, call, user}: written *before* an array
  goes to sbatch (`user`: who ran the submit);
- `queued`  {batch, job, stage, config_hash, slurm_job_id, array_job_id, submitted_at, folder, grid_file, code,
  user, recovered}: one per job, written after sbatch returned (all lines of an array in one write; `code`: the copy
  of study's code the job imports, study.launch.snapshot; `user`: its intent's; `recovered`: true where the array
  was found by its name after an interrupted submit or an sbatch error);
- `local`   {job, stage, state: pending|running|done|failed|cancelled, log, error, pid, host, user, lock, grid_file}:
  the local scheduler (pending: queued by the command of `pid`, which runs it when its dependencies are done and
  holds `locks/<lock>` while it lives; running: its worker, of pid `pid`, holds `locks/<job>.lock` while it lives;
  `user`: who ran that command, on pending and running lines);
- `lost`    {batch}: an `intent` found to have queued nothing (Slurm knows no array of its name);
- `set_aside` {job, stage, folder, grid_file, reason}: the job's result, computed on a manifest since rebuilt, moved to
  `folder` with its job folder (study.launch.stale): the job reads missing, and runs again; with reason `taken over`
  (and `taken_over_by`), moved to the id another version of study gives its settings (study.launch.take_over);
- `cancelled` {slurm_job_ids}: the Slurm jobs a `study cancel` scancelled (status says them cancelled by it, not by a
  dependency's end; an older study passes the line by).

A kill at any moment leaves either a complete line or a torn last line, which replay ignores. An `intent` with
no `queued` lines is an array whose fate is unknown: the next command that reads states (not a dry run), of this
grid or of another one of the workdir, looks it up by its unique job name (`recover_all`), under the submit lock so
that a submit still queueing it is waited for, before deciding anything, so a rerun never queues a job twice nor
forgets one. Jobs shared with another grid of the same workdir are seen through that grid's ledger too
(`replay_with_shared`: the newest event wins). A submit, on Slurm or here, reads the states and records what it
queues under `study.launch.locks.submit_lock`, one command at a time per workdir, so that two submits at once (of
one grid, or of two grids sharing jobs) never queue a job twice.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from study.errors import user_name


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data`: a write cut short (a full disk writes what fits and returns its count) goes on with the
    rest, and one that writes nothing is the full disk's OSError (ENOSPC), not a line silently torn. The torn line it
    leaves is skipped by replay, and the next append starts a fresh line after it."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def user() -> str:
    """Who runs this command, for the `user` of the ledger lines that say who runs a job (a workdir shared by a lab):
    the login name of its uid, or `uid <n>` where the system has none."""
    return user_name(os.getuid())


def ledger_path(workdir: str | os.PathLike, grid: str) -> Path:
    return Path(workdir) / "ledgers" / f"{grid}.jsonl"


@dataclass
class Replay:
    """The ledger read back: the latest event per job, and the intents that never got their `queued` lines."""

    latest: dict[str, dict] = field(default_factory=dict)
    open_intents: list[dict] = field(default_factory=list)
    shared_open_intents: list[dict] = field(default_factory=list)  # other grids' (replay_with_shared)
    cancelled: set[str] = field(default_factory=set)  # the Slurm ids `study cancel` cancelled (`cancelled` events)

    @property
    def unsettled(self) -> bool:
        """Whether an interrupted Slurm submit, of this grid or (after replay_with_shared) another, is unsettled."""
        return bool(self.open_intents or self.shared_open_intents)

    def slurm_ids(self) -> dict[str, str]:
        """job id -> Slurm id ("123" or "123_4") of its latest submission, for jobs whose latest event is `queued`."""
        return {j: e["slurm_job_id"] for j, e in self.latest.items() if e["event"] == "queued"}

    def slurm_folders(self, jobs: Iterable[str] | None = None) -> dict[str, str | None]:
        """Slurm id -> the submitit folder (pickles, logs) its array recorded (None where a line records none), for
        the latest submission of each of `jobs` (default: every job) whose latest event is `queued`."""
        wanted = None if jobs is None else set(jobs)
        return {sid: self.latest[j].get("folder") for j, sid in self.slurm_ids().items()
                if wanted is None or j in wanted}


class Ledger:
    def __init__(self, workdir: str | os.PathLike, grid: str):
        self.path = ledger_path(workdir, grid)
        self.workdir, self.grid = Path(workdir), grid

    def append(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events as complete lines, in one write, flushed to disk."""
        text = "".join(json.dumps({"at": now(), **e}, sort_keys=True) + "\n" for e in events)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0666 less the umask, as any file of the workdir: with umask 002 the others of a lab's group sharing the
        # workdir append to it too
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text  # after a torn line (a kill mid-write): start on a fresh line
            _write_all(fd, text.encode())
            os.fsync(fd)
        except OSError as e:  # a full disk: os.write wrote part of the line and said so only by its count
            if e.filename is None:
                e.filename = str(self.path)
            raise
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        """Every complete event, in order; a torn or foreign line is skipped, and so is an event without the fields
        its kind is read by (`complete_event`: a line edited by hand, or of another version of study)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if complete_event(e):
                out.append(e)
        return out

    def replay(self) -> Replay:
        r = Replay()
        intents: dict[str, dict] = {}
        queued_batches: set[str] = set()
        for e in self.events():
            kind = e["event"]
            if kind == "intent":
                intents[e["batch"]] = e
            elif kind == "queued":
                queued_batches.add(e["batch"])
                r.latest[e["job"]] = e
            elif kind in ("local", "set_aside"):
                r.latest[e["job"]] = e
            elif kind == "lost":  # an intent found to have queued nothing
                queued_batches.add(e["batch"])
            elif kind == "cancelled":
                r.cancelled.update(e["slurm_job_ids"])
        r.open_intents = [e for b, e in intents.items() if b not in queued_batches]
        return r

    def replay_with_shared(self) -> Replay:
        """`replay()`, merged with every other grid's ledger of the workdir: per job, the newest event of any of them
        (this ledger's on a tie; another's marked "grid": <that grid>). One config in two grids is one job, so a job
        queued or run by one grid is not queued again by the other, and an old event here (a command stopped long
        ago) does not hide a run another grid started since. Open intents stay this ledger's own; the other grids'
        are in `shared_open_intents` (an interrupted submit of another grid may have queued jobs shared with this
        one: `recover_all` settles them)."""
        own = self.replay()
        shared: dict[str, dict] = {}
        for other in workdir_ledgers(self.workdir):
            if other.grid == self.grid:
                continue
            theirs = other.replay()
            own.shared_open_intents += theirs.open_intents
            own.cancelled |= theirs.cancelled
            for job, e in theirs.latest.items():
                if job not in shared or e.get("at", "") >= shared[job].get("at", ""):
                    shared[job] = {**e, "grid": other.grid}
        for job, e in shared.items():
            if job not in own.latest or e.get("at", "") > own.latest[job].get("at", ""):
                own.latest[job] = e
        return own


# the fields each kind of event is read by (strings; an intent's `jobs` a list of them); an event of a kind not named
# here (a newer study's) is kept, and replay passes it by
EVENT_FIELDS = {"intent": ("batch", "name", "jobs"), "queued": ("batch", "job", "slurm_job_id"), "local": ("job",),
                "lost": ("batch",), "set_aside": ("job",), "cancelled": ("slurm_job_ids",)}
LIST_FIELDS = ("jobs", "slurm_job_ids")  # of EVENT_FIELDS, those a list of strings


def local_line(job: Any, state: str, this_file: str | None, **fields: Any) -> dict[str, Any]:
    """A `local` ledger line: the state of `job` (a study.grids.Job) as a command of grid file `this_file` (its
    `grid_file`) has it, with `fields`."""
    return {"event": "local", "job": job.id, "stage": job.stage, "state": state, **fields, "grid_file": this_file}


def complete_event(e: Any) -> bool:
    """Whether `e` is an event (a JSON object with a string "event") holding every field its kind is read by
    (EVENT_FIELDS: non-empty strings; LIST_FIELDS lists of strings)."""
    if not isinstance(e, dict) or not isinstance(e.get("event"), str):
        return False
    return all(_is_strings(e.get(key)) if key in LIST_FIELDS else isinstance(e.get(key), str) and e[key] != ""
               for key in EVENT_FIELDS.get(e["event"], ()))


def _is_strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def workdir_ledgers(workdir: str | os.PathLike) -> list[Ledger]:
    """The ledger of every grid that has one in `workdir`, by grid name."""
    return [Ledger(workdir, p.stem) for p in sorted((Path(workdir) / "ledgers").glob("*.jsonl"))]
