"""The files a plan's pretraining jobs read (`init_encoder`, `pretrained.encoder_file`): each a file here, of the
backbone and width of the jobs that read it."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from study.grids.jobs import Job
from study.grids.checks.where import file_key_at

if TYPE_CHECKING:
    from study.grids.plan import Plan


def files_read(plan: Plan) -> dict[tuple[str, str, str], list[Job]]:
    """(grid key, path, kind) -> the pretraining jobs that read that file: `init_encoder` (kind `encoder`, where set)
    and each setting of a job's method that names a file (`Method.file_settings`: `pretrained.encoder_file`, an
    `encoder`); values of a wrong type are left to the config checks."""
    from study.train.methods import METHODS

    out: dict[tuple[str, str, str], list[Job]] = {}
    for job in plan.by_stage("pretrain"):
        pre = job.config["pretrain"]
        method = job.axes["method"]
        reads = [("init_encoder", pre.get("init_encoder"), "encoder")]
        if method in METHODS and isinstance(pre.get(method), dict):
            reads += [(f"{method}.{field}", pre[method].get(field), kind)
                      for field, kind in METHODS.get(method).file_settings.items()]
        for key, path, kind in reads:
            if isinstance(path, str) and path:
                out.setdefault((key, path, kind), []).append(job)
    return out


def files_not_here(plan: Plan) -> list[str]:
    """Each file the plan's pretraining jobs read (`files_read`: `init_encoder`, every job starts from it;
    `pretrained.encoder_file`, the encoder method `pretrained` scores) said when not a file here: each job that reads
    it would stop on it."""
    return [f"{file_key_at(plan, key)}: {path} is not a file here (relative paths are read from the folder the jobs "
            f"start in: the one `study submit` is run from); every pretraining job that reads it would stop on it"
            for key, path, _ in files_read(plan) if not Path(path).is_file()]


def encoder_file_mismatches(plan: Plan) -> list[str]:
    """Each encoder file here (`files_read` of kind `encoder`) whose backbone or width is not that of a job that
    reads it: each such job would stop on it, after its queue wait (a file not here, or no encoder file: another
    check's, or the job's, to name)."""
    from study.train.backbones import encoder_spec
    from study.train.config import PretrainConfig

    out = []
    for (key, path, kind), jobs in files_read(plan).items():
        spec = encoder_spec(path) if kind == "encoder" and Path(path).is_file() else None
        if spec is None:
            continue
        asked = dict.fromkeys((j.config["pretrain"].get("backbone", PretrainConfig.backbone),
                               j.config["pretrain"].get("width", PretrainConfig.width)) for j in jobs)
        wrong = [f"{b} (width {w})" for b, w in asked if (b, w) != (spec["name"], spec["width"])]
        if wrong:
            out.append(f"{file_key_at(plan, key)}: {path} holds {spec['name']} (width {spec['width']}), the jobs "
                       f"that read it ask for {', '.join(wrong)}: import the checkpoint with that --backbone and "
                       "--width, or give those jobs the file's (`backbone` axis, defaults.pretrain.width)")
    return out
