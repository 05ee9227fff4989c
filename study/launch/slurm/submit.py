"""`study submit --cluster slurm`: queue what is missing as submitit job arrays, write the ledger, return.

Arrays: one per (stage, resources, dependency set) -- an sbatch dependency holds for a whole array, so the
evaluations of one pretraining job share an array that waits for exactly that job (`afterok:<array>_<task>`),
and a failed pretraining job cancels only its own evaluations (--kill-on-invalid-dep=yes). Each array is split
below the cluster's MaxArraySize.
"""
from __future__ import annotations

import shlex
import sys
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

from study.grids.cost import MAX_REQUEUES
from study.errors import StudyError
from study.launch.ledger import Ledger, now
from study.launch.locks import submit_lock
from study.launch.runner import SlurmTask
from study.launch.select import Selection, select
from study.launch.slurm import state as slurm_state
from study.launch.slurm.params import (array_chunks, cluster_max_array_size, dependency_string, max_array_size,
                                       slurm_parameters)
from study.launch.status import grid_states
from study.paths import manifests_dir


def recover(ledger: Ledger) -> None:
    """Settle every intent without `queued` lines: found by its job name -> its jobs are queued; else lost. The
    caller holds the workdir's submit lock (a submit in flight has intents of its own still open)."""
    for intent in ledger.replay().open_intents:
        base = slurm_state.find_by_name(intent["name"], since=intent.get("at"))
        if base is None:
            ledger.append([{"event": "lost", "batch": intent["batch"]}])
            continue
        jobs = intent["jobs"]
        ids = [base] if len(jobs) == 1 else [f"{base}_{i}" for i in range(len(jobs))]
        ledger.append(_queued_events(intent, jobs, ids, recovered=True))


def _queued_events(intent: dict, job_ids: list[str], slurm_ids: list[str], recovered: bool = False) -> list[dict]:
    return [{"event": "queued", "batch": intent["batch"], "job": j, "stage": intent["stage"], "config_hash": j,
             "slurm_job_id": sid, "array_job_id": sid.split("_")[0], "submitted_at": intent["at"],
             "folder": intent["folder"], **({"recovered": True} if recovered else {})}
            for j, sid in zip(job_ids, slurm_ids)]


def _groups(jobs: list[Any], stage: str, dep_ids: dict[str, str]) -> dict[tuple, list[Any]]:
    groups: dict[tuple, list[Any]] = {}
    for job in jobs:
        if job.stage != stage:
            continue
        deps = tuple(sorted(dep_ids[d] for d in job.depends_on if d in dep_ids))
        groups.setdefault((job.resources, deps), []).append(job)
    return groups


