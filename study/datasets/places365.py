"""`places365`: Places365-Standard from its list files (authoritative: folders are listed only to find each file).

`categories_places365.txt` gives the classes (`/b/bus_station/indoor 71`: names keep every level, as torchvision);
`places365_train_standard.txt` / `places365_val.txt` give `<path> <label>`. Images lie under the first of
`data_256_standard`, `data_256`, `data_large_standard`, `data_large` (train) or `val_256`, `val_large` (val) that holds
the listed files: every folder the list names, and every file (one listing per folder, no stat per image: an empty
or half-extracted `data_256/` does not hide a full `data_large/`, and a list naming an absent file is refused).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.datasets.base import (DATASETS, Index, ReaderOptions, absent_files, decimal_int, dirnames, first_repeat,
                                 open_text, parent_folders, require_file, source_entry)
from study.errors import StudyError

LISTS = {"train": "places365_train_standard.txt", "val": "places365_val.txt"}
FILELIST = ("filelist_places365-standard.tar",)  # the archive the official site ships the four list files in
IMAGE_DIRS = {
    "train": ("data_256_standard", "data_256", "data_large_standard", "data_large"),
    "val": ("val_256", "val_large"),
}


def read_list(path: Path) -> tuple[list[str], list[int], list[int]]:
    """`<name> <int>` lines (names may hold spaces: split on the last one), and the line number of each (blank lines
    are skipped); StudyError naming a bad line."""
    names, numbers, line_nos = [], [], []
    with open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            text = line.rstrip()  # trailing spaces too: after the label, they belong to no name
            if not text.strip():
                continue
            line_nos.append(line_no)
            name, sep, number = text.rpartition(" ")
            if not sep or not name:
                raise StudyError(f"{path} line {line_no}: expected '<path> <label>', got {text[:80]!r}")
            try:
                numbers.append(decimal_int(number))
            except ValueError:
                raise StudyError(f"{path} line {line_no}: label {number[:20]!r} is not an integer") from None
            names.append(name)
    return names, numbers, line_nos


def find_image_dir(root: Path, split: str, keys: pa.Array, list_file: Path, line_nos: list[int]) -> str:
    """The first of `IMAGE_DIRS[split]` under `root` that holds every folder the list's `keys` name (one `is_dir` per
    folder, not per image), its first and last file, then every file it lists (one listing per folder:
    `absent_files`); StudyError naming the list file and, for each candidate that exists, the first thing it lacks
    (a file with its line)."""
    existing = [d for d in IMAGE_DIRS[split] if (root / d).is_dir()]
    if not existing:
        raise StudyError(f"places365: no image folder for {split} under {root} (expected one of "
                         f"{', '.join(IMAGE_DIRS[split])})")
    folders = parent_folders(keys)
    ends = [keys[0].as_py(), keys[-1].as_py()] if len(keys) else []
    lacking = []
    for d in existing:
        missing = next((f"{d}/{f}/" for f in folders if not (root / d / f).is_dir()), None)
        missing = missing or next((f"{d}/{k}" for k in ends if not (root / d / k).is_file()), None)
        if missing is None:
            absent = absent_files(root / d, keys)
            if not len(absent):
                return d
            i = int(absent[0])
            more = f", {len(absent) - 1} more after it" if len(absent) > 1 else ""
            missing = f"{d}/{keys[i].as_py()} (line {line_nos[i]}{more})"
        lacking.append(missing)
    raise StudyError(f"{list_file}: the images it lists are not under {root}: {', '.join(lacking)} not found "
                     "(extract the images there)")


def check_class_folders(keys: pa.Array, names: list[str], labels: np.ndarray, classes: list[str], list_file: Path,
                        cat_file: Path, line_nos: list[int]) -> None:
    """StudyError naming the first line whose image lies in a folder other than its label's class (`a/abbey/x.jpg 3`:
    a list and a categories file that do not belong together); names without a folder (val's) are not checked. `keys`
    are the list's `names` without their leading `/`; the error quotes the name as the list writes it."""
    folders = dirnames(keys)
    named = pc.take(pa.array([c.strip("/") for c in classes], type=pa.string()), pa.array(labels))
    wrong = np.flatnonzero(pc.and_(pc.not_equal(folders, ""), pc.not_equal(folders, named)).to_numpy(
        zero_copy_only=False))
    if len(wrong):
        i = int(wrong[0])
        raise StudyError(f"{list_file} line {line_nos[i]}: image {names[i]!r} has label {int(labels[i])}, "
                         f"class {classes[labels[i]]!r} in {cat_file.name}, but lies in another class's folder "
                         f"({len(wrong)} line(s) so): use the list and categories file of one release")


@DATASETS.register("places365")
def read_places365(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in LISTS:
        raise StudyError(f"places365: unknown split {split!r} (expected train or val; test has no labels)")
    cat_file = require_file(root / "categories_places365.txt", "places365 categories file", archives=FILELIST)
    classes, indices, cat_lines = read_list(cat_file)
    if not classes:
        raise StudyError(f"{cat_file}: lists no class (an empty file: extract it again)")
    bad = next((i for i, k in enumerate(indices) if k != i), None)
    if bad is not None:
        raise StudyError(f"{cat_file} line {cat_lines[bad]}: class {classes[bad]!r} has index {indices[bad]}, expected "
                         f"{bad} (class indices must be 0..{len(classes) - 1} in line order)")
    twice = first_repeat(pa.array(classes, type=pa.string()))
    if twice:  # two labels of one name: a test split matched to its train split by name would merge them
        raise StudyError(f"{cat_file} line {cat_lines[twice[1]]}: class {classes[twice[1]]!r} is listed twice, first "
                         f"on line {cat_lines[twice[0]]}")
    list_file = require_file(root / LISTS[split], f"places365 {split} list", archives=FILELIST)
    names, labels, line_nos = read_list(list_file)
    if not names:
        raise StudyError(f"{list_file}: lists no image (an empty file: extract it again)")
    labels_arr = np.array(labels, dtype=np.int64)
    bad = np.flatnonzero((labels_arr < 0) | (labels_arr >= len(classes)))
    if len(bad):
        i = int(bad[0])
        raise StudyError(f"{list_file} line {line_nos[i]}: label {labels[i]} of {names[i]!r} is out of range "
                         f"0..{len(classes) - 1}")
    keys = pa.array([n.lstrip("/") for n in names], type=pa.string())
    twice = first_repeat(keys)
    if twice:
        i, j = twice
        labelled = f" (label {labels[i]} there, {labels[j]} here)" if labels[i] != labels[j] else ""
        raise StudyError(f"{list_file} line {line_nos[j]}: image {names[j]!r} is listed twice, first on line "
                         f"{line_nos[i]}{labelled}")
    check_class_folders(keys, names, labels_arr, classes, list_file, cat_file, line_nos)
    image_dir = find_image_dir(root, split, keys, list_file, line_nos)
    paths = pc.binary_join_element_wise(image_dir, keys, "/")
    return Index(
        paths=paths, labels=labels_arr, class_names=classes,
        sources=[source_entry(root, cat_file), source_entry(root, list_file)],
        info={"image_dir": image_dir, "rank_key": "name in the list file"}, keys=keys,
    )
