"""`study manifest build | verify | list | show | export | pool | corrupt | materialize`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from study.cli import action_parser, command_with_actions, count_arg
from study.errors import StudyError
from study.manifests.sizes import parse_size, parse_sizes


def _channels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected channel numbers such as 0,1,2, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())  # repeats: dropped once all flags are read
    if not names:
        raise argparse.ArgumentTypeError(f"expected class names such as landcover_0, got {text!r}")
    return names


def register(subparsers) -> None:
    sub = command_with_actions(subparsers, "manifest", "freeze, check and export dataset manifests",
                               "Freeze, check and export dataset manifests. Manifests live in $STUDY_MANIFESTS "
                               "(default: ./manifests), where `study plan`, `study submit` and every job read them.")

    b = action_parser(sub, "build", "index a dataset split and freeze its nested subsets")
    from study.datasets import DATASETS

    b.add_argument("--dataset", required=True, help=f"reader: {', '.join(DATASETS.names())}")
    b.add_argument("--root", required=True, type=Path, metavar="DIR", help="the dataset's folder, as it lies on disk")
    b.add_argument("--split", required=True, help="e.g. train, val (train_mini for inat21; test, us_train for glc20)")
    b.add_argument("--name", required=True, help="manifest name, e.g. imagenet_train")
    b.add_argument("--sizes", default=None, help="nested pretraining sizes, e.g. 50k,125k,250k,500k,1M (default: none)")
    b.add_argument("--labeled-sizes", default=None,
                   help="nested labeled sizes, e.g. 1k,10k,50k,100k,250k (default: none)")
    b.add_argument("--seed", type=int, default=0,
                   help="seed of the keyed hash that ranks the images (the nested subsets); default 0 (ours: the "
                        "paper's is unknown)")
    b.add_argument("--balanced", action="store_true", help="class-balanced pretraining subsets (default: uniform)")
    b.add_argument("--labeled-uniform", action="store_true", help="uniform labeled subsets (default: class-balanced)")
    b.add_argument("--label-rule", default=None, help="glc20: landcover_center (default), landcover_mode or species")
    b.add_argument("--channels", default=None, type=_channels,
                   help="glc20: the patch channels of an image, 1 or 3 of 0-3 (R, G, B, NIR); default 0,1,2")
    b.add_argument("--classes-from", default=None, metavar="MANIFEST",
                   help="take this manifest's class list (a test split listing every class of its train split)")
    b.add_argument("--drop-other-classes", action="store_true",
                   help="with --classes-from: leave out the images of classes that manifest does not list (recorded "
                        "in the metadata's info.dropped_classes); without it such classes are refused")
    b.add_argument("--drop-classes", default=None, type=_names, action="append", metavar="NAMES",
                   help="leave out the images of these classes, comma-separated class names (e.g. glc20's "
                        "landcover_0, a no-data code; may be repeated); recorded in the metadata's "
                        "info.dropped_classes")
    b.add_argument("--taxonomy", type=Path, default=None, metavar="FILE",
                   help="CSV whose header names levels coarse -> fine, last column the class name")
    b.set_defaults(func=_build)

    v = action_parser(sub, "verify", "recompute the content hash and check nesting (and files with --files)")
    _name(v)
    v.add_argument("--files", action="store_true", help="also check that every file exists and decodes")
    v.add_argument("--workers", type=count_arg, default=1, metavar="N",
                   help="with --files: decode in N processes (default: 1)")
    v.set_defaults(func=_verify)

    ls = action_parser(sub, "list", "the manifests in the manifests folder")
    _format(ls, "one row per manifest: name, dataset, split, images, classes, sizes, labeled sizes, corruption, "
                "content hash")
    ls.set_defaults(func=_list)

    s = action_parser(sub, "show", "sizes, classes and per-class counts of each subset")
    _name(s)
    _format(s, "its metadata as written and its images per class in each subset")
    s.set_defaults(func=_show)

    e = action_parser(sub, "export", "CSV of a subset (path,label,class_name,taxonomy...,source of a pool) on stdout")
    _name(e)
    g = e.add_mutually_exclusive_group()
    g.add_argument("--subset", default=None, help="pretraining subset size (e.g. 50k); default: every row")
    g.add_argument("--labeled", default=None, help="labeled subset size (e.g. 10k); default: every row")
    e.set_defaults(func=_export)

    po = action_parser(sub, "pool", "pool several manifests' nested prefixes into one nested manifest")
    _name(po, "the pool's manifest name, e.g. pooled_imagenet_places365")
    po.add_argument("--from", dest="sources", action="append", required=True, metavar="NAME:SIZE",
                    help="a source manifest and how many of its images (its nested prefix), e.g. "
                         "imagenet_train:250k (or NAME:all, every image); twice or more")
    po.add_argument("--sizes", default=None, help="nested sizes of the pool (default: its total)")
    po.add_argument("--labeled-sizes", default=None, help="nested labeled sizes of the pool (default: none)")
    po.set_defaults(func=_pool)

    c = action_parser(sub, "corrupt", "a variant of a manifest read through a corruption")
    _name(c, "the variant's manifest name; a grid with this corruption looks for <base>.<corruption slug>, e.g. "
             "imagenet_train.jpeg-quality10")
    c.add_argument("--base", required=True, metavar="MANIFEST", help="the manifest whose images are corrupted")
    from study.corruptions import CORRUPTIONS, parse_corruption

    defaults = "; ".join(f"{n}: " + (", ".join(f"{k}={v}" for k, v in parse_corruption(n).params) or "no parameters")
                         for n in CORRUPTIONS.names())
    c.add_argument("--corruption", required=True,
                   help=f"NAME[:KEY=VALUE,...], e.g. downsample:factor=4. Registered, with their defaults: {defaults}")
    c.set_defaults(func=_corrupt)

    m = action_parser(sub, "materialize", "write a manifest's (corrupted) images to disk as PNG")
    _name(m)
    m.add_argument("--out", required=True, type=Path, metavar="DIR", help="the folder the PNG files are written to")
    m.add_argument("--workers", type=count_arg, default=1, metavar="N", help="write in N processes (default: 1)")
    m.add_argument("--subset", default=None, help="only this pretraining subset (default: every row)")
    m.set_defaults(func=_materialize)


def _name(p: argparse.ArgumentParser, help: str = "the manifest's name (`study manifest list` lists them)") -> None:
    p.add_argument("name", metavar="NAME", help=help)


def _format(p: argparse.ArgumentParser, json_holds: str) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help=f"table (default), or json for scripts: {json_holds}")


def _list(a: argparse.Namespace) -> int:
    from study.manifests.report import list_rows, list_text

    if a.format == "json":
        rows = list_rows()
        if not rows:  # `[]` alone would not tell a script that the folder is missing
            print(f"study: warning: {list_text().rstrip()}", file=sys.stderr)
        print(json.dumps(rows, indent=1))
    else:
        print(list_text(), end="")
    return 0


def _report(meta: dict, written: bool, verb: str) -> int:
    state = verb if written else "unchanged (identical content)"
    print(f"manifest {meta['name']}: {state}, {meta['num_images']} images, {len(meta['class_names'])} classes, "
          f"content hash {meta['content_hash'][:16]}")
    return 0


def _build(a: argparse.Namespace) -> int:
    from study.manifests.build import BuildConfig, build_manifest

    cfg = BuildConfig(
        dataset=a.dataset, root=a.root, split=a.split, name=a.name, sizes=parse_sizes(a.sizes, "--sizes"),
        labeled_sizes=parse_sizes(a.labeled_sizes, "--labeled-sizes"), seed=a.seed, balanced=a.balanced,
        labeled_balanced=not a.labeled_uniform, label_rule=a.label_rule, taxonomy=a.taxonomy,
        classes_from=a.classes_from, drop_other_classes=a.drop_other_classes, channels=a.channels,
        drop_classes=tuple(dict.fromkeys(n for names in a.drop_classes or () for n in names)),
    )
    return _report(*build_manifest(cfg), "written")


def _verify(a: argparse.Namespace) -> int:
    from study.manifests.manifest import load_manifest
    from study.manifests.store import read_meta
    from study.manifests.verify import missing_lineage, missing_roots, verify_manifest

    meta = read_meta(a.name)
    for warning in missing_lineage(meta) + ([] if a.files else missing_roots(meta)):
        print(f"[manifest] warning: manifest {a.name}: {warning}", file=sys.stderr)
    problems = verify_manifest(a.name, files=a.files, workers=a.workers)
    if problems:
        raise StudyError(f"manifest {a.name} failed verification:\n  " + "\n  ".join(problems))
    m = load_manifest(a.name)
    files = ", every file decodes" if a.files else ""
    print(f"manifest {a.name}: OK ({m.num_images} images, {m.num_classes} classes, nested{files}; "
          f"content hash {m.content_hash[:16]})")
    return 0


def _show(a: argparse.Namespace) -> int:
    from study.manifests.report import show_json, show_text

    if a.format == "json":
        print(json.dumps(show_json(a.name), indent=1))
    else:
        print(show_text(a.name), end="")
    return 0


def _export(a: argparse.Namespace) -> int:
    from study.manifests.report import export_csv

    subset = parse_size(a.subset, "--subset") if a.subset is not None else None
    labeled = parse_size(a.labeled, "--labeled") if a.labeled is not None else None
    export_csv(a.name, sys.stdout, subset=subset, labeled=labeled)
    return 0


def _pool(a: argparse.Namespace) -> int:
    from study.manifests.pool import parse_from, pool_manifests

    sources = [parse_from(s) for s in a.sources]
    meta, written = pool_manifests(a.name, sources, parse_sizes(a.sizes, "--sizes"),
                                   parse_sizes(a.labeled_sizes, "--labeled-sizes"))
    return _report(meta, written, "written")


def _corrupt(a: argparse.Namespace) -> int:
    from study.grids.jobs import corrupted_manifest
    from study.manifests.corrupt import corrupt_manifest

    code = _report(*corrupt_manifest(a.name, a.base, a.corruption), "written")
    grid_name = corrupted_manifest(a.base, a.corruption)
    if a.name != grid_name:  # a grid's `corruption:` axis looks the variant up by that name only
        print(f"[manifest] warning: a grid with corruption {a.corruption!r} on {a.base} looks for manifest "
              f"{grid_name}, not {a.name}", file=sys.stderr)
    return code


def _materialize(a: argparse.Namespace) -> int:
    from study.manifests.materialize import materialize

    subset = parse_size(a.subset, "--subset") if a.subset is not None else None
    written, skipped = materialize(a.name, a.out, workers=a.workers, subset=subset)
    print(f"manifest {a.name}: {written} images written, {skipped} already there, under {a.out}")
    return 0
