"""`imagenet`: ILSVRC-2012 as extracted from the official archives, or in Kaggle's layout.

Official: `train/<wnid>/*.JPEG` (an inner `<wnid>.tar` or the outer `ILSVRC2012_img_train.tar` left in `train/`,
or images extracted into `train/` itself, are refused; the class folders must be the 1000 leaf wnids of the
devkit's `meta.mat` when it is there and scipy is installed, else of `LOC_synset_mapping.txt` when that is, else
named as wnids); `val/` flat, labelled by the devkit's `ILSVRC2012_validation_ground_truth.txt` (line i =
ILSVRC2012_ID of `ILSVRC2012_val_{i:08d}.JPEG`) and `meta.mat`, which maps ILSVRC2012_ID -> wnid (that order
is NOT the sorted-wnid order; scipy reads it), or, without the devkit,
by Kaggle's `LOC_val_solution.csv` and `LOC_synset_mapping.txt` in the root (two files of one stem, a `.JPEG` and a
converted `.png`, are refused). A `val/` already sorted into `<wnid>/` folders is read as a tree (one that also
holds loose images is refused: a half-sorted folder).
Kaggle (recognised by its `ILSVRC/Data/CLS-LOC/` folder): `LOC_synset_mapping.txt`, `LOC_val_solution.csv`,
`ILSVRC/Data/CLS-LOC/{train,val}/`.
Class index = sorted wnid order, as torchvision; `class_name` is the wnid.
"""
from __future__ import annotations

import csv
import importlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from study.datasets.base import (DATASETS, Index, ReaderOptions, basenames, decimal_int, open_text, require_file,
                                 source_entry)
from study.datasets.imagefolder import index_class_tree
from study.datasets.scan import IMG_EXTENSIONS, list_dirs, list_files
from study.errors import StudyError

KAGGLE_DATA = Path("ILSVRC/Data/CLS-LOC")
DEVKIT_DIRS = ("ILSVRC2012_devkit_t12/data", "devkit/data", "ILSVRC2012_devkit_t12", "devkit", ".")


