"""What an edit of a grid file changed for the jobs it took off the plan (`changed_settings`), against the plan's job
of the same stage and axes: a setting's two values, an evaluation's encoder's, an axis value removed, a variant given.
`study status` says it beside the results and checkpoints off the plan (study.launch.grid_states)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan


CHANGES_SHOWN = 3  # the differing settings `changed_settings` names of one job, before "and N more"


class Change(NamedTuple):
    """One setting that differs: `what` (`pretrain.temperature`, `encoder: pretrain.steps`, `variant`), and its value
    in the job off the plan and in the plan's job (as `_text` spells them)."""

    what: str
    was: str
    now: str


def changed_settings(plan: Plan, workdir: str | Path, job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{id: (its stage, what its settings (its job file, jobs/<id>/job.json) hold otherwise than the plan's job of
    the same stage and axes)} for each of `job_ids` (jobs off the plan), in their order: `pretrain.temperature 0.2 ->
    0.5`, of an evaluation whose encoder was changed `encoder: pretrain.temperature 0.2 -> 0.5`, and where the plan
    has no job of its axes `no job of the plan has its axes now (method supervised)` (the axis values no job of its
    stage has, else the whole combination). Where the plan has several jobs of its axes (an entry's labeled sizes
    split, or two entries that score different sizes or levels), the fewest differences are said, those of each
    such job joined by `or` (which one an edit made of it, none can tell). An axes cell that only a `variant` tells
    apart from the plan's jobs: `variant (not given) -> "b"`. Ids without a readable job file are left out, and those
    whose settings match a job of the plan's (`renamed`: not an edit). Settings a job never reads are not its id's
    (study.grids.jobs.id_config), so not said."""
    from study.grids.jobs import id_config
    from study.grids.schema import VARIANT_AXIS as VARIANT  # an axis only where an entry sets it
    from study.launch.runner import job_dir, read_job_file

    planned = {j.id: j for j in plan.jobs}
    by_cell: dict[str, list[Job]] = {}
    by_cell_but_variant: dict[str, list[Job]] = {}
    values: dict[tuple[Any, str], set[str]] = {}  # (stage, axis) -> its values in the plan (`_key`)
    for j in plan.jobs:
        by_cell.setdefault(_cell(j.stage, j.axes), []).append(j)
        by_cell_but_variant.setdefault(_cell(j.stage, j.axes, VARIANT), []).append(j)
        for axis, value in j.axes.items():
            values.setdefault((j.stage, axis), set()).add(_key(value))

    read: dict[str, Job | None] = {}

    def old_job(job: str) -> Job | None:
        if job not in read:  # an encoder is read once, however many evaluations of it are off the plan
            try:
                read[job] = _checked(read_job_file(job_dir(workdir, job) / "job.json"))
            except (OSError, ValueError, KeyError, TypeError):
                read[job] = None
        return read[job]

    leaves: dict[str, dict[str, Any]] = {}  # job id -> its `_leaves(id_config)`: each plan job's made once

    def settings(j: Job) -> dict[str, Any]:
        if j.id not in leaves:
            leaves[j.id] = _leaves(id_config(j.config))
        return leaves[j.id]

    encoders: dict[tuple[str, str], list[Change]] = {}  # (old encoder, the plan's) -> what differs

    def encoder_changes(was: str, now: str) -> list[Change]:
        if (was, now) not in encoders:
            enc = old_job(was)
            if enc is None:  # no job file to tell what changed
                encoders[was, now] = [Change("encoder", was, now)]
            else:  # none where only an older study's id differs (`renamed`)
                encoders[was, now] = [c._replace(what=f"encoder: {c.what}") for c in diff(enc, planned[now])]
        return encoders[was, now]

    def diff(old: Job, new: Job) -> list[Change]:
        a, b = settings(old), settings(new)
        out = []
        if old.axes.get(VARIANT) != new.axes.get(VARIANT):
            out.append(Change(VARIANT, _text(old.axes.get(VARIANT, _ABSENT)), _text(new.axes.get(VARIANT, _ABSENT))))
        for key in sorted(set(a) | set(b)):
            if key in ("stage", "encoders") or key.startswith("axes."):
                continue
            if a.get(key, _ABSENT) != b.get(key, _ABSENT):
                out.append(Change(key, _text(a.get(key, _ABSENT)), _text(b.get(key, _ABSENT))))
        olds, news = old.config.get("encoders") or [], new.config.get("encoders") or []
        for was, now in zip(olds, news):
            if was != now:
                out += [c for c in encoder_changes(was, now) if c not in out]  # a concat's two alike: once
        return out

    def gone(old: Job) -> list[str]:
        """The axis values of `old` that no job of its stage in the plan has."""
        return [f"{axis} {value}" for axis, value in old.axes.items()
                if value is not None and _key(value) not in values.get((old.stage, axis), ())]

    out = {}
    for job in job_ids:
        old = old_job(job)
        if old is None or old.id in planned:
            continue
        candidates = by_cell.get(_cell(old.stage, old.axes))
        removed = [] if candidates else gone(old)
        if not candidates and not removed:  # every value is the plan's: a variant given, or taken out, alone?
            candidates = by_cell_but_variant.get(_cell(old.stage, old.axes, VARIANT))
        if not candidates:
            combination = ", ".join(f"{axis}={value}" for axis, value in old.axes.items() if value is not None)
            out[job] = (old.stage, f"no job of the plan has its axes now ({', '.join(removed) or combination})")
            continue
        diffs = [diff(old, new) for new in candidates]
        fewest = min(map(len, diffs))
        if not fewest:
            continue  # the same settings under another id: an older study's (`renamed`)
        out[job] = (old.stage, _either([d for d in diffs if len(d) == fewest]))
    return out


_ABSENT = object()  # a setting one of two configs does not give (`changed_settings`)


def _checked(job: Job) -> Job:
    """`job`, read from a job file, where it holds what `changed_settings` reads (axes, its stage's section as
    mappings, its encoders as a list); a TypeError else (an older or foreign job file)."""
    config = job.config
    if not (isinstance(config, dict) and isinstance(config.get("axes"), dict)
            and isinstance(config.get(job.stage), dict) and isinstance(config.get("encoders", []), list)):
        raise TypeError(f"job file of {job.id}: not a job of this study")
    return job


def _cell(stage: Any, axes: dict[str, Any], *but: str) -> str:
    """A stage and axes (less the axes `but`) as one key."""
    return json.dumps([stage, {k: v for k, v in axes.items() if k not in but}], sort_keys=True, default=str)


def _key(value: Any) -> str:
    """An axis value as a set's key (one a job file holds may be a list)."""
    return json.dumps(value, sort_keys=True, default=str)


def _either(alternatives: list[list[Change]]) -> str:
    """The changes against one of the plan's jobs, or against each of several, as one text: those of the same
    settings from the same values with their new values joined by `or`, others each in parentheses, joined by
    `or`."""
    unique = list(dict.fromkeys(tuple(a) for a in alternatives))
    first = unique[0]
    if all([(c.what, c.was) for c in a] == [(c.what, c.was) for c in first] for a in unique):
        nows = [" or ".join(dict.fromkeys(a[i].now for a in unique)) for i in range(len(first))]
        return _said([c._replace(now=now) for c, now in zip(first, nows)])
    return " or ".join(f"({_said(list(a))})" for a in unique)


def _said(changes: list[Change]) -> str:
    """`a -> b` of each change, the first CHANGES_SHOWN of them, then how many more."""
    more = len(changes) - CHANGES_SHOWN
    return "; ".join(f"{c.what} {c.was} -> {c.now}" for c in changes[:CHANGES_SHOWN]) + (
        f"; and {more} more" if more > 0 else "")


def _leaves(d: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of every leaf of the mappings in `d` (lists are leaves)."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def _text(value: Any) -> str:
    """A setting as a grid spells it (JSON: lists in brackets, null), or `(not given)`."""
    return "(not given)" if value is _ABSENT else json.dumps(value, default=str)
