"""`study report GRID [--out reports/<grid>] [--workdir DIR] [--profile FILE] [--where COLUMN=VALUE ...]`: collect a
grid's results (of the jobs `--where` selects, where given) and draw its report. Exit 1 when a figure failed (the
others are drawn)."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from study.cli import OneWorkdir
from study.errors import StudyError
from study.grids.cli import add_where, plan_where, where_of
from study.paths import checked_workdir, matplotlib_config_dir, results_dir

DESCRIPTION = ("Collect a grid's results into one Parquet table, draw the paper's figures and tables and test the "
               "paper's findings on the results (findings.csv), into index.html in the --out folder. Exit 1 when a "
               "figure failed (the others are drawn).")


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="collect a grid's results into Parquet and draw its figures and tables",
                              description=DESCRIPTION)
    p.add_argument("grid", metavar="GRID", help="the grid YAML given to `study submit` (or grids/<GRID>.yaml; or "
                   "a grid name, to report its recorded results without a plan)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="report folder (default: reports/<grid name>; with --where, reports/<grid name>--<column>="
                        "<values>..., e.g. reports/data_quantity--method=simclr)")
    p.add_argument("--workdir", type=Path, default=None, metavar="DIR", action=OneWorkdir,
                   help="where the jobs wrote results/ (default: $STUDY_WORKDIR or ./runs); one: results of two "
                        "workdirs are copied into one first (grids/README.md)")
    p.add_argument("--profile", metavar="FILE", default=None,
                   help="the cluster profile given to `study submit` (plans the grid as it was submitted; default: the "
                        "built-in generic 8-GPU node)")
    add_where(p, "report (collect, draw, test the findings on) only the jobs")
    p.set_defaults(func=run)


def _find_grid_file(grid: str) -> Path | None:
    for cand in (Path(grid), Path("grids") / f"{grid}.yaml", Path("grids") / f"{grid}.yml"):
        if cand.is_file():
            return cand
    return None


# bytes of a default report folder's name: below the 255 of a file system's name, with room for the build's lock file
# beside it (`.<name>.report.lock`, study.report.build.report_lock)
FOLDER_NAME_MAX = 200


def where_folder(name: str, where: dict[str, list[str]] | None) -> str:
    """The default report folder's name: the grid's, and with `--where` (`canonical_where`) each column and its
    values after it (`data_quantity--method=simclr--size=125k+50k`; a character a path reads badly as `_`), so that a
    report of part of a grid never replaces the whole grid's. A name over FOLDER_NAME_MAX bytes is cut there; it, and
    a name with a value that joins several names (a pooled set's `+`, concatenated encoders' `|`: both read `_`, so
    that quickstart's pooled `fmnist+mnist` and concatenated `fmnist|mnist` would share `dataset=fmnist_mnist`, and
    the second report be refused that folder), end in `--~` and a hash of the selection."""
    if where is None:
        return name
    folder = name + "".join(f"--{c}=" + "+".join(re.sub(r"[^A-Za-z0-9._=-]", "_", v) for v in vs)
                            for c, vs in where.items())
    joined = any(re.search(r"[+|]", v) for vs in where.values() for v in vs)
    if len(folder.encode()) <= FOLDER_NAME_MAX and not joined:
        return folder
    # many values, or a joined one: told apart by a hash of the whole selection (a file system allows 255 bytes a
    # name: a long one is cut)
    digest = hashlib.sha256(json.dumps(where, sort_keys=True).encode()).hexdigest()[:12]
    keep = FOLDER_NAME_MAX - len(digest) - 3
    return folder.encode()[:keep].decode(errors="ignore") + "--~" + digest


def keep_matplotlib_out_of_home() -> None:
    """Before matplotlib's first import: where its config and cache folders under the home folder cannot be written
    (a compute node's read-only or missing home), `MPLCONFIGDIR` names `matplotlib_config_dir()`, so that it neither
    makes a temporary folder, rebuilding its font list each time, nor warns of it on every report. A folder that
    cannot be made leaves matplotlib to its own way."""
    folder = None if "matplotlib" in sys.modules else matplotlib_config_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    os.environ["MPLCONFIGDIR"] = str(folder)


def run(args: argparse.Namespace) -> int:
    keep_matplotlib_out_of_home()
    import matplotlib

    matplotlib.use("Agg")  # the command never needs a display (the library leaves a caller's backend alone)
    from study.report.build import NoResults, build_report

    where = where_of(args)
    workdir = checked_workdir(args.workdir)  # a file there would read as a workdir of no results
    path = _find_grid_file(args.grid)
    plan, name = None, args.grid
    if path is None and where is not None:
        raise StudyError(f"--where selects jobs of a grid's plan: {args.grid} is no grid file (nor grids/"
                         f"{args.grid}.yaml); give the grid's file")
    if path is not None:
        from study.grids import plan_grid
        from study.grids.checks import config_warnings
        from study.grids.where import canonical_where

        whole = plan_grid(path, args.profile)
        plan = plan_where(whole, where)
        where = None if where is None else canonical_where(whole, where)
        for warning in config_warnings(plan):
            print(f"study report: warning: {warning}", file=sys.stderr)
        name = plan.name  # (a workdir that is no folder: refused by build_report)
    elif not results_dir(workdir).is_dir():
        raise StudyError(f"{args.grid}: no such grid file, and no results folder in {workdir}")
    out = args.out or Path("reports") / where_folder(name, where)
    try:
        summary = build_report(workdir, out, plan=plan, grid=name, log=sys.stderr, where=where)
    except NoResults as e:
        raise StudyError(f"{args.grid}: no such grid file, and {e}") from None
    if summary.failed:
        print(f"study report: error: figure(s) {', '.join(summary.failed)} failed (see the warnings above); the "
              "rest of the report is written", file=sys.stderr)
        return 1
    return 0
