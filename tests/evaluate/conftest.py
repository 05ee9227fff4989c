"""Fixtures of the evaluation tests: tiny real manifests over PNG files the test writes."""
from __future__ import annotations

import pytest
import torch
from image_trees import write_quadrant_tree


@pytest.fixture
def manifests(tmp_path, monkeypatch):
    """Manifests 'evtrain' (4 classes x 10 images, labeled sizes 8, 20, 40) and 'evtest' (4 x 5), with a taxonomy
    group,class_name (classes 0,1 -> top; 2,3 -> bottom)."""
    from study.manifests.build import BuildConfig, build_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\ntop,class0\ntop,class1\nbottom,class2\nbottom,class3\n")
    write_quadrant_tree(tmp_path / "train", 10, seed=0)
    write_quadrant_tree(tmp_path / "test", 5, seed=1)
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "train", split="train", name="evtrain",
                               sizes=[40], labeled_sizes=[8, 20, 40], taxonomy=tax))
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "test", split="train", name="evtest",
                               sizes=[20], taxonomy=tax))
    return tmp_path


@pytest.fixture
def encoder_file(tmp_path):
    """`encoder_file(name, seed)` -> path of a random thin resnet18_small encoder.pt."""
    from study.train.backbones import build_backbone, encoder_payload

    def make(name: str = "enc", seed: int = 0):
        torch.manual_seed(seed)
        path = tmp_path / name / "encoder.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(encoder_payload(build_backbone("resnet18_small", 4)), path)
        return path

    return make
