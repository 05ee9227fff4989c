"""Write the quickstart's images once as real PNG files in image-folder trees (`<root>/<split>/<class>/<n>.png`).

A tree is written into a temporary folder and renamed into place when complete, so a killed export leaves nothing
half-written, and an existing complete tree is reused.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from study.atomic import write_text_if_changed
from study.datasets.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES, idx_file
from study.datasets.idx import load_idx
from study.errors import StudyError
from study.quickstart import digits

# The two-level taxonomy of the granularity axis: 10 Fashion-MNIST classes under 5 coarse groups.
FASHION_GROUPS = {
    "T-shirt/top": "tops", "Pullover": "tops", "Coat": "tops", "Shirt": "tops",
    "Trouser": "bottoms",
    "Dress": "dresses",
    "Sandal": "footwear", "Sneaker": "footwear", "Ankle boot": "footwear",
    "Bag": "bags",
}
COMPLETE = ".complete.json"


def folder_name(class_name: str) -> str:
    """A class name as a folder name: `T-shirt/top` -> `t-shirt_top`, `Ankle boot` -> `ankle_boot`."""
    return class_name.lower().replace("/", "_").replace(" ", "_")


@dataclass(frozen=True)
class Split:
    name: str
    images: np.ndarray  # N x H x W uint8
    labels: np.ndarray  # N int


def take_per_class(labels: np.ndarray, per_class: int | None) -> np.ndarray:
    """Indices of the first `per_class` images of each class, in file order (all when None)."""
    if per_class is None:
        return np.arange(len(labels))
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    return np.sort(keep)


def write_tree(root: Path, splits: list[Split], class_names: list[str]) -> Path:
    """Write `root/<split>/<class folder>/<index>.png` for every split; reuse a complete tree with the same counts,
    replace one with other counts; refuse to replace a folder this function did not write."""
    expected = {s.name: int(len(s.labels)) for s in splits}
    marker = root / COMPLETE
    if marker.is_file() and json.loads(marker.read_text()).get("counts") == expected:
        return root
    if root.exists() and not marker.is_file() and (not root.is_dir() or any(root.iterdir())):
        raise StudyError(f"{root} exists and was not written by study quickstart (it has no {COMPLETE}); it would "
                         f"be replaced: give another --data, or move it away")
    tmp, old = root.with_name(root.name + ".partial"), root.with_name(f".{root.name}.replaced")  # ours alone
    for leftover in (tmp, old):  # of a run killed while writing, or while replacing
        shutil.rmtree(leftover, ignore_errors=True)
    total = sum(expected.values())
    done = 0
    for split in splits:
        for c, name in enumerate(class_names):
            (tmp / split.name / folder_name(name)).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(split.images, split.labels)):
            Image.fromarray(img, mode="L").save(tmp / split.name / folder_name(class_names[label]) / f"{i:05d}.png")
            done += 1
            if done % 10000 == 0 or done == total:
                print(f"[quickstart] {root.name}: {done}/{total} PNG files written", file=sys.stderr)
    (tmp / COMPLETE).write_text(json.dumps({"counts": expected}) + "\n")
    if root.exists():  # moved aside whole, then deleted: a kill never leaves a marked tree short of images
        root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)
    return root


def export_fashion_mnist(out: Path, idx_dir: Path, per_class_train: int | None = None,
                         per_class_test: int | None = None) -> Path:
    """Fashion-MNIST as PNG trees under `out/fashion-mnist/{train,test}`, plus `taxonomy.csv` (group, class_name)."""
    classes = list(FASHION_MNIST_CLASSES)
    splits = []
    for split, stem, per_class in (("train", "train", per_class_train), ("test", "t10k", per_class_test)):
        images = load_idx(idx_file(idx_dir, f"{stem}-images-idx3-ubyte", "images"))
        labels = load_idx(idx_file(idx_dir, f"{stem}-labels-idx1-ubyte", "labels")).astype(np.int64)
        keep = take_per_class(labels, per_class)
        splits.append(Split(split, images[keep], labels[keep]))
    root = write_tree(out / "fashion-mnist", splits, classes)
    taxonomy = "group,class_name\n" + "".join(f"{FASHION_GROUPS[c]},{folder_name(c)}\n" for c in classes)
    write_text_if_changed(root / "taxonomy.csv", taxonomy)  # a read-only --data prepared before: as it is
    return root


def export_digits(out: Path, per_class_train: int, per_class_test: int) -> Path:
    """MNIST digits as PNG trees under `out/mnist/{train,test}`: per class, the first images go to train, the next
    to test."""
    images, labels = digits.load()
    train_idx, test_idx = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        train_idx.append(idx[:per_class_train])
        test_idx.append(idx[per_class_train:per_class_train + per_class_test])
    train_idx, test_idx = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))
    names = [str(d) for d in range(10)]
    splits = [Split("train", images[train_idx], labels[train_idx]), Split("test", images[test_idx], labels[test_idx])]
    return write_tree(out / "mnist", splits, names)
