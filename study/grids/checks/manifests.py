"""The checks of the manifests a plan reads, once present (those missing: study.grids.checks.missing): what the grid
says each is (sizes, classes, levels, pools, corrupted variants, no test image among the labeled ones, its recorded
root here); and the cost hints the manifests contradict."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from study.configfields import is_int
from study.counts import format_count
from study.errors import StudyError
from study.evaluate.protocols import names_where
from study.grids.jobs import Job, corruption_slug
from study.grids.schema import DatasetSpec
from study.grids.yamlio import at
from study.hashing import canonical_json
from study.grids.checks.advice import method_trains, schedule_error
from study.grids.checks.where import describe, key_line, manifest_lines, setting_at, value_at

if TYPE_CHECKING:
    from study.grids.plan import Plan


def manifest_present(name: str) -> bool:
    """Whether manifest `name` is whole in the folder in use (STUDY_MANIFESTS)."""
    from study.manifests import manifest_exists

    return bool(manifest_exists(name))


def count_text(n: int) -> str:
    """`n` and, where it reads otherwise, its short form: "50000 (50k)", "500"."""
    short = format_count(n)
    return str(n) if short == str(n) else f"{n} ({short})"


def metadata_once():
    """study.manifests.store.load_meta, each manifest's metadata read once (for one check)."""
    from study.manifests.store import load_meta

    return functools.cache(load_meta)


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
    where = value_at(plan.grid, "size", job.axes.get("size"), job.axes)
    have = meta(name)["num_images"]
    if is_int(size) and size > have:
        return problems + [f"{where}: pretraining size {count_text(size)}: manifest {name} has {have} images (a size "
                           f"of at most {format_count(have)}, or a manifest built from more images)"]
    batch = sec.get("batch_size", PretrainConfig.batch_size)
    images = size if is_int(size) else have
    trains = method_trains(job)
    if trains and is_int(batch) and batch > images:
        if "batch_size" in plan.grid.defaults_pretrain:
            where = f"{plan.grid.path}:{key_line(plan.grid, job, 'batch_size')}"  # where it was set
        problems.append(f"{where}: pretraining batch_size {batch} is larger than the {images} images of {name}"
                        + (f" at size {format_count(size)}" if is_int(size) else "")
                        + ": not one step would run; lower batch_size for these jobs or pretrain on more images")
    elif trains:
        error = schedule_error(sec, None, images)
        # the axis's line holds every size; and each method its own recipe (a warmup of SimCLR's, none of MoCo's)
        at = f" (method {job.axes['method']}" + (f", pretraining size {format_count(size)})" if is_int(size) else ")")
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
                problems.append(f"{setting_at(plan, job, 'labeled_sizes')}: labeled size {count_text(ls)} asked of "
                                f"manifest {train}, which has {n} images (at most {format_count(n)}, or `all` for "
                                f"every one)")
    if sec.get("protocol") in names_where(trains=True) and train:
        sizes = sec.get("labeled_sizes")
        for ls in sizes if isinstance(sizes, list) and sizes else [None]:  # None, "all": every labeled image
            error = schedule_error(sec, ls if is_int(ls) else None, min(ls, n) if is_int(ls) else n)
            if error:
                problems.append(f"{setting_at(plan, job, 'finetune')}: evaluate.finetune.{error}"
                                + (f" (labeled size {format_count(ls)})" if is_int(ls) else ""))
    if sec.get("protocol") == "granularity" and test:
        problems += _granularity_problems(plan, job, meta, tables)
    clash = _scheme_problem(plan, job, train, test, meta) if train and test else None
    if clash:  # their classes differ too: rebuilding with --classes-from alone would keep the other scheme's codes
        problems.append(clash)
    elif train and test and meta(train)["class_names"] != meta(test)["class_names"]:
        problems.append(_classes_problem(plan, job, train, test, meta))
    from study.manifests.build import reading_differences

    for flag, a, b in reading_differences(meta(train), meta(test)) if train and test else ():
        problems.append(f"{setting_at(plan, job, 'test_manifest')}: manifests {train} and {test} (the labeled and test "
                        f"sets of an evaluation) are read with {flag} {a} and {b}: {_delete(test)} and rebuild it "
                        f"with {flag} {a} --classes-from {train}")  # GLC20's: equal class names, other labels or pixels
    return problems


