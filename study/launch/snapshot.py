"""The study code a submit's jobs run: a copy of the study package taken once the submit knows which jobs it runs,
before it queues or starts them, `<workdir>/code/<source digest>/study/` (one per distinct source, shared by every
submit of that code), which each job starts in: a Slurm job's script enters it before Python starts (`setup_lines`),
a local worker starts there (`python_path`); `python -m` puts the folder it starts in first on sys.path, ahead of an
installed or editable study, and PYTHONPATH carries it to the processes the job starts; the job then enters the
folder `study submit` ran in (`runner.enter_submit_folder`), which a grid's relative paths are read from. An edit or
update of the study checkout after a submit then changes no job it queued, nor one Slurm requeues later (a
preemption, a timeout), and the tasks submitit pickled are read by the code that pickled them. The copy's
CODE_VERSION_FILE holds the code version of the tree it was taken from (`study.version.code_version`), which its jobs
record. A profile's `snapshot_code: false` leaves each job to import the study installed where it starts, as it is
then."""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
from pathlib import Path

import study
from study.atomic import write_text
from study.errors import StudyError, not_yours, os_reason
from study.version import CODE_VERSION_FILE, code_version, is_modified, source_digest

CODE_DIR = "code"  # <workdir>/code/<digest>/study/: the copies


def package_dir() -> Path:
    """The folder of the study package this process runs."""
    return Path(study.__file__).resolve().parent


def code_digest() -> str:
    """The digest of this process's study package (`source_digest`): the name of its copy's folder."""
    return source_digest(package_dir())


def code_folder(workdir: str | os.PathLike) -> Path:
    """Where the copy of this process's study code goes in `workdir` (absolute; not made here)."""
    return Path(workdir).resolve() / CODE_DIR / code_digest()


def take_snapshot(workdir: str | os.PathLike) -> Path:
    """The folder holding a copy of this process's study package (`code_folder`), made where missing: copied beside
    it under a temporary name of its own (`_copy_package`), its CODE_VERSION_FILE written, then renamed into place,
    named for the digest of what was copied (a file of the checkout edited during the copy names another folder, never
    one whose name says other code), so that a folder there is whole (a submit killed mid-copy leaves its
    `<digest>.tmp-<pid>-<random>` beside it, never used; another submit's copy renamed there first is taken as it
    is). The temporary name is random too: two submits of one pid on two login nodes of a shared workdir do not remove
    each other's copy."""
    folder = code_folder(workdir)
    tmp: Path | None = None
    try:
        if (folder / "study" / CODE_VERSION_FILE).is_file():
            _name_the_commit(folder)
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        tmp.mkdir()
        _copy_package(package_dir(), tmp / "study")
        (tmp / "study" / CODE_VERSION_FILE).write_text(code_version() + "\n")
        folder = folder.with_name(source_digest(tmp / "study"))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "study" / CODE_VERSION_FILE).is_file():  # not another submit's whole copy: a failure
                raise
    except OSError as e:
        raise StudyError(f"cannot copy study's code to {folder}: {os_reason(e)}{not_yours(e)} (the profile's "
                         f"`snapshot_code: false` has jobs import the study installed where they start)") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def name_the_commit(workdir: str | os.PathLike) -> str | None:
    """For a submit that takes no copy, as it queues nothing (the jobs of a try are all queued still): where
    `workdir` holds the copy of this process's code taken from a modified tree before its edit was committed, that
    copy names the commit from now on (`_name_the_commit`), as a submit that queues jobs has it; the version it says
    now where that changed, else None."""
    return _name_the_commit(code_folder(workdir))


def _name_the_commit(folder: Path) -> str | None:
    """Where the copy in `folder` says a modified tree's version (taken before its edit was committed) and this
    process runs a commit's code, the same code (one digest), its version file says that commit from now on: the
    results of its jobs, those queued before included, then name a commit that reproduces them. The version written,
    else None (nothing to rename, or a copy that cannot be written: another user's)."""
    now = code_version()
    said = copy_version(folder)
    if is_modified(now) or said is None or not is_modified(said):
        return None
    try:
        write_text(folder / "study" / CODE_VERSION_FILE, now + "\n")
    except OSError:  # another user's copy, not writable here: it keeps its version
        return None
    return now


def _copy_package(src: Path, dst: Path) -> None:
    """Copy the files of the package `src` into `dst`, following links (a checkout's `shipped_grids`), without
    `__pycache__` or what is no regular file (a dangling link: an editor's lock file, `.#name.py`, open in Emacs; a
    fifo), each file and folder made with the mode a plain creation gives (the umask's), not its source's: the copy
    of a read-only install takes the version file and can be removed, and a lab's umask 002 lets another member of
    its group clean a shared workdir."""
    def fail(e: OSError) -> None:  # a folder that cannot be listed: no copy, rather than one without it
        raise e

    for root, dirs, files in os.walk(src, onerror=fail, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        here = Path(root)
        out = dst / here.relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            if (here / name).is_file():
                shutil.copyfile(here / name, out / name)


def copy_version(folder: str | os.PathLike) -> str | None:
    """The code version of the copy in `folder` (`take_snapshot`), as its CODE_VERSION_FILE says; None where it
    cannot be read (removed, or never taken: a dry run's)."""
    try:
        return (Path(folder) / "study" / CODE_VERSION_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def copy_said(folder: Path, dry_run: bool = False) -> str:
    """What a submit says of the copy its jobs import: the code version they record, and the folder (a dry run's
    jobs would: that copy's, where a submit of the same code took it already, else this checkout's version, copied
    there by the submit that queues them)."""
    version = copy_version(folder)
    if not dry_run:
        return f"its jobs import study {version} from {folder}"
    if version:
        return f"its jobs would import study {version} from {folder}"
    return f"its jobs would import study {code_version()}, copied to {folder} when they are queued"


def setup_lines(folder: Path) -> list[str]:
    """The sbatch script's lines, after the profile's `setup`, that have the job's Python import the copy in
    `folder`: a job that cannot enter it (removed, or the workdir not at that path on the node) fails, its log
    saying why, rather than run whatever study the node has."""
    quoted = shlex.quote(str(folder))
    return [f"cd {quoted} || exit 1", f"export PYTHONPATH={quoted}${{PYTHONPATH:+:$PYTHONPATH}}"]


def python_path(folder: Path, env: dict[str, str]) -> str:
    """`env`'s PYTHONPATH with `folder` first: what a local worker started in `folder` runs with."""
    return os.pathsep.join([str(folder), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
