"""One job's result record: `<workdir>/results/<job id>.json`, written atomically once the job succeeded.

Schema (version 1, docs/architecture.md section 4)::

    {"schema_version": 1, "job_id", "stage", "grid", "axes": {...}, "metrics": [MetricRow, ...],
     "protocol": {...}, "protocol_fingerprint": str, "code_version": str, "wall_time_s": float,
     "finished_at": ISO-8601, "depends_on": [job id, ...]}

`depends_on`: the jobs whose output this one read (an evaluation: its encoders' pretraining jobs, in the encoders'
order, each once; absent from records written before it was kept). `taken_over_from` (only there): the id the job
ran under, where a submit took over the result of an older study's job (study.launch.take_over).

`protocol_fingerprint` says "same protocol": it is the config hash of the effective protocol with every key that
describes one run rather than the recipe removed, at any depth (`RUN_SPECIFIC_KEYS`: timings, throughput, dates,
host, device, paths and job ids of the encoders, the code, torch and torchvision versions; an evaluation's copy of
its encoders' pretraining protocols, `pretrain`, which their fingerprints in `encoder_recipes` pin) and every
replicate key (`seed` and `*_seed`), so the seeds of one cell share a fingerprint and aggregate, while a changed
learning rate, epoch count, batch size, feature layer, manifest hash or a changed code default (which changes the
recorded effective protocol) does not. Keys that older records hold otherwise are left out too, so that those
records group with new ones: MoCo's and BYOL's settings in the config of a run of another method (older records
hold them in every run's; `OLDER_METHOD_SECTIONS`), the settings a training config's method never reads (a
supervised run's `temperature` and `head`, a random-init encoder's schedule: `study.train.config.UNREAD_SETTINGS`)
and what the protocol of a method that trains nothing says of training (`TRAINING_PROTOCOL_KEYS`), the linear-probe
settings its optimizer never reads (`PROBE_KEYS_UNREAD`, which older records hold for every optimizer), the L-BFGS
settings only newer records hold, where they hold the value older records' probes ran with (`PROBE_KEYS_LATER`),
and a fine-tuning job's top-level `epochs` (the first labeled size's alone in older records, each size's where they
differ in newer ones; every size's is in `runs` either way); an evaluation's `encoder_recipes` are recomputed from
the encoders' protocols it keeps (`pretrain`), so that they follow the rule too. A whole number is one value however
written (`10` or `10.0`: a grid's `warmup_epochs: 0` and `0.0` run the same recipe), as in the job ids.
The code version is deliberately not part of it: a new commit that computes the same protocol is the same protocol;
it is kept in the record and the table for audit. The stored fingerprint is kept for audit too, but the table
(study.results.table) recomputes it from `protocol` with this code's rule, so that records written under an older
rule still group with new ones.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
import warnings
from collections.abc import Iterable, Mapping  # typing's Mapping: isinstance several times slower
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.atomic import STALE_TEMPORARY_S, remove_temporaries, write_json
from study.configfields import is_int
from study.errors import StudyError, os_reason
from study.hashing import config_hash, whole_numbers_as_ints
from study.paths import result_path, results_dir
from study.runtime_keys import EVALUATE_RUN_ONLY, PRETRAIN_RUN_ONLY
from study.train.config import TRAINING_PROTOCOL_KEYS, UNTRAINED_METHODS, unread_settings
from study.version import code_version, newer_note  # code_version: what a record gets, as protocols and checkpoints

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "job_id", "stage", "axes", "metrics", "protocol")

# Keys that describe one run or what it found, not the recipe: removed (at any depth) before fingerprinting, as
# are timings (keys "seconds" and "*_seconds"). Outcomes: the weight decay each probe chose and its validation
# scores (`probes`, `chosen_weight_decay`), the feature cache's files and hits (`extraction`), resumes.
RUN_SPECIFIC_KEYS = frozenset({
    "wall_time_s", "wall_time", "images_per_s", "images_per_sec", "throughput", "samples_per_s", "steps_per_s",
    "finished_at", "started_at", "date", "timestamp", "hostname", "host", "node", "slurm_job_id", "pid",
    "code_version", "torch_version", "torchvision_version", "numpy_version", "pillow_version", "jpeg_decoder",
    "opencv_version", "opencv_jpeg_decoder", "git",
    "device", "device_kind", "devices_used", "gpu_peak_memory_gb", "tf32", "num_workers", "cpu_threads", "run_dir",
    "cache_dir", "workdir",
    "job_id", "encoders", "encoder_paths", "init_encoder", "encoder_file", "init_encoder_file", "init_encoder_sha256",
    "imported_from", "checkpoint", "resumed", "resumed_from", "resumed_from_steps", "requeues", "probes",
    "chosen_weight_decay", "extraction", "pretrain",
}) | frozenset(PRETRAIN_RUN_ONLY) | frozenset(EVALUATE_RUN_ONLY)  # how often to checkpoint or log, loader workers


# The linear-probe settings (study.evaluate.config.LinearConfig) each probe optimizer never reads: an evaluation
# records only its optimizer's
_LBFGS_ONLY = ("select_iter", "max_iter", "cold_iter", "tolerance", "tolerance_grad", "history_size")
PROBE_KEYS_UNREAD = {"lbfgs": ("epochs", "lr", "batch_size"), "adam": _LBFGS_ONLY, "sgd": _LBFGS_ONLY}
# Linear-probe settings that older records lack, with the value their probes used
PROBE_KEYS_LATER = {"tolerance_grad": 1e-7, "history_size": 20}


class ResultFileWarning(UserWarning):
    """A file in results/ that is not a readable result record (corrupt, foreign or from a newer schema)."""


class NewerRecord(StudyError):
    """A result record of a schema newer than this study reads: a newer version of study wrote it (a workdir shared
    with someone who updated). Not damaged: kept, never rerun over by this older code (study.launch.state)."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str
    newer: bool = False  # a newer version of study wrote it (NewerRecord): kept, not rerun

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _is_replicate_key(key: str) -> bool:
    return key == "seed" or key.endswith("_seed")