def _scheme_problem(plan: Plan, job: Job, train: str, test: str, meta) -> str | None:
    """Where GLC20 test manifest `test` is labelled with land-cover codes of a region whose codes labeled manifest
    `train` lacks (study.datasets.glc20.landcover_scheme_clash), at its dataset's line as `_classes_problem`: what to
    build instead."""
    from study.datasets.glc20 import landcover_scheme_clash

    clash = landcover_scheme_clash(meta(train), meta(test), train, test)
    if clash is None:
        return None
    where, _ = _pair_at(plan, job, train, test)
    return (f"{where}: manifests {train} and {test} (the labeled and test sets of an evaluation) are of other "
            f"regions: {clash[0]}: {_delete(test)} and rebuild it with --split {clash[1]} --classes-from {train} (or "
            f"pair {test} with a train manifest of its own region)")


def _pair_at(plan: Plan, job: Job, train: str, test: str) -> tuple[str, DatasetSpec | None]:
    """Where to name a problem of an evaluation's labeled and test manifests: its dataset's `datasets:` line, and
    that dataset, where they are its own (one problem however many entries score it); else the job's test_manifest
    setting, and None."""
    ds = plan.grid.datasets.get(job.axes.get("eval_dataset"))
    if ds is not None and ds.train == train and ds.test == test:
        return f"{plan.path}:{ds.line}", ds
    return setting_at(plan, job, "test_manifest"), None


def _classes_problem(plan: Plan, job: Job, train: str, test: str, meta) -> str:
    """Why an evaluation's labeled and test manifests of other classes fail, at its dataset's `datasets:` line (one
    problem however many entries score it) where they are that dataset's, and what to build: the test split again
    with --classes-from, or, where the two share no class (another dataset's test manifest), the right one."""
    a, b = meta(train)["class_names"], meta(test)["class_names"]
    where, ds = _pair_at(plan, job, train, test)
    head = f"{where}: manifests {train} and {test} (the labeled and test sets of an evaluation) have different classes"
    if not set(a) & set(b):
        named = f"datasets.{ds.key}.test" if ds is not None else "the evaluation's test manifest"
        return (f"{head}, not one in common (e.g. {a[0]} and {b[0]}): {test} is another dataset's test split? Make "
                f"{named} this dataset's own, built with --classes-from {train}")
    only = sorted(set(a) ^ set(b))
    return (f"{head} ({len(a)} vs {len(b)}" + (f"; in one only: {', '.join(only[:5])}" if only else
                                              "; in another order") + ")"
            + f": {_delete(test)} and rebuild it with --classes-from {train}"
            + ("" if set(b) <= set(a) else " --drop-other-classes (its images of classes the labeled set lacks "
                                           "are then left out, as no probe could name them)"))


def _granularity_problems(plan: Plan, job: Job, meta, tables: _TableReads) -> list[str]:
    """A granularity job's levels: given or in the test manifest's taxonomy, coarse -> fine, columns of both
    manifests, which agree on the classes' taxonomy down to them."""
    sec = job.config["evaluate"]
    train, test = sec.get("train_manifest"), sec.get("test_manifest")
    levels = sec.get("levels") or meta(test).get("levels") or []
    where = setting_at(plan, job, "levels")
    problems = [None if levels else _without_taxonomy(where, train, test, meta),
                _levels_out_of_order(where, levels, test, meta)]
    not_columns = _levels_not_columns(where, levels, [train, test], meta, tables)
    problems += not_columns
    if train and test and train != test and not any(not_columns):
        problems.append(_taxonomy_clash_problem(where, levels, train, test, meta, tables))
    return [msg for msg in problems if msg]


