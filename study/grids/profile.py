"""Cluster profiles: where jobs go (partition, account, ...), what a node holds, per-stage resources, cost numbers.

A profile is a YAML file (see grids/README.md, "Cluster profiles"); `load_profile(path)` validates it once into a
`Profile`. `Profile()` with no file is the built-in default: a generic 8-GPU node and no partition.
`Profile.placement(stage)` is where a stage's jobs go: the profile's partition, account, qos, constraint, gpu_type,
max_time and additional, each overridden by the stage's own (`stages.<stage>.partition`, ...).
`resolve_resources(...)` turns the layered resource specs (profile stage, grid stage, evaluate entry) into one
`Resources` per job; the launcher groups jobs by `(stage, resources)` into arrays.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable

from study.configfields import is_int, is_num
from study.errors import StudyError
from study.grids.values import parse_mem_gb, parse_minutes
from study.grids.yamlio import YMap, check_keys, fail, load_yaml

STAGES = ("pretrain", "evaluate")  # a grid's and a profile's stages, in the order they run
RESOURCE_KEYS = ("gpus", "cpus", "mem", "time", "nodes")
RESOURCE_FIELDS = {"mem": "mem_gb", "time": "time_min"}  # a resource key's Resources field, where it is named otherwise
# keys a user writes for a job's tasks, which follow its `gpus` (Resources.tasks_per_node): refused with how to ask
TASK_KEYS = ("ntasks", "ntasks_per_node", "tasks", "tasks_per_node")
# what a profile's `stages.<stage>` may set besides its resources, each overriding the profile's top-level key for
# that stage's jobs (`additional`: merged over the top-level one; see Profile.placement)
PLACEMENT_KEYS = ("partition", "account", "qos", "constraint", "gpu_type", "max_time", "additional")
COST_KINDS = ("pretrain", "finetune", "extract")
# what a `cost.throughput.<backbone>` entry may say besides its rates (COST_KINDS): where they were measured
# (`width`, `image_size`, `device`: `study plan` notes the jobs that run otherwise) and `method_factor`, the methods'
# factors measured on that backbone (over the top-level `cost.method_factor` for its jobs); `study report`'s rates.yaml
# writes them
MEASURED_AT_KEYS = ("width", "image_size", "device")
THROUGHPUT_KEYS = COST_KINDS + MEASURED_AT_KEYS + ("method_factor",)


@dataclass(frozen=True)
class Resources:
    """What one job asks of the scheduler: per node `gpus`, `cpus`, `mem_gb`; `time_min` wall-clock limit; `nodes`."""

    gpus: int = 1
    cpus: int = 8
    mem_gb: float = 32.0
    time_min: int = 24 * 60
    nodes: int = 1

    def tasks_per_node(self, stage: str) -> int:
        """The processes a job of `stage` runs on each node: one per GPU for a pretraining job on several GPUs
        (torch.distributed ranks), else one."""
        return int(self.gpus) if stage == "pretrain" and self.gpus > 1 else 1

    def at_most(self, cap: Resources) -> Resources:
        """Each amount the smaller of this one's and `cap`'s."""
        return Resources(*(min(getattr(self, f.name), getattr(cap, f.name)) for f in fields(Resources)))


# ours: the most a pretraining job of a method that trains nothing (`random`, `pretrained`) asks, whatever its stage's
# resources: it builds or reads one encoder and writes it, in seconds, and need not wait for (nor hold) a node of
# GPUs; one GPU where its stage has any (a GPU partition may refuse a job without); its time at least twice the
# profile's job overhead (Profile.untrained_max)
UNTRAINED_MAX = Resources(gpus=1, cpus=2, mem_gb=8.0, time_min=30, nodes=1)


# ours: rough A100 rates with bf16 and channels_last; images of the dataset per second per GPU (a two-view SSL
# step counts one image). A job without GPU uses the same numbers per job. Override them in your profile.
DEFAULT_THROUGHPUT = {
    "resnet50": {"pretrain": 700.0, "finetune": 1300.0, "extract": 3000.0},
    "resnet18": {"pretrain": 2000.0, "finetune": 3500.0, "extract": 9000.0},
}
REFERENCE_BACKBONE = "resnet50"  # whose rates (and feature width) the estimate counts where a backbone has none
# ours: cost of one pretraining image relative to SimCLR (supervised: one view and no projection head); a method
# that trains nothing (`random`, `pretrained`) counts 0 without one (study.grids.cost)
DEFAULT_METHOD_FACTOR = {"simclr": 1.0, "moco": 0.9, "byol": 1.2, "supervised": 0.5}


@dataclass(frozen=True)
class CostModel:
    """The numbers of the throughput model (grids/README.md, "Cost model")."""

    throughput: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_THROUGHPUT.items()})
    method_factor: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_METHOD_FACTOR))
    job_overhead_min: float = 5.0  # ours: start-up, loading, checkpoint writes
    probe_min: float = 1.0  # ours: the fixed part of one linear probe (or kNN pass) on cached features
    # linear probes: labeled rows x classes per second per GPU at 2048-d features (the weight-decay path and refit of
    # study.evaluate.linear). Measured 4.0e7 on an H200 in fp32 (benchmarks/README.md: probes at six sizes, 362,401
    # rows in all, at 10,000 classes in 90.9 s); ours: an A100's fp32 is about a third of an H200's, rounded down to 1e7
    probe_rate: float = 1e7
    default_epochs: float = 1000.0  # when neither the grid nor the job says (PretrainConfig's default)
    finetune_epochs: float | None = None  # fine-tuning and from-scratch epochs when the grid gives none; None:
    # what such a job runs then (its protocol's recipe, study.evaluate.recipes: 60 for fine-tuning, 90 from scratch)
    default_test_images: int = 50_000  # when a dataset does not give `test_images`
    # per backbone, where the profile says its rates were measured (MEASURED_AT_KEYS: width, image_size, device), and
    # the methods' factors measured on it (its jobs' `method_factor`, over the top-level one)
    measured_at: dict[str, dict[str, Any]] = field(default_factory=dict)
    backbone_factors: dict[str, dict[str, float]] = field(default_factory=dict)
    # the line of each backbone under `throughput` and method under `method_factor` ((section, name) -> line), for
    # Plan.check to name one the registries do not know
    names_at: dict[tuple[str, str], int] = field(default_factory=dict, compare=False)

    def rate(self, backbone: str | None, kind: str) -> float:
        """Images/s per GPU of `kind` work (COST_KINDS) on `backbone`: the profile's, else REFERENCE_BACKBONE's."""
        table = (self.throughput.get(backbone or "") or self.throughput.get(REFERENCE_BACKBONE)
                 or DEFAULT_THROUGHPUT[REFERENCE_BACKBONE])
        return float(table.get(kind) or DEFAULT_THROUGHPUT[REFERENCE_BACKBONE][kind])

    def factor(self, backbone: str | None, method: str) -> float | None:
        """The cost of `method`'s pretraining image relative to SimCLR's on `backbone`: the factor measured on it
        (`throughput.<backbone>.method_factor`), else `method_factor`'s; None where neither gives one."""
        own = self.backbone_factors.get(backbone or "", {})
        return own[method] if method in own else self.method_factor.get(method)

    def gives_rates_of(self, backbone: str) -> bool:
        """Whether the profile file gives `backbone` its own rates (else they are the built-in DEFAULT_THROUGHPUT)."""
        return ("throughput", backbone) in self.names_at

    def gives_rates(self) -> bool:
        """Whether the profile file gives any backbone's rates (`cost.throughput`)."""
        return any(section == "throughput" for section, _ in self.names_at)


