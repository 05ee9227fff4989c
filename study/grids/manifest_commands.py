"""`manifest_commands(plan)`: the `study manifest ...` command that makes each manifest a plan's jobs read.

Builds (`study manifest build`, with every size the jobs take of the manifest, and for a train manifest of one of
the paper's datasets the paper's sizes too), then pools, then corruptions: run top to bottom, each command finds
what it reads. `Plan.manifests` returns them; the pre-run check prints those of the manifests that are missing.
"""
from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from study.configfields import is_int
from study.counts import format_count

if TYPE_CHECKING:
    from study.grids.plan import Plan


def _env_words(keys) -> dict[str, str]:
    """Each dataset key -> the word its suggested commands' shell variables start with (`$IMAGENET_ROOT`): the key
    upper-cased, other characters as `_`, a `_` first where it starts with a digit (`$2D_ROOT` would be `$2` then
    `D_ROOT` in a shell); `_2`, `_3`, ... after a word an earlier key already has (`a-b` and `a_b`: `$A_B_ROOT` and
    `$A_B_2_ROOT`, not one variable for two datasets' roots), skipping a word another key spells (with a key `a_b_2`
    too, `a-b` is `$A_B_3_ROOT`: `$A_B_2_ROOT` is `a_b_2`'s)."""
    spelled = {key: ("_" if key[:1].isdigit() else "") + re.sub(r"[^A-Za-z0-9]", "_", key).upper() for key in keys}
    words: dict[str, str] = {}
    for key, word in spelled.items():
        taken, n, ours = set(words.values()), 1, word
        while ours in taken or n > 1 and ours in spelled.values():
            n += 1
            ours = f"{word}_{n}"
        words[key] = ours
    return words


def _split(name: str, reader: str | None) -> str:
    """The split a build command names for manifest `name`: its `_train`/`_val`/`_test` suffix, through the
    reader's `suggested_splits` (GLC20: the US part), unless the name ends with one of the reader's own `splits`
    that names more (`fr_train`: GLC20's French part)."""
    from study.datasets.base import SPLIT_SUFFIXES, registered_attribute

    tail = name.rsplit("_", 1)[-1]
    split = tail if tail in SPLIT_SUFFIXES else "SPLIT"
    for own in registered_attribute(reader, "splits"):
        if own not in SPLIT_SUFFIXES and (name == own or name.endswith("_" + own)):
            return own
    return registered_attribute(reader, "suggested_splits").get(split, split)


def _reading_of(name: str) -> str:
    """` --label-rule R --channels C --drop-classes A,B`: how built manifest `name` reads labels and pixels, where it
    records it (GLC20's manifests), and the classes its --drop-classes left out (those of a manifest built without
    --classes-from: its own choice, not another list's), for a test split built with --classes-from it; "" where it
    is not built (or unreadable: the manifest check names it), or records none of these."""
    from study.errors import StudyError
    from study.datasets.base import reading_flags
    from study.manifests.store import load_meta, manifest_exists

    try:
        meta = load_meta(name) if manifest_exists(name) else {}
    except StudyError:
        return ""
    dropped = (meta.get("info") or {}).get("dropped_classes") if not meta.get("classes_from") else None
    flags = {**reading_flags(meta), **({"--drop-classes": ",".join(map(str, dropped))} if dropped else {})}
    return "".join(f" {flag} {shlex.quote(value)}" for flag, value in flags.items() if value)


# the sizes of the paper's four datasets' train manifests (grids/README.md): each shipped grid's commands ask for all
# of them, so that the one manifest of a dataset serves every grid (its sizes are part of its content hash)
PAPER_READERS = ("imagenet", "inat21", "places365", "glc20")
PAPER_SIZES = (50_000, 125_000, 250_000, 500_000, 1_000_000)
PAPER_LABELED_SIZES = (10_000, 50_000, 100_000, 250_000)
COMMAND_ORDER = {"train": 0, "test": 0, "pool": 1}  # "corrupt:<spec>|<base>": 2; each after what it reads


