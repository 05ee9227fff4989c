"""`study submit GRID --cluster slurm|local ...`, `study status GRID`, `study cancel GRID`."""
from __future__ import annotations

import argparse
import json
import sys

from study.cli import OneWorkdir, count_arg
from study.grids.cli import add_where, where_of


def _common(p: argparse.ArgumentParser, profile: str = "the cluster profile given to `study submit`") -> None:
    p.add_argument("grid", metavar="GRID", help="a grid file, e.g. grids/data_quantity.yaml")
    p.add_argument("--workdir", metavar="DIR", action=OneWorkdir,
                   help="job folders, results and ledgers (default: $STUDY_WORKDIR or ./runs)")
    p.add_argument("--profile", metavar="FILE", help=f"{profile} (default: the built-in generic 8-GPU node)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "submit", help="queue a grid's missing jobs on Slurm, or run them here",
        description="Queue every job of a grid that has no result yet: on Slurm as job arrays chained with afterok "
                    "(returns once everything is queued), or here with one worker per core or GPU. Jobs that "
                    "are done or still queued are skipped; failed ones are rerun with --retry-failed.")
    _common(p, "cluster profile: partition, account, resources, setup lines (--cluster slurm needs its partition)")
    p.add_argument("--cluster", choices=("slurm", "local"), required=True,
                   help="slurm: queue job arrays with sbatch (through submitit); local: run the jobs on this machine")
    p.add_argument("--dry-run", action="store_true", help="submit nothing: print the sbatch script of each array "
                   "(slurm), or list the jobs it would run (local)")
    p.add_argument("--no-check", action="store_true",
                   help="with --dry-run: skip the manifest check (names and configs are still checked), to read the "
                        "scripts (the job list, local) before the manifests are built")
    p.add_argument("--retry-failed", action="store_true", help="also rerun failed and cancelled jobs")
    p.add_argument("--workers", type=count_arg, metavar="N",
                   help="local: worker processes (default: one per core, or per GPU)")
    p.add_argument("--only", metavar="ID[,ID...]", action="append",
                   help="only these jobs (ids or unique prefixes, as `study plan` prints them), e.g. one job to try "
                        "on an interactive node before the whole grid; their dependencies must be done, queued, or "
                        "named too")
    add_where(p, "only the jobs")
    p.add_argument("--set-aside-stale", action="store_true",
                   help="move the results (and job folders) computed on a manifest since rebuilt under the same name "
                        "to <workdir>/stale/<time>/, then run those jobs again (without it such results stop the "
                        "submit)")
    p.add_argument("--rerun", action="store_true",
                   help="run the jobs --only or --where selects again, also those done (after a change to the code): "
                        "their results and job folders (checkpoints), and those of the done jobs that used them "
                        "(another grid's too), go to <workdir>/stale/<time>/ first")
    p.set_defaults(func=run_submit)

    p = subparsers.add_parser("status", help="where a grid stands: done, running, pending, failed, cancelled",
                              description="Per stage: done / stale / running / pending / failed / cancelled / "
                                          "missing jobs; each running job's latest progress line, its age, log and "
                                          "latest checkpoint step; each failure's last error lines and log path.")
    _common(p)
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default): the counts per stage, then what runs and what failed; json: one row per "
                        "job (its axes, state, detail, Slurm id, log, latest progress line) and the counts, for "
                        "scripts")
    add_where(p, "only the jobs")
    p.set_defaults(func=run_status)

    p = subparsers.add_parser(
        "cancel", help="cancel a grid's queued and running Slurm jobs, stop its local runs",
        description="scancel the grid's queued and running Slurm jobs (not shared jobs another grid queued), and "
                    "stop its `study submit --cluster local` commands on this host as Ctrl-C does: their workers "
                    "checkpoint, then end, and a rerun of `study submit` resumes them (cancelled Slurm jobs: "
                    "`study submit --retry-failed`). Commands on another host sharing the workdir are named.")
    _common(p)
    add_where(p, "cancel only the Slurm jobs")
    p.set_defaults(func=run_cancel)


