"""The grid file's schema: `load_grid(path) -> Grid`, typed and validated once, every error as `file:line: ...`.

The full schema, with examples, is documented in grids/README.md. In short:

    name, description
    datasets:  {key: {train, test, reader, pool, train_images, test_images, classes}}  # data only through manifests
    defaults:  {pretrain: {...PretrainConfig fields}, evaluate: {...EvalConfig fields}}
    axes:      {method|backbone|dataset|size|corruption|seed: [values]}        # cartesian product
    seeds:     [0, 1, 2]                                                       # the `seed` axis, spelled apart
    zip:       [[dataset, size], ...]                                          # axes that move together
    exclude:   [{axis: value | [values]}, ...]                                 # removed from the product
    include:   [{axis: value | [values]}, ...]                                 # added after exclusion
    stages:
      pretrain: {resources: {gpus, cpus, mem, time, nodes}}
      evaluate: [{protocol, where, eval_datasets, labeled_sizes, levels, pairs, params, resources,
                  split_labeled_sizes, variant}, ...]
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.configfields import is_int, plain
from study.counts import format_count, parse_count, parse_labeled_size
from study.errors import StudyError
from study.evaluate.protocols import PROTOCOLS, names_where  # those a `stages.evaluate` entry may name
from study.evaluate.protocols import protocol as protocol_of
from study.grids.profile import STAGES
from study.grids.yamlio import YList, YMap, check_keys, did_you_mean, fail, load_yaml
from study.registry import MANIFEST_NAME_RULE, NAME_RE, is_manifest_name

PRETRAIN_AXES = ("method", "backbone", "dataset", "size", "corruption", "seed")
EVAL_AXES = ("protocol", "eval_dataset")
AXES = PRETRAIN_AXES + EVAL_AXES
TOP_KEYS = ("name", "description", "datasets", "defaults", "axes", "seeds", "zip", "include", "exclude", "stages")
ANCHOR_PREFIX = "x-"  # top-level keys read by nothing: a place for YAML anchors (`x-probe: &probe {...}`)
DATASET_KEYS = ("train", "test", "reader", "pool", "train_images", "test_images", "classes")
ENTRY_KEYS = ("protocol", "where", "eval_datasets", "labeled_sizes", "levels", "pairs", "params", "resources",
              "split_labeled_sizes", "variant")
VARIANT_AXIS = "variant"  # an evaluate entry's `variant`: an axis of its jobs only when set (job ids unchanged)
# a grid's name: a file name (`ledgers/<name>.jsonl`, `reports/<name>`) and part of each Slurm array's job name and
# folder, which go unquoted into sbatch headers and `--output` patterns (`%` is a pattern there, `,` a list in `--name`)
GRID_NAME_MAX = 100
# keys the planner sets itself (from axes and datasets): a grid may not set them in defaults or params
PLANNER_PRETRAIN_KEYS = ("manifest",)
PLANNER_EVAL_KEYS = ("protocol", "train_manifest", "test_manifest")
# axes that defaults.pretrain may give a single value of (an axis not in `axes`); `dataset` comes from `axes` only
DEFAULT_AXES = ("method", "backbone", "size", "corruption", "seed")
ALL = "all"  # a labeled size: every row of the train manifest (EvalConfig's default)
EVAL_DATASET_WORDS = ("same", "all")  # an entry's `eval_datasets` as one word: its encoders' datasets, or every one


@dataclass(frozen=True)
class DatasetSpec:
    """One domain key: its train manifest (pretraining and labeled subsets) and test manifest (evaluation)."""

    key: str
    train: str | None
    test: str | None
    reader: str | None  # the `study manifest build --dataset` reader, for the build hint
    pool: tuple[tuple[str, int], ...]  # pooled set: (dataset key, images taken from it)
    train_images: int | None
    test_images: int | None
    line: int
    pool_line: int | None = None  # the line of `pool:`
    classes: int | None = None  # only for the cost estimate (linear probes grow with labeled rows x classes)

    @property
    def pooled(self) -> bool:
        return bool(self.pool)


@dataclass(frozen=True)
class Matcher:
    """`{axis: value | [values]}`: matches a point whose every named axis takes one of the listed values."""

    conditions: tuple[tuple[str, tuple[Any, ...]], ...]
    line: int

    def matches(self, axes: dict[str, Any]) -> bool:
        return all(axes.get(axis) in values for axis, values in self.conditions)

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(a for a, _ in self.conditions)

    def describe(self) -> str:
        """The rule as a grid writes it, for messages: `{method: supervised, size: [50k, 5k]}`."""
        return "{" + ", ".join(f"{a}: " + (value_text(a, v[0]) if len(v) == 1 else
                                           f"[{', '.join(value_text(a, x) for x in v)}]")
                               for a, v in self.conditions) + "}"


def value_text(axis: str, value: Any, quoted: bool = False) -> str:
    """An axis value as a grid file spells it, for messages: a size as a count (`50k`; a whole dataset's, `all`);
    another axis's value as it is, or with `quoted` as Python quotes it (`'simclr'`)."""
    if axis == "size" and (value is None or isinstance(value, int)):
        return ALL if value is None else format_count(value)
    return str(value) if axis == "size" or not quoted else repr(value)


@dataclass(frozen=True)
class EvalEntry:
    """One item of `stages.evaluate`: which pretraining jobs, on which datasets, with which protocol."""

    protocol: str
    where: Matcher
    eval_datasets: str | tuple[str, ...]  # "same" | "all" | explicit keys
    labeled_sizes: tuple[int | str, ...] | None  # counts, or "all" (the whole train manifest)
    levels: tuple[str, ...] | str | None  # granularity: list or "all"
    pairs: tuple[tuple[Matcher, Matcher], ...]  # concat
    params: dict[str, Any]
    resources: YMap
    split_labeled_sizes: bool
    line: int
    index: int
    param_lines: dict[str, int] = field(default_factory=dict)  # params' keys (dotted: nested; labeled_sizes, levels)
    variant: str | None = None  # tells this entry's results apart from another's with the same axes


@dataclass(frozen=True)
class Grid:
    """A validated grid file. Lines are kept so that later checks can still name `file:line`."""

    path: str
    name: str
    description: str
    datasets: dict[str, DatasetSpec]
    defaults_pretrain: dict[str, Any]
    defaults_evaluate: dict[str, Any]
    axes: dict[str, tuple[Any, ...]]  # declared axes in file order, values normalised
    axis_lines: dict[str, tuple[int, tuple[int, ...]]]  # axis -> (line of the key, line of each value)
    zip: tuple[tuple[str, ...], ...]
    include: tuple[Matcher, ...]
    exclude: tuple[Matcher, ...]
    pretrain_resources: YMap
    evaluate: tuple[EvalEntry, ...]
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line
    defaults_lines: dict[str, dict[str, int]] = field(default_factory=dict)  # pretrain/evaluate -> (dotted) key -> line


def value_line(grid: Grid, axis: str, value: Any, point: dict[str, Any] | None = None) -> int | None:
    """The line where `value` of `axis` was written: the include rule that made `point` (a job's axes) when one
    did, else the axes, an include rule naming the value, or the defaults."""
    if point is not None:
        for m in grid.include:
            if axis in m.axes and m.matches(point):
                return m.line
    if axis in grid.axes and value in grid.axes[axis]:
        return grid.axis_lines[axis][1][grid.axes[axis].index(value)]
    for m in grid.include:
        if value in dict(m.conditions).get(axis, ()):
            return m.line
    return grid.defaults_lines.get("pretrain", {}).get(axis) or grid.lines.get("defaults")


def normalise_axis_value(axis: str, v: Any) -> Any:
    """The canonical value of `axis` (ValueError if it cannot be one): a size an int (None for `all`), a seed an int,
    a corruption its canonical spelling (`none` for null or false), any other axis a non-empty string."""
    if axis == "size":
        if v is None or v == "all":
            return None
        return parse_count(v, minimum=1)
    if axis == "seed":
        if not is_int(v) or not 0 <= v < 2**32:
            raise ValueError(f"expected an integer seed in [0, 2**32) (numpy's seeds), got {v!r}")
        return v
    if axis == "corruption":
        if v is None or v is False:
            return "none"
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"expected a corruption spec such as none or downsample:factor=2, got {v!r}")
        return canonical_corruption(v.strip())
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a name, got {v!r}")
    return v


