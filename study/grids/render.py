"""`study plan`'s two outputs: a table (one line per job, then counts and the estimate) and JSON."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from study.counts import format_count
from study.durations import format_duration
from study.grids.schema import AXES, VARIANT_AXIS

if TYPE_CHECKING:
    from study.grids.plan import Plan


def plan_axes(plan: "Plan") -> tuple[str, ...]:
    """AXES, then `variant` when an evaluate entry of the plan sets one."""
    return AXES + ((VARIANT_AXIS,) if any(VARIANT_AXIS in j.axes for j in plan.jobs) else ())


def _labeled(job) -> list[int | str] | None:
    if job.stage != "evaluate":
        return None
    return job.config.get("evaluate", {}).get("labeled_sizes")  # {}: a program's own Job, without the section


def job_json(job, axes: tuple[str, ...]) -> dict[str, Any]:
    """`{"id", "stage", <axes>, "labeled_sizes", "depends_on"}` of one job (`axes`: `plan_axes` of its plan)."""
    row: dict[str, Any] = {"id": job.id, "stage": job.stage}
    row.update({a: job.axes.get(a) for a in axes})
    row["labeled_sizes"] = _labeled(job)
    row["depends_on"] = list(job.depends_on)
    return row


def job_text(job) -> str:
    """A job's axes as one phrase for progress lines: `simclr resnet50 imagenet 50k seed 0`; a corruption other than
    `none` after the size; an evaluation's then `: linear on inat21_val`, its labeled size where it has one (`at 300
    labels`: a fine-tuning or scratch job of each size reads apart from the others) and its variant."""
    ax = job.axes
    corruption = ax.get("corruption")
    words = [cell(k, ax[k]) for k in ("method", "backbone", "dataset", "size") if ax.get(k) is not None]
    words += [str(corruption)] if corruption not in (None, "none") else []
    words += [f"seed {ax['seed']}"] if ax.get("seed") is not None else []
    text = " ".join(words)
    if job.stage == "evaluate":
        labeled = _labeled(job)
        text += f": {ax.get('protocol')} on {ax.get('eval_dataset')}" + (
            f" at {cell('size', labeled[0])} labels" if labeled and len(labeled) == 1 else "") + (
            f" ({ax[VARIANT_AXIS]})" if ax.get(VARIANT_AXIS) is not None else "")
    return text


def plan_json(plan: "Plan") -> dict[str, Any]:
    """`{"grid", "profile", "jobs": [{<job_json>, "resources", "estimated_hours"}], "counts", "estimate"}`, and
    `"grid_jobs"` (how many the whole grid has) where `--where` selected some. A job's `estimated_hours`: the
    estimate's hours of that job alone (study.grids.cost.job_hours, its overhead in; the table gives only each
    stage's longest)."""
    from study.grids.cost import HOURS_DIGITS, job_hours

    axes = plan_axes(plan)
    encoders, notes = plan.encoders, set()  # (notes: the estimate's own, said there)
    jobs = [{**job_json(j, axes), "resources": dataclasses.asdict(j.resources),
             "estimated_hours": round(job_hours(j, plan.grid, plan.profile.cost, notes, encoders), HOURS_DIGITS)}
            for j in plan.jobs]
    return {"grid": plan.name, "profile": plan.profile.name, "jobs": jobs, "counts": plan.counts,
            "estimate": plan.estimate, **grid_jobs_json(plan)}


def grid_jobs_json(plan: "Plan") -> dict[str, int]:
    """`{"grid_jobs": <how many jobs the whole grid has>}` for a plan `--where` reduced (its `whole`), else `{}`: a
    program reading a JSON's counts is told they are of part of the grid."""
    whole = getattr(plan, "whole", None)
    return {} if whole is None else {"grid_jobs": len(whole)}


def cell(key: str, v: Any) -> str:
    """A column's value as the plan's table prints it: `-` for none, a size as a count (`50k`)."""
    if v is None:
        return "-"
    if key == "size" and isinstance(v, int):
        return format_count(v)
    return str(v)


def _hours(h: float) -> str:
    """`1.5 h`, or under an hour as the logs write durations: `12 min`, `42 s` (not `0 min`)."""
    return f"{h:,.1f} h" if h >= 1 else format_duration(h * 3600)


def _counted(n: int, noun: str) -> str:
    """`1 job`, `3 jobs`."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _amount(h: float, unit: str) -> str:
    """`2.7 GPU-hours`, or minutes under a tenth of an hour (a small CPU grid): `4.5 job-minutes`; none: `0.0`."""
    if h == 0 or h >= 0.1:
        return f"{h:,.1f} {unit}-hours"
    return f"{h * 60:.1f} {unit}-minutes"


def estimate_said(e: dict[str, Any]) -> str:
    """The totals of an estimate (study.grids.cost.estimate) as the plan's table says them: `2.7 GPU-hours, 3.1
    job-hours, wall 1.2 h with at most 64 GPUs at once`."""
    limits = [f"at most {_counted(e['max_parallel_gpus'], 'GPU')}" if e["max_parallel_gpus"] else "",
              _counted(e['max_parallel_jobs'], 'job') if e.get("max_parallel_jobs") else ""]
    par = " and ".join(x for x in limits if x) + " at once" if any(limits) else "unlimited parallel jobs"
    return (f"{_amount(e['gpu_hours'], 'GPU')}, {_amount(e.get('job_hours', 0.0), 'job')}, wall "
            f"{_hours(e['wall_hours'])} with {par}")


def plan_table(plan: "Plan") -> str:
    axes = plan_axes(plan)
    rows = [["id", "stage", *axes, "labeled", "deps"]]
    for j in plan.jobs:
        labeled = _labeled(j)
        rows.append([j.id, j.stage, *(cell(a, j.axes.get(a)) for a in axes),
                     ",".join(cell("size", n) for n in labeled) if labeled else "-",  # counts, or all
                     ",".join(j.depends_on) or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    c = plan.counts
    by = ", ".join(f"{p} {n}" for p, n in c["evaluate_by_protocol"].items())
    lines.append("")
    lines.append(f"grid {plan.name}: {c['pretrain']} pretrain, {c['evaluate']} evaluate"
                 + (f" ({by})" if by else "") + f", {_counted(c['total'], 'job')}"
                 + ("" if plan.whole is None else f" (those --where selects of its {len(plan.whole)})"))
    e = plan.estimate
    lines.append(f"estimate (profile {e['profile']}): {estimate_said(e)}")
    for stage, st in e["per_stage"].items():
        lines.append(f"  {stage}: {_counted(st['jobs'], 'job')}, {_amount(st['gpu_hours'], 'GPU')}, longest job "
                     f"{_hours(st['longest_job_hours'])}, wall {_hours(st['wall_hours'])}")
    if e.get("feature_cache_gb"):
        lines.append(f"  disk: feature cache about {e['feature_cache_gb']:,.1f} GB in <workdir>/features, "
                     f"besides the run folders' checkpoints (grids/README.md, \"Disk\")")
    for note in e["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n"
