"""`fashion-mnist`: the four IDX `.gz` files as Debian's `dataset-fashion-mnist` installs them, or the same files
uncompressed (`train-images-idx3-ubyte`, as Kaggle's copy or `gunzip` leaves them; a `.gz` is read first).

Rows are `<images file>#<index>` in file order; `meta["kind"] == "idx"`. Splits: `train`, `test` (alias `t10k`).
Rank keys name each row by the official release's file name, `train-images-idx3-ubyte.gz#<index>` (the `.gz` name
Zalando publishes), whether the copy on disk is gzipped or not, so that both copies give the same subsets. For
a gzipped copy the keys are its paths; `info` (which is hashed) records no `rank_key` for either copy, so a gzipped
copy's manifests have the rows and content hashes of a reader keyed by path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from study.datasets.base import DATASETS, Index, ReaderOptions, source_entry
from study.datasets.idx import load_idx, read_idx_header
from study.errors import StudyError

# Zalando's class names, in label order.
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
STEMS = {"train": "train", "test": "t10k", "t10k": "t10k"}


def idx_path(root: Path, name: str) -> Path | None:
    """`<root>/<name>.gz`, else `<root>/<name>` (Kaggle's copy, a `gunzip`): the first that is a file; None."""
    for path in (root / f"{name}.gz", root / name):
        if path.is_file():
            return path
    return None


def idx_file(root: Path, name: str, what: str) -> Path:
    """`idx_path(root, name)`; StudyError naming both names when neither is a file."""
    path = idx_path(root, name)
    if path is not None:
        return path
    raise StudyError(f"fashion-mnist {what} file not found: {root / name}.gz (nor {name} uncompressed)")


@DATASETS.register("fashion-mnist")
def read_fashion_mnist(root: Path, split: str, options: ReaderOptions) -> Index:
    if split not in STEMS:
        raise StudyError(f"fashion-mnist: unknown split {split!r} (expected train or test)")
    stem = STEMS[split]
    images = idx_file(root, f"{stem}-images-idx3-ubyte", "images")
    labels_file = idx_file(root, f"{stem}-labels-idx1-ubyte", "labels")
    _, shape = read_idx_header(images)
    if len(shape) != 3:
        raise StudyError(f"{images}: expected an N x H x W image array (idx3), found shape {shape}")
    labels = load_idx(labels_file).astype(np.int64)
    if labels.ndim != 1:
        raise StudyError(f"{labels_file}: expected a 1-D label vector (idx1), found shape {labels.shape}")
    if shape[0] != len(labels):
        raise StudyError(f"{images}: {shape[0]} images but {labels_file} has {len(labels)} labels")
    paths = pa.array([f"{images.name}#{i}" for i in range(len(labels))], type=pa.string())
    keys = pa.array([f"{stem}-images-idx3-ubyte.gz#{i}" for i in range(len(labels))], type=pa.string())
    return Index(
        paths=paths, labels=labels, class_names=list(CLASSES), kind="idx",
        sources=[source_entry(root, images), source_entry(root, labels_file)], keys=keys,
    )
