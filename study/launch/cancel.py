"""`study cancel GRID`: scancel the grid's Slurm jobs (those this grid file queued), stop its local commands on this
host, and say what is left and how to run the jobs again."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from study.launch.grid_states import from_this_file, grid_file, locked_states, outside_plan
from study.launch.ledger import Ledger, ledger_path, user
from study.launch.locks import submit_lock
from study.launch.state import LIVE, sacct_word
from study.launch.status import some_ids

if TYPE_CHECKING:
    from study.grids.plan import Plan

STOP_WAIT_MARGIN_S = 30.0  # `study cancel` waits for a local command: its workers' grace (STOP_GRACE_S), then this


def cancel(plan: Plan, workdir: str | Path, out: TextIO | None = None, where: dict | None = None) -> int:
    """scancel every pending or running Slurm job this grid file submitted, also for jobs an edit of the grid file
    has since removed (not those another grid, or another file of the same grid name, submitted), and stop this
    grid's local commands on this host (local/stop.py); returns how many Slurm jobs it cancelled. It holds the
    workdir's submit lock from reading the states to its scancel, so a submit in progress finishes queueing first
    and its jobs are cancelled too. Of a plan `--where` reduced (`where`: its parsed conditions, repeated in the
    command that runs them again), only the selected jobs' Slurm jobs (none an edit of the grid file removed), and no
    local command (one runs a grid's jobs together: it is named instead)."""
    out = out or sys.stdout
    reduced = getattr(plan, "whole", None) is not None
    workdir = Path(workdir).resolve()
    if not ledger_path(workdir, plan.name).parent.is_dir():  # no submit ever ran there: nothing to cancel nor create
        out.write(f"cancelled 0 Slurm job(s) of grid {plan.name}: nothing was submitted with workdir {workdir} (no "
                  "such folder, or no ledgers in it; give the one `study submit` used, --workdir or $STUDY_WORKDIR)\n")
        return 0
    with submit_lock(workdir):
        states = locked_states(plan, workdir)
        ledger, this_file = Ledger(workdir, plan.name), grid_file(plan)
        latest = ledger.replay_with_shared().latest
        own_events = ledger.replay().latest
        own = {e["slurm_job_id"] for e in own_events.values()
               if e["event"] == "queued" and from_this_file(e, this_file)}
        live = [st.slurm_id for st in states.values()
                if st.state in LIVE and st.slurm_id and sacct_word(st.detail) != "COMPLETED"]  # not a finishing one
        stale, elsewhere = ([], {}) if reduced else outside_plan(plan, workdir, own_events)
        ids = [sid for sid in live if sid in own] + stale
        said, refused, waiting = [], [], {}
        if ids:
            from study.launch.slurm.state import denied, scancel

            # another user's jobs (a labmate queued them with this grid file) are left running
            theirs, said = denied(scancel(ids))
            refused, ids = [sid for sid in ids if sid in theirs], [sid for sid in ids if sid not in theirs]
            if ids:
                ledger.append([{"event": "cancelled", "slurm_job_ids": ids}])
                waiting = _waiting_elsewhere(workdir, plan.name, {j: e for j, e in own_events.items()
                                                                  if e.get("slurm_job_id") in ids})
    local = [st.job_id for st in states.values() if st.state in LIVE and not st.slurm_id]
    if ids or not local:  # a grid run here only: its local lines alone
        stale = [sid for sid in stale if sid not in refused]
        out.write(f"cancelled {len(ids)} Slurm job(s) of grid {plan.name}"
                  + (f" ({len(stale)} of them queued by an earlier version of the grid file)" if stale else "") + "\n")
    if refused:
        by = sorted({e["user"] for e in latest.values() if e.get("slurm_job_id") in refused and e.get("user")})
        out.write(f"{len(refused)} Slurm job(s) of grid {plan.name} not cancelled, another user's ({some_ids(refused)}"
                  + (f"; queued by user {', '.join(by)}" if by else "") + "): scancel refused them (Access/permission "
                  "denied); only their owner, root or a Slurm operator may cancel them\n")
    if ids:
        selected = "".join(f" --where {shlex.quote(f'{c}={v}')}" for c, vs in (where or {}).items() for v in vs)
        out.write(f"to run them again: `study submit {shlex.quote(str(this_file or plan.name))} --cluster slurm "
                  f"--retry-failed{selected}` (with your --profile and --workdir); one that had started resumes from "
                  "its last checkpoint\n")
    for grid, jobs in waiting.items():
        out.write(f"{len(jobs)} job(s) of grid {grid} wait on jobs cancelled here and will not start (Slurm: "
                  f"DependencyNeverSatisfied; {some_ids(jobs)}): `study cancel` that grid, then submit it again once "
                  "these are queued again\n")
    if said:
        out.write("scancel refused some (a job that ended since its state was read needs no cancel):\n"
                  + "".join(f"  {line}\n" for line in said))
    shared = set(live) - own
    left = [st for st in states.values() if st.slurm_id in shared]
    if left:
        owners = sorted({f"grid {latest[st.job_id]['grid']}" if latest.get(st.job_id, {}).get("grid")
                         else str(latest.get(st.job_id, {}).get("grid_file") or "another grid") for st in left})
        out.write(f"{len(left)} shared job(s) queued by another grid left running "
                  f"({some_ids([st.slurm_id for st in left])}; queued by {', '.join(owners)}): cancel that grid\n")
    for path, sids in elsewhere.items():
        out.write(f"{len(sids)} Slurm job(s) queued by {path} under the same grid name left running "
                  f"({some_ids(sids)}): `study cancel {shlex.quote(str(path))}` stops them\n")
    if local and reduced:
        out.write(f"{len(local)} selected job(s) run in a `study submit --cluster local` command, which stops as a "
                  f"whole, not by --where: `study cancel` without --where stops it ({some_ids(local)})\n")
    elif local:
        _stop_local(plan, workdir, this_file, len(local), out)
    return len(ids)


def _waiting_elsewhere(workdir: Path, grid: str, cancelled: dict[str, dict]) -> dict[str, list[str]]:
    """Other grid name -> its jobs queued on Slurm that wait on one of the jobs just scancelled (`cancelled`: job id
    -> the `queued` event of this grid's ledger that it was cancelled under): queued after it, so with an `afterok`
    on that Slurm job, which can no longer be met (a job shared by two grids is queued once, by the first)."""
    from study.launch.ledger import workdir_ledgers
    from study.launch.runner import job_dir, read_job_file

    out: dict[str, list[str]] = {}
    first = min((e.get("at", "") for e in cancelled.values()), default="")  # one queued before waits on none
    for other in workdir_ledgers(workdir):
        if other.grid == grid:
            continue
        replay = other.replay()
        for job, e in replay.latest.items():
            if e["event"] != "queued" or e.get("slurm_job_id") in replay.cancelled or job in cancelled \
                    or e.get("at", "") < first:
                continue
            try:
                deps = read_job_file(job_dir(workdir, job) / "job.json").depends_on
            except (OSError, ValueError, KeyError):  # a job file gone or not whole: nothing to tell of it
                continue
            if any(d in cancelled and e.get("at", "") >= cancelled[d].get("at", "") for d in deps):
                out.setdefault(other.grid, []).append(job)
    return out


def _stop_local(plan: Plan, workdir: Path, this_file: str | None, n_local: int, out: TextIO) -> None:
    """Stop this grid file's `study submit --cluster local` commands on this host (their workers checkpoint, then
    end) and wait for them; name those it cannot signal, or say that the `n_local` jobs run locally are another
    command's."""
    from study.launch.local.scheduler import STOP_GRACE_S
    from study.launch.local.stop import live_commands, stop_commands, wait_stopped

    signalled, left_cmds = stop_commands(live_commands(workdir, plan.name, this_file))
    if signalled:
        out.write(f"stopping {len(signalled)} `study submit --cluster local` of grid {plan.name} "
                  f"({', '.join(map(str, signalled))}): its workers checkpoint, then end\n")
        out.flush()
        late = wait_stopped(signalled, STOP_GRACE_S + STOP_WAIT_MARGIN_S)
        out.write(f"still stopping after {STOP_GRACE_S + STOP_WAIT_MARGIN_S:.0f} s: {', '.join(map(str, late))}; "
                  "`study status` says when its jobs have stopped\n" if late else
                  f"stopped {len(signalled)} `study submit --cluster local` of grid {plan.name} "
                  f"({', '.join(map(str, signalled))}); `study submit` resumes its jobs\n")
    if left_cmds:
        # another user's command (a lab's shared workdir) is not ours to signal
        theirs = "; another user's: by that user or root" if any(c.user not in (None, user()) for c in left_cmds) \
            else ""
        out.write(f"stop these `study submit --cluster local` of grid {plan.name} where they run (Ctrl-C or "
                  f"kill{theirs}): {', '.join(map(str, left_cmds))}\n")
    if not signalled and not left_cmds:
        out.write(f"{n_local} job(s) run locally by a command of another grid or grid file (a shared job): "
                  f"stop that command\n")
