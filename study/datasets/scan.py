"""Fast listing of `<dir>/<class>/<image>` trees with `os.scandir` (file types from getdents, no stat per file; a
tree that holds symbolic links is checked for two paths to one file with one stat per file)."""
from __future__ import annotations

import errno
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from study.errors import UTF8_LOCALE_ADVICE, StudyError

LISTING_PROGRESS_S = 30.0  # a listing that takes longer (a network filesystem) says how far it is, this often
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def require_utf8(names: list[str], folder: Path | str) -> list[str]:
    """`names`, or a StudyError naming the first that is not valid UTF-8 (a manifest stores paths as UTF-8 text); one
    whose bytes are UTF-8 but that this Python decoded with another file system encoding (a C locale under
    PYTHONUTF8=0) says so, not to rename it."""
    for name in names:
        if not name.isascii():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raw = os.fsencode(name)
                try:
                    utf8 = raw.decode("utf-8")
                except UnicodeDecodeError:
                    utf8 = None
                if utf8 is not None:
                    raise StudyError(f"{folder}: file name {utf8!r} is UTF-8, but this Python reads file names as "
                                     f"{sys.getfilesystemencoding()}: {UTF8_LOCALE_ADVICE}") from None
                shown = ascii(raw)[1:]
                raise StudyError(f"{folder}: file name {shown} is not valid UTF-8; rename it (e.g. with "
                                 "`convmv -f latin1 -t utf8`)") from None
    return names


# folders that file systems, NAS boxes and archivers make beside one's own, never a class or its images: Synology's
# thumbnails (`@eaDir/<image>/SYNOPHOTO_THUMB_M.jpg`, read as more images of the class they lie in) and recycle bins,
# a macOS zip's resource forks, Windows' bin and volume folder (not a file system's lost+found, which may hold
# files of the tree an fsck recovered: a reader refuses it where it would be a class)
SYSTEM_FOLDERS = frozenset({"@eaDir", "#recycle", "#snapshot", "__MACOSX", "$RECYCLE.BIN", "System Volume Information"})


def skipped(name: str) -> bool:
    """Whether a folder entry named `name` is skipped by every listing: a hidden one, or one of SYSTEM_FOLDERS (a
    file so named too: none is an image)."""
    return name[:1] == "." or name in SYSTEM_FOLDERS


def _entries(folder: Path | str) -> list[os.DirEntry]:
    """The entries of `folder`, hidden ones and SYSTEM_FOLDERS skipped (one getdents pass)."""
    with os.scandir(folder) as it:
        return [e for e in it if not skipped(e.name)]


def _dir_names(entries: list[os.DirEntry], folder: Path | str) -> list[str]:
    return require_utf8(sorted(e.name for e in entries if e.is_dir()), folder)


