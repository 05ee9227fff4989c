"""Taking over the results of jobs an older version of study ran under other ids (`take_over`).

An update of study that hashes a job's settings otherwise (a setting the job never reads left out of its id) gives
the jobs of an unchanged grid file new ids. A job of the older study that finished is the same run as the plan's job
of its settings (`grid_states.renamed`): `study submit` moves its result and job folder to the new id instead of
running it again, and `study status` says so beforehand (`takeable`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from study.errors import StudyError, not_yours, os_reason
from study.launch.grid_states import grid_file, renamed, results_off_plan
from study.launch.ledger import Ledger
from study.launch.runner import job_dir, write_job_file
from study.launch.state import cached_result, has_result
from study.paths import result_path
from study.results.record import write_result

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan

TAKEN_OVER_FROM = "taken_over_from"  # a taken-over result's and ledger line's key: the id it ran under


def takeable(plan: Plan, workdir: str | Path, older: dict[str, str]) -> dict[str, str]:
    """Of `older` ({id: the plan's id of its settings}: `renamed` of results off the plan), those a submit takes
    over: the plan's job has no result, no job folder and no ledger line of any grid (never queued or run: a queued
    one would run again over the result)."""
    if not older:
        return {}
    latest = Ledger(workdir, plan.name).replay_with_shared().latest
    return {old: new for old, new in older.items()
            if not has_result(workdir, new) and not job_dir(workdir, new).exists() and new not in latest}


def taken_over(plan: Plan, workdir: str | Path) -> dict[str, str]:
    """{the id a job ran under: the plan's id} of the plan's results a submit took over."""
    out = {}
    for job in plan.jobs:
        if not has_result(workdir, job.id):
            continue
        try:
            old = cached_result(result_path(workdir, job.id)).get(TAKEN_OVER_FROM)
        except (StudyError, OSError):
            continue
        if isinstance(old, str):
            out[old] = job.id
    return out


def take_over(plan: Plan, workdir: str | Path, dry_run: bool = False) -> dict[str, str]:
    """Move the results of the jobs an older version of study ran from this grid file to the ids this version gives
    their settings (`takeable`); returns {old id: new id} of those moved (with `dry_run`, of those it would move,
    moving none), said on stderr. Each, under the workdir's submit lock: its job folder renamed to the new id's, the
    plan's job file written in it; its record written under the new id (`job_id`, `depends_on` of the plan's job,
    TAKEN_OVER_FROM), a `local` ledger line saying it done; the old record removed. A record that does not read
    stays. Each file is whole; a kill between two steps leaves a job that runs again (a pretraining from its
    finished checkpoint) or the old record beside the new one."""
    from study.launch.locks import submit_lock

    older = renamed(plan, workdir, results_off_plan(plan, workdir))
    if not takeable(plan, workdir, older):
        return {}
    if dry_run:
        moves = takeable(plan, workdir, older)
    else:
        with submit_lock(workdir):  # no other submit queues them meanwhile
            by_id = {j.id: j for j in plan.jobs}
            moves = {old: new for old, new in takeable(plan, workdir, older).items()
                     if _move(workdir, old, by_id[new], plan)}
    if moves:
        print(f"study: {'would take' if dry_run else 'took'} over {len(moves)} result(s) of jobs an older version of "
              f"study ran under other ids, the same runs as the plan's jobs of their settings: their results and job "
              f"folders {'would move' if dry_run else 'moved'} to the ids of now, and none runs again"
              f"{' (listed to run below: a submit moves them first)' if dry_run else ''}: "
              + ", ".join(f"{o} -> {n}" for o, n in list(moves.items())[:5]) + (" ..." if len(moves) > 5 else ""),
              file=sys.stderr)
    return moves


def _move(workdir: str | Path, old: str, job: Job, plan: Plan) -> bool:
    """Take over job `old`'s result and folder as `job`'s (`take_over`); False where its record does not read."""
    try:
        record = cached_result(result_path(workdir, old))
    except (StudyError, OSError):
        return False  # status names it
    src, dest = job_dir(workdir, old), job_dir(workdir, job.id)
    try:
        if src.is_dir():
            os.rename(src, dest)
    except OSError as e:
        raise StudyError(f"cannot move {src} to {dest}: {os_reason(e)}{not_yours(e)}") from None
    write_job_file(workdir, job)
    write_result(workdir, {**record, "job_id": job.id, "depends_on": list(job.depends_on), TAKEN_OVER_FROM: old})
    Ledger(workdir, plan.name).append([{"event": "local", "job": job.id, "stage": job.stage, "state": "done",
                                        TAKEN_OVER_FROM: old, "grid_file": grid_file(plan)}])
    result_path(workdir, old).unlink(missing_ok=True)
    return True
