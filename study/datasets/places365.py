"""`places365`: Places365-Standard from its list files (no directory scan: the lists are authoritative).

`categories_places365.txt` gives the classes (`/b/bus_station/indoor 71`: names keep every level, as torchvision);
`places365_train_standard.txt` / `places365_val.txt` give `<path> <label>`. Images lie under the first of
`data_256_standard`, `data_256`, `data_large_standard`, `data_large` (train) or `val_256`, `val_large` (val) that holds
the listed files: every folder the list names, and its first and last file (an empty or half-extracted `data_256/`
does not hide a full `data_large/`, and a list of absent files is refused).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from study.datasets.base import (DATASETS, Index, ReaderOptions, first_repeat, open_text, parent_folders,
                                 require_file, source_entry)
from study.errors import StudyError

LISTS = {"train": "places365_train_standard.txt", "val": "places365_val.txt"}
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
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            line_nos.append(line_no)
            name, sep, number = text.rpartition(" ")
            if not sep or not name:
                raise StudyError(f"{path} line {line_no}: expected '<path> <label>', got {text[:80]!r}")
            try:
                numbers.append(int(number))
            except ValueError:
                raise StudyError(f"{path} line {line_no}: label {number[:20]!r} is not an integer") from None
            names.append(name)
    return names, numbers, line_nos


def find_image_dir(root: Path, split: str, keys: pa.Array, list_file: Path) -> str:
    """The first of `IMAGE_DIRS[split]` under `root` that holds every folder the list's `keys` name (one `is_dir` per
    folder, not per image) and its first and last file; StudyError naming the list file and, for each candidate that
    exists, the first thing it lacks."""
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
            return d
        lacking.append(missing)
    raise StudyError(f"{list_file}: the images it lists are not under {root}: {', '.join(lacking)} not found "
                     "(extract the images there)")


@DATASETS.register("places365")
def read_places365(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in LISTS:
        raise StudyError(f"places365: unknown split {split!r} (expected train or val; test has no labels)")
    cat_file = require_file(root / "categories_places365.txt", "places365 categories file")
    classes, indices, cat_lines = read_list(cat_file)
    bad = next((i for i, k in enumerate(indices) if k != i), None)
    if bad is not None:
        raise StudyError(f"{cat_file} line {cat_lines[bad]}: class {classes[bad]!r} has index {indices[bad]}, expected "
                         f"{bad} (class indices must be 0..{len(classes) - 1} in line order)")
    list_file = require_file(root / LISTS[split], f"places365 {split} list")
    names, labels, line_nos = read_list(list_file)
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
    del line_nos  # only the errors above name lines (1.8M of them in the train list)
    image_dir = find_image_dir(root, split, keys, list_file)
    paths = pc.binary_join_element_wise(image_dir, keys, "/")
    return Index(
        paths=paths, labels=labels_arr, class_names=classes,
        sources=[source_entry(root, cat_file), source_entry(root, list_file)],
        info={"image_dir": image_dir, "rank_key": "name in the list file"}, keys=keys,
    )
