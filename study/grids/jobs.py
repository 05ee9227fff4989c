"""Jobs: the unit the launcher runs. `Job.id` is the hash of its config less the run-only settings (`id_config`), so
one config in two grids is one job.

    config = {"stage": "pretrain", "axes": {...}, "pretrain": {...}}
    config = {"stage": "evaluate", "axes": {...}, "evaluate": {...}, "encoders": [pretrain job ids]}

`build_jobs(grid, points, profile)` turns the grid's pretraining points and evaluation entries into jobs in
topological order (every pretraining job before the evaluations that need it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Collection, Iterator

from study.configfields import plain
from study.errors import StudyError
from study.evaluate.config import EvalConfig
from study.evaluate.protocols import PROTOCOLS, unread_keys
from study.evaluate.protocols import protocol as protocol_of
from study.grids.profile import Profile, Resources, resolve_resources
from study.grids.schema import (ALL, AXES, PLANNER_EVAL_KEYS, PRETRAIN_AXES, VARIANT_AXIS, EvalEntry, Grid,
                                parsed_corruption, value_line, value_text)
from study.grids.yamlio import fail
from study.hashing import canonical_json, config_hash, whole_numbers_as_ints
from study.runtime_keys import EVALUATE_RUN_ONLY, PRETRAIN_RUN_ONLY
from study.train.config import UNTRAINED_METHODS, PretrainConfig, unread_settings

# a pretrain section's keys that are settings of every method (the others name one method's own: `moco`, `byol`)
PRETRAIN_FIELDS = frozenset(f.name for f in fields(PretrainConfig)) - {"method_settings"}
# the evaluate-section keys the planner fills (EvalConfig field names): from the axes and datasets, and from the
# entry's own `labeled_sizes` and `levels`
EVAL_PROTOCOL, EVAL_TRAIN, EVAL_TEST = PLANNER_EVAL_KEYS
EVAL_SIZES, EVAL_LEVELS = "labeled_sizes", "levels"


@dataclass(frozen=True)
class Job:
    """One pretraining or evaluation run (docs/architecture.md, section 3). `resources` is not part of the id."""

    id: str
    stage: str
    config: dict
    depends_on: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources, compare=False)
    entry: int | None = field(default=None, compare=False)  # the stages.evaluate entry that made it (plan time)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def axes(self) -> dict[str, Any]:
        return self.config["axes"]

    @property
    def image_size(self) -> int:
        """The image size the job works at: its section's `augment.image_size`, else `image_size`, else its config's
        default (as PretrainConfig and EvalConfig resolve it)."""
        section = self.config.get(self.stage, {})
        augment = section.get("augment") if isinstance(section.get("augment"), dict) else {}
        default = PretrainConfig.image_size if self.stage == "pretrain" else EvalConfig.image_size
        return augment.get("image_size", section.get("image_size", default))


def make_job(stage: str, axes: dict[str, Any], section: dict[str, Any], encoders: list[str] | None,
             resources: Resources, entry: int | None = None) -> Job:
    """The job of `stage` at `axes` (each of AXES, None where it has none; `variant` where set) running `section`,
    after the pretraining jobs `encoders` read (an evaluation's); its id: `job_id`."""
    config: dict[str, Any] = {"stage": stage, "axes": {a: axes.get(a) for a in AXES}}
    if axes.get(VARIANT_AXIS) is not None:
        config["axes"][VARIANT_AXIS] = axes[VARIANT_AXIS]
    if stage == "pretrain":
        config["pretrain"] = section
        deps: tuple[str, ...] = ()
    else:
        config["evaluate"] = section
        config["encoders"] = list(encoders or [])
        deps = tuple(dict.fromkeys(config["encoders"]))
    return Job(id=job_id(config), stage=stage, config=config, depends_on=deps, resources=resources, entry=entry)


def job_id(config: dict[str, Any]) -> str:
    """The id of the job of `config`: the hash of its `id_config`, whole numbers as ints (`10.0` is `10`), the one
    rule, also for the job files an older study wrote (study.launch.grid_states.renamed)."""
    return config_hash(whole_numbers_as_ints(id_config(config)))


def id_config(config: dict[str, Any]) -> dict[str, Any]:
    """What a job's id hashes: its config without the run-only settings (study.runtime_keys), also those of an
    evaluation's fine-tuning runs, and without the settings its run never reads, as its run records them: of a
    pretraining job's `pretrain.<method>` sections only its own method's, and none of the settings its method never
    reads (UNREAD_SETTINGS: PretrainConfig.to_dict); of an evaluation, none of the keys its protocol never reads
    (study.evaluate.protocols.unread_keys: EvalConfig.recorded_dict). Adding another method's settings to a grid's
    defaults, changing SimCLR's temperature or a fine-tuning setting leaves the jobs that never read them as they
    were."""
    out = dict(config)
    if "pretrain" in out:
        own = out["pretrain"].get("method") or out.get("axes", {}).get("method")
        unread = unread_settings(own)
        out["pretrain"] = {k: v for k, v in _without(out["pretrain"], PRETRAIN_RUN_ONLY).items()
                           if (k in PRETRAIN_FIELDS and k not in unread) or k == own}  # not: other methods' sections
    if "evaluate" in out:
        ev = _without(out["evaluate"], EVALUATE_RUN_ONLY)
        if ev.get(EVAL_PROTOCOL) in PROTOCOLS:  # (another: refused by the plan's validation)
            ev = _without(ev, unread_keys(ev[EVAL_PROTOCOL], ev.get("also_knn", False)))
        if isinstance(ev.get("finetune"), dict):
            ev["finetune"] = _without(ev["finetune"], PRETRAIN_RUN_ONLY)
            if not ev["finetune"]:  # only run-only settings: as if absent
                del ev["finetune"]
        out["evaluate"] = ev
    return out


def _without(section: dict[str, Any], keys: Collection[str]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in keys}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, recursing into mappings; neither is modified."""
    out = plain(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = plain(v)
    return out


# ------------------------------------------------------------------------------------------------ corruptions
def corruption_slug(spec: str) -> str:
    """`CorruptionSpec.slug` of `spec` (study.corruptions); StudyError for an unknown corruption."""
    return parsed_corruption(spec).slug


# `<train>.<slug>`: a character study.manifests' names allow (letters, digits and _ . + = @ -)
CORRUPTED_SEP = "."


def corrupted_manifest(train: str, spec: str) -> str:
    """The manifest name of `train` corrupted by `spec`: `<train>.<slug>` (the clean name for `none`)."""
    if spec == "none":
        return train
    return f"{train}{CORRUPTED_SEP}{corruption_slug(spec)}"


# ------------------------------------------------------------------------------------------------ building
class _Builder:
    """The jobs made so far (each id once, in the order made) and the resources of each stage or entry, resolved
    once."""

    def __init__(self, grid: Grid, profile: Profile):
        self.grid = grid
        self.profile = profile
        self.jobs: list[Job] = []
        self.ids: set[str] = set()
        self._res_cache: dict[int, Resources] = {}

    def add(self, job: Job) -> Job:
        if job.id not in self.ids:
            self.ids.add(job.id)
            self.jobs.append(job)
        return job

    def resources(self, stage: str, entry: EvalEntry | None) -> Resources:
        key = -1 if entry is None else entry.index
        if key not in self._res_cache:
            layers = [(self.grid.path, self.grid.pretrain_resources)] if stage == "pretrain" else []
            if entry is not None:
                layers.append((self.grid.path, entry.resources))
            self._res_cache[key] = resolve_resources(self.profile, stage, layers)
        return self._res_cache[key]


def build_jobs(grid: Grid, points: list[dict[str, Any]], profile: Profile) -> list[Job]:
    """The jobs of `grid`: one pretraining job per point (study.grids.expand), then each evaluate entry's; a grid
    error where two entries' jobs would share report cells (`_refuse_shared_cells`)."""
    b = _Builder(grid, profile)
    pre_res = b.resources("pretrain", None)
    untrained_res = pre_res.at_most(profile.untrained_max())
    pretrain_jobs: list[Job] = []
    for pt in points:
        ds = grid.datasets[pt["dataset"]]
        try:
            manifest = corrupted_manifest(ds.train, pt["corruption"])  # type: ignore[arg-type]
        except (StudyError, ValueError) as e:
            raise fail(grid.path, value_line(grid, "corruption", pt["corruption"]), str(e)) from None
        over: dict[str, Any] = {"manifest": manifest}
        for axis in ("method", "backbone", "size", "seed"):
            if pt[axis] is not None:
                over[axis] = pt[axis]
        section = deep_merge(grid.defaults_pretrain, over)
        section.pop("corruption", None)  # an axis, not a PretrainConfig field: it lives in the manifest
        if pt["size"] is None:  # every image (`size: all`, null), the job's axis: not defaults.pretrain's size
            section.pop("size", None)
        res = untrained_res if trains_nothing(pt["method"]) else pre_res  # the axis: defaults.pretrain's if none
        pretrain_jobs.append(b.add(make_job("pretrain", pt, section, None, res)))
    for entry in grid.evaluate:
        _evaluate_entry(b, entry, pretrain_jobs)
    _refuse_shared_cells(grid, b.jobs)
    return b.jobs


def trains_nothing(method: Any) -> bool:
    """A method that trains no step (`random`, `pretrained`: UNTRAINED_METHODS, not the registry, which `study status`
    must not import with torch); an unknown one is the config check's."""
    return isinstance(method, str) and method in UNTRAINED_METHODS


def _refuse_shared_cells(grid: Grid, jobs: list[Job]) -> None:
    """Two entries whose jobs have the same axes (variant included) and would score a labeled size and level in
    common (no sizes or levels given: all of them) would write results to the same report cells, one hiding the
    other: an error at the later entry, which asks for a `variant`."""
    def overlap(a: Any, b: Any) -> bool:
        return a is None or b is None or bool(set(a) & set(b))

    seen: dict[str, list[Job]] = {}
    for job in jobs:
        if job.stage != "evaluate":
            continue
        key = canonical_json(job.axes)
        sec = job.config["evaluate"]
        for other in seen.setdefault(key, []):
            theirs = other.config["evaluate"]
            if (other.entry != job.entry and overlap(sec.get(EVAL_SIZES), theirs.get(EVAL_SIZES))
                    and overlap(sec.get(EVAL_LEVELS), theirs.get(EVAL_LEVELS))):
                first, later = grid.evaluate[other.entry], grid.evaluate[job.entry]
                axes = ", ".join(f"{k}={v}" for k, v in job.axes.items() if v is not None)
                raise fail(grid.path, later.line,
                           f"stages.evaluate[{later.index}] makes job {job.id} with the same axes ({axes}) as job "
                           f"{other.id} of stages.evaluate[{first.index}] (line {first.line}), and they score the "
                           f"same labeled sizes: their results would share the report's cells, the newer hiding the "
                           f"other. Give one entry, or each, its own `variant: <word>`")
        seen[key].append(job)


def _eval_datasets(b: _Builder, entry: EvalEntry, datasets: list[str]) -> list[str]:
    grid = b.grid
    if entry.eval_datasets == "all":
        return [k for k, d in grid.datasets.items() if d.train and d.test]
    if entry.eval_datasets != "same":
        return list(entry.eval_datasets)
    out: list[str] = []
    for key in datasets:
        spec = grid.datasets[key]
        keys = [src for src, _ in spec.pool] if spec.pooled else [key]
        for k in keys:
            if grid.datasets[k].test and k not in out:
                out.append(k)
    if not out:
        raise fail(grid.path, entry.line, f"stages.evaluate[{entry.index}] eval_datasets same: dataset(s) "
                                          f"{', '.join(map(repr, datasets))} have no test manifest; list eval_datasets")
    return out


def _eval_section(b: _Builder, entry: EvalEntry, eval_dataset: str, labeled: tuple[Any, ...] | None) -> dict:
    ds = b.grid.datasets[eval_dataset]
    over: dict[str, Any] = {EVAL_PROTOCOL: entry.protocol, EVAL_TRAIN: ds.train, EVAL_TEST: ds.test}
    if labeled is not None:
        over[EVAL_SIZES] = list(labeled)
    if isinstance(entry.levels, tuple):
        over[EVAL_LEVELS] = list(entry.levels)
    section = deep_merge(deep_merge(b.grid.defaults_evaluate, entry.params), over)
    if section.get(EVAL_SIZES) == [ALL]:  # EvalConfig's default: one job (and id) with an entry that gives no sizes
        del section[EVAL_SIZES]
    return section


def _size_groups(grid: Grid, entry: EvalEntry) -> list[tuple[Any, ...] | None]:
    """The labeled sizes of each job of `entry`: one group per size when it splits them (also sizes that come from
    its params or defaults.evaluate), else one group; None: the section's own sizes, unchanged."""
    sizes: tuple[Any, ...] | None = entry.labeled_sizes
    if sizes is None:
        given = deep_merge(grid.defaults_evaluate, entry.params).get(EVAL_SIZES)
        if not entry.split_labeled_sizes or not isinstance(given, list) or len(given) < 2:
            return [None]  # EvalConfig checks the values
        sizes = tuple(given)
    if entry.split_labeled_sizes:
        return [(n,) for n in sizes]
    return [sizes]


EvalJob = tuple[dict[str, Any], dict[str, Any], list[str]]  # an evaluation job's (axes, section, encoder job ids)


def _evaluate_entry(b: _Builder, entry: EvalEntry, pretrain_jobs: list[Job]) -> None:
    """Add the evaluation jobs of `entry` over the pretraining jobs its `where` matches, by the encoders its protocol
    reads (study.evaluate.protocols): none (scratch), one, or a pair (concat)."""
    matched = _matched(b.grid, entry, pretrain_jobs)
    res = b.resources("evaluate", entry)
    groups = _size_groups(b.grid, entry)
    encoders = protocol_of(entry.protocol).encoders
    if encoders == 0:
        jobs = _scratch_jobs(b, entry, matched, groups)
    elif encoders == 2:
        jobs = _concat_jobs(b, entry, matched, groups)
    else:
        jobs = _encoder_jobs(b, entry, matched, groups)
    for axes, section, encoders in jobs:
        if entry.variant is not None:
            axes = {**axes, VARIANT_AXIS: entry.variant}
        b.add(make_job("evaluate", axes, section, encoders, res, entry.index))


def _label(entry: EvalEntry) -> str:
    return f"stages.evaluate[{entry.index}] (protocol {entry.protocol})"


def _matched(grid: Grid, entry: EvalEntry, pretrain_jobs: list[Job]) -> list[Job]:
    """The pretraining jobs `entry.where` matches; a grid error when none does, or when a value it lists is no
    job's (a typo, or a stale value)."""
    for axis, values in entry.where.conditions:  # first: a value no job has names the values they have, which
        # shows a typo in the where or on the axes (`supervized` there leaves `where: {method: supervised}` none)
        present = {j.axes[axis] for j in pretrain_jobs}
        for v in values:
            if v not in present:
                held = sorted(present, key=lambda x: (x is None, x) if axis == "size" else (False, str(x)))
                raise fail(grid.path, entry.where.line or entry.line,
                           f"{_label(entry)}: where {axis}: {value_text(axis, v, quoted=True)} matches no pretraining "
                           f"job (their {axis} values: {', '.join(value_text(axis, x, quoted=True) for x in held)})")
    matched = [j for j in pretrain_jobs if entry.where.matches(j.axes)]
    if not matched:
        raise fail(grid.path, entry.where.line or entry.line,
                   f"{_label(entry)}: where {entry.where.describe()} matches no pretraining job: it expands to zero "
                   f"jobs")
    return matched


def _encoder_jobs(b: _Builder, entry: EvalEntry, matched: list[Job],
                  groups: list[tuple[Any, ...] | None]) -> Iterator[EvalJob]:
    """Of one encoder: one job per (matched pretraining job, eval dataset, sizes)."""
    for pj in matched:
        for ed in _eval_datasets(b, entry, [pj.axes["dataset"]]):
            axes = {**pj.axes, "protocol": entry.protocol, "eval_dataset": ed}
            for sizes in groups:
                yield axes, _eval_section(b, entry, ed, sizes), [pj.id]


def _scratch_jobs(b: _Builder, entry: EvalEntry, matched: list[Job],
                  groups: list[tuple[Any, ...] | None]) -> Iterator[EvalJob]:
    """Of no encoder (from random init: scratch): one job per (backbone, seed, eval dataset, sizes), of the
    architecture of `matched`."""
    for pj in matched:
        for ed in _eval_datasets(b, entry, [pj.axes["dataset"]]):
            for sizes in groups:
                section = _eval_section(b, entry, ed, sizes)
                if pj.axes["backbone"] is not None:
                    section.setdefault("backbone", pj.axes["backbone"])
                if pj.config["pretrain"].get("width") is not None:  # the architecture the fine-tunes start from
                    section.setdefault("width", pj.config["pretrain"]["width"])
                if pj.axes["seed"] is not None and "seed" not in entry.params:
                    # its training seed: the encoders' (one baseline per pretraining seed), not defaults.evaluate's
                    # evaluation seed, which would make one job of every seed's baseline
                    section["seed"] = pj.axes["seed"]
                # the entry's params win over the encoders' backbone and seed: the axes say what the job trains
                axes = {"backbone": section.get("backbone"), "seed": section.get("seed"), "protocol": entry.protocol,
                        "eval_dataset": ed}
                yield axes, section, []


def _concat_jobs(b: _Builder, entry: EvalEntry, matched: list[Job],
                 groups: list[tuple[Any, ...] | None]) -> Iterator[EvalJob]:
    """Of two encoders (concat): one job per pair of matched encoders (A|B and B|A are one) that `entry.pairs` names
    and that agree on the axes neither side of the pair names; a grid error for a pair that matches no two jobs."""
    made: set[frozenset[str]] = set()
    for ma, mb in entry.pairs:
        named = set(ma.axes) | set(mb.axes)
        others = [a for a in PRETRAIN_AXES if a not in named]
        found = False
        for ja in (j for j in matched if ma.matches(j.axes)):
            for jb in (j for j in matched if mb.matches(j.axes)):
                if ja.id == jb.id or any(ja.axes[a] != jb.axes[a] for a in others):
                    continue
                found = True
                if frozenset((ja.id, jb.id)) in made:  # symmetric matchers, or an earlier pair: the first wins
                    continue
                made.add(frozenset((ja.id, jb.id)))
                axes = {a: _joined(ja.axes[a], jb.axes[a]) for a in PRETRAIN_AXES}
                axes["protocol"] = entry.protocol
                for ed in _eval_datasets(b, entry, [ja.axes["dataset"], jb.axes["dataset"]]):
                    axes = {**axes, "eval_dataset": ed}
                    for sizes in groups:
                        yield axes, _eval_section(b, entry, ed, sizes), [ja.id, jb.id]
        if not found:
            raise fail(b.grid.path, ma.line or entry.line,
                       f"{_label(entry)}: pair {ma.describe()} + {mb.describe()} {_unpaired(b, entry, matched, ma, mb)}"
                       f": it expands to zero jobs")


def _unpaired(b: _Builder, entry: EvalEntry, matched: list[Job], ma, mb) -> str:
    """Why a concat pair matches no two of `matched` (the entry's `where`'s jobs): a side that matches none of them (an
    encoder the grid does not train, or not within the `where`), sides that agree only on one job (an encoder named
    twice), else no two that agree on the axes neither names."""
    lone = next((m for m in (ma, mb) if not any(m.matches(j.axes) for j in matched)), None)
    if lone is not None:
        if any(lone.matches(j.axes) for j in b.jobs if j.stage == "pretrain"):
            return f"names jobs outside the entry's where: {lone.describe()} matches none with {entry.where.describe()}"
        return f"pairs an encoder the grid does not train: {lone.describe()} matches no pretraining job"
    others = [a for a in PRETRAIN_AXES if a not in set(ma.axes) | set(mb.axes)]
    agree = [ja for ja in matched if ma.matches(ja.axes)
             for jb in matched if mb.matches(jb.axes) and all(ja.axes[a] == jb.axes[a] for a in others)]
    if agree:  # each agreeing pair is one job with itself
        return (f"joins one encoder with itself: both sides match only the same pretraining job(s) where they agree on "
                f"{', '.join(others) or 'the other axes'}; a concatenation joins two encoders (say apart the axis "
                f"they differ in, e.g. [{{method: simclr}}, {{method: supervised}}])")
    return f"matches no two pretraining jobs that agree on {', '.join(others) or 'the other axes'}"


def _joined(a: Any, b: Any) -> Any:
    """One axis value for a concatenation: the shared value, else `a|b`."""
    return a if a == b else f"{a}|{b}"
