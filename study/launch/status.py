"""`study status GRID` and `study cancel GRID`: from the result files, the ledger and sacct (forced)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from study.launch.ledger import Ledger
from study.launch.locks import submit_lock
from study.launch.state import LIVE, STATES, JobState, classify, has_result, last_lines, slurm_state


def grid_states(plan: Any, workdir: str | Path, jobs: list[Any] | None = None, *,
                settle: bool = True) -> dict[str, JobState]:
    """The state of every job of `plan` (or of `jobs`): result files first, then the latest event in the ledgers
    (live Slurm ones asked of sacct, forced). Every command that decides from states (submit on either backend,
    status, cancel) reads them here.

    With `settle`, the arrays of an interrupted Slurm submit of any grid of the workdir (intents without `queued`
    lines) are settled first, under the submit lock, so that a submit still queueing them is waited for rather
    than judged lost. Without it (a dry run, or a submit that holds the lock and settled them itself) nothing is
    written, and their jobs read as not submitted."""
    workdir = Path(workdir).resolve()
    ledger = Ledger(workdir, plan.name)
    replay = ledger.replay_with_shared()
    if settle and replay.unsettled:
        from study.launch.slurm.submit import recover_all

        with submit_lock(workdir):
            recover_all(workdir)
        replay = ledger.replay_with_shared()
    wanted = {j.id for j in (plan.jobs if jobs is None else jobs)}
    ids = {j: sid for j, sid in replay.slurm_ids().items() if j in wanted}  # sacct is asked of these only
    if ids:
        from study.launch.slurm.state import query

        live, logs = query(workdir, ids.values())
    else:
        live, logs = {}, {}
    return classify(plan.jobs if jobs is None else jobs, workdir, replay, live, logs)


def locked_states(plan: Any, workdir: str | Path) -> dict[str, JobState]:
    """`grid_states` for a command that holds the submit lock (a submit, on either backend, from reading the states
    to its last ledger line): every grid's interrupted Slurm submits settled first."""
    from study.launch.slurm.submit import recover_all

    recover_all(workdir)
    return grid_states(plan, workdir, settle=False)


def live_outside_plan(plan: Any, workdir: str | Path) -> list[str]:
    """Slurm ids of jobs this grid's ledger queued that are no longer in the plan (the grid file was edited since)
    and are still pending or running."""
    workdir = Path(workdir).resolve()
    in_plan = {j.id for j in plan.jobs}
    gone = {sid for job, sid in Ledger(workdir, plan.name).replay().slurm_ids().items()
            if job not in in_plan and not has_result(workdir, job)}
    if not gone:
        return []
    from study.launch.slurm.state import query

    raw, _ = query(workdir, gone)
    return sorted(sid for sid in gone if slurm_state(raw.get(sid, "")) in LIVE)


