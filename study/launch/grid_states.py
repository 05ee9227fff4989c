"""The states of a grid's jobs now, which every command that decides from them reads (submit on either backend,
status, cancel): `grid_states` (result files, the ledgers, Slurm asked), `locked_states` (under the submit lock),
`outside_plan` (live Slurm jobs the plan no longer has), `results_off_plan` (results of jobs it no longer has),
`checkpoints_off_plan` (checkpoints of jobs it no longer has that did not finish), `renamed` (those of them whose
settings are a job of the plan's that this version of study gives another id: study updated since they were queued).

A grid's ledger is keyed on its name; each Slurm submission and local run also records the grid file it came from
(`grid_file`, its resolved path). A job queued from another file under the same name (a copied grid) is never taken
for this file's (`from_this_file`): not one of its stale jobs, and not cancelled with it. Events without a path (an
older study) count as this file's. Where only a job's traces are said (its result or checkpoint off the plan), an
event that names a file no longer there counts as this file's too (`ran_from_this_file`): the grid file moved or was
renamed (a project folder moved with its workdir), which would otherwise hide them.
"""
from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from study.errors import StudyError
from study.launch.ledger import Ledger, workdir_ledgers
from study.launch.locks import submit_lock
from study.launch.state import LIVE, JobState, classify, has_result, local_state, slurm_state
from study.launch.traces import checkpoint_steps

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan

UNSETTLED = "unsettled"  # the detail of a job an interrupted submit may have queued, while Slurm cannot be asked


def grid_file(plan: Plan) -> str | None:
    """The resolved path of the plan's grid file (recorded on the ledger lines of every Slurm submission and local
    run), None when unknown."""
    path = getattr(plan, "path", None)
    return str(Path(path).resolve()) if path else None


def from_this_file(event: dict, ours: str | None) -> bool:
    """Whether a ledger event (`queued`, `intent`, `local`) was written for the grid file `ours` (`grid_file(plan)`;
    None: unknown), or does not say which."""
    theirs = event.get("grid_file")
    return theirs is None or ours is None or theirs == ours


def ran_from_this_file(event: dict, ours: str | None) -> bool:
    """`from_this_file`, or the event names a grid file no longer there (moved or renamed to `ours`, or deleted): for
    what status and report say of a job's result or checkpoint, not for what to cancel or stop."""
    theirs = event.get("grid_file")
    return from_this_file(event, ours) or isinstance(theirs, str) and not Path(theirs).exists()


def grid_states(plan: Plan, workdir: str | Path, jobs: list[Job] | None = None, *,
                settle: bool = True, reasons: bool = False, tolerate_unsettled: bool = False) -> dict[str, JobState]:
    """The state of every job of `plan` (or of `jobs`): result files first, then the latest event in the ledgers
    (live Slurm ones asked of sacct, forced; with `reasons`, pending ones also of squeue: `slurm.state.query`).
    Every command that decides from states (submit on either backend, status, cancel) reads them here.

    With `settle`, the arrays of an interrupted Slurm submit of any grid of the workdir (intents without `queued`
    lines) are settled first, under the submit lock, so that a submit still queueing them is waited for rather
    than judged lost. Without it (a dry run, or a submit that holds the lock and settled them itself) nothing is
    written, and their jobs read as not submitted. When Slurm cannot be asked to settle them, a StudyError; with
    `tolerate_unsettled` (status: it decides nothing) a warning instead, and their jobs read pending, with the
    detail "unsettled: ..."."""
    workdir = Path(workdir).resolve()
    ledger = Ledger(workdir, plan.name)
    replay = ledger.replay_with_shared()
    unsettled_why = None
    if settle and replay.unsettled:
        from study.launch.slurm.submit import recover_all

        with submit_lock(workdir):
            try:
                recover_all(workdir)
            except StudyError as e:
                if not tolerate_unsettled:
                    raise
                unsettled_why = str(e)
        replay = ledger.replay_with_shared()
    wanted = {j.id for j in (plan.jobs if jobs is None else jobs)}
    folders = replay.slurm_folders(wanted)  # sacct is asked of these only
    if folders:
        from study.launch.slurm.state import query

        live, logs, ended, accounts = query(workdir, folders, reasons=reasons)
    else:
        live, logs, ended, accounts = {}, {}, {}, {}
    states = classify(plan.jobs if jobs is None else jobs, workdir, replay, live, logs, ended, accounts)
    if unsettled_why is not None:
        print(f"study: warning: an interrupted submit's array(s) are unsettled: {unsettled_why}", file=sys.stderr,
              flush=True)
        for intent in replay.open_intents + replay.shared_open_intents:
            for job_id in intent.get("jobs", []):
                st = states.get(job_id)
                if st is not None and st.state != "done" and st.state not in LIVE:
                    states[job_id] = JobState(job_id, st.stage, "pending",
                                              f"{UNSETTLED}: array {intent.get('name')} may have queued it")
    return states


