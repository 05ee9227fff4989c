"""Results computed on a manifest since rebuilt under the same name (another content hash): `stale_results` finds
them, which `study submit` refuses to count as done, and `set_aside` moves them out of the workdir's way
(`study submit --set-aside-stale`), so that their jobs run again."""
from __future__ import annotations

import datetime as _dt
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable

from study.errors import StudyError
from study.launch.runner import job_dir
from study.launch.state import cached_result, has_result
from study.paths import result_path

MANIFEST_KEYS = (("manifest", "manifest_content_hash"), ("train_manifest", "train_manifest_content_hash"),
                 ("test_manifest", "test_manifest_content_hash"))  # in a result's protocol (train loop, evaluate)
STALE_DIR = "stale"  # <workdir>/stale/<UTC time>/{results,jobs}/: what `set_aside` moved


def stale_results(jobs: Iterable[Any], workdir: str | os.PathLike) -> dict[str, str]:
    """Job id -> why, in plan order, for each job whose result was computed on a manifest since rebuilt under the
    same name (another content hash), its own or, for an evaluation, its encoder's pretraining's (the record's
    `pretrain`: that encoder is trained again): that result would otherwise count as done."""
    from study.manifests.store import load_meta

    @functools.cache
    def current(name: str) -> str | None:
        try:
            return load_meta(name).get("content_hash")
        except StudyError:
            return None  # gone: plan.check names missing manifests

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
        own = rebuilt(protocol)
        why = (f"its result used {own}" if own else
               next((f"its encoder was pretrained on {w}" for w in map(rebuilt, encoders) if w), None))
        if why:
            out[job.id] = f"{job.stage} job {job.id}: {why}"
    return out


def set_aside(plan: Any, workdir: str | os.PathLike, job_ids: Iterable[str]) -> Path:
    """Move each job's result (results/<id>.json) and folder (jobs/<id>/: checkpoint, encoder, logs) to
    <workdir>/stale/<UTC time>/results/ and jobs/, each by one rename, and record a `set_aside` line per job in the
    plan's ledger (the job then reads missing, not failed for a result gone); returns that folder. The caller holds
    the workdir's submit lock."""
    from study.launch.grid_states import grid_file
    from study.launch.ledger import Ledger

    workdir, by_id = Path(workdir), {j.id: j for j in plan.jobs}
    folder = workdir / STALE_DIR / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    for kind in ("results", "jobs"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    moved = []
    for job_id in job_ids:
        for src, dest in ((result_path(workdir, job_id), folder / "results" / f"{job_id}.json"),
                          (job_dir(workdir, job_id), folder / "jobs" / job_id)):
            try:
                os.replace(src, dest)
            except FileNotFoundError:
                pass  # a job without a folder here (its result copied in from elsewhere)
            except OSError as e:
                raise StudyError(f"cannot move {src} to {dest}: {e.strerror or e}") from None
        moved.append({"event": "set_aside", "job": job_id, "stage": by_id[job_id].stage, "folder": str(folder),
                      "grid_file": grid_file(plan)})
    Ledger(workdir, plan.name).append(moved)
    return folder
