"""`study status GRID`, from the states of the grid's jobs (study.launch.grid_states: the result files, the ledger
and sacct, forced); `study cancel`: study.launch.cancel."""
from __future__ import annotations

import shlex
import sys
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from study.durations import format_duration
from study.errors import StudyError
from study.launch.grid_changes import changed_settings
from study.launch.grid_states import (UNSETTLED, grid_states, live_ids, other_accounts, outside_plan, renamed,
                                      renamed_live, results_off_plan, unfinished_and_busy,
                                      with_dependencies as grid_with_dependencies)
from study.launch.ledger import Ledger
from study.launch.stale import stale_results
from study.launch.state import LIVE, STATES, JobState, behind_newer, blocked, cached_result, has_result, sacct_word
from study.launch.take_over import older_results, resumable, second_runs, takeable, to_resume
from study.launch.traces import (Restarts, checkpoint_steps, checkpoint_text, checkpoints, last_lines, progress,
                                 progress_count, requeue_history, requeue_text)
from study.paths import result_path, unsubmitted_workdir
from study.results.record import results_in_subfolders, subfolder_results_text
from study.train.config import UNTRAINED_METHODS

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan


COUNTED = ("done", "stale", *STATES[1:])  # the columns of the status table: the states, a done job's stale result apart


def state_counts(plan: Plan, states: dict[str, JobState], stale: dict[str, str] | None = None
                 ) -> dict[str, dict[str, int]]:
    """Stage -> column of COUNTED -> how many of the plan's jobs are in it (0 included): their state, but a done job
    whose result is stale (`stale`: study.launch.stale.stale_results) under `stale`, not `done`: `study submit`
    refuses to go on until it is set aside, and then runs it again."""
    out: dict[str, dict[str, int]] = {}
    for job in plan.jobs:
        row = out.setdefault(job.stage, dict.fromkeys(COUNTED, 0))
        state = states[job.id].state
        row["stale" if state == "done" and job.id in (stale or {}) else state] += 1
    return out


def some_ids(ids: list[str], n: int = 8) -> str:
    """The first `n` of `ids`, joined by commas, then ` ...` where there are more."""
    return ", ".join(ids[:n]) + (" ..." if len(ids) > n else "")


