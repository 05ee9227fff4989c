"""`study manifest build`: index a dataset split with its reader, rank every image, freeze the manifest.

Nothing is written until every check passed; building again under an existing name is a no-op when the content is
identical (and the stored files still match their hashes) and refused, naming the difference, otherwise.
"""
from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.atomic import STALE_TEMPORARY_S, remove_temporaries
from study.counts import format_count
from study.datasets import DATASETS, ReaderOptions, read_dataset
from study.datasets.base import Index, apply_taxonomy, read_taxonomy, reader_options, reading_flags
from study.datasets.glc20 import landcover_scheme_clash
from study.errors import StudyError
from study.flock import locked
from study.manifests.ranking import key_order, rank_rows
from study.manifests.manifest import load_intact_meta
from study.manifests.store import (
    check_name,
    check_writable,
    damage,
    finalise,
    load_meta,
    manifest_exists,
    manifest_files_text,
    manifest_paths,
    read_arrow,
    short_repr,
    write_manifest,
)
from study.manifests.sizes import parse_size, parse_sizes
from study.paths import checked_manifests_dir


@dataclass(frozen=True)
class BuildConfig:
    """What `study manifest build` is given, one field per flag (manifests/README.md): `dataset` (a reader:
    `imagefolder`, `imagenet`, ...), `root`, `split`, `name`; `sizes` and `labeled_sizes` as counts (`48`, `"50k"`),
    kept sorted, each once, as the command's comma lists are (the same options give the same content hash);
    `labeled_balanced` is the command's `--labeled-uniform` negated."""

    dataset: str
    root: Path
    split: str
    name: str
    sizes: list[int] = field(default_factory=list)
    labeled_sizes: list[int] = field(default_factory=list)
    seed: int = 0
    balanced: bool = False
    labeled_balanced: bool = True
    label_rule: str | None = None
    taxonomy: Path | None = None
    classes_from: str | None = None  # a manifest whose class list (and label numbers) this one takes
    drop_other_classes: bool = False  # with classes_from: leave out the images of classes that list lacks
    drop_classes: tuple[str, ...] = ()  # classes whose images are left out (a no-data land-cover code, say)
    channels: tuple[int, ...] | None = None  # glc20: the patch channels an image is made of (default RGB)

    def __post_init__(self) -> None:
        for key in ("sizes", "labeled_sizes"):
            object.__setattr__(self, key, _counts(getattr(self, key), key))


def _counts(v: Any, key: str) -> list[int]:
    """Sizes given to BuildConfig: a list of counts, or the command's comma-separated text; StudyError naming `key`."""
    if isinstance(v, str):
        return parse_sizes(v, key)
    if not isinstance(v, (list, tuple)):
        raise StudyError(f"{key}: expected a list of sizes such as [50000, '125k'], got {v!r}")
    return sorted({parse_size(n, key) for n in v})


def check_sizes(sizes: list[int], n: int, what: str, where: str) -> None:
    """StudyError naming the first size above `n` images (its short form, then its digits where they differ)."""
    too_big = [s for s in sizes if s > n]
    if too_big:
        short = format_count(too_big[0])
        size = short if short == str(too_big[0]) else f"{short} ({too_big[0]})"
        raise StudyError(f"{where}: {what} {size} is larger than the dataset ({n} images); the largest possible is {n}")


def index_table(index: Index, seed: int, balanced: bool, labeled_balanced: bool) -> pa.Table:
    """The manifest rows of an index, in rank order. Where the reader's keys repeat (two images of one name), the
    index falls back to ranking by path (its keys and info's `rank_key` are dropped)."""
    canon = key_order(index.rank_keys)
    keys = pc.take(index.rank_keys, pa.array(canon))
    if index.keys is not None and len(keys) > 1 and pc.any(pc.equal(keys[1:], keys[:-1])).as_py():
        index.keys = None
        index.info.pop("rank_key", None)
        return index_table(index, seed, balanced, labeled_balanced)
    paths = pc.take(index.paths, pa.array(canon))
    labels = index.labels[canon]
    rank = rank_rows(keys, labels, index.class_names, seed, balanced, "pretrain")
    labeled_rank = rank_rows(keys, labels, index.class_names, seed, labeled_balanced, "labeled")
    order = np.argsort(rank)
    take = pa.array(canon[order])
    label_array = pa.array(labels[order], type=pa.int64())
    columns = {
        "path": pc.take(paths, pa.array(order)),
        "label": label_array,
        "class_name": pc.take(pa.array(index.class_names, type=pa.string()), label_array),
        "rank": pa.array(rank[order], type=pa.int64()),
        "labeled_rank": pa.array(labeled_rank[order], type=pa.int64()),
    }
    extra = [lv for lv in index.levels if lv in index.columns] + sorted(set(index.columns) - set(index.levels))
    for col in extra:
        columns[col] = pc.take(index.columns[col], take)
    return pa.table(columns)


