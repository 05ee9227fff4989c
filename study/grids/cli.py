"""`study plan GRID [--profile FILE] [--format table|json] [--no-check] [--where COLUMN=VALUE ...]`."""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plan", help="list every job of a grid, its dependencies and its cost",
                              description="Expand a grid into jobs (stable ids, stages, axes, dependencies), count "
                                          "them, estimate GPU-hours and wall time, and check that it can run.")
    p.add_argument("grid", metavar="GRID", help="a grid file, e.g. grids/data_quantity.yaml")
    p.add_argument("--profile", metavar="FILE", help="cluster profile (resources and cost numbers); "
                                                      "default: the built-in generic 8-GPU node")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default): one line per job, then the counts and the estimate; json: the same, "
                        "for scripts")
    p.add_argument("--no-check", action="store_true",
                   help="skip the manifest check (methods, corruptions and configs are still validated)")
    add_where(p, "list, count, estimate and check only the jobs")
    p.set_defaults(func=run_plan)


def add_where(p: argparse.ArgumentParser, what: str) -> None:
    """The `--where COLUMN=VALUE` option (study.grids.where) of `study plan`, `submit`, `status` and `cancel`."""
    p.add_argument("--where", metavar="COLUMN=VALUE", action="append",
                   help=f"{what} whose COLUMN (of `study plan`'s table: stage, method, dataset, size, corruption, "
                        "seed, protocol, eval_dataset, ...) holds VALUE, as the table prints it (size=50k); repeat it: "
                        "any of the values given for one column, all of the columns")


def where_of(args: argparse.Namespace) -> dict | None:
    """The parsed `--where` conditions (study.grids.where.parse_where), None without any: a flag to fix before the
    grid is read."""
    from study.grids.where import parse_where

    return None if args.where is None else parse_where(args.where)


def plan_where(plan, where: dict | None):
    """`plan`, or its jobs that `where` (parsed `--where` values) selects, as a plan of their own."""
    if where is None:
        return plan
    from study.grids.where import jobs_where, plan_of

    return plan_of(plan, jobs_where(plan, where))


def run_plan(args: argparse.Namespace) -> int:
    from study.grids.plan import plan_grid
    from study.grids.render import plan_json, plan_table

    where = where_of(args)
    plan = plan_where(plan_grid(args.grid, args.profile), where)
    for warning in plan.check(manifests=not args.no_check):
        print(f"study: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        json.dump(plan_json(plan), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(plan_table(plan))
    return 0