def status_json(plan: Plan, workdir: str | Path) -> dict[str, Any]:
    """`{"grid", "workdir", "counts": {stage: {column: n}}, "jobs": [{<study.grids.render.job_json>, "state",
    "detail", "slurm_id", "account", "log", "progress", "progress_count", "progress_before_restart", "log_age_s",
    "checkpoint", "checkpoint_age_s", "requeues", "preemptions", "resumed_at", "stale", "code_version"}],
    "results_off_plan": [id],
    "checkpoints_off_plan": {id: checkpoint}, "off_plan_changes": {id: text}}`, the jobs in the plan's order: what
    `study status` prints, one row per job. `counts`: the table's (`state_counts`: a done job with a stale result is
    counted under `stale`, not `done`).
    `progress`: the latest progress line of a running job's log (or of one a local run left unfinished, or of a
    requeued Slurm job waiting to start again), `progress_count` its [done, total] (`traces.progress_count`),
    `progress_before_restart` whether that line is older than Slurm's latest stop of the job to run it again (its new
    run has said nothing yet), `log_age_s` the seconds since that log was written; None elsewhere.
    `checkpoint`: of a job not done, {run folder: [step, total]} of the training checkpoints in its job folder, where
    a rerun resumes ("." the job's own, `finetune-<n>` a fine-tuning's: `traces.checkpoint_steps`), else None;
    `checkpoint_age_s` the seconds since the newest of them was written (`traces.checkpoints`: what a stop now
    would lose), else None.
    `requeues`, `preemptions`: how many times Slurm requeued a Slurm job not done (`scontrol requeue`, submitit's
    requeue at a time limit or a preemption's signal) or preempted it (PreemptMode=REQUEUE: it runs again),
    `resumed_at`: [step, total] of each resume of its training runs, as its log records them
    (`traces.requeue_history`: the log of its latest submission; a `--retry-failed` rerun starts a new one); None
    where it has no log, and for a local run (its log holds the lines of every run of the job, of earlier
    submissions too: a result set aside and run again).
    `account`: the Slurm account of a job's latest Slurm submission, as sacct says (the one it ran on, for a done
    job; None where sacct does not say: a local run, a cluster without accounting).
    `stale`: why a done job's result is stale (a manifest since rebuilt, a `pretrained` encoder file replaced: `study
    submit` refuses it), else None; `code_version`: the code version of study a done job's result records, or that a
    queued or running Slurm job imports (the copy its submit took, study.launch.snapshot), else None;
    `results_off_plan`: the results of jobs this grid file ran that its plan no longer has (of the whole grid, as
    the table's note: --where chooses among its plan's jobs only); `checkpoints_off_plan`: {id: its checkpoints'
    [step, total] as `checkpoint` gives them} of the jobs this grid file started that its plan no longer has and that
    did not finish (not those still running), `checkpoints_running_elsewhere` the same of those that may still run
    in another grid file's command or Slurm job, or an interrupted submit's (`live_elsewhere`); `off_plan_changes`:
    {id: what changed} of those of either that have a job file, against the plan's job of the same axes
    (`changed_settings`: a setting's two values, an axis value taken out); `to_take_over`: {id: the plan's id} of the
    results an older version of study left that the next submit takes over (study.launch.take_over), `second_runs`
    {id: the older id taken over in its stead} of the older results that are second runs of one job (`second_runs`:
    none takes them over), `to_resume` {old id: new id} of the unfinished jobs it takes over to resume from their
    checkpoints; `results_in_subfolders` {id: file} (record.results_in_subfolders) and `pretraining_scored_elsewhere`
    {id: its done evaluations} (`scored_elsewhere`) of the missing jobs; and `"grid_jobs"` (how many jobs the whole
    grid has) where `--where` selected some, as `study plan --format json` gives it: `counts` and `jobs` are
    theirs."""
    from study.grids.render import grid_jobs_json, job_json, plan_axes

    with_dependencies, _, states = _read_states(plan, workdir)
    stale = stale_results(with_dependencies or plan.jobs, workdir)
    axes = plan_axes(plan)
    live_code = _live_code(plan, workdir, states)
    jobs = []
    for job in plan.jobs:
        st = states[job.id]
        seen = (progress(st.log) if st.state == "running" or _stopped_here(st) or _waits_to_restart(st)
                or _suspended(st) else None)
        history = _restarts(st) if st.state != "done" else None
        saved, age = checkpoints(workdir, job.id) if st.state != "done" else ({}, None)
        jobs.append({**job_json(job, axes), "state": st.state, "detail": st.detail or None, "slurm_id": st.slurm_id,
                     "account": st.account, "log": st.log, "progress": seen.line if seen else None,
                     "progress_count": progress_count(seen.line) if seen else None,
                     "progress_before_restart": seen.before_restart if seen else None,
                     "log_age_s": round(seen.age_s, 1) if seen else None,
                     "checkpoint": saved or None, "checkpoint_age_s": None if age is None else round(age, 1),
                     "requeues": history.requeued if history else None,
                     "preemptions": history.preempted if history else None,
                     "resumed_at": history.resumed if history else None,
                     "stale": stale.get(job.id),
                     "code_version": _code_version(workdir, st, live_code)})
    off_plan, (unfinished, busy) = results_off_plan(plan, workdir), unfinished_and_busy(plan, workdir)
    older = older_results(plan, workdir, off_plan)
    taking = takeable(plan, workdir, older)
    return {"grid": plan.name, "workdir": str(Path(workdir).resolve()), "counts": state_counts(plan, states, stale),
            "jobs": jobs, "results_off_plan": off_plan, "checkpoints_off_plan": unfinished,
            "checkpoints_running_elsewhere": busy,
            "off_plan_changes": {job: said for job, (_, said) in
                                 changed_settings(plan, workdir, [*off_plan, *unfinished]).items()},
            "to_take_over": taking, "second_runs": second_runs(workdir, older, taking),
            "to_resume": to_resume(plan, workdir, taking, unfinished),
            "results_in_subfolders": {job_id: str(path) for job_id, path in _nested(workdir, states).items()},
            "pretraining_scored_elsewhere": scored_elsewhere(plan, states, workdir), **grid_jobs_json(plan)}


def _nested(workdir: str | Path, states: dict[str, JobState]) -> dict[str, Path]:
    """The result files of the missing jobs of `states` that lie in a folder inside results/ (no command reads them
    there: record.results_in_subfolders)."""
    return results_in_subfolders(workdir, [job_id for job_id, st in states.items() if st.state == "missing"])


def _code_version(workdir: str | Path, st: JobState, live_code: dict[str, tuple[str, str]]) -> str | None:
    """The code version a job ran (a done job: its result's) or runs (a queued or running Slurm job: its copy's,
    `_live_code`); None elsewhere, or where that cannot be read."""
    if st.job_id in live_code:
        return live_code[st.job_id][1]
    if st.state != "done":
        return None
    try:
        version = cached_result(result_path(workdir, st.job_id)).get("code_version")
    except (OSError, StudyError):
        return None
    return version if isinstance(version, str) else None


def _restarts(st: JobState) -> Restarts | None:
    """The requeues, preemptions and resumes a Slurm job's log records (`traces.requeue_history`: task 0's, also of a
    job whose failing task was another); None for a local run, whose log holds the lines of every run of the job, of
    earlier submissions too."""
    if not st.slurm_id:
        return None
    from study.launch.slurm.state import first_task_log

    return requeue_history(first_task_log(st.log))