def _without_taxonomy(where: str, train: str | None, test: str, meta) -> str:
    """Granularity on a test manifest without taxonomy levels (none given either): which manifests to build again
    with --taxonomy (a train manifest that has its taxonomy already is left as it is: rebuilding it would change
    nothing)."""
    names = [test] + ([train] if train and train != test and not meta(train).get("levels") else [])
    alone = len(names) == 1 and train and train != test
    return (f"{where}: granularity on manifest {test}, which has no taxonomy levels: "
            f"build {' and '.join(names)} again with " + (f"{train}'s" if alone else "the same")
            + " --taxonomy FILE (a CSV of the levels coarse -> fine, then the class name; README.md, "
            "\"Your own image folders\")" + (f" and --classes-from {train}" if alone else "")
            + ", after you " + ", and ".join(_delete(n) for n in names))


# iNat21's `supercategory` (Plants, Insects, Birds, ...: 11 groups) is no level of its taxonomy's tree, but each class
# falls in one and each falls in one kingdom: it sits between them, beside the phylum
SUPERCATEGORY, SUPERCATEGORY_BELOW, SUPERCATEGORY_ABOVE = "supercategory", "kingdom", "class"


def _levels_out_of_order(where: str, levels: list[str], test: str, meta) -> str | None:
    """The levels of the test manifest's taxonomy among `levels` not listed coarse -> fine (as it runs); else
    `supercategory` listed before the kingdom or after the class (the report would draw it, and its findings read
    it, at another place than its own)."""
    taxonomy = [*(meta(test).get("levels") or []), "class_name"]  # coarse -> fine; the labels finest
    ranked = [lv for lv in levels if lv in taxonomy]
    if ranked == sorted(ranked, key=taxonomy.index):
        return _supercategory_out_of_place(where, levels, taxonomy)
    return (f"{where}: granularity levels run coarse -> fine, as the taxonomy of "
            f"manifest {test} does ({', '.join(dict.fromkeys(taxonomy))}); list them as "
            f"[{', '.join(sorted(ranked, key=taxonomy.index))}] (the report draws them in the order given)")


def _supercategory_out_of_place(where: str, levels: list[str], taxonomy: list[str]) -> str | None:
    """`supercategory` in `levels` before the kingdom or after any level from the class down (`taxonomy`: the test
    manifest's levels, coarse -> fine), said; else None."""
    if SUPERCATEGORY not in levels or SUPERCATEGORY_BELOW not in taxonomy or SUPERCATEGORY_ABOVE not in taxonomy:
        return None
    at, finer = levels.index(SUPERCATEGORY), taxonomy[taxonomy.index(SUPERCATEGORY_ABOVE):]
    if SUPERCATEGORY_BELOW not in levels[at:] and not any(lv in finer for lv in levels[:at]):
        return None
    ranked = [lv for lv in levels if lv != SUPERCATEGORY]
    cut = next((i for i, lv in enumerate(ranked) if lv in finer), len(ranked))
    return (f"{where}: granularity level {SUPERCATEGORY} (iNat21's groups: Plants, Insects, Birds, ...) is coarser "
            f"than the {SUPERCATEGORY_ABOVE} and finer than the {SUPERCATEGORY_BELOW}: list it between them, "
            f"[{', '.join([*ranked[:cut], SUPERCATEGORY, *ranked[cut:]])}] (the report draws levels in the order "
            f"given, and reads the last as the finest)")


