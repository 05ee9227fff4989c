"""Dataset readers: one file per on-disk layout, each registered in `DATASETS`.

A reader is `read(root: Path, split: str, options: ReaderOptions) -> Index`. It lists every image of a split
with its label, never opening an image (GLC20's land-cover label rules aside), in an order that never depends on
the filesystem's listing order.
"""
from __future__ import annotations

from study.datasets.base import DATASETS, Index, ReaderOptions, read_dataset

# Each module registers its reader.
from study.datasets import fashion_mnist, glc20, imagefolder, imagenet, inat21, places365  # noqa: E402,F401

__all__ = ["DATASETS", "Index", "ReaderOptions", "read_dataset"]