def print_status(plan: Plan, workdir: str | Path, out: TextIO | None = None, lines: int = 8) -> dict[str, JobState]:
    """`study status`: the counts per stage and state, then the jobs that need a look (running, stopped, ended with
    the last `lines` lines of a failure's log, stuck in Slurm's queue), stale results and jobs off the plan; returns
    each planned job's state."""
    out = out or sys.stdout
    with_dependencies, read, states = _read_states(plan, workdir)
    # with their dependencies: a selected evaluation is stale through its pretraining also where --where leaves it out
    stale = {job_id: why for job_id, why in stale_results(with_dependencies or plan.jobs, workdir).items()
             if job_id in states}
    table = state_counts(plan, states, stale)
    of = "" if getattr(plan, "whole", None) is None else f" (those --where selects of its {len(plan.whole)})"
    out.write(f"grid {plan.name}: {len(plan.jobs)} job(s){of}, workdir {Path(workdir).resolve()}\n")
    note = unsubmitted_workdir(workdir)
    if note:
        out.write(f"({note})\n")
    out.write(f"{'stage':<10}" + "".join(f"{s:>11}" for s in COUNTED) + "\n")
    for stage, row in table.items():
        out.write(f"{stage:<10}" + "".join(f"{row[s]:>11}" for s in COUNTED) + "\n")
    unsettled = [st.job_id for st in states.values() if st.detail.startswith(UNSETTLED)]
    if unsettled:
        out.write(f"\n{len(unsettled)} job(s) unsettled, counted pending: an interrupted submit may have queued them, "
                  f"and Slurm cannot be asked now ({some_ids(unsettled)}); `study submit` and `study cancel` wait "
                  f"until it answers\n")
    _running(states, workdir, out)
    _requeued(states, workdir, out)
    _suspended_here(states, workdir, out)
    _stopped(states, workdir, out)
    _queued_elsewhere(states, out)
    _ended(plan, read, states, workdir, out, lines)
    _stuck(states, out)
    _other_code(_live_code(plan, workdir, states), out)
    for said in other_accounts(getattr(plan, "profile", None), states):  # (a stand-in plan of tests: none)
        out.write(f"\n{said}\n")
    _stale(stale, out)
    taken = _off_plan(plan, workdir, out)
    nested = _nested(workdir, states)
    if nested:
        out.write(f"\n{subfolder_results_text(nested, workdir)}\n")
    _scored_elsewhere(plan, states, workdir, out)
    _to_run(with_dependencies or plan.jobs, read, states, bool(stale), out, taken)
    return states


def _ended(plan: Plan, read: dict[str, JobState], states: dict[str, JobState], workdir: str | Path, out: TextIO,
           lines: int) -> None:
    """The failed and cancelled jobs: up to ENDED_SHOWN one by one (a failure with its log's last `lines`; each with
    the checkpoint a rerun resumes from), but not one that ended as one shown already did (the same state, detail
    and last log line: a hundred jobs failing on one bad file); the rest by state and detail, and those cancelled
    because a dependency ended, by that dependency."""
    scancelled = Ledger(workdir, plan.name).replay_with_shared().cancelled
    by_user = [st for st in states.values() if st.state == "cancelled" and st.slurm_id in scancelled]
    by_cause = _cancelled_by_dependency(plan, read, scancelled)
    grouped = {st.job_id for group in [by_user, *by_cause.values()] for st in group}
    ended = [st for st in states.values() if st.state in ("failed", "cancelled") and st.job_id not in grouped]
    shown: dict[tuple, str] = {}  # how a job shown ended -> its id
    # (state, detail, the job shown that ended alike, whether a last log line was compared) -> ids
    more: dict[tuple[str, str, str | None, bool], list[str]] = {}
    for st in ended:
        tail = last_lines(st.log, lines) if st.state == "failed" else []
        how = (st.state, st.detail, tail[-1] if tail else None)
        if how in shown or len(shown) >= ENDED_SHOWN:
            more.setdefault((st.state, st.detail or "no detail", shown.get(how), bool(tail)), []).append(st.job_id)
            continue
        shown[how] = st.job_id
        where = f"slurm {st.slurm_id}, " if st.slurm_id else ""
        out.write(f"\n{st.state} {st.stage} {st.job_id} ({where}{st.detail or 'no detail'})"
                  + (f"\n  log: {shlex.quote(str(st.log))}{_unwritten(st.log)}" if st.log else "") + "\n")
        for line in tail:
            out.write(f"  | {line}\n")
        requeued = requeue_text(_restarts(st))
        if requeued:
            out.write(f"  before it ended: {requeued}\n")
        saved = checkpoint_text(checkpoint_steps(workdir, st.job_id))
        if saved and not st.newer:  # a newer version's result: no retry here
            out.write(f"  {saved}: `study submit --retry-failed` resumes it there\n")
    for (state, detail, alike, logged), ids in more.items():
        said = (f"ended as {alike} above: the same detail" + (" and last log line" if logged else "")) if alike \
            else detail
        out.write(f"\n{len(ids)} more {state} job(s) ({said}): {some_ids(ids)}\n")
    if by_user:
        named = [st.job_id + (f" ({saved})" if (saved := checkpoint_text(checkpoint_steps(workdir, st.job_id))) else "")
                 for st in by_user]
        out.write(f"\ncancelled {len(by_user)} job(s) with `study cancel`: {some_ids(named)}\n")
    for cause, group in by_cause.items():
        ids = [st.job_id for st in group]
        out.write(f"\ncancelled {len(group)} job(s) because their dependency {cause} {read[cause].state}: "
                  f"{some_ids(ids)}\n")
    # a plain `study submit` skips them: they stay so (but those of a newer study's result, which none here reruns)
    over = [st for st in states.values() if st.state in ("failed", "cancelled")]
    behind = behind_newer(plan.jobs, {st.job_id for st in over}, read)
    if any(not st.newer and st.job_id not in behind for st in over):
        out.write(f"\n{RETRY_HINT}\n")


