"""Where a check's message points: the grid file and line of the setting behind a problem (`key_line`,
`value_at`, `setting_at`, `file_key_at`, `manifest_lines`), and how a job is named in one (`describe`)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from study.grids.jobs import Job
from study.grids.schema import Grid, value_line, value_text
from study.grids.yamlio import at

if TYPE_CHECKING:
    from study.grids.plan import Plan


def value_at(grid: Grid, axis: str, value: Any, point: dict[str, Any] | None = None) -> str:
    """`<grid file>:<line>` where an axis value was written (its axes or include line; `point`: the job's axes)."""
    line = value_line(grid, axis, value, point)
    return at(grid.path, line)


def describe(job: Job) -> str:
    """`job <id> (<stage>: method=simclr, dataset=..., size=50k, ...)`, as a message names a job (each value as
    `value_text` spells it: a concat job's `20|4000` as it is)."""
    keys = ("method", "dataset", "size", "corruption", "seed", "protocol", "eval_dataset")
    parts = [f"{k}={value_text(k, job.axes[k])}" for k in keys if job.axes.get(k) not in (None, "none")]
    return f"job {job.id} ({job.stage}: {', '.join(parts)})"


# the key a config error names first, as a dotted path: `pretrain.<key>[.<key>...]: ...`, or
# `evaluate[.<key>...]: unknown key(s) '<key>'` (also under `defaults.`)
SECTION_KEY = re.compile(r"^(?:defaults\.)?(?:pretrain|evaluate)((?:\.\w+)*)(?:: unknown key\(s\) '(\w+)')?")


def message_key(message: str) -> str | None:
    """The dotted key a config error names first (SECTION_KEY), or None."""
    m = SECTION_KEY.match(message)
    path = ".".join(filter(None, (m.group(1)[1:], m.group(2)))) if m else ""
    return path or None


def deepest(key: str | None, *written: dict[str, int]) -> int | None:
    """The line of dotted `key` in the first of `written` (`_key_lines` maps, the one whose value wins a merge
    first) that has it, else of the deepest of its parents written in any (a misspelt key's section, a value under a
    key written flow style): `finetune.optim.lr` written in defaults.evaluate beside a `finetune` of an entry's
    params that does not give it is the line of that `lr`; None where none is."""
    parts = (key or "").split(".")
    for path in (".".join(parts[:n]) for n in range(len(parts), 0, -1)):
        line = next((lines[path] for lines in written if path in lines), None)
        if line:
            return line
    return None


def section_line(grid: Grid, job: Job, message: str) -> int | None:
    """Where the value behind a config error of `job` was written (`key_line` of the key the message names)."""
    return key_line(grid, job, message_key(message))


def key_line(grid: Grid, job: Job, key: str | None) -> int | None:
    """Where `job`'s setting `key` was written: a pretraining axis value (its axes or include line), else the key
    in the evaluation entry's params, in defaults, or the entry itself."""
    if job.stage == "pretrain":
        if key in ("method", "backbone", "size", "seed") and job.axes.get(key) is not None:
            return value_line(grid, key, job.axes[key], job.axes)
        return deepest(key, grid.defaults_lines.get("pretrain", {})) or grid.lines.get("defaults")
    entry = grid.evaluate[job.entry] if job.entry is not None else None
    if entry is None:
        return deepest(key, grid.defaults_lines.get("evaluate", {})) or grid.lines.get("defaults")
    return deepest(key, entry.param_lines, grid.defaults_lines.get("evaluate", {})) or entry.line


def setting_at(plan: Plan, job: Job, key: str) -> str:
    """`<grid file>:<line>` of where `job`'s setting `key` was written (the file alone when no line is known)."""
    line = key_line(plan.grid, job, key)
    return at(plan.path, line)


def named_job(jobs: list[Job], message: str) -> Job:
    """The job an error shared by `jobs` names: the first, or the first of the method whose own settings
    (`pretrain.<method>`) the message is about (every pretraining job reads them, but only that method's use them)."""
    key = (message_key(message) or "").split(".")[0]
    return next((j for j in jobs if j.stage == "pretrain" and j.axes.get("method") == key), jobs[0])


def file_key_at(plan: Plan, key: str) -> str:
    """`<grid>:<line>: defaults.pretrain.<key>`, at the line of the key (else of its section) under
    defaults.pretrain: a setting of the pretraining jobs' (a file they read, a method's own section)."""
    line = deepest(key, plan.grid.defaults_lines.get("pretrain", {}))
    return f"{at(plan.path, line)}: defaults.pretrain.{key}"


def manifest_lines(plan: Plan) -> dict[str, int]:
    """Manifest name -> the line of the `datasets:` entry that names it (a corrupted variant: its dataset's)."""
    grid = plan.grid
    lines: dict[str, int] = {}
    for ds in grid.datasets.values():
        for name in (ds.train, ds.test):
            if name:
                lines.setdefault(name, ds.line)
    for job in plan.by_stage("pretrain"):
        name = job.config["pretrain"].get("manifest")
        if name and job.axes.get("dataset") in grid.datasets:
            lines.setdefault(name, grid.datasets[job.axes["dataset"]].line)
    return lines
