"""The throughput model behind `study plan`'s estimate (documented in grids/README.md, "Cost model").

Each job's hours = images it processes / (rate per GPU x GPUs) + a per-job overhead, where the rates (images/s
per GPU per backbone and kind of work) and overheads come from the profile's `cost` section:

- pretrain:      images = steps x batch_size, else epochs x size; x the method's factor; rate `pretrain`
- the training protocols (finetune, scratch; `trains=True`): images = per labeled size of the job, epochs x that
  size's whole batches, or with `finetune.steps` (and no evaluate `epochs`) steps x the batch (at most that size); + the
  test images (scored once per size); rate `finetune`. The epochs and batch a grid does not give are the protocol's
  recipe's (study.evaluate.recipes; epochs: the profile's `finetune_epochs` where it sets them)
- the frozen-feature protocols (linear, knn, granularity, concat; `trains=False` in study.evaluate.protocols):
  images = encoders x (largest labeled size + test images); rate `extract`, plus `probe_min` per labeled size;
  those that fit probes (linear, granularity, concat: `fits_probes`) also feature width / 2048 (both encoders'
  for concat) x classes x the sum of the labeled sizes / `probe_rate` (a probe's L-BFGS path costs rows x classes x
  width; the rate is measured at 2048-d), for a dataset that gives `classes`
Labeled size `all` (or none given) counts the dataset's `train_images`, else `default_test_images` (noted, as a
test set counted without `test_images` is).
A job's rate is x GPUs x nodes (a job without GPUs: x nodes, one task per node).
GPU-hours = hours x GPUs x nodes. Wall time = sum over stages of max(longest job, stage GPU-hours /
max_parallel_gpus, stage job-hours / max_parallel_jobs) (stages run one after the other; within one, jobs share
`max_parallel_gpus` GPUs and `max_parallel_jobs` slots); without either, every job of a stage runs at once.

Besides time, the frozen-feature evaluations' disk (`feature_cache_gb`) and each one's memory
(`evaluation_memory_gb`, noted where it passes the job's `mem`), from the same rows and feature widths
(grids/README.md, "Disk").
"""
from __future__ import annotations

import json
import re
from typing import Any

from study.configfields import is_num
from study.evaluate.protocols import names_where
from study.evaluate.recipes import recipe
from study.grids.jobs import Job, trains_nothing
from study.grids.profile import DEFAULT_THROUGHPUT, MAX_REQUEUES, REFERENCE_BACKBONE, CostModel, Profile
from study.grids.schema import ALL, DatasetSpec, Grid
from study.train.config import PretrainConfig


HOURS_DIGITS = 4  # the estimate's hours to 0.36 s: a CPU job of seconds is not 0 s (at 2 digits: 36 s)
PROBE_PROTOCOLS = names_where(fits_probes=True)  # those that fit linear probes (kNN fits none)
FROZEN_PROTOCOLS = names_where(trains=False)  # those that extract features into the cache
TRAINING_PROTOCOLS = names_where(trains=True)  # those that train on each labeled subset (run.TRAINERS)
# each backbone's pooled feature width at width 64 (x width / 64; a stage `layerN`: / 2^(4 - N)), the features'
# dtype's bytes: study.train.backbones' feature_dim and study.evaluate.features' float32
FEATURE_DIMS = {"resnet50": 2048, "resnet50_small": 2048, "resnet18": 512, "resnet18_small": 512, "resnet34": 512,
                "resnet34_small": 512}
FEATURE_DIMS_WIDTH = 64  # the backbone width FEATURE_DIMS are at
PROBE_RATE_DIM = 2048  # the feature width a profile's probe_rate is measured at (a probe's cost grows with it)
FEATURE_BYTES = 4
# vectors the size of a probe's weights that study.evaluate.linear holds at once: L-BFGS's history (20 pairs), its
# gradients, direction and line-search copies (about 10), and train_probe's fit per weight decay (6 by default)
PROBE_VECTORS = 56
KNN_BLOCK_BYTES = 1 << 30  # study.evaluate.knn.BLOCK_BYTES: a block of similarities, two held as the next is made
KNN_BLOCK_ROWS = 2048  # study.evaluate.knn.rows_per_block's most test rows a block, where they fit in KNN_BLOCK_BYTES
PROBE_WORKING_GB = 1.0  # a row chunk's logits and features (study.evaluate.linear.CHUNK_LOGITS) and the interpreter