def _plan(args: argparse.Namespace, where: dict | None = None):
    """The grid's plan, unchecked (submit checks it); of the jobs `where` selects, where given."""
    from study.grids import plan_grid
    from study.grids.cli import plan_where

    return plan_where(plan_grid(args.grid, getattr(args, "profile", None)), where)


def _workdir(args: argparse.Namespace):
    from study.paths import workdir

    return args.workdir or workdir()


def run_submit(args: argparse.Namespace) -> int:
    from study.errors import StudyError
    from study.paths import checked_workdir

    if args.no_check and not args.dry_run:  # a real submit needs the manifests its jobs read
        raise StudyError("--no-check goes with --dry-run: the jobs a submit queues read their manifests (`study plan "
                         "--no-check` shows the plan without them)")
    for flag in ("set_aside_stale", "rerun"):
        if args.dry_run and getattr(args, flag):
            raise StudyError(f"--{flag.replace('_', '-')} moves results; --dry-run changes nothing: give one of them")
    if args.rerun and args.only is None and not args.where:
        raise StudyError("--rerun runs again the jobs --only or --where selects: give one of them (to run a whole "
                         "grid again, submit it to a new --workdir)")
    if args.workers is not None and args.cluster == "slurm":
        raise StudyError("--workers sets how many jobs a --cluster local submit runs at once; on Slurm the "
                         "profile's max_parallel_gpus and max_parallel_jobs throttle each array")
    workdir = checked_workdir(args.workdir)  # submit makes folders in it
    from study.grids.cli import plan_where
    from study.launch.select import only_names, resolve_ids

    names = None if args.only is None else only_names(args.only)  # flags to fix before the grid's manifests
    where = where_of(args)
    plan = _plan(args)
    if args.cluster == "slurm":
        plan.profile.require_partition()  # before anything else: a profile error is the first thing to fix
    selected = plan_where(plan, where)  # checked alone: the manifests of the jobs it runs
    only = None if names is None else resolve_ids(plan.jobs, names, args.grid)
    if where is not None:
        chosen = {j.id for j in selected.jobs}
        outside = [] if only is None else [j.id for j in plan.jobs if j.id in only and j.id not in chosen]
        if outside:  # a job named is run or refused, never dropped unsaid
            raise StudyError(f"--only names {len(outside)} job(s) --where does not select: "
                             f"{', '.join(outside[:5])}{' ...' * (len(outside) > 5)}; drop them from --only, or "
                             "widen --where (`study plan --where ...` lists what it selects)")
        only = chosen if only is None else only  # (all of those named: each is selected)
    from study.launch.take_over import take_over

    # an older study's results of the plan's settings: not run again (a dry run's jobs read done, `taking`)
    taking = take_over(plan, workdir, dry_run=args.dry_run)
    again = _rerun_results(plan, workdir, only) if args.rerun else {}
    # Slurm's nodes may mount the images: refused here only for a local run, and only of the jobs that will run (not
    # those a dry run would take over)
    todo = (_to_run(selected, workdir, args.set_aside_stale, args.retry_failed) - set(taking.values())) | set(again)
    for warning in selected.check(manifests=not args.no_check, images_here=args.cluster == "local", todo=todo):
        print(f"study: warning: {warning}", file=sys.stderr)
    _refuse_subfolder_results(workdir, todo, dry_run=args.dry_run)
    _refuse_stale_results(plan, workdir, set_aside=args.set_aside_stale, only=only)  # before --rerun moves any
    if args.rerun:
        only = _set_aside_reruns(plan, workdir, only)
    if args.cluster == "slurm":
        from study.launch.slurm import submit_slurm

        return submit_slurm(plan, workdir, dry_run=args.dry_run, retry_failed=args.retry_failed, only=only,
                            taking=taking)
    from study.launch.local.scheduler import run_local

    return run_local(plan, workdir, retry_failed=args.retry_failed, workers=args.workers, only=only,
                     dry_run=args.dry_run, taking=taking)