@dataclass(frozen=True)
class Placement:
    """Where the jobs of one stage go: the profile's values, each overridden by the stage's own (`own`: the keys
    `stages.<stage>` sets; `key(name)` names the key that set a value, for messages)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu_type: str | None = None
    max_time_min: int | None = None
    additional: dict[str, Any] = field(default_factory=dict)
    stage: str = ""
    own: frozenset[str] = frozenset()

    def key(self, name: str) -> str:
        """The profile key that set `name` for this stage: `stages.<stage>.<name>` where the stage sets it, else the
        top-level `<name>`."""
        return f"stages.{self.stage}.{name}" if name in self.own else name


def option_name(key: Any) -> str:
    """An sbatch option as submitit writes it (`mail_type` is `--mail-type`): how a stage's `additional` key finds
    the top-level one it replaces."""
    return str(key).replace("_", "-")


# the built-in profile's stage resources, as a profile file writes them (grids/README.md, "Cluster profiles"); a key
# they leave out (`nodes`) is Resources' default, whose other defaults are the pretraining stage's here
DEFAULT_STAGES = {
    "pretrain": {"gpus": 1, "cpus": 8, "mem": "32G", "time": "24h"},
    "evaluate": {"gpus": 1, "cpus": 8, "mem": "32G", "time": "12h"},
}


@dataclass(frozen=True)
class Profile:
    """A cluster profile. `stages[stage]` holds the raw resource specs (values may be `node`)."""

    name: str = "default"
    path: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu_type: str | None = None  # a typed GPU request, e.g. a100: --gpus-per-node=a100:8 (or --gres=gpu:a100:8)
    gpu_option: str = "gpus-per-node"  # how GPUs are asked for: --gpus-per-node (cons_tres) or --gres
    gpus_per_node: int | None = 8
    cpus_per_node: int | None = 64
    mem_per_node_gb: float | None = 480.0
    max_array_size: int = 1000
    max_parallel_gpus: int | None = None
    max_parallel_jobs: int | None = None  # e.g. the local machine's cores: the wall-time estimate's slots, and on
    # Slurm each array's throttle (with max_parallel_gpus, the smaller)
    signal_delay_s: int = 90  # ours: SIGUSR2 this long before a Slurm job's time limit (capped: slurm.params)
    max_time_min: int | None = None  # the partition's MaxTime: a longer `time` is refused (sbatch would refuse it, or
    # the job would pend for ever: PartitionTimeLimit)
    setup: tuple[str, ...] = ()
    python: str | None = None  # the command that runs Python in a Slurm job; None: the interpreter of `study submit`
    snapshot_code: bool = True  # a job imports the copy of study's code its submit took (launch.snapshot)
    additional: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_STAGES.items()})
    stage_lines: dict[str, int] = field(default_factory=dict)
    cost: CostModel = field(default_factory=CostModel)
    # each stage's own placement keys (PLACEMENT_KEYS, validated; max_time in minutes; None: the stage removes the
    # top-level value), and under `additional` its options (None: the stage drops the top-level option)
    stage_placement: dict[str, dict[str, Any]] = field(default_factory=dict)

    def placement(self, stage: str) -> Placement:
        """Where `stage`'s jobs go: each of partition, account, qos, constraint, gpu_type, max_time the stage's own
        where it sets one (a null there: none), else the profile's; additional: the profile's with the stage's
        options over them, an option the stage sets to null dropped."""
        own = self.stage_placement.get(stage, {})
        additional = dict(self.additional)
        for key, value in (own.get("additional") or {}).items():
            additional = {k: v for k, v in additional.items() if option_name(k) != option_name(key)}
            if value is not None:
                additional[key] = value
        return Placement(partition=own.get("partition", self.partition), account=own.get("account", self.account),
                         qos=own.get("qos", self.qos), constraint=own.get("constraint", self.constraint),
                         gpu_type=own.get("gpu_type", self.gpu_type),
                         max_time_min=own.get("max_time", self.max_time_min), additional=additional,
                         stage=stage, own=frozenset(own))

    def untrained_max(self) -> Resources:
        """UNTRAINED_MAX, its time at least twice this profile's job overhead (start-up, loading)."""
        time_min = max(UNTRAINED_MAX.time_min, math.ceil(2 * self.cost.job_overhead_min))
        return replace(UNTRAINED_MAX, time_min=time_min)

    def require_partition(self) -> str:
        """The partition (the top-level one, else the first a stage sets), or a StudyError: `--cluster slurm` needs
        one for the jobs of every stage (the launcher calls this before submitting)."""
        where = self.path or "the built-in default profile"
        lacking = [stage for stage in STAGES if not self.placement(stage).partition]
        if lacking == list(STAGES) or (lacking and not self.partition):
            raise StudyError(f"{where}: no 'partition' (required for --cluster slurm)"
                             + (f" for the jobs of stage(s) {', '.join(lacking)}" if lacking != list(STAGES) else "")
                             + "; add e.g. `partition: gpu` to the profile, or pass --profile FILE")
        if lacking:
            raise StudyError(f"{where}: stages.{lacking[0]}.partition is null: its jobs would have no partition "
                             f"(required for --cluster slurm); name one, or leave the key out to use the profile's "
                             f"{self.partition!r}")
        return self.partition or str(self.placement(STAGES[0]).partition)


