"""study.paths: every location has its default and moves with its environment variable."""
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
