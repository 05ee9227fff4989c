"""`places365`: Places365-Standard from its list files (no directory scan: the lists are authoritative).

`categories_places365.txt` gives the classes (`/b/bus_station/indoor 71`: names keep every level, as torchvision);
`places365_train_standard.txt` / `places365_val.txt` give `<path> <label>`. Images lie under the first existing of
`data_256_standard`, `data_256`, `data_large_standard`, `data_large` (train) or `val_256`, `val_large` (val).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from study.datasets.base import DATASETS, Index, ReaderOptions, open_text, require_file, source_entry
from study.errors import StudyError

LISTS = {"train": "places365_train_standard.txt", "val": "places365_val.txt"}
IMAGE_DIRS = {
    "train": ("data_256_standard", "data_256", "data_large_standard", "data_large"),
    "val": ("val_256", "val_large"),
}


def read_list(path: Path) -> tuple[list[str], list[int]]:
    """`<name> <int>` lines (names may hold spaces: split on the last one); StudyError naming a bad line."""
    names, numbers = [], []
    with open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            name, sep, number = text.rpartition(" ")
            if not sep or not name:
                raise StudyError(f"{path} line {line_no}: expected '<path> <label>', got {text[:80]!r}")
            try:
                numbers.append(int(number))
            except ValueError:
                raise StudyError(f"{path} line {line_no}: label {number[:20]!r} is not an integer") from None
            names.append(name)
    return names, numbers


@DATASETS.register("places365")
def read_places365(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in LISTS:
        raise StudyError(f"places365: unknown split {split!r} (expected train or val; test has no labels)")
    cat_file = require_file(root / "categories_places365.txt", "places365 categories file")
    classes, indices = read_list(cat_file)
    if indices != list(range(len(classes))):
        raise StudyError(f"{cat_file}: class indices must be 0..{len(classes) - 1} in line order")
    list_file = require_file(root / LISTS[split], f"places365 {split} list")
    image_dir = next((d for d in IMAGE_DIRS[split] if (root / d).is_dir()), None)
    if image_dir is None:
        raise StudyError(f"places365: no image folder for {split} under {root} (expected one of "
                         f"{', '.join(IMAGE_DIRS[split])})")
    names, labels = read_list(list_file)
    labels_arr = np.array(labels, dtype=np.int64)
    bad = np.flatnonzero((labels_arr < 0) | (labels_arr >= len(classes)))
    if len(bad):
        i = int(bad[0])
        raise StudyError(f"{list_file}: label {labels[i]} of {names[i]!r} is out of range 0..{len(classes) - 1}")
    keys = [n.lstrip("/") for n in names]
    paths = pa.array([f"{image_dir}/{k}" for k in keys], type=pa.string())
    return Index(
        paths=paths, labels=labels_arr, class_names=classes,
        sources=[source_entry(root, cat_file), source_entry(root, list_file)],
        info={"image_dir": image_dir, "rank_key": "name in the list file"}, keys=pa.array(keys, type=pa.string()),
    )