GPU_OPTIONS = ("gpus-per-node", "gres")
# the most seconds sbatch's --signal takes: a longer signal_delay_s reaches it for a job of 8 days or more
# (slurm.params caps the delay at a tenth of the job's time)
MAX_SIGNAL_DELAY_S = 65535
# the Slurm launcher's: the timeouts or preemptions a job is requeued after (submitit's max_num_timeout), so a job
# may run that many time limits and one more; the estimate notes a job that needs longer (study.grids.cost)
MAX_REQUEUES = 20
PROFILE_KEYS = ("name", "partition", "account", "qos", "constraint", "gpu_type", "gpu_option", "gpus_per_node",
                "cpus_per_node", "mem_per_node", "max_array_size", "max_parallel_gpus", "max_parallel_jobs",
                "signal_delay_s", "max_time", "setup", "python", "snapshot_code", "additional", "stages", "cost")
# sbatch options the launcher writes itself (study.launch.slurm.params), each with the profile key that sets it (None:
# none, the launcher's own). In `additional` (written after them, so winning) they would break what relies on them:
# requeue (signal), the stage dependencies (dependency), finding an interrupted submit's array (job-name), the logs
# `study status` reads (output, error), one task per GPU (ntasks-per-node)
LAUNCHER_SBATCH_OPTIONS: dict[str, str | None] = {
    "array": None, "dependency": None, "job-name": None, "output": None, "error": None, "open-mode": None,
    "signal": None, "requeue": None, "no-requeue": None, "kill-on-invalid-dep": None,
    "partition": "partition", "account": "account", "qos": "qos", "constraint": "constraint",
    "time": "stages.<stage>.time", "nodes": "stages.<stage>.nodes", "ntasks": "stages.<stage>.gpus",
    "ntasks-per-node": "stages.<stage>.gpus", "gpus-per-node": "stages.<stage>.gpus (gpu_type: its type)",
    "cpus-per-task": "stages.<stage>.cpus", "mem": "stages.<stage>.mem", "mem-per-cpu": "stages.<stage>.mem",
    "mem-per-gpu": "stages.<stage>.mem", "gpus": "stages.<stage>.gpus", "gpus-per-task": "stages.<stage>.gpus",
}
# options the launcher does not write, but which Slurm refuses beside one it does: -> (that one, the profile key)
CLASHING_SBATCH_OPTIONS: dict[str, tuple[str, str]] = {
    "cpus-per-gpu": ("cpus-per-task", "stages.<stage>.cpus"),
    "ntasks-per-gpu": ("ntasks-per-node", "stages.<stage>.gpus"),
    "gpus-per-socket": ("gpus-per-node", "stages.<stage>.gpus"),
}
# options that break the submission itself (they act in a script's header as on sbatch's command line): --wait
# blocks `study submit` until the job ends, --test-only submits nothing, --parsable prints the job id without the
# "Submitted batch job" line submitit reads it from, --clusters (-M) sends the jobs where study does not look
SUBMIT_BREAKING_SBATCH_OPTIONS: dict[str, str] = {
    "wait": "it would block study submit until the job ends",
    "test-only": "sbatch would submit nothing",
    "parsable": "submitit reads the job id from sbatch's usual output",
    "clusters": "study reads its jobs' states, cancels them and has a stage wait on the one before with sacct, squeue, "
                "scancel and --dependency on the cluster of the host it runs on (a job id names a job of one cluster "
                "only): run study on a login node of that cluster",
    "cluster-constraint": "it lets a federation start the jobs on another of its clusters, where study's sacct (this "
                          "cluster's) does not see them",
}
# sbatch's one-letter options by their long names: submitit writes a key as `--<key>`, which sbatch reads as a long
# option (`--M` is none), so `additional` takes the long name only
SBATCH_SHORT_OPTIONS = {
    "A": "account", "a": "array", "B": "extra-node-info", "b": "begin", "C": "constraint", "c": "cpus-per-task",
    "D": "chdir", "d": "dependency", "e": "error", "F": "nodefile", "G": "gpus", "H": "hold", "i": "input",
    "J": "job-name", "k": "no-kill", "L": "licenses", "M": "clusters", "m": "distribution", "N": "nodes",
    "n": "ntasks", "O": "overcommit", "o": "output", "p": "partition", "Q": "quiet", "q": "qos", "S": "core-spec",
    "s": "oversubscribe", "t": "time", "W": "wait", "w": "nodelist", "x": "exclude",
}
COST_KEYS = ("throughput", "method_factor", "job_overhead_min", "probe_min", "probe_rate", "default_epochs",
             "finetune_epochs", "default_test_images")


