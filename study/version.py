"""`code_version()`: the one string that results, protocols and checkpoints record for the code that ran;
`library_versions()`: the libraries beside it that the numbers depend on."""
from __future__ import annotations

import functools
import hashlib
import re
import subprocess
from pathlib import Path
from typing import Callable, Iterable

import study


# in a copy of the package that Slurm jobs run (study.launch.snapshot): the code version of the tree copied
CODE_VERSION_FILE = "CODE_VERSION"
DIRTY = "-dirty"  # the mark of a modified tree, as git describe --dirty spells it


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """study's version, plus `+git.<git describe --always --tags>` when this package is a tracked folder of a git
    checkout; where the package's Python files differ from that commit's (edited, staged, deleted, or a file the
    checkout neither tracks nor ignores: a new method's file not yet added), `+git.<commit>-dirty.src.<digest>`
    (`source_digest`): the commit does not hold that code, and two states of one modified tree (a loss edited
    between two submits) are two versions, the digest also naming the copy of it a submit's jobs run
    (`<workdir>/code/<digest>/`). Changes elsewhere in the checkout (a grid file, the docs) are no code that runs: not
    `-dirty`. Elsewhere (no git, an installed wheel, or a copy inside another repository that does not track it),
    plus `+src.<source_digest>`: two wheels built from different commits carry one version number, and a job
    requeued after the shared environment was updated, or a report of results from both, would otherwise not tell
    them apart. A copy a submit took for its Slurm jobs: the version of the tree it copied, as its CODE_VERSION_FILE
    says."""
    package = Path(study.__file__).resolve().parent
    copied = package / CODE_VERSION_FILE
    if copied.is_file():
        return copied.read_text().strip()
    desc = git_describe(package)
    if not desc:
        return f"{study.__version__}+src.{source_digest(package)}"
    if modified_sources(package):
        return f"{study.__version__}+git.{desc}{DIRTY}.src.{source_digest(package)}"
    return f"{study.__version__}+git.{desc}"


def is_modified(version: str) -> bool:
    """Whether a recorded code version is of a modified git tree, which no commit reproduces: `...-dirty` as
    recorded before the source digest followed it, or `...-dirty.src.<digest>`."""
    return re.search(rf"{DIRTY}(\.src\.[0-9a-f]+)?$", version) is not None


def source_digest(package_dir: Path) -> str:
    """12 hex digits of the SHA-256 of the package's Python files (each one's path under `package_dir` and its bytes,
    in path order): the code that runs, whatever the files' times or the `__pycache__` beside them."""
    files = [p for p in package_dir.rglob("*.py") if p.is_file()]  # not a dangling link (Emacs's `.#name.py`)
    return _digest((p.relative_to(package_dir).as_posix(), p.read_bytes) for p in files)


def _digest(files: Iterable[tuple[str, Callable[[], bytes]]]) -> str:
    """`source_digest` of the files given as (path under the package, a function reading its bytes)."""
    h = hashlib.sha256()
    for rel, read in sorted(files, key=lambda f: f[0]):
        data = read()
        h.update(b"%d:%s%d:" % (len(rel.encode()), rel.encode(), len(data)))
        h.update(data)
    return h.hexdigest()[:12]


def code_digests(versions: Iterable[str], package_dir: Path | None = None) -> dict[str, str]:
    """{version: the `source_digest` of the code it ran} of those recorded code `versions` whose code can be told: a
    modified tree's or an installed copy's as recorded (`.src.<digest>`); a commit's (`+git.<describe>`) as the
    package's folder at that commit digests, where the git checkout of `package_dir` (this package's by default)
    holds the commit. Two versions of one digest ran one code: a commit that changed only the docs or grids, a try
    later committed as it was. Others (a `-dirty` of older records, a commit not here) are left out."""
    package = package_dir or Path(study.__file__).resolve().parent
    out: dict[str, str] = {}
    commits: dict[str, list[str]] = {}  # describe output -> its versions
    for version in set(versions):
        recorded = re.search(r"[.+]src\.([0-9a-f]+)$", version)
        clean = re.search(r"\+git\.([^+]+)$", version)
        if recorded:
            out[version] = recorded.group(1)
        elif clean and not clean.group(1).endswith(DIRTY):
            commits.setdefault(clean.group(1), []).append(version)
    if commits and git_describe(package) is not None:  # a checkout that tracks the package
        for describe, listed in commits.items():
            digest = _commit_digest(package, describe)
            out.update({v: digest for v in listed if digest})
    return out


