"""Fixtures of the training tests; the helpers they use are in train_helpers.py."""
import pytest
from train_helpers import tiny_config, write_images


@pytest.fixture
def tiny_manifest(tmp_path, monkeypatch):
    """Manifest 'tiny' built with study.manifests in tmp_path over 24 PNG images in 3 classes."""
    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    root = tmp_path / "images"
    write_images(root)
    build_manifest(BuildConfig(dataset="imagefolder", root=root, split="train", name="tiny", sizes=[24],
                               labeled_sizes=[12, 24]))
    return load_manifest("tiny")


@pytest.fixture
def make_config():
    """`make_config(**overrides)` -> a tiny PretrainConfig (see tiny_config)."""
    return tiny_config


@pytest.fixture
def real_manifests(tmp_path, monkeypatch):
    """Manifests built with study.manifests in tmp_path: 'tinyreal' (24 PNGs, imagefolder) and 'tinyreal-ds2'
    (the same read through downsample:factor=2)."""
    from study.manifests.build import BuildConfig, build_manifest
    from study.manifests.corrupt import corrupt_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    root = tmp_path / "real_images"
    write_images(root)
    build_manifest(BuildConfig(dataset="imagefolder", root=root, split="train", name="tinyreal", sizes=[24],
                               labeled_sizes=[12]))
    corrupt_manifest("tinyreal-ds2", "tinyreal", "downsample:factor=2")
    return root