def _unwritten(log: str) -> str:
    """` (not written: ...)` after the log path of an ended job where that file is not there (a job cancelled, or
    failed, before it started: Slurm writes its log when it starts); "" where it is."""
    return "" if Path(log).exists() else " (not written: the job never started, or its log was removed)"


def _stuck(states: dict[str, JobState], out: TextIO) -> None:
    """Pending Slurm jobs that Slurm will not start as they stand, grouped by why (`stuck_reason`)."""
    from study.launch.slurm.state import stuck_reason

    stuck: dict[str, list[JobState]] = {}
    for st in states.values():
        why = stuck_reason(st.detail) if st.state == "pending" and st.slurm_id else None
        if why:
            stuck.setdefault(why, []).append(st)
    for why, group in stuck.items():
        out.write(f"\n{len(group)} pending job(s) that Slurm will not start as they stand: {why}: "
                  f"{some_ids([f'{st.stage} {st.job_id} (slurm {st.slurm_id})' for st in group], 4)}\n")


def _live_code(plan: Plan, workdir: str | Path, states: dict[str, JobState]) -> dict[str, tuple[str, str]]:
    """Each pending or running Slurm job of `states` -> (the copy of study's code it imports, that copy's code
    version), where the `queued` line of its Slurm id names a copy that can be read (study.launch.snapshot)."""
    from study.launch.snapshot import copy_version

    live = {j: st.slurm_id for j, st in states.items() if st.state in LIVE and st.slurm_id}
    if not live:
        return {}
    latest = Ledger(workdir, plan.name).replay_with_shared().latest
    versions: dict[str, str | None] = {}  # copy -> its version, each read once
    found = {}
    for job, sid in live.items():
        event = latest.get(job, {})
        folder = event.get("code") if event.get("event") == "queued" and event.get("slurm_job_id") == sid else None
        if isinstance(folder, str):
            if folder not in versions:
                versions[folder] = copy_version(folder)
            if versions[folder]:
                found[job] = (folder, versions[folder])
    return found


def _other_code(live_code: dict[str, tuple[str, str]], out: TextIO) -> None:
    """The queued and running Slurm jobs that import another version of study than this command runs (`live_code`,
    `_live_code`), grouped by the copy they import, and how to have them run this one. A copy of this very code (its
    folder is named for the digest of what it holds, study.launch.snapshot) is no other code, whatever version it
    says: one taken before a commit of the docs or a grid file (the commit it names is not this checkout's, and a
    cancelled job, submitted again, imports that copy once more), or before the edit it holds was committed (said,
    with the submit that has it name the commit)."""
    if not live_code:
        return
    from study.launch.snapshot import code_digest
    from study.version import code_version, is_modified

    here, digest = code_version(), code_digest()
    other: dict[tuple[str, str], list[str]] = {}
    to_name: dict[tuple[str, str], list[str]] = {}
    for job, (folder, version) in live_code.items():
        if Path(folder).name == digest:
            if is_modified(version) and not is_modified(here):
                to_name.setdefault((version, folder), []).append(job)
        elif version != here:
            other.setdefault((version, folder), []).append(job)
    for (version, folder), ids in other.items():
        out.write(f"\n{len(ids)} queued or running Slurm job(s) import study {version}, the copy of its code their "
                  f"submit took ({folder}), not this one's {here}; they run it to their end, requeued too "
                  f"({some_ids(ids)}): to run this code instead, `study cancel`, then `study submit --retry-failed` "
                  f"(each resumes from its checkpoint)\n")
    for (version, folder), ids in to_name.items():
        out.write(f"\n{len(ids)} queued or running Slurm job(s) import this code, from the copy a submit took before "
                  f"its edit was committed ({folder}), which says {version} ({some_ids(ids)}): `study submit` (which "
                  f"queues only what is missing) has the copy name this commit, {here}, which those that start "
                  f"after it record (a running one, the version it started with)\n")


def scored_elsewhere(plan: Plan, states: dict[str, JobState], workdir: str | Path) -> dict[str, list[str]]:
    """{pretraining job: its done evaluations} of the pretraining jobs missing here, without a checkpoint of their
    own to resume, whose evaluations are done: results copied in from another workdir without their pretraining's.
    A submit trains each from step 0, an encoder those results did not score (not one of a method that trains
    nothing: the same encoder again)."""
    scoring: dict[str, list[str]] = {}  # pretraining job -> its done evaluations (one pass: a grid has thousands)
    for ev in plan.jobs:
        if ev.stage == "evaluate" and states[ev.id].state == "done":
            for d in ev.depends_on:
                scoring.setdefault(d, []).append(ev.id)
    out = {}
    for job in plan.jobs:
        if job.stage != "pretrain" or states[job.id].state != "missing" \
                or ((job.config or {}).get("pretrain") or {}).get("method") in UNTRAINED_METHODS:
            continue  # an encoder not trained (random init, imported) is the same one again
        scored = scoring.get(job.id, [])
        if scored and "." not in checkpoint_steps(workdir, job.id):  # its checkpoint read only where it matters
            out[job.id] = scored
    return out


