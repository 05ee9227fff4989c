"""`--where COLUMN=VALUE`: the jobs of a plan whose columns hold given values (plan, submit, status, cancel).

A condition names a column of `study plan`'s table (`stage` or an axis: method, backbone, dataset, size,
corruption, seed, protocol, eval_dataset, and variant where the grid sets one) and one value as that table prints it
(`size=50k`; a size or seed also as a plain number, `size=50000`; a whole dataset's size, `-` there, as the grid file
writes it: `size=all`). Several conditions on one column: a job holds any of those values; on several columns: all of
them. A job without a value in a column (a pretraining job's `protocol`, the entry without a `variant` beside one
with) holds `-` there, as the table prints it. A column or value no job of the plan has is an error that lists what
the plan has, as is a set of conditions no job meets.
"""
from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterable

from study.errors import StudyError
from study.grids.cost import estimate
from study.grids.jobs import Job
from study.grids.plan import Plan, counts
from study.grids.render import cell, plan_axes
from study.grids.schema import ALL

# columns of `study plan`'s table that select no job, and why
NOT_CONDITIONS = {
    "id": "a job's id is no condition: `study submit --only ID` runs given jobs",
    "labeled": "an evaluation job scores every labeled size its column lists, in one run: its grid entry's "
               "`labeled_sizes` choose them",
    "deps": "a job's dependencies are no condition: select the jobs they are (stage=pretrain, ...)",
}


def parse_where(values: Iterable[str]) -> dict[str, list[str]]:
    """Column -> the values asked of it, from `--where` values `COLUMN=VALUE` (split at the first `=`: a corruption's
    own `=` stays in its value); a StudyError for a value without a column or without a value."""
    out: dict[str, list[str]] = {}
    for value in values:
        column, sep, wanted = (part.strip() for part in value.partition("="))
        if not sep or not column or not wanted:
            raise StudyError(f"--where {value!r}: expected COLUMN=VALUE, e.g. --where size=50k --where method=simclr "
                             "(the columns and values as `study plan` prints them)")
        out.setdefault(column, []).append(wanted)
    return out


def _spellings(job: Job, column: str) -> set[str]:
    """How the job's value in `column` may be asked for: as the plan's table prints it (`-`: none), and as it is
    (`50k`, `50000`; a whole dataset's size `all`)."""
    value, printed = _value(job, column), cell(column, job.stage if column == "stage" else job.axes.get(column))
    return {printed, cell(column, value), str(value)} if value is not None else {printed}


def _value(job: Job, column: str):
    """The job's value in `column`: `all` for the size of a whole dataset's pretraining and its evaluations (None: a
    scratch evaluation has no pretraining, hence no size)."""
    if column == "stage":
        return job.stage
    value = job.axes.get(column)
    return ALL if column == "size" and value is None and job.axes.get("method") is not None else value


def jobs_where(plan: Plan, where: dict[str, list[str]]) -> list[Job]:
    """The plan's jobs (plan order) that meet every condition of `where` (see the module docstring)."""
    columns = ("stage",) + plan_axes(plan)
    unknown = [c for c in where if c not in columns]
    if unknown:
        why = NOT_CONDITIONS.get(unknown[0])
        raise StudyError(f"--where {unknown[0]}=...: " + (f"{why}; " if why else f"no column {unknown[0]!r} in grid "
                         f"{plan.name}; ") + f"the columns --where reads are {', '.join(columns)}")
    for column, wanted in where.items():
        held = dict.fromkeys("- (no value)" if _value(j, column) is None else cell(column, _value(j, column))
                             for j in plan.jobs)
        spelled = set().union(*(_spellings(j, column) for j in plan.jobs))
        missing = [w for w in wanted if w not in spelled]
        if missing:
            raise StudyError(f"--where {column}={missing[0]}: no job of grid {plan.name} has {column} {missing[0]!r}; "
                             f"it has: {', '.join(held)}")
    chosen = [j for j in plan.jobs
              if all(_spellings(j, c) & set(wanted) for c, wanted in where.items())]
    if not chosen:
        raise StudyError(f"{where_text(where)}: no job of grid {plan.name} meets all of these (each alone does)")
    return chosen


def where_text(where: dict[str, list[str]]) -> str:
    """`where` as the flags that give it: `--where method=simclr --where 'corruption=jpeg:quality=10'`."""
    return " ".join(f"--where {shlex.quote(f'{c}={w}')}" for c, ws in where.items() for w in ws)


def canonical_where(plan: Plan, where: dict[str, list[str]]) -> dict[str, list[str]]:
    """`where` (which `jobs_where` accepted) spelled one way: each value as the plan's table prints it (`size=50000`
    -> `50k`), once, the values of a column and the columns sorted; so that `--where size=50000 --where method=simclr`
    and `--where method=simclr --where size=50k` name one selection (a report folder's, study.report.cli)."""
    def printed(column: str, wanted: str) -> str:
        if wanted == cell(column, None):  # `-`: every job the table prints it for (size: a scratch job's too), kept
            return wanted
        return next((cell(column, _value(j, column)) for j in plan.jobs
                     if wanted in _spellings(j, column)), wanted)

    return {c: sorted({printed(c, w) for w in where[c]}) for c in sorted(where)}


def plan_of(plan: Plan, jobs: list[Job]) -> Plan:
    """`plan` reduced to `jobs` (a subset of its jobs, in its order): counts, estimate and checks of those jobs alone
    (a dependency still looked up in the whole grid: a probe's feature width, an encoder's image size)."""
    sub = dataclasses.replace(plan, jobs=jobs, counts=counts(jobs), whole=plan.grid_jobs)
    sub.estimate = estimate(jobs, plan.grid, plan.profile, encoders=plan.encoders)
    return sub