def _quote_hint(v: Any) -> str:
    """For a value YAML read as true/false (`no`, `off`, `NO`): how to write it as text."""
    return " (YAML reads unquoted yes/no/on/off as true/false: quote the name)" if isinstance(v, bool) else ""


@functools.cache
def parsed_corruption(text: str) -> Any:
    """`study.corruptions.parse_corruption(text)`, once per spelling (a grid names a few over thousands of jobs);
    StudyError for an unknown corruption (not kept: a corruption registered later parses)."""
    from study.corruptions import parse_corruption

    return parse_corruption(text)


def canonical_corruption(text: str) -> str:
    """The canonical spelling of a corruption spec (`jpeg` -> `jpeg:quality=10`), so that two spellings of one
    corruption make one job. ValueError naming the closest corruption for an unknown one."""
    try:
        return str(parsed_corruption(text))
    except StudyError as e:
        raise ValueError(str(e).removeprefix("corruption: ")) from None


def load_grid(path: str | Path) -> Grid:
    """Read and validate the grid in `path`."""
    p = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, YMap):
        raise fail(p, getattr(raw, "line", 1), "a grid must be a mapping")
    anchors = tuple(k for k in raw if isinstance(k, str) and k.startswith(ANCHOR_PREFIX))
    check_keys(p, raw, TOP_KEYS + anchors, required=("name", "datasets", "stages"))
    name = raw["name"]
    if not (isinstance(name, str) and NAME_RE.fullmatch(name) and len(name) <= GRID_NAME_MAX):
        raise fail(p, raw.line_of("name"), f"name: expected a word of at most {GRID_NAME_MAX} letters, digits, '_', "
                                           f"'-', '.' (a letter or digit first), got {name!r}" + _quote_hint(name))
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise fail(p, raw.line_of("description"), "description: expected a string")

    datasets = _datasets(p, raw)
    defaults = raw.get("defaults") or YMap()
    if not isinstance(defaults, YMap):
        raise fail(p, raw.line_of("defaults"), "defaults: expected a mapping with 'pretrain' and/or 'evaluate'")
    check_keys(p, defaults, STAGES, what="defaults section")
    d_pre = _section(p, defaults, "pretrain", PLANNER_PRETRAIN_KEYS, "defaults.pretrain")
    d_eval = _section(p, defaults, "evaluate", PLANNER_EVAL_KEYS, "defaults.evaluate")
    axes, axis_lines = _axes(p, raw, datasets)
    _default_axes(p, defaults.get("pretrain"), axes)
    zip_groups = _zip(p, raw, axes)
    exclude = tuple(_matchers(p, raw, "exclude", datasets, PRETRAIN_AXES))
    include = tuple(_matchers(p, raw, "include", datasets, PRETRAIN_AXES))
    _include_whole_zip_groups(p, include, zip_groups)
    pre_res, evaluate = _stages(p, raw, datasets)

    if "method" not in axes and "method" not in d_pre:
        raise fail(p, raw.line_of("axes"), "no method: give axes.method or defaults.pretrain.method")
    if "dataset" not in axes:
        raise fail(p, raw.line_of("axes"), "no dataset: give axes.dataset (keys of 'datasets')")
    return Grid(path=p, name=name, description=description, datasets=datasets, defaults_pretrain=d_pre,
                defaults_evaluate=d_eval, axes=axes, axis_lines=axis_lines, zip=zip_groups, include=include,
                exclude=exclude, pretrain_resources=pre_res, evaluate=evaluate,
                lines={k: raw.line_of(k) for k in raw},
                defaults_lines={k: _key_lines(defaults.get(k)) for k in STAGES})