def _scored_elsewhere(plan: Plan, states: dict[str, JobState], workdir: str | Path, out: TextIO) -> None:
    """`scored_elsewhere`'s pretraining jobs, each with some of its done evaluations, and what a submit would do."""
    lines = [f"{job_id}: {some_ids(scored, 4)}" for job_id, scored in scored_elsewhere(plan, states, workdir).items()]
    if lines:
        out.write(f"\n{len(lines)} pretraining job(s) without a result or a checkpoint here have evaluations done "
                  f"(their results copied in from another workdir without the pretraining's?): `study submit` trains "
                  f"each from step 0, an encoder those results did not score; copy its results/<id>.json and "
                  f"jobs/<id>/ from the workdir that ran it (grids/README.md, \"One workdir, one set of results\")\n"
                  + _first_lines(lines))


def _stale(stale: dict[str, str], out: TextIO) -> None:
    """The done jobs whose results used a manifest since rebuilt (`stale`: job id -> why, of the plan's jobs; the
    table counts them `stale`), and what `study submit` then needs."""
    rebuilt = list(stale.values())
    if rebuilt:
        out.write(f"\n{len(rebuilt)} done job(s) used a manifest since rebuilt under the same name (or an "
                  f"encoder file since replaced): `study submit` refuses to go on until their results/<id>.json "
                  f"and jobs/<id>/ are moved out of the workdir (`study submit --set-aside-stale` moves them, then "
                  f"runs them again) or the old manifests (encoder files) restored:\n" + _first_lines(rebuilt))


def _first_lines(lines: list[str], n: int = 8) -> str:
    """The first `n` of `lines`, each indented on a line of its own, then `... and k more` where there are more."""
    return "".join(f"  {line}\n" for line in lines[:n]) + (f"  ... and {len(lines) - n} more\n" if len(lines) > n
                                                           else "")


