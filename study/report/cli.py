"""`study report GRID [--out reports/<grid>] [--workdir DIR] [--profile FILE]`: collect a grid's results and draw
its report. Exit 1 when a figure failed (the others are drawn)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.errors import StudyError
from study.paths import checked_workdir, results_dir, unsubmitted_workdir

DESCRIPTION = ("Collect a grid's results into one Parquet table, draw the paper's figures and tables and test the "
               "paper's findings on the results (findings.csv), into index.html in the --out folder. Exit 1 when a "
               "figure failed (the others are drawn).")


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="collect a grid's results into Parquet and draw its figures and tables",
                              description=DESCRIPTION)
    p.add_argument("grid", metavar="GRID", help="the grid YAML given to `study submit` (or grids/<GRID>.yaml; or "
                   "a grid name, to report its recorded results without a plan)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder (default: reports/<grid name>)")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR",
                   help="where the jobs wrote results/ (default: $STUDY_WORKDIR or ./runs)")
    p.add_argument("--profile", metavar="FILE", default=None,
                   help="the cluster profile given to `study submit` (plans the grid as it was submitted; default: the "
                        "built-in generic 8-GPU node)")
    p.set_defaults(func=run)


def _find_grid_file(grid: str) -> Path | None:
    for cand in (Path(grid), Path("grids") / f"{grid}.yaml", Path("grids") / f"{grid}.yml"):
        if cand.is_file():
            return cand
    return None


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command never needs a display (the library leaves a caller's backend alone)
    from study.report.build import NoResults, build_report

    workdir = checked_workdir(args.workdir)  # a file there would read as a workdir of no results
    path = _find_grid_file(args.grid)
    plan, name = None, args.grid
    if path is not None:
        from study.grids import plan_grid
        from study.grids.checks import config_warnings

        plan = plan_grid(path, args.profile)
        for warning in config_warnings(plan):
            print(f"study report: warning: {warning}", file=sys.stderr)
        unsubmitted = unsubmitted_workdir(workdir)  # a mistyped one: a report of every job missing tells nothing
        if unsubmitted:
            raise StudyError(f"workdir {workdir}: {unsubmitted}")
        name = plan.name
    elif not results_dir(workdir).is_dir():
        raise StudyError(f"{args.grid}: no such grid file, and no results folder in {workdir}")
    out = args.out or Path("reports") / name
    try:
        summary = build_report(workdir, out, plan=plan, grid=name, log=sys.stderr)
    except NoResults as e:
        raise StudyError(f"{args.grid}: no such grid file, and {e}") from None
    if summary.failed:
        print(f"study report: error: figure(s) {', '.join(summary.failed)} failed (see the warnings above); the "
              "rest of the report is written", file=sys.stderr)
        return 1
    return 0
