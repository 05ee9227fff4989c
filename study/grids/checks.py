"""The pre-run checks of a plan: `check_plan(plan, manifests=True, images_here=False)`, which `Plan.check` runs.

It is the look-before-you-leap step `study plan` and `study submit` run: methods and corruptions known, every distinct
pretrain / evaluate section valid (PretrainConfig / EvalConfig.from_dict, and `defaults.evaluate` even with no
evaluation entry), no entry's `params` key that its protocol never reads, no method's own settings
(`defaults.pretrain.moco`) where no job runs that method, every manifest present (or the exact
`study manifest ...` command that makes it) and what the grid says it is (from its metadata; for image-folder
manifests also their paths: no test image among the labeled ones), and each manifest's recorded root a folder on this
machine (a warning, or a problem where the jobs run here), and each encoder file here (`init_encoder`,
`pretrained.encoder_file`) of the backbone and width of the jobs that read it. Each check gives its lines, each
naming the grid's file and line (or the profile's); `check_plan` raises them as one StudyError, or returns the warnings.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.configfields import is_int
from study.counts import format_count
from study.errors import StudyError, did_you_mean
from study.grids.jobs import Job, corruption_slug, value_line
from study.grids.schema import DatasetSpec, Grid
from study.grids.yamlio import at
from study.hashing import canonical_json

if TYPE_CHECKING:
    from study.grids.plan import Plan


def check_plan(plan: Plan, manifests: bool = True, images_here: bool = False) -> list[str]:
    """Raise one StudyError listing every problem found before anything runs (see the module docstring); return
    the warnings: pretraining jobs no evaluation uses, evaluations scored at another image size than their encoders
    were pretrained at, pretraining schedules a setting does not fit (`schedule_warnings`), and each manifest whose
    recorded root is not a folder on this machine (the dataset moved, or only the nodes that run the jobs mount it),
    a problem instead with `images_here` (the jobs run on this machine). With `manifests`, the estimate's notes gain
    each cost hint the manifests contradict."""
    problems = check_names(plan)
    if not problems:  # an unknown method would fail every section too: report it once
        problems = check_sections(plan)
    if not problems:
        problems = check_devices(plan)
    roots: list[str] = []
    meta = _metadata_once() if manifests else None
    if manifests:
        missing = missing_manifests(plan)
        problems += missing or check_manifest_contents(plan, meta)
        roots = ([] if missing else roots_not_here(plan, meta)) + init_encoder_not_here(plan)
        problems += encoder_file_mismatches(plan)
    if images_here:
        problems, roots = problems + roots, []
    if len(problems) > 1:
        raise StudyError("\n".join([f"{plan.path}: {len(problems)} problem(s) found before anything runs:",
                                    *problems]))
    if problems:  # one: it names its file as every error does (the grid's, unless it names the profile's)
        named = (f"{plan.path}:",) + ((f"{plan.profile.path}:",) if plan.profile.path else ())
        raise StudyError(problems[0] if problems[0].startswith(named) else f"{plan.path}: {problems[0]}")
    if manifests and plan.estimate:  # the manifests are there: the estimate says where its hints are not theirs
        notes = plan.estimate.setdefault("notes", [])
        notes += [n for n in cost_hint_notes(plan, meta) if n not in notes]
    schedule = schedule_warnings(plan, meta) if manifests else []
    return (unevaluated_pretraining_warnings(plan) + untrained_sizes_warnings(plan) + unequal_pool_warnings(plan)
            + image_size_warnings(plan) + schedule + roots)


def _line_of_value(grid: Grid, axis: str, value: Any, point: dict[str, Any] | None = None) -> str:
    line = value_line(grid, axis, value, point)
    return at(grid.path, line)


def check_names(plan: Plan) -> list[str]:
    """Methods known to study.train's registry, also those the profile's cost model names (and its backbones);
    corruptions to study.corruptions' (with the closest name)."""
    problems: list[str] = []
    grid = plan.grid
    methods = dict.fromkeys(j.axes["method"] for j in plan.jobs if j.stage == "pretrain")
    from study.train.methods import METHODS

    for m in methods:
        if m not in METHODS:
            problems.append(METHODS.unknown_message(m, _line_of_value(grid, "method", m)))
    from study.train.backbones import BACKBONES

    for (section, name), line in plan.profile.cost.names_at.items():  # a typo there leaves the estimate as it was
        registry = METHODS if section == "method_factor" else BACKBONES
        if name not in registry:
            problems.append(registry.unknown_message(name, f"{plan.profile.path}:{line}: cost.{section}"))
    for spec in dict.fromkeys(j.axes["corruption"] for j in plan.jobs if j.stage == "pretrain"):
        if spec and spec != "none":
            try:
                corruption_slug(spec)
            except (StudyError, ValueError) as e:
                problems.append(f"{_line_of_value(grid, 'corruption', spec)}: {e}")
    return problems


def _describe(job: Job) -> str:
    keys = ("method", "dataset", "size", "corruption", "seed", "protocol", "eval_dataset")
    parts = [f"{k}={format_count(job.axes[k]) if k == 'size' else job.axes[k]}" for k in keys
             if job.axes.get(k) not in (None, "none")]
    return f"job {job.id} ({job.stage}: {', '.join(parts)})"


# the key a config error names first, as a dotted path: `pretrain.<key>[.<key>...]: ...`, or
# `evaluate[.<key>...]: unknown key(s) '<key>'` (also under `defaults.`)
SECTION_KEY = re.compile(r"^(?:defaults\.)?(?:pretrain|evaluate)((?:\.\w+)*)(?:: unknown key\(s\) '(\w+)')?")