def _off_plan(plan: Plan, workdir: str | Path, out: TextIO) -> set[str]:
    """Live Slurm jobs an earlier version of the grid file or another file of its name queued, and results and
    checkpoints of jobs the plan no longer has; of each, those whose settings are a job of the plan that this version
    of study gives another id (`renamed`: an older study's, not an edit's) said apart. Returns the plan's ids whose
    older results a submit takes over (`takeable`)."""
    own = Ledger(workdir, plan.name).replay().latest  # this grid's ledger, read once for all
    stale, elsewhere = outside_plan(plan, workdir, own)
    older = renamed_live(plan, workdir, own, stale)
    _older_study(out, "Slurm job(s) queued by an older version of study are still live",
                 [f"{s} (job {old}, now {new})" for s, (old, new) in older.items()],
                 f", under which `study submit` runs them (again); `scancel {' '.join(older)}` stops the older ones")
    edited = [s for s in stale if s not in older]
    if edited:
        out.write(f"\n{len(edited)} Slurm job(s) queued by an earlier version of this grid file are still live "
                  f"({some_ids(edited)}): `scancel {' '.join(edited)}` stops them alone (`study cancel` stops every "
                  f"queued or running job of the grid, these with the others)\n")
    for path, ids in elsewhere.items():
        out.write(f"\n{len(ids)} Slurm job(s) queued by {path} under the same grid name {plan.name!r} are live "
                  f"({some_ids(ids)}): not this file's jobs; `study cancel {shlex.quote(str(path))}` stops them\n")
    whole = " (of the whole grid: --where chooses among its plan's jobs only)" if getattr(
        plan, "whole", None) is not None else ""
    earlier = results_off_plan(plan, workdir, own)
    done_twins = older_results(plan, workdir, earlier)
    earlier_edited = [job for job in earlier if job not in done_twins]
    left, busy = unfinished_and_busy(plan, workdir, own, live_ids(stale, elsewhere))
    twins = renamed(plan, workdir, left)
    left_edited = [job for job in left if job not in twins]
    # what the edit changed, of both lists at once: the plan's jobs indexed once
    changes = changed_settings(plan, workdir, [*earlier_edited, *left_edited]) if earlier_edited or left_edited else {}
    taken = takeable(plan, workdir, done_twins)
    twice = second_runs(workdir, done_twins, taken)
    _older_study(out, f"result(s) of jobs an older version of study ran{whole}",
                 [f"{job} (now {new})" for job, new in taken.items()],
                 ": the same runs, not counted above until `study submit` takes them over (moves each result, job "
                 "folder and log to its new id; none runs again)")
    _older_study(out, f"result(s) of jobs an older version of study ran{whole}",
                 [f"{job} (now {done_twins[job]}, as {other})" for job, other in twice.items()],
                 ": each a second run of the settings of the older job named after `as`, which that study told "
                 "apart and this one does not (a whole number written `0`, then `0.0`, or a setting the job never "
                 "reads changed between the two); that job's result is the one taken over as the plan's job's (by "
                 "`study submit`, or before), so none runs again and no submit takes these over; they are not "
                 "counted above, nor drawn by `study report`")
    _older_study(out, f"result(s) of jobs an older version of study ran{whole}",
                 [f"{job} (now {new})" for job, new in done_twins.items() if job not in taken and job not in twice],
                 ": their jobs (or the encoders they read) were queued or run again under the new ids, or their "
                 "records do not read, so no submit takes these over; they are not counted above, nor drawn by "
                 "`study report`")
    if earlier_edited:
        out.write(f"\n{len(earlier_edited)} result(s) of jobs this grid file ran are of no job of its plan now{whole} "
                  f"({some_ids(earlier_edited)}): a job's id hashes its settings, which were changed since (or another "
                  f"version of study resolves them otherwise); they are not counted above, nor drawn by `study "
                  f"report`, and are named here until the grid file gives those settings again (they count then) or "
                  f"their results/<id>.json are moved out of {Path(workdir).resolve()}\n")
        _what_changed(changes, earlier_edited, out)
    kept = f"stay in {Path(workdir).resolve() / 'jobs'}/<id>/ until removed (`rm -r` that folder frees the space)"
    ran = [job for job, new in twins.items() if has_result(workdir, new)]
    resumes = resumable(plan, workdir, twins, taken)
    _older_study(out, f"job(s) an older version of study started did not finish{whole}",
                 [f"{job} (now {twins[job]}): {checkpoint_text(left[job])}" for job in resumes],
                 ": `study submit` takes them over (moves each job folder, its checkpoints, to its new id) and "
                 "resumes each from its checkpoint")
    _older_study(out, f"job(s) an older version of study started did not finish{whole}",
                 [f"{job} (now {twins[job]}): {checkpoint_text(left[job])}" for job in twins
                  if job not in ran and job not in resumes],
                 f", under which a submit runs them from the start, not from these checkpoints (their new ids were "
                 f"queued or run since, another older run of those settings is taken over, or, of an evaluation, an "
                 f"encoder it read is not the plan's job's: trained again under its new id, or not taken over); they "
                 f"{kept}")
    _older_study(out, f"job(s) an older version of study started did not finish{whole}",
                 [f"{job} (now {twins[job]}): {checkpoint_text(left[job])}" for job in ran],
                 f", under which they have a result now (run again from the start, or taken over): these "
                 f"checkpoints are of no use; they {kept}")
    if left_edited:
        listed = [f"{job}: {checkpoint_text(left[job])}" for job in left_edited]
        out.write(f"\n{len(left_edited)} job(s) this grid file started are of no job of its plan now and did not "
                  f"finish{whole} ({some_ids(listed, OFF_PLAN_SHOWN)}): their settings were changed since, so no "
                  f"submit resumes them unless the grid file gives those settings again; their checkpoints {kept}\n")
        _what_changed(changes, left_edited, out)
    if busy:
        listed = [f"{job}: {checkpoint_text(steps)}" for job, steps in busy.items()]
        out.write(f"\n{len(busy)} job(s) off this grid file's plan did not finish and may still run elsewhere{whole} "
                  f"({some_ids(listed, OFF_PLAN_SHOWN)}): another grid file of this workdir that shares them runs them "
                  f"(locally, or on Slurm, live or not answering), or an interrupted submit names them; this grid "
                  f"file's submits leave them (no take-over, no resume) until that ends (the `study status` of the "
                  f"grid that runs them says more; an interrupted submit is settled by the next submit)\n")
    return set(taken.values())


CHANGE_KINDS_SHOWN = 6  # the kinds of change `_what_changed` lists, one line each


def _what_changed(changes: dict[str, tuple[str, str]], job_ids: list[str], out: TextIO) -> None:
    """Of the jobs off the plan `job_ids`, what their settings hold otherwise than the plan's job of the same axes
    (`changes`: `changed_settings`' of them, or of more), a line per kind of change with how many of each stage:
    which edit of the grid file took them out (a setting changed, an axis value removed), so that what runs again,
    and why, is said."""
    kinds: dict[str, list[str]] = {}  # what changed -> the stages of the jobs it took out
    for stage, said in (changes[job] for job in job_ids if job in changes):
        kinds.setdefault(said, []).append(stage)
    if not kinds:
        return
    out.write("  what changed since, against the plan's job of the same axes:\n")
    shown = sorted(kinds.items(), key=lambda kv: -len(kv[1]))
    for said, stages in shown[:CHANGE_KINDS_SHOWN]:
        per_stage = ", ".join(f"{s} {n}" for s, n in sorted(Counter(stages).items(),
                                                             key=lambda sn: (sn[0] != "pretrain", sn[0])))
        out.write(f"  {len(stages)} ({per_stage}): {said}\n")
    rest = sum(len(stages) for _, stages in shown[CHANGE_KINDS_SHOWN:])
    if rest:
        out.write(f"  and {rest} more, changed otherwise\n")


def _older_study(out: TextIO, what: str, listed: list[str], then: str) -> None:
    """The paragraph on the jobs, results or checkpoints an older version of study left (`listed`, each with its id
    now) whose settings this version gives other ids: `what` they are, then what follows (`then`); none where none."""
    if listed:
        out.write(f"\n{len(listed)} {what} ({some_ids(listed, OFF_PLAN_SHOWN)}): the same settings as jobs of this "
                  f"grid file, which this version of study gives other ids{then}\n")