def job_hours(job: Job, grid: Grid, cost: CostModel, notes: set[str], pretrain: dict[str, Job]) -> float:
    """Estimated wall-clock hours of `job` (its GPUs all busy); `pretrain`: the plan's pretraining jobs by id, whose
    backbones tell a probe's feature width (an encoder not among them counts as resnet50's 2048)."""
    gpus = max(1, job.resources.gpus) * job.resources.nodes  # devices: a job without GPUs runs a task per node
    backbone = job.axes.get("backbone") or REFERENCE_BACKBONE
    if backbone not in cost.throughput and "|" not in backbone:  # (two encoders' "a|b": resnet50's, unsaid)
        notes.add(f"backbone {backbone!r} has no throughput in the profile: counted at {REFERENCE_BACKBONE}'s rates; "
                  f"set cost.throughput.{backbone} in the profile")
    elif backbone in DEFAULT_THROUGHPUT and cost.gives_rates() and not cost.gives_rates_of(backbone):
        notes.add(f"backbone {backbone!r}: the profile's cost.throughput gives it no rates: counted at the built-in "
                  f"defaults (ours, rough A100 rates at 224 px); set cost.throughput.{backbone} in the profile")
    _note_measured_at(job, backbone, cost, notes, pretrain)
    if job.stage == "pretrain":
        seconds = _pretrain_seconds(job, grid, cost, notes, backbone, gpus)
    elif job.axes["protocol"] in TRAINING_PROTOCOLS:
        seconds = _training_seconds(job, grid, cost, notes, backbone, gpus)
    else:
        seconds = _frozen_seconds(job, grid, cost, notes, backbone, gpus, pretrain)
    return seconds / 3600 + cost.job_overhead_min / 60


def _pretrain_seconds(job: Job, grid: Grid, cost: CostModel, notes: set[str], backbone: str, gpus: int) -> float:
    """A pretraining job's seconds on `gpus` GPUs: steps x batch, else epochs x size, images, x its method's factor."""
    axes, sec = job.axes, job.config["pretrain"]
    method = axes["method"]  # every job's (defaults.pretrain's where the axes give none)
    given = cost.factor(backbone, method)
    factor = given if given is not None else 0.0 if trains_nothing(method) else 1.0  # only its overhead
    if given is None and factor:
        notes.add(f"method {method!r} has no cost factor (the cost of its step against SimCLR's): counted as "
                  f"1.0; set cost.method_factor.{method} in the profile")
    # values of the wrong type are left to the config checks that follow (study.grids.checks.config.check_sections)
    if is_num(sec.get("steps")):
        batch = sec["batch_size"] if is_num(sec.get("batch_size")) else PretrainConfig.batch_size
        images = float(sec["steps"]) * float(batch)
    else:
        ds = grid.datasets[axes["dataset"]]
        size = axes.get("size") or ds.train_images or (sum(n for _, n in ds.pool) if ds.pool else None)
        if size is None:  # (a pooled set without one: the images it takes of each source)
            notes.add(f"pretraining on {axes['dataset']!r} without a size: give datasets.{axes['dataset']}."
                      f"train_images for its estimate (counted as 0 images)")
            size = 0
        epochs = sec.get("epochs") if is_num(sec.get("epochs")) else cost.default_epochs
        images = float(epochs) * size
    return images * factor / (_rate(cost, backbone, "pretrain", notes) * gpus)