def _message_key(message: str) -> str | None:
    m = SECTION_KEY.match(message)
    path = ".".join(filter(None, (m.group(1)[1:], m.group(2)))) if m else ""
    return path or None


def _deepest(key: str | None, *written: dict[str, int]) -> int | None:
    """The line of dotted `key` in the first of `written` (`_key_lines` maps, the one whose value wins a merge
    first) that has it, else of the deepest of its parents written in any (a misspelt key's section, a value under a
    key written flow style): `finetune.optim.lr` written in defaults.evaluate beside a `finetune` of an entry's
    params that does not give it is the line of that `lr`; None where none is."""
    parts = (key or "").split(".")
    for path in (".".join(parts[:n]) for n in range(len(parts), 0, -1)):
        line = next((lines[path] for lines in written if path in lines), None)
        if line:
            return line
    return None


def _section_line(grid: Grid, job: Job, message: str) -> int | None:
    """Where the value behind a config error of `job` was written (`_key_line` of the key the message names)."""
    return _key_line(grid, job, _message_key(message))


def _key_line(grid: Grid, job: Job, key: str | None) -> int | None:
    """Where `job`'s setting `key` was written: a pretraining axis value (its axes or include line), else the key
    in the evaluation entry's params, in defaults, or the entry itself."""
    if job.stage == "pretrain":
        if key in ("method", "backbone", "size", "seed") and job.axes.get(key) is not None:
            return value_line(grid, key, job.axes[key], job.axes)
        return _deepest(key, grid.defaults_lines.get("pretrain", {})) or grid.lines.get("defaults")
    entry = grid.evaluate[job.entry] if job.entry is not None else None
    if entry is None:
        return _deepest(key, grid.defaults_lines.get("evaluate", {})) or grid.lines.get("defaults")
    return _deepest(key, entry.param_lines, grid.defaults_lines.get("evaluate", {})) or entry.line


def _at(plan: Plan, job: Job, key: str) -> str:
    """`<grid file>:<line>` of where `job`'s setting `key` was written (the file alone when no line is known)."""
    line = _key_line(plan.grid, job, key)
    return at(plan.path, line)


def _named_job(jobs: list[Job], message: str) -> Job:
    """The job an error shared by `jobs` names: the first, or the first of the method whose own settings
    (`pretrain.<method>`) the message is about (every pretraining job reads them, but only that method's use them)."""
    key = (_message_key(message) or "").split(".")[0]
    return next((j for j in jobs if j.stage == "pretrain" and j.axes.get("method") == key), jobs[0])


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
            line = _section_line(plan.grid, job, verdicts[key])
            errors.setdefault((at(plan.path, line), verdicts[key]), []).append(job)
    problems = [f"{where}: {_describe(_named_job(jobs, msg))}"
                + (f" and {len(jobs) - 1} other job(s)" if len(jobs) > 1 else "") + f": {msg}"
                for (where, msg), jobs in errors.items()]
    grid = plan.grid
    if grid.defaults_evaluate and not any(j.stage == "evaluate" for j in plan.grid_jobs):  # else they checked it
        section = {**grid.defaults_evaluate, "train_manifest": "-", "test_manifest": "-"}  # no entry names them
        try:
            EvalConfig.from_dict(section, where="defaults.evaluate")
        except StudyError as e:
            line = _deepest(_message_key(str(e)), grid.defaults_lines.get("evaluate", {})) or grid.lines.get("defaults")
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
    return [f"{_file_key_at(plan, name)}: no job of the grid runs method {name} (its methods: "
            f"{', '.join(methods) or 'none'}): its settings would change no job and no result; remove it, or add "
            f"{name} to the method axis"
            for name in method_settings() if name in plan.grid.defaults_pretrain and name not in methods]


def check_params(plan: Plan) -> list[str]:
    """An evaluate entry's own `params` keys that its protocol never reads (EvalConfig's UNUSED_BY_PROTOCOL; and
    `knn` on a frozen-feature protocol without `also_knn`, as EvalConfig.recorded_dict), its `linear` keys that
    the probe's optimizer never reads (PROBE_KEYS_UNREAD, as LinearConfig.recorded_dict), and its `finetune` keys
    that a fine-tuning or scratch run never reads (study.evaluate.finetune.unread): such a key would change the
    jobs' ids and no number. Keys of `defaults.evaluate` are not checked: they serve entries of every protocol."""
    from study.evaluate.config import UNUSED_BY_PROTOCOL, LinearConfig
    from study.evaluate.finetune import unread as finetune_unread
    from study.results.record import PROBE_KEYS_UNREAD

    problems = []

    def refuse(entry, key: str, why: str) -> None:
        problems.append(f"{plan.path}:{_deepest(key, entry.param_lines) or entry.line}: "
                        f"stages.evaluate[{entry.index}].params.{key}: {why}; remove it (it would change the job ids "
                        f"and no result)")

    default_linear = plan.grid.defaults_evaluate.get("linear")
    default_optimizer = (default_linear if isinstance(default_linear, dict) else {}).get("optimizer",
                                                                                          LinearConfig.optimizer)
    for entry in plan.grid.evaluate:
        also_knn = entry.params.get("also_knn", plan.grid.defaults_evaluate.get("also_knn"))
        for key in entry.params:
            if key in UNUSED_BY_PROTOCOL[entry.protocol]:
                refuse(entry, key, f"protocol {entry.protocol} never reads it")
            elif key == "knn" and entry.protocol in ("linear", "granularity", "concat") and also_knn is not True:
                refuse(entry, key, f"protocol {entry.protocol} reads it only with also_knn: true")
        finetune = entry.params.get("finetune")
        if isinstance(finetune, dict) and entry.protocol in ("finetune", "scratch"):
            sections = [j.config["evaluate"] for j in plan.grid_jobs if j.entry == entry.index]
            for key in finetune:
                whys = [finetune_unread(entry.protocol, key, s) for s in sections]
                if whys and all(whys):  # one job that reads it keeps it
                    refuse(entry, f"finetune.{key}", whys[0])
        linear = entry.params.get("linear")
        if isinstance(linear, dict) and "linear" not in UNUSED_BY_PROTOCOL[entry.protocol]:
            optimizer = linear.get("optimizer", default_optimizer)
            for key in linear:
                if key in PROBE_KEYS_UNREAD.get(optimizer, ()):
                    refuse(entry, f"linear.{key}", f"probe optimizer {optimizer} never reads it")
    return problems


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
            line = _key_line(plan.grid, job, "batch_size")
            msg = (f"{at(plan.path, line)}: pretraining batch_size {batch} does not split over the "
                   f"{world} processes of a job ({r.gpus} GPU(s) x {r.nodes} node(s), one process per GPU): every "
                   f"pretraining job would stop at its start; make batch_size a multiple of {world}, or change the "
                   f"resources")
            if msg not in problems:
                problems.append(msg)
    return problems