# ---------------------------------------------------------------------------------------------------- parts
def _include_whole_zip_groups(p: str, include: tuple[Matcher, ...], zip_groups: tuple[tuple[str, ...], ...]) -> None:
    """Refuse an include rule that names some axes of a zip group but not all: they move together."""
    for m in include:
        for group in zip_groups:
            named = [a for a in group if a in m.axes]
            if named and len(named) != len(group):
                missing = [a for a in group if a not in m.axes]
                raise fail(p, m.line, f"include names {', '.join(map(repr, named))} but not "
                                      f"{', '.join(map(repr, missing))}, which move(s) with it (zip)")


def _stages(p: str, raw: YMap, datasets: dict[str, DatasetSpec]) -> tuple[YMap, tuple[EvalEntry, ...]]:
    """The grid's `stages`: the pretraining stage's `resources` (checked by resolve_resources, per job) and each
    `stages.evaluate` entry (`_entry`)."""
    stages = raw["stages"]
    if not isinstance(stages, YMap):
        raise fail(p, raw.line_of("stages"), "stages: expected a mapping with 'pretrain' and 'evaluate'")
    check_keys(p, stages, STAGES, what="stage")
    pre = stages.get("pretrain") or YMap()
    if not isinstance(pre, YMap):
        raise fail(p, stages.line_of("pretrain"), "stages.pretrain: expected a mapping with 'resources'")
    check_keys(p, pre, ("resources",))
    pre_res = pre.get("resources") or YMap()
    if not isinstance(pre_res, YMap):
        raise fail(p, pre.line_of("resources"), "stages.pretrain.resources: expected a mapping")
    entries = stages.get("evaluate") or YList()
    if not isinstance(entries, YList):
        raise fail(p, stages.line_of("evaluate"), "stages.evaluate: expected a list of evaluation entries")
    return pre_res, tuple(_entry(p, entries, i, datasets) for i in range(len(entries)))