def build_meta(cfg: BuildConfig, index: Index) -> dict:
    meta = {
        "dataset": cfg.dataset,
        "split": cfg.split,
        "root": str(Path(cfg.root).resolve()),
        "kind": index.kind,
        "seed": cfg.seed,
        "balanced": cfg.balanced,
        "labeled_balanced": cfg.labeled_balanced,
        "sizes": list(cfg.sizes),
        "labeled_sizes": list(cfg.labeled_sizes),
        "num_images": len(index),
        "class_names": list(index.class_names),
        "levels": list(index.levels),
        "label_rule": index.info.get("label_rule", cfg.label_rule),
        "sources": index.sources,
        "info": {k: v for k, v in index.info.items() if k != "label_rule"},
        "corruption": None,
        "base": None,
        "pool": None,
    }
    if "channels" in index.info:
        meta["channels"] = index.info["channels"]
    return meta


def _shares(pool: Any) -> str:
    """A pool's metadata as its sources and shares (`a:60, b:60`); `none` for a manifest that is no pool."""
    if not pool:
        return "none"
    return ", ".join(f"{src.get('name')}:{src.get('size')}" if isinstance(src, dict) else str(src) for src in pool)


def _pool_difference(a: Any, b: Any) -> str:
    """Two pools' metadata: their shares, or where those are the same, the sources made again since (another
    content hash), which the shares alone would show as no difference (`a:12, b:8 -> a:12, b:8`)."""
    before, after = _shares(a), _shares(b)
    if before != after or not isinstance(a, list) or not isinstance(b, list):
        return f"pool: {before} -> {after}"
    remade = [str(x.get("name")) for x, y in zip(a, b) if isinstance(x, dict) and x != y]
    return f"pool: {before}" + (f", source {', '.join(remade)} made again since (another content hash)"
                                if remade else "")


def describe_difference(name: str, old: dict, new: dict, new_table: pa.Table) -> str:
    """What differs between an existing manifest and a rebuild: metadata fields, then rows."""
    diffs = []
    skip = {"name", "content_hash", "table_hash", "schema_version"}
    for key in sorted((set(old) | set(new)) - skip):
        if old.get(key) != new.get(key):
            a, b = old.get(key), new.get(key)
            if key == "class_names":
                a, b = list(a or []), list(b or [])
                first = next((f" (e.g. {x!r} -> {y!r})" for x, y in zip(a, b) if x != y), "")
                other = "in another order" if sorted(map(str, a)) == sorted(map(str, b)) else "other names"
                diffs.append(f"classes: {len(a)} -> {len(b)}" if len(a) != len(b) else
                             f"classes: {len(a)}, {other}{first}")
            elif key == "pool":  # a pool's sources and their shares, which a dict's repr cuts off
                diffs.append(_pool_difference(a, b))
            elif key == "sources":
                diffs.append("source files: " + ", ".join(
                    f"{s.get('path')} (sha256 {s.get('sha256', '')[:12]})" for s in (b or [])) + " changed")
            else:
                diffs.append(f"{key}: {short_repr(a, 80)} -> {short_repr(b, 80)}")
    if old.get("table_hash") != new.get("table_hash"):
        try:
            old_paths = set(read_arrow(name).column("path").to_pylist())
        except StudyError:
            old_paths = set()
        new_paths = set(new_table.column("path").to_pylist())
        added, removed = sorted(new_paths - old_paths), sorted(old_paths - new_paths)
        rows = f"rows: {len(added)} added, {len(removed)} removed"
        if added:
            rows += f" (e.g. +{added[0]!r})"
        if removed:
            rows += f" (e.g. -{removed[0]!r})"
        if not added and not removed:
            rows += " (labels or ranks changed)"
        diffs.append(rows)
    elif diffs and all(d.startswith(("sizes:", "labeled_sizes:")) for d in diffs):  # README: keep the first build's
        flags = " ".join(f"--{key.replace('_', '-')} {','.join(map(format_count, old[key]))}"
                         for key in ("sizes", "labeled_sizes") if old.get(key))
        diffs[-1] += (f" (the rows and subsets are the same: sizes are only recorded, a grid takes any size up to "
                      f"{new_table.num_rows}; rebuild with {flags or 'no --sizes'} to keep it)")
    return "; ".join(diffs) or "content hash differs"