def _crop_size(section: dict, default: int) -> int:
    """The image size a pretrain or evaluate section works at: `augment.image_size`, else `image_size`, else its
    config's default (as PretrainConfig and EvalConfig resolve it)."""
    augment = section.get("augment") if isinstance(section.get("augment"), dict) else {}
    return augment.get("image_size", section.get("image_size", default))


def unevaluated_pretraining_warnings(plan: Plan) -> list[str]:
    """One line where some of the plan's pretraining jobs are a dependency of no evaluation of a grid that has
    evaluations (an entry's `where` that misses them: encoders trained that nothing scores or draws). A warning: a
    grid may pretrain for later use."""
    jobs = plan.grid_jobs
    if not any(j.stage == "evaluate" for j in jobs):
        return []
    used = {dep for j in jobs if j.stage == "evaluate" for dep in j.depends_on}
    unused = [j for j in plan.by_stage("pretrain") if j.id not in used]
    if not unused:
        return []
    return [f"{plan.path}: {len(unused)} pretraining job(s) that no evaluation of the grid uses (e.g. "
            f"{_describe(unused[0])}): nothing will score or draw their encoders; widen an evaluation entry's "
            "`where` to them, or drop them from the axes, unless that is meant"]


def untrained_sizes_warnings(plan: Plan) -> list[str]:
    """One line per method that trains nothing (`random`, `pretrained`) whose pretraining jobs differ only in their
    size: each size is one encoder again (it sees no pretraining image), scored again by every evaluation, and drawn
    as one more line of the same values, labelled with a size it was never trained at. A warning: it may be meant."""
    sizes: dict[tuple, list[Job]] = {}
    for job in plan.by_stage("pretrain"):
        if not _trains(job):
            key = tuple(sorted((k, str(v)) for k, v in job.axes.items() if k != "size"))
            sizes.setdefault(key, []).append(job)
    out, said = [], set()
    for jobs in sizes.values():
        method, values = jobs[0].axes["method"], list(dict.fromkeys(j.axes.get("size") for j in jobs))
        if len(values) < 2 or method in said:
            continue
        said.add(method)
        spelt = [format_count(v) if is_int(v) else "all" for v in values]  # null: every image
        where = _line_of_value(plan.grid, "method", method, jobs[0].axes)
        out.append(f"{where}: method {method} trains nothing, yet its pretraining jobs take {len(values)} sizes "
                   f"({', '.join(spelt)}) (e.g. {_describe(jobs[0])}): each size scores the same encoder again, "
                   f"drawn as one more line of the same values under a size it never trained at; keep one size for "
                   f"it (`exclude: [{{method: {method}, size: [{', '.join(spelt[1:])}]}}]`), unless that is meant")
    return out


def unequal_pool_warnings(plan: Plan) -> list[str]:
    """One line per pooled dataset the plan pretrains on whose sources give unequal shares: the report reads a
    pool of k sets as k equal shares (domain_pooling's per-domain share bar, finding in_domain_share_beats_pooled).
    A warning: such a pool may be meant."""
    used = {j.axes["dataset"] for j in plan.by_stage("pretrain")}
    return [f"{at(plan.path, ds.pool_line or ds.line)}: datasets.{ds.key}.pool: unequal shares "
            f"({', '.join(f'{src} {format_count(n)}' for src, n in ds.pool)}): the report reads a pool of "
            f"{len(ds.pool)} sets as {len(ds.pool)} equal shares (domain_pooling's per-domain share of size / "
            f"{len(ds.pool)}, finding in_domain_share_beats_pooled), so those read wrong for it"
            for key, ds in plan.grid.datasets.items()
            if key in used and ds.pooled and len({n for _, n in ds.pool}) > 1]