def load_profile(path: str | Path | None) -> Profile:
    """The profile in `path` (validated), or the built-in default when `path` is None."""
    if path is None:
        return Profile()
    p = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, YMap):
        raise fail(p, getattr(raw, "line", 1), "a profile must be a mapping")
    check_keys(p, raw, PROFILE_KEYS)

    def opt_str(key: str) -> str | None:
        return _opt_str(p, raw, key, key)

    def opt_int(key: str, default: int | None) -> int | None:
        if key not in raw or raw[key] is None:
            return default
        v = raw[key]
        if not is_int(v) or v < 0:
            raise fail(p, raw.line_of(key), f"{key}: expected an integer >= 0, got {v!r}")
        return v

    mem = raw.get("mem_per_node")
    try:
        mem_gb = parse_mem_gb(mem) if mem is not None else None
    except ValueError as e:
        raise fail(p, raw.line_of("mem_per_node"), f"mem_per_node: {e}") from None
    setup = raw.get("setup") or []
    if not isinstance(setup, list) or not all(isinstance(s, str) for s in setup):
        raise fail(p, raw.line_of("setup"), "setup: expected a list of shell lines")
    snapshot_code = raw.get("snapshot_code", Profile.snapshot_code)
    if not isinstance(snapshot_code, bool):
        raise fail(p, raw.line_of("snapshot_code"), f"snapshot_code: expected true or false, got {snapshot_code!r}")
    additional = _additional(p, raw, "additional")
    gpu_type, gpu_option = _gpu_type(p, raw, "gpu_type"), opt_str("gpu_option") or Profile.gpu_option
    if gpu_option not in GPU_OPTIONS:
        raise fail(p, raw.line_of("gpu_option"), f"gpu_option: expected one of {', '.join(GPU_OPTIONS)}, "
                                                 f"got {gpu_option!r}")
    _check_additional(p, additional, gpu_option)
    stages, stage_lines, stage_placement = _stages(p, raw, additional, gpu_option)
    partition = _partition(p, raw, "partition")
    for key in ("max_parallel_gpus", "max_parallel_jobs"):
        if opt_int(key, None) == 0:  # read as no limit by the estimate and the throttle alike: say so instead
            raise fail(p, raw.line_of(key), f"{key}: expected an integer >= 1, got 0 (leave it out for no limit)")
    signal_delay_s = opt_int("signal_delay_s", Profile.signal_delay_s)
    if not signal_delay_s:
        raise fail(p, raw.line_of("signal_delay_s"), "signal_delay_s: expected a number of seconds >= 1, got 0")
    if signal_delay_s > MAX_SIGNAL_DELAY_S:
        raise fail(p, raw.line_of("signal_delay_s"), f"signal_delay_s: expected at most {MAX_SIGNAL_DELAY_S} seconds "
                                                     f"(the most sbatch's --signal takes), got {signal_delay_s}")
    max_time_min = _max_time(p, raw, "max_time")
    raw_stages = raw.get("stages") or {}
    for stage in STAGES:  # a stage time the profile leaves to DEFAULT_STAGES (24h, 12h) is one it fits
        limit = stage_placement.get(stage, {}).get("max_time", max_time_min)
        if (limit is not None and "time" not in (raw_stages.get(stage) or {})
                and parse_minutes(stages[stage]["time"]) > limit):
            stages[stage]["time"] = minutes_text(limit)
    max_array = opt_int("max_array_size", Profile.max_array_size)
    if not max_array:
        raise fail(p, raw.line_of("max_array_size"), "max_array_size: expected an integer >= 1")
    prof = Profile(
        name=str(raw.get("name") or Path(p).stem), path=p,
        partition=partition, account=opt_str("account"), qos=opt_str("qos"),
        constraint=opt_str("constraint"), gpu_type=gpu_type, gpu_option=gpu_option,
        gpus_per_node=opt_int("gpus_per_node", None), cpus_per_node=opt_int("cpus_per_node", None),
        mem_per_node_gb=mem_gb, max_array_size=max_array, max_parallel_gpus=opt_int("max_parallel_gpus", None),
        max_parallel_jobs=opt_int("max_parallel_jobs", None), signal_delay_s=signal_delay_s,
        max_time_min=max_time_min,
        setup=tuple(setup), python=opt_str("python"), snapshot_code=snapshot_code, additional=dict(additional),
        stages=stages,
        stage_lines=stage_lines, stage_placement=stage_placement,
        cost=_load_cost(p, raw.get("cost"), raw.line_of("cost")),
    )
    # the profile's own stage defaults must fit its nodes
    for stage in STAGES:
        resolve_resources(prof, stage, [])
    return prof