def dry_run_states(plan: Plan, workdir: str | Path, err: TextIO,
                   taking: Mapping[str, str] | None = None) -> dict[str, JobState]:
    """`grid_states` for a dry run, which writes nothing: an interrupted Slurm submit's jobs read as not submitted,
    which `err` is told; the jobs whose older results a submit takes over first read done, as they will (`taking`:
    {old id: new id}, the dry run's `take_over`; None: `to_take_over`, study.launch.take_over)."""
    from dataclasses import replace

    from study.launch.take_over import to_take_over

    if Ledger(Path(workdir).resolve(), plan.name).replay_with_shared().unsettled:
        print("[study] an earlier submit was interrupted before recording what it queued; this dry run counts its "
              "jobs as not submitted (a real submit, status or cancel asks Slurm first)", file=err)
    states = grid_states(plan, workdir, settle=False)
    for new in (to_take_over(plan, workdir) if taking is None else taking).values():
        if new in states:
            states[new] = replace(states[new], state="done", detail="taken over")
    return states


def locked_states(plan: Plan, workdir: str | Path) -> dict[str, JobState]:
    """`grid_states` for a command that holds the submit lock (a submit on either backend, from reading the states
    to its last ledger line; a cancel, to its scancel): every grid's interrupted Slurm submits settled first."""
    from study.launch.slurm.submit import recover_all

    recover_all(workdir)
    return grid_states(plan, workdir, settle=False)


def grid_jobs(plan: Plan) -> list[Job]:
    """Every job of the plan's grid (of a plan `--where` reduced, its whole grid's)."""
    return getattr(plan, "grid_jobs", plan.jobs)  # (a stand-in plan of tests: its jobs)


def grid_ids(plan: Plan) -> set[str]:
    """The ids of every job of the plan's grid (`grid_jobs`)."""
    return {j.id for j in grid_jobs(plan)}


def with_dependencies(plan: Plan) -> list[Job] | None:
    """The dependencies the plan's jobs have that it lacks (a plan `--where` reduced), then its jobs: plan order (a
    dependency before its dependents; an evaluation's are pretraining jobs, which have none); None for a whole
    plan."""
    if getattr(plan, "whole", None) is None:
        return None
    ids = {j.id for j in plan.jobs}
    lacking = dict.fromkeys(d for j in plan.jobs for d in j.depends_on if d not in ids)
    return [plan.job(d) for d in lacking] + plan.jobs


def results_off_plan(plan: Plan, workdir: str | Path, latest: dict[str, dict] | None = None) -> list[str]:
    """Ids of the jobs this grid file ran (its ledger's queued or local events) that the plan no longer has and whose
    result file is in results/: a job's id hashes its settings, so these ran under settings the grid file has since
    changed (or that another version of study resolves otherwise). Neither status nor the report counts them.
    `latest`: as for `outside_plan`."""
    in_plan, this_file = grid_ids(plan), grid_file(plan)
    latest = Ledger(workdir, plan.name).replay().latest if latest is None else latest
    return sorted(job for job, e in latest.items()
                  if job not in in_plan and ran_from_this_file(e, this_file) and has_result(workdir, job))