def list_dirs(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of `folder` (hidden ones skipped)."""
    return _dir_names(_entries(folder), folder)


def list_files(folder: Path, extensions: tuple[str, ...] = IMG_EXTENSIONS, recursive: bool = True) -> list[str]:
    """Sorted `/`-separated paths, relative to `folder`, of the files whose lower-case name ends in `extensions`.
    Symbolic links are followed; a folder link back to a folder it lies in (a loop), and an image link that leads to no
    file, are a StudyError naming the link."""
    return walk_files(folder, extensions, recursive)[0]


def suffix(name: str) -> str:
    """A file name's extension as a listing counts it: lower case, `(none)` without one."""
    return os.path.splitext(name)[1].lower() or "(none)"


Identity = tuple[int, int]  # (st_dev, st_ino): one file, whatever the path to it


def walk_files(folder: Path, extensions: tuple[str, ...] = IMG_EXTENSIONS, recursive: bool = True
               ) -> tuple[list[str], dict[str, Identity] | None, Counter[str]]:
    """`list_files`; None when no symbolic link was met (no path then reaches a file a second way, hard links
    aside; a tree without links costs no stat per file: file types come from getdents), else the identity of each
    file that is a link (from the stat that following it took); and, when `recursive`, the files left out for their
    extension, counted by `suffix` (hidden ones aside)."""
    out: list[str] = []
    skipped: Counter[str] = Counter()
    links: dict[str, Identity] = {}
    folder_link = False
    stack: list[tuple[str, str, tuple[str, ...]]] = [("", os.fspath(folder), ())]  # and the links taken (real)
    while stack:
        prefix, path, targets = stack.pop()
        entries = _entries(path)
        files = [e for e in entries if e.name.lower().endswith(extensions)]
        plain = [e for e in files if e.is_file(follow_symlinks=False)]
        if len(plain) != len(files):  # links, or folders named like images
            _refuse_dangling(files)
            plain = [e for e in files if e.is_file()]
            links.update({prefix + e.name: identity(e.stat()) for e in plain if e.is_symlink()})
        out.extend([prefix + e.name for e in plain])
        if recursive and len(plain) != len(entries):  # a folder named like an image is walked too
            chosen = set(map(id, plain))
            for e in entries:
                if id(e) in chosen:
                    continue
                if not e.is_dir():
                    skipped[suffix(e.name)] += 1
                    continue
                if e.is_symlink():
                    folder_link = True
                    target = os.path.realpath(e.path)
                    here = os.path.realpath(path)
                    if target in targets or here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                        raise StudyError(f"{e.path}: a link to {target}, a folder it lies in (a loop of links): the "
                                         "listing would never end; remove the link")
                    stack.append((prefix + e.name + "/", e.path, targets + (target,)))
                else:
                    stack.append((prefix + e.name + "/", e.path, targets))
    out.sort()
    return require_utf8(out, folder), (links if links or folder_link else None), skipped


def _collect(results: Iterable, n: int, said: Callable[[list], None] | None) -> list:
    """`results` as a list of its `n` items; `said(so_far)` after an item that ends `LISTING_PROGRESS_S` after the
    listing began or was last said, unless it is the last (a long listing is not silent, a short one says nothing)."""
    out: list = []
    last = time.monotonic()
    for r in results:
        out.append(r)
        if said is not None and len(out) < n and time.monotonic() - last >= LISTING_PROGRESS_S:
            said(out)
            last = time.monotonic()
    return out


def _refuse_dangling(entries: list[os.DirEntry]) -> None:
    """StudyError naming the first image link that leads to no file (a git-annex or DataLad file not fetched, a moved
    target), which a listing would otherwise leave out without a word."""
    dangling = [e for e in entries if e.is_symlink() and not os.path.exists(e.path)]
    if dangling:
        more = f" (and {len(dangling) - 1} more in its folder)" if len(dangling) > 1 else ""
        first = dangling[0].path
        try:
            os.stat(first)
        except OSError as e:
            if e.errno == errno.ELOOP:  # `a.jpg -> a.jpg`, or two links to each other: no fetch would help
                raise StudyError(f"{first}: a link to {os.readlink(first)}, which leads back through itself (a loop "
                                 f"of links) to no file{more}: remove the link, or point it at the image") from None
        raise StudyError(f"{first}: a link to {os.readlink(first)}, which leads to no file{more}: fetch its content "
                         "(`git annex get`, `datalad get`) or remove the link")


def check_distinct(folder: Path, classes: list[str], files: list[list[str]], links: list[dict[str, Identity]],
                   run: Callable) -> None:
    """StudyError naming two listed paths that are one file (same device and inode), unless they are two entries
    of the tree (`_two_entries`): a link into another class folder, a linked folder or a link to another listed link
    lists an image twice, under two labels, while a content-addressed store (git-annex, DataLad, DVC) keeps
    identical images as two links to one object (or a link and a hard link to it: git-annex's locked and unlocked
    files under `annex.thin`), and a deduplicated copy (`hardlink`, `rdfind`) as two hard links. `links`: per class,
    the identities of its file links (`walk_files`); one stat for each other file, by `run` (a map)."""
    def identities(i: int) -> list[Identity]:
        known, base = links[i], os.path.join(folder, classes[i])
        return [known.get(n) or identity(os.stat(os.path.join(base, n))) for n in files[i]]

    seen: dict[Identity, list[str]] = {}  # each file's paths so far
    for c, names, keys in zip(classes, files, run(identities, list(range(len(classes))))):
        for n, key in zip(names, keys):
            path = f"{c}/{n}"
            for first in seen.get(key, ()):
                if not _two_entries(folder / first, folder / path):
                    raise StudyError(f"{folder}: {first} and {path} are one file ({os.path.realpath(folder / first)}"
                                     "): an image is listed once, under one class; remove the link (or copy the file)")
            seen.setdefault(key, []).append(path)


def _two_entries(a: Path, b: Path) -> bool:
    """Whether `a` and `b`, one file, are two entries of the tree (two images, as a store or a deduplicating copy
    keeps identical ones), not one entry listed twice: each lies where it lies (its folder resolved: a linked folder
    lists one entry twice), and neither's chain of links passes through the other. Two link files to one object,
    two hard links, or one of each (git-annex's locked and unlocked, `annex.thin`, copies of one object)."""
    chain_a, chain_b = _link_chain(a), _link_chain(b)
    return chain_a[0] not in chain_b and chain_b[0] not in chain_a


def _link_chain(path: Path, limit: int = 40) -> list[str]:
    """Where the link file at `path` lies (its folder resolved), then each link it leads through, to the file."""
    chain = []
    here = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    while len(chain) < limit:
        chain.append(here)
        if not os.path.islink(here):
            break
        here = os.path.normpath(os.path.join(os.path.dirname(here), os.readlink(here)))
        here = os.path.join(os.path.realpath(os.path.dirname(here)), os.path.basename(here))
    return chain


def identity(st: os.stat_result) -> Identity:
    """The file a stat result is of (a link followed: the file it leads to)."""
    return st.st_dev, st.st_ino


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


def scan_class_tree(folder: Path, threads: int | None = None) -> tuple[list[str], list[list[str]], Counter[str]]:
    """Classes (sorted sub-folder names), per class its sorted image paths relative to the class folder, and the
    files under the class folders left out for their extension (by `suffix`).

    Images lying in `folder` beside class folders, which no class would list, are a StudyError naming them; so are
    two paths to one file (`check_distinct`, run where the tree holds symbolic links) and folder-link loops.
    `threads` (default `STUDY_SCAN_THREADS`, else 1) lists class folders in parallel: worth it on network
    filesystems, where listing waits on the server; on a local disk one thread is fastest. A listing that
    runs past LISTING_PROGRESS_S says on stderr how many class folders it has listed."""
    if threads is None:
        threads = scan_threads()
    entries = _entries(folder)
    classes = _dir_names(entries, folder)
    loose = sorted(e.name for e in entries if e.name.lower().endswith(IMG_EXTENSIONS) and e.is_file())
    if classes and loose:
        raise StudyError(f"{folder} holds {len(loose)} image file(s) beside its class folders (e.g. "
                         f"{', '.join(loose[:3])}), which no class lists: move each into its class folder, or out of "
                         f"{folder}")

    def run(fn: Callable, items: list, said: Callable[[list], None] | None = None) -> list:
        if threads > 1 and len(items) > 1:
            with ThreadPoolExecutor(threads) as pool:
                return _collect(pool.map(fn, items), len(items), said)
        return _collect(map(fn, items), len(items), said)

    def said(scans: list) -> None:
        print(f"[manifest] listed {len(scans)}/{len(classes)} class folders of {folder} "
              f"({sum(len(names) for names, _, _ in scans)} images so far)", file=sys.stderr, flush=True)

    scans = run(lambda c: walk_files(folder / c), classes, said)
    files = [names for names, _, _ in scans]
    if any(e.is_symlink() and e.is_dir() for e in entries) or any(links is not None for _, links, _ in scans):
        check_distinct(folder, classes, files, [links or {} for _, links, _ in scans], run)
    return classes, files, sum((skipped for _, _, skipped in scans), Counter())
