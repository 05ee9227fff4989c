"""Dataset readers: one file per on-disk layout, each registered in `DATASETS`.

A reader is `read(root: Path, split: str, options: ReaderOptions) -> Index`. It lists every image of a split
with its label, never opening an image (GLC20's land-cover label rules aside), in an order that never depends on
the filesystem's listing order. Its `options` attribute names the ReaderOptions it reads (`reader_options`);
its other optional attributes are `suggested_splits`, `splits`, `shared_files` and `own_taxonomy`
(base.READER_ATTRIBUTES).
"""
from __future__ import annotations

from study.datasets.base import DATASETS, Index, ReaderOptions, read_dataset

from study.registry import import_modules  # noqa: E402

import_modules(__name__, __path__)  # each reader module registers itself

__all__ = ["DATASETS", "Index", "ReaderOptions", "read_dataset"]
