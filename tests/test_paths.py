"""study.paths: every location has its default and moves with its environment variable."""
import os
import re
from pathlib import Path

import pytest

from study import paths


@pytest.mark.parametrize("fn, var, default", [(paths.workdir, "STUDY_WORKDIR", "runs"),
                                               (paths.manifests_dir, "STUDY_MANIFESTS", "manifests"),
                                               (paths.cache_dir, "STUDY_CACHE", ".cache")])
def test_each_location_has_its_default_and_follows_its_variable(monkeypatch, tmp_path, fn, var, default):
    monkeypatch.delenv(var, raising=False)
    assert fn() == Path(default)
    monkeypatch.setenv(var, str(tmp_path / "elsewhere"))
    assert fn() == tmp_path / "elsewhere"


def test_a_jobs_record_lies_in_its_workdirs_results_folder(tmp_path):
    assert paths.result_path(tmp_path, "abc123") == paths.results_dir(tmp_path) / "abc123.json" \
        == tmp_path / "results" / "abc123.json"


@pytest.mark.parametrize("fn, var, default", [(paths.workdir, "STUDY_WORKDIR", "runs"),
                                               (paths.manifests_dir, "STUDY_MANIFESTS", "manifests"),
                                               (paths.cache_dir, "STUDY_CACHE", ".cache")])
def test_a_variable_set_to_the_empty_string_counts_as_unset(monkeypatch, fn, var, default):
    """`STUDY_WORKDIR= study submit ...` (or `export STUDY_WORKDIR=$UNSET_VAR`) made the current folder the workdir:
    results/, ledgers/, locks/ and jobs/ written beside whatever it holds."""
    monkeypatch.setenv(var, "")
    assert fn() == Path(default)


def test_a_folder_that_is_a_file_a_dangling_link_or_under_a_file_is_refused_naming_it(tmp_path):
    """A command that makes folders there would fail inside them; the error names the path and what it was given
    as."""
    from study.errors import StudyError

    (tmp_path / "file").write_text("")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    os.mkfifo(tmp_path / "fifo")
    for path, said in [(tmp_path / "file", "exists and is not a folder"),
                       (tmp_path / "fifo", "exists and is not a folder"),
                       (tmp_path / "dangling", f"a link to {tmp_path / 'gone'}, which does not exist"),
                       (tmp_path / "file" / "sub" / "dir", f"cannot be a folder: {tmp_path / 'file'} is a file")]:
        with pytest.raises(StudyError) as e:
            paths.refuse_file_for_folder(path, "--out")
        assert str(e.value) == f"--out {path}: {said}" + (" (a folder unmounted?)" if "link" in said else "")
    paths.refuse_file_for_folder(tmp_path / "new" / "folder", "--out")  # not there yet: made later


def test_a_workdir_that_cannot_be_a_folder_is_named_with_whence_it_came(monkeypatch, tmp_path):
    from study.errors import StudyError

    (tmp_path / "file").write_text("")
    monkeypatch.delenv("STUDY_WORKDIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.checked_workdir(None) == Path("runs")
    file = str(tmp_path / "file")
    for given, env, said in [(file, "", "--workdir"), (None, file, "$STUDY_WORKDIR"), (None, "", "workdir")]:
        monkeypatch.setenv("STUDY_WORKDIR", env)
        if said == "workdir":
            (tmp_path / "runs").write_text("")
        with pytest.raises(StudyError, match=f"^{re.escape(said)} "):
            paths.checked_workdir(given)


def test_the_manifests_folder_is_said_absolute_and_whence(monkeypatch, tmp_path):
    """A notebook's current folder is not always the project's: the error says which folder it looked in, and why
    that one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDY_MANIFESTS", "")
    assert paths.manifests_dir_said() == f"{tmp_path.resolve() / 'manifests'} (./manifests: STUDY_MANIFESTS is not set)"
    monkeypatch.setenv("STUDY_MANIFESTS", "m")
    assert paths.manifests_dir_said() == f"{tmp_path.resolve() / 'm'} (STUDY_MANIFESTS)"