def _levels_not_columns(where: str, levels: list[str], names: list[str | None], meta,
                        tables: _TableReads) -> list[str]:
    """The levels that are no column of each manifest of `names` (none where it has no table to read: the job will
    say so), one problem for the manifests that lack the same levels and have the same taxonomy (a misspelt level:
    one line, not one per manifest)."""
    found: dict[tuple, list[str]] = {}
    for name in dict.fromkeys(n for n in names if n):
        have_columns = tables.columns(name)
        missing = [lv for lv in levels if have_columns is not None and lv not in have_columns]
        if missing:
            have = list(dict.fromkeys([*(meta(name).get("levels") or []), "class_name"]))
            found.setdefault((tuple(missing), tuple(have)), []).append(name)
    return [f"{where}: granularity levels {list(missing)} are not columns of manifest{'s' * (len(lacking) > 1)} "
            f"{' and '.join(lacking)} ({'their' if len(lacking) > 1 else 'its'} taxonomy levels: {', '.join(have)})"
            for (missing, have), lacking in found.items()]


def _taxonomy_clash_problem(where: str, levels: list[str], train: str, test: str, meta,
                            tables: _TableReads) -> str | None:
    """A class whose taxonomy differs between manifests `train` and `test` down to the deepest of `levels`: the job
    tells a level's value by its path (the coarser levels too), from both manifests' rows (the test manifest's
    taxonomy down to the level; granularity.level_path; a level not of it, class_name, alone)."""
    own = list(meta(test).get("levels") or [])
    wanted = [lv for lv in levels if lv in own]
    path = [lv for lv in own[:max(map(own.index, wanted)) + 1] if lv != "class_name"] if wanted else []
    clash = tables.taxonomy_clash(train, test, tuple(path)) if path else None
    if not clash:
        return None
    name, level, a, b = clash
    return (f"{where}: class {name!r} has {level} {a!r} in manifest {train} but "
            f"{b!r} in {test}: granularity would map its predictions up another taxonomy; "
            f"{_delete(test)} and rebuild it " + _rebuild_with_taxonomy_of(train, meta))


def _rebuild_with_taxonomy_of(train: str, meta) -> str:
    """How to rebuild a test manifest with the taxonomy of manifest `train`: with its --taxonomy FILE where a CSV gave
    it one (a source of role `taxonomy`), else (a reader's own annotations: iNat21's categories) from annotation files
    of the release `train` was built from, as --taxonomy would replace that taxonomy, not restore it."""
    sources = [s for s in meta(train).get("sources") or [] if isinstance(s, dict)]
    if any(s.get("role") == "taxonomy" for s in sources):
        return f"with {train}'s --taxonomy FILE and --classes-from {train}"
    files = ", ".join(str(s["path"]) for s in sources if s.get("path"))
    reader = meta(train).get("dataset")
    return (f"with --classes-from {train}, from annotation files whose categories give its taxonomy (the "
            + (f"{reader} " if reader else "") + "release " + (f"of its {files}" if files else "it was built from")
            + "; the taxonomy is read from them: no --taxonomy FILE gave it one)")


def one_value_level_warnings(plan: Plan, meta) -> list[str]:
    """Each granularity level with a single value among its test manifest's rows (a value told by its path, as the
    job tells it), at the line of the jobs' `levels`, with how many jobs score it: every prediction maps up to that
    value, so its accuracy is 1.0 whatever the encoder (the report's figures show such a level, its findings skip
    it)."""
    from study.evaluate.granularity import level_path

    tables, seen = _TableReads(), {}
    for job in plan.by_stage("evaluate"):
        sec = job.config["evaluate"]
        test = sec.get("test_manifest")
        if sec.get("protocol") != "granularity" or not test:
            continue
        taxonomy = list(meta(test).get("levels") or [])
        for level in sec.get("levels") or taxonomy:
            value = tables.single_value(test, tuple(level_path(taxonomy, level)))
            if value is not None:
                seen.setdefault((setting_at(plan, job, "levels"), test, level, value), []).append(job)
    return [f"{where}: granularity level {level} has one value in manifest {test} ({value!r}): every prediction "
            f"maps up to it, so its accuracy is 1.0 whatever the encoder ({len(jobs)} job(s), e.g. "
            f"{describe(jobs[0])}); drop it from `levels`, or test on a manifest that spans several"
            for (where, test, level, value), jobs in seen.items()]


