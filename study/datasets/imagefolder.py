"""`imagefolder`: any `<root>/<class>/<image>` tree (or `<root>/<split>/<class>/<image>` when that folder exists; a
root with other split folders but not the one asked for is an error). A split named but without its folder is the
whole tree: every such split gets the same images, so a note on stderr says so, unless the root is the split's own
folder (`--root data/train --split train`) (`info["image_dir"]` is "."); a tree whose every folder holds split
folders (`--root data` for `data/shapes/train/`: a root one level too high), or every folder with images (beside a
`notes/` or an empty folder), is an error; some of them, a warning.

Classes are the sorted sub-folder names (label = index, as torchvision's ImageFolder); images are the files with an
image extension anywhere under a class folder, sorted by path, symbolic links followed. Refused, where torchvision
reads on: images beside the class folders (no class would list them), two paths to one file (a link into another
class folder: one image under two labels), a folder link loop (study.datasets.scan.scan_class_tree).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from study.datasets.base import DATASETS, Index, ReaderOptions
from study.datasets.scan import IMG_EXTENSIONS, scan_class_tree, skipped
from study.errors import StudyError


def index_class_tree(root: Path, folder: Path) -> Index:
    """Index of the class tree at `folder`: paths relative to `root`, keys relative to `folder`."""
    classes, files, skipped = scan_class_tree(folder)
    if not classes:
        raise StudyError(f"no class folders in {folder}")
    prefix = folder.relative_to(root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    keys: list[str] = []
    counts = []
    for c, names in zip(classes, files):
        keys.extend([f"{c}/{n}" for n in names])
        counts.append(len(names))
    what_counts = f"an image is a file ending in {' '.join(IMG_EXTENSIONS)}, any case: convert other formats"
    if skipped:  # a class of .heic photos would otherwise shrink without a word
        common = sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))[:5]  # ties by name: the same note each time
        kinds = ", ".join(f"{n} {ext}" for ext, n in common) + (", ..." if len(skipped) > 5 else "")
        print(f"[manifest] note: {sum(skipped.values())} file(s) in the class folders of {folder} are not listed, "
              f"not images by their name ({kinds}); {what_counts}", file=sys.stderr)
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:  # kept (a test split may list a class only to align labels with its train split), but said
        print(f"[manifest] warning: {len(empty)} class folder(s) of {folder} hold no image and become classes "
              f"without images: {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''} ({what_counts}; "
              "remove a folder that is not a class)", file=sys.stderr)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), counts)
    paths = pa.array([prefix + k for k in keys], type=pa.string())
    return Index(paths=paths, labels=labels, class_names=classes, keys=pa.array(keys, type=pa.string()),
                 info={"rank_key": "path within the split folder"})


SPLIT_FOLDERS = ("train", "val", "validation", "test")  # a root holding one of these is a tree of splits


def _split_folders(folder: Path) -> list[str]:
    """The SPLIT_FOLDERS that `folder` holds."""
    return [s for s in SPLIT_FOLDERS if (folder / s).is_dir()]


@DATASETS.register("imagefolder")
def read_imagefolder(root: Path, split: str, options: ReaderOptions) -> Index:
    folder = root / split if split and (root / split).is_dir() else root
    if folder == root and split:
        splits = _split_folders(root)
        if splits:  # the split folders would become the classes
            raise StudyError(f"{root}: no {split!r} folder (it has split folders {splits}); give --split one of them")
        inner = {c.name: _split_folders(c) for c in sorted(root.iterdir()) if c.is_dir() and not skipped(c.name)}
        if inner and all(inner.values()):  # `--root data` for data/shapes/train: one class of train and test
            _refuse_root_above_splits(root, inner)
    index = index_class_tree(root, folder)
    if folder == root and split:
        holders = {c: s for c, s in inner.items() if s}
        if holders:  # beside folders with no image (notes/, an empty manifests/): the same mistake
            counts = np.bincount(index.labels, minlength=len(index.class_names))
            if all(c in holders for c, n in zip(index.class_names, counts) if n):
                _refuse_root_above_splits(root, holders)
            print(f"[manifest] warning: class folder(s) {', '.join(holders)} of {root} hold split folders "
                  f"({', '.join(holders[next(iter(holders))])}): each becomes one class of all its images, train and "
                  "test alike; for a dataset laid out so, give --root that folder", file=sys.stderr)
        if root.name != split:  # `--root data/train --split train` names the split's own folder: nothing to say
            print(f"[manifest] note: split {split!r} is the whole tree at {root} (it has no {split}/ folder; any "
                  "other split named so gets the same images)", file=sys.stderr)
    index.info["image_dir"] = folder.relative_to(root).as_posix()
    return index


def _refuse_root_above_splits(root: Path, inner: dict[str, list[str]]) -> None:
    """The StudyError of a root one level above a dataset's split folders (`inner`: folder -> its split folders)."""
    (c, splits), more = next(iter(inner.items())), len(inner) > 1
    raise StudyError(f"{root}: its folder {c} holds split folders {splits}, not images of a class: give "
                     f"--root {root / c}" + (f" (each of its {len(inner)} folders a dataset)" if more else "")
                     + f"; a <class>/<split>/ tree is to be laid out as <split>/<class>/ (move "
                     f"{c}/{splits[0]}/* to {splits[0]}/{c}/)")


# what `study plan` says of a test manifest that shares image files with its train manifest (one root without split
# folders gives every split the whole tree): study.datasets.base.READER_ATTRIBUTES
read_imagefolder.shared_files = ("build the test manifest from another split (an image folder without a folder per "
                                 "split gives every --split the whole tree)")