def freeze(name: str, table: pa.Table, meta: dict) -> tuple[dict, bool]:
    """Write a new manifest, or accept an identical existing one (returns (meta, written)); refuse a different one,
    or a stored one whose files no longer match their hashes. One process at a time checks and writes a name."""
    table, meta = finalise(name, table, meta)
    lock = manifest_paths(name)[0].with_name(f".{name}.lock")
    with locked(lock, f"[manifest] waiting for another build of {name} ({lock})") as held:
        return _freeze_locked(name, table, meta, held)


def _freeze_locked(name: str, table: pa.Table, meta: dict, held: bool) -> tuple[dict, bool]:
    for path in manifest_paths(name):  # a killed build's; under the lock no other writer is at work, without it
        remove_temporaries(path, older_than_s=None if held else STALE_TEMPORARY_S)  # only old ones are surely dead
    if manifest_exists(name):
        broken = damage(name)
        if broken:
            raise StudyError(f"manifest {name!r} already exists but is damaged: {broken}. Delete "
                             f"{manifest_files_text(name)}, then build it again")
        old = load_meta(name)
        if old.get("content_hash") == meta["content_hash"] and old.get("root") == meta.get("root") \
                and old.get("roots") == meta.get("roots"):
            return old, False
        what = ("with the same content under another root" if old.get("content_hash") == meta["content_hash"]
                else "with different content")
        raise StudyError(f"manifest {name!r} already exists {what}: "
                         f"{describe_difference(name, old, meta, table)}. Manifests are frozen: choose another name, "
                         f"or delete {manifest_files_text(name)} first")
    write_manifest(name, table, meta)
    return meta, True


def align_classes(index: Index, class_names: list[str], what: str, where: str, drop: bool = False) -> bool:
    """Give `index` the class list `class_names` (labels renumbered): a test split then lists the train split's
    classes, also those it has no image of (GLC20's land-cover codes are the ones found in each split). Classes of
    the split that the list lacks: with `drop`, their images are left out (counted in `index.info["dropped_classes"]`),
    else a StudyError naming them (also with `drop`, where one is a listed class in another Unicode form: not a class
    to leave out). Returns whether that changed the index."""
    position = {c: i for i, c in enumerate(class_names)}
    missing = [c for c in index.class_names if c not in position]
    twins = _other_unicode_form(missing, class_names) if missing else ""  # listed, in another form: never dropped
    if missing and (not drop or twins):
        raise StudyError(f"{what}: {where} has class(es) {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''} that it does not list ({len(class_names)} classes); "
                         + ("--drop-other-classes leaves their images out" if not drop else
                            "--drop-other-classes would leave out the images of a class it lists") + twins)
    if missing:
        kept = " that --drop-classes kept" if index.info.get("dropped_classes") else ""
        drop_classes(index, missing, f"{what}: {where}", "--drop-other-classes", f"none of its classes{kept} is listed")
    elif list(index.class_names) == list(class_names):
        return False  # the same manifest as without the flag, byte for byte
    index.labels = np.array([position[c] for c in index.class_names], dtype=np.int64)[index.labels]
    index.class_names = list(class_names)
    index.info.pop("class_codes", None)  # GLC20's codes of the split's own classes; the class names say them
    return True


def _other_unicode_form(missing: list[str], class_names: list[str]) -> str:
    """What the error of classes a list lacks adds where one is a listed name in another Unicode form: `café` as
    `cafe` + a combining accent (NFD, as macOS and archives made there write file names) beside `café` (NFC), two
    names that print alike; "" where none is."""
    listed = {unicodedata.normalize("NFC", c): c for c in class_names}
    twins = [(c, listed[unicodedata.normalize("NFC", c)]) for c in missing if unicodedata.normalize("NFC", c) in listed]
    if not twins:
        return ""
    ours, theirs = twins[0]
    more = f" (and {len(twins) - 1} more so)" if len(twins) > 1 else ""
    return (f". {ours} is listed as {ascii(theirs)} ({_form(theirs)}) and named here {ascii(ours)} ({_form(ours)})"
            f"{more}: one name in two Unicode forms, which print alike (macOS and archives made there write file "
            "names decomposed, NFD); rename the folders of one tree to the other's form (`convmv -r -f utf8 -t utf8 "
            "--nfc --notest DIR` makes them NFC)")


def _form(name: str) -> str:
    return "NFC" if unicodedata.is_normalized("NFC", name) else "NFD" if unicodedata.is_normalized("NFD", name) \
        else "neither NFC nor NFD"