def _section(p: str, defaults: YMap, key: str, planner_keys: tuple[str, ...], where: str) -> dict[str, Any]:
    sec = defaults.get(key)
    if sec is None:
        return {}
    if not isinstance(sec, YMap):
        raise fail(p, defaults.line_of(key), f"{where}: expected a mapping of settings")
    for k in planner_keys:
        if k in sec:
            raise fail(p, sec.line_of(k), f"{where}.{k}: set by the planner from 'datasets' and the axes; remove it")
    own = _entry_key(sec) if key == "evaluate" else None
    if own is not None:
        raise fail(p, sec.line_of(own), f"{where}.{own}: a key of each stages.evaluate entry, not an evaluation "
                                        f"setting: give it on the entries it is for")
    out = plain(sec)
    if "labeled_sizes" in sec:
        out["labeled_sizes"] = list(_labeled_sizes(p, sec["labeled_sizes"], sec.line_of("labeled_sizes"),
                                                   f"{where}.labeled_sizes"))
    return out


def _entry_key(sec: YMap) -> str | None:
    """The first key of `sec` (an entry's `params`, `defaults.evaluate`) that only a `stages.evaluate` entry itself
    takes (`split_labeled_sizes`, `where`, `variant`...: ENTRY_KEYS that are no EvalConfig field), or None."""
    return next((k for k in sec if k in ENTRY_KEYS and k not in _eval_settings() and k not in PLANNER_EVAL_KEYS),
                None)


def _default_axes(p: str, sec: Any, axes: dict[str, tuple[Any, ...]]) -> None:
    """defaults.pretrain's axis keys: each value valid, at its own line; `dataset` refused (it is an axis of `axes`:
    a value here would be dropped without a word), as is a value the axes, which give every job's, do not take."""
    if not isinstance(sec, YMap):
        return
    if "dataset" in sec:
        raise fail(p, sec.line_of("dataset"), "defaults.pretrain.dataset: the dataset is an axis: give it as "
                                              "axes.dataset (keys of 'datasets'), not as a default")
    for axis in DEFAULT_AXES:
        if axis in sec:
            try:
                value = normalise_axis_value(axis, sec[axis])
            except ValueError as e:
                raise fail(p, sec.line_of(axis), f"defaults.pretrain.{axis}: {e}") from None
            if axis in axes and value not in axes[axis]:
                given = ", ".join("all" if v is None else str(v) for v in axes[axis])
                raise fail(p, sec.line_of(axis), f"defaults.pretrain.{axis}: {sec[axis]!r} is no job's: the "
                                                 f"{axis} axis gives every job's ({given}); remove it, or add it "
                                                 "to the axis")


def _key_lines(m: Any, prefix: str = "") -> dict[str, int]:
    """The line of each key of a parsed mapping, and of each key of the mappings under it as a dotted path
    (`finetune.optim.lr`) ({} for anything else)."""
    if not isinstance(m, YMap):
        return {}
    out: dict[str, int] = {}
    for k, v in m.items():
        out[f"{prefix}{k}"] = m.line_of(k)
        out.update(_key_lines(v, f"{prefix}{k}."))
    return out


