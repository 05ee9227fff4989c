"""The checks of what the grid asks, before any manifest is read: methods, backbones and corruptions known
(`check_names`), every distinct pretrain / evaluate section valid (`check_sections`), no evaluation `params` key
its protocol never reads (`check_params`), no method's own settings where no job runs it, and each pretraining
batch splitting over its job's processes (`check_devices`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from study.configfields import is_int
from study.errors import StudyError
from study.grids.jobs import Job, corruption_slug
from study.grids.yamlio import at
from study.hashing import canonical_json
from study.grids.checks.where import (deepest, describe, file_key_at, key_line, message_key, named_job,
                                     section_line, setting_at, value_at)

if TYPE_CHECKING:
    from study.grids.plan import Plan


def check_names(plan: Plan) -> list[str]:
    """Methods known to study.train's registry, also those the profile's cost model names (and its backbones);
    corruptions to study.corruptions' (with the closest name)."""
    problems: list[str] = []
    grid = plan.grid
    methods = dict.fromkeys(j.axes["method"] for j in plan.by_stage("pretrain"))
    from study.train.methods import METHODS

    for m in methods:
        if m not in METHODS:
            problems.append(METHODS.unknown_message(m, value_at(grid, "method", m)))
    from study.train.backbones import BACKBONES

    for (section, name), line in plan.profile.cost.names_at.items():  # a typo there leaves the estimate as it was
        registry = METHODS if section == "method_factor" else BACKBONES
        if name not in registry:
            problems.append(registry.unknown_message(name, f"{plan.profile.path}:{line}: cost.{section}"))
    for spec in dict.fromkeys(j.axes["corruption"] for j in plan.by_stage("pretrain")):
        if spec and spec != "none":
            try:
                corruption_slug(spec)
            except (StudyError, ValueError) as e:
                problems.append(f"{value_at(grid, 'corruption', spec)}: {e}")
    return problems


def check_sections(plan: Plan) -> list[str]:
    """Each distinct pretrain / evaluate section through PretrainConfig / EvalConfig.from_dict (cached); an error
    that several jobs share (a typo in `defaults`) is listed once, with the first job and how many others. Then
    `defaults.evaluate` alone when no job uses it, and the entries' `params` (`check_params`)."""
    errors: dict[tuple[str, str], list[Job]] = {}  # (where, message) -> the jobs it stops
    from study.evaluate import EvalConfig
    from study.train import PretrainConfig

    validators: dict[str, Any] = {"pretrain": PretrainConfig.from_dict, "evaluate": EvalConfig.from_dict}
    verdicts: dict[str, str | None] = {}  # section -> its error, validated once
    for job in plan.jobs:
        validate = validators.get(job.stage)
        if validate is None:
            continue
        section = job.config[job.stage]
        key = job.stage + canonical_json(section)
        if key not in verdicts:
            try:
                validate(section, where=job.stage)
                verdicts[key] = None
            except StudyError as e:
                verdicts[key] = str(e)
        if verdicts[key] is not None:
            line = section_line(plan.grid, job, verdicts[key])
            errors.setdefault((at(plan.path, line), verdicts[key]), []).append(job)
    problems = [f"{where}: {describe(named_job(jobs, msg))}"
                + (f" and {len(jobs) - 1} other job(s)" if len(jobs) > 1 else "") + f": {msg}"
                for (where, msg), jobs in errors.items()]
    grid = plan.grid
    if grid.defaults_evaluate and not any(j.stage == "evaluate" for j in plan.grid_jobs):  # else they checked it
        section = {**grid.defaults_evaluate, "train_manifest": "-", "test_manifest": "-"}  # no entry names them
        try:
            EvalConfig.from_dict(section, where="defaults.evaluate")
        except StudyError as e:
            line = deepest(message_key(str(e)), grid.defaults_lines.get("evaluate", {})) or grid.lines.get("defaults")
            problems.append(f"{at(plan.path, line)}: {e} (no evaluation entry uses "
                            f"defaults.evaluate yet)")
    return problems + check_params(plan) + unrun_method_sections(plan)


def unrun_method_sections(plan: Plan) -> list[str]:
    """`defaults.pretrain.<method>` (a method's own settings) where no pretraining job of the grid runs that method:
    they enter only that method's job ids and runs, so they would change no job and no result without a word (BYOL's
    target EMA written as `moco: {momentum: ...}` in a grid without MoCo). The whole grid's jobs: a `--where` slice
    that leaves the method out is not refused."""
    from study.train.methods import method_settings

    methods = dict.fromkeys(j.axes["method"] for j in plan.grid_jobs if j.stage == "pretrain")
    return [f"{file_key_at(plan, name)}: no job of the grid runs method {name} (its methods: "
            f"{', '.join(methods) or 'none'}): its settings would change no job and no result; remove it, or add "
            f"{name} to the method axis"
            for name in method_settings() if name in plan.grid.defaults_pretrain and name not in methods]