def _is_run_key(key: str) -> bool:
    return key in RUN_SPECIFIC_KEYS or key == "seconds" or key.endswith("_seconds") or _is_replicate_key(key)


def _strip(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _strip(v) for k, v in obj.items() if not _is_run_key(str(k))}
    if isinstance(obj, (list, tuple)):
        return [_strip(v) for v in obj]
    return obj


def probe_settings_read(linear: Any) -> Any:
    """A linear probe's settings (a mapping with its `optimizer`) without those that optimizer never reads
    (PROBE_KEYS_UNREAD); anything else as it is."""
    if not isinstance(linear, Mapping) or linear.get("optimizer") not in PROBE_KEYS_UNREAD:
        return linear
    return {k: v for k, v in linear.items() if k not in PROBE_KEYS_UNREAD[linear["optimizer"]]}


def _probe_settings_as_older(linear: Any) -> Any:
    """`probe_settings_read(linear)` without the settings only newer records hold (PROBE_KEYS_LATER) where they
    hold the value older records' probes ran with."""
    linear = probe_settings_read(linear)
    if not isinstance(linear, Mapping):
        return linear
    return {k: v for k, v in linear.items() if not (k in PROBE_KEYS_LATER and v == PROBE_KEYS_LATER[k])}


# The methods' own settings every training config recorded, whatever its method, before a run recorded only its own
# method's (study.train.PretrainConfig.to_dict)
OLDER_METHOD_SECTIONS = ("moco", "byol")