def checkpoints_off_plan(plan: Plan, workdir: str | Path, latest: dict[str, dict] | None = None,
                         live_slurm: Collection[str] = ()) -> dict[str, dict[str, list[int]]]:
    """The jobs this grid file ran (as `results_off_plan`) that the plan no longer has and that did not finish (no
    result file) but left a training checkpoint in their run folder, each with its checkpoints' [step, total]
    (`traces.checkpoint_steps`): an edit of the grid file took them out midway, so no submit resumes them until the
    file gives their settings again, and their checkpoints stay on disk. Not a local run still running (its worker
    or command alive) nor a Slurm job in `live_slurm` (`outside_plan`'s: said as live). `latest`: as for
    `outside_plan`."""
    in_plan, this_file = grid_ids(plan), grid_file(plan)
    latest = Ledger(workdir, plan.name).replay().latest if latest is None else latest
    out = {}
    for job, e in sorted(latest.items()):
        if job in in_plan or not ran_from_this_file(e, this_file) or has_result(workdir, job):
            continue
        if e["event"] == "local" and local_state(e, workdir) in LIVE or e.get("slurm_job_id") in live_slurm:
            continue
        steps = checkpoint_steps(workdir, job)
        if steps:
            out[job] = steps
    return out


def unfinished_off_plan(plan: Plan, workdir: str | Path, latest: dict[str, dict] | None = None,
                        live_slurm: Collection[str] | None = None) -> dict[str, dict[str, list[int]]]:
    """`checkpoints_off_plan` less the jobs Slurm runs still and those that may run still elsewhere: the first of
    `unfinished_and_busy`."""
    return unfinished_and_busy(plan, workdir, latest, live_slurm)[0]


def unfinished_and_busy(plan: Plan, workdir: str | Path, latest: dict[str, dict] | None = None,
                        live_slurm: Collection[str] | None = None
                        ) -> tuple[dict[str, dict[str, list[int]]], dict[str, dict[str, list[int]]]]:
    """(free, busy) of `checkpoints_off_plan` less the jobs Slurm runs still: busy, those that may run still
    elsewhere (`live_elsewhere`); free, the rest. Asks Slurm (`outside_plan`, unless the caller has its `live_ids` in
    `live_slurm`) only where there are some. `latest`: as for `outside_plan`."""
    latest = Ledger(workdir, plan.name).replay().latest if latest is None else latest
    left = checkpoints_off_plan(plan, workdir, latest, live_slurm or ())
    if live_slurm is None and left:  # the checkpoints read once, Slurm asked only where there are some
        live = live_ids(*outside_plan(plan, workdir, latest))
        left = {job: steps for job, steps in left.items() if latest[job].get("slurm_job_id") not in live}
    busy = live_elsewhere(plan, workdir, left)
    return ({job: steps for job, steps in left.items() if job not in busy},
            {job: steps for job, steps in left.items() if job in busy})