def image_size_warnings(plan: Plan) -> list[str]:
    """One line per (evaluation entry, sizes) whose jobs score encoders at another image size than their pretraining
    crops (an evaluation's default is 224 whatever the pretraining's: a small-image grid that leaves it upsamples
    every image, at many times the cost, and scores other features). A warning: it may be meant."""
    from study.evaluate import EvalConfig
    from study.train import PretrainConfig

    seen: dict[tuple[str, int, int], list[Job]] = {}
    for job in plan.by_stage("evaluate"):
        size = _crop_size(job.config["evaluate"], EvalConfig.image_size)
        for dep in job.depends_on:
            if not _trains(plan.job(dep)):  # random, pretrained: its image_size is no size it was trained at
                continue
            trained = _crop_size(plan.job(dep).config.get("pretrain", {}), PretrainConfig.image_size)
            if trained != size:
                seen.setdefault((_at(plan, job, "image_size"), size, trained), []).append(job)
    return [f"{where}: {len(jobs)} evaluation job(s) score at image_size {size} encoders pretrained at {trained} px "
            f"(e.g. {_describe(jobs[0])}): set the evaluation's image_size (defaults.evaluate, or the entry's params) "
            f"to {trained} unless that is meant" for (where, size, trained), jobs in seen.items()]


def _manifest_exists(name: str) -> bool:
    from study.manifests import manifest_exists

    return bool(manifest_exists(name))


def _count_text(n: int) -> str:
    """`n` and, where it reads otherwise, its short form: "50000 (50k)", "500"."""
    short = format_count(n)
    return str(n) if short == str(n) else f"{n} ({short})"


def _metadata_once():
    """study.manifests.store.load_meta, each manifest's metadata read once (for one check)."""
    from study.manifests.store import load_meta

    return functools.cache(load_meta)


def missing_manifests(plan: Plan) -> list[str]:
    """Each manifest the jobs read that does not exist, at the line of the `datasets:` entry that names it (a
    corrupted variant: its dataset's), with the command that makes it."""
    from study.manifests import list_manifests
    from study.manifests.store import half_manifest
    from study.paths import manifests_dir

    problems, known, lines = [], None, None  # both read at the first missing one: none missing, neither read
    for name, command in plan.manifests().items():
        if _manifest_exists(name):
            continue
        short = _pool_shares_beyond_sources(plan, name)
        if short:
            problems.append(short)  # its command would be refused: say so, at the share's line
        else:
            known = list_manifests() if known is None else known
            lines = _manifest_lines(plan) if lines is None else lines
            named_by = (" a `corruption` value of the grid names it" if command.startswith("study manifest corrupt ")
                        else " the grid's `datasets:` names it")
            half = half_manifest(name)  # one of its two files there: say which, not only "not found"
            hint = f": {half}" if half else did_you_mean(name, known, cutoff=0.8, why=named_by)
            where = f"{plan.path}:{lines[name]}: " if name in lines else ""
            problems.append(f"{where}manifest {name!r} not found in {manifests_dir().resolve()}/{hint}; make it "
                            f"with:\n    {command}\n    (or point STUDY_MANIFESTS at the folder that holds it)")
    last = max((i for i, p in enumerate(problems) if "make it with:" in p), default=None)
    if last is not None:  # said once, after the last command
        roots = "set each $<DATASET>_ROOT above to that dataset's folder (manifests/README.md, its layout); " \
            if any("_ROOT" in p for p in problems) else ""
        roots += "each $<DATASET>_TAXONOMY to its taxonomy CSV (README.md, \"Your own image folders\"); " \
            if any("_TAXONOMY" in p for p in problems) else ""
        problems[last] += (f"\n{roots}a manifest's recorded sizes are part of its content hash (building it again "
                           "with others makes the results on it stale), so build a train manifest once with every size "
                           "you mean to use (for the paper's datasets the commands list the paper's sizes too); `study "
                           "plan --no-check` shows the plan without the manifests, `study submit --dry-run --no-check` "
                           "its sbatch scripts")
    return problems


def check_manifest_contents(plan: Plan, meta) -> list[str]:
    """With every manifest present, what would otherwise fail only in a job, after its dependencies ran (`meta`:
    name -> metadata): a size or labeled size beyond a manifest's images, train and test manifests of other classes,
    levels, pools and corrupted variants other than the grid's, test images among the labeled ones."""
    tables = _TableReads()
    found: list[str | None] = [_pooled_from_elsewhere(plan, plan.grid.datasets[key], meta)
                               for key in dict.fromkeys(j.axes["dataset"] for j in plan.by_stage("pretrain"))]
    for job in plan.jobs:
        found += (_pretrain_problems(plan, job, meta) if job.stage == "pretrain" else
                  _evaluate_problems(plan, job, meta, tables))
    found += _test_images_among_labeled(plan, meta)
    return list(dict.fromkeys(msg for msg in found if msg))  # each once, in the order found


