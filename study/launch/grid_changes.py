"""What an edit of a grid file changed for the jobs it took off the plan (`changed_settings`), against the plan's job
of the same stage and axes: a setting's two values, an evaluation's encoder's, an axis value removed, a setting the
job's method never read. `study status` says it beside the results and checkpoints off the plan
(study.launch.grid_states)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.errors import StudyError
from study.launch.state import cached_result

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan


CHANGES_SHOWN = 3  # the differing settings `changed_settings` names of one job, before "and N more"


def changed_settings(plan: Plan, workdir: str | Path, job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """{id: (its stage, what its settings (its job file, jobs/<id>/job.json) hold otherwise than the plan's job of
    the same stage and axes)} for each of `job_ids` (jobs off the plan): `pretrain.temperature 0.2 -> 0.5`, of an
    evaluation whose encoder was changed `encoder: pretrain.temperature 0.2 -> 0.5`, and where the plan has no job
    of its axes `no job of the plan has its axes now (method supervised)` (the axis values no job of its stage has,
    else the whole combination). A pretraining setting its run recorded unused (a `temperature` its method has none of, which
    the run records as null) says so: such a job ran as the new settings would. Ids without a readable job file
    are left out, and those whose settings match a job of the plan's (`renamed`: not an edit)."""
    from study.grids.jobs import id_config
    from study.launch.runner import job_dir, read_job_file
    from study.paths import result_path

    def cell(stage: Any, axes: Any) -> str:
        return json.dumps([stage, axes or {}], sort_keys=True, default=str)

    planned = {j.id: j for j in plan.jobs}
    by_cell: dict[str, list[Job]] = {}
    for j in plan.jobs:
        by_cell.setdefault(cell(j.stage, j.axes), []).append(j)

    read: dict[str, Job | None] = {}

    def old_job(job: str) -> Job | None:
        if job not in read:  # an encoder is read once, however many evaluations of it are off the plan
            try:
                read[job] = read_job_file(job_dir(workdir, job) / "job.json")
            except (OSError, ValueError, KeyError, TypeError):
                read[job] = None
        return read[job]

    def unused(job: str, stage: str, key: str) -> bool:
        """Whether the pretraining run of `job` recorded the top-level setting `key` as null while its config set
        it: a setting its method does not read."""
        if stage != "pretrain" or "." in key:
            return False
        try:
            protocol = cached_result(result_path(workdir, job))["protocol"]
        except (StudyError, OSError, KeyError, TypeError):
            return False
        config = protocol.get("config") if isinstance(protocol, dict) else None
        return (isinstance(config, dict) and key in protocol and protocol[key] is None
                and config.get(key) is not None)

    def diff(old: Job, new: Job) -> list[str]:
        a, b = _leaves(id_config(old.config)), _leaves(id_config(new.config))
        out = []
        for key in sorted(set(a) | set(b)):
            if key in ("stage", "encoders") or key.startswith("axes."):
                continue
            if a.get(key, _ABSENT) != b.get(key, _ABSENT):
                said = f"{key} {_text(a.get(key, _ABSENT))} -> {_text(b.get(key, _ABSENT))}"
                section, _, leaf = key.partition(".")
                if unused(old.id, section, leaf):
                    said += (f" (unused by method {old.axes.get('method')}, whose run recorded {leaf} null: the "
                             f"same run under a new id)")
                out.append(said)
        olds, news = list(old.config.get("encoders") or []), list(new.config.get("encoders") or [])
        for was, now in zip(olds, news):
            if was != now:
                enc = old_job(was)
                changed = diff(enc, planned[now]) if enc is not None and now in planned else []
                out += [f"encoder: {c}" for c in changed] or [f"encoder {was} -> {now}"]
        return out

    def absent(old: Job) -> str:
        same_stage = [j for j in plan.jobs if j.stage == old.stage]
        gone = [f"{axis} {value}" for axis, value in old.axes.items() if value is not None
                and all(j.axes.get(axis) != value for j in same_stage)]
        combination = ", ".join(f"{axis}={value}" for axis, value in old.axes.items() if value is not None)
        return f"no job of the plan has its axes now ({', '.join(gone) or combination})"

    out = {}
    for job in job_ids:
        old = old_job(job)
        if old is None or old.id in planned:
            continue
        candidates = by_cell.get(cell(old.stage, old.axes), [])
        if not candidates:
            out[job] = (old.stage, absent(old))
            continue
        changes = min((diff(old, new) for new in candidates), key=len)
        if not changes:
            continue  # the same settings under another id: an older study's (`renamed`)
        more = len(changes) - CHANGES_SHOWN
        out[job] = (old.stage, "; ".join(changes[:CHANGES_SHOWN]) + (f"; and {more} more" if more > 0 else ""))
    return out


_ABSENT = object()  # a setting one of two configs does not give (`changed_settings`)


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
