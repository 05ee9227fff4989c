"""Live states of submitted jobs, from sacct through submitit's watcher (always forced: never its cache)."""
from __future__ import annotations

import datetime as _dt
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

import submitit

from study.errors import StudyError


def submitit_folder(workdir: str | Path) -> Path:
    """The folder submitit writes pickles and logs to: on the workdir, which the compute nodes share."""
    return Path(workdir).resolve() / "submitit" / "%j"


def query(workdir: str | Path, slurm_ids: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """({slurm id: sacct state}, {slurm id: stderr log path}) for the given ids. One forced sacct call for all.
    Without sacct every state is "UNKNOWN" (the caller treats it as still queued)."""
    ids = sorted(set(slurm_ids))
    folder = submitit_folder(workdir)
    jobs = [submitit.SlurmJob(folder=folder, job_id=sid) for sid in ids]
    logs = {j.job_id: str(j.paths.stderr) for j in jobs}
    if not jobs or not shutil.which("sacct"):
        return {sid: "UNKNOWN" for sid in ids}, logs
    jobs[0].get_info(mode="force")  # one sacct over every registered job
    return {j.job_id: j.watcher.get_state(j.job_id, mode="cache") for j in jobs}, logs


def find_by_name(name: str, since: str | None = None) -> str | None:
    """The Slurm job id of the job (array) named `name`, from squeue then sacct, or None when Slurm answered and
    knows no such job: how a submission whose sbatch may have gone through before `study submit` was killed is
    found again. StudyError when neither command could be asked (the submission's fate stays open)."""
    answered = False
    window = ["-S", _sacct_time(since)] if since else []
    for cmd in (["squeue", "-h", "--name", name, "-o", "%F"],
                ["sacct", "-n", "-X", "-P", "--name", name, "-o", "JobID", *window]):
        if not shutil.which(cmd[0]):
            continue
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
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


def scancel(slurm_ids: Iterable[str]) -> None:
    ids = sorted(set(slurm_ids))
    for i in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[i:i + 500]], check=True, timeout=120)
