"""Find Debian's Fashion-MNIST IDX files, installing or unpacking the package when they are not there.

Order of search: a folder the user names (`--fashion-mnist DIR`, or `STUDY_FASHION_MNIST`), the installed package
(`/usr/share/datasets/fashion-mnist`), then the project's cache. When none holds the files: `apt-get install` where the
user is root, else `apt-get download` + `dpkg-deb -x` into the cache (no root needed). Nothing else is ever downloaded.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from study.datasets.fashion_mnist import idx_path
from study.errors import StudyError
from study.paths import cache_dir

PACKAGE = "dataset-fashion-mnist"
INSTALLED = Path("/usr/share/datasets/fashion-mnist")
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _missing(folder: Path) -> list[str]:
    """The files of FILES that `folder` holds neither gzipped nor uncompressed."""
    return [f for f in FILES if idx_path(folder, f.removesuffix(".gz")) is None]


def has_files(folder: Path) -> bool:
    return not _missing(folder)


def _unpacked(cache: Path) -> Path:
    return cache / "fashion-mnist-deb" / INSTALLED.relative_to("/")


def _run(cmd: list[str], **kw) -> None:
    print(f"[quickstart] $ {' '.join(cmd)}", file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def _install_or_unpack(cache: Path) -> Path:
    if shutil.which("apt-get") is None:
        raise StudyError(
            f"Fashion-MNIST not found and apt-get is missing: put {', '.join(FILES)} in a folder and pass "
            "--fashion-mnist DIR (or set STUDY_FASHION_MNIST)"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        if os.geteuid() == 0:
            try:
                _run(["apt-get", "install", "-y", "-qq", PACKAGE], env=env, stdout=subprocess.DEVNULL)
            except subprocess.CalledProcessError:
                _run(["apt-get", "update", "-qq"], env=env)
                _run(["apt-get", "install", "-y", "-qq", PACKAGE], env=env, stdout=subprocess.DEVNULL)
            if has_files(INSTALLED):
                return INSTALLED
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:  # the 31 MB package: not into a small node-local $TMPDIR
            _run(["apt-get", "download", PACKAGE], cwd=tmp, env=env)
            deb = next(Path(tmp).glob("*.deb"))
            target = cache / "fashion-mnist-deb"
            _run(["dpkg-deb", "-x", str(deb), str(target)])
    except (subprocess.CalledProcessError, StopIteration) as e:
        raise StudyError(
            f"could not install or unpack Debian's {PACKAGE} ({e}); pass --fashion-mnist DIR with the IDX files"
        ) from None
    return _unpacked(cache)


def locate(folder: str | os.PathLike | None = None, install: bool = True) -> Path:
    """The folder holding the four Fashion-MNIST IDX files (`.gz`, or uncompressed); StudyError naming what is
    missing."""
    named = folder or os.environ.get("STUDY_FASHION_MNIST")
    if named:
        path = Path(named)
        said = "--fashion-mnist" if folder else "$STUDY_FASHION_MNIST"
        if not path.is_dir():
            raise StudyError(f"{said} {path}: no such folder (give the folder that holds the IDX files)")
        missing = _missing(path)
        if missing:
            raise StudyError(f"{said} {path}: missing Fashion-MNIST file(s) {', '.join(missing)} (gzipped or not)")
        return path
    cache = cache_dir()
    for candidate in (INSTALLED, _unpacked(cache)):
        if has_files(candidate):
            return candidate
    if not install:
        raise StudyError(f"Fashion-MNIST not found in {INSTALLED} or {_unpacked(cache)}")
    found = _install_or_unpack(cache)
    if not has_files(found):
        raise StudyError(f"{PACKAGE} installed but its files are not in {found}")
    return found
