import json
import shutil

import numpy as np
import pytest
from dataset_layouts import INAT_CATEGORIES, inat_dir, make_inat21

from study.datasets import read_dataset
from study.errors import StudyError


def test_labels_come_from_annotations_joined_on_image_id(tmp_path):
    doc = make_inat21(tmp_path, "train")
    index = read_dataset("inat21", tmp_path, "train")
    by_id = {a["image_id"]: a["category_id"] for a in doc["annotations"]}
    truth = {im["file_name"]: by_id[im["id"]] for im in doc["images"]}
    got = dict(zip(index.paths.to_pylist(), index.labels.tolist()))
    assert got == truth
    for path, label in got.items():  # the folder prefix is the category id, as torchvision's "full" target
        assert path.split("/")[1] == inat_dir(INAT_CATEGORIES[label])


def test_taxonomy_columns(tmp_path):
    make_inat21(tmp_path, "val", per_class=1)
    index = read_dataset("inat21", tmp_path, "val")
    assert index.levels == ["kingdom", "phylum", "class", "order", "family", "genus", "species"]
    assert index.class_names == ["Lumbricus terrestris", "Corvus corax", "Rosa canina"]
    rows = {lab: {k: v[i].as_py() for k, v in index.columns.items()} for i, lab in enumerate(index.labels)}
    assert rows[1] == {"supercategory": "Birds", "kingdom": "Animalia", "phylum": "Chordata", "class": "Aves",
                       "order": "Passeriformes", "family": "Corvidae", "genus": "Corvus", "species": "Corvus corax"}


def _edit(tmp_path, fn):
    path = tmp_path / "train.json"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["images"].append(dict(d["images"][0])), "image id 100 is listed twice"),
    (lambda d: (d["images"].append(dict(d["images"][0], id=999)),
                d["annotations"].append({"id": 99, "image_id": 999, "category_id": 0})),
     r"train.json: images\[6\] \(id 999\) has the file_name of images\[0\] \(id 100\), 'train/.*\.jpg': an image "
     r"is listed once$"),
    (lambda d: d["annotations"][0].update(category_id=3), "out of range"),
    (lambda d: d["annotations"].append({"id": 99, "image_id": 5, "category_id": 0}), "not in images"),
    (lambda d: d["annotations"].append({"id": 99, "image_id": 10**6, "category_id": 0}),
     r"annotations\[6\] refers to image id 1000000, which is not in images$"),  # past the last id too
    (lambda d: d["annotations"][0].update(category_id=-1),
     r"annotations\[0\]: label \(category_id\) -1 is out of range 0..2$"),
    (lambda d: d["annotations"][0].pop("category_id"), r"category_id of annotations entry 0 is None, not an integer$"),
    (lambda d: d["annotations"].pop(), "has no annotation"),
    (lambda d: d["annotations"].append({"id": 99, "image_id": 100, "category_id": 1}),
     r"train.json: image id 100 has more than one annotation$"),
    (lambda d: d.pop("annotations"), "no annotations"),
    (lambda d: d.update(annotations=None), r"train.json: no annotations \(a test split has no labels\)$"),
    (lambda d: d.update(categories={"id": 0}), r"train.json: no 'categories' list$"),
    (lambda d: d["annotations"][0].update(category_id=1.9), r"category_id of annotations entry 0 is 1.9, not an"),
    (lambda d: d["categories"][0].update(id="0"), r"categories\[i\].id of entry 0 is '0', not an integer"),
    (lambda d: d["categories"][1].update(id=3), r"categories\[1\] has id 3, out of range \(category ids must be 0..2, "
                                                r"each once\)"),
    (lambda d: d["categories"][2].update(id=0), r"categories\[2\] has id 0, as categories\[0\] \(category ids"),
    (lambda d: d["categories"][2].update(name="Lumbricus terrestris"),
     r"categories\[0\] \(id 0\) and categories\[2\] \(id 2\) have the same name 'Lumbricus terrestris'"),
    (lambda d: d["categories"][1].update(genus=None), r"categories\[1\] \(id 1\) 'genus' is None, not a string"),
    (lambda d: d["images"][0].update(id=True), "id of images entry 0 is True, not an integer"),
    (lambda d: d["images"][0].update(id=2**70), "out of the int64 range"),
    (lambda d: d.update(images=[]), "the images list is empty"),
    (lambda d: d["images"][1].update(file_name=None), r"images\[1\].file_name is None, not a string"),
    (lambda d: d["images"][1].update(file_name=7), r"images\[1\].file_name is 7, not a string"),
])
def test_bad_annotations(tmp_path, edit, message):
    make_inat21(tmp_path, "train", per_class=2)
    _edit(tmp_path, edit)
    with pytest.raises(StudyError, match=message):
        read_dataset("inat21", tmp_path, "train")


