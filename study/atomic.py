"""Write files so that a reader never sees them half-written: a temporary name in the same folder, then rename."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Iterator

from study.errors import not_yours


def _read_umask() -> int:
    """The process's umask, from /proc where it can be read without setting it (Linux), else by setting it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import


@contextmanager
def atomic_path(path: str | os.PathLike, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is synced to disk (unless `sync` is False: for files
    whose reader tells a cut-short one, which a node crash may leave) and renamed onto `path`, on error removed.
    The file gets the mode a plain `open` would give it (0666 less the umask), not mkstemp's private 0600.
    An OSError that names no file or the temporary (a write's: a full disk, a quota) is raised naming `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{_short_name(path)}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # a read-only folder, a full disk: the file meant, not the random temporary name
        e.filename = str(path)
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)
            if sync:
                _fsync(tmp_path)  # the data on disk before the name points at it (a node crash keeps the old file)
        os.replace(tmp_path, path)
        if sync:
            _fsync(path.parent)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename in (None, str(tmp_path)):
            e.filename = str(path)  # a write's error names no file: `No space left on device` alone names nothing
        raise


TEMPORARY_EXTRA = len("." + "." + "x" * 8 + ".tmp")  # mkstemp's `.<name>.<8 random characters>.tmp`
NAME_MAX = 255  # bytes of one file name on Linux's file systems (ext4, XFS, NFS)


def _short_name(path: Path) -> str:
    """`path`'s name as its temporary's name holds it: whole where that fits in NAME_MAX bytes, else its stem cut
    (at a character) to fit, its extension kept (a name of 242-255 bytes, such as 80 CJK characters, is a file name
    whose temporary's would not be)."""
    name, budget = path.name, NAME_MAX - TEMPORARY_EXTRA
    if len(os.fsencode(name)) <= budget:  # fsencode: a name that is not UTF-8 (a lone surrogate in Python) too
        return name
    suffix = path.suffix if len(os.fsencode(path.suffix)) < budget else ""
    stem = name[:len(name) - len(suffix)] if suffix else name
    return os.fsencode(stem)[:budget - len(os.fsencode(suffix))].decode(errors="ignore") + suffix


NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_space(path: str | os.PathLike) -> str:
    """`12.34 GB free there now` on the filesystem of `path`'s folder, for a message on a failed write of `path`;
    `the space left there unknown` where it cannot be asked."""
    try:
        return f"{shutil.disk_usage(Path(path).parent).free / 1e9:.2f} GB free there now"
    except OSError:
        return "the space left there unknown"


def write_failure(path: str | os.PathLike, e: BaseException) -> str:
    """Why writing `path` failed, in one line for a message: the error's first line, then the space left on the
    filesystem of its folder, and, where the error is a full disk or quota (ENOSPC/EDQUOT in its chain) or torch.save's
    zip writer (which reports a failed write as `unexpected pos`, not as the OSError it met), that this may be why.
    A write refused for its permissions (EACCES/EPERM in the chain) says no space, but whose file or folder refused
    it and how a folder shared by several users opens (`study.errors.not_yours`)."""
    said = str(e).splitlines()[0] if str(e) else "no message"
    chain, seen = [], e
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    denied = next((x for x in chain if isinstance(x, OSError) and x.errno in (errno.EACCES, errno.EPERM)), None)
    if denied is not None:
        return f"{type(e).__name__}: {said}{not_yours(denied)}"
    full = any(isinstance(x, OSError) and x.errno in NO_SPACE for x in chain)
    free = free_space(path)
    hint = "the disk is full or over quota" if full else "a full disk or quota fails writes so" \
        if isinstance(e, RuntimeError) else ""
    return f"{type(e).__name__}: {said}; {free}" + (f": {hint}" if hint else "")


STALE_TEMPORARY_S = 600.0  # a temporary this old is a killed writer's: every writer here writes a file in seconds
_MKSTEMP = r"\.[a-z0-9_]{8}\.tmp"  # what atomic_path adds to `.<name>`: mkstemp's 8 random characters


def remove_temporaries(path: str | os.PathLike, older_than_s: float | None = None) -> int:
    """Remove the temporaries that `atomic_path(path)` left beside `path` when its writer was killed mid-write
    (SIGKILL, a node crash: nothing of it ran to remove them); returns how many. Only for a caller that knows no
    other writer of `path` is at work (it holds the lock that admits one writer), or it would remove a live one;
    without such a lock, `older_than_s`: only those last written longer ago than any live writer takes."""
    path = Path(path)
    return _remove(path.parent, re.compile(rf"\.{re.escape(_short_name(path))}{_MKSTEMP}"), older_than_s)


def remove_folder_temporaries(folder: str | os.PathLike, older_than_s: float) -> int:
    """`remove_temporaries` of every file of `folder` (writers unknown, so only those older than `older_than_s`)."""
    return _remove(Path(folder), re.compile(rf"\..+{_MKSTEMP}"), older_than_s)


def _remove(folder: Path, pattern: re.Pattern, older_than_s: float | None) -> int:
    try:
        names = os.listdir(folder)
    except OSError:  # no folder yet: nothing left in it
        return 0
    removed, now = 0, time.time()
    for name in names:
        if pattern.fullmatch(name):
            with suppress(OSError):  # removed by another process meanwhile
                if older_than_s is None or now - os.stat(folder / name).st_mtime > older_than_s:
                    os.unlink(folder / name)
                    removed += 1
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # a folder on a filesystem that cannot sync one: the file itself was synced
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """`write_text`, but a file that already holds `text` is left as it is (a folder prepared once and made read-only
    for its users); returns whether it wrote."""
    try:
        if Path(path).read_bytes() == text.encode("utf-8"):
            return False
    except OSError:  # none yet, or not readable: write it (which says why it cannot)
        pass
    write_text(path, text)
    return True


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