def _own_method_settings(obj: Any) -> Any:
    """`obj` with every training config in it (a `config` holding a `method`) without the settings of another
    method that older records hold (OLDER_METHOD_SECTIONS), nor those its method never reads (UNREAD_SETTINGS:
    older records hold them for every method)."""
    if isinstance(obj, (list, tuple)):
        return [_own_method_settings(v) for v in obj]
    if not isinstance(obj, Mapping):
        return obj
    out = {k: _own_method_settings(v) for k, v in obj.items()}
    config = out.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("method"), str):
        method = config["method"]
        unread = unread_settings(method)
        out["config"] = {k: v for k, v in config.items()
                         if (k not in OLDER_METHOD_SECTIONS or k == method) and k not in unread}
    return out


def _without_older_keys(protocol: Mapping[str, Any]) -> Mapping[str, Any]:
    """The protocol without the keys older records hold otherwise (module docstring): another method's settings in
    a training config; of a method that trains nothing, what its protocol says of training (TRAINING_PROTOCOL_KEYS);
    of an evaluation, the probe settings its optimizer never reads, a fine-tuning job's top-level
    `epochs`, and its encoders' recipes as the record holds them, fingerprinted by the rule of the code that wrote it
    (recomputed from the `pretrain` protocols it keeps, where it keeps them)."""
    protocol = _own_method_settings(protocol)
    if protocol.get("stage") == "pretrain" and protocol.get("method") in UNTRAINED_METHODS:
        return {k: v for k, v in protocol.items() if k not in TRAINING_PROTOCOL_KEYS}
    if protocol.get("stage") != "evaluate":
        return protocol
    out = {k: _probe_settings_as_older(v) if k == "linear" else v for k, v in protocol.items()
           if not (k == "epochs" and "runs" in protocol)}
    if isinstance(out.get("config"), Mapping) and "linear" in out["config"]:
        out["config"] = {**out["config"], "linear": _probe_settings_as_older(out["config"]["linear"])}
    recipes, pretrain = out.get("encoder_recipes"), out.get("pretrain")
    pretrain = [pretrain] if isinstance(pretrain, Mapping) else pretrain
    if isinstance(recipes, list) and isinstance(pretrain, list) and len(pretrain) == len(recipes):
        out["encoder_recipes"] = [protocol_fingerprint(p) if isinstance(p, Mapping) else r
                                  for r, p in zip(recipes, pretrain)]
    return out


def recipe_protocol(protocol: Mapping[str, Any]) -> dict:
    """What `protocol_fingerprint` hashes: the protocol minus run-specific and replicate keys and those older records
    hold otherwise (`_without_older_keys`: another method's settings in any training config too)."""
    return _strip(_without_older_keys(protocol))


def fingerprinted(protocol: Mapping[str, Any]) -> dict:
    """What `protocol_fingerprint` hashes, as a new dict: the recipe (`recipe_protocol`), its whole numbers as ints."""
    return whole_numbers_as_ints(recipe_protocol(protocol))


def protocol_fingerprint(protocol: Mapping[str, Any]) -> str:
    """Hash of the protocol minus run-specific and replicate (seed) keys: equal for every seed of one recipe, however
    its whole numbers are spelled (`10` or `10.0`)."""
    return config_hash(fingerprinted(protocol), length=16)