RUNNING_SHOWN = 8  # running jobs whose progress `study status` prints
OFF_PLAN_SHOWN = 4  # unfinished jobs off the plan named with their checkpoints' steps
BEFORE_RESTART = "before Slurm stopped the job to run it again; nothing since"  # `Progress.before_restart`
RETRY_HINT = ("failed and cancelled jobs stay so: `study submit --retry-failed` (the grid, --cluster and --workdir "
              "as before) reruns them, each from its last checkpoint")
ENDED_SHOWN = 5  # failed or cancelled jobs printed one by one (a failed one with its log tail); the rest by detail


def _running(states: dict[str, JobState], workdir: str | Path, out: TextIO) -> None:
    """Where each running job is (see `_where_they_got`)."""
    running = [st for st in states.values() if st.state == "running"]
    _where_they_got(running, f"running ({len(running)})", "no progress line in its log yet", workdir, out)


def _requeued(states: dict[str, JobState], workdir: str | Path, out: TextIO) -> None:
    """The pending Slurm jobs that ran before (their log is there): requeued (a preemption, `scontrol requeue`, a time
    limit), they wait to start again on their own, from their last checkpoint; nothing is to be submitted for them."""
    waiting = [st for st in states.values() if _waits_to_restart(st)]
    _where_they_got(waiting, f"requeued, waiting in Slurm's queue to start again ({len(waiting)}): each resumes "
                    f"from its last checkpoint once Slurm starts it (nothing to submit)", "no progress line in its log",
                    workdir, out)


def _waits_to_restart(st: JobState) -> bool:
    """A pending Slurm job that ran before (its log is there), not held (held: said with what frees it), not
    suspended (`_suspended`: it goes on in place) and read from Slurm (UNKNOWN, where it could not be asked: it may
    run, or have ended)."""
    from study.launch.slurm.state import stuck_reason

    return (st.state == "pending" and bool(st.slurm_id) and bool(st.log) and Path(st.log).is_file()
            and not stuck_reason(st.detail) and sacct_word(st.detail) not in ("UNKNOWN", "SUSPENDED"))


def _suspended(st: JobState) -> bool:
    """A Slurm job Slurm suspended (counted pending): stopped where it was, its process and node kept."""
    return st.state == "pending" and bool(st.slurm_id) and sacct_word(st.detail) == "SUSPENDED"


def _suspended_here(states: dict[str, JobState], workdir: str | Path, out: TextIO) -> None:
    """The suspended Slurm jobs (`scontrol suspend`, a preemption under PreemptMode=SUSPEND): not requeued, they go on
    from where they stopped once resumed, their checkpoint unused."""
    stopped = [st for st in states.values() if _suspended(st)]
    _where_they_got(stopped, f"suspended ({len(stopped)}), counted pending: Slurm stopped them where they were, "
                    f"keeping their nodes; each goes on from there once resumed (`scontrol resume <id>`, or once the "
                    f"job that preempted it ends); its checkpoint is for a rerun only", "no progress line in its log",
                    workdir, out)


def _stopped(states: dict[str, JobState], workdir: str | Path, out: TextIO) -> None:
    """The jobs counted missing that had started here: their `study submit --cluster local` ended (Ctrl-C, `study
    cancel`, a kill) before they finished; where each had got to (the next submit resumes there)."""
    stopped = [st for st in states.values() if _stopped_here(st)]
    _where_they_got(stopped, f"stopped before they finished ({len(stopped)}), counted missing: their `study submit "
                    f"--cluster local` ended; the next `study submit` resumes them (from their last checkpoint, where "
                    f"they wrote one)", "no progress line in its log", workdir, out)


def _queued_elsewhere(states: dict[str, JobState], out: TextIO) -> None:
    """The live Slurm jobs another grid of the workdir (a job grids share is queued once), or another user, queued:
    by whom, so that a user of a shared workdir knows which of the grid's jobs are someone else's run."""
    by: dict[str, list[str]] = {}
    for st in states.values():
        if st.state in LIVE and st.slurm_id and st.holder:
            by.setdefault(st.holder, []).append(st.job_id)
    if not by:
        return
    n = sum(map(len, by.values()))
    out.write(f"\n{n} live job(s) of this grid queued by another grid or user of the workdir:\n")
    for holder, ids in by.items():
        out.write(f"  {len(ids)} {holder}: {some_ids(ids)}\n")
    out.write("  this grid's `study cancel` leaves those another grid queued, and Slurm refuses it another user's; "
              "cancelled by their owner, they read cancelled here, and `study submit --retry-failed` queues them "
              "again\n")


def _stopped_here(st: JobState) -> bool:
    """A job counted missing that a local run had started (it has a log, and no Slurm id): its command ended first."""
    return st.state == "missing" and bool(st.log) and not st.slurm_id