def drop_classes(index: Index, names: list[str], where: str, flag: str, why: str) -> None:
    """Leave the images of classes `names` out of `index` (and the classes from its list); their image counts are
    added to `index.info["dropped_classes"]`. StudyError (`where`, `why`, naming `flag`) when no image is left."""
    dropped = set(names)
    gone = np.array([c in dropped for c in index.class_names])
    if gone.all():
        raise StudyError(f"{where}: {why}, so {flag} would leave no image")
    counts = np.bincount(index.labels, minlength=len(index.class_names))
    index.info["dropped_classes"] = {**index.info.get("dropped_classes", {}),
                                     **{c: int(counts[i]) for i, c in enumerate(index.class_names) if gone[i]}}
    keep = pa.array(~gone[index.labels])
    index.paths = pc.filter(index.paths, keep)
    index.keys = None if index.keys is None else pc.filter(index.keys, keep)
    index.columns = {k: pc.filter(v, keep) for k, v in index.columns.items()}
    index.class_names = [c for c, g in zip(index.class_names, gone) if not g]
    index.labels = (np.cumsum(~gone) - 1)[index.labels[~gone[index.labels]]]
    if "class_codes" in index.info:  # GLC20's code of each class, in the class list's order
        index.info["class_codes"] = [v for v, g in zip(index.info["class_codes"], gone) if not g]


def reading_differences(ours: dict, theirs: dict) -> list[tuple[str, str, str]]:
    """(flag, ours, theirs) as the flag is written, for each of GLC20's `label_rule` and `channels` that both
    `ours` and `theirs` (manifest metadata, an index's info, the flags given) record, and record otherwise."""
    a, b = reading_flags(ours), reading_flags(theirs)
    return [(flag, a[flag], b[flag]) for flag in a if flag in b and a[flag] != b[flag]]


def check_same_reading(reading: dict, source: str, source_meta: dict, where: str) -> None:
    """StudyError where `reading` (an index's info, or the flags given) takes labels or image channels (GLC20's
    `label_rule`, `channels`) otherwise than manifest `source` records, or, reading GLC20's land cover, a region
    whose codes `source` lacks (`reading` then needs `dataset`, `split`, and `sources` for a split of both): the same
    class names would then mean other labels, or a probe would be scored on other channels than it trained on
    (`study plan` checks an evaluation's pair the same way)."""
    differences = reading_differences(reading, source_meta)
    if differences:
        flag, ours, theirs = differences[0]
        raise StudyError(f"--classes-from {source}: {where} is read with {flag} {ours} but {source} with "
                         f"{flag} {theirs}: build it with {flag} {theirs}")
    clash = landcover_scheme_clash(source_meta, reading, source, where)
    if clash:
        raise StudyError(f"--classes-from {source}: {clash[0]}: build it from {source}'s region, --split {clash[1]}")


def check_same_taxonomy(index: Index, source: str, source_levels: list[str], where: str) -> None:
    """StudyError naming the first class whose value at a taxonomy level differs between `index` (labels already
    those of manifest `source`) and `source`, at the levels both have: granularity maps a classifier trained on one
    up the other's taxonomy."""
    shared = [level for level in index.levels if level in source_levels and level in index.columns]  # not the class
    if not shared:
        return
    theirs = read_arrow(source, columns=["label", *shared]).group_by(["label", *shared]).aggregate([])
    known: dict[int, list[tuple]] = {}
    for label, *values in zip(*(theirs[c].to_pylist() for c in ["label", *shared])):
        known.setdefault(label, []).append(tuple(values))
    ours = pa.table({"label": index.labels, **{lv: index.columns[lv] for lv in shared}})
    ours = ours.group_by(["label", *shared]).aggregate([]).sort_by("label")
    for label, *values in zip(*(ours[c].to_pylist() for c in ["label", *shared])):
        other = known.get(label)
        if other and tuple(values) not in other:
            at = next(i for i, (a, b) in enumerate(zip(values, other[0])) if a != b)
            raise StudyError(f"--classes-from {source}: class {index.class_names[label]!r} has {shared[at]} "
                             f"{values[at]!r} in {where} but {other[0][at]!r} in {source}: granularity would map "
                             f"its predictions up another taxonomy (build both from the same taxonomy)")