def live_elsewhere(plan: Plan, workdir: str | Path, jobs: Collection[str]) -> set[str]:
    """Of `jobs` (off the plan, not live by this grid's ledger: `checkpoints_off_plan`'s), those that may still run
    in a job folder a take-over would move: of another grid's ledger (a grid sharing the job) whose latest line of it
    is not older than this grid's, a local run still running or pending in a live command, or a Slurm submission
    Slurm says live (or cannot tell of); of any grid's, an interrupted Slurm submit's (an `intent` without `queued`
    lines: one a submit's take-over could not settle first, Slurm not answering, or a dry run's) naming it."""
    if not jobs:
        return set()
    workdir = Path(workdir).resolve()
    replays = {ledger.grid: ledger.replay() for ledger in workdir_ledgers(workdir)}
    own = replays[plan.name].latest if plan.name in replays else {}
    live: set[str] = set()
    queued: dict[str, tuple[str, str | None]] = {}  # Slurm id -> (job, its array's folder)
    for grid, replay in replays.items():
        live.update(job for intent in replay.open_intents for job in intent["jobs"] if job in jobs)
        if grid == plan.name:  # (its own: `checkpoints_off_plan`'s)
            continue
        for job in jobs:
            e = replay.latest.get(job)
            if e is None or e.get("at", "") < own.get(job, {}).get("at", ""):  # this grid's is newer
                continue
            if e["event"] == "local" and local_state(e, workdir) in LIVE:
                live.add(job)
            elif e["event"] == "queued":
                queued[e["slurm_job_id"]] = (job, e.get("folder"))
    if queued:
        from study.launch.slurm.state import query

        raw = query(workdir, {sid: folder for sid, (_, folder) in queued.items()}).states
        live.update(job for sid, (job, _) in queued.items() if slurm_state(raw.get(sid, "")) in LIVE)
    return live


def live_ids(stale: list[str], elsewhere: dict[str, list[str]]) -> list[str]:
    """The Slurm ids of `outside_plan`'s two parts (this file's, other files') in one list."""
    return [*stale, *(i for ids in elsewhere.values() for i in ids)]