def _where_they_got(jobs: list[JobState], header: str, silent: str, workdir: str | Path, out: TextIO) -> None:
    """Under `header`, the first RUNNING_SHOWN of `jobs`: each log's latest progress line (`silent` where it has
    none), how long ago the log was written (a job silent for hours may hang), the log's path and the step of its
    latest checkpoint (where a rerun resumes: a log killed mid-run may have gone past it)."""
    if not jobs:
        return
    out.write(f"\n{header}:\n")
    for st in jobs[:RUNNING_SHOWN]:
        pending = f", {st.detail}" if st.state == "pending" and st.detail else ""
        where = f" (slurm {st.slurm_id}{pending})" if st.slurm_id else ""
        seen = progress(st.log)
        said = (f"{seen.line}  [{_ago(seen.age_s)}]" + (f"  ({BEFORE_RESTART})" if seen.before_restart else "")
                if seen else (silent if st.log else "log not known"))
        out.write(f"  {st.stage} {st.job_id}{where}: {said}\n" + (f"    {st.holder}\n" if st.holder else "")
                  + (f"    log: {shlex.quote(str(st.log))}\n" if st.log else ""))
        requeued = requeue_text(_restarts(st))
        if requeued:
            out.write(f"    {requeued}\n")
        steps, age = checkpoints(workdir, st.job_id)
        if steps:
            written = "" if age is None else f", {'the latest ' if len(steps) > 1 else ''}written {_ago(age)}"
            out.write(f"    {checkpoint_text(steps)}{written}: a rerun resumes there\n")
    if len(jobs) > RUNNING_SHOWN:
        out.write(f"  ... and {len(jobs) - RUNNING_SHOWN} more\n")


def _to_run(jobs: list[Job], read: dict[str, JobState], states: dict[str, JobState], stale: bool,
            out: TextIO, taken: Collection[str] = ()) -> None:
    """What a plain `study submit` does next: the missing jobs of `states` it runs, not those whose older results it
    takes over (`taken`) nor those waiting on a failed or cancelled dependency (`state.blocked`, which it skips until
    --retry-failed reruns that dependency; failed and cancelled jobs are said with them) or on one a newer version of
    study ran (`state.behind_newer`), once `stale` results, if any, are set aside. `jobs`, `read`: the plan's jobs
    with their dependencies, and their states."""
    missing = [st.job_id for st in states.values() if st.state == "missing"]
    if not missing:
        return
    stuck = blocked(jobs, {j.id for j in jobs if read[j.id].state == "missing"}, read)
    behind = behind_newer(jobs, stuck, read)
    over = [job_id for job_id in missing if job_id in taken]
    waiting = [job_id for job_id in missing if job_id in stuck and job_id not in behind and job_id not in taken]
    newer = [job_id for job_id in missing if job_id in behind and job_id not in taken]
    held = len(waiting) + len(newer) + len(over)
    runs = ("runs them" if not held else "runs none of them" if held == len(missing)
            else f"runs {len(missing) - held} of them")
    runs = f"takes over {len(over)} of them (the older study's results above) and {runs}" if over else runs
    out.write(f"\n{len(missing)} job(s) missing (not run yet, or stopped): `study submit` (the grid, --cluster and "
              f"--workdir as before) {runs}"
              + (", with --set-aside-stale while stale results stop it (above)" if stale else "")
              + (f"; {len(waiting)} wait for a failed or cancelled dependency, which `study submit --retry-failed` "
                 f"runs first: {some_ids(waiting)}" if waiting else "")
              + (f"; {len(newer)} wait for a dependency a newer version of study ran, which this one never reruns "
                 f"(update this checkout): {some_ids(newer)}" if newer else "") + "\n")


def _ago(seconds: float) -> str:
    """`12 s ago`, `5 min ago`, `2.5 h ago`."""
    return f"{format_duration(seconds)} ago"


def _read_states(plan: Plan, workdir: str | Path) -> tuple[list[Job] | None, dict[str, JobState],
                                                           dict[str, JobState]]:
    """(`with_dependencies(plan)` of study.launch.grid_states, the states of those jobs, of the plan's own jobs), as
    `study status` reads them (the reasons of failures; an unsettled submit tolerated): a reduced plan's
    dependencies are read too, so that a job cancelled for a dependency's end says which."""
    with_dependencies = grid_with_dependencies(plan)
    read = grid_states(plan, workdir, with_dependencies, reasons=True, tolerate_unsettled=True)
    return with_dependencies, read, {j.id: read[j.id] for j in plan.jobs}


def _cancelled_by_dependency(plan: Plan, states: dict[str, JobState],
                             scancelled: Collection[str] = ()) -> dict[str, list[JobState]]:
    """Cancelled jobs grouped by the failed or cancelled dependency they waited for (Slurm cancels the dependents
    of a failed job, and sacct then says only CANCELLED); a job cancelled for another reason is in no group, nor one
    a `study cancel` scancelled (`scancelled`: their Slurm ids, the ledger's `cancelled` events)."""
    groups: dict[str, list[JobState]] = {}
    for job in plan.jobs:
        st = states[job.id]
        if st.state != "cancelled" or st.slurm_id in scancelled:
            continue
        cause = next((d for d in job.depends_on if d in states and states[d].state in ("failed", "cancelled")), None)
        if cause is not None:
            groups.setdefault(cause, []).append(st)
    return groups
