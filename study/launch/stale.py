"""Results computed on a manifest since rebuilt under the same name (another content hash), or by a method
`pretrained` run on an encoder file since replaced at its path: `stale_results` finds them, which
`study submit` refuses to count as done, and `set_aside` moves them out of the workdir's way (`study submit
--set-aside-stale`), so that their jobs run again; also those `study submit --rerun` runs again after a change to
the code (`rerun_results`: the jobs chosen and those that used them, `workdir_dependents` another grid's too)."""
from __future__ import annotations

import datetime as _dt
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from study.errors import StudyError, not_yours, os_reason
from study.hashing import file_sha256
from study.launch.runner import job_dir
from study.launch.state import cached_result, has_result
from study.paths import result_path

if TYPE_CHECKING:  # types only: launch reads plans and jobs, study.grids makes them
    from study.grids.jobs import Job
    from study.grids.plan import Plan

MANIFEST_KEYS = (("manifest", "manifest_content_hash"), ("train_manifest", "train_manifest_content_hash"),
                 ("test_manifest", "test_manifest_content_hash"))  # in a result's protocol (train loop, evaluate)
STALE_DIR = "stale"  # <workdir>/stale/<UTC time>/{results,jobs}/: what `set_aside` moved


def stale_results(jobs: Iterable[Job], workdir: str | os.PathLike) -> dict[str, str]:
    """Job id -> why, in plan order, for each job whose result was computed on a manifest since rebuilt under the
    same name (another content hash), its own or, for an evaluation, its encoder's pretraining's (the record's
    `pretrain`: that encoder is trained again), or that depends on such a job (`jobs` in plan order: its encoder is
    trained again also where the record names no `pretrain`, an encoder file of an older study), or whose
    encoder file (`init_encoder_file`: the path a `pretrained` run resolved; else `init_encoder`, read from where the
    command runs) now holds other bytes than the record's `init_encoder_sha256` (an encoder imported again at the
    same path), unless its weights are those the record's `init_encoder_weights_sha256` names (a `pretrained` run:
    the same weights in another file): that result would otherwise count as done."""
    from study.manifests.store import load_meta

    @functools.cache
    def current(name: str) -> str | None:
        try:
            return load_meta(name).get("content_hash")
        except StudyError:
            return None  # gone: plan.check names missing manifests

    @functools.cache
    def sha256_now(path: str) -> str | None:
        try:
            return file_sha256(path) if Path(path).is_file() else None
        except OSError:
            return None  # unreadable: the job that reads it names it

    @functools.cache
    def weights_now(path: str) -> str | None:
        from study.train.backbones import load_encoder, weights_sha256

        try:
            return weights_sha256(load_encoder(path))
        except StudyError:
            return None  # no encoder file now: its job names it

    def replaced(protocol: Any) -> str | None:
        # the path the run resolved (a relative one read where status runs would miss it elsewhere), or as given
        path = protocol.get("init_encoder_file") or protocol.get("init_encoder")
        recorded, weights = protocol.get("init_encoder_sha256"), protocol.get("init_encoder_weights_sha256")
        if not (isinstance(path, str) and isinstance(recorded, str)) or sha256_now(path) in (None, recorded):
            return None
        if isinstance(weights, str) and weights_now(path) == weights:
            return None  # the same weights in another file (imported again): the encoder scored is the same
        return f"encoder file {path} with content {recorded[:12]}, which now holds {sha256_now(path)[:12]}"

    def rebuilt(protocol: Any) -> str | None:
        for name_key, hash_key in MANIFEST_KEYS:
            name, recorded = protocol.get(name_key), protocol.get(hash_key)
            if isinstance(name, str) and isinstance(recorded, str) and current(name) not in (None, recorded):
                return f"manifest {name} with content {recorded[:12]}, which now holds {current(name)[:12]}"
        return None

    out = {}
    for job in jobs:
        if not has_result(workdir, job.id):
            continue
        try:
            protocol = cached_result(result_path(workdir, job.id))["protocol"]
        except (StudyError, OSError):
            continue  # an unreadable result is the report's to name
        pretrain = protocol.get("pretrain")
        encoders = [p for p in (pretrain if isinstance(pretrain, list) else [pretrain]) if isinstance(p, Mapping)]
        own = rebuilt(protocol) or replaced(protocol)
        why = (f"its result used {own}" if own else
               next((f"its encoder was pretrained on {w}" for w in map(rebuilt, encoders) if w), None)
               or next((f"it used the result of job {d}, which is stale" for d in job.depends_on if d in out), None))
        if why:
            out[job.id] = f"{job.stage} job {job.id}: {why}"
    return out


def rerun_results(jobs: Iterable[Job], workdir: str | os.PathLike, chosen: Iterable[str]) -> dict[str, str]:
    """Job id -> why, in plan order (`jobs`), for each job of `chosen` that has a result or a job folder (a result
    removed by hand, a run stopped midway: kept, its checkpoint would be resumed, not trained from step 0), and each
    job with a result that depends on one of `chosen` (transitively): its result used theirs (an evaluation of an
    encoder trained again), and kept it would count done beside the new one."""
    chosen, after, out = set(chosen), set(), {}
    for job in jobs:  # plan order: dependencies first
        used = next((d for d in job.depends_on if d in chosen or d in after), None)
        if used is not None:
            after.add(job.id)
        if job.id in chosen and (has_result(workdir, job.id) or job_dir(workdir, job.id).is_dir()):
            out[job.id] = f"{job.stage} job {job.id}"
        elif used is not None and job.id not in chosen and has_result(workdir, job.id):
            out[job.id] = f"{job.stage} job {job.id}: it used the result of job {used}, which runs again"
    return out