@DATASETS.register("imagenet")
def read_imagenet(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in ("train", "val"):
        raise StudyError(f"imagenet: unknown split {split!r} (expected train or val; test has no labels)")
    kaggle = (root / KAGGLE_DATA).is_dir()
    data = root / KAGGLE_DATA if kaggle else root
    folder = data / split
    if not folder.is_dir():
        raise StudyError(f"imagenet: split folder not found: {folder}"
                         + ("" if kaggle else f" (nor Kaggle's {root / KAGGLE_DATA / split})"))
    wnids = kaggle_wnids(root) if kaggle else None
    if split != "train" and list_dirs(folder) and flat_images(folder):
        raise StudyError(f"imagenet: {folder} holds both class folders and loose images (a half-sorted val folder?): "
                         f"sort every image into its <wnid>/ folder, or none")
    source = root / "LOC_synset_mapping.txt"
    if split == "train":
        tars = list_files(folder, (".tar",), recursive=False)
        inner = [t for t in tars if is_wnid(t[:-len(".tar")])]
        if inner:
            shown = ", ".join(inner[:5]) + (f" ... ({len(inner)} in all)" if len(inner) > 5 else "")
            raise StudyError(f"imagenet: inner tars not extracted: {shown} in {folder}: extract each into "
                             f"{folder}/<wnid>/, then delete it")
        if tars:  # the outer archive, as PyTorch's example extracts it in train/: its inner tars are gone
            raise StudyError(f"imagenet: {tars[0]} in {folder} is no class's inner tar (<wnid>.tar): the outer "
                             f"archive? Once every inner tar is extracted into {folder}/<wnid>/, move it out of "
                             f"{folder}")
    if split == "train" or list_dirs(folder):
        if not kaggle:  # a sorted val too: a class folder missing would shift every label after it
            wnids, source = train_wnids(root)
        # the folders, checked before they are indexed (which would warn of an empty one, lost+found, first)
        if wnids is not None:
            check_classes(folder, list_dirs(folder), wnids, source)
        else:  # nothing to check against: a folder that is no wnid (lost+found) would shift every label after it
            other = [c for c in list_dirs(folder) if not is_wnid(c)]
            if other:
                raise StudyError(f"imagenet: {folder} holds {len(other)} folder(s) not named as a wnid (n + 8 digits), "
                                 f"e.g. {', '.join(other[:3])}: move them out (class folders are the 1000 wnids)")
        index = index_class_tree(root, folder)
    elif kaggle:
        index = kaggle_val(root, folder, wnids)
    elif not has_devkit(root) and (root / "LOC_val_solution.csv").is_file():
        index = kaggle_val(root, folder, kaggle_wnids(root))
        index.sources.insert(0, source_entry(root, root / "LOC_synset_mapping.txt"))
    else:
        index = devkit_val(root, folder)
    index.info["layout"] = "kaggle" if kaggle else "official"
    index.keys, index.info["rank_key"] = basenames(index.paths), "file name"  # the same in every layout
    if kaggle:
        index.sources.insert(0, source_entry(root, root / "LOC_synset_mapping.txt"))
    return index


def is_wnid(name: str) -> bool:
    """Whether `name` reads as a WordNet id: `n` and 8 digits (`n01440764`)."""
    return len(name) == 9 and name.startswith("n") and name[1:].isdigit()


def kaggle_wnids(root: Path) -> list[str]:
    """The sorted wnids of `LOC_synset_mapping.txt`; StudyError naming a malformed or repeated line."""
    path = require_file(root / "LOC_synset_mapping.txt", "imagenet: LOC_synset_mapping.txt")
    seen: dict[str, int] = {}
    with open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            wnid = line.split(maxsplit=1)[0]
            if not is_wnid(wnid):
                raise StudyError(f"{path} line {line_no}: expected '<wnid> <words>', got {line.strip()[:60]!r}")
            if wnid in seen:
                raise StudyError(f"{path} line {line_no}: wnid {wnid} is listed twice (first on line {seen[wnid]})")
            seen[wnid] = line_no
    return sorted(seen)


def train_wnids(root: Path) -> tuple[list[str] | None, Path | None]:
    """The leaf wnids an official train folder must hold, and the file they come from: the devkit's `meta.mat`
    (unless scipy, which reads it, is not installed), else `LOC_synset_mapping.txt` in the root; (None, None)
    without either (nothing to check against)."""
    meta = next((root / d / "meta.mat" for d in DEVKIT_DIRS if (root / d / "meta.mat").is_file()), None)
    if meta is not None:
        try:
            importlib.import_module("scipy.io")
        except ImportError:
            meta = None
    if meta is not None:
        return sorted(devkit_synsets(meta).values()), meta
    if (root / "LOC_synset_mapping.txt").is_file():
        return kaggle_wnids(root), root / "LOC_synset_mapping.txt"
    return None, None


def check_classes(folder: Path, classes: list[str], wnids: list[str], source: Path) -> None:
    """StudyError unless the class folders of `folder` are exactly `wnids` (those of `source`), naming the first
    few missing and unexpected ones."""
    if classes == wnids:
        return
    missing, extra = sorted(set(wnids) - set(classes)), sorted(set(classes) - set(wnids))
    parts = [f"{what} {len(names)} (e.g. {', '.join(names[:3])})" for what, names in
             (("wnids without a folder:", missing), ("folders not among its wnids:", extra)) if names]
    raise StudyError(f"imagenet: class folders of {folder} differ from the {len(wnids)} wnids of {source}: "
                     + "; ".join(parts))


def flat_images(folder: Path) -> list[str]:
    return list_files(folder, IMG_EXTENSIONS, recursive=False)


def flat_folder_index(root: Path, folder: Path, names_to_wnid: dict[str, str], wnids: list[str], where: Path) -> Index:
    """Index of the flat files of `folder`, labeled through `names_to_wnid` (file stem -> wnid; `where` names it)."""
    by_stem: dict[str, str] = {}
    for f in flat_images(folder):
        other = by_stem.setdefault(f.rsplit(".", 1)[0], f)
        if other != f:
            raise StudyError(f"{folder}: {other} and {f} have one stem, which {where} labels once: keep one of them")
    missing = sorted(set(names_to_wnid) - set(by_stem))
    if missing:
        raise StudyError(f"{where}: image {missing[0]!r} is listed but not found in {folder}")
    unlisted = sorted(set(by_stem) - set(names_to_wnid))
    if unlisted:
        raise StudyError(f"{folder}: image {by_stem[unlisted[0]]!r} has no label in {where}")
    cls = {w: i for i, w in enumerate(wnids)}
    prefix = folder.relative_to(root).as_posix() + "/"
    stems = sorted(names_to_wnid)
    labels = np.empty(len(stems), dtype=np.int64)
    for i, s in enumerate(stems):
        w = names_to_wnid[s]
        if w not in cls:
            raise StudyError(f"{where}: image {s!r} has unknown class {w!r}")
        labels[i] = cls[w]
    paths = pa.array([prefix + by_stem[s] for s in stems], type=pa.string())
    return Index(paths=paths, labels=labels, class_names=list(wnids))


def kaggle_val(root: Path, folder: Path, wnids: list[str]) -> Index:
    path = require_file(root / "LOC_val_solution.csv", "imagenet: LOC_val_solution.csv")
    names: dict[str, str] = {}
    known = set(wnids)
    with open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise StudyError(f"{path} line 1: expected the header 'ImageId,PredictionString'")
        for row in reader:
            if not row:
                continue
            if len(row) != 2 or not row[1].split():
                raise StudyError(f"{path} line {reader.line_num}: expected 'ImageId,<wnid> x y x y ...'")
            image_id, wnid = row[0].strip(), row[1].split()[0]
            if image_id in names:
                raise StudyError(f"{path} line {reader.line_num}: image {image_id!r} is listed twice")
            if wnid not in known:
                raise StudyError(f"{path} line {reader.line_num}: image {image_id!r} has class {wnid!r}, which "
                                 "LOC_synset_mapping.txt does not list")
            names[image_id] = wnid
    index = flat_folder_index(root, folder, names, wnids, path)
    index.sources.append(source_entry(root, path))
    return index


def has_devkit(root: Path) -> bool:
    return any((root / d / "ILSVRC2012_validation_ground_truth.txt").is_file() for d in DEVKIT_DIRS)


def find_devkit(root: Path) -> Path:
    for d in DEVKIT_DIRS:
        if (root / d / "ILSVRC2012_validation_ground_truth.txt").is_file():
            return root / d
    raise StudyError(
        f"imagenet: ILSVRC2012_validation_ground_truth.txt not found under {root} "
        f"(looked in {', '.join(DEVKIT_DIRS)}); extract ILSVRC2012_devkit_t12.tar.gz there, or put "
        "Kaggle's LOC_val_solution.csv and LOC_synset_mapping.txt in the root"
    )


def devkit_synsets(meta: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid of the 1000 leaf synsets of the devkit's meta.mat."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise StudyError(f"reading {meta} needs scipy (pip install scipy, or study's extra: pip install "
                         f"'study[imagenet]', or -e '.[imagenet]' in a checkout)") from None
    try:
        synsets = loadmat(meta, squeeze_me=True)["synsets"]
        ids = [int(s) for s in synsets["ILSVRC2012_ID"]]
        wnids = [str(s) for s in synsets["WNID"]]
        children = [int(s) for s in synsets["num_children"]]
    except Exception as e:  # scipy raises many kinds on a bad file
        raise StudyError(f"{meta}: not a devkit meta.mat ({type(e).__name__}: {e})") from None
    return {i: w for i, w, c in zip(ids, wnids, children) if c == 0}


def devkit_val(root: Path, folder: Path) -> Index:
    devkit = find_devkit(root)
    gt = devkit / "ILSVRC2012_validation_ground_truth.txt"
    meta = require_file(devkit / "meta.mat", "imagenet: devkit meta.mat", in_root=False)
    id_to_wnid = devkit_synsets(meta)
    wnids = sorted(id_to_wnid.values())
    names: dict[str, str] = {}
    blank = None
    with open_text(gt) as f:
        for line_no, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                blank = blank or line_no
                continue
            if blank:  # line i labels image i: a blank line between labels would shift the rest by one
                raise StudyError(f"{gt} line {blank}: blank line between labels (line i labels image "
                                 f"ILSVRC2012_val_i); remove it")
            try:
                ilsvrc_id = decimal_int(text)
            except ValueError:
                raise StudyError(f"{gt} line {line_no}: expected an integer ILSVRC2012_ID, got {text[:40]!r}") from None
            if ilsvrc_id not in id_to_wnid:
                raise StudyError(f"{gt} line {line_no}: label {ilsvrc_id} is out of range (not a class of {meta})")
            names[f"ILSVRC2012_val_{line_no:08d}"] = id_to_wnid[ilsvrc_id]
    index = flat_folder_index(root, folder, names, wnids, gt)
    index.sources += [source_entry(root, gt), source_entry(root, meta)]
    return index