def corrupted_evaluation_warnings(plan: Plan, meta) -> list[str]:
    """Each corrupted variant an evaluation reads (a dataset's `train`, its probes' labeled images, or its `test`),
    once per dataset and manifest, at the dataset's line: the paper's probes train and test on clean images, and the
    report tells a cell's corruption by its pretraining's alone (the `corruption` axis), so it draws these as
    evaluations on clean images (each job records `train_corruption` and `eval_corruption`)."""
    seen: dict[tuple[str, str, str], list[Job]] = {}
    for job in plan.by_stage("evaluate"):
        sec = job.config["evaluate"]
        for key, role in (("train_manifest", "train"), ("test_manifest", "test")):
            name = sec.get(key)
            if name and meta(name).get("corruption"):
                ds = plan.grid.datasets.get(job.axes.get("eval_dataset"))
                where = f"{plan.path}:{ds.line}: datasets.{ds.key}.{role}" if ds is not None else \
                    f"{setting_at(plan, job, key)}: evaluate.{key}"
                seen.setdefault((where, role, name), []).append(job)
    out = []
    for (where, role, name), jobs in seen.items():
        have = meta(name)
        clean = (have.get("base") or {}).get("name") or "its clean base"
        what = "train their probes on" if role == "train" else "score"
        out.append(f"{where} {name} is a corrupted variant ({have['corruption']}): {len(jobs)} evaluation(s) (e.g. "
                   f"{describe(jobs[0])}) {what} corrupted images, where the paper's probes train and test on clean "
                   f"ones, and the report draws them as evaluations on clean images (its corruption is the "
                   f"pretraining's); name the clean manifest ({clean}) there, unless corrupted evaluation is meant")
    return out


def whole_size_twice_warnings(plan: Plan, meta) -> list[str]:
    """Each pretraining size that is every image of its manifest where the grid also plans size `all` beside it
    (the same method, dataset, corruption, seed and settings): two jobs, under two ids, of the same images, drawn as
    two lines of one dataset."""
    whole = {_without_size(j): j for j in plan.by_stage("pretrain") if j.axes.get("size") is None}
    seen: dict[tuple[str, int, str], list[Job]] = {}
    for job in plan.by_stage("pretrain"):
        size, name = job.axes.get("size"), job.config["pretrain"].get("manifest")
        if is_int(size) and name and _without_size(job) in whole and size == meta(name)["num_images"]:
            seen.setdefault((value_at(plan.grid, "size", size, job.axes), size, name), []).append(job)
    return [f"{where}: pretraining size {format_count(size)} is every image of manifest {name}, as size `all` beside "
            f"it is ({len(jobs)} job(s), e.g. {describe(jobs[0])}): two jobs of the same images, two lines of one "
            f"dataset in the report; drop one of the two sizes"
            for (where, size, name), jobs in seen.items()]


def _without_size(job: Job) -> str:
    """A pretraining job's axes and section but its size: what two jobs of one data at two spellings share."""
    axes = {k: v for k, v in job.axes.items() if k != "size"}
    return canonical_json({"axes": axes, "pretrain": {k: v for k, v in job.config["pretrain"].items() if k != "size"}})


class _TableReads:
    """The reads of manifest tables one check makes, each once (a later check reads a rebuilt manifest anew)."""

    def __init__(self) -> None:
        from study.manifests.store import table_columns

        self.columns = functools.cache(table_columns)  # what a granularity job may name: any column of the table
        self.taxonomy_clash = functools.cache(_taxonomy_clash)
        self.single_value = functools.cache(_single_value)


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


def _single_value(name: str, path: tuple[str, ...]) -> str | None:
    """The one value (its path's last column) that manifest `name` holds at `path`; None when it holds several, or
    its table lacks a column or is unreadable (the other checks, or the job, say so)."""
    from study.manifests.store import read_arrow

    try:
        distinct = read_arrow(name, columns=list(path)).group_by(list(path)).aggregate([])
    except (StudyError, KeyError, ValueError):
        return None
    return str(distinct[path[-1]][0].as_py()) if distinct.num_rows == 1 else None