def workdir_dependents(workdir: str | os.PathLike, job_ids: Iterable[str], known: Iterable[str]) -> list[Job]:
    """The jobs of the workdir's job files (jobs/<id>/job.json, written for every job a submit queued or ran) that
    are not among `known` (the plan's) and depend on one of `job_ids` (transitively), dependencies first: another
    grid's evaluations of a pretraining job the two grids share."""
    from study.launch.runner import read_job_file

    known, after, out, others = set(known), set(job_ids), [], []
    for path in sorted((Path(workdir) / "jobs").glob("*/job.json")):
        try:
            job = read_job_file(path)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: no job this study can say anything of
        if job.id not in known:
            others.append(job)
    while True:  # a dependency before its dependents, whatever the order of the files
        found = [j for j in others if j.id not in after and any(d in after for d in j.depends_on)]
        if not found:
            return out
        out += found
        after.update(j.id for j in found)


def with_workdir_dependents(plan: Plan, workdir: str | os.PathLike, job_ids: Iterable[str]) -> Plan:
    """`plan` with the workdir's jobs of other grids that depend on one of `job_ids` added (`workdir_dependents`),
    for `refuse_live_dependents` and `rerun_results` to see another grid's evaluations of a shared pretraining;
    `plan` itself where there are none."""
    import dataclasses

    extra = workdir_dependents(workdir, job_ids, {j.id for j in plan.jobs})
    return dataclasses.replace(plan, jobs=plan.jobs + extra) if extra else plan


def set_aside(plan: Plan, workdir: str | os.PathLike, job_ids: Iterable[str], reason: str | None = None,
              grids: Mapping[str, str] | None = None) -> Path:
    """Record a `set_aside` line per job in the plan's ledger (the job then reads missing, not failed for a result
    gone), then move each job's folder (jobs/<id>/: checkpoint, encoder, logs) and result (results/<id>.json) to
    <workdir>/stale/<UTC time>/jobs/ and results/, each by one rename; returns that folder (absolute, as the lines
    name it). `reason`: the lines' (study.launch.state.RERUN, or None: stale); `grids`: job id -> the grid whose
    ledger takes its line instead, for another grid's job (`workdir_dependents`; in the plan's ledger, the plan's
    status would take its next result for one of a job the plan ran and no longer has). The caller holds the
    workdir's submit lock, and has refused jobs that run on these (`refuse_live_dependents`)."""
    from study.launch.grid_states import grid_file
    from study.launch.ledger import Ledger

    workdir, by_id, job_ids = Path(workdir), {j.id: j for j in plan.jobs}, list(job_ids)
    # absolute: status, run from any folder, names it
    folder = workdir.resolve() / STALE_DIR / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    for kind in ("results", "jobs"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    # the lines first: a job whose result a kill or an error leaves in place reads done (a result comes first), and
    # one whose result moved reads missing, never failed (a COMPLETED Slurm job, a local `done` without a result)
    lines: dict[str, list[dict]] = {}
    for job_id in job_ids:
        grid = (grids or {}).get(job_id, plan.name)
        lines.setdefault(grid, []).append({"event": "set_aside", "job": job_id, "stage": by_id[job_id].stage,
                                           "folder": str(folder),
                                           "grid_file": grid_file(plan) if grid == plan.name else None,
                                           **({"reason": reason} if reason else {})})
    for grid, events in lines.items():
        Ledger(workdir, grid).append(events)
    for job_id in job_ids:  # the folder first: a result never goes while its checkpoint stays to be resumed
        for src, dest in ((job_dir(workdir, job_id), folder / "jobs" / job_id),
                          (result_path(workdir, job_id), folder / "results" / f"{job_id}.json")):
            try:
                os.replace(src, dest)
            except FileNotFoundError:
                pass  # a job without a folder here (its result copied in from elsewhere)
            except OSError as e:
                raise StudyError(f"cannot move {src} to {dest}: {os_reason(e)}{not_yours(e)}") from None
    return folder


def refuse_live_dependents(plan: Plan, workdir: str | os.PathLike, job_ids: Iterable[str],
                           flag: str = "--set-aside-stale") -> None:
    """A StudyError naming the plan's jobs of `job_ids` (--rerun's: a job without a result, whose folder is set
    aside) and those that depend on one (transitively) that run or wait to run, here or on Slurm: `set_aside` would
    take their run folder, or the encoder they read, from under them, and their results would be of the old one. The
    caller holds the workdir's submit lock."""
    from study.launch.grid_states import locked_states
    from study.launch.state import LIVE

    states, after = locked_states(plan, workdir), set(job_ids)
    live = []
    for job in plan.jobs:  # plan order: dependencies first
        if job.id in after or any(d in after for d in job.depends_on):
            after.add(job.id)
            st = states.get(job.id)
            if st is not None and st.state in LIVE:
                where = f", Slurm job {st.slurm_id}" if st.slurm_id else ""
                live.append(f"{job.stage} {job.id} ({st.state}{where})")
    if live:
        raise StudyError(f"{flag}: {len(live)} job(s) to set aside, or that use a result to set aside, run or wait "
                         "to run: " + ", ".join(live[:5]) + (", ..." if len(live) > 5 else "") + "; nothing was "
                         "moved: submit again once they have ended (or after `study cancel`)")