@pytest.mark.parametrize("key", ["name", "supercategory", "kingdom", "phylum", "class", "order", "family", "genus"])
def test_a_category_without_a_taxonomy_key_is_refused(tmp_path, key):
    """A missing level would be a column of "" (one class at that level: a trivial granularity evaluation)."""
    make_inat21(tmp_path, "train", per_class=1)
    _edit(tmp_path, lambda d: d["categories"][1].pop(key))
    with pytest.raises(StudyError, match=rf"train.json: categories\[1\] \(id 1\) has no '{key}'$"):
        read_dataset("inat21", tmp_path, "train")


@pytest.mark.parametrize("value", ["", " "])
def test_a_category_with_an_empty_level_is_refused(tmp_path, value):
    """An empty genus would make "" one genus of every species left so (two genera of one family merged), as a
    blank cell of a taxonomy CSV would: refused as that is."""
    make_inat21(tmp_path, "train", per_class=1)
    _edit(tmp_path, lambda d: d["categories"][1].update(genus=value))
    with pytest.raises(StudyError, match=rf"train.json: categories\[1\] \(id 1\) 'genus' is '{value}': give every "):
        read_dataset("inat21", tmp_path, "train")


def test_annotations_that_disagree_with_the_class_folders_are_refused(tmp_path):
    """A folder `00002_..._Rosa_canina/` holds category 2's images (torchvision labels them by that prefix): a
    train.json annotating them as another category would give the manifest other labels than torchvision's."""
    make_inat21(tmp_path, "train", per_class=2)
    folder_of = {im["id"]: im["file_name"].split("/")[1] for im in json.loads((tmp_path / "train.json").read_text())
                 ["images"]}
    swap = {0: 2, 2: 0}  # two folders disagree: the first by name is named, whatever the order images are listed in

    def disagree(d):
        d["images"].reverse()
        for a in d["annotations"]:
            a["category_id"] = swap.get(a["category_id"], a["category_id"])

    _edit(tmp_path, disagree)
    with pytest.raises(StudyError, match=rf"train.json: folder {sorted(folder_of.values())[0]}/ holds images "
                                         r"annotated as category 2 \('Rosa canina'\), not 0 as its name says"):
        read_dataset("inat21", tmp_path, "train")
    # folders named otherwise (a JSON of one's own; `0_species`: no 5-digit id) are not read for ids
    for old, new in ((inat_dir(c), f"{c[0]}_species") for c in INAT_CATEGORIES):
        (tmp_path / "train" / old).rename(tmp_path / "train" / new)
    _edit(tmp_path, lambda d: [im.update(file_name=im["file_name"].replace(folder_of[im["id"]],
                                                                           folder_of[im["id"]][4] + "_species"))
                               for im in d["images"]])
    assert sorted(read_dataset("inat21", tmp_path, "train").labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_malformed_json_names_file_and_line(tmp_path):
    make_inat21(tmp_path, "train", per_class=1)
    path = tmp_path / "train.json"
    lines = path.read_text().splitlines()
    lines[5] = lines[5] + ",,"
    path.write_text("\n".join(lines))
    with pytest.raises(StudyError, match=r"train.json line 6 column \d+: malformed JSON"):
        read_dataset("inat21", tmp_path, "train")


@pytest.mark.parametrize("keep", [0, 0.5, 0.999])
def test_a_json_cut_short_is_named_so_not_as_malformed(tmp_path, keep):
    make_inat21(tmp_path, "train", per_class=1)
    path = tmp_path / "train.json"
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)] + b"\n")
    with pytest.raises(StudyError, match=r"train.json line \d+ column \d+: the file ends before its JSON does "
                                         r"\(\d+ bytes; cut short\?\): extract it again"):
        read_dataset("inat21", tmp_path, "train")


def test_missing_annotation_file(tmp_path):
    with pytest.raises(StudyError, match="train_mini.json"):
        read_dataset("inat21", tmp_path, "train_mini")


