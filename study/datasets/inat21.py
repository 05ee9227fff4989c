"""`inat21`: iNaturalist 2021 from its COCO-style JSON (`train.json`, `train_mini.json`, `val.json`).

Annotations are joined to images on `image_id` (never by position); label = `category_id` (0..9999, the same index
torchvision uses). Paths are the images' `file_name`, which already start with the split folder (or that folder as
torchvision renames it, `2021_train`); every file they name must exist (one listing per class folder), and a
folder named as iNat21 names them (`{id:05d}_<taxonomy>`) must hold only images of that category id. The taxonomy is
kept as the columns kingdom, phylum, class, order, family, genus, species (the category's `name`), plus
`supercategory`: every category must have each of these keys, a non-empty string, and a name no other has. The
JSON is parsed with a hook that keeps only (id, file_name) and (image_id, category_id) pairs, so the whole
2.7M-image file fits in a few GB.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.datasets.base import (DATASETS, Index, ReaderOptions, absent_files, archive_beside, basenames, first_repeat,
                                 require_file, source_entry)
from study.errors import StudyError

LEVELS = ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
SPLITS = ("train", "train_mini", "val")
CATEGORY_KEYS = ("name", "supercategory", *LEVELS[:-1])  # what the columns are made of


class _Image(tuple):
    __slots__ = ()


class _Annotation(tuple):
    __slots__ = ()


def _hook(d: dict):
    if "file_name" in d:
        return _Image((d.get("id"), d["file_name"]))
    if "image_id" in d:
        return _Annotation((d["image_id"], d.get("category_id")))
    return d


def load_coco(path: Path) -> dict:
    """The JSON document, images and annotations reduced to pairs; StudyError naming line and column if malformed."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        doc = json.loads(data, object_hook=_hook)
    except json.JSONDecodeError as e:
        if e.pos >= len(data.rstrip()):  # the document stops mid-way: an extraction or a copy cut short
            raise StudyError(f"{path} line {e.lineno} column {e.colno}: the file ends before its JSON does "
                             f"({len(data)} bytes; cut short?): extract it again") from None
        raise StudyError(f"{path} line {e.lineno} column {e.colno}: malformed JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise StudyError(f"{path}: not UTF-8 JSON ({e})") from None
    if not isinstance(doc, dict):
        raise StudyError(f"{path}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            what = "no annotations (a test split has no labels)" if key == "annotations" else f"no {key!r} list"
            raise StudyError(f"{path}: {what}")
    return doc


# torchvision's INaturalist extracts the split folders under other names
TORCHVISION_FOLDERS = {"train": "2021_train", "train_mini": "2021_train_mini", "val": "2021_valid"}


def _locate(root: Path, paths: pa.Array, json_path: Path) -> pa.Array:
    """`paths` (the images' file_name), checked to lie in folders that exist under `root` (one stat per class
    folder, not per image): a split folder renamed as torchvision's download renames it (`train` -> `2021_train`)
    is followed; any other missing folder is a StudyError, not a manifest of absent files found hours later."""
    def missing_in(p: pa.Array) -> list[str]:
        folders = pc.unique(pc.replace_substring_regex(p, pattern="/[^/]*$", replacement="")).to_pylist()
        return sorted(f for f in folders if not (root / f).is_dir())

    missing = missing_in(paths)
    renamed = [t for t in sorted({f.split("/", 1)[0] for f in missing})
               if t in TORCHVISION_FOLDERS and (root / TORCHVISION_FOLDERS[t]).is_dir()]
    for t in renamed:
        paths = pc.replace_substring_regex(paths, pattern=f"^{t}/", replacement=f"{TORCHVISION_FOLDERS[t]}/")
    if renamed:  # what is still missing is missing under either name
        missing = missing_in(paths)
    if missing:
        raise StudyError(f"{json_path}: {len(missing)} image folder(s) it names are not under {root} (e.g. "
                         f"{missing[0]}/): extract the split's images there (folder names as in its file_name)")
    return paths


def _ints(values: list, path: Path, what: str) -> np.ndarray:
    """`values` as int64; StudyError naming the first that is not a JSON integer (a string, float or bool)."""
    bad = next((i for i, v in enumerate(values) if type(v) is not int), None)
    if bad is not None:
        raise StudyError(f"{path}: {what} {bad} is {values[bad]!r}, not an integer")
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        bad = next(i for i, v in enumerate(values) if not -2**63 <= v < 2**63)
        raise StudyError(f"{path}: {what} {bad} is {values[bad]!r}, out of the int64 range") from None


def check_categories(categories: list[dict], path: Path) -> None:
    """Every category has each of `CATEGORY_KEYS` as a non-empty string (an empty one would make "" one value of
    every class left so, as a taxonomy CSV's blank cell), and a name no other has; StudyError naming the category
    (`categories[i]` and its id) and the key."""
    named: dict[str, int] = {}
    for i, c in enumerate(categories):
        for key in CATEGORY_KEYS:
            if key not in c:
                raise StudyError(f"{path}: categories[{i}] (id {c['id']}) has no {key!r}")
            if not isinstance(c[key], str):
                raise StudyError(f"{path}: categories[{i}] (id {c['id']}) {key!r} is {c[key]!r}, not a string")
            if not c[key].strip():
                raise StudyError(f"{path}: categories[{i}] (id {c['id']}) {key!r} is {c[key]!r}: give every level "
                                 "a value")
        j = named.setdefault(c["name"], i)
        if j != i:
            raise StudyError(f"{path}: categories[{j}] (id {categories[j]['id']}) and categories[{i}] (id {c['id']}) "
                             f"have the same name {c['name']!r}")


FOLDER_ID = re.compile(r"(\d{5})_")  # iNat21's class folders: {id:05d}_{kingdom}_..._{specific_epithet}


def check_folder_ids(paths: pa.Array, labels: np.ndarray, class_names: list[str], path: Path) -> None:
    """Each class folder named as iNat21 names them holds only images annotated with the category of its id prefix
    (the label torchvision gives them); StudyError naming the first folder (by name) that holds another's."""
    folders = pc.list_element(pc.split_pattern(paths, "/", max_splits=1, reverse=True), 0)  # no regex: 2.7M rows
    pairs = pa.table({"folder": folders, "label": labels}).group_by(["folder", "label"]).aggregate([])
    for folder, label in sorted((f.rsplit("/", 1)[-1], lab) for f, lab in
                                zip(pairs["folder"].to_pylist(), pairs["label"].to_pylist())):
        m = FOLDER_ID.match(folder)
        if m and int(m[1]) != label:
            raise StudyError(f"{path}: folder {folder}/ holds images annotated as category {label} "
                             f"({class_names[label]!r}), not {int(m[1])} as its name says: the annotations and the "
                             "image folders disagree (torchvision labels by the folder)")


def _by_category_id(categories: list, path: Path) -> list[dict]:
    """The categories in id order; StudyError naming the first without an id, or whose id is out of 0..C-1 or
    taken."""
    for i, c in enumerate(categories):
        if not isinstance(c, dict) or "id" not in c:
            raise StudyError(f"{path}: categories[{i}] has no 'id'")
    cat_ids = _ints([c["id"] for c in categories], path, "categories[i].id of entry")
    num_classes = len(categories)
    first: dict[int, int] = {}
    for i, cat_id in enumerate(cat_ids.tolist()):
        if not 0 <= cat_id < num_classes or cat_id in first:
            why = f"as categories[{first[cat_id]}]" if cat_id in first else "out of range"
            raise StudyError(f"{path}: categories[{i}] has id {cat_id}, {why} (category ids must be "
                             f"0..{num_classes - 1}, each once)")
        first[cat_id] = i
    return [categories[i] for i in np.argsort(cat_ids)]


def _labels_of_images(image_ids: np.ndarray, ann_image: np.ndarray, ann_cat: np.ndarray, num_classes: int,
                      path: Path) -> np.ndarray:
    """Each image's label (its one annotation's category id), in images order; StudyError naming an image id listed
    twice, an annotation of no image or of a category out of range, or an image with no or several annotations."""
    order = np.argsort(image_ids, kind="stable")
    sorted_ids = image_ids[order]
    dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if len(dup):
        raise StudyError(f"{path}: image id {int(sorted_ids[dup[0]])} is listed twice")
    pos = np.searchsorted(sorted_ids, ann_image)
    pos_clipped = np.minimum(pos, len(sorted_ids) - 1)
    unknown = np.flatnonzero(sorted_ids[pos_clipped] != ann_image)
    if len(unknown):
        i = int(unknown[0])
        raise StudyError(f"{path}: annotations[{i}] refers to image id {int(ann_image[i])}, which is not in images")
    out_of_range = np.flatnonzero((ann_cat < 0) | (ann_cat >= num_classes))
    if len(out_of_range):
        i = int(out_of_range[0])
        raise StudyError(f"{path}: annotations[{i}]: label (category_id) {int(ann_cat[i])} is out of range "
                         f"0..{num_classes - 1}")
    counts = np.bincount(pos, minlength=len(sorted_ids))
    if (counts > 1).any():
        j = int(np.flatnonzero(counts > 1)[0])
        raise StudyError(f"{path}: image id {int(sorted_ids[j])} has more than one annotation")
    if (counts == 0).any():
        j = int(np.flatnonzero(counts == 0)[0])
        raise StudyError(f"{path}: image id {int(sorted_ids[j])} has no annotation")
    labels = np.empty(len(image_ids), dtype=np.int64)
    labels[order[pos]] = ann_cat
    return labels


def _image_paths(root: Path, names: list, image_ids: np.ndarray, path: Path) -> pa.Array:
    """The images' paths under `root` (`/` separators; `_locate`), each a string, listed once and present (one
    listing per class folder); StudyError naming the first image that is not."""
    try:
        paths = pa.array(names, type=pa.string())
        if paths.null_count:  # pyarrow takes None as a null string
            raise pa.ArrowInvalid("null")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        bad = next(i for i, n in enumerate(names) if not isinstance(n, str))
        raise StudyError(f"{path}: images[{bad}].file_name is {names[bad]!r}, not a string") from None
    paths = pc.replace_substring(paths, "\\", "/")
    twice = first_repeat(paths)
    if twice:
        i, j = twice
        raise StudyError(f"{path}: images[{j}] (id {image_ids[j]}) has the file_name of images[{i}] "
                         f"(id {image_ids[i]}), {names[j]!r}: an image is listed once")
    paths = _locate(root, paths, path)
    absent = absent_files(root, paths)  # one listing per class folder: a half-extracted train.tar.gz
    if len(absent):
        i = int(absent[0])
        more = f" ({len(absent) - 1} more after it)" if len(absent) > 1 else ""
        raise StudyError(f"{path}: images[{i}] (id {image_ids[i]}) {paths[i].as_py()!r} is not under {root}{more}: "
                         "extract the split's images completely")
    return paths


@DATASETS.register("inat21")
def read_inat21(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in SPLITS:
        raise StudyError(f"inat21: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    path = root / f"{split}.json"
    # a site often downloads train_mini (42 GB) alone, or train alone: a train split named for the other is told so
    others = [s for s in ("train_mini", "train") if split != "val" and s != split]
    other = next((s for s in others if (root / f"{s}.json").is_file()), None)
    if other and not path.is_file() and not archive_beside(path):
        raise StudyError(f"inat21 {split} annotation file not found: {path} (found {other}.json beside it: give "
                         f"--split {other})")
    path = require_file(path, f"inat21 {split} annotation file")
    doc = load_coco(path)
    images, annotations, categories = doc["images"], doc["annotations"], doc["categories"]

    by_id = _by_category_id(categories, path)
    num_classes = len(categories)
    bad = next((i for i, x in enumerate(images) if not isinstance(x, _Image)), None)
    if bad is not None:
        raise StudyError(f"{path}: images[{bad}] has no 'file_name'")
    bad = next((i for i, x in enumerate(annotations) if not isinstance(x, _Annotation)), None)
    if bad is not None:
        raise StudyError(f"{path}: annotations[{bad}] has no 'image_id'")
    image_ids = _ints([x[0] for x in images], path, "id of images entry")
    if not len(image_ids):
        raise StudyError(f"{path}: the images list is empty")
    names = [x[1] for x in images]
    del doc, images
    ann_image = _ints([x[0] for x in annotations], path, "image_id of annotations entry")
    ann_cat = _ints([x[1] for x in annotations], path, "category_id of annotations entry")
    del annotations

    labels = _labels_of_images(image_ids, ann_image, ann_cat, num_classes, path)
    check_categories(categories, path)
    paths = _image_paths(root, names, image_ids, path)

    def per_class(key: str) -> list[str]:
        return [c[key] for c in by_id]

    class_names = per_class("name")
    check_folder_ids(paths, labels, class_names, path)
    label_array = pa.array(labels, type=pa.int64())
    columns = {"supercategory": pc.take(pa.array(per_class("supercategory")), label_array)}
    for level in LEVELS:
        values = class_names if level == "species" else per_class(level)
        columns[level] = pc.take(pa.array(values, type=pa.string()), label_array)
    return Index(
        paths=paths, labels=labels, class_names=class_names, levels=list(LEVELS), columns=columns,
        sources=[source_entry(root, path)], keys=basenames(paths), info={"rank_key": "file name"},
    )


# its index holds the seven taxonomy levels of its own annotations: `study plan` asks no --taxonomy file of it
read_inat21.own_taxonomy = True
