"""Subsets depend on the images, not on the folder layout: two copies of a dataset laid out differently (layouts
the readers all accept) give the same nested and labeled subsets."""
import shutil

import pytest
from dataset_layouts import make_glc20, make_imagenet_official, make_places365, write_image

from study.manifests import load_manifest
from study.manifests.build import BuildConfig, build_manifest


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))

    def run(dataset, root, split, name, prefix):
        """(rows in rank order, with the layout's `prefix` removed from their paths; their labeled ranks)"""
        build_manifest(BuildConfig(dataset, root, split, name, sizes=[3], labeled_sizes=[2]))
        m = load_manifest(name)
        paths = m.table["path"].tolist()
        assert all(p.startswith(prefix) for p in paths)
        return [p[len(prefix):] for p in paths], m.table["labeled_rank"].tolist()

    return run


def test_places365_either_image_folder(tmp_path, build):
    a = build("places365", make_places365(tmp_path / "a", image_dir="data_256", per_class=4), "train", "a",
              "data_256/")
    b = build("places365", make_places365(tmp_path / "b", image_dir="data_256_standard", per_class=4), "train", "b",
              "data_256_standard/")
    assert a == b


def test_imagenet_val_flat_or_sorted_into_class_folders(tmp_path, build):
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    flat = make_imagenet_official(tmp_path / "flat", val_labels=truth)
    tree = shutil.copytree(flat, tmp_path / "tree")
    for k, wnid in enumerate(truth, 1):  # as torchvision's valprep script sorts it
        (tree / "val" / wnid).mkdir(exist_ok=True)
        (tree / "val" / f"ILSVRC2012_val_{k:08d}.JPEG").rename(tree / "val" / wnid / f"ILSVRC2012_val_{k:08d}.JPEG")
    a = build("imagenet", flat, "val", "a", "val/")
    b = build("imagenet", tree, "val", "b", "val/")
    assert [p.rsplit("/", 1)[-1] for p in b[0]] == a[0] and a[1] == b[1] and len(a[0]) == 5


def test_imagefolder_with_or_without_split_folder(tmp_path, build):
    with_split = tmp_path / "a"
    for c, n in (("cat", 4), ("dog", 3), ("eel", 2)):
        for i in range(n):
            write_image(with_split / "train" / c / f"{i:03d}.png", value=i)
    bare = with_split / "train"
    a = build("imagefolder", with_split, "train", "a", "train/")
    b = build("imagefolder", bare, "", "b", "")
    assert a == b


def test_glc20_us_patches_split_in_parts_or_not(tmp_path, build):
    """`patches_us/patches_us_NN/CD/AB/` or `patches_us/CD/AB/`: ranked by occurrence id, the same subsets."""
    parts = tmp_path / "parts"
    make_glc20(parts)
    flat = shutil.copytree(parts, tmp_path / "flat")
    for part in sorted((flat / "patches_us").glob("patches_us_*")):
        for cd in part.iterdir():
            cd.rename(flat / "patches_us" / cd.name)
        part.rmdir()
    a = build("glc20", parts, "train", "a", "patches_")
    b = build("glc20", flat, "train", "b", "patches_")
    assert any("patches_us_" in p for p in a[0]) and not any("patches_us_" in p for p in b[0])
    assert [p.rsplit("/", 1)[-1] for p in a[0]] == [p.rsplit("/", 1)[-1] for p in b[0]] and a[1] == b[1]


def test_repeated_names_fall_back_to_ranking_by_path(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    root = make_imagenet_official(tmp_path / "in")
    train = root / "train"
    shutil.copy(train / "n01440764" / "n01440764_10.JPEG", train / "n01443537" / "n01440764_10.JPEG")
    meta, _ = build_manifest(BuildConfig("imagenet", root, "train", "dup", sizes=[3]))
    assert "rank_key" not in meta["info"] and meta["num_images"] == 10
    m = load_manifest("dup")
    assert sorted(m.table["rank"].tolist()) == list(range(10))
    unique = make_imagenet_official(tmp_path / "ok")
    assert build_manifest(BuildConfig("imagenet", unique, "train", "ok", sizes=[3]))[0]["info"]["rank_key"] == \
        "file name"
