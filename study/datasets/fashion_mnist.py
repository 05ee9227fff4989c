"""`fashion-mnist`: the four IDX `.gz` files as Debian's `dataset-fashion-mnist` installs them.

Rows are `<images file>#<index>` in file order; `meta["kind"] == "idx"`. Splits: `train`, `test` (alias `t10k`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from study.datasets.base import DATASETS, Index, ReaderOptions, require_file, source_entry
from study.datasets.idx import load_idx, read_idx_header
from study.errors import StudyError

# Zalando's class names, in label order.
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
STEMS = {"train": "train", "test": "t10k", "t10k": "t10k"}


@DATASETS.register("fashion-mnist")
def read_fashion_mnist(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in STEMS:
        raise StudyError(f"fashion-mnist: unknown split {split!r} (expected train or test)")
    stem = STEMS[split]
    images = require_file(root / f"{stem}-images-idx3-ubyte.gz", "fashion-mnist images file")
    labels_file = require_file(root / f"{stem}-labels-idx1-ubyte.gz", "fashion-mnist labels file")
    _, shape = read_idx_header(images)
    labels = load_idx(labels_file).astype(np.int64)
    if labels.ndim != 1 or len(shape) != 3 or shape[0] != len(labels):
        raise StudyError(f"{images}: {shape[0] if shape else 0} images but {labels_file} has {len(labels)} labels")
    paths = pa.array([f"{images.name}#{i}" for i in range(len(labels))], type=pa.string())
    return Index(
        paths=paths, labels=labels, class_names=list(CLASSES), kind="idx",
        sources=[source_entry(root, images), source_entry(root, labels_file)],
    )
