"""Fast listing of `<dir>/<class>/<image>` trees with `os.scandir` (file types from getdents, no stat per file)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def list_dirs(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of `folder` (hidden ones skipped)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())


def list_files(folder: Path, extensions: tuple[str, ...] = IMG_EXTENSIONS, recursive: bool = True) -> list[str]:
    """Sorted `/`-separated paths, relative to `folder`, of the files whose lower-case name ends in `extensions`."""
    out: list[str] = []
    stack = [("", os.fspath(folder))]
    while stack:
        prefix, path = stack.pop()
        with os.scandir(path) as it:
            for e in it:
                name = e.name
                if name.startswith("."):
                    continue
                if name.lower().endswith(extensions):
                    if e.is_file():
                        out.append(prefix + name)
                elif recursive and e.is_dir():
                    stack.append((prefix + name + "/", e.path))
    out.sort()
    return out


def scan_class_tree(folder: Path, threads: int = 8) -> tuple[list[str], list[list[str]]]:
    """Classes (sorted sub-folder names) and, per class, its sorted image paths relative to the class folder."""
    classes = list_dirs(folder)
    if threads > 1 and len(classes) > 1:
        with ThreadPoolExecutor(threads) as pool:
            files = list(pool.map(lambda c: list_files(folder / c), classes))
    else:
        files = [list_files(folder / c) for c in classes]
    return classes, files