def manifest_commands(plan: Plan) -> dict[str, str]:
    """Manifest name -> the command that makes it: builds, then pools, then corruptions (each after what it reads),
    each kind in the order the jobs first need them. A train manifest of one of the paper's datasets gets the paper's
    sizes as well as those the grid needs (those up to its `train_images` where the grid gives it); a manifest a
    granularity job reads, `--taxonomy "$<KEY>_TAXONOMY"` (but one of a reader with its own: `own_taxonomy`); a test
    manifest, `--classes-from` its train manifest and, where that one is built, its `--label-rule` and `--channels`."""
    from study.datasets.base import registered_attribute

    grid = plan.grid
    sizes: dict[str, set[int]] = {}  # train manifest -> pretraining sizes it must hold
    labeled: dict[str, set[int]] = {}  # train manifest -> labeled sizes it must hold
    needed: dict[str, str] = {}  # name -> "train" | "test" | "pool" | "corrupt:<spec>|<base>"
    taxonomy: set[str] = set()  # manifests a granularity job reads: their levels from --taxonomy (or the reader)
    by_train = {d.train: d for d in grid.datasets.values() if d.train}
    by_test = {d.test: d for d in grid.datasets.values() if d.test}

    for job in plan.jobs:
        if job.stage == "pretrain":
            ds = grid.datasets[job.axes["dataset"]]
            name = job.config["pretrain"]["manifest"]
            spec = job.axes["corruption"]
            if ds.train and job.axes["size"]:
                sizes.setdefault(ds.train, set()).add(job.axes["size"])
            if spec and spec != "none":
                needed.setdefault(name, f"corrupt:{spec}|{ds.train}")
            needed.setdefault(ds.train, "pool" if ds.pooled else "train")  # type: ignore[arg-type]
            for src, n in ds.pool:
                src_train = grid.datasets[src].train
                sizes.setdefault(src_train, set()).add(n)  # type: ignore[arg-type]
                needed.setdefault(src_train, "train")  # type: ignore[arg-type]
        else:
            sec = job.config["evaluate"]
            for key, kind in (("train_manifest", "train"), ("test_manifest", "test")):
                if sec.get(key):
                    needed.setdefault(sec[key], kind)
            if sec.get("protocol") == "granularity":
                taxonomy.update(sec[key] for key in ("train_manifest", "test_manifest") if sec.get(key))
            if sec.get("train_manifest") and sec.get("labeled_sizes"):  # `all` needs no labeled size built
                labeled.setdefault(sec["train_manifest"], set()).update(n for n in sec["labeled_sizes"] if is_int(n))

    def fmt(ns: set[int]) -> str:
        return ",".join(format_count(n) for n in sorted(ns))

    words = _env_words([*grid.datasets, *(n for n in needed if n not in grid.datasets)])
    out: dict[str, str] = {}
    # what a command reads first: builds, then pools (of built manifests), then corruptions (of either)
    for name, kind in sorted(needed.items(), key=lambda item: COMMAND_ORDER.get(item[1], 2)):
        if kind.startswith("corrupt:"):
            spec, base = kind[len("corrupt:"):].rsplit("|", 1)
            out[name] = f"study manifest corrupt {name} --base {base} --corruption {spec}"
        elif kind == "pool":
            ds = by_train[name]
            froms = " ".join(f"--from {grid.datasets[src].train}:{format_count(n)}" for src, n in ds.pool)
            out[name] = f"study manifest pool {name} {froms}"
        else:
            ds = by_train.get(name) if kind == "train" else by_test.get(name)
            reader = (ds.reader if ds else None) or "READER"
            key = ds.key if ds else name  # the dataset's key names its shell variables
            root = f"${words[key]}_ROOT"
            split = _split(name, reader)
            cmd = f'study manifest build --dataset {reader} --root "{root}" --split {split} --name {name}'
            if kind == "train" and reader in PAPER_READERS:  # those a smaller copy (train_images) holds
                most = ds.train_images if ds and ds.train_images else PAPER_SIZES[-1]
                sizes.setdefault(name, set()).update(n for n in PAPER_SIZES if n <= most)
                labeled.setdefault(name, set()).update(n for n in PAPER_LABELED_SIZES if n <= most)
            if sizes.get(name):
                cmd += f" --sizes {fmt(sizes[name])}"
            if labeled.get(name):
                cmd += f" --labeled-sizes {fmt(labeled[name])}"
            if kind == "test" and ds is not None and ds.train and ds.train != name:
                cmd += f" --classes-from {ds.train}"  # the test split lists every class of its train split
                cmd += _reading_of(ds.train)  # and is read as it is (the build refuses another reading)
            if name in taxonomy and not registered_attribute(reader, "own_taxonomy"):  # one file for both splits
                cmd += f' --taxonomy "${words[key]}_TAXONOMY"'
            out[name] = cmd
    return out
