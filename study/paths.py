"""Where things live on disk. Every location can be moved with an environment variable; one set to the empty string
(`STUDY_WORKDIR= study ...`) counts as unset, not as the current folder."""
from __future__ import annotations

import os
from pathlib import Path

from study.errors import StudyError


def not_a_folder(path: str | os.PathLike) -> str | None:
    """Why `path` is no folder, as a note says it ("a file, not a folder", "no such folder"); None where it is one."""
    path = Path(path)
    if path.is_dir():
        return None
    return "a file, not a folder" if path.exists() else "no such folder"


def unsubmitted_workdir(workdir: str | os.PathLike) -> str | None:
    """Why nothing can have been submitted with `workdir` (it is no folder), None where it is one: `study status`
    says it, `study report` of a grid file refuses it."""
    why = not_a_folder(workdir)
    return (f"{why}: nothing was submitted with this workdir; give the one `study submit` used, --workdir or "
            "$STUDY_WORKDIR") if why else None


def refuse_file_for_folder(path: Path, said: str) -> None:
    """StudyError naming `path` as `said` (`--out`, `$STUDY_WORKDIR`) where it is a file, a link to nothing, or lies
    under a file: a command that makes folders there would fail inside them instead."""
    if path.exists() and not path.is_dir():
        raise StudyError(f"{said} {path}: exists and is not a folder")
    if path.is_symlink() and not path.exists():
        raise StudyError(f"{said} {path}: a link to {os.readlink(path)}, which does not exist (a folder unmounted?)")
    file_above = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if file_above is not None:
        raise StudyError(f"{said} {path}: cannot be a folder: {file_above} is a file")


SHIPPED_GRIDS = "shipped_grids"  # the package's link to the repository's grids/: a wheel holds a copy (pyproject.toml)


def shipped_grids(package_dir: str | os.PathLike | None = None) -> Path:
    """The grids, profiles and grids/README.md that come with the package (`study/shipped_grids`: in a checkout, a link
    to its `grids/`; in an installed wheel, a copy): `quickstart.yaml`, `profiles/local.yaml`, the paper's grids.
    After links, so that a checkout names `<repo>/grids/...`. `package_dir`: the package's folder (default: this
    one's)."""
    return (Path(package_dir or Path(__file__).parent) / SHIPPED_GRIDS).resolve()


def manifests_dir() -> Path:
    """Frozen manifests: `STUDY_MANIFESTS`, else `./manifests`."""
    return Path(os.environ.get("STUDY_MANIFESTS") or "manifests")


def manifests_dir_said() -> str:
    """The manifests folder as an error names it: absolute, and whence (a notebook's current folder is not always
    the project's)."""
    why = "STUDY_MANIFESTS" if os.environ.get("STUDY_MANIFESTS") else "./manifests: STUDY_MANIFESTS is not set"
    return f"{manifests_dir().resolve()} ({why})"


def checked_manifests_dir() -> Path:
    """`manifests_dir()`; a StudyError naming it and whence where it cannot be a folder (`refuse_file_for_folder`),
    as `checked_workdir` does for the workdir."""
    said = "$STUDY_MANIFESTS" if os.environ.get("STUDY_MANIFESTS") else "manifests folder"
    refuse_file_for_folder(manifests_dir(), said)
    return manifests_dir()


def workdir() -> Path:
    """Job folders, checkpoints, results and ledgers: `STUDY_WORKDIR`, else `./runs`."""
    return Path(os.environ.get("STUDY_WORKDIR") or "runs")


def checked_workdir(given: str | os.PathLike | None) -> Path:
    """The workdir a command was given (`--workdir`), else `workdir()`; a StudyError naming it and whence where it
    cannot be a folder (`refuse_file_for_folder`)."""
    said = "--workdir" if given else "$STUDY_WORKDIR" if os.environ.get("STUDY_WORKDIR") else "workdir"
    path = Path(given) if given else workdir()
    refuse_file_for_folder(path, said)
    return path


def logs_dir(workdir: str | os.PathLike) -> Path:
    """A workdir's local job logs, `<job id>.log` each."""
    return Path(workdir) / "logs"


def results_dir(workdir: str | os.PathLike) -> Path:
    """A workdir's result records."""
    return Path(workdir) / "results"


def result_path(workdir: str | os.PathLike, job_id: str) -> Path:
    """The result record of one job: `<workdir>/results/<job id>.json`."""
    return results_dir(workdir) / f"{job_id}.json"


def cache_dir() -> Path:
    """Downloaded-package and dataset caches: `STUDY_CACHE`, else `./.cache`."""
    return Path(os.environ.get("STUDY_CACHE") or ".cache")


def home_folder_writable(xdg_var: str, default: str, name: str) -> bool:
    """Whether a program may write its folder `name` under `$<xdg_var>` (unset or empty: `~/<default>`, as `.cache`)
    without making the home folder: after links (as matplotlib follows them), the first of that folder, its parent and
    theirs that exists is a folder this user may write to and enter. False for a read-only home, one that does not
    exist (a compute node that does not mount it), a link to a folder that does not (a scratch space not mounted
    there), or no home at all (no $HOME, and no passwd entry to tell it)."""
    try:
        folder = Path(os.environ.get(xdg_var) or Path.home() / default, name).resolve()
    except (RuntimeError, OSError):  # no home; a loop of links
        return False
    first = next((p for p in (folder, folder.parent, folder.parent.parent) if p.exists()), None)
    return first is not None and first.is_dir() and os.access(first, os.W_OK | os.X_OK)


def matplotlib_config_dir() -> Path | None:
    """Where `study report` points matplotlib's config and font cache (`MPLCONFIGDIR`) when matplotlib's own, under
    `~/.config` and `~/.cache`, cannot be written: `cache_dir()/matplotlib`, absolute. None where `MPLCONFIGDIR` is
    set or both of matplotlib's folders can be written (they are left to it)."""
    if os.environ.get("MPLCONFIGDIR"):
        return None
    if all(home_folder_writable(var, default, "matplotlib")
           for var, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"))):
        return None
    return (cache_dir() / "matplotlib").absolute()