def _gpu_type(p: str, raw: YMap, said: str) -> str | None:
    """`raw["gpu_type"]`, a GPU type as sbatch's --gpus-per-node / --gres take it (`a100`), or None."""
    gpu_type = _opt_str(p, raw, "gpu_type", said)
    if gpu_type is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", gpu_type):
        raise fail(p, raw.line_of("gpu_type"), f"{said}: expected a GPU type such as a100, got {gpu_type!r}")
    return gpu_type


def _opt_str(p: str, raw: YMap, key: str, said: str) -> str | None:
    """`raw[key]`, a string option written as one sbatch line (`said`: its name in messages), or None."""
    v = raw.get(key)
    if v is not None and not isinstance(v, str):
        raise fail(p, raw.line_of(key), f"{said}: expected a string, got {v!r}")
    if v:
        _one_line(p, raw.line_of(key), said, v)
    return v or None


def _one_line(p: str, line: int | None, said: str, value: Any) -> None:
    """Refuse a value (`said`: its key in messages) holding a line break or control character (CONTROL)."""
    if CONTROL.search(str(value)):
        raise fail(p, line, f"{said}: {value!r} holds a line break or control character (each sbatch option is one "
                            "line of the script's header)")


def _partition(p: str, raw: YMap, said: str) -> str | None:
    partition = _opt_str(p, raw, "partition", said)
    if partition is not None and not re.fullmatch(r"[^\s,]+(,[^\s,]+)*", partition):  # sbatch takes " b" as a name
        raise fail(p, raw.line_of("partition"), f"{said}: expected a name or a comma-separated list of names "
                                                f"without spaces (e.g. gpu,gpu-long), got {partition!r}")
    return partition


def _max_time(p: str, raw: YMap, said: str) -> int | None:
    max_time = raw.get("max_time")
    try:
        return parse_minutes(max_time) if max_time is not None else None
    except ValueError as e:
        raise fail(p, raw.line_of("max_time"), f"{said}: {e}") from None


def _additional(p: str, raw: YMap, said: str) -> dict:
    additional = raw.get("additional") or {}
    if not isinstance(additional, dict):
        raise fail(p, raw.line_of("additional"), f"{said}: expected a mapping of extra sbatch options")
    return additional


def _stages(p: str, raw: YMap, additional: dict, gpu_option: str) -> tuple[dict[str, dict], dict[str, int],
                                                                           dict[str, dict[str, Any]]]:
    """A profile's `stages`: each stage's resources over DEFAULT_STAGES' (keys checked, values left to
    `resolve_resources`), the line of each stage the file sets, and each stage's placement keys (checked as the
    top-level ones are; its `additional` also against the profile's `additional`, whose options a null drops)."""
    stages = {k: dict(v) for k, v in DEFAULT_STAGES.items()}
    stage_lines: dict[str, int] = {}
    placement: dict[str, dict[str, Any]] = {}
    raw_stages = raw.get("stages") or YMap()
    if not isinstance(raw_stages, YMap):
        raise fail(p, raw.line_of("stages"), "stages: expected a mapping stage -> resources")
    check_keys(p, raw_stages, STAGES, what="stage")
    for stage, spec in raw_stages.items():
        if not isinstance(spec, YMap):
            raise fail(p, raw_stages.line_of(stage),
                       f"stages.{stage}: expected a mapping of {', '.join(RESOURCE_KEYS + PLACEMENT_KEYS)}")
        _refuse_task_keys(p, spec, f"stages.{stage}")
        check_keys(p, spec, RESOURCE_KEYS + PLACEMENT_KEYS, what=f"stages.{stage} key")
        stages[stage] = {**stages[stage], **{k: v for k, v in spec.items() if k in RESOURCE_KEYS}}
        stage_lines[stage] = spec.line
        said = f"stages.{stage}"
        own: dict[str, Any] = {}
        if "partition" in spec:
            own["partition"] = _partition(p, spec, f"{said}.partition")
        for key in ("account", "qos", "constraint"):
            if key in spec:
                own[key] = _opt_str(p, spec, key, f"{said}.{key}")
        if "gpu_type" in spec:
            own["gpu_type"] = _gpu_type(p, spec, f"{said}.gpu_type")
        if "max_time" in spec:
            own["max_time"] = _max_time(p, spec, f"{said}.max_time")
        if "additional" in spec:
            own["additional"] = _additional(p, spec, f"{said}.additional")
            _check_additional(p, own["additional"], gpu_option, f"{said}.additional", base=additional)
            own["additional"] = dict(own["additional"])
        if own:
            placement[stage] = own
    return stages, stage_lines, placement


CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a line break would start a line of its own in the sbatch script
_OPTION = re.compile(r"[a-z0-9][a-z0-9_-]*")  # sbatch's long options are lower case: `--Mail-Type` is refused


def _check_additional(p: str, additional: dict, gpu_option: str, where: str = "additional",
                      base: dict | None = None) -> None:
    """Refuse an `additional` sbatch option study submit cannot pass on (`_additional_option`) or whose value it
    cannot write (`_check_additional_value`). `where`: the mapping's name in messages; `base`: for a stage's
    `additional`, the profile's, whose options a null value there drops (a null for an option `base` does not set is
    refused: it drops nothing)."""
    written = {**LAUNCHER_SBATCH_OPTIONS, **({"gres": "stages.<stage>.gpus (gpu_type: its type)"}
                                              if gpu_option == "gres" else {})}
    for key, value in additional.items():
        line = additional.line_of(key) if isinstance(additional, YMap) else None
        option = _additional_option(p, line, where, key, written)
        _one_line(p, line, f"{where}.{key}", value)
        if value is None and base is not None:
            if option_name(key) not in {option_name(k) for k in base}:
                raise fail(p, line, f"{where}.{key}: null drops the profile's own `additional` option of that name, "
                                    f"but it sets none (its options: {', '.join(map(str, base)) or 'none'})")
            continue
        _check_additional_value(p, line, where, key, option, value)


def _additional_option(p: str, line: int | None, where: str, key: Any, written: dict[str, str | None]) -> str:
    """The sbatch option `key` names (lower case, `_` as `-`; an abbreviation of one below in full: sbatch takes a
    long option's unambiguous prefix, `--job` is --job-name). Refused, naming the profile key to use instead: one
    the launcher writes itself (`written`: LAUNCHER_SBATCH_OPTIONS, and --gres where `gpu_option: gres` has it ask
    for the GPUs), one Slurm refuses beside those (CLASHING_SBATCH_OPTIONS), one that breaks the submission
    (SUBMIT_BREAKING_SBATCH_OPTIONS), an ambiguous abbreviation, a one-letter option (`M`: SBATCH_SHORT_OPTIONS,
    refused as its long name is where that is, else with that name to write), and a key that is no option name
    (`_OPTION`: submitit writes it unquoted, after `--`)."""
    known = {*written, *CLASHING_SBATCH_OPTIONS, *SUBMIT_BREAKING_SBATCH_OPTIONS}  # what an abbreviation may stand for
    bare = str(key).strip().lstrip("-")
    letter = len(bare) == 1  # sbatch's -M, -p, ...: refused whatever it is, after what its long name is refused for
    option = SBATCH_SHORT_OPTIONS.get(bare, bare) if letter else bare.replace("_", "-").lower()
    begun = sorted(o for o in known if o.startswith(option)) if option and option not in known and not letter else []
    said = f"{option} (-{bare})" if letter and option != bare else option
    if len(begun) > 1:  # ambiguous to sbatch too, which refuses it
        raise fail(p, line, f"{where}: --{option} abbreviates " + " or ".join(f"--{o}" for o in begun)
                            + ", options study submit writes itself or refuses: write options in full")
    if begun:
        option, said = begun[0], f"{option} (an abbreviation of --{begun[0]})"
    if option in written:
        instead = written[option]
        raise fail(p, line, f"{where}: --{said} is written by study submit itself"
                   + (f"; set `{instead}` in the profile instead" if instead else
                      " (requeue, stage dependencies, recovery and `study status` rely on its value)"))
    if option in CLASHING_SBATCH_OPTIONS:
        beside, instead = CLASHING_SBATCH_OPTIONS[option]
        raise fail(p, line, f"{where}: sbatch refuses --{said} beside the --{beside} study submit writes; set "
                            f"`{instead}` in the profile instead")
    if option in SUBMIT_BREAKING_SBATCH_OPTIONS:
        raise fail(p, line, f"{where}: --{said} cannot be used: {SUBMIT_BREAKING_SBATCH_OPTIONS[option]}")
    if letter:
        raise fail(p, line, f"{where}: {key!r}: sbatch takes a one-letter option after one dash, and study submit "
                            f"writes each key after two (`--{bare}`, which sbatch does not take): write its long name"
                            + (f", `{option}`" if option != bare else ""))
    if not (isinstance(key, str) and _OPTION.fullmatch(key)):  # written unquoted: `#SBATCH --<key>=<value>`
        fixed = isinstance(key, str) and key.lstrip("-").lower()
        raise fail(p, line, f"{where}: {key!r} is not an sbatch option name (lower-case letters, digits, '-', "
                            "'_')" + (f": write `{fixed}`" if fixed and _OPTION.fullmatch(fixed) else ""))
    return option


