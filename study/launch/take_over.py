"""Taking over the results of jobs an older version of study ran under other ids (`take_over`).

An update of study that hashes a job's settings otherwise (a setting the job never reads left out of its id) gives
the jobs of an unchanged grid file new ids. A job of the older study that finished is the same run as the plan's job
of its settings (`grid_states.renamed`): `study submit` moves its result, job folder and log to the new id instead
of running it again (`take_over`), and `study status` says so beforehand (`to_take_over`). Where the older study gave
two ids to settings this one gives one (`0` and `0.0`, or a setting the job never reads changed between two runs),
one of its results is taken over and the other left where it is, a second run of those settings (`second_runs`).
A job the older study left unfinished (not live) with a checkpoint is taken over too, its folder moved to the new
id, where the submit's run of the plan's job resumes from that checkpoint (`to_resume`).
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.errors import StudyError, not_yours, os_reason
from study.launch.grid_states import (grid_file, grid_ids, grid_jobs, renamed, results_off_plan,
                                      unfinished_off_plan)
from study.launch.ledger import Ledger, local_line, workdir_ledgers
from study.launch.runner import encoder_path, job_dir, read_job_file, write_job_file
from study.launch.state import TAKEN_OVER, TAKEN_OVER_BY, cached_result, has_result, result_done
from study.launch.traces import checkpoint_steps
from study.paths import logs_dir, result_path
from study.results.record import write_result

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan

TAKEN_OVER_FROM = "taken_over_from"  # a taken-over result's and ledger line's key: the id it ran under


def older_results(plan: Plan, workdir: str | Path, off_plan: Iterable[str]) -> dict[str, str]:
    """`renamed` of `off_plan` (results of jobs off the plan: `results_off_plan`) and of the pretraining jobs with a
    result that their evaluations read (an older study's run of a pretraining this grid file shares with another,
    which ran it); with those of the jobs another grid (or grid file) of the workdir ran whose settings are a job of
    the plan without a result (`_ran_elsewhere`)."""
    off_plan = list(off_plan)
    in_plan = grid_ids(plan)
    read = dict.fromkeys(e for job in off_plan for e in _encoders(workdir, job))
    asked = [*off_plan, *(e for e in read if e not in in_plan and e not in off_plan and has_result(workdir, e))]
    return {**renamed(plan, workdir, asked), **_ran_elsewhere(plan, workdir, set(asked))}


def _ran_elsewhere(plan: Plan, workdir: str | Path, asked: Collection[str]) -> dict[str, str]:
    """`renamed` of the results of jobs off the plan that a ledger of the workdir names (not `asked`), of those whose
    settings are a job of the plan without a result: jobs this grid file shares with another, which ran them under
    an older study's ids (this grid's submit found them done and wrote no line of them: a random-init baseline and
    its probes two grid files keep alike). Nothing is read where every job of the plan has a result."""
    in_plan = grid_ids(plan)
    missing = {job for job in in_plan if not has_result(workdir, job)}
    if not missing:
        return {}
    candidates = dict.fromkeys(job for ledger in workdir_ledgers(workdir) for job in ledger.replay().latest
                               if job not in asked and job not in in_plan and has_result(workdir, job))
    return {old: new for old, new in renamed(plan, workdir, candidates).items() if new in missing}


def takeable(plan: Plan, workdir: str | Path, older: dict[str, str]) -> dict[str, str]:
    """Of `older` ({id: the plan's id of its settings}: `older_results`), those a submit takes over: the older
    job's result reads (and a pretraining's encoder file is there), the plan's job has no result, no job folder and
    no ledger line of any grid (never queued or run: a queued one would run again over the result), and each encoder
    the older job read is the plan's job's (the same id, or one taken over as it, now or before: an evaluation of an
    encoder since trained again is not the plan's evaluation of it); of several for one plan's job (settings the older
    study told apart: `second_runs`), of a pretraining the one the most of these evaluations read (its evaluations
    go with it: those of another run would run again), then the first by id; an evaluation among those of the
    pretraining taken, the first by id."""
    if not older:
        return {}
    latest = Ledger(workdir, plan.name).replay_with_shared().latest
    jobs = {j.id: j for j in grid_jobs(plan)}
    free = {old: new for old, new in older.items() if result_done(workdir, old)
            and (jobs[new].stage != "pretrain" or encoder_path(workdir, old).is_file())  # what its evaluations read
            and _never_run(workdir, new, latest)}
    pretrain = {old: new for old, new in free.items() if jobs[new].stage == "pretrain"}
    read: Counter[str] = Counter()  # of two older runs of one pretraining, how many of these evaluations read each
    if len(set(pretrain.values())) < len(pretrain):
        read.update(e for old, new in free.items() if jobs[new].stage != "pretrain"
                    for e in set(_encoders(workdir, old)) if e in pretrain)
    pretrain = _first_each(pretrain, key=lambda old: (-read[old], old))
    # an evaluation's encoders are pretraining jobs, which read none
    return {**pretrain, **_first_each({old: new for old, new in free.items() if jobs[new].stage != "pretrain"
                                       and _same_encoders(workdir, old, jobs[new], pretrain)})}


def second_runs(workdir: str | Path, older: Mapping[str, str], taking: Mapping[str, str]) -> dict[str, str]:
    """{id: the older id taken over as its plan's job} of each of `older` ({id: the plan's id of its settings})
    whose plan's job takes over another: now (`taking`, {old id: new id}: `takeable`'s) or before (its result's
    TAKEN_OVER_FROM). A second run of the same settings, which the older study told apart (`0` and `0.0`, or a
    setting the job never reads changed between the two): no submit takes it over, nor runs its job again."""
    first = {new: old for old, new in taking.items()}
    out = {}
    for old, new in older.items():
        other = first.get(new) or _taken_from(workdir, new)
        if old not in taking and other not in (None, old):
            out[old] = other
    return out


def to_take_over(plan: Plan, workdir: str | Path, off_plan: Iterable[str] | None = None) -> dict[str, str]:
    """{old id: new id} of what the next submit takes over: `takeable` of `older_results` of this grid file's
    results off the plan (`off_plan`, where the caller has `results_off_plan`'s; and of the older runs of jobs it
    shares with another grid of the workdir)."""
    off_plan = results_off_plan(plan, workdir) if off_plan is None else off_plan
    return takeable(plan, workdir, older_results(plan, workdir, off_plan))


def resumable(plan: Plan, workdir: str | Path, unfinished: Mapping[str, str],
              taking: Mapping[str, str]) -> dict[str, str]:
    """Of `unfinished` ({id: the plan's id of its settings} of jobs an older study left unfinished with a checkpoint,
    not live: `renamed` of `unfinished_off_plan`), those a submit takes over to resume: the plan's job was never
    queued or run, takes over no result (`taking`, {old id: new id}: `takeable`'s) and reads the encoders the older
    job read (the same ids, or taken over as them); one older job for each plan's job, the one whose checkpoints
    hold the most steps (then the first by id)."""
    if not unfinished:
        return {}
    latest = Ledger(workdir, plan.name).replay_with_shared().latest
    jobs = {j.id: j for j in grid_jobs(plan)}
    taken = set(taking.values())
    return _first_each({old: new for old, new in unfinished.items() if new not in taken
                        and _never_run(workdir, new, latest) and _same_encoders(workdir, old, jobs[new], taking)},
                       key=lambda old: (-sum(step for step, _ in checkpoint_steps(workdir, old).values()), old))


def to_resume(plan: Plan, workdir: str | Path, taking: Mapping[str, str],
              unfinished: Iterable[str] | None = None) -> dict[str, str]:
    """{old id: new id} of the unfinished jobs the next submit takes over to resume (`resumable`), beside `taking`
    (`to_take_over`'s); `unfinished`: `unfinished_off_plan`'s ids, where the caller has them (it asks Slurm)."""
    unfinished = unfinished_off_plan(plan, workdir) if unfinished is None else unfinished
    return resumable(plan, workdir, renamed(plan, workdir, unfinished), taking)


def taken_over(plan: Plan, workdir: str | Path) -> dict[str, str]:
    """{the id a job ran under: the plan's id} of the plan's results a submit took over (of the whole grid)."""
    out = {}
    for job in grid_jobs(plan):
        old = _taken_from(workdir, job.id)
        if old is not None:
            out[old] = job.id
    return out


def take_over(plan: Plan, workdir: str | Path, dry_run: bool = False) -> dict[str, str]:
    """Move the results of the jobs an older version of study ran from this grid file (and of the pretraining jobs
    their evaluations read) to the ids this version gives their settings (`older_results`, `takeable`); returns
    {old id: new id} of those moved (with `dry_run`, of those it would move, moving none), said on stderr; then the
    folders of the unfinished jobs it resumes (`to_resume`; `_move_folder`, said on stderr, not returned). Each,
    under the workdir's submit lock, dependencies first: a `set_aside` line of the old id (reason TAKEN_OVER) in each
    ledger that has lines of it (it is no Slurm job to ask of, or to say live, any more); its log renamed to the new
    id's (`_move_log`); its job folder renamed to the new id's, the plan's job file written in it; its record written
    under the new id (`job_id`, `depends_on` of the plan's job, TAKEN_OVER_FROM), a `local` ledger line saying it
    done (naming that log); the old record removed. An evaluation goes only with the encoders it read. Each file is
    whole; a kill between two steps leaves a job that runs again (a pretraining from its finished checkpoint) or the
    old record beside the new one, which the next submit removes. Not a dry run: interrupted Slurm submits are
    settled first (`_settle`)."""
    from study.launch.locks import submit_lock

    if not dry_run:
        for old in taken_over(plan, workdir):  # a record a kill left beside its copy (`_move`'s last step)
            result_path(workdir, old).unlink(missing_ok=True)
        _settle(plan, workdir)
    moves = to_take_over(plan, workdir)
    resumes = to_resume(plan, workdir, moves)
    if (moves or resumes) and not dry_run:
        with submit_lock(workdir):  # no other submit queues them meanwhile
            by_id = {j.id: j for j in grid_jobs(plan)}
            ledgers = [(ledger.grid, ledger.replay().latest) for ledger in workdir_ledgers(workdir)]

            def owners(old: str) -> dict[str, dict]:  # {grid: its latest line of job `old`} of the ledgers with one
                return {grid: latest[old] for grid, latest in ledgers if old in latest}

            moves = {}
            todo = to_take_over(plan, workdir)  # again, under the lock
            for old, new in sorted(todo.items(), key=lambda m: by_id[m[1]].stage != "pretrain"):
                if _same_encoders(workdir, old, by_id[new], moves) and _move(workdir, old, by_id[new], plan,
                                                                              owners(old)):
                    moves[old] = new
            resumes = to_resume(plan, workdir, moves)  # of the encoders moved, not of one whose record failed to read
            for old, new in resumes.items():
                _move_folder(workdir, old, by_id[new], plan, owners(old))
    done = "would move" if dry_run else "moved"
    if moves:
        print(f"study: {'would take' if dry_run else 'took'} over {len(moves)} result(s) of jobs an older version of "
              f"study ran under other ids, the same runs as the plan's jobs of their settings: their results, job "
              f"folders and logs {done} to the ids of now, and none runs again"
              f"{' (not listed below)' if dry_run else ''}: {_some(moves)}", file=sys.stderr)
    if resumes:
        print(f"study: {'would take' if dry_run else 'took'} over {len(resumes)} job(s) an older version of study "
              f"started under other ids and left unfinished, the plan's jobs of their settings: their job folders "
              f"(checkpoints) and logs {done} to the ids of now, where they resume from those checkpoints: "
              f"{_some(resumes)}", file=sys.stderr)
    return moves


def _settle(plan: Plan, workdir: str | Path) -> None:
    """Settle the interrupted Slurm submits of every grid of the workdir (`recover_all`, under the submit lock), as
    the submit would next: an unfinished job an open intent names may be running (`live_elsewhere`), but one whose
    intent queued nothing is not, and is resumed from its checkpoint rather than trained again from the start. Where
    Slurm cannot be asked they stay open (their jobs taken for live), and the submit's own settling says why."""
    workdir = Path(workdir).resolve()
    if not Ledger(workdir, plan.name).replay_with_shared().unsettled:
        return
    from study.launch.locks import submit_lock
    from study.launch.slurm.submit import recover_all

    with submit_lock(workdir), contextlib.suppress(StudyError):  # Slurm not answering: left open (above)
        recover_all(workdir)


def _some(moves: Mapping[str, str], shown: int = 5) -> str:
    """`old -> new` of the first `shown` of `moves`."""
    return ", ".join(f"{o} -> {n}" for o, n in list(moves.items())[:shown]) + (" ..." if len(moves) > shown else "")


def _move(workdir: str | Path, old: str, job: Job, plan: Plan, owners: Mapping[str, dict]) -> bool:
    """Take over job `old`'s result and folder as `job`'s (`take_over`; `owners`: as for `_move_folder`); False where
    its record does not read."""
    try:
        record = cached_result(result_path(workdir, old))
    except (StudyError, OSError):
        return False  # status names it
    log = _move_folder(workdir, old, job, plan, owners)
    write_result(workdir, {**record, "job_id": job.id, "depends_on": list(job.depends_on), TAKEN_OVER_FROM: old})
    Ledger(workdir, plan.name).append([local_line(job, "done", grid_file(plan), log=log, **{TAKEN_OVER_FROM: old})])
    result_path(workdir, old).unlink(missing_ok=True)
    return True


def _move_folder(workdir: str | Path, old: str, job: Job, plan: Plan, owners: Mapping[str, dict]) -> str | None:
    """Job `old`'s folder and log as `job`'s: a `set_aside` line of `old` in the ledger of each grid of `owners`
    ({grid: its latest line of `old`}) first (no Slurm job to ask of, or to say live, any more), its log renamed
    (`_move_log`), its folder renamed, the plan's job file written in it. Returns the path of `job`'s log (None where
    it has none): of a job whose latest run was on Slurm, its Slurm log where it is (`_slurm_log`, of those lines),
    not that of an earlier local run."""
    src, dest = job_dir(workdir, old), job_dir(workdir, job.id)
    ran_on_slurm = _slurm_log(workdir, owners.values())
    for grid in owners:  # first: while its result or checkpoint stays, a kill leaves it to take over again
        Ledger(workdir, grid).append([{"event": "set_aside", "job": old, "stage": job.stage, "reason": TAKEN_OVER,
                                       "folder": str(dest.resolve()), TAKEN_OVER_BY: job.id,
                                       "grid_file": grid_file(plan) if grid == plan.name else None}])
    log = _move_log(workdir, old, job.id)
    log = ran_on_slurm or log  # its latest run's: a local log of an earlier run is moved, not named
    try:
        if src.is_dir():
            os.rename(src, dest)
    except OSError as e:
        raise StudyError(f"cannot move {src} to {dest}: {os_reason(e)}{not_yours(e)}") from None
    write_job_file(workdir, job)
    return log


def _never_run(workdir: str | Path, job: str, latest: Mapping[str, dict]) -> bool:
    """Whether the plan's job `job` was never queued or run: no result, no job folder, no line in `latest` (the
    ledgers replayed: a queued one would run over what is taken over)."""
    return not has_result(workdir, job) and not job_dir(workdir, job).exists() and job not in latest


def _move_log(workdir: str | Path, old: str, new: str) -> str | None:
    """Job `old`'s log (logs/<old>.log: a local run's) renamed to job `new`'s where `new` has none (os.replace: in one
    step within a file system; a newer log is never overwritten); the path of `new`'s log, None where it has none."""
    src, dest = logs_dir(workdir) / f"{old}.log", logs_dir(workdir) / f"{new}.log"
    try:
        if src.is_file() and not dest.exists():
            os.replace(src, dest)
    except OSError as e:
        raise StudyError(f"cannot move {src} to {dest}: {os_reason(e)}{not_yours(e)}") from None
    return str(dest.resolve()) if dest.is_file() else None


def _slurm_log(workdir: str | Path, lines: Iterable[dict]) -> str | None:
    """The log of a job's latest Slurm run (task 0's stderr, in its array's submitit folder, which other tasks share:
    not moved) as the first `queued` line of `lines` (its latest line in each ledger) records it, where that file is;
    None where it ran locally, or its log is gone."""
    from study.launch.slurm.state import array_folder, task_log

    for e in lines:
        if e["event"] == "queued":
            log = task_log(array_folder(workdir, e.get("folder")), e["slurm_job_id"])
            if log.is_file():
                return str(log)
    return None


def _first_each(moves: Mapping[str, str], key: Callable[[str], Any] | None = None) -> dict[str, str]:
    """`moves` ({old id: new id}) with one old id for each new id, the first by `key` (by id where none)."""
    first: dict[str, str] = {}
    for old in sorted(moves, key=key):
        first.setdefault(moves[old], old)
    return {old: new for new, old in first.items()}


def _encoders(workdir: str | Path, job: str) -> list[str]:
    """The pretraining jobs whose encoders job `job` read, as its job file names them ([] where it names none, or
    where it does not read)."""
    try:
        encoders = read_job_file(job_dir(workdir, job) / "job.json").config.get("encoders")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    return [e for e in encoders if isinstance(e, str)] if isinstance(encoders, list) else []


def _taken_from(workdir: str | Path, job: str) -> str | None:
    """The id job `job`'s result was taken over from (its TAKEN_OVER_FROM), None for one it ran itself or none."""
    if not has_result(workdir, job):
        return None
    try:
        old = cached_result(result_path(workdir, job)).get(TAKEN_OVER_FROM)
    except (StudyError, OSError):
        return None
    return old if isinstance(old, str) else None


def _same_encoders(workdir: str | Path, old: str, job: Job, moving: Mapping[str, str]) -> bool:
    """Whether each encoder the older job `old` read is the one the plan's `job` reads: the same id, or one taken
    over as it (`moving`, {old id: new id}, or before: its result's TAKEN_OVER_FROM)."""
    news = list(job.config.get("encoders") or [])
    olds = _encoders(workdir, old)
    return len(olds) == len(news) and all(o == n or moving.get(o) == n or _taken_from(workdir, n) == o
                                          for o, n in zip(olds, news))