def test_split_folder_renamed_by_torchvision_is_followed_and_a_missing_folder_refused(tmp_path):
    """torchvision's download extracts `train/` as `2021_train/`: the build follows it (same subsets: the keys are
    file names). A class folder that is not there is named at build time, not found missing hours into training."""
    make_inat21(tmp_path / "a")
    ref = read_dataset("inat21", tmp_path / "a", "train")
    shutil.copytree(tmp_path / "a", tmp_path / "tv")
    (tmp_path / "tv" / "train").rename(tmp_path / "tv" / "2021_train")
    tv = read_dataset("inat21", tmp_path / "tv", "train")
    assert all(p.startswith("2021_train/") and (tmp_path / "tv" / p).is_file() for p in tv.paths.to_pylist())
    assert tv.keys.to_pylist() == ref.keys.to_pylist() and np.array_equal(tv.labels, ref.labels)
    _edit(tmp_path / "tv", lambda d: d["images"][0].update(file_name="elsewhere/x/1.jpg"))
    with pytest.raises(StudyError, match=r": 1 image folder\(s\) it names are not under .*\(e\.g\. elsewhere/x/\)"):
        read_dataset("inat21", tmp_path / "tv", "train")  # named as is; the renamed train/ folders are not counted
    gone = sorted((tmp_path / "a" / "train").iterdir())[0]
    shutil.rmtree(gone)
    with pytest.raises(StudyError, match=f"1 image folder.*not under.*train/{gone.name}/"):
        read_dataset("inat21", tmp_path / "a", "train")


def test_images_and_categories_listed_out_of_id_order_keep_their_labels_and_taxonomy(tmp_path):
    """Labels are category ids and rows are joined on ids: a train.json listing images and categories in another
    order (reversed here) gives every image its own label and its own category's taxonomy."""
    doc = make_inat21(tmp_path, "train")
    _edit(tmp_path, lambda d: (d["images"].reverse(), d["categories"].reverse()))
    index = read_dataset("inat21", tmp_path, "train")
    assert index.class_names == [f"{c[6]} {c[7]}" for c in INAT_CATEGORIES]
    by_id = {a["image_id"]: a["category_id"] for a in doc["annotations"]}
    truth = {im["file_name"]: by_id[im["id"]] for im in doc["images"]}
    assert dict(zip(index.paths.to_pylist(), index.labels.tolist())) == truth
    assert [g.as_py() for g in index.columns["genus"]] == [INAT_CATEGORIES[lab][6] for lab in index.labels]


@pytest.mark.parametrize("split, renamed", [("train_mini", "2021_train_mini"), ("val", "2021_valid")])
def test_train_mini_and_val_folders_renamed_by_torchvision_are_followed(tmp_path, split, renamed):
    """torchvision extracts `train_mini/` as `2021_train_mini/` and `val/` as `2021_valid/`: each split reads its
    own JSON, and finds its images under the renamed folder with the same keys and labels."""
    make_inat21(tmp_path / "a", split)
    ref = read_dataset("inat21", tmp_path / "a", split)
    assert all(p.startswith(f"{split}/") for p in ref.paths.to_pylist())
    shutil.copytree(tmp_path / "a", tmp_path / "tv")
    (tmp_path / "tv" / split).rename(tmp_path / "tv" / renamed)
    tv = read_dataset("inat21", tmp_path / "tv", split)
    assert all(p.startswith(f"{renamed}/") and (tmp_path / "tv" / p).is_file() for p in tv.paths.to_pylist())
    assert tv.keys.to_pylist() == ref.keys.to_pylist() and np.array_equal(tv.labels, ref.labels)


def test_file_names_written_with_backslashes_are_read_as_slash_paths(tmp_path):
    """A train.json rewritten on Windows (`train\\00000_...\\x.jpg`) names the same images."""
    make_inat21(tmp_path, "train", per_class=2)
    ref = read_dataset("inat21", tmp_path, "train")
    _edit(tmp_path, lambda d: [im.update(file_name=im["file_name"].replace("/", "\\")) for im in d["images"]])
    index = read_dataset("inat21", tmp_path, "train")
    assert index.paths.to_pylist() == ref.paths.to_pylist()
    assert all((tmp_path / p).is_file() for p in index.paths.to_pylist())
    assert np.array_equal(index.labels, ref.labels)


def test_a_split_folder_present_as_named_is_read_even_beside_a_torchvision_copy(tmp_path):
    """`train/` as file_name names it is read; a `2021_train/` beside it is followed only when `train/` is absent."""
    make_inat21(tmp_path)
    shutil.copytree(tmp_path / "train", tmp_path / "2021_train")
    assert all(p.startswith("train/") for p in read_dataset("inat21", tmp_path, "train").paths.to_pylist())