def _to_run(plan, workdir, set_aside: bool, retry_failed: bool = False) -> set[str]:
    """The ids of `plan`'s jobs a submit may run: those without a result, with `retry_failed` (--retry-failed) those
    whose result file does not read (failed, as `study status` says; not one a newer version of study wrote: never
    rerun here), and with `set_aside` (--set-aside-stale) those whose result is stale."""
    from study.launch.stale import stale_results
    from study.launch.state import has_result, unreadable_result, written_by_newer

    todo = {j.id for j in plan.jobs if not has_result(workdir, j.id) or retry_failed and unreadable_result(
        workdir, j.id) is not None and not written_by_newer(workdir, j.id)}
    return todo | set(stale_results(plan.jobs, workdir)) if set_aside else todo


def _refuse_subfolder_results(workdir, todo: set[str], dry_run: bool) -> None:
    """A StudyError (a dry run: a warning) where jobs the submit would run have a result file in a folder inside
    results/ (study.results.record.results_in_subfolders: a copy of another workdir's results made inside this
    one's), which no command reads: the submit would run again what ran elsewhere."""
    from study.errors import StudyError
    from study.results.record import results_in_subfolders, subfolder_results_text

    nested = results_in_subfolders(workdir, todo)
    if nested and not dry_run:
        raise StudyError(subfolder_results_text(nested, workdir, then="this submit refuses to run them again until "
                                                               "then (--dry-run lists what it would run)"))
    if nested:
        print(f"study: warning: {subfolder_results_text(nested, workdir, then='a submit refuses to run them')}",
              file=sys.stderr)


def _rerun_results(plan, workdir, only: set[str]) -> dict[str, str]:
    """`study.launch.stale.rerun_results` of the jobs `only` names (--rerun): they, and the jobs that used them."""
    from study.launch.stale import rerun_results

    return rerun_results(plan.jobs, workdir, only)


def _set_aside_reruns(plan, workdir, only: set[str]) -> set[str]:
    """--rerun: set aside the results and job folders of the jobs of `only` (`_rerun_results`) and of the done jobs
    that used them, this grid's and another's of the workdir (`workdir_dependents`: a shared pretraining's
    evaluations, which that grid's next submit runs again), said on stderr; returns `only` with this grid's, which
    run again with them."""
    from study.launch.locks import submit_lock
    from study.launch.stale import refuse_live_dependents, set_aside, with_workdir_dependents
    from study.launch.state import RERUN

    with submit_lock(workdir):  # no other submit queues them meanwhile
        ids = {j.id for j in plan.jobs}
        wide = with_workdir_dependents(plan, workdir, only)
        again = _rerun_results(wide, workdir, only)  # another command may have set them aside meanwhile
        if not again:
            return only
        refuse_live_dependents(wide, workdir, again, flag="--rerun")
        grids = {job_id: _result_grid(workdir, job_id) for job_id in again if job_id not in ids}
        folder = set_aside(wide, workdir, again, reason=RERUN, grids={k: v for k, v in grids.items() if v})
    # a result this grid's name records but its plan lacks: of an earlier version of the grid file (an edited
    # setting), which no submit runs again unless an edit asks for those settings once more; not another grid's
    theirs = [f"{again[job_id]} (grid {grid or '?'})" for job_id, grid in grids.items() if grid != plan.name]
    earlier = [again[job_id] for job_id, grid in grids.items() if grid == plan.name]
    used = [why for job_id, why in again.items() if job_id not in only and job_id in ids]
    print(f"study: set aside {len(again)} job(s) to run again, their results and job folders, in {folder}"
          + "".join(f"; {len(whys)} of them {what}: " + "; ".join(whys[:3]) + ("; ..." if len(whys) > 3 else "")
                    for whys, what in ((used, "used those chosen"),
                                       (theirs, "of another grid (its next `study submit` runs them again)"),
                                       (earlier, "of an earlier version of this grid file, off its plan now (a "
                                                 "submit runs them again only if an edit asks for their settings "
                                                 "again)"))
                    if whys), file=sys.stderr)
    return set(only) | {job_id for job_id in again if job_id in ids}