def drop_named_classes(index: Index, names: tuple[str, ...], where: str) -> None:
    """--drop-classes: leave the images of classes `names` out of `index` (`drop_classes`); a name that is no class
    of the split is said on stderr (a test split may lack a class its train split dropped; a typo drops nothing)."""
    known = set(index.class_names)
    absent = [n for n in names if n not in known]
    if absent:
        shown = ", ".join(index.class_names[:5]) + (" ..." if len(index.class_names) > 5 else "")
        print(f"[manifest] warning: --drop-classes: {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} no "
              f"class of {where} (its classes: {shown}); nothing dropped for it", file=sys.stderr)
    present = [n for n in names if n in known]
    if present:
        drop_classes(index, present, where, "--drop-classes", "these are all its classes")


def classes_text(index: Index) -> str:
    """`365 classes`, and how many of them have no image in the split (a partial list file, classes aligned to
    another split's: the probes keep an output for each, so it is said)."""
    n = len(index.class_names)
    empty = int((np.bincount(np.asarray(index.labels), minlength=n) == 0).sum())
    return f"{n} classes" + (f" ({empty} of them with no image here)" if empty else "")


def build_manifest(cfg: BuildConfig) -> tuple[dict, bool]:
    """Index, rank and freeze a split as manifest `cfg.name` in the manifests folder ($STUDY_MANIFESTS, else
    ./manifests); returns (its metadata, whether the files were written: False where the same content was there).
    The flags' own files (--classes-from's manifest, --taxonomy's CSV) are read before the dataset is indexed; the
    taxonomy is checked against the class list the manifest ends with. Its progress and notes go to stderr."""
    check_name(cfg.name)
    DATASETS.get(cfg.dataset, "--dataset")  # flag errors before the indexing line (and before hours of indexing)
    if cfg.drop_other_classes and cfg.classes_from is None:
        raise StudyError("--drop-other-classes needs --classes-from (the manifest whose classes are kept)")
    if not -2**63 <= cfg.seed < 2**63:  # the hash key holds 64 bytes: a longer seed's last digits would not count
        raise StudyError(f"--seed {cfg.seed}: a seed is a 64-bit integer (from -2**63 to 2**63 - 1)")
    options = ReaderOptions(label_rule=cfg.label_rule, channels=cfg.channels)
    for flag, option in (("--label-rule", "label_rule"), ("--channels", "channels")):
        if getattr(options, option) is not None and option not in reader_options(cfg.dataset):
            takers = [name for name in DATASETS if option in reader_options(name)]
            raise StudyError(f"{flag} applies to {', '.join(takers) or 'no reader'} only, not {cfg.dataset}")
    source = load_intact_meta(cfg.classes_from, "--classes-from") if cfg.classes_from is not None else None
    classes = source["class_names"] if source is not None else None
    if source is not None:  # the flags given, before hours of indexing; the reader's defaults once it has run
        given = {"label_rule": cfg.label_rule, "channels": None if cfg.channels is None else list(cfg.channels),
                 "dataset": cfg.dataset, "split": cfg.split}
        check_same_reading(given, cfg.classes_from, source, f"{cfg.dataset} {cfg.split}")
    taxonomy = read_taxonomy(Path(cfg.taxonomy)) if cfg.taxonomy is not None else None
    checked_manifests_dir()  # where it cannot be, before hours of indexing
    check_writable(cfg.name)  # nor be written (a lab's shared, read-only set)
    print(f"[manifest] indexing {cfg.dataset} {cfg.split} at {cfg.root}", file=sys.stderr)
    index = read_dataset(cfg.dataset, Path(cfg.root), cfg.split, options)
    where = f"{cfg.dataset} {cfg.split}"
    if source is not None:
        read = {**index.info, "dataset": cfg.dataset, "split": cfg.split, "sources": index.sources}
        check_same_reading(read, cfg.classes_from, source, where)
    drop_named_classes(index, cfg.drop_classes, where)
    aligned = classes is not None and align_classes(index, classes, f"--classes-from {cfg.classes_from}", where,
                                                    cfg.drop_other_classes)
    if taxonomy is not None:
        apply_taxonomy(index, Path(cfg.taxonomy), taxonomy)
    if source is not None:
        check_same_taxonomy(index, cfg.classes_from, source.get("levels") or [], where)
    check_sizes(cfg.sizes, len(index), "--sizes", where)
    check_sizes(cfg.labeled_sizes, len(index), "--labeled-sizes", where)
    print(f"[manifest] ranking {len(index)} images in {classes_text(index)}", file=sys.stderr)
    table = index_table(index, cfg.seed, cfg.balanced, cfg.labeled_balanced)
    meta = build_meta(cfg, index)
    if aligned:
        meta["classes_from"] = cfg.classes_from
    return freeze(cfg.name, table, meta)
