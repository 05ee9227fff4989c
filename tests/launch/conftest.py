"""Fixtures of the launcher tests (their helpers: launch_helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from launch_helpers import PROFILE, build_manifests


@pytest.fixture(scope="session")
def manifests(tmp_path_factory) -> Path:
    """Manifests toy_* and bad_* (session-wide: built once); bad_train's image files are gone."""
    root = tmp_path_factory.mktemp("launch_data")
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_MANIFESTS", str(root / "manifests"))
    try:
        build_manifests(root, ("toy", "bad"))
    finally:
        mp.undo()
    for png in (root / "images" / "bad" / "train").rglob("*.png"):  # `bad`: every pretraining job on it fails
        png.unlink()
    return root / "manifests"


@pytest.fixture
def env(manifests, monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_MANIFESTS", str(manifests))
    monkeypatch.delenv("STUDY_WORKDIR", raising=False)
    (tmp_path / "profile.yaml").write_text(PROFILE)
    return tmp_path
