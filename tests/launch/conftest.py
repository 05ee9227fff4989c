"""Fixtures of the launcher tests (their helpers: launch_helpers.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from launch_helpers import PROFILE, build_manifests, fake_slurm


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


@pytest.fixture
def slurm(env, monkeypatch):
    """The stand-in Slurm's folder (launch_helpers.fake_slurm: no cluster runs), its commands first on PATH."""
    root = env / "slurm"
    monkeypatch.setenv("PATH", f"{fake_slurm(root)}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return root