def _training_seconds(job: Job, grid: Grid, cost: CostModel, notes: set[str], backbone: str, gpus: int) -> float:
    """A fine-tuning or scratch evaluation's seconds on `gpus` GPUs: one training run, and one test pass, per
    labeled size."""
    sec, protocol = job.config["evaluate"], job.axes["protocol"]
    sizes, test = _eval_rows(job, grid, cost, notes)
    ft = sec.get("finetune") if isinstance(sec.get("finetune"), dict) else {}  # else EvalConfig says why
    epochs = sec.get("epochs") if sec.get("epochs") is not None else ft.get("epochs")  # as finetune.py
    run = recipe(protocol)  # what its run takes where the grid gives nothing
    # the batch: at most the labeled images (finetune.pretrain_dict)
    batches = [min(float(ft["batch_size"] if is_num(ft.get("batch_size")) else run["batch_size"]), s)
               for s in sizes]
    if sec.get("epochs") is None and is_num(ft.get("steps")):  # a step budget, which replaces
        images = sum(float(ft["steps"]) * b for b in batches)  # finetune.epochs (PretrainConfig)
    else:
        if not is_num(epochs):
            epochs = cost.finetune_epochs if cost.finetune_epochs is not None else run["epochs"]
        # an epoch is whole batches (study.train.data.steps_per_epoch): 511 labels at 256 train 256 images
        images = float(epochs) * sum(s // b * b if b > 0 else 0.0 for s, b in zip(sizes, batches))
    return (images + test * len(sizes)) / (_rate(cost, backbone, "finetune", notes) * gpus)


def _frozen_seconds(job: Job, grid: Grid, cost: CostModel, notes: set[str], backbone: str, gpus: int,
                    pretrain: dict[str, Job]) -> float:
    """A frozen-feature evaluation's seconds on `gpus` GPUs: its encoders' feature extraction, `probe_min` per
    labeled size, and where it fits probes on a dataset that gives `classes`, their rows x classes x width."""
    sec, protocol = job.config["evaluate"], job.axes["protocol"]
    ds = _eval_dataset(job, grid)
    sizes, test = _eval_rows(job, grid, cost, notes)
    encoders = max(1, len(job.config.get("encoders") or []))
    images = encoders * (max(sizes) + test)
    seconds = images / (_rate(cost, backbone, "extract", notes) * gpus) + 60 * cost.probe_min * len(sizes)
    if protocol in PROBE_PROTOCOLS and ds and ds.classes:  # probe_rate is at 2048-d (concat: both widths)
        width = _job_feature_dim(job, pretrain, notes)
        seconds += width / PROBE_RATE_DIM * ds.classes * sum(sizes) / (cost.probe_rate * gpus)
        if protocol == "granularity" and sec.get("per_level"):
            notes.add(f"granularity per_level on {ds.key!r}: its probes counted at the finest level's "
                      f"{ds.classes:,} classes only; each coarser level's probe adds the cost of its own "
                      f"classes (iNat21's seven levels: ~1.6x the species probe)")
    elif protocol in PROBE_PROTOCOLS and ds:
        notes.add(f"linear probes on {ds.key!r} without datasets.{ds.key}.classes: counted at probe_min per "
                  f"labeled size only; give classes for their cost (labeled rows x classes / probe_rate)")
    return seconds


def _rate(cost: CostModel, backbone: str, kind: str, notes: set[str]) -> float:
    """`cost.rate(backbone, kind)`, noting a backbone the profile gives rates of other kinds only (rates.yaml from
    jobs of one stage): this kind is counted at resnet50's."""
    table = cost.throughput.get(backbone)
    if table and kind not in table and "|" not in backbone:
        notes.add(f"cost.throughput.{backbone} gives no {kind} rate: its {kind} work counted at "
                  f"{REFERENCE_BACKBONE}'s; set cost.throughput.{backbone}.{kind} in the profile (rates.yaml has it "
                  "once such a job has run)")
    return cost.rate(backbone, kind)


def _job_shape(job: Job, pretrain: dict[str, Job]) -> dict[str, Any]:
    """The width and image size `job` runs its backbone at (an evaluation: its first encoder's width; a scratch run:
    its own `width`), and its device: `cpu`, or `gpu` where it asks for GPUs."""
    if job.stage == "pretrain":
        width = job.config["pretrain"].get("width")
    else:
        encoders = job.config.get("encoders") or []
        enc = pretrain.get(encoders[0]) if encoders else None
        width = enc.config["pretrain"].get("width") if enc is not None else job.config["evaluate"].get("width")
    return {"width": width if is_num(width) else PretrainConfig.width, "image_size": job.image_size,
            "device": "gpu" if job.resources.gpus else "cpu"}


def _note_measured_at(job: Job, backbone: str, cost: CostModel, notes: set[str], pretrain: dict[str, Job]) -> None:
    """Note a job that runs its backbone otherwise than the profile says its rates were measured
    (`cost.throughput.<backbone>`'s width, image_size, device): the estimate counts the rates as they are, unscaled."""
    at = cost.measured_at.get(backbone)
    if not at:
        return
    shape = _job_shape(job, pretrain)
    differ = []
    for key in ("width", "image_size"):
        if key in at and is_num(shape[key]) and float(shape[key]) != float(at[key]):  # (else the checks say why)
            differ.append(f"{key.replace('_', ' ')} {shape[key]:g} (measured at {at[key]})")
    if "device" in at and (str(at["device"]).strip().lower() == "cpu") != (shape["device"] == "cpu"):
        differ.append(f"{'GPUs' if shape['device'] == 'gpu' else 'no GPU'} (measured on {at['device']})")
    if differ:
        line = cost.names_at.get(("throughput", backbone))
        notes.add(f"{job.stage} jobs of {backbone} with {', '.join(differ)}: counted at cost.throughput.{backbone}'s "
                  f"rates{f' (profile line {line})' if line else ''} unscaled, which hold only where they were "
                  f"measured: measure them at the jobs' own settings (`study report` writes rates.yaml)")


def _squeezed(name: str) -> str:
    """`name` in lower case, letters and digits only: `NVIDIA A100-SXM4-80GB` -> `nvidiaa100sxm480gb`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _note_gpu_type(jobs: list[Job], profile: Profile, notes: set[str]) -> None:
    """Note the GPU jobs of a stage whose `gpu_type` (a100, h100) the GPU their backbone's rates were measured on
    (`cost.throughput.<backbone>.device`, a name as torch gives it: `NVIDIA H100 80GB HBM3`) does not name: the
    rates are counted as they are, and another kind of GPU runs at another rate."""
    for stage, backbone in sorted({(j.stage, j.axes.get("backbone") or REFERENCE_BACKBONE)
                                   for j in jobs if j.resources.gpus}):
        device = str(profile.cost.measured_at.get(backbone, {}).get("device", "")).strip()
        gpu_type = profile.placement(stage).gpu_type
        if gpu_type and device and device.lower() != "cpu" and _squeezed(gpu_type) not in _squeezed(device):
            notes.add(f"{stage} jobs of {backbone} ask for {gpu_type} GPUs (the profile's gpu_type): counted at "
                      f"cost.throughput.{backbone}'s rates, measured on {device}, unscaled: measure them on "
                      f"{gpu_type} (`study report` writes rates.yaml)")


def _eval_dataset(job: Job, grid: Grid) -> DatasetSpec | None:
    """The grid's dataset an evaluation job scores on (None: a name the grid does not define, or no evaluation)."""
    return grid.datasets.get(job.axes.get("eval_dataset") or "")


def _eval_rows(job: Job, grid: Grid, cost: CostModel, notes: set[str]) -> tuple[list[float], float]:
    """(labeled sizes, test images) of an evaluation job as the estimate counts them (the module docstring); a
    count the dataset does not give is noted."""
    ds = _eval_dataset(job, grid)
    name = ds.key if ds else job.axes.get("eval_dataset")
    test = ds.test_images if ds and ds.test_images else None
    if test is None:
        test = cost.default_test_images
        notes.add(f"evaluations on {name!r} without datasets.{name}.test_images: their test sets counted as "
                  f"default_test_images ({test:,}); give test_images for their estimate")
    given = job.config["evaluate"].get("labeled_sizes")
    sizes = [s for s in (given if isinstance(given, list) else [ALL]) if is_num(s) or s == ALL] or [ALL]
    if ALL in sizes:  # the train split (else EvalConfig says why)
        whole = ds.train_images if ds and ds.train_images else None
        if whole is None:
            whole = cost.default_test_images
            notes.add(f"evaluations on {name!r} at labeled size `all` without datasets.{name}.train_images: counted "
                      f"as default_test_images ({whole:,}) images; give train_images for their estimate")
        sizes = [whole if s == ALL else s for s in sizes]
    return sizes, test


def feature_cache_gb(jobs: list[Job], grid: Grid, cost: CostModel, notes: set[str],
                     encoders: dict[str, Job] | None = None) -> float:
    """The disk the frozen-feature evaluations' cache fills: rows x feature width x FEATURE_BYTES per file it writes,
    each counted once: per (encoder, manifest, feature layer, eval transform) the test manifest's `all` and each
    evaluation's largest labeled size (the cache serves a smaller size from a larger file already there, but a job
    that runs before the larger one writes its own: each is counted, whatever order the jobs run in). `encoders`:
    as `estimate`'s."""
    pretrain = encoders if encoders is not None else {j.id: j for j in jobs if j.stage == "pretrain"}
    rows: dict[tuple[str, str, str, str, str], float] = {}
    for job in jobs:
        if job.stage != "evaluate" or job.axes.get("protocol") not in FROZEN_PROTOCOLS:
            continue
        sec = job.config["evaluate"]
        sizes, test = _eval_rows(job, grid, cost, notes)
        layer = _layer(sec)
        transform = json.dumps([sec.get("image_size"), sec.get("augment")], sort_keys=True, default=str)
        for enc in job.config.get("encoders") or []:
            for manifest, file, n in ((sec.get("train_manifest"), f"labeled{max(sizes):.0f}", max(sizes)),
                                      (sec.get("test_manifest"), "all", test)):
                rows[(enc, str(manifest), layer, transform, file)] = float(n)
    return sum(n * _feature_dim(enc, layer, pretrain, notes) * FEATURE_BYTES
               for (enc, _, layer, _, _), n in rows.items()) / 1e9


def _layer(sec: dict[str, Any]) -> str:
    """The feature layer an evaluate section extracts (EvalConfig's default, `pooled`, where it names none)."""
    return sec["feature_layer"] if isinstance(sec.get("feature_layer"), str) else "pooled"


def _feature_dim(enc: str, layer: str, pretrain: dict[str, Job], notes: set[str]) -> float:
    """The feature width of encoder `enc` (a pretraining job's id; another encoder counts as resnet50) at `layer`."""
    pj = pretrain.get(enc)
    pc = pj.config["pretrain"] if pj is not None else {}
    backbone = (pj.axes.get("backbone") if pj is not None else None) or pc.get("backbone") or REFERENCE_BACKBONE
    if backbone not in FEATURE_DIMS:
        notes.add(f"backbone {backbone!r}: feature cache and probes counted at {REFERENCE_BACKBONE}'s "
                  f"{FEATURE_DIMS[REFERENCE_BACKBONE]} features per image (add it to study.grids.cost.FEATURE_DIMS)")
    width = pc.get("width") if is_num(pc.get("width")) else PretrainConfig.width
    dim = FEATURE_DIMS.get(backbone, FEATURE_DIMS[REFERENCE_BACKBONE]) * width / FEATURE_DIMS_WIDTH
    if layer.startswith("layer") and layer[5:].isdigit():
        dim /= 2 ** (4 - int(layer[5:]))
    return dim


def _job_feature_dim(job: Job, pretrain: dict[str, Job], notes: set[str]) -> float:
    """The width of the features a frozen-feature evaluation probes: its encoders' `_feature_dim`s summed (concat:
    both), at its feature layer; resnet50's where it names no encoder."""
    layer = _layer(job.config["evaluate"])
    return sum(_feature_dim(enc, layer, pretrain, notes) for enc in job.config.get("encoders") or [""])


def evaluation_memory_gb(job: Job, grid: Grid, cost: CostModel, pretrain: dict[str, Job],
                         notes: set[str]) -> float:
    """About the most memory a frozen-feature evaluation holds (float32, as on the CPU; 0 for other jobs): every
    encoder's features of its largest labeled size and the test rows, and the larger of its two phases, each holding
    two encoders' columns side by side once more: kNN's two similarity blocks (KNN_BLOCK_BYTES at most), or, of a
    protocol that fits probes, the probe's PROBE_VECTORS x classes x (width + 1) where the dataset gives `classes`.
    PROBE_WORKING_GB besides."""
    protocol = job.axes.get("protocol")
    if job.stage != "evaluate" or protocol not in FROZEN_PROTOCOLS:
        return 0.0
    sec = job.config["evaluate"]
    sizes, test = _eval_rows(job, grid, cost, notes)
    encoders = job.config.get("encoders") or []
    dim = _job_feature_dim(job, pretrain, notes)
    rows = max(sizes) + test
    side_by_side = rows * dim if len(encoders) > 1 else 0.0  # study.evaluate.run._side_by_side
    phases = [0.0]
    if protocol == "knn" or sec.get("also_knn") is True:  # study.evaluate.run._frozen, knn.score_blocks
        phases.append(2 * min(KNN_BLOCK_BYTES, KNN_BLOCK_ROWS * max(sizes) * FEATURE_BYTES) / FEATURE_BYTES)
    if protocol in PROBE_PROTOCOLS:
        ds = _eval_dataset(job, grid)
        phases.append(PROBE_VECTORS * ds.classes * (dim + 1) if ds and ds.classes else 0.0)
    return (rows * dim + side_by_side + max(phases)) * FEATURE_BYTES / 1e9 + PROBE_WORKING_GB


def _mem_source(job: Job, grid: Grid, profile: Profile) -> str:
    """Where an evaluation job's `mem` was set: its grid entry's `resources` (file:line), else the profile's stage."""
    res = grid.evaluate[job.entry].resources if job.entry is not None else None
    if res is not None and "mem" in res:
        return f"at {grid.path}:{res.line_of('mem')} (its stages.evaluate entry's `resources`)"
    where = f"{profile.path}:{profile.stage_lines['evaluate']}" if profile.path and "evaluate" in profile.stage_lines \
        else profile.path or "the built-in default profile"
    return f"in the profile's stages.evaluate ({where}), or in the grid's evaluate entry's `resources`"


def _note_short_memory(jobs: list[Job], grid: Grid, profile: Profile, pretrain: dict[str, Job],
                       notes: set[str]) -> None:
    """Note the evaluations that would hold more than their `mem` (`evaluation_memory_gb`), naming the one that
    would hold the most, and the remedy."""
    short = [(evaluation_memory_gb(job, grid, profile.cost, pretrain, notes), job) for job in jobs]
    short = sorted(((gb, job) for gb, job in short if gb > job.resources.mem_gb), key=lambda t: -t[0])
    if short:
        gb, job = short[0]
        node = profile.mem_per_node_gb
        remedy = (f"raise `mem` {_mem_source(job, grid, profile)}" if node is None or gb <= node else
                  f"more than a node's {node:g} GB (the profile's mem_per_node): give it fewer labeled images, an "
                  f"inner feature_layer (narrower features) or a profile for nodes with more memory")
        notes.add(f"{len(short)} evaluation job(s) would hold more than their `mem` (the most: job {job.id}, about "
                  f"{_above(gb, job.resources.mem_gb)} GB of features and probe state, {PROBE_WORKING_GB:g} GB of it "
                  f"the process's own, against {job.resources.mem_gb:g} GB): {remedy}")


def _above(gb: float, limit: float) -> str:
    """`gb` (above `limit`) with as few decimals as show it above: `3.4`, `1.0002` (a tiny evaluation beside the
    PROBE_WORKING_GB of a 1 GB job read "about 1.0 GB ... against 1 GB", as if it fitted)."""
    for digits in range(1, 5):
        said = f"{gb:,.{digits}f}"
        if float(said.replace(",", "")) > limit:
            return said
    return said


def estimate(jobs: list[Job], grid: Grid, profile: Profile, encoders: dict[str, Job] | None = None) -> dict[str, Any]:
    """GPU-hours and wall time of `jobs` (see the module docstring), per stage and in total; `encoders`: the
    pretraining jobs by id whose backbones tell a probe's feature width (default: those among `jobs`)."""
    cost = profile.cost
    notes: set[str] = set()
    stages: dict[str, dict[str, Any]] = {}
    over_limit = beyond_requeues = uncapped = 0
    pretrain = encoders if encoders is not None else {j.id: j for j in jobs if j.stage == "pretrain"}
    _note_short_memory(jobs, grid, profile, pretrain, notes)
    _note_gpu_type(jobs, profile, notes)
    for job in jobs:
        h = job_hours(job, grid, cost, notes, pretrain)
        st = stages.setdefault(job.stage, {"jobs": 0, "gpu_hours": 0.0, "job_hours": 0.0, "longest_job_hours": 0.0})
        st["jobs"] += 1
        st["gpu_hours"] += h * job.resources.gpus * job.resources.nodes
        st["job_hours"] += h
        st["longest_job_hours"] = max(st["longest_job_hours"], h)
        if h * 60 > job.resources.time_min:
            over_limit += 1
            limit = profile.placement(job.stage).max_time_min  # the stage's own, else the profile's
            uncapped += limit is None or job.resources.time_min < limit
        if h * 60 > job.resources.time_min * (MAX_REQUEUES + 1):
            beyond_requeues += 1
    parallel, slots = profile.max_parallel_gpus, profile.max_parallel_jobs
    wall = 0.0
    for st in stages.values():
        share = st["gpu_hours"] / parallel if parallel else 0.0
        slot_share = st["job_hours"] / slots if slots else 0.0
        st["wall_hours"] = max(st["longest_job_hours"], share, slot_share)
        wall += st["wall_hours"]
        for k in ("gpu_hours", "job_hours", "longest_job_hours", "wall_hours"):
            st[k] = round(st[k], HOURS_DIGITS)
    capped = over_limit and not uncapped  # every such job asks the partition's longest time already
    if over_limit:
        notes.add(f"{over_limit} job(s) need longer than their time limit: they requeue and resume from "
                  f"checkpoints " + ("(their `time` is the profile's max_time: each requeue waits in the queue again)"
                                     if capped else "(raise `time` to avoid the requeues)"))
    if beyond_requeues:
        notes.add(f"{beyond_requeues} job(s) need more than {MAX_REQUEUES + 1} time limits: the launcher stops "
                  f"requeuing after {MAX_REQUEUES} timeouts and they would fail unfinished ("
                  + ("fewer epochs or more GPUs: `time` is at the profile's max_time)" if capped else "raise `time`)"))
    return {
        "profile": profile.name,
        "gpu_hours": round(sum(st["gpu_hours"] for st in stages.values()), HOURS_DIGITS),
        "wall_hours": round(wall, HOURS_DIGITS),
        "max_parallel_gpus": parallel,
        "max_parallel_jobs": slots,
        "job_hours": round(sum(st["job_hours"] for st in stages.values()), HOURS_DIGITS),
        "per_stage": stages,
        "feature_cache_gb": round(feature_cache_gb(jobs, grid, cost, notes, pretrain), 1),
        "notes": folded(notes),
    }


def folded(notes: set[str]) -> list[str]:
    """`notes` sorted, those alike but for the dataset they name (as `'<key>'` and `datasets.<key>.`) folded into one
    naming each (a grid of four datasets without counts says each thing once, not four times)."""
    out: list[str] = []
    alike: dict[str, list[tuple[str, str]]] = {}  # a note with its dataset key as "{keys}": (key, note) of each
    for note in notes:
        named = re.search(r"'([^']+)'", note)
        key = named.group(1) if named and f"datasets.{named.group(1)}." in note else None
        if key is None:
            out.append(note)
            continue
        shape = note.replace(f"'{key}'", "{keys}", 1).replace(f"datasets.{key}.", "datasets.<key>.")
        alike.setdefault(shape, []).append((key, note))
    for shape, found in alike.items():
        keys = ", ".join(f"'{k}'" for k, _ in sorted(found))
        out.append(found[0][1] if len(found) == 1 else shape.replace("{keys}", keys))
    return sorted(out)