# a dataset's count that feeds the estimate: (its key, the manifest it is of: `train` or `test`, what counts it)
COUNT_HINTS = (("train_images", "train", "images"), ("test_images", "test", "images"), ("classes", "train", "classes"))


def _manifest_counts(ds: DatasetSpec, meta) -> list[tuple[str, int | None, str, int, str]]:
    """(key, the grid's value or None, manifest, its count, unit) of each of COUNT_HINTS whose manifest is here
    (metadata validated on load: `num_images` and `class_names` are there)."""
    out = []
    for what, side, unit in COUNT_HINTS:
        name = getattr(ds, side)
        if name and manifest_present(name):
            m = meta(name)
            out.append((what, getattr(ds, what), name, m["num_images"] if unit == "images" else len(m["class_names"]),
                        unit))
    return out


def cost_hint_notes(plan: Plan, meta) -> list[str]:
    """A note for each dataset's `train_images`, `test_images` or `classes` that its manifest contradicts: they feed
    only the estimate (a paper grid copied to a small dataset would keep iNat21's millions), so they are not
    problems, but the estimate counts the grid's number, not the manifest's."""
    return [f"datasets.{key}.{what} is {hint}, but manifest {name} has {have} {unit}: the estimate counts the grid's "
            f"number" for key, ds in plan.grid.datasets.items()
            for what, hint, name, have, unit in _manifest_counts(ds, meta) if hint is not None and have != hint]


def counts_from_manifests(plan: Plan, meta) -> tuple[Any, list[str]]:
    """The plan's grid with each dataset's `train_images`, `test_images` and `classes` that the grid leaves out read
    from its manifests (a manifest not here: left out still), and a note per dataset so filled that the plan's jobs
    use (a pool's sources too are filled); the grid itself and no note where there is none to fill. They feed only
    the estimate, which counts defaults without them."""
    from dataclasses import replace

    datasets, notes = dict(plan.grid.datasets), []
    used = {j.axes.get(axis) for j in plan.jobs for axis in ("dataset", "eval_dataset")}  # (--where: its jobs')
    for key, ds in plan.grid.datasets.items():
        # a manifest's count of 0 (no class names): the estimate's default, noted
        filled = {what: have for what, hint, _, have, _ in _manifest_counts(ds, meta) if hint is None and have > 0}
        if filled:
            datasets[key] = replace(ds, **filled)
        if filled and key in used:
            notes.append(f"datasets.{key}: {', '.join(f'{k} {v:,}' for k, v in filled.items())} counted from its "
                         f"manifests (the grid gives none)")
    return (replace(plan.grid, datasets=datasets) if datasets != plan.grid.datasets else plan.grid), notes


def roots_not_here(plan: Plan, meta) -> list[str]:
    """Each manifest whose recorded root (a pool's: each source's) is not a folder on this machine, said: a job that
    cannot read it stops at its first image, after the jobs it waits for. A manifest records its root when it is made
    (a corrupted variant or a pool: its base's or sources' roots of that moment), so after the dataset moved it is
    made again, not only its base."""
    from study.manifests import store
    from study.manifests.rebuild import build_command

    lines, commands = manifest_lines(plan), plan.manifests()
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
                  f"build it again at the dataset's new place with the options it was built with (the content hash, "
                  f"so each result and checkpoint on it, stays the same only with them; the grid's sizes alone, as "
                  f"`study plan` suggests once it is gone, give another):\n    {build_command(m)}\n  before deleting "
                  f"it: the build says \"the same content under another root\" where only the root moved (else it "
                  f"names what differs); then {_delete(name)} and run the build again")
        out.append(f"{where}: manifest {name} reads its images under {', '.join(gone)}, which is not a folder here "
                   f"(the dataset moved, or is not mounted on this machine): a job that cannot read it stops at its "
                   f"first image; if it moved, {remedy}")
    return out