def _datasets(p: str, raw: YMap) -> dict[str, DatasetSpec]:
    ds = raw["datasets"]
    if not isinstance(ds, YMap) or not ds:
        raise fail(p, raw.line_of("datasets"), "datasets: expected a mapping key -> {train, test}")
    out: dict[str, DatasetSpec] = {}
    for key, spec in ds.items():
        line = ds.line_of(key)
        if not isinstance(key, str) or not all(NAME_RE.fullmatch(part) for part in key.split("+")):
            raise fail(p, line, f"datasets: bad key {key!r} (a word of letters, digits and _ . -, a letter or digit "
                                "first: an axis value, as `--where dataset=` gives it; pooled sets join keys with '+')")
        if not isinstance(spec, YMap):
            raise fail(p, line, f"datasets.{key}: expected a mapping with 'train' and/or 'test' manifest names")
        check_keys(p, spec, DATASET_KEYS)
        vals: dict[str, Any] = {}
        for k in ("train", "test", "reader"):
            v = spec.get(k)
            if v is not None and (not isinstance(v, str) or not v):
                raise fail(p, spec.line_of(k), f"datasets.{key}.{k}: expected a name, got {v!r}" + _quote_hint(v))
            if k != "reader" and v is not None and not is_manifest_name(v):  # a file name, and a word of the
                # `study manifest` commands the check prints to be pasted into a shell
                raise fail(p, spec.line_of(k), f"datasets.{key}.{k}: bad manifest name {v!r} ({MANIFEST_NAME_RULE})")
            vals[k] = v
        if vals["reader"] is not None:
            from study.datasets import DATASETS

            if vals["reader"] not in DATASETS:  # it goes into the `study manifest build` command the plan prints
                raise fail(p, spec.line_of("reader"),
                           DATASETS.unknown_message(vals["reader"], f"datasets.{key}.reader"))
        if not vals["train"] and not vals["test"]:
            raise fail(p, line, f"datasets.{key}: give a 'train' and/or 'test' manifest name")
        for k in ("train_images", "test_images", "classes"):
            v = spec.get(k)
            try:
                vals[k] = None if v is None else parse_count(v, minimum=1 if k == "classes" else 0)
            except ValueError as e:
                raise fail(p, spec.line_of(k), f"datasets.{key}.{k}: {e}") from None
        pool: list[tuple[str, int]] = []
        raw_pool = spec.get("pool")
        if raw_pool is not None:
            if not isinstance(raw_pool, YMap) or len(raw_pool) < 2:
                raise fail(p, spec.line_of("pool"), f"datasets.{key}.pool: expected a mapping of two or more dataset "
                                                    "keys -> images taken, e.g. {imagenet: 250k, inat21: 250k}")
            for src, n in raw_pool.items():
                try:
                    pool.append((str(src), parse_count(n)))
                except ValueError as e:
                    raise fail(p, raw_pool.line_of(src), f"datasets.{key}.pool.{src}: {e}") from None
        out[key] = DatasetSpec(key=key, train=vals["train"], test=vals["test"], reader=vals["reader"],
                               pool=tuple(pool), train_images=vals["train_images"], test_images=vals["test_images"],
                               line=line, pool_line=spec.line_of("pool") if raw_pool is not None else None,
                               classes=vals["classes"])
    _check_pools(p, out)
    return out


def _check_pools(p: str, datasets: dict[str, DatasetSpec]) -> None:
    """Each pooled set as `study manifest pool` makes it: of other datasets' train manifests, none itself a pool nor
    named twice, its key their keys joined with '+' (and a key with '+' a pooled set)."""
    for spec in datasets.values():
        for src, _ in spec.pool:
            if src not in datasets:
                raise fail(p, spec.line, f"datasets.{spec.key}.pool: unknown dataset {src!r}"
                                         f"{did_you_mean(src, datasets)} (a key of 'datasets' with a train manifest)")
            if not datasets[src].train:
                raise fail(p, spec.line, f"datasets.{spec.key}.pool: dataset {src!r} has no train manifest to pool")
            if datasets[src].pooled:  # `study manifest pool` refuses a pool among its sources (itself included)
                raise fail(p, spec.pool_line or spec.line, f"datasets.{spec.key}.pool: {src!r} is itself a pool; "
                                                           f"pool its sources instead")
        seen: dict[str, str] = {}
        for src, _ in spec.pool:  # `study manifest pool` refuses a manifest named twice
            other = seen.setdefault(datasets[src].train, src)
            if other != src:
                raise fail(p, spec.pool_line or spec.line, f"datasets.{spec.key}.pool: {other!r} and {src!r} "
                                                           f"name one train manifest, {datasets[src].train!r}")
        sources = [src for src, _ in spec.pool]
        if not spec.pool and "+" in spec.key:
            raise fail(p, spec.line, f"datasets.{spec.key}: a key joined with '+' names a pooled set: give its "
                                     f"`pool: {{{', '.join(f'{k}: <images>' for k in spec.key.split('+'))}}}` (the "
                                     "images each source gives), or name the dataset without '+'")
        if spec.pool and sorted(spec.key.split("+")) != sorted(sources):  # the report reads a pool by its key
            raise fail(p, spec.line, f"datasets.{spec.key}: a pooled set's key joins its sources' keys with '+' "
                                     f"({'+'.join(sources)!r}): the report tells a pooled set, and what it pools, "
                                     "by that name")


def _value(p: str, axis: str, v: Any, line: int, datasets: dict[str, DatasetSpec], where: str) -> Any:
    """`v` as a value of `axis` (`normalise_axis_value`); an error names `where` (`axes.size[1]`) and the line."""
    try:
        value = normalise_axis_value(axis, v)
    except ValueError as e:
        raise fail(p, line, f"{where}: {e}") from None
    if axis == "dataset":
        if value not in datasets:
            raise fail(p, line, f"unknown dataset {value!r}{did_you_mean(value, datasets)} "
                                f"(known: {', '.join(datasets)})")
        if not datasets[value].train:
            raise fail(p, line, f"dataset {value!r} has no train manifest: it cannot be pretrained on")
    return value