def _check_additional_value(p: str, line: int | None, where: str, key: Any, option: str, value: Any) -> None:
    """Refuse a value of `additional` option `key` (`option`: the sbatch option it names) that submitit would write
    wrong: a `false` (`--<key>=False`), an empty value or a list (`--<key>=None`, `--<key>='[...]'`), and a --gres
    naming `gpu` (a second GPU request beside the launcher's --gpus-per-node)."""
    if value is False:
        raise fail(p, line, f"{where}.{key}: false would be written as `--{key}=False`: leave the option out "
                            "(`true` writes the bare flag)")
    if value is None or isinstance(value, (list, dict)):  # `exclusive:` with no value would write --exclusive=None
        raise fail(p, line, f"{where}.{key}: expected a string or a number (`true` for a bare flag), got "
                            f"{value!r}" + (": write a list as one string, e.g. `END,FAIL`"
                                            if isinstance(value, list) else ""))
    if option == "gres" and any(g.strip().removeprefix("gres/").split(":")[0] == "gpu"
                                for g in str(value).split(",")):
        raise fail(p, line, f"{where}.gres: {value!r} asks for GPUs besides those study submit asks for "
                            "(--gpus-per-node, by `stages.<stage>.gpus`; also for a CPU job): set "
                            "`gpu_option: gres` (and `gpu_type`) and `stages.<stage>.gpus` instead")


def _load_cost(p: str, raw: Any, line: int) -> CostModel:
    if raw is None:
        return CostModel()
    if not isinstance(raw, YMap):
        raise fail(p, line, "cost: expected a mapping")
    check_keys(p, raw, COST_KEYS, what="cost key")
    base = CostModel()
    throughput = {k: dict(v) for k, v in base.throughput.items()}
    tp = raw.get("throughput") or YMap()
    if not isinstance(tp, YMap):
        raise fail(p, raw.line_of("throughput"), "cost.throughput: expected backbone -> {pretrain, finetune, extract}")
    names_at = {("throughput", str(b)): tp.line_of(b) for b in tp}
    measured_at: dict[str, dict[str, Any]] = {}
    backbone_factors: dict[str, dict[str, float]] = {}
    for backbone, rates in tp.items():
        if not isinstance(rates, YMap):
            raise fail(p, tp.line_of(backbone),
                       f"cost.throughput.{backbone}: expected a mapping of {', '.join(COST_KINDS)}")
        check_keys(p, rates, THROUGHPUT_KEYS, what="throughput key")
        for kind in COST_KINDS:
            v = rates.get(kind)
            if kind in rates and (not is_num(v) or v <= 0):
                raise fail(p, rates.line_of(kind),
                           f"cost.throughput.{backbone}.{kind}: expected images/s > 0, got {v!r}")
        at = {k: rates[k] for k in MEASURED_AT_KEYS if k in rates}
        for key in ("width", "image_size"):
            if key in at and (not is_int(at[key]) or at[key] < 1):
                raise fail(p, rates.line_of(key), f"cost.throughput.{backbone}.{key}: expected the {key} the rates "
                                                  f"were measured at, an integer >= 1, got {at[key]!r}")
        if "device" in at and not (isinstance(at["device"], str) and at["device"].strip()):
            raise fail(p, rates.line_of("device"), f"cost.throughput.{backbone}.device: expected the device the rates "
                                                   f"were measured on (`cpu`, or the GPU's name), got {at['device']!r}")
        if at:
            measured_at[str(backbone)] = at
        if "method_factor" in rates:
            backbone_factors[str(backbone)] = _factors(p, rates, f"cost.throughput.{backbone}.method_factor",
                                                       names_at)
        throughput[str(backbone)] = {**throughput.get(str(backbone), {}),
                                     **{k: float(v) for k, v in rates.items() if k in COST_KINDS}}
    factors = {**base.method_factor, **_factors(p, raw, "cost.method_factor", names_at)}
    nums: dict[str, float] = {}
    for key in ("job_overhead_min", "probe_min", "probe_rate", "default_epochs", "finetune_epochs",
                "default_test_images"):
        if key in raw:
            v = raw[key]
            rate = key == "probe_rate"  # it divides
            if not is_num(v) or v < 0 or (rate and v == 0):
                raise fail(p, raw.line_of(key), f"cost.{key}: expected a number {'>' if rate else '>='} 0, got {v!r}")
            nums[key] = v
    if "default_test_images" in nums:
        nums["default_test_images"] = int(nums["default_test_images"])
    return CostModel(throughput=throughput, method_factor=factors, measured_at=measured_at,  # type: ignore[arg-type]
                     backbone_factors=backbone_factors, names_at=names_at, **nums)


def _factors(p: str, raw: YMap, said: str, names_at: dict[tuple[str, str], int]) -> dict[str, float]:
    """`raw["method_factor"]` (`said`: its key in messages), method -> a number >= 0; each method's line recorded in
    `names_at` for Plan.check."""
    mf = raw.get("method_factor") or YMap()
    if not isinstance(mf, YMap):
        raise fail(p, raw.line_of("method_factor"), f"{said}: expected method -> number")
    out: dict[str, float] = {}
    for method, v in mf.items():
        if not is_num(v) or v < 0:
            raise fail(p, mf.line_of(method), f"{said}.{method}: expected a number >= 0, got {v!r}")
        out[str(method)] = float(v)
        names_at.setdefault(("method_factor", str(method)), mf.line_of(method))
    return out


