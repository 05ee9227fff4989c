"""Fixtures of the training tests; the helpers they use are in train_helpers.py."""
import importlib
import sys

import pytest
import torch
from train_helpers import TinyManifest, augment_standin, tiny_config, write_images

from study.errors import StudyError



@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def augment_package(monkeypatch):
    """The real study.train.augment when it exists, else the stand-in of train_helpers."""
    try:
        mod = importlib.import_module("study.train.augment")
        if hasattr(mod, "AugmentConfig") and hasattr(mod, "build_augment"):
            return mod
    except ImportError:
        pass
    # not written yet (or only partly): the stand-in
    mod = augment_standin()
    monkeypatch.setitem(sys.modules, "study.train.augment", mod)
    import study.train as train_pkg

    monkeypatch.setattr(train_pkg, "augment", mod, raising=False)
    return mod


@pytest.fixture
def tiny_manifest(tmp_path, monkeypatch):
    """A manifest of 24 PNG images in tmp_path, served to `pretrain` under the name 'tiny'."""
    root = tmp_path / "images"
    m = TinyManifest("tiny", root, write_images(root), {"kind": "image", "seed": 0})
    manifests = {"tiny": m}

    def load(name):
        if name not in manifests:
            raise StudyError(f"manifest {name!r} not found")
        return manifests[name]

    monkeypatch.setattr("study.train.loop._load_manifest", load)
    m.registry = manifests
    return m


@pytest.fixture
def make_config():
    """`make_config(**overrides)` -> a tiny PretrainConfig (see tiny_config)."""
    return tiny_config