def submit_slurm(plan: Any, workdir: str | Path, *, dry_run: bool = False, retry_failed: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Queue the plan's missing jobs (see module docstring); with `dry_run`, print each array's sbatch script."""
    plan.profile.require_partition()
    workdir = Path(workdir).resolve()
    with nullcontext() if dry_run else submit_lock(workdir):  # from reading the states to the last `queued` line
        return _submit(plan, workdir, dry_run, retry_failed, out or sys.stdout, err or sys.stderr)


def _submit(plan: Any, workdir: Path, dry_run: bool, retry_failed: bool, out: TextIO, err: TextIO) -> int:
    profile = plan.profile
    ledger = Ledger(workdir, plan.name)
    if dry_run:
        if ledger.replay().open_intents:
            print("[study] an earlier submit was interrupted before recording what it queued; this dry run counts "
                  "its jobs as not submitted (a real submit, status or cancel asks Slurm first)", file=err)
    else:
        recover(ledger)  # under the submit lock this command holds
    states = grid_states(plan, workdir, settle=False)
    sel: Selection = select(plan.jobs, states, retry_failed)
    # a dependency live outside Slurm (a local run) gives no id to wait for: its dependents wait for a later submit
    outside = {j for j, st in states.items() if st.state in ("pending", "running") and not st.slurm_id}
    held: list[str] = []
    for job in sel.to_run:  # topological order: a held job holds its own dependents
        if any(d in outside or d in held for d in job.depends_on):
            held.append(job.id)
    to_run = [j for j in sel.to_run if j.id not in held]
    limit = max_array_size(profile, cluster_max_array_size())
    folder = slurm_state.submitit_folder(workdir)
    env = {"STUDY_MANIFESTS": str(manifests_dir().resolve()), "STUDY_WORKDIR": str(workdir)}
    task = SlurmTask()

    # Slurm id of every dependency that is not done: live ones from the ledger, new ones as they are queued
    dep_ids = {j: st.slurm_id for j, st in states.items() if st.state in ("pending", "running") and st.slurm_id}
    n_arrays, n_jobs = 0, 0
    for stage in ("pretrain", "evaluate"):
        for (resources, deps), jobs in _groups(to_run, stage, dep_ids).items():
            for chunk in array_chunks(jobs, limit):
                n_arrays += 1
                batch = uuid.uuid4().hex
                name = f"study-{plan.name}-{stage}-{batch[:8]}"
                params = slurm_parameters(profile, stage, resources, job_name=name,
                                          dependency=dependency_string(deps), array_size=len(chunk))
                if dry_run:
                    ids = [f"<array{n_arrays}>" if len(chunk) == 1 else f"<array{n_arrays}>_{i}"
                           for i in range(len(chunk))]
                    out.write(f"# ---- array {n_arrays}: {stage}, {len(chunk)} job(s): "
                              f"{', '.join(j.id for j in chunk)}\n")
                    out.write(sbatch_script(params, folder, len(chunk)) + "\n")
                else:
                    import submitit

                    # a fresh executor per array: parameters (the dependency above all) never leak between arrays
                    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
                    intent = {"event": "intent", "batch": batch, "name": name, "cluster": "slurm", "stage": stage,
                              "jobs": [j.id for j in chunk], "folder": str(folder), "at": now()}
                    ledger.append([intent])
                    executor.update_parameters(**params)
                    try:
                        with executor.batch():
                            submitted = [executor.submit(task, j, str(workdir), plan.name, env) for j in chunk]
                    except submitit.core.utils.FailedJobError as e:  # sbatch refused: nothing of this array queued
                        ledger.append([{"event": "lost", "batch": batch}])
                        said = (str(e).strip().splitlines() or ["sbatch gave no message"])[-1]
                        raise StudyError(
                            f"sbatch refused array {n_arrays} ({stage}, {len(chunk)} job(s); profile "
                            f"{profile.path or 'built-in default'}): {said}"
                            + (f"; the {n_jobs} job(s) of the arrays before it are queued (study status)"
                               if n_jobs else "")) from None
                    ids = [s.job_id for s in submitted]
                    ledger.append(_queued_events(intent, [j.id for j in chunk], ids))
                dep_ids.update({j.id: sid for j, sid in zip(chunk, ids)})
                n_jobs += len(chunk)
    verb = "would queue" if dry_run else "queued"
    print(f"[study] {plan.name}: {verb} {n_jobs} job(s) in {n_arrays} array(s); skipped: {sel.summary()}"
          + (f", {len(held)} waiting for a dependency that runs outside Slurm (submit again once it is done)"
             if held else "") + ("" if dry_run else f"; ledger {ledger.path}"), file=err, flush=True)
    return 0


def sbatch_script(params: dict[str, Any], folder: Path, n_tasks: int, python: str | None = None) -> str:
    """The sbatch script submitit writes for an array of `n_tasks` with these parameters (its own generator)."""
    from submitit.slurm.slurm import _make_sbatch_string

    python = python or shlex.quote(sys.executable)
    command = " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])
    return _make_sbatch_string(command=command, folder=folder, map_count=n_tasks if n_tasks > 1 else None, **params)
