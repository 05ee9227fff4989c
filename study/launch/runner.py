"""What runs inside a worker: `run_job(job, workdir)`, the Checkpointable wrapper Slurm runs, and the job files
(`jobs/<id>/job.json`: what a local worker reads its job from, and what the call files of a Slurm array queued by an
interrupted submit are rebuilt from); the local workers' entry point is study.launch.local.worker.

Layout under the workdir (docs/architecture.md section 3):
    jobs/<id>/            the job's run folder (checkpoint.pt, encoder.pt, ...); jobs/<id>/job.json its Job
    jobs/<dep>/encoder.pt the encoders of the pretraining jobs it depends on
    features/             the evaluation feature cache
    results/<id>.json     the result record (study.results.write_result), written once the job succeeded
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import submitit

from study.errors import StudyError
from study.atomic import write_json
from study.train.run_files import ENCODER

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job


def job_dir(workdir: str | os.PathLike, job_id: str) -> Path:
    return Path(workdir) / "jobs" / job_id


def encoder_path(workdir: str | os.PathLike, job_id: str) -> Path:
    return job_dir(workdir, job_id) / ENCODER


def _is_main_task() -> bool:
    """False on the other tasks of a multi-task Slurm job (one task per GPU): only task 0 writes the result."""
    return os.environ.get("SLURM_PROCID", "0") == "0"


def run_job(job: Job, workdir: str | os.PathLike, grid: str | None = None) -> Path | None:
    """Run `job` (a study.grids.Job) in `<workdir>/jobs/<id>/` and write its result; returns the result path (None
    on a Slurm task other than task 0, which writes none).

    A pretraining job resumes from its run folder's checkpoint whatever restarted it (a requeue, a preemption,
    a rerun). An evaluation job needs every encoder it depends on; a missing one is a StudyError naming it.
    """
    from study.results import make_record, write_result

    workdir = Path(workdir).resolve()
    run_dir = job_dir(workdir, job.id)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if job.stage == "pretrain":
        from study.train import PretrainConfig, pretrain

        out = pretrain(PretrainConfig.from_dict(job.config["pretrain"]), run_dir)
    elif job.stage == "evaluate":
        from study.evaluate import EvalConfig, evaluate

        encoders = [encoder_path(workdir, dep) for dep in job.config.get("encoders", [])]
        missing = [str(p) for p in encoders if not p.exists()]
        if missing:
            raise StudyError(f"job {job.id}: encoder(s) of its pretraining job(s) not found: {', '.join(missing)}; "
                             f"where that job's result was copied in from another workdir, copy its job folder "
                             f"(jobs/<id>/, with encoder.pt) from there too, then `study submit --retry-failed` "
                             f"reruns this job; or, to make the encoder again here, remove that pretraining job's "
                             f"results/<id>.json, then `study submit --retry-failed` reruns it (from its last "
                             f"checkpoint) and this job")
        out = evaluate(EvalConfig.from_dict(job.config["evaluate"]), run_dir, encoders, workdir / "features")
    else:
        raise StudyError(f"job {job.id}: unknown stage {job.stage!r}")
    if not _is_main_task():
        return None
    wall = out.get("protocol", {}).get("wall_time_s")
    record = make_record(job, out, grid=grid, wall_time_s=float(wall) if wall is not None else time.time() - t0)
    return write_result(workdir, record)


def threads_from_env() -> None:
    """One torch thread per CPU the scheduler gave this job (Slurm's cpus-per-task, or the local worker's share)."""
    n = os.environ.get("STUDY_THREADS") or os.environ.get("SLURM_CPUS_PER_TASK")
    if n and n.isdigit() and int(n) > 0:
        import torch

        torch.set_num_threads(int(n))


SUBMIT_DIR = "STUDY_SUBMIT_DIR"  # the folder `study submit` ran in, which each job (Slurm or local) enters
CODE_DIR_ENV = "STUDY_CODE"  # the copy of study's code a job was started in to import (study.launch.snapshot)


def say_run_start(job: Job) -> None:
    """A RUN_HEADER line on stderr, the task's log: Slurm appends each start of a requeued job to the same log, and
    `study status` tells the new run's progress from the lines the stopped one wrote until its SIGKILL by it."""
    from study.launch.traces import RUN_HEADER

    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
    print(f"{RUN_HEADER}{stamp} {job.stage} job {job.id} (Slurm job {os.environ.get('SLURM_JOB_ID', '?')}, task "
          f"{os.environ.get('SLURM_PROCID', '0')}, on {os.uname().nodename})", file=sys.stderr, flush=True)


def say_if_not_the_copy() -> None:
    """A warning on stderr where this job meant to import a copy of study's code (CODE_DIR_ENV) imports another study:
    a container that does not see the workdir at its path, or starts Python elsewhere or without PYTHONPATH, runs
    the study inside it (its results record that one's code version)."""
    import study

    meant = os.environ.get(CODE_DIR_ENV)
    here = Path(study.__file__).resolve().parent
    if meant and here.parent != Path(meant).resolve():
        print(f"study: warning: this job imports study from {here}, not the copy its submit took, {meant}/study "
              f"(a container that does not see that path, or that starts Python elsewhere or without PYTHONPATH?): "
              f"it runs that study's code", file=sys.stderr, flush=True)


def enter_submit_folder(folder: str | None) -> None:
    """Run in the folder `study submit` ran in, which a grid's relative paths (`pretrained.encoder_file`,
    `init_encoder`) are read from: Slurm starts a job in sbatch's folder only where the node has it (else in /tmp),
    and a profile's `additional: {chdir: ...}` moves it. Said on stderr where that folder is none on this node."""
    if not folder:
        return
    try:
        os.chdir(folder)
    except OSError as e:
        print(f"study: warning: the folder study submit ran in, {folder}, cannot be entered on this node "
              f"({e.strerror}): a relative path of the grid (pretrained.encoder_file, init_encoder) is read from "
              f"{Path.cwd()}", file=sys.stderr, flush=True)


class SlurmTask(submitit.helpers.Checkpointable):
    """The callable submitit pickles for each array task. On a timeout or preemption (USR2) the training loop
    has already written its checkpoint when submitit calls `checkpoint()`, so checkpointing is just requeueing
    the same call: the job restarts and `run_job` resumes from the run folder."""

    def __call__(self, job: Job, workdir: str, grid: str, env: dict[str, str]) -> str | None:
        os.environ.update(env)
        say_run_start(job)
        say_if_not_the_copy()
        enter_submit_folder(env.get(SUBMIT_DIR))
        threads_from_env()
        path = run_job(job, workdir, grid)
        return str(path) if path else None

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def write_job_file(workdir: str | os.PathLike, job: Job) -> Path:
    path = job_dir(workdir, job.id) / "job.json"
    write_json(path, {"id": job.id, "stage": job.stage, "config": job.config, "depends_on": list(job.depends_on)})
    return path


def read_job_file(path: str | os.PathLike) -> Any:
    from study.grids import Job

    d = json.loads(Path(path).read_text())
    return Job(id=d["id"], stage=d["stage"], config=d["config"], depends_on=tuple(d["depends_on"]))