def _axes(p: str, raw: YMap, datasets: dict[str, DatasetSpec]
          ) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[int, tuple[int, ...]]]]:
    """The grid's axes (`axes`, and `seeds` as the seed axis), each value normalised and none twice, and their lines
    (as Grid.axes and Grid.axis_lines hold them); a single value written without a list is a list of it."""
    axes: dict[str, tuple[Any, ...]] = {}
    lines: dict[str, tuple[int, tuple[int, ...]]] = {}
    raw_axes = raw.get("axes") or YMap()
    if not isinstance(raw_axes, YMap):
        raise fail(p, raw.line_of("axes"), "axes: expected a mapping axis -> list of values")
    check_keys(p, raw_axes, PRETRAIN_AXES, what="axis")
    items: list[tuple[str, Any, int, str]] = [(a, v, raw_axes.line_of(a), f"axes.{a}") for a, v in raw_axes.items()]
    if "seeds" in raw:
        if "seed" in raw_axes:
            raise fail(p, raw.line_of("seeds"), "seeds and axes.seed both given: keep one")
        items.append(("seed", raw["seeds"], raw.line_of("seeds"), "seeds"))
    for axis, values, line, key in items:
        one = not isinstance(values, YList)
        if one:
            values = YList.single(values, line)
        if not values:
            raise fail(p, line, f"axis {axis!r} has no values: it expands to zero jobs")
        norm = []
        for i, v in enumerate(values):
            value = _value(p, axis, v, values.line_of(i), datasets, key if one else f"{key}[{i}]")
            if value in norm:
                j = norm.index(value)  # another spelling of one value (`50000` and `50k`, `jpeg` and `jpeg:quality=10`)
                same = "" if values[j] == v else f" (the same as {values[j]!r}: both are {value!r})"
                raise fail(p, values.line_of(i), f"axis {axis!r}: value {v!r} listed twice{same}")
            norm.append(value)
        axes[axis] = tuple(norm)
        lines[axis] = (line, tuple(values.item_lines))
    return axes, lines


def _zip(p: str, raw: YMap, axes: dict[str, tuple[Any, ...]]) -> tuple[tuple[str, ...], ...]:
    groups = raw.get("zip")
    if groups is None:
        return ()
    if not isinstance(groups, YList) or not all(isinstance(g, YList) for g in groups):
        raise fail(p, raw.line_of("zip"), "zip: expected a list of lists of axis names, e.g. [[dataset, size]]")
    seen: set[str] = set()
    out = []
    for i, group in enumerate(groups):
        line = groups.line_of(i)
        if len(group) < 2:
            raise fail(p, line, "zip: a group needs two or more axes")
        for a in group:
            if not isinstance(a, str) or a not in axes:
                known = list(axes)
                raise fail(p, line, f"zip: {a!r} is not an axis of this grid{did_you_mean(a, known)} "
                                    f"(axes: {', '.join(known)})")
            if a in seen:
                raise fail(p, line, f"zip: axis {a!r} is in two groups")
            seen.add(a)
        lengths = {a: len(axes[a]) for a in group}
        if len(set(lengths.values())) != 1:
            raise fail(p, line, "zip: axes that move together need lists of one length; got "
                                + ", ".join(f"{a}: {n}" for a, n in lengths.items()))
        out.append(tuple(group))
    return tuple(out)


def _matcher(p: str, m: Any, line: int, datasets: dict[str, DatasetSpec], allowed: tuple[str, ...],
             where: str) -> Matcher:
    if m is None:
        return Matcher((), line)
    if not isinstance(m, YMap):
        raise fail(p, line, f"{where}: expected a mapping axis -> value or list of values")
    check_keys(p, m, allowed, what="axis")
    conds = []
    for axis, v in m.items():
        vals = v if isinstance(v, YList) else [v]
        if not vals:
            raise fail(p, m.line_of(axis), f"{where}.{axis}: an empty list matches nothing")
        vline = m.line_of(axis)
        key = f"{where}.{axis}"
        conds.append((axis, tuple(_value(p, axis, x, vline, datasets, f"{key}[{j}]" if isinstance(v, YList) else key)
                                  for j, x in enumerate(vals))))
    return Matcher(tuple(conds), m.line or line)


def _matchers(p: str, raw: YMap, key: str, datasets: dict[str, DatasetSpec], allowed: tuple[str, ...]
              ) -> list[Matcher]:
    items = raw.get(key)
    if items is None:
        return []
    if not isinstance(items, YList):
        raise fail(p, raw.line_of(key), f"{key}: expected a list of mappings axis -> value(s)")
    out = []
    for i, m in enumerate(items):
        if not m:
            raise fail(p, items.line_of(i), f"{key}: an empty rule")
        out.append(_matcher(p, m, items.line_of(i), datasets, allowed, f"{key}[{i}]"))
    return out