def outside_plan(plan: Plan, workdir: str | Path,
                 latest: dict[str, dict] | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """Live Slurm jobs this grid's ledger holds that are no longer in the plan: (ids queued from this grid file,
    by an earlier version of it; {another grid file with the same grid name: ids it queued}). `latest`: the grid's
    own ledger replayed (`Ledger.replay().latest`), where the caller has it."""
    workdir = Path(workdir).resolve()
    in_plan = grid_ids(plan)
    latest = Ledger(workdir, plan.name).replay().latest if latest is None else latest
    gone = {job: e for job, e in latest.items()
            if e["event"] == "queued" and job not in in_plan and not has_result(workdir, job)}
    if not gone:
        return [], {}
    from study.launch.slurm.state import query

    # where sacct cannot say (no accounting), the query of the plan's jobs (grid_states) warned: not once more for
    # these; but where none of the plan's jobs is on Slurm (every id changed by an edit) there was no such query
    asked = any(e["event"] == "queued" for job, e in latest.items() if job in in_plan)
    raw = query(workdir, {e["slurm_job_id"]: e.get("folder") for e in gone.values()}, warn=not asked).states
    ours: list[str] = []
    others: dict[str, list[str]] = {}
    this_file = grid_file(plan)
    for e in gone.values():
        sid = e["slurm_job_id"]
        if slurm_state(raw.get(sid, "")) not in LIVE:
            continue
        if from_this_file(e, this_file):
            ours.append(sid)
        else:
            others.setdefault(e["grid_file"], []).append(sid)
    return sorted(ours), {k: sorted(v) for k, v in sorted(others.items())}


def renamed(plan: Plan, workdir: str | Path, job_ids: Iterable[str]) -> dict[str, str]:
    """{id: the id of the plan's job of the same settings} for each of `job_ids` (jobs off the plan) whose job file
    (jobs/<id>/job.json) holds settings that this version of study hashes to a job of the plan: queued or run by a
    version of study whose job ids hashed those settings otherwise (study was updated since; not an edit of the grid
    file). An evaluation's encoders count under their own ids of now, also an encoder another grid's submit took
    over (study.launch.take_over: its job file moved to the plan's id). Ids without a readable job file are left
    out."""
    from study.grids.jobs import job_id
    from study.launch.runner import job_dir, read_job_file

    memo: dict[str, str | None] = {}
    taken: list[dict[str, str]] = []  # [`taken_over`'s map], read once, where a job file is gone

    def now(job: str) -> str | None:
        if job not in memo:
            memo[job] = None  # (a cycle, which no job file holds, reads unknown)
            try:
                config = read_job_file(job_dir(workdir, job) / "job.json").config
                if isinstance(config.get("encoders"), list):
                    config = {**config, "encoders": [now(e) or e for e in config["encoders"]]}
                memo[job] = job_id(config)
            except FileNotFoundError:
                if not taken:
                    from study.launch.take_over import taken_over

                    taken.append(taken_over(plan, workdir))
                memo[job] = taken[0].get(job)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                memo[job] = None  # unreadable, or no job file of this study's: no id to tell
        return memo[job]

    in_plan = grid_ids(plan)
    return {job: new for job in job_ids if (new := now(job)) not in (None, job) and new in in_plan}


def renamed_live(plan: Plan, workdir: str | Path, latest: dict[str, dict],
                 live: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{Slurm id: (its job's id, the id this version of study gives that job's settings)} for each of `live` (Slurm
    ids of jobs off the plan: `outside_plan`'s, of the ledger's `latest` events) that an older study queued under
    another id (`renamed`)."""
    by_slurm = {e.get("slurm_job_id"): job for job, e in latest.items() if e["event"] == "queued"}
    live = [sid for sid in live if sid in by_slurm]
    now = renamed(plan, workdir, [by_slurm[sid] for sid in live])
    return {sid: (by_slurm[sid], now[by_slurm[sid]]) for sid in live if by_slurm[sid] in now}


ACCOUNT_IDS_SHOWN = 50  # the pending Slurm ids one `scontrol update` line of `other_accounts` names


def other_accounts(profile: Any, states: dict[str, JobState]) -> list[str]:
    """What to say of the live Slurm jobs of `states` that are on another account than `profile` gives their stage
    now (sacct's account, `JobState.account`, compared without case: Slurm keeps account names in lower case), a
    paragraph per account the profile names: the profile was switched to another account since they were queued (a
    job's id does not hold its account: no submit queues them again), or Slurm put them on the user's default
    account (a cluster that does not enforce associations, for an account the user has none with). [] where every
    such job is on its stage's account, where the profile names none (or is None), or where sacct did not say."""
    wrong: dict[tuple[str, str], list[JobState]] = {}
    for st in states.values() if profile is not None else ():
        if st.state not in LIVE or not st.slurm_id or not st.account:
            continue
        placement = profile.placement(st.stage)
        if placement.account and placement.account.lower() != st.account.lower():
            wrong.setdefault((placement.key("account"), placement.account), []).append(st)
    said = []
    where = getattr(profile, "path", None) or "built-in default"
    for (key, account), group in wrong.items():
        pending = [st.slurm_id for st in group if st.state == "pending"]
        jobs = ", ".join(f"{st.stage} {st.job_id} (slurm {st.slurm_id}, {st.state}) on {st.account}"
                         for st in group[:4]) + (f" and {len(group) - 4} more" if len(group) > 4 else "")
        move = (f"`scontrol update JobId={','.join(pending[:ACCOUNT_IDS_SHOWN])} Account={account}` moves the pending "
                f"one(s){f' (the first {ACCOUNT_IDS_SHOWN})' if len(pending) > ACCOUNT_IDS_SHOWN else ''}, a "
                f"running one ends where it is; " if pending else "a running job ends where it is; ")
        said.append(f"{len(group)} queued or running Slurm job(s) are not on account {account} (`{key}` of profile "
                    f"{where}): {jobs}. `study submit` leaves them there and queues none of them again (a job's id "
                    f"does not hold its account): {move}or `study cancel`, then `study submit --retry-failed`, queues "
                    f"the grid's unfinished jobs anew on it (those that had started resume from their checkpoints). "
                    f"Where the profile named {account} when they were queued, Slurm put them on your default "
                    f"account: you have no association with {account} (`sacctmgr show assoc user=$USER` lists "
                    f"yours), and this cluster does not enforce associations")
    return said