def test_a_renamed_split_folder_is_replaced_only_at_the_start_of_each_path(tmp_path):
    """`val/` renamed `2021_valid/`: a class folder whose name ends in `val` (`..._Corvus_oval/`) keeps its name."""
    make_inat21(tmp_path, "val", per_class=1)
    old, new = inat_dir(INAT_CATEGORIES[1]), inat_dir(INAT_CATEGORIES[1])[:-len("corax")] + "oval"
    (tmp_path / "val" / old).rename(tmp_path / "val" / new)
    path = tmp_path / "val.json"
    path.write_text(path.read_text().replace(f"/{old}/", f"/{new}/"))
    (tmp_path / "val").rename(tmp_path / "2021_valid")
    index = read_dataset("inat21", tmp_path, "val")
    assert sorted(index.paths.to_pylist())[1].startswith(f"2021_valid/{new}/")
    assert all((tmp_path / p).is_file() for p in index.paths.to_pylist())


def test_an_image_listed_but_absent_from_its_folder_is_refused(tmp_path):
    """A train.tar.gz extracted in part leaves class folders with some of their images: the file that is not there
    is named (its images[] entry and file_name) at build time, as Places365's and GLC20's readers name theirs."""
    doc = make_inat21(tmp_path, "train")
    gone = doc["images"][4]
    (tmp_path / gone["file_name"]).unlink()
    (tmp_path / doc["images"][5]["file_name"]).unlink()
    with pytest.raises(StudyError, match=rf"train.json: images\[4\] \(id {gone['id']}\) '{gone['file_name']}' is "
                                         r"not under .* \(1 more after it\): extract the split's images completely$"):
        read_dataset("inat21", tmp_path, "train")


def test_an_annotation_file_still_in_its_archive_is_named(tmp_path):
    """iNat21 ships each JSON as `<split>.json.tar.gz`: one not extracted is named with the archive beside it."""
    make_inat21(tmp_path, "val", per_class=1)
    (tmp_path / "val.json").rename(tmp_path / "val.json.tar.gz")  # its bytes do not matter: it is only named
    with pytest.raises(StudyError, match=r"inat21 val annotation file not found: .*/val\.json \(found "
                                         r"val\.json\.tar\.gz beside it, not extracted: extract it in "):
        read_dataset("inat21", tmp_path, "val")


@pytest.mark.parametrize("have, asked", [("train_mini", "train"), ("train", "train_mini")])
def test_a_train_split_whose_json_is_absent_names_the_other_train_json_beside_it(tmp_path, have, asked):
    """The README's `--split train` on a copy of train_mini alone (or the reverse) names the split to give."""
    make_inat21(tmp_path, have, per_class=1)
    with pytest.raises(StudyError, match=rf"inat21 {asked} annotation file not found: .*/{asked}\.json \(found "
                                         rf"{have}\.json beside it: give --split {have}\)$"):
        read_dataset("inat21", tmp_path, asked)
    (tmp_path / f"{asked}.json.tar.gz").write_bytes(b"")  # its archive beside it: that hint wins
    with pytest.raises(StudyError, match=rf"found {asked}\.json\.tar\.gz beside it, not extracted"):
        read_dataset("inat21", tmp_path, asked)


def test_manifest_show_counts_each_levels_values_by_their_path(tmp_path, monkeypatch):
    """`study manifest show` states each taxonomy level's number of values (a granularity level's chance top-1):
    the genus Morus of the gannet (Animalia) and of the mulberry (Plantae) is two values, as granularity scores it."""
    import dataset_layouts

    from study.manifests.build import BuildConfig, build_manifest
    from study.manifests.report import show_json, show_text

    monkeypatch.setattr(dataset_layouts, "INAT_CATEGORIES", [
        *INAT_CATEGORIES,
        (3, "Animalia", "Chordata", "Aves", "Suliformes", "Sulidae", "Morus", "bassanus", "Birds"),
        (4, "Plantae", "Tracheophyta", "Magnoliopsida", "Rosales", "Moraceae", "Morus", "alba", "Plants"),
    ])
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_inat21(tmp_path / "inat", "train", per_class=1)
    build_manifest(BuildConfig(dataset="inat21", root=tmp_path / "inat", split="train", name="inat21_train"))
    counts = {"kingdom": 2, "phylum": 3, "class": 3, "order": 4, "family": 5, "genus": 5, "species": 5}
    assert show_json("inat21_train")["values_per_level"] == counts  # 4 genus names, 5 genera
    assert ("\ntaxonomy levels (values): kingdom (2), phylum (3), class (3), order (4), family (5), genus (5), "
            "species (5)\n") in show_text("inat21_train")