def _result_grid(workdir, job_id: str) -> str | None:
    """The grid the job's result names, where it reads and names one with a ledger in `workdir`; else None."""
    from study.errors import StudyError
    from study.launch.ledger import ledger_path
    from study.launch.state import cached_result
    from study.paths import result_path
    from study.registry import NAME_RE

    try:
        grid = cached_result(result_path(workdir, job_id)).get("grid")
    except (StudyError, OSError):
        return None
    ok = isinstance(grid, str) and NAME_RE.fullmatch(grid) and ledger_path(workdir, grid).is_file()
    return grid if ok else None


def _refuse_stale_results(plan, workdir, set_aside: bool = False, only=None) -> None:
    """A StudyError naming the plan's results computed on a manifest since rebuilt (study.launch.stale); with
    `set_aside`, those are moved out of the way instead (their jobs then run again: those in `only` where it is
    given), said on stderr."""
    from pathlib import Path

    from study.errors import StudyError
    from study.launch.locks import submit_lock
    from study.launch.stale import refuse_live_dependents, set_aside as move, stale_results, with_workdir_dependents

    stale = stale_results(plan.jobs, workdir)
    if stale and set_aside:
        with submit_lock(workdir):  # no other submit queues them meanwhile
            stale = stale_results(plan.jobs, workdir)  # another command may have set them aside meanwhile
            if stale:  # another grid's run of a shared pretraining's encoder too
                refuse_live_dependents(with_workdir_dependents(plan, workdir, stale), workdir, stale)
                folder = move(plan, workdir, stale)
        if stale:
            print(f"study: set aside {len(stale)} result(s) computed on a manifest since rebuilt or an encoder file "
                  f"since replaced (and their job folders) in {folder}; their jobs run again"
                  + ("" if only is None else " (those --only or --where selects now, the others at a submit "
                                             "without them)"),
                  file=sys.stderr)
    elif stale:
        wd, lines = Path(workdir).resolve(), list(stale.values())
        raise StudyError(f"{len(stale)} result(s) in {wd}/results were computed on a manifest since rebuilt under the "
                         f"same name, or an encoder file since replaced:\n  " + "\n  ".join(lines[:5])
                         + ("\n  ..." if len(stale) > 5 else "")
                         + "\nTo rerun them on the new manifest (encoder file), `study submit --set-aside-stale` "
                         f"moves their results/<id>.json and jobs/<id>/ to {wd}/stale/<time>/, or submit to a new "
                         "--workdir; to keep the old results, restore the old manifest (encoder file).")


def run_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from study.launch.status import print_status, status_json
    from study.paths import unsubmitted_workdir

    plan, workdir = _plan(args, where_of(args)), _workdir(args)
    if args.format == "json":
        note = unsubmitted_workdir(workdir)  # the table's line; beside the JSON, on stderr
        if note:
            print(f"study: warning: workdir {Path(workdir).resolve()}: {note}", file=sys.stderr)
        got = status_json(plan, workdir)
        json.dump(got, sys.stdout, indent=1)
        sys.stdout.write("\n")
        states = [job["state"] for job in got["jobs"]]
    else:
        states = [st.state for st in print_status(plan, workdir, out=sys.stdout).values()]
    if states and set(states) == {"missing"}:  # none of its jobs ran: a grid submit refuses would say why
        from study.grids.checks import config_warnings  # (torch: only then, as a status reads no config)

        for warning in config_warnings(plan):  # on stderr: the table or JSON on stdout stays whole
            print(f"study: warning: {warning}", file=sys.stderr)
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from study.launch.cancel import cancel

    where = where_of(args)
    cancel(_plan(args, where), _workdir(args), out=sys.stdout, where=where)
    return 0