def _pretrain_problems(plan: Plan, job: Job, meta) -> list[str | None]:
    """A pretraining job's manifest: the grid's corrupted variant, holding `size` images, at least a batch of them,
    and a schedule that fits them."""
    from study.train import PretrainConfig

    sec = job.config["pretrain"]
    size, name = sec.get("size", job.axes.get("size")), sec.get("manifest")
    if not name:
        return []
    problems = [_corrupted_from_elsewhere(plan, job, name, meta)]
    where = _line_of_value(plan.grid, "size", job.axes.get("size"), job.axes)
    have = meta(name)["num_images"]
    if is_int(size) and size > have:
        return problems + [f"{where}: pretraining size {_count_text(size)}: manifest {name} has {have} images (a size "
                           f"of at most {format_count(have)}, or a manifest built from more images)"]
    batch = sec.get("batch_size", PretrainConfig.batch_size)
    images = size if is_int(size) else have
    trains = _trains(job)
    if trains and is_int(batch) and batch > images:
        if "batch_size" in plan.grid.defaults_pretrain:
            where = f"{plan.grid.path}:{_key_line(plan.grid, job, 'batch_size')}"  # where it was set
        problems.append(f"{where}: pretraining batch_size {batch} is larger than the {images} images of {name}"
                        + (f" at size {format_count(size)}" if is_int(size) else "")
                        + ": not one step would run; lower batch_size for these jobs or pretrain on more images")
    elif trains:
        error = schedule_error(sec, None, images)
        at = f" (pretraining size {format_count(size)})" if is_int(size) else ""  # the axis's line holds every size
        problems.append(f"{where}: pretrain.{error}{at}" if error else None)
    return problems


def _evaluate_problems(plan: Plan, job: Job, meta, tables: _TableReads) -> list[str]:
    """An evaluation job's manifests: its labeled sizes held, a fine-tuning schedule that fits them, granularity
    levels of the test manifest's taxonomy, train and test manifests of the same classes."""
    problems = []
    sec = job.config["evaluate"]
    train, test = sec.get("train_manifest"), sec.get("test_manifest")
    if train:
        n = meta(train)["num_images"]
        for ls in sec.get("labeled_sizes") or []:
            if is_int(ls) and ls > n:
                problems.append(f"{_at(plan, job, 'labeled_sizes')}: labeled size {_count_text(ls)} asked of "
                                f"manifest {train}, which has {n} images (at most {format_count(n)}, or `all` for "
                                f"every one)")
    if sec.get("protocol") in ("finetune", "scratch") and train:
        sizes = sec.get("labeled_sizes")
        for ls in sizes if isinstance(sizes, list) and sizes else [None]:  # None, "all": every labeled image
            error = schedule_error(sec, ls if is_int(ls) else None, min(ls, n) if is_int(ls) else n)
            if error:
                problems.append(f"{_at(plan, job, 'finetune')}: evaluate.finetune.{error}"
                                + (f" (labeled size {format_count(ls)})" if is_int(ls) else ""))
    if sec.get("protocol") == "granularity" and test:
        problems += _granularity_problems(plan, job, meta, tables)
    if train and test and meta(train)["class_names"] != meta(test)["class_names"]:
        a, b = meta(train)["class_names"], meta(test)["class_names"]
        only = sorted(set(a) ^ set(b))
        problems.append(
            f"{_at(plan, job, 'test_manifest')}: manifests {train} and {test} (the labeled and test sets of an "
            "evaluation) have "
            f"different classes ({len(a)} vs {len(b)}" + (f"; in one only: {', '.join(only[:5])}" if only else
                                                         "; in another order") + ")"
            + f": {_delete(test)} and rebuild it with --classes-from {train}"
            + ("" if set(b) <= set(a) else " --drop-other-classes (its images of classes the labeled set lacks "
                                           "are then left out, as no probe could name them)"))
    from study.manifests.build import reading_differences

    for flag, a, b in reading_differences(meta(train), meta(test)) if train and test else ():
        problems.append(f"{_at(plan, job, 'test_manifest')}: manifests {train} and {test} (the labeled and test "
                        f"sets of an evaluation) are read with {flag} {a} and {b}: {_delete(test)} and rebuild it "
                        f"with {flag} {a} --classes-from {train}")  # GLC20's: equal class names, other labels or pixels
    return problems


def _granularity_problems(plan: Plan, job: Job, meta, tables: _TableReads) -> list[str]:
    """A granularity job's levels: given or in the test manifest's taxonomy, coarse -> fine, columns of both
    manifests."""
    problems = []
    sec = job.config["evaluate"]
    train, test = sec.get("train_manifest"), sec.get("test_manifest")
    levels = sec.get("levels") or meta(test).get("levels") or []
    if not levels:
        # a train manifest that has its taxonomy already is left as it is (rebuilding it would change nothing)
        names = [test] + ([train] if train and train != test and not meta(train).get("levels") else [])
        alone = len(names) == 1 and train and train != test
        problems.append(f"{_at(plan, job, 'levels')}: granularity on manifest {test}, which has no taxonomy levels: "
                        f"build {' and '.join(names)} again with " + (f"{train}'s" if alone else "the same")
                        + " --taxonomy FILE (a CSV of the levels coarse -> fine, then the class name; README.md, "
                        "\"Your own image folders\")" + (f" and --classes-from {train}" if alone else "")
                        + ", after you " + ", and ".join(_delete(n) for n in names))
    taxonomy = [*(meta(test).get("levels") or []), "class_name"]  # coarse -> fine; the labels finest
    ranked = [lv for lv in levels if lv in taxonomy]
    if ranked != sorted(ranked, key=taxonomy.index):
        problems.append(f"{_at(plan, job, 'levels')}: granularity levels run coarse -> fine, as the taxonomy of "
                        f"manifest {test} does ({', '.join(dict.fromkeys(taxonomy))}); list them as "
                        f"[{', '.join(sorted(ranked, key=taxonomy.index))}] (the report draws them in the order given)")
    for name in (train, test):
        have_columns = tables.columns(name) if name else None  # None: unreadable, the job will say so
        missing = [lv for lv in levels if have_columns is not None and lv not in have_columns]
        if missing:
            have = list(dict.fromkeys([*(meta(name).get("levels") or []), "class_name"]))
            problems.append(f"{_at(plan, job, 'levels')}: granularity levels {missing} are not columns of manifest "
                            f"{name} (its taxonomy levels: {', '.join(have)})")
    if train and test and train != test and not any("are not columns" in p for p in problems):
        # the job tells a level's value by its path (the coarser levels too), from both manifests' rows: the test
        # manifest's taxonomy down to the level (granularity.level_path; a level not of it, class_name, alone)
        own = list(meta(test).get("levels") or [])
        wanted = [lv for lv in levels if lv in own]
        path = [lv for lv in own[:max(map(own.index, wanted)) + 1] if lv != "class_name"] if wanted else []
        clash = tables.taxonomy_clash(train, test, tuple(path)) if path else None
        if clash:
            name, level, a, b = clash
            problems.append(f"{_at(plan, job, 'levels')}: class {name!r} has {level} {a!r} in manifest {train} but "
                            f"{b!r} in {test}: granularity would map its predictions up another taxonomy; "
                            f"{_delete(test)} and rebuild it with {train}'s --taxonomy FILE and --classes-from {train}")
    return problems