def _labeled_sizes(p: str, v: Any, line: int, where: str) -> tuple[int | str, ...]:
    """Labeled sizes: `all` (every row of the train manifest), or a list of counts (`all` among them), none twice;
    given in ascending order, `all` last, whatever their order in the file (one set of sizes is one job)."""
    if v == ALL:
        return (ALL,)
    if not isinstance(v, YList) or not v:
        raise fail(p, line, f"{where}: expected all or a non-empty list of counts such as [10k, 50k]")
    out: list[int | str] = []
    for i, x in enumerate(v):
        try:
            n = parse_labeled_size(x)
        except ValueError as e:
            raise fail(p, v.line_of(i), f"{where}: {e}") from None
        if n in out:
            first = v[out.index(n)]
            raise fail(p, v.line_of(i), f"{where}: value {x!r} listed twice"
                                        + (f" ({first!r} before it)" if first != x else ""))
        out.append(n)
    return tuple(sorted(n for n in out if n != ALL)) + ((ALL,) if ALL in out else ())


def _eval_datasets(p: str, e: YMap, where: str, datasets: dict[str, DatasetSpec]) -> str | tuple[str, ...]:
    """An entry's `eval_datasets`: `same`, `all`, or a tuple of dataset keys each with a train and a test manifest
    (one word naming a dataset: a list of it)."""
    eds = e.get("eval_datasets", "same")
    words = EVAL_DATASET_WORDS if isinstance(eds, str) else ()  # what else a single word may have meant
    if isinstance(eds, str) and eds not in EVAL_DATASET_WORDS:
        eds = YList.single(eds, e.line_of("eval_datasets"))
    if isinstance(eds, YList):
        if not eds:
            raise fail(p, e.line_of("eval_datasets"), f"{where}.eval_datasets: an empty list expands to zero jobs")
        for j, d in enumerate(eds):
            if not isinstance(d, str) or d not in datasets:
                raise fail(p, eds.line_of(j), f"unknown dataset {d!r}{did_you_mean(d, [*datasets, *words])} "
                                              f"(known: {', '.join([*datasets, *words])})")
            if not datasets[d].test or not datasets[d].train:
                raise fail(p, eds.line_of(j), f"dataset {d!r} cannot be an evaluation dataset: it needs both a "
                                              f"'train' (labeled subsets) and a 'test' manifest")
        eds = tuple(eds)
    elif eds not in EVAL_DATASET_WORDS:
        raise fail(p, e.line_of("eval_datasets"), f"{where}.eval_datasets: expected same, all or a list of datasets")
    return eds


def _levels(p: str, e: YMap, where: str, protocol: str) -> str | tuple[str, ...] | None:
    """A granularity entry's `levels`: `all`, a tuple of level names, or None where the entry gives none."""
    if "levels" not in e:
        return None
    if protocol != "granularity":
        raise fail(p, e.line_of("levels"), f"{where}.levels: only for protocol granularity")
    lv = e["levels"]
    if lv == "all":
        return "all"
    if isinstance(lv, YList) and lv and all(isinstance(x, str) for x in lv):
        for i, x in enumerate(lv):  # scored once: a second would only make another job id of the same scores
            if x in lv[:i]:
                raise fail(p, lv.line_of(i), f"{where}.levels: level {x!r} listed twice")
        return tuple(lv)
    raise fail(p, e.line_of("levels"), f"{where}.levels: expected 'all' or a list of taxonomy levels")


def _pairs(p: str, e: YMap, where: str, protocol: str,
           datasets: dict[str, DatasetSpec]) -> tuple[tuple[Matcher, Matcher], ...]:
    """The `pairs` of an entry whose protocol reads two encoders (concat; required there, refused elsewhere): each a
    pair of encoder matchers, a job's two encoders (study.grids.jobs)."""
    pairs: list[tuple[Matcher, Matcher]] = []
    if protocol_of(protocol).encoders == 2:
        raw_pairs = e.get("pairs")
        if not isinstance(raw_pairs, YList) or not raw_pairs:
            raise fail(p, e.line_of("pairs") if "pairs" in e else e.line,
                       f"{where}: protocol {protocol} needs 'pairs': a list of [encoder matcher, encoder matcher]")
        for j, pair in enumerate(raw_pairs):
            if not isinstance(pair, YList) or len(pair) != 2:
                raise fail(p, raw_pairs.line_of(j), f"{where}.pairs[{j}]: expected two matchers, e.g. "
                                                    f"[{{dataset: imagenet}}, {{dataset: inat21}}]")
            pairs.append(tuple(_matcher(p, pair[k], pair.line_of(k), datasets, PRETRAIN_AXES,
                                        f"{where}.pairs[{j}][{k}]") for k in range(2)))  # type: ignore[arg-type]
    elif "pairs" in e:
        raise fail(p, e.line_of("pairs"), f"{where}.pairs: only for a protocol of two encoders "
                                          f"({', '.join(names_where(encoders=2))})")
    return tuple(pairs)