def check_params(plan: Plan) -> list[str]:
    """An evaluate entry's own `params` keys that its protocol never reads (`Protocol.unused`; and `knn` on a
    protocol that fits probes without `also_knn`, as EvalConfig.recorded_dict), its `linear` keys that
    the probe's optimizer never reads (PROBE_KEYS_UNREAD, as LinearConfig.recorded_dict), and its `finetune` keys
    that a fine-tuning or scratch run never reads (study.evaluate.finetune.unread): such a key would change the
    jobs' ids and no number. Keys of `defaults.evaluate` are not checked: they serve entries of every protocol."""
    from study.evaluate.config import LinearConfig
    from study.evaluate.protocols import protocol
    from study.evaluate.finetune import unread as finetune_unread
    from study.results.record import PROBE_KEYS_UNREAD

    problems = []

    def refuse(entry, key: str, why: str) -> None:
        problems.append(f"{plan.path}:{deepest(key, entry.param_lines) or entry.line}: "
                        f"stages.evaluate[{entry.index}].params.{key}: {why}; remove it (it would change the job ids "
                        f"and no result)")

    default_linear = plan.grid.defaults_evaluate.get("linear")
    default_optimizer = (default_linear if isinstance(default_linear, dict) else {}).get("optimizer",
                                                                                          LinearConfig.optimizer)
    for entry in plan.grid.evaluate:
        also_knn = entry.params.get("also_knn", plan.grid.defaults_evaluate.get("also_knn"))
        for key in entry.params:
            if key in protocol(entry.protocol).unused:
                refuse(entry, key, f"protocol {entry.protocol} never reads it")
            elif key == "knn" and protocol(entry.protocol).fits_probes and also_knn is not True:
                refuse(entry, key, f"protocol {entry.protocol} reads it only with also_knn: true")
        finetune = entry.params.get("finetune")
        if isinstance(finetune, dict) and protocol(entry.protocol).trains:
            sections = [j.config["evaluate"] for j in plan.grid_jobs if j.entry == entry.index]
            for key in finetune:
                whys = [finetune_unread(entry.protocol, key, s) for s in sections]
                if whys and all(whys):  # one job that reads it keeps it
                    refuse(entry, f"finetune.{key}", whys[0])
        linear = entry.params.get("linear")
        if isinstance(linear, dict) and "linear" not in protocol(entry.protocol).unused:
            optimizer = linear.get("optimizer", default_optimizer)
            for key in linear:
                if key in PROBE_KEYS_UNREAD.get(optimizer, ()):
                    refuse(entry, f"linear.{key}", f"probe optimizer {optimizer} never reads it")
    return problems


def check_feature_layers(plan: Plan) -> list[str]:
    """Each frozen-feature evaluation's `feature_layer` a stage of its encoders' backbone (built on torch's meta
    device: no weights, no memory): a `layerN` that a registered backbone lacks would fail at extraction, after its
    pretraining ran. The stage is looked up as the extraction does (an attribute of the module, not only a direct
    child); a backbone that does not build on the meta device is not checked (its jobs say what fails). One problem
    per (layer, backbone), at the first job that asks it."""
    import torch
    from torch import nn

    from study.evaluate.protocols import protocol
    from study.train import PretrainConfig
    from study.train.backbones import BACKBONES, build_backbone

    pretrain = plan.encoders
    built: dict[tuple[str, Any], nn.Module | None] = {}  # (backbone, width) -> its module; None: it did not build
    problems: dict[tuple[str, str], str] = {}
    for job in plan.jobs:
        layer = job.config.get("evaluate", {}).get("feature_layer", "pooled")
        if job.stage != "evaluate" or layer == "pooled" or "feature_layer" in protocol(job.axes["protocol"]).unused:
            continue
        for enc in filter(pretrain.__contains__, job.config.get("encoders") or []):
            section = pretrain[enc].config["pretrain"]
            backbone = pretrain[enc].axes.get("backbone") or section.get("backbone") or PretrainConfig.backbone
            width = section.get("width", PretrainConfig.width)
            if backbone not in BACKBONES or (layer, backbone) in problems:
                continue  # an unknown name: check_names says so
            if (backbone, width) not in built:
                try:
                    with torch.device("meta"):
                        built[backbone, width] = build_backbone(backbone, width)
                except Exception:  # a module that builds on a device only, no feature_dim: its jobs say so
                    built[backbone, width] = None
            model = built[backbone, width]
            if model is not None and getattr(model, layer, None) is None:  # as the extraction looks it up
                problems[layer, backbone] = (
                    f"{setting_at(plan, job, 'feature_layer')}: {describe(job)}: evaluate.feature_layer {layer!r}: "
                    f"backbone {backbone!r} has no stage of that name (a `layerN` is a module of the encoder named "
                    f"so; `pooled` reads any backbone)")
    return list(problems.values())


def _processes_text(gpus: int, nodes: int) -> str:
    """How a job's processes come about: one per GPU on each node, or one per node without GPUs."""
    return f"{gpus} GPU(s) x {nodes} node(s), one process per GPU" if gpus else f"{nodes} nodes, one process each"


def check_devices(plan: Plan) -> list[str]:
    """Each pretraining batch splits evenly over its job's processes (on Slurm one per GPU, on each node), as the
    training loop requires at its start."""
    from study.train import PretrainConfig

    problems: list[str] = []
    for job in plan.by_stage("pretrain"):
        r = job.resources
        world = r.tasks_per_node("pretrain") * r.nodes  # as study.launch.slurm.params renders it
        batch = job.config["pretrain"].get("batch_size", PretrainConfig.batch_size)
        if world > 1 and is_int(batch) and batch % world:
            line = key_line(plan.grid, job, "batch_size")
            msg = (f"{at(plan.path, line)}: pretraining batch_size {batch} does not split over the "
                   f"{world} processes of a job ({_processes_text(r.gpus, r.nodes)}): every "
                   f"pretraining job would stop at its start; make batch_size a multiple of {world}, or change the "
                   f"resources")
            if msg not in problems:
                problems.append(msg)
    return problems