class _TableReads:
    """The reads of manifest tables one check makes, each once (a later check reads a rebuilt manifest anew)."""

    def __init__(self) -> None:
        from study.manifests.store import table_columns

        self.columns = functools.cache(table_columns)  # what a granularity job may name: any column of the table
        self.taxonomy_clash = functools.cache(_taxonomy_clash)


def _taxonomy_clash(train: str, test: str, levels: tuple[str, ...]) -> tuple[str, str, str, str] | None:
    """The first class (by label) whose value at one of `levels` differs between manifests `train` and `test`, as
    (class name, level, its value in train, in test); None when they agree or a table is unreadable (the job says
    so)."""
    from study.manifests.store import read_arrow

    seen: list[dict] = []
    for name in (train, test):
        try:
            columns = ["label", "class_name", *levels]
            table = read_arrow(name, columns=columns).group_by(columns).aggregate([])  # a row per class, mostly
        except StudyError:
            return None
        first: dict = {}
        for label, cls, *values in zip(*(table[c].to_pylist() for c in ["label", "class_name", *levels])):
            first.setdefault(label, (cls, values))
        seen.append(first)
    for label in sorted(set(seen[0]) & set(seen[1])):
        (cls, ours), (_, theirs) = seen[0][label], seen[1][label]
        for level, a, b in zip(levels, ours, theirs):
            if a != b:
                return cls, level, a, b
    return None


def cost_hint_notes(plan: Plan, meta) -> list[str]:
    """A note for each dataset's `train_images`, `test_images` or `classes` that its manifest contradicts: they feed
    only the estimate (a paper grid copied to a small dataset would keep iNat21's millions), so they are not
    problems, but the estimate counts the grid's number, not the manifest's."""
    notes = []
    for key, ds in plan.grid.datasets.items():
        for hint, name, what, count in (
                (ds.train_images, ds.train, "train_images", lambda m: (m["num_images"], "images")),
                (ds.test_images, ds.test, "test_images", lambda m: (m["num_images"], "images")),
                (ds.classes, ds.train, "classes", lambda m: (len(m["class_names"]), "classes"))):
            if hint is None or not name or not _manifest_exists(name):
                continue
            have, unit = count(meta(name))
            if have != hint:
                notes.append(f"datasets.{key}.{what} is {hint}, but manifest {name} has {have} {unit}: the "
                             "estimate counts the grid's number")
    return notes


def _manifest_lines(plan: Plan) -> dict[str, int]:
    """Manifest name -> the line of the `datasets:` entry that names it (a corrupted variant: its dataset's)."""
    grid = plan.grid
    lines: dict[str, int] = {}
    for ds in grid.datasets.values():
        for name in (ds.train, ds.test):
            if name:
                lines.setdefault(name, ds.line)
    for job in plan.by_stage("pretrain"):
        name = job.config["pretrain"].get("manifest")
        if name and job.axes.get("dataset") in grid.datasets:
            lines.setdefault(name, grid.datasets[job.axes["dataset"]].line)
    return lines


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


def _file_key_at(plan: Plan, key: str) -> str:
    """`<grid>:<line>: defaults.pretrain.<key>`, at the line of the key (else of its section) under
    defaults.pretrain: a setting of the pretraining jobs' (a file they read, a method's own section)."""
    line = _deepest(key, plan.grid.defaults_lines.get("pretrain", {}))
    return f"{at(plan.path, line)}: defaults.pretrain.{key}"