def _test_images_among_labeled(plan: Plan, meta) -> list[str]:
    """Each (train, test) manifest pair of an evaluation where test images are among the labeled images its jobs
    train on (one root, one relative path: e.g. an image folder without split folders, which gives every --split
    the whole tree): the job refuses it (study.evaluate.run), after its encoders' pretraining."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from study.datasets.base import shared_files_remedy
    from study.manifests.store import manifest_paths

    largest: dict[tuple[str, str], tuple[int, Job]] = {}  # (train, test) -> the most labeled images a job takes
    for job in plan.by_stage("evaluate"):
        sec = job.config["evaluate"]
        train, test = sec.get("train_manifest"), sec.get("test_manifest")
        if not train or not test:
            continue
        root = meta(train).get("root")
        derived = meta(train).get("base") or meta(test).get("base")  # a corrupted variant lists its base's files
        if not (shared_files_remedy(meta(train).get("dataset")) or derived) or not root \
                or root != meta(test).get("root"):
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
        where = f"{plan.path}:{ds.line}" if ds is not None else setting_at(plan, job, "test_manifest")
        out.append(f"{where}: {len(shared)} of the {len(test_paths)} test images of manifest {test} are among the "
                   f"{n} labeled images of {train} an evaluation trains on (e.g. {meta(train)['root']}/{shared[0]}): "
                   f"it would score images it trained on, and stops on them after its pretraining; "
                   + _shared_images_remedy(meta(train), meta(test)))
    return out


def _shared_images_remedy(train: dict, test: dict) -> str:
    """What to do about a test manifest that shares images with the labeled one (their metadata): where both are one
    manifest's images (a corrupted variant lists its base's), a test manifest of another split; else the reader's
    remedy (study.datasets.base.shared_files_remedy)."""
    from study.datasets.base import shared_files_remedy

    def clean(m: dict) -> str | None:
        return (m.get("base") or {}).get("name") or m.get("name")

    variant = test if test.get("base") else train
    if variant.get("base") and clean(train) == clean(test):
        return (f"manifest {variant.get('name')} is a corrupted variant of {clean(variant)}, whose images it lists: "
                f"test on a manifest of another split (the paper's probes train and test on clean images)")
    return shared_files_remedy(train.get("dataset")) or "build the test manifest from another split"


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
    elif manifest_present(train) and base.get("content_hash") != meta(train).get("content_hash"):
        why = f"{train} has been rebuilt since it was made"
    if why is None:
        return None
    return (f"{value_at(plan.grid, 'corruption', spec, job.axes)}: manifest {name} is meant to be {train} "
            f"corrupted by {spec}, but {why}; {_delete(name)} and make it again:\n    "
            f"{plan.manifests().get(name, '')}")


def pool_shares_beyond_sources(plan: Plan, name: str) -> str | None:
    """For a pool `name` not made yet, or made otherwise than its `pool:` says: each `pool:` share larger than its
    source's train manifest (one that exists), which `study manifest pool` would refuse, at the grid's `pool:` line;
    else None."""
    from study.manifests.store import load_meta

    short = []
    for ds in plan.grid.datasets.values():
        if not ds.pooled or ds.train != name:
            continue
        for src, n in ds.pool:
            source = str(plan.grid.datasets[src].train)
            if manifest_present(source) and n > (have := load_meta(source)["num_images"]):
                short.append(f"{plan.path}:{ds.pool_line or ds.line}: datasets.{ds.key}.pool.{src}: "
                             f"{count_text(n)} images asked of manifest {source}, which has {have}; pool at most "
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
                       if manifest_present(name) and s.get("content_hash") != meta(name).get("content_hash")]
            if rebuilt:
                why = f"{', '.join(rebuilt)} {'has' if len(rebuilt) == 1 else 'have'} been rebuilt since it was made"
    if why is None:
        return None
    short = pool_shares_beyond_sources(plan, ds.train)  # remaking it as the grid says would itself be refused
    if short:
        return short
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