def _commit_digest(package_dir: Path, describe: str) -> str | None:
    """`source_digest` of `package_dir` as commit `describe` (git describe's output) holds it; None where its
    checkout does not hold the commit."""
    commit = _git(package_dir, "rev-parse", "--verify", "-q", f"{describe}^{{commit}}")
    listing = _git(package_dir, "ls-tree", "-r", "-z", commit, "--", ".") if commit else None
    if listing is None:
        return None
    blobs = {}  # path under the package -> blob id: its Python files
    for entry in filter(None, listing.split("\0")):
        meta, _, rel = entry.partition("\t")
        mode, kind, blob = meta.split()
        if kind == "blob" and rel.endswith(".py"):
            if mode == "120000":  # a link, which source_digest reads through to its target's bytes: not told here
                return None
            blobs[rel] = blob
    try:
        out = subprocess.run(["git", "cat-file", "--batch"], cwd=package_dir, capture_output=True, timeout=30,
                             input="".join(f"{b}\n" for b in blobs.values()).encode())
    except (OSError, subprocess.SubprocessError):
        return None
    data, at, contents = out.stdout, 0, []
    for _ in blobs:  # each: "<id> blob <size>\n", its bytes, "\n"; "<id> missing\n" of one not here (a partial clone)
        header_end = data.find(b"\n", at)
        header = data[at:header_end].split() if header_end >= 0 else []
        if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
            return None  # a file's code not told: the version is left out
        size = int(header[2])
        contents.append(data[header_end + 1:header_end + 1 + size])
        at = header_end + 2 + size
    if out.returncode != 0 or at > len(data):
        return None
    return _digest((rel, (lambda c=c: c)) for rel, c in zip(blobs, contents))


def git_describe(package_dir: Path) -> str | None:
    """`git describe --always --tags` of the checkout that tracks `package_dir/__init__.py`; None where no checkout
    tracks it (so a package installed inside some other repository never takes that repository's commit)."""
    if _git(package_dir, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None
    return _git(package_dir, "describe", "--always", "--tags") or None


def modified_sources(package_dir: Path) -> bool:
    """Whether the Python files under `package_dir` differ from its checkout's commit: a tracked one changed (edited,
    staged, deleted, renamed), or one the checkout neither tracks nor ignores that is a regular file, as
    `source_digest` reads them (not an editor's lock, a dangling link named `.#name.py` while Emacs holds a modified
    buffer of name.py, which no import reads)."""
    if _git(package_dir, "diff", "HEAD", "--name-only", "-z", "--", "*.py"):
        return True
    listed = _git(package_dir, "ls-files", "-z", "--others", "--exclude-standard", "--", "*.py")
    return any((package_dir / name).is_file() for name in (listed or "").split("\0") if name)


def _git(cwd: Path, *args: str) -> str | None:
    """git's stdout, stripped; None when git is missing, fails or takes over 10 s."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def newer_note(found: object, reads: int) -> str:
    """The tail of a message about a file of format or schema `found` where this study reads `reads`: that a newer
    version of study wrote it, where `found` is an integer above `reads` (its data is not foreign, nor to be
    removed); "" otherwise."""
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    if isinstance(found, str) and found.isdigit():
        found = int(found)
    if isinstance(found, int) and not isinstance(found, bool) and found > reads:
        return ": written by a newer version of study; read it with that version (update this checkout)"
    return ""


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    """The versions of the libraries a result's numbers depend on beside study's own code, as a protocol records
    them: torch and torchvision, numpy (the corruptions' random draws), Pillow and the JPEG decoder it links
    (`jpeg_decoder`: JPEGs other than RGB ones, grayscale or CMYK, and the JPEG corruption's encoding), OpenCV and
    the JPEG decoder it links (`opencv_jpeg_decoder`: every RGB JPEG's pixels, study.train.images.decode_rgb);
    another libjpeg gives other pixels from the same file. Plain strings (not torch's TorchVersion, which a
    weights-only load of the checkpoint that keeps each session's would refuse)."""
    import cv2
    import numpy
    import PIL
    import torch
    import torchvision
    from PIL import features

    turbo = features.version_feature("libjpeg_turbo") if features.check_feature("libjpeg_turbo") else None
    jpeg = features.version("jpg")
    return {"torch_version": str(torch.__version__), "torchvision_version": str(torchvision.__version__),
            "numpy_version": numpy.__version__, "pillow_version": PIL.__version__,
            "jpeg_decoder": f"libjpeg-turbo {turbo}" if turbo else (f"libjpeg {jpeg}" if jpeg else None),
            "opencv_version": cv2.__version__, "opencv_jpeg_decoder": opencv_jpeg_decoder(cv2.getBuildInformation())}


def opencv_jpeg_decoder(build_information: str) -> str | None:
    """The JPEG library OpenCV was built with, from its build information's `JPEG:` line ("build-libjpeg-turbo (ver
    3.1.2-70)" -> "libjpeg-turbo 3.1.2-70", a system "/usr/lib/x86_64-linux-gnu/libjpeg.so (ver 80)" -> "libjpeg
    80"); None where it names none."""
    line = re.search(r"^\s*JPEG:\s*(.+)$", build_information, re.MULTILINE)
    if line is None:
        return None
    said = line.group(1).strip()
    version = re.search(r"\(ver ([^)]+)\)", said)
    name = "libjpeg-turbo" if "turbo" in said else "libjpeg"
    return f"{name} {version.group(1)}" if version else said
