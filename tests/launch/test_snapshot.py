"""The copy of study's code a submit takes for its Slurm jobs (study.launch.snapshot): made once per source,
whole or not at all, and imported by a Python started in its folder ahead of the installed study."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from launch_helpers import grid_text, run_cli

from study.errors import StudyError
from study.grids import load_profile
from study.launch import snapshot
from study.version import CODE_VERSION_FILE, code_version, source_digest


def test_a_copy_is_taken_once_per_source_and_is_what_a_python_started_in_its_folder_imports(tmp_path, monkeypatch):
    folder = snapshot.take_snapshot(tmp_path / "wd")
    assert folder == snapshot.code_folder(tmp_path / "wd") and folder.parent == (tmp_path / "wd" / "code").resolve()
    copied = {p.relative_to(folder / "study") for p in (folder / "study").rglob("*.py")}
    assert copied == {p.relative_to(snapshot.package_dir()) for p in snapshot.package_dir().rglob("*.py")}
    assert not list(folder.rglob("__pycache__")) and not list(folder.parent.glob("*.tmp-*"))
    assert (folder / "study" / CODE_VERSION_FILE).read_text() == code_version() + "\n"
    # a Python started there imports the copy, and records the version of the tree it was taken from
    (folder / "study" / CODE_VERSION_FILE).write_text("0.0.0+copied\n")
    run = subprocess.run([sys.executable, "-c", "import study, study.version as v; print(study.__file__); "
                                                "print(v.code_version())"], cwd=folder, capture_output=True, text=True)
    assert run.stdout.split() == [str(folder / "study" / "__init__.py"), "0.0.0+copied"], run.stderr
    # taken already: not copied again (a second submit of the same code)
    monkeypatch.setattr(snapshot, "_copy_package", lambda *a, **k: pytest.fail("copied again"))
    assert snapshot.take_snapshot(tmp_path / "wd") == folder


def test_a_copy_cut_short_is_never_used_and_one_that_cannot_be_made_says_how_to_go_without(tmp_path, monkeypatch):
    wd = tmp_path / "wd"
    folder = snapshot.code_folder(wd)
    half = folder.with_name(f"{folder.name}.tmp-1")  # a submit killed mid-copy: never taken for a copy
    (half / "study").mkdir(parents=True)
    assert (snapshot.take_snapshot(wd) / "study" / CODE_VERSION_FILE).is_file() and half.is_dir()
    other = snapshot.code_folder(tmp_path / "wd2")
    (other / "study").mkdir(parents=True)  # a folder there that is no copy of study's (no version file): not used
    with pytest.raises(StudyError, match=r"cannot copy study's code to .*wd2/code/\w+: .*`snapshot_code: false`"):
        snapshot.take_snapshot(tmp_path / "wd2")
    assert not (other / "study" / CODE_VERSION_FILE).exists() and [p.name for p in other.parent.iterdir()] == [
        other.name]  # its own temporary copy removed


def test_a_profiles_snapshot_code_reaches_the_scripts(env, slurm):
    """`snapshot_code: false` leaves the scripts without the lines that enter the copy; a value not a boolean is
    refused at its line."""
    from launch_helpers import PROFILE

    grid = env / "g.yaml"
    grid.write_text(grid_text("snap"))
    argv = ["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"), "--workdir",
            str(env / "wd"), "--dry-run"]
    code, out, err = run_cli(argv)
    assert code == 0 and out.count(f"cd {snapshot.code_folder(env / 'wd')} || exit 1\n") == 2, err
    assert not (env / "wd" / "code").exists()  # a dry run takes no copy, and says which code the jobs would run
    assert (f"[study] snap: its jobs would import study {code_version()}, copied to {snapshot.code_folder(env / 'wd')}"
            f" when they are queued\n") in err, err
    taken = snapshot.take_snapshot(env / "wd")  # by an earlier submit of the same code: the dry run's jobs would too
    (taken / "study" / CODE_VERSION_FILE).write_text("0.0.0+taken-before\n")
    code, out, err = run_cli(argv)
    assert code == 0 and f"[study] snap: its jobs would import study 0.0.0+taken-before from {taken}\n" in err, err
    (env / "profile.yaml").write_text(PROFILE + "snapshot_code: false\n")
    code, out, err = run_cli(argv)
    assert code == 0 and "/code/" not in out and "PYTHONPATH" not in out, err
    (env / "profile.yaml").write_text(PROFILE + "snapshot_code: 'no'\n")
    with pytest.raises(StudyError, match=r"profile.yaml:\d+: snapshot_code: expected true or false, got 'no'"):
        load_profile(env / "profile.yaml")


def test_a_local_runs_workers_import_the_copy_its_command_took(env, monkeypatch):
    """A local worker imported the checkout as it was when the worker started (a long local run over an edit of
    study ran the edit in its later jobs): workers start in the copy (here one made beforehand, whose version file
    says so), then enter the folder the command ran in (relative paths: here the command's own; a grid's relative
    `pretrained.encoder_file`: test_local.py's imported-encoder test)."""
    import shutil as sh

    from study.results import read_result

    wd = env / "wd"
    folder = snapshot.code_folder(wd)
    sh.copytree(snapshot.package_dir(), folder / "study", ignore=sh.ignore_patterns("__pycache__"))
    (folder / "study" / CODE_VERSION_FILE).write_text("0.0.0+made-before\n")
    grid = env / "g.yaml"
    grid.write_text(grid_text("snaplocal"))
    monkeypatch.chdir(env)
    code, _, err = run_cli(["submit", "g.yaml", "--cluster", "local", "--workdir", "wd"])
    assert code == 0, err
    versions = {read_result(p)["protocol"]["code_version"] for p in (wd / "results").glob("*.json")}
    assert versions == {"0.0.0+made-before"}, versions
    # the run says which code its jobs run, as they record it, and where: the copy, not this checkout
    assert f"[study] snaplocal: its jobs import study 0.0.0+made-before from {folder}\n" in err, err
    logs = [p.read_text() for p in (wd / "logs").glob("*.log")]
    assert len(logs) == 2 and not [text for text in logs if "not the copy" in text]  # the copy it meant


def _package(root):
    """A stand-in study package, as an install or a checkout may hold it: a read-only install's folders (0555) and
    files (0444), a `__pycache__`, Emacs's lock file of a file open with unsaved edits (a link to nowhere)."""
    (root / "sub" / "__pycache__").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text("A = 1\n")
    (root / "sub" / "data.yaml").write_text("x: 1\n")
    (root / "sub" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (root / "sub" / ".#a.py").symlink_to("someone@login1.4242:1700000000")
    for p in [root / "sub" / "a.py", root / "sub" / "data.yaml", root / "__init__.py"]:
        p.chmod(0o444)
    for p in [root / "sub", root]:
        p.chmod(0o555)
    return root


def test_a_copy_of_a_read_only_install_with_an_editors_lock_file_is_made_with_the_umasks_modes(tmp_path, monkeypatch):
    """A read-only install (0555 folders) gave the copy its modes: the version file could not be written there, and
    the temporary copy left behind could not be removed; a dangling `.#a.py` (Emacs) made the digest and the copy
    fail. The copy: the package's files, none of what is no file nor `__pycache__`, modes of the umask."""
    src = _package(tmp_path / "src")
    monkeypatch.setattr(snapshot, "package_dir", lambda: src)
    old = os.umask(0o022)
    try:
        folder = snapshot.take_snapshot(tmp_path / "wd")
    finally:
        os.umask(old)
        for p in [src, src / "sub"]:
            p.chmod(0o755)
    copied = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert copied == ["study", f"study/{CODE_VERSION_FILE}", "study/__init__.py", "study/sub", "study/sub/a.py",
                      "study/sub/data.yaml"]
    modes = {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}
    assert modes == {".": 0o755, "study": 0o755, f"study/{CODE_VERSION_FILE}": 0o644, "study/__init__.py": 0o644,
                     "study/sub": 0o755, "study/sub/a.py": 0o644, "study/sub/data.yaml": 0o644}, modes
    assert folder.name == source_digest(src) == source_digest(folder / "study")
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_a_copy_is_named_for_what_it_holds_where_the_checkout_changed_while_it_was_copied(tmp_path, monkeypatch):
    """The folder's name was the digest read before the copy: a file edited (a `git checkout`) between the two left
    a folder named for the old code holding the new, taken as it was by every later submit of the old code."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "__init__.py").write_text("OLD = 1\n")
    monkeypatch.setattr(snapshot, "package_dir", lambda: src)
    before = snapshot.code_folder(tmp_path / "wd")
    copy = snapshot._copy_package

    def edited_meanwhile(from_dir, to_dir):
        (src / "__init__.py").write_text("NEW = 1\n")
        copy(from_dir, to_dir)

    monkeypatch.setattr(snapshot, "_copy_package", edited_meanwhile)
    folder = snapshot.take_snapshot(tmp_path / "wd")
    assert (folder / "study" / "__init__.py").read_text() == "NEW = 1\n"
    assert folder.name == source_digest(src) != before.name and not before.exists()
    assert snapshot.take_snapshot(tmp_path / "wd") == folder  # a later submit of that code takes it


def test_a_job_that_imports_another_study_than_its_copy_says_so(tmp_path, monkeypatch, capsys):
    """A container that does not see the workdir at its path, or starts Python elsewhere or without PYTHONPATH,
    imported the study inside it without a word: the job says which study it imports, and which copy it meant."""
    from study.launch.runner import CODE_DIR_ENV, say_if_not_the_copy

    monkeypatch.setenv(CODE_DIR_ENV, str(tmp_path / "code" / "abc"))
    say_if_not_the_copy()
    err = capsys.readouterr().err
    assert (f"imports study from {snapshot.package_dir()}, not the copy its submit took, {tmp_path}/code/abc/study"
            in err), err
    monkeypatch.setenv(CODE_DIR_ENV, str(snapshot.package_dir().parent))  # the copy it imports: nothing said
    say_if_not_the_copy()
    monkeypatch.delenv(CODE_DIR_ENV)  # no copy meant (`snapshot_code: false`): nothing said
    say_if_not_the_copy()
    assert capsys.readouterr().err == ""


def test_a_submit_takes_its_copy_before_it_asks_slurm_about_the_jobs(env, slurm, monkeypatch):
    """The copy was taken with the first array, after the checks that ask Slurm about the jobs (sbatch --test-only,
    sacctmgr: seconds, minutes on a loaded controller): a `git pull` meanwhile gave the jobs the newer code. Here
    the package (a stand-in) is edited during those checks: the scripts enter the copy of the code as it was."""
    from study.launch.slurm import submit

    src = env / "src"
    src.mkdir()
    (src / "__init__.py").write_text("OLD = 1\n")
    monkeypatch.setattr(snapshot, "package_dir", lambda: src)
    before = snapshot.code_folder(env / "wd")
    checked = []

    def pulled_meanwhile(*args, **kwargs):
        (src / "__init__.py").write_text("NEW = 1\n")
        checked.append(True)

    monkeypatch.setattr(submit, "check_before_queueing", pulled_meanwhile)
    grid = env / "g.yaml"
    grid.write_text(grid_text("snapstart"))
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"),
                            "--workdir", str(env / "wd")])
    assert code == 0 and checked, err
    assert (before / "study" / "__init__.py").read_text() == "OLD = 1\n"
    scripts = [p.read_text() for p in (env / "wd" / "submitit").rglob("*_submission.sh")]
    assert len(scripts) == 2 and all(f"cd {before} || exit 1\n" in s for s in scripts)


def test_status_names_the_queued_jobs_that_import_another_version_than_the_study_it_runs(env, slurm, monkeypatch):
    """After a fix is pulled, the jobs queued before it still import the copy their submit took: `study status` said
    nothing of it, and the docs' `study cancel` + plain `study submit` left the cancelled jobs cancelled. Status
    names them with the version they import (json: each job's `code_version`), and says to `--retry-failed`."""
    import json

    from study.launch.ledger import Ledger

    grid = env / "g.yaml"
    grid.write_text(grid_text("snapstatus", seeds=(0,)))
    argv = ["--workdir", str(env / "wd")]
    code, _, err = run_cli(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"), *argv])
    assert code == 0, err
    queued = [e for e in Ledger(env / "wd", "snapstatus").events() if e["event"] == "queued"]
    folder = snapshot.code_folder(env / "wd")
    assert len(queued) == 2 and {e["code"] for e in queued} == {str(folder)}
    (slurm / "sacct").write_text("".join(f"{e['slurm_job_id']}|PENDING|None|Unknown\n" for e in queued))
    code, out, err = run_cli(["status", str(grid), *argv])
    assert code == 0 and "import study" not in out, out  # the copy of the code this status runs: nothing to say
    (folder / "study" / CODE_VERSION_FILE).write_text("0.0.0+before-the-fix\n")
    pulled = env / "pulled"  # the checkout's code since the submit: the fix (a stand-in)
    pulled.mkdir()
    (pulled / "__init__.py").write_text("FIXED = 1\n")
    monkeypatch.setattr(snapshot, "package_dir", lambda: pulled)
    code, out, err = run_cli(["status", str(grid), *argv])
    said = (f"2 queued or running Slurm job(s) import study 0.0.0+before-the-fix, the copy of its code their submit "
            f"took ({folder}), not this one's {code_version()}")
    assert code == 0 and said in out and "`study cancel`, then `study submit --retry-failed`" in out, out
    code, out, err = run_cli(["status", str(grid), *argv, "--format", "json"])
    assert code == 0 and {r["code_version"] for r in json.loads(out)["jobs"]} == {"0.0.0+before-the-fix"}, err


def test_a_copy_taken_before_its_edit_was_committed_names_the_commit_once_a_submit_of_it_runs(tmp_path, monkeypatch):
    """Try, then commit: a submit of the edited tree took the copy as `<X>-dirty.src.<D>`; the commit of those
    files, submitted, found the copy of the same code (digest D) and its jobs recorded the modified tree, which the
    report says no commit reproduces. The copy now names the commit; a modified tree's submit leaves a copy as it is,
    and so does one that cannot write it."""
    folder = snapshot.take_snapshot(tmp_path / "wd")
    version = folder / "study" / CODE_VERSION_FILE
    version.write_text("0.1.0+git.aaaaaaa-dirty.src.0123456789ab\n")
    monkeypatch.setattr(snapshot, "code_version", lambda: "0.1.0+git.bbbbbbb-dirty.src.0123456789ab")
    assert snapshot.take_snapshot(tmp_path / "wd") == folder
    assert version.read_text() == "0.1.0+git.aaaaaaa-dirty.src.0123456789ab\n"  # two modified trees: kept
    monkeypatch.setattr(snapshot, "code_version", lambda: "0.1.0+git.bbbbbbb")

    def not_yours(path, text):  # another user's copy (as root, chmod refuses nothing: a stand-in)
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as m:
        m.setattr(snapshot, "write_text", not_yours)
        assert snapshot.take_snapshot(tmp_path / "wd") == folder
    assert version.read_text() == "0.1.0+git.aaaaaaa-dirty.src.0123456789ab\n"
    assert snapshot.take_snapshot(tmp_path / "wd") == folder
    assert version.read_text() == "0.1.0+git.bbbbbbb\n" and snapshot.copy_version(folder) == "0.1.0+git.bbbbbbb"
    assert not list((folder / "study").glob("*.tmp*"))


def test_status_and_submit_take_a_copy_of_this_very_code_for_this_code_whatever_commit_it_names(env, slurm,
                                                                                                 monkeypatch):
    """The copy is named for the code it holds; the version it says is that of the tree it was taken from. After a
    commit of the docs or a grid file (a `git pull` that brings no code), status told the jobs queued before it to
    be cancelled and submitted again to run this code, which they run: submitted again, they imported the same copy,
    and status said it again. And after try-then-commit, a submit that queued nothing (the try's jobs all queued
    still) left the copy's '-dirty' version, which its jobs then recorded, and status told them to be cancelled.
    Now status says nothing of the first, and of the second that `study submit` names the commit, which it does."""
    from study import version as version_module
    from study.launch.ledger import Ledger

    for module in (snapshot, version_module):
        monkeypatch.setattr(module, "code_version", lambda: "0.1.0+git.bbbbbbb")
    grid = env / "g.yaml"
    grid.write_text(grid_text("snapsame", seeds=(0,)))
    argv = ["--workdir", str(env / "wd")]
    submit = ["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"), *argv]
    code, _, err = run_cli(submit)
    assert code == 0, err
    queued = [e for e in Ledger(env / "wd", "snapsame").events() if e["event"] == "queued"]
    (slurm / "sacct").write_text("".join(f"{e['slurm_job_id']}|PENDING|None|Unknown\n" for e in queued))
    folder = snapshot.code_folder(env / "wd")
    said = folder / "study" / CODE_VERSION_FILE
    said.write_text("0.1.0+git.aaaaaaa\n")  # taken before a commit of the docs: this code
    code, out, err = run_cli(["status", str(grid), *argv])
    assert code == 0 and "import study" not in out and "import this code" not in out, out
    dirty = f"0.1.0+git.aaaaaaa-dirty.src.{folder.name}"
    said.write_text(dirty + "\n")  # taken before its edit was committed as bbbbbbb
    code, out, err = run_cli(["status", str(grid), *argv])
    assert code == 0 and "`study cancel`" not in out, out
    assert (f"2 queued or running Slurm job(s) import this code, from the copy a submit took before its edit was "
            f"committed ({folder}), which says {dirty}") in out and "name this commit, 0.1.0+git.bbbbbbb" in out, out
    code, _, err = run_cli(submit)
    assert code == 0 and "queued 0 job(s)" in err, err
    assert said.read_text() == "0.1.0+git.bbbbbbb\n", err
    assert (f"({folder}) names the commit now, 0.1.0+git.bbbbbbb: its queued jobs that start from now on record "
            f"it") in err, err
    code, out, err = run_cli(["status", str(grid), *argv])
    assert code == 0 and "import this code" not in out and "import study" not in out, out
