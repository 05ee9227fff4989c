"""The copy of study's code a submit takes for its Slurm jobs (study.launch.snapshot): made once per source,
whole or not at all, and imported by a Python started in its folder ahead of the installed study."""
from __future__ import annotations

import subprocess
import sys

import pytest
from launch_helpers import grid_text, run_cli

from study.errors import StudyError
from study.grids import load_profile
from study.launch import snapshot
from study.version import CODE_VERSION_FILE, code_version


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
    monkeypatch.setattr(snapshot.shutil, "copytree", lambda *a, **k: pytest.fail("copied again"))
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
    assert code == 0 and out.count(f"cd {snapshot.code_folder(env / 'wd')}\n") == 2, err
    assert not (env / "wd" / "code").exists()  # a dry run takes no copy
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