def counts(plan: Any, states: dict[str, JobState]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for job in plan.jobs:
        row = out.setdefault(job.stage, dict.fromkeys(STATES, 0))
        row[states[job.id].state] += 1
    return out


def print_status(plan: Any, workdir: str | Path, out: TextIO | None = None, lines: int = 8) -> dict[str, JobState]:
    out = out or sys.stdout
    states = grid_states(plan, workdir)
    table = counts(plan, states)
    out.write(f"grid {plan.name}: {len(plan.jobs)} job(s), workdir {Path(workdir).resolve()}\n")
    if not Path(workdir).is_dir():
        out.write("(no such folder: nothing was submitted with this workdir; give the one `study submit` used, "
                  "--workdir or $STUDY_WORKDIR)\n")
    out.write(f"{'stage':<10}" + "".join(f"{s:>11}" for s in STATES) + "\n")
    for stage, row in table.items():
        out.write(f"{stage:<10}" + "".join(f"{row[s]:>11}" for s in STATES) + "\n")
    by_cause = _cancelled_by_dependency(plan, states)
    grouped = {st.job_id for group in by_cause.values() for st in group}
    for st in states.values():
        if st.state not in ("failed", "cancelled") or st.job_id in grouped:
            continue
        where = f"slurm {st.slurm_id}, " if st.slurm_id else ""
        out.write(f"\n{st.state} {st.stage} {st.job_id} ({where}{st.detail or 'no detail'})"
                  + (f"\n  log: {st.log}" if st.log else "") + "\n")
        if st.state == "failed":
            for line in last_lines(st.log, lines):
                out.write(f"  | {line}\n")
    for cause, group in by_cause.items():
        ids = [st.job_id for st in group]
        out.write(f"\ncancelled {len(group)} job(s) because their dependency {cause} {states[cause].state}: "
                  f"{', '.join(ids[:8])}{' ...' if len(ids) > 8 else ''}\n")
    stale = live_outside_plan(plan, workdir)
    if stale:
        out.write(f"\n{len(stale)} Slurm job(s) queued by an earlier version of this grid file are still live "
                  f"({', '.join(stale[:8])}{' ...' if len(stale) > 8 else ''}): `study cancel` stops them\n")
    return states


def _cancelled_by_dependency(plan: Any, states: dict[str, JobState]) -> dict[str, list[JobState]]:
    """Cancelled jobs grouped by the failed or cancelled dependency they waited for (Slurm cancels the dependents
    of a failed job, and sacct then says only CANCELLED); a job cancelled for another reason is in no group."""
    groups: dict[str, list[JobState]] = {}
    for job in plan.jobs:
        st = states[job.id]
        if st.state != "cancelled":
            continue
        cause = next((d for d in job.depends_on if d in states and states[d].state in ("failed", "cancelled")), None)
        if cause is not None:
            groups.setdefault(cause, []).append(st)
    return groups


def cancel(plan: Any, workdir: str | Path, out: TextIO | None = None) -> int:
    """scancel every pending or running Slurm job this grid submitted, also for jobs an edit of the grid file has
    since removed (not those another grid submitted for a shared job), and stop this grid's local commands on this
    host (local/stop.py); returns how many Slurm jobs it cancelled."""
    out = out or sys.stdout
    states = grid_states(plan, workdir)
    own = set(Ledger(Path(workdir).resolve(), plan.name).replay().slurm_ids().values())
    live = [st.slurm_id for st in states.values() if st.state in LIVE and st.slurm_id]
    stale = live_outside_plan(plan, workdir)
    ids = [sid for sid in live if sid in own] + stale
    said = []
    if ids:
        from study.launch.slurm.state import scancel

        said = scancel(ids)
    local = [st.job_id for st in states.values() if st.state in LIVE and not st.slurm_id]
    out.write(f"cancelled {len(ids)} Slurm job(s) of grid {plan.name}"
              + (f" ({len(stale)} of them queued by an earlier version of the grid file)" if stale else "") + "\n")
    if said:
        out.write("scancel refused some (a job that ended since its state was read needs no cancel):\n"
                  + "".join(f"  {line}\n" for line in said))
    if len(live) > len(ids):
        out.write(f"{len(live) - len(ids)} shared job(s) queued by another grid left running: cancel that grid\n")
    if local:
        from study.launch.local.stop import live_commands, stop_commands

        signalled, left = stop_commands(live_commands(workdir, plan.name))
        if signalled:
            out.write(f"stopped {len(signalled)} `study submit --cluster local` of grid {plan.name} "
                      f"({', '.join(map(str, signalled))}): its workers checkpoint, then end; `study submit` "
                      f"resumes them\n")
        if left:
            out.write(f"stop these `study submit --cluster local` of grid {plan.name} where they run (Ctrl-C or "
                      f"kill): {', '.join(map(str, left))}\n")
        if not signalled and not left:
            out.write(f"{len(local)} job(s) run locally by a command of another grid (a shared job): stop that "
                      f"grid's `study submit --cluster local`\n")
    return len(ids)
