"""Fast listing of `<dir>/<class>/<image>` trees with `os.scandir` (file types from getdents, no stat per file)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from study.errors import StudyError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def require_utf8(names: list[str], folder: Path | str) -> list[str]:
    """`names`, or a StudyError naming the first that is not valid UTF-8 (a manifest stores paths as UTF-8 text)."""
    for name in names:
        if not name.isascii():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                shown = ascii(os.fsencode(name))[1:]
                raise StudyError(f"{folder}: file name {shown} is not valid UTF-8; rename it (e.g. with "
                                 "`convmv -f latin1 -t utf8`)") from None
    return names


def list_dirs(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of `folder` (hidden ones skipped)."""
    with os.scandir(folder) as it:
        return require_utf8(sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir()), folder)


def list_files(folder: Path, extensions: tuple[str, ...] = IMG_EXTENSIONS, recursive: bool = True) -> list[str]:
    """Sorted `/`-separated paths, relative to `folder`, of the files whose lower-case name ends in `extensions`."""
    out: list[str] = []
    stack = [("", os.fspath(folder))]
    while stack:
        prefix, path = stack.pop()
        with os.scandir(path) as it:
            entries = [e for e in it if e.name[:1] != "."]
        files = [e for e in entries if e.name.lower().endswith(extensions)]
        if prefix:
            out.extend([prefix + e.name for e in files if e.is_file()])
        else:
            out.extend([e.name for e in files if e.is_file()])
        if recursive and len(files) != len(entries):
            chosen = set(map(id, files))
            stack.extend((prefix + e.name + "/", e.path) for e in entries if id(e) not in chosen and e.is_dir())
    out.sort()
    return require_utf8(out, folder)


def scan_threads() -> int:
    """`STUDY_SCAN_THREADS` (default 1); StudyError naming the variable and its value unless a whole number >= 1."""
    text = os.environ.get("STUDY_SCAN_THREADS", "1")
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise StudyError(f"STUDY_SCAN_THREADS={text!r}: expected a whole number of threads, 1 or more")
    return threads


def scan_class_tree(folder: Path, threads: int | None = None) -> tuple[list[str], list[list[str]]]:
    """Classes (sorted sub-folder names) and, per class, its sorted image paths relative to the class folder.

    `threads` (default `STUDY_SCAN_THREADS`, else 1) lists class folders in parallel: worth it on network
    filesystems, where listing waits on the server; on a local disk one thread is fastest."""
    if threads is None:
        threads = scan_threads()
    classes = list_dirs(folder)
    if threads > 1 and len(classes) > 1:
        with ThreadPoolExecutor(threads) as pool:
            files = list(pool.map(lambda c: list_files(folder / c), classes))
    else:
        files = [list_files(folder / c) for c in classes]
    return classes, files
