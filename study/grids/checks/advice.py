"""The warnings of a plan: what runs, but likely not as meant (encoders nothing evaluates, untrained methods at
several sizes, unequal pools, concatenations of an encoder never probed alone, evaluations at another image size
than their pretraining, schedules that do not fit their manifest). `schedule_error` is also a problem where a
schedule cannot run at all."""
from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING

from study.configfields import is_int
from study.counts import format_count
from study.errors import StudyError
from study.grids.jobs import Job
from study.grids.yamlio import at
from study.hashing import canonical_json
from study.grids.checks.where import describe, message_key, named_job, setting_at, value_at

if TYPE_CHECKING:
    from study.grids.plan import Plan


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
            f"{describe(unused[0])}): nothing will score or draw their encoders; widen an evaluation entry's "
            "`where` to them, or drop them from the axes, unless that is meant"]


def cpus_per_gpu_warnings(plan: Plan) -> list[str]:
    """One line where a pretraining job's `cpus` are not a multiple of its `gpus` (more than one): it runs one task
    per GPU of cpus // gpus CPUs each (Slurm's --cpus-per-task), so the rest of the CPUs asked for sit idle, and
    with fewer CPUs than GPUs each task still takes one. A warning: the job runs."""
    job = next((j for j in plan.by_stage("pretrain")
                if j.resources.gpus > 1 and j.resources.cpus % j.resources.gpus), None)
    if job is None:
        return []
    cpus, gpus = int(job.resources.cpus), int(job.resources.gpus)
    written = plan.grid.pretrain_resources
    where = (at(plan.path, written.line_of("cpus")) if hasattr(written, "line_of") and "cpus" in written
             else at(plan.profile.path or "built-in default profile", plan.profile.stage_lines.get("pretrain")))
    each = max(1, cpus // gpus)
    return [f"{where}: pretrain resources: cpus {cpus} over gpus {gpus}: a pretraining job runs one task per GPU of "
            f"{each} CPU(s) each (e.g. {describe(job)}), so {abs(cpus - each * gpus)} CPU(s) "
            + ("asked for sit idle" if cpus > each * gpus else "more than asked are taken")
            + f"; ask for a multiple of gpus (cpus: {max(gpus, cpus - cpus % gpus)})"]


def untrained_sizes_warnings(plan: Plan) -> list[str]:
    """One line per method that trains nothing (`random`, `pretrained`) whose pretraining jobs differ only in their
    size: each size is one encoder again (it sees no pretraining image), scored again by every evaluation, and drawn
    as one more line of the same values, labelled with a size it was never trained at. A warning: it may be meant."""
    sizes: dict[tuple, list[Job]] = {}
    for job in plan.by_stage("pretrain"):
        if not method_trains(job):
            key = tuple(sorted((k, str(v)) for k, v in job.axes.items() if k != "size"))
            sizes.setdefault(key, []).append(job)
    out, said = [], set()
    for jobs in sizes.values():
        method, values = jobs[0].axes["method"], list(dict.fromkeys(j.axes.get("size") for j in jobs))
        if len(values) < 2 or method in said:
            continue
        said.add(method)
        spelt = [format_count(v) if is_int(v) else "all" for v in values]  # null: every image
        where = value_at(plan.grid, "method", method, jobs[0].axes)
        out.append(f"{where}: method {method} trains nothing, yet its pretraining jobs take {len(values)} sizes "
                   f"({', '.join(spelt)}) (e.g. {describe(jobs[0])}): each size scores the same encoder again, "
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


def unprobed_concat_warnings(plan: Plan) -> list[str]:
    """One line where some of the plan's concatenations (`concat`) hold an encoder that no linear entry probes alone
    on that evaluation dataset at the concatenation's largest labeled size (the size domain_concat draws): the report
    then has no bar of that single encoder, nor the concatenation's gain over the better single one
    (data_domain.yaml's "supervised alone" entry gives one). A warning: it may be meant."""
    evals = [j for j in plan.grid_jobs if j.stage == "evaluate"]
    probed = {(j.depends_on[0], j.axes.get("eval_dataset"), n) for j in evals
              if j.axes.get("protocol") == "linear" and len(j.depends_on) == 1 for n in _labeled_sizes(j)}
    lacking = [(j, e) for j in evals if j.axes.get("protocol") == "concat"
               for e in j.depends_on if (e, j.axes.get("eval_dataset"), _largest_labeled(j)) not in probed]
    if not lacking:
        return []
    job, encoder = lacking[0]
    labeled = _largest_labeled(job)
    at_size = f"{format_count(labeled) if is_int(labeled) else labeled} labels"
    return [f"{plan.path}: {len({j.id for j, _ in lacking})} concatenation(s) hold an encoder that no linear entry "
            f"probes alone on their evaluation dataset at their largest labeled size (e.g. {describe(job)}: encoder "
            f"{encoder} on {job.axes.get('eval_dataset')} at {at_size}): the report has no bar of that single "
            f"encoder, nor the gain over the better single one; add a linear entry of it on that dataset at that "
            f"labeled size (as data_domain.yaml's \"supervised alone\" entry), unless that is meant"]


def _labeled_sizes(job: Job) -> list:
    """An evaluation job's labeled sizes: counts, or "all" (EvalConfig's default where it names none)."""
    given = job.config["evaluate"].get("labeled_sizes")
    return list(given) if isinstance(given, list) and given else ["all"]


def _largest_labeled(job: Job):
    """The largest of `_labeled_sizes(job)`, "all" before any count."""
    sizes = _labeled_sizes(job)
    counts = [n for n in sizes if is_int(n)]
    return max(counts) if counts and "all" not in sizes else "all"


def image_size_warnings(plan: Plan) -> list[str]:
    """One line per (evaluation entry, sizes) whose jobs score encoders at another image size than their pretraining
    crops (an evaluation's default is 224 whatever the pretraining's: a small-image grid that leaves it upsamples
    every image, at many times the cost, and scores other features). A warning: it may be meant."""
    seen: dict[tuple[str, int, int], list[Job]] = {}
    for job in plan.by_stage("evaluate"):
        size = job.image_size
        for dep in job.depends_on:
            if not method_trains(plan.job(dep)):  # random, pretrained: its image_size is no size it was trained at
                continue
            trained = plan.job(dep).image_size
            if trained != size:
                seen.setdefault((setting_at(plan, job, "image_size"), size, trained), []).append(job)
    return [f"{where}: {len(jobs)} evaluation job(s) score at image_size {size} encoders pretrained at {trained} px "
            f"(e.g. {describe(jobs[0])}): set the evaluation's image_size (defaults.evaluate, or the entry's params) "
            f"to {trained} unless that is meant" for (where, size, trained), jobs in seen.items()]


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


def method_trains(job: Job) -> bool:
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
        if not name or not method_trains(job):
            continue
        images = size if is_int(size) else meta(name)["num_images"]
        for warning in _schedule_problems(canonical_json(sec), None, images)[1]:
            where = setting_at(plan, job, message_key(f"pretrain.{warning}"))
            seen.setdefault((where, warning), []).append(job)
    return [f"{where}: {len(jobs)} pretraining job(s) (e.g. {describe(named_job(jobs, f'pretrain.{warning}'))}): "
            f"pretrain.{warning}" for (where, warning), jobs in seen.items()]