@functools.cache
def _eval_settings() -> frozenset[str]:
    """EvalConfig's field names that an entry's `params:` sets (not those the planner sets: PLANNER_EVAL_KEYS)."""
    import dataclasses

    from study.evaluate.config import EvalConfig

    return frozenset(f.name for f in dataclasses.fields(EvalConfig)) - set(PLANNER_EVAL_KEYS)


def _entry(p: str, entries: YList, i: int, datasets: dict[str, DatasetSpec]) -> EvalEntry:
    """The `stages.evaluate` entry `i`, checked key by key (a StudyError at the line of the first bad one)."""
    e = entries[i]
    line = entries.line_of(i)
    where = f"stages.evaluate[{i}]"
    if not isinstance(e, YMap):
        raise fail(p, line, f"{where}: expected a mapping with at least 'protocol'")
    planned = next((k for k in e if k not in ENTRY_KEYS and k in PLANNER_EVAL_KEYS), None)
    if planned is not None:  # `params:` refuses it too: not pointed there
        raise fail(p, e.line_of(planned), f"{where}.{planned}: set by the planner from 'datasets' and the entry's "
                                          f"eval_datasets; remove it")
    setting = next((k for k in e if k not in ENTRY_KEYS and k in _eval_settings()), None)
    if setting is not None:  # an evaluation setting at the entry's level (`per_level: true` beside `levels:`)
        raise fail(p, e.line_of(setting), f"{where}.{setting}: an evaluation setting, which goes under the entry's "
                                          f"`params:` (params: {{{setting}: ...}}; docs/protocol-evaluation.md)")
    check_keys(p, e, ENTRY_KEYS, required=("protocol",))
    protocol = e["protocol"]
    if protocol not in PROTOCOLS:
        raise fail(p, e.line_of("protocol"), f"unknown protocol {protocol!r}{did_you_mean(protocol, PROTOCOLS)} "
                                             f"(known: {', '.join(PROTOCOLS)})")
    matcher = _matcher(p, e.get("where"), e.line_of("where"), datasets, PRETRAIN_AXES, f"{where}.where")
    eds = _eval_datasets(p, e, where, datasets)
    labeled = None
    if "labeled_sizes" in e:
        labeled = _labeled_sizes(p, e["labeled_sizes"], e.line_of("labeled_sizes"), f"{where}.labeled_sizes")
    levels = _levels(p, e, where, protocol)
    pairs = _pairs(p, e, where, protocol, datasets)
    params = e.get("params") or YMap()
    if not isinstance(params, YMap):
        raise fail(p, e.line_of("params"), f"{where}.params: expected a mapping of evaluation settings")
    for k in PLANNER_EVAL_KEYS + ("labeled_sizes", "levels"):
        if k in params:
            raise fail(p, params.line_of(k), f"{where}.params.{k}: set by the planner (or the entry's own "
                                             f"'{k}'); remove it")
    own = _entry_key(params)
    if own is not None:  # `params: {split_labeled_sizes: true}`: EvalConfig would name it unknown
        raise fail(p, params.line_of(own), f"{where}.params.{own}: a key of the entry itself, not an evaluation "
                                           f"setting: give it beside `protocol:` ({where}.{own})")
    resources = e.get("resources") or YMap()
    if not isinstance(resources, YMap):
        raise fail(p, e.line_of("resources"), f"{where}.resources: expected a mapping")
    split = e.get("split_labeled_sizes", protocol_of(protocol).trains)
    if not isinstance(split, bool):
        raise fail(p, e.line_of("split_labeled_sizes"), f"{where}.split_labeled_sizes: expected true or false")
    variant = e.get("variant")
    if variant is not None and not (isinstance(variant, str) and NAME_RE.fullmatch(variant)):
        raise fail(p, e.line_of("variant"), f"{where}.variant: expected a word (letters, digits, '_', '-', '.'), "
                                            f"got {variant!r}")
    return EvalEntry(protocol=protocol, where=matcher, eval_datasets=eds, labeled_sizes=labeled, levels=levels,
                     pairs=pairs, params=plain(params), resources=resources, split_labeled_sizes=split,
                     line=line, index=i, variant=variant,
                     param_lines={**_key_lines(params), **{k: e.line_of(k) for k in ("labeled_sizes", "levels")
                                                           if k in e}})  # the entry's own, which params may not set