def init_encoder_not_here(plan: Plan) -> list[str]:
    """Each file the plan's pretraining jobs read (`files_read`: `init_encoder`, every job starts from it;
    `pretrained.encoder_file`, the encoder method `pretrained` scores) said when not a file here: each job that reads
    it would stop on it."""
    return [f"{_file_key_at(plan, key)}: {path} is not a file here (relative paths are read from the folder the jobs "
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
            out.append(f"{_file_key_at(plan, key)}: {path} holds {spec['name']} (width {spec['width']}), the jobs "
                       f"that read it ask for {', '.join(wrong)}: import the checkpoint with that --backbone and "
                       "--width, or give those jobs the file's (`backbone` axis, defaults.pretrain.width)")
    return out


def roots_not_here(plan: Plan, meta) -> list[str]:
    """Each manifest whose recorded root (a pool's: each source's) is not a folder on this machine, said: a job that
    cannot read it stops at its first image, after the jobs it waits for. A manifest records its root when it is made
    (a corrupted variant or a pool: its base's or sources' roots of that moment), so after the dataset moved it is
    made again, not only its base."""
    from study.manifests import store

    lines, commands = _manifest_lines(plan), plan.manifests()
    out = []
    for name, command in commands.items():
        try:
            m = meta(name)
        except StudyError:
            continue  # unreadable metadata: the manifest check names it
        gone = sorted(set(store.roots_not_here(m).values()))
        if not gone:
            continue  # no root recorded (a hand-made manifest): the job names what it cannot read
        line = lines.get(name)
        where = at(plan.path, line)
        made = m.get("corruption") or m.get("pool")
        remedy = (f"{_delete(name)} and make it again, once its "
                  f"{'sources are' if m.get('pool') else 'base is'} built at the dataset's new place:\n    {command}"
                  if made else
                  f"{_delete(name)} and build it again with --root at the dataset's new place (the "
                  "content hash stays the same when only the root moved)")
        out.append(f"{where}: manifest {name} reads its images under {', '.join(gone)}, which is not a folder here "
                   f"(the dataset moved, or is not mounted on this machine): a job that cannot read it stops at its "
                   f"first image; if it moved, {remedy}")
    return out


def _shared_files_remedy(dataset: object) -> str | None:
    """What to do when a train and a test manifest of reader `dataset` share an image file: the reader's
    `shared_files` attribute (an image folder without a folder per split, GLC20 occurrence tables of one's own that
    list an occurrence in both); None for a reader whose splits are their own files, or no registered reader."""
    from study.datasets import DATASETS
    from study.datasets.base import reader_attribute

    return reader_attribute(dataset, "shared_files") if isinstance(dataset, str) and dataset in DATASETS else None


def _test_images_among_labeled(plan: Plan, meta) -> list[str]:
    """Each (train, test) manifest pair of an evaluation where test images are among the labeled images its jobs
    train on (one root, one relative path: e.g. an image folder without split folders, which gives every --split
    the whole tree): the job refuses it (study.evaluate.run), after its encoders' pretraining."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from study.manifests.store import manifest_paths

    largest: dict[tuple[str, str], tuple[int, Job]] = {}  # (train, test) -> the most labeled images a job takes
    for job in plan.by_stage("evaluate"):
        sec = job.config["evaluate"]
        train, test = sec.get("train_manifest"), sec.get("test_manifest")
        if not train or not test:
            continue
        root = meta(train).get("root")
        if not _shared_files_remedy(meta(train).get("dataset")) or not root or root != meta(test).get("root"):
            continue  # the other readers' splits are their own files (and their paths are read only for this)
        n_train = meta(train)["num_images"]
        sizes = sec.get("labeled_sizes") or ["all"]
        n = max(min(int(s), n_train) if is_int(s) else n_train for s in sizes)
        if n > largest.get((train, test), (-1, job))[0]:
            largest[(train, test)] = (n, job)
    out = []
    for (train, test), (n, job) in largest.items():
        try:
            rows = pq.read_table(manifest_paths(train)[0], columns=["path", "labeled_rank"])
            test_paths = pq.read_table(manifest_paths(test)[0], columns=["path"]).column("path")
        except (OSError, KeyError, pa.ArrowException):
            continue  # unreadable: the job names it
        labeled = rows.filter(pc.less(rows.column("labeled_rank"), n)).column("path")
        shared = test_paths.filter(pc.is_in(test_paths, value_set=labeled.combine_chunks()))
        if len(shared) == 0:
            continue
        ds = plan.grid.datasets.get(job.axes.get("eval_dataset"))
        where = f"{plan.path}:{ds.line}" if ds is not None else _at(plan, job, "test_manifest")
        out.append(f"{where}: {len(shared)} of the {len(test_paths)} test images of manifest {test} are among the "
                   f"{n} labeled images of {train} an evaluation trains on (e.g. {meta(train)['root']}/{shared[0]}): "
                   f"it would score images it trained on, and stops on them after its pretraining; "
                   + _shared_files_remedy(meta(train)["dataset"]))
    return out


@functools.lru_cache(maxsize=4096)
def _schedule_problems(section_json: str, size: int | None, images: int) -> tuple[str | None, tuple[str, ...]]:
    from study.train import PretrainConfig
    from study.train.optim import schedule_problems

    section = json.loads(section_json)
    try:
        if "protocol" in section:  # an evaluation's fine-tuning or scratch run on `size` labeled images
            from study.evaluate import EvalConfig
            from study.evaluate.finetune import pretrain_dict

            cfg = PretrainConfig.from_dict(pretrain_dict(EvalConfig.from_dict(section), size, images, None),
                                           where="evaluate.finetune")
        else:
            cfg = PretrainConfig.from_dict(section)
    except StudyError:  # check_sections names it
        return None, ()
    error, warnings = schedule_problems(cfg, images)
    return error, tuple(warnings)  # cached: shared by its callers


def schedule_error(section: dict, size: int | None, images: int) -> str | None:
    """optim.schedule_problems' error for a pretrain section on `images` images, or for an evaluate section's
    fine-tuning run on `size` labeled images (`images` of them; None: all): what the job would stop on when it
    starts training, said at plan time instead (a fine-tune would otherwise fail after its encoder's pretraining)."""
    return _schedule_problems(canonical_json(section), size, images)[0]


def _trains(job: Job) -> bool:
    """The job's method is registered and trains (`random` does not: it takes no step, reads no schedule)."""
    from study.train.methods import METHODS

    name = job.axes["method"]
    return name in METHODS and METHODS.get(name).trains


def schedule_warnings(plan: Plan, meta) -> list[str]:
    """optim.schedule_problems' warnings of the pretraining jobs (a warmup of more than half the run, MoCo's queue
    larger than the keys the run enqueues), each at the line of the key it names, with how many jobs it concerns:
    what each job's log would say once it runs, said at plan time (`check_plan`, once every manifest is found: their
    image counts). A method that does not train (`random`) reads no schedule: none for its jobs."""
    seen: dict[tuple[str, str], list[Job]] = {}
    for job in plan.by_stage("pretrain"):
        sec = job.config["pretrain"]
        size, name = sec.get("size", job.axes.get("size")), sec.get("manifest")
        if not name or not _trains(job):
            continue
        images = size if is_int(size) else meta(name)["num_images"]
        for warning in _schedule_problems(canonical_json(sec), None, images)[1]:
            where = _at(plan, job, _message_key(f"pretrain.{warning}"))
            seen.setdefault((where, warning), []).append(job)
    return [f"{where}: {len(jobs)} pretraining job(s) (e.g. {_describe(_named_job(jobs, f'pretrain.{warning}'))}): "
            f"pretrain.{warning}" for (where, warning), jobs in seen.items()]


def _corrupted_from_elsewhere(plan: Plan, job: Job, name: str, meta) -> str | None:
    """For a pretraining job on a corrupted manifest `name`: why `name` is not the job's clean training manifest
    under the job's corruption (another base, another corruption, a base rebuilt since), else None."""
    spec, train = job.axes.get("corruption"), plan.grid.datasets[job.axes["dataset"]].train
    if not spec or spec == "none" or not train:
        return None
    have, base = meta(name), meta(name).get("base") or {}
    why = None
    if not have.get("corruption") or corruption_slug(str(have["corruption"])) != corruption_slug(spec):
        why = f"its corruption is {have.get('corruption') or 'none'}"
    elif base.get("name") != train:
        why = f"it was made from {base.get('name')}"
    elif _manifest_exists(train) and base.get("content_hash") != meta(train).get("content_hash"):
        why = f"{train} has been rebuilt since it was made"
    if why is None:
        return None
    return (f"{_line_of_value(plan.grid, 'corruption', spec, job.axes)}: manifest {name} is meant to be {train} "
            f"corrupted by {spec}, but {why}; {_delete(name)} and make it again:\n    "
            f"{plan.manifests().get(name, '')}")


def _pool_shares_beyond_sources(plan: Plan, name: str) -> str | None:
    """For a pool `name` not made yet: each `pool:` share larger than its source's train manifest (one that
    exists), which `study manifest pool` would refuse, at the grid's `pool:` line; else None."""
    from study.manifests.store import load_meta

    short = []
    for ds in plan.grid.datasets.values():
        if not ds.pooled or ds.train != name:
            continue
        for src, n in ds.pool:
            source = str(plan.grid.datasets[src].train)
            if _manifest_exists(source) and n > (have := load_meta(source)["num_images"]):
                short.append(f"{plan.path}:{ds.pool_line or ds.line}: datasets.{ds.key}.pool.{src}: "
                             f"{_count_text(n)} images asked of manifest {source}, which has {have}; pool at most "
                             f"{format_count(have)} of it (pool {name} cannot be made as the grid gives it)")
    return "\n".join(short) or None


def _pooled_from_elsewhere(plan: Plan, ds: DatasetSpec, meta) -> str | None:
    """For a pooled dataset: why its manifest is not the pool that its `pool:` declares (other sources, counts or
    order; a source rebuilt since; not a pool at all), else None."""
    grid = plan.grid
    if not ds.pooled or not ds.train:
        return None
    want = [(str(grid.datasets[src].train), n) for src, n in ds.pool]
    made = meta(ds.train).get("pool")
    why = None
    if not isinstance(made, list) or not all(isinstance(s, dict) for s in made) or not made:
        why = "it is not a pool (not made by `study manifest pool`)"
    else:
        have = [(str(s.get("name")), s.get("size")) for s in made]
        if have != want:
            same = sorted(map(str, have)) == sorted(map(str, want))
            why = f"it pools {_pool_text(have)}" + (" (the same sources in another order)" if same else "")
        else:
            rebuilt = [name for (name, _), s in zip(want, made)
                       if _manifest_exists(name) and s.get("content_hash") != meta(name).get("content_hash")]
            if rebuilt:
                why = f"{', '.join(rebuilt)} {'has' if len(rebuilt) == 1 else 'have'} been rebuilt since it was made"
    if why is None:
        return None
    return (f"{grid.path}:{ds.pool_line or ds.line}: manifest {ds.train} is meant to pool {_pool_text(want)} "
            f"(datasets.{ds.key}.pool), but {why}; {_delete(ds.train)} and make it again:\n    "
            f"{plan.manifests().get(ds.train, '')}")


def _pool_text(sources: list[tuple[str, Any]]) -> str:
    return ", ".join(f"{name}:{format_count(n) if is_int(n) else n}" for name, n in sources)


def _delete(name: str) -> str:
    """`delete <folder>/<name>.parquet and <folder>/<name>.json`: a manifest's own files, wherever STUDY_MANIFESTS
    points (a user whose manifests live elsewhere would not find "its .json")."""
    from study.manifests.store import manifest_files_text

    return f"delete {manifest_files_text(name)}"