def make_record(job: Any, output: Mapping[str, Any], *, grid: str | None = None, wall_time_s: float | None = None,
                finished_at: str | None = None) -> dict:
    """The record of a `Job` (id, stage, config["axes"], depends_on) and its `RunOutput` ({"metrics", "protocol"}),
    for `write_result`, which fills its fingerprint, code version and (when None) finish time."""
    return {
        "schema_version": SCHEMA_VERSION,
        "job_id": job.id,
        "stage": job.stage,
        "grid": grid,
        "axes": dict(job.config.get("axes", {})),
        "depends_on": list(job.depends_on),
        "metrics": [dict(m) for m in output["metrics"]],
        "protocol": dict(output.get("protocol", {})),
        "wall_time_s": wall_time_s,
        "finished_at": finished_at,
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


INTEGER_AXES = ("size", "seed")  # a concatenation's axes join its two encoders' values: "50000|100000"
STRING_AXES = ("method", "backbone", "dataset", "corruption", "protocol", "eval_dataset", "variant")


def _axis_value_ok(axis: str, v: Any) -> bool:
    """The types the report's tables and figures rely on (other axes: anything)."""
    if v is None:
        return True
    if axis in INTEGER_AXES:
        if isinstance(v, str):
            return "|" in v and all(part == "None" or part.isdigit() for part in v.split("|"))
        return is_int(v)
    return isinstance(v, str) or axis not in STRING_AXES


def validate_record(record: Any, where: str = "result record") -> dict:
    """The record if it follows schema 1; a StudyError naming the first bad key otherwise."""
    if not isinstance(record, Mapping):
        raise StudyError(f"{where}: not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise StudyError(f"{where}: missing key(s) {', '.join(missing)} (not a study result record?)")
    if record["schema_version"] != SCHEMA_VERSION:
        found = record["schema_version"]
        newer = newer_note(found, SCHEMA_VERSION)
        raise (NewerRecord if newer else StudyError)(f"{where}: schema_version {found!r}, this study reads "
                                                     f"{SCHEMA_VERSION}{newer}")
    if not isinstance(record["job_id"], str) or not record["job_id"]:
        raise StudyError(f"{where}: job_id must be a non-empty string")
    if record["stage"] not in ("pretrain", "evaluate"):
        raise StudyError(f"{where}: stage {record['stage']!r} is not pretrain or evaluate")
    for key in ("axes", "protocol"):
        if not isinstance(record[key], Mapping):
            raise StudyError(f"{where}: {key} must be an object")
    for axis, v in record["axes"].items():
        if not _axis_value_ok(axis, v):
            raise StudyError(f"{where}: axes.{axis} {v!r} is not " + ("an integer, null or two joined by '|'"
                                                                      if axis in INTEGER_AXES else "a string or null"))
    deps = record.get("depends_on") or []  # absent or null: none recorded
    if not isinstance(deps, list) or not all(isinstance(d, str) and d for d in deps):
        raise StudyError(f"{where}: depends_on must be a list of job ids")
    if not isinstance(record["metrics"], list):
        raise StudyError(f"{where}: metrics must be a list")
    for i, m in enumerate(record["metrics"]):
        problem = metric_row_problem(m)
        if problem:
            raise StudyError(f"{where}: metrics[{i}]{problem}")
    return dict(record)


def metric_row_problem(m: Any) -> str | None:
    """What is wrong with one metric row, to follow its name (" needs ...", ".value ..."); None for a mapping with
    'metric' and 'value' (a number or null) whose 'labeled_size', if any, is an integer or null."""
    if not isinstance(m, Mapping) or "metric" not in m or "value" not in m:
        return " needs 'metric' and 'value'"
    value = m["value"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f".value {value!r} is not a number"
    ls = m.get("labeled_size")
    if ls is not None and not is_int(ls):
        return f".labeled_size {ls!r} is not an integer"
    return None


def write_result(workdir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Validate, complete and atomically write `record` to `<workdir>/results/<job_id>.json`; returns the path.

    Fills `schema_version`, `protocol_fingerprint` (always recomputed from `protocol`), `code_version` and
    `finished_at` (now, UTC) when absent. A reader never sees a half-written file (temporary name, then rename).
    """
    rec = dict(record)
    rec.setdefault("schema_version", SCHEMA_VERSION)
    rec.setdefault("grid", None)
    if not rec.get("code_version"):
        rec["code_version"] = code_version()
    if not rec.get("finished_at"):
        rec["finished_at"] = _now()
    rec.setdefault("wall_time_s", None)
    rec = validate_record(rec, where=f"result of job {rec.get('job_id')!r}")
    rec["protocol_fingerprint"] = protocol_fingerprint(rec["protocol"])
    rec["metrics"] = [  # JSON has no NaN; a diverged run's metric is missing, not a number (the caller's own kept)
        {**m, "value": None} if isinstance(m.get("value"), float) and not math.isfinite(m["value"]) else m
        for m in rec["metrics"]]
    path = result_path(workdir, rec["job_id"])
    write_json(path, rec)
    remove_temporaries(path, older_than_s=STALE_TEMPORARY_S)  # of an earlier writer killed mid-write
    return path


def read_result(path: str | os.PathLike) -> dict:
    """One record; a StudyError naming the file when it is corrupt, foreign or of another schema."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudyError(f"{path}: unreadable result file ({e.__class__.__name__}: {os_reason(e)})") from None
    record = validate_record(record, where=str(path))
    if record["job_id"] != path.stem:
        raise StudyError(f"{path}: holds job {record['job_id']!r}, not {path.stem!r} (a copied or foreign file?)")
    return record


def results_in_subfolders(workdir: str | os.PathLike, job_ids: Iterable[str]) -> dict[str, Path]:
    """Job id -> a file `<job id>.json` in a folder inside `<workdir>/results/` (at any depth; not a hidden one), for
    each of `job_ids` without a result file in results/ itself: no command reads one there, so its job reads missing
    and a submit would run it again. `cp -r other_runs/results runs/results` where runs/results exists copies the
    other workdir's results into runs/results/results/ (grids/README.md, "One workdir, one set of results")."""
    folder = results_dir(workdir)
    wanted = set(job_ids)
    found: dict[str, Path] = {}
    if not wanted or not folder.is_dir():
        return found
    for here, subfolders, files in os.walk(folder):  # results/ listed once: no lookup per job (thousands, on NFS)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        if Path(here) == folder:
            wanted -= {name.removesuffix(".json") for name in files if name.endswith(".json")}
            if not wanted or not subfolders:
                break
            continue
        for name in sorted(files):
            job_id = name.removesuffix(".json")
            if name.endswith(".json") and job_id in wanted and job_id not in found:
                found[job_id] = Path(here) / name
    return found


def subfolder_results_text(found: Mapping[str, Path], workdir: str | os.PathLike,
                           then: str = "else `study submit` runs those jobs again") -> str:
    """What `results_in_subfolders`' `found` means, in words: how many, the folders, how to put them in use, and
    `then`: what follows if they stay there."""
    folders = sorted({str(p.parent) for p in found.values()})
    top = results_dir(workdir)
    return (f"{len(found)} job(s) of the plan without a result in {top} have a result file in a folder inside it "
            f"({', '.join(folders[:3])}{' ...' if len(folders) > 3 else ''}), which no command reads: a copy of "
            f"another workdir's results/ made inside this one's (`cp -r other/results {top}`)? Move them into "
            f"{top} (`mv -n {shlex.quote(folders[0])}/*.json {shlex.quote(str(top))}/`, its job folders likewise "
            f"into jobs/), or remove that folder; {then}")


def read_results(workdir: str | os.PathLike, job_ids: Iterable[str] | None = None,
                 skipped: list[SkippedFile] | None = None) -> list[dict]:
    """Every valid record in `<workdir>/results/` (only `job_ids` when given), sorted by job id.

    A corrupt or foreign file is skipped with a `ResultFileWarning` naming it, and appended to `skipped` when a
    list is passed (the report counts them). Temporary files of writers still at work are never read.
    """
    folder = results_dir(workdir)
    wanted = None if job_ids is None else set(job_ids)
    if wanted is not None:
        paths = [folder / f"{j}.json" for j in sorted(wanted)]
        paths = [p for p in paths if p.exists()]
    else:
        paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []
    records = []
    for path in paths:
        try:
            records.append(read_result(path))
        except StudyError as e:
            warnings.warn(f"skipping {e}", ResultFileWarning, stacklevel=2)
            if skipped is not None:
                skipped.append(SkippedFile(path, str(e).removeprefix(f"{path}: "), isinstance(e, NewerRecord)))
    return records