def minutes_text(minutes: int) -> str:
    """A time limit in minutes as a profile or grid may write it: `48h`, `90m`."""
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def resolve_resources(profile: Profile, stage: str, layers: Iterable[tuple[str, Any]]) -> Resources:
    """Merge the profile's stage spec with `layers` ((file, YMap) pairs, later wins) into Resources.

    `node` as a value of gpus, cpus or mem means the profile's per-node amount. Each value is checked against
    the profile's node (a StudyError naming the file and line of the value that does not fit).
    """
    spec = _layered_spec(profile, stage, layers)
    out: dict[str, Any] = {}
    for key in RESOURCE_KEYS:
        if key in spec:
            written, file, line = spec[key]
            value = _resource_value(profile, stage, key, written, file, line)
            _check_fits(profile, stage, key, written, value, file, line)
            out[RESOURCE_FIELDS.get(key, key)] = value
    return Resources(**out)


def _layered_spec(profile: Profile, stage: str, layers: Iterable[tuple[str, Any]]) -> dict[str, tuple[Any, str, int]]:
    """Resource key -> (the value written, its file, its line): the profile's stage spec, each of `layers` over it
    (a grid's `resources:` mapping checked for unknown keys: a typo there must not fall back silently)."""
    base_file = profile.path or "built-in default profile"
    base_line = profile.stage_lines.get(stage, 0)
    spec = {key: (v, base_file, base_line) for key, v in profile.stages[stage].items()}
    for file, layer in layers:
        if isinstance(layer, YMap):
            _refuse_task_keys(file, layer, f"{stage} resources")
            check_keys(file, layer, RESOURCE_KEYS, what="resource")
        for key, v in layer.items():
            spec[key] = (v, file, layer.line_of(key) if isinstance(layer, YMap) else 0)
    return spec


def _refuse_task_keys(p: str, spec: YMap, said: str) -> None:
    """Refuse a key of TASK_KEYS in resources `spec` (`said`: where, in messages), saying how tasks come about."""
    for key in spec:
        if str(key).replace("-", "_") in TASK_KEYS:
            raise fail(p, spec.line_of(key), f"{said}: {key}: a job's tasks are not asked for apart: a pretraining "
                                             f"job runs one task per GPU on each node (`gpus`; one per node with "
                                             f"gpus: 0) of cpus / gpus CPUs each, on `nodes` nodes, an evaluation "
                                             f"one task; set `gpus` (and `nodes`) instead")


def _node_amounts(profile: Profile) -> dict[str, float | None]:
    """What one node of `profile` holds, by resource key (None: the profile does not say)."""
    return {"gpus": profile.gpus_per_node, "cpus": profile.cpus_per_node, "mem": profile.mem_per_node_gb}


def _resource_value(profile: Profile, stage: str, key: str, v: Any, file: str, line: int) -> Any:
    """The amount `v` of resource `key` asks for (`node`: the profile's per-node amount): gpus, cpus, nodes an
    integer, mem in GB, time in minutes; a StudyError at `file`:`line` for one that is none."""
    node = _node_amounts(profile)
    if v == "node" and key in node:
        if node[key] is None:
            raise fail(file, line, f"{key}: node needs the profile's {key}_per_node "
                                   f"({profile.path or 'built-in default'})")
        v = node[key]
    try:
        if key in ("gpus", "cpus", "nodes"):
            if not is_int(v) or v < (1 if key == "nodes" else 0):
                raise ValueError(f"expected an integer >= {1 if key == 'nodes' else 0}"
                                 + ("" if key == "nodes" else " or 'node'") + f", got {v!r}")
            return v
        if key == "mem":
            return parse_mem_gb(v)
        return parse_minutes(v)
    except ValueError as e:
        raise fail(file, line, f"{stage} resources: {key}: {e}") from None


def _check_fits(profile: Profile, stage: str, key: str, written: Any, value: Any, file: str, line: int) -> None:
    """Refuse an amount (`written` in the file, `value` resolved) more than a node of `profile` holds, a time over
    the stage's max_time, or more than one GPU or node for an evaluation."""
    limit = _node_amounts(profile).get(key)
    if limit is not None and value > limit:
        raise fail(file, line, f"{stage} resources: {key} {written} is more than a node of profile "
                               f"{profile.name!r} holds ({key}_per_node: {limit:g})")
    placement = profile.placement(stage)  # its max_time: the stage's own, else the profile's
    if key == "time" and placement.max_time_min is not None and value > placement.max_time_min:
        limit_text = minutes_text(placement.max_time_min)
        raise fail(file, line, f"{stage} resources: time {written} is more than profile {profile.name!r} "
                               f"allows ({placement.key('max_time')}: {limit_text}, the partition's MaxTime): "
                               f"sbatch would refuse the job, or it would pend for ever (PartitionTimeLimit); ask "
                               f"for at most that (a longer job is requeued and resumes from its checkpoint)")
    if stage == "evaluate" and key in ("gpus", "nodes") and value > 1:
        raise fail(file, line, f"evaluate resources: {key} {written}: an evaluation runs as one process on "
                               f"one device (one GPU, or the CPU), so more would sit idle (and nodes > 1 would "
                               f"run it once per node); ask for gpus: 1 (or 0) and nodes: 1")
