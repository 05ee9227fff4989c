"""`study status GRID` and `study cancel GRID`: from the result files, the ledger and sacct (forced)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from study.launch.ledger import Ledger
from study.launch.state import LIVE, STATES, JobState, classify, last_lines


def grid_states(plan: Any, workdir: str | Path) -> dict[str, JobState]:
    """Every job's state: result files first, then the ledger's latest event (Slurm ones asked of sacct)."""
    workdir = Path(workdir).resolve()
    ledger = Ledger(workdir, plan.name)
    if ledger.replay().open_intents:
        from study.launch.slurm.submit import recover

        recover(ledger)
    replay = ledger.replay_with_shared()
    ids = replay.slurm_ids()
    if ids:
        from study.launch.slurm.state import query

        live, logs = query(workdir, ids.values())
    else:
        live, logs = {}, {}
    return classify(plan.jobs, workdir, replay, live, logs)


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
    out.write(f"{'stage':<10}" + "".join(f"{s:>11}" for s in STATES) + "\n")
    for stage, row in table.items():
        out.write(f"{stage:<10}" + "".join(f"{row[s]:>11}" for s in STATES) + "\n")
    bad = [st for st in states.values() if st.state in ("failed", "cancelled")]
    for st in bad:
        where = f"slurm {st.slurm_id}, " if st.slurm_id else ""
        out.write(f"\n{st.state} {st.stage} {st.job_id} ({where}{st.detail or 'no detail'})"
                  + (f"\n  log: {st.log}" if st.log else "") + "\n")
        if st.state == "failed":
            for line in last_lines(st.log, lines):
                out.write(f"  | {line}\n")
    return states


def cancel(plan: Any, workdir: str | Path, out: TextIO | None = None) -> int:
    """scancel every pending or running Slurm job this grid submitted (not those another grid submitted for a
    shared job); returns how many."""
    out = out or sys.stdout
    states = grid_states(plan, workdir)
    own = set(Ledger(Path(workdir).resolve(), plan.name).replay().slurm_ids().values())
    live = [st.slurm_id for st in states.values() if st.state in LIVE and st.slurm_id]
    ids = [sid for sid in live if sid in own]
    if ids:
        from study.launch.slurm.state import scancel

        scancel(ids)
    local = [st.job_id for st in states.values() if st.state in LIVE and not st.slurm_id]
    out.write(f"cancelled {len(ids)} Slurm job(s) of grid {plan.name}\n")
    if len(live) > len(ids):
        out.write(f"{len(live) - len(ids)} shared job(s) queued by another grid left running: cancel that grid\n")
    if local:
        out.write(f"{len(local)} job(s) run locally: stop their `study submit --cluster local` (Ctrl-C)\n")
    return len(ids)
