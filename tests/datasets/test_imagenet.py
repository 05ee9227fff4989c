import re
import shutil
import sys

import numpy as np
import pytest
from dataset_layouts import ILSVRC_IDS, WNIDS, make_imagenet_kaggle, make_imagenet_official, write_image

from study.datasets import read_dataset
from study.errors import StudyError


def test_official_train_is_sorted_wnid_tree(tmp_path):
    make_imagenet_official(tmp_path)
    index = read_dataset("imagenet", tmp_path, "train")
    assert index.class_names == sorted(WNIDS)
    assert index.paths.to_pylist()[0] == "train/n01440764/n01440764_10.JPEG"
    assert list(index.labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_official_val_maps_ilsvrc_id_to_sorted_wnid_index(tmp_path):
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    make_imagenet_official(tmp_path, val_labels=truth)
    assert [ILSVRC_IDS[i] for i in sorted(ILSVRC_IDS)] != sorted(WNIDS)  # the trap is present
    index = read_dataset("imagenet", tmp_path, "val")
    assert index.paths.to_pylist() == [f"val/ILSVRC2012_val_{k:08d}.JPEG" for k in range(1, 6)]
    assert [index.class_names[i] for i in index.labels] == truth
    assert index.class_names == sorted(WNIDS)  # train's label numbers (the devkit lists ILSVRC ids in another order)
    assert list(index.labels) == [sorted(WNIDS).index(w) for w in truth]
    assert {s["path"] for s in index.sources} == {
        "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", "ILSVRC2012_devkit_t12/data/meta.mat"}


def test_kaggle_layout_train_and_val(tmp_path):
    make_imagenet_kaggle(tmp_path)
    train = read_dataset("imagenet", tmp_path, "train")
    assert train.paths.to_pylist()[0] == "ILSVRC/Data/CLS-LOC/train/n01440764/n01440764_0.JPEG"
    assert list(train.labels) == [0, 0, 1, 1, 2, 2]
    val = read_dataset("imagenet", tmp_path, "val")
    assert val.paths.to_pylist() == [f"ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_{k:08d}.JPEG" for k in (1, 2, 3)]
    assert [val.class_names[i] for i in val.labels] == ["n01440764", "n01484850", "n01443537"]


def test_ground_truth_errors_name_file_and_line(tmp_path):
    make_imagenet_official(tmp_path)
    gt = tmp_path / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt"
    gt.write_text("1\n2\nthree\n1\n1\n")
    with pytest.raises(StudyError, match=r"ground_truth.txt line 3"):
        read_dataset("imagenet", tmp_path, "val")
    gt.write_text("1\n2\n1_0\n1\n1\n")  # Python's int() would take it as 10
    with pytest.raises(StudyError, match=r"ground_truth.txt line 3: expected an integer ILSVRC2012_ID, got '1_0'"):
        read_dataset("imagenet", tmp_path, "val")
    gt.write_text("1\n2\n7\n1\n1\n")
    with pytest.raises(StudyError, match=r"line 3: label 7 is out of range"):
        read_dataset("imagenet", tmp_path, "val")
    gt.unlink()
    with pytest.raises(StudyError, match="ILSVRC2012_validation_ground_truth.txt not found"):
        read_dataset("imagenet", tmp_path, "val")


def test_val_image_without_label_and_label_without_image(tmp_path):
    make_imagenet_kaggle(tmp_path)
    sol = tmp_path / "LOC_val_solution.csv"
    sol.write_text(sol.read_text() + "ILSVRC2012_val_00000009,n01440764 1 2 3 4\n")
    with pytest.raises(StudyError, match="ILSVRC2012_val_00000009.*not found"):
        read_dataset("imagenet", tmp_path, "val")
    sol.write_text(sol.read_text() + "ILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    with pytest.raises(StudyError, match="listed twice"):
        read_dataset("imagenet", tmp_path, "val")


def test_unknown_split(tmp_path):
    make_imagenet_kaggle(tmp_path)
    with pytest.raises(StudyError, match="unknown split"):
        read_dataset("imagenet", tmp_path, "test")
    assert np.all(read_dataset("imagenet", tmp_path, "train").labels >= 0)


def test_missing_split_folder_names_both_layouts(tmp_path):
    """A root of neither layout names the folder each would have (a new user may have extracted Kaggle's archive)."""
    with pytest.raises(StudyError, match=re.escape(f"split folder not found: {tmp_path / 'train'} (nor Kaggle's "
                                                   f"{tmp_path / 'ILSVRC/Data/CLS-LOC/train'})")):
        read_dataset("imagenet", tmp_path, "train")


def test_half_sorted_val_folder_is_refused(tmp_path):
    make_imagenet_official(tmp_path)
    (tmp_path / "val" / "n01443537").mkdir()
    (tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG").rename(
        tmp_path / "val" / "n01443537" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(StudyError, match="both class folders and loose images"):
        read_dataset("imagenet", tmp_path, "val")


def test_loose_images_in_train_beside_the_class_folders_are_refused(tmp_path):
    """An inner tar extracted into train/ itself, not into its <wnid>/ folder: its images would be left out."""
    make_imagenet_official(tmp_path)
    for i in range(4):
        write_image(tmp_path / "train" / f"n01440764_{100 + i}.JPEG", value=i)
    with pytest.raises(StudyError, match=re.escape(f"{tmp_path / 'train'} holds 4 image file(s) beside its class "
                                                   "folders (e.g. n01440764_100.JPEG, n01440764_101.JPEG, "
                                                   "n01440764_102.JPEG), which no class lists")):
        read_dataset("imagenet", tmp_path, "train")


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_two_val_files_of_one_stem_are_refused_naming_both(tmp_path, layout):
    """A converted copy kept beside the original (the usual CMYK fix): which one the label is for is unknown."""
    if layout == "official":
        make_imagenet_official(tmp_path)
        val, labels = tmp_path / "val", tmp_path / "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
    else:
        make_imagenet_kaggle(tmp_path)
        val, labels = tmp_path / "ILSVRC/Data/CLS-LOC/val", tmp_path / "LOC_val_solution.csv"
    write_image(val / "ILSVRC2012_val_00000001.png", value=99)
    with pytest.raises(StudyError, match=re.escape(f"{val}: ILSVRC2012_val_00000001.JPEG and "
                                                   f"ILSVRC2012_val_00000001.png have one stem, which {labels} labels "
                                                   "once: keep one of them")):
        read_dataset("imagenet", tmp_path, "val")


def test_official_layout_with_kaggle_label_files(tmp_path):
    """LOC_synset_mapping.txt kept beside an official layout does not make it Kaggle's; without the devkit, its
    LOC_val_solution.csv labels the flat val folder."""
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    make_imagenet_official(tmp_path, val_labels=truth)
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words\n" for w in WNIDS))
    assert read_dataset("imagenet", tmp_path, "train").paths.to_pylist()[0] == "train/n01440764/n01440764_10.JPEG"
    with_devkit = read_dataset("imagenet", tmp_path, "val")
    shutil.rmtree(tmp_path / "ILSVRC2012_devkit_t12")
    lines = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{k:08d},{w} 1 2 3 4" for k, w in enumerate(truth, 1)]
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    from_csv = read_dataset("imagenet", tmp_path, "val")
    assert [from_csv.class_names[i] for i in from_csv.labels] == truth
    assert from_csv.paths.to_pylist() == with_devkit.paths.to_pylist()
    assert {s["path"] for s in from_csv.sources} == {"LOC_synset_mapping.txt", "LOC_val_solution.csv"}


def test_inner_tars_left_in_train_are_refused(tmp_path):
    """An interrupted extraction of the inner tars leaves `<wnid>.tar` beside the class folders."""
    make_imagenet_official(tmp_path)
    shutil.rmtree(tmp_path / "train" / "n01484850")
    (tmp_path / "train" / "n01484850.tar").write_bytes(b"x")
    with pytest.raises(StudyError, match=r"imagenet: inner tars not extracted: n01484850.tar in .*train: extract"):
        read_dataset("imagenet", tmp_path, "train")


def test_official_train_folders_are_the_devkit_wnids(tmp_path):
    make_imagenet_official(tmp_path)
    shutil.rmtree(tmp_path / "train" / "n01484850")
    with pytest.raises(StudyError, match=r"class folders of .*train differ from the 3 wnids of .*/meta.mat: "
                                         r"wnids without a folder: 1 \(e.g. n01484850\)$"):
        read_dataset("imagenet", tmp_path, "train")
    write_image(tmp_path / "train" / "n01484850" / "n01484850_1.JPEG")
    write_image(tmp_path / "train" / "n09999999" / "n09999999_1.JPEG")
    with pytest.raises(StudyError, match=r"meta.mat: folders not among its wnids: 1 \(e.g. n09999999\)$"):
        read_dataset("imagenet", tmp_path, "train")


def test_official_train_is_checked_against_meta_mat_when_loc_synset_mapping_is_also_there(tmp_path):
    """meta.mat is the devkit's own list of the 1000 leaf wnids: a LOC_synset_mapping.txt beside it is not the
    reference (here it lists a wnid the devkit and the folders lack)."""
    make_imagenet_official(tmp_path)
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words\n" for w in WNIDS + ["n09999999"]))
    assert read_dataset("imagenet", tmp_path, "train").class_names == WNIDS
    shutil.rmtree(tmp_path / "train" / "n01484850")
    with pytest.raises(StudyError, match=r"differ from the 3 wnids of .*/meta.mat: wnids without a folder: 1 "):
        read_dataset("imagenet", tmp_path, "train")


def test_without_scipy_official_train_is_checked_against_loc_synset_mapping_or_not_at_all(tmp_path, monkeypatch):
    """meta.mat needs scipy to be read: without it, LOC_synset_mapping.txt in the root is the reference, and
    without that the check is skipped (the val build, which needs meta.mat, says scipy is missing)."""
    make_imagenet_official(tmp_path)
    shutil.rmtree(tmp_path / "train" / "n01484850")
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # `import scipy.io` raises ImportError
    assert read_dataset("imagenet", tmp_path, "train").class_names == ["n01440764", "n01443537"]
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words\n" for w in WNIDS))
    with pytest.raises(StudyError, match=r"differ from the 3 wnids of .*LOC_synset_mapping.txt: wnids without a "
                                         r"folder: 1 \(e.g. n01484850\)"):
        read_dataset("imagenet", tmp_path, "train")
    with pytest.raises(StudyError, match=r"meta.mat needs scipy"):
        read_dataset("imagenet", tmp_path, "val")


def test_a_wnid_listed_twice_names_both_lines(tmp_path):
    make_imagenet_kaggle(tmp_path)
    with open(tmp_path / "LOC_synset_mapping.txt", "a") as f:
        f.write(f"{WNIDS[1]} again\n")
    with pytest.raises(StudyError, match=rf"LOC_synset_mapping.txt line 4: wnid {WNIDS[1]} is listed twice "
                                         r"\(first on line 2\)"):
        read_dataset("imagenet", tmp_path, "train")


def test_kaggle_synset_mapping_in_another_line_order_still_gives_sorted_wnid_indices(tmp_path):
    """The class index is the sorted-wnid index (torchvision's), whatever order LOC_synset_mapping.txt lists them in."""
    make_imagenet_kaggle(tmp_path)
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words\n" for w in reversed(WNIDS)))
    train = read_dataset("imagenet", tmp_path, "train")
    assert train.class_names == sorted(WNIDS) and list(train.labels) == [0, 0, 1, 1, 2, 2]
    val = read_dataset("imagenet", tmp_path, "val")
    assert val.class_names == sorted(WNIDS)
    assert list(val.labels) == [0, 2, 1]  # val_1 n01440764, val_2 n01484850, val_3 n01443537


def test_the_devkit_labels_val_when_a_loc_val_solution_csv_is_also_there(tmp_path):
    """The devkit's ground truth is the official label file: a LOC_val_solution.csv beside it is not read."""
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    make_imagenet_official(tmp_path, val_labels=truth)
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words\n" for w in WNIDS))
    other = ["n01440764"] * len(truth)  # labels that disagree with the devkit's
    lines = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{k:08d},{w} 1 2 3 4" for k, w in enumerate(other, 1)]
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    index = read_dataset("imagenet", tmp_path, "val")
    assert [index.class_names[i] for i in index.labels] == truth
    assert {s["path"] for s in index.sources} == {
        "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", "ILSVRC2012_devkit_t12/data/meta.mat"}


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_a_val_image_without_a_label_is_refused_naming_it(tmp_path, layout):
    """An image in val/ that the label file does not list would otherwise be left out of the manifest silently."""
    if layout == "official":
        make_imagenet_official(tmp_path)
        val = tmp_path / "val"
    else:
        make_imagenet_kaggle(tmp_path)
        val = tmp_path / "ILSVRC/Data/CLS-LOC/val"
    write_image(val / "ILSVRC2012_val_00000042.JPEG", value=42)
    with pytest.raises(StudyError, match=r"image 'ILSVRC2012_val_00000042.JPEG' has no label in .*"
                                         r"(ILSVRC2012_validation_ground_truth.txt|LOC_val_solution.csv)$"):
        read_dataset("imagenet", tmp_path, "val")


@pytest.mark.parametrize("layout", ["official", "kaggle"])
def test_blank_lines_in_the_label_files_are_skipped(tmp_path, layout):
    """Blank lines an editor left at the end of a label file (or, where lines are keyed by name, between lines) label
    nothing and are no error. (In the ground truth, line i labels image i: a blank line between lines is refused.)"""
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    if layout == "official":
        make_imagenet_official(tmp_path, val_labels=truth)
        files = [tmp_path / "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"]
    else:
        make_imagenet_kaggle(tmp_path)
        truth = ["n01440764", "n01484850", "n01443537"]
        files = [tmp_path / "LOC_synset_mapping.txt", tmp_path / "LOC_val_solution.csv"]
    for f in files:
        text = f.read_text() if layout == "official" else f.read_text().replace("\n", "\n\n", 1)
        f.write_text(text + "\n\n")
    val = read_dataset("imagenet", tmp_path, "val")
    assert [val.class_names[i] for i in val.labels] == truth and val.class_names == WNIDS


def test_a_blank_line_between_ground_truth_labels_is_named(tmp_path):
    """Line i labels image i: the images after a blank line would take their neighbours' labels; it was refused as
    "image ILSVRC2012_val_00000006 is listed but not found", naming no blank line."""
    make_imagenet_official(tmp_path, val_labels=["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"])
    gt = tmp_path / "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(lines[:2] + ["  "] + lines[2:]) + "\n")
    with pytest.raises(StudyError, match=r"ground_truth.txt line 3: blank line between labels"):
        read_dataset("imagenet", tmp_path, "val")


def test_a_malformed_synset_mapping_line_names_the_file_and_line(tmp_path):
    make_imagenet_kaggle(tmp_path)
    with open(tmp_path / "LOC_synset_mapping.txt", "a") as f:
        f.write("tench, Tinca tinca\n")  # the words without their wnid
    with pytest.raises(StudyError, match=r"LOC_synset_mapping.txt line 4: expected '<wnid> <words>', got "
                                         r"'tench, Tinca tinca'"):
        read_dataset("imagenet", tmp_path, "train")


@pytest.mark.parametrize("devkit", ["devkit/data", "devkit", "."])
def test_devkit_files_are_found_in_each_place_it_is_commonly_extracted(tmp_path, devkit):
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    make_imagenet_official(tmp_path, val_labels=truth)
    src = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    (tmp_path / devkit).mkdir(parents=True, exist_ok=True)
    for name in ("ILSVRC2012_validation_ground_truth.txt", "meta.mat"):
        (src / name).rename(tmp_path / devkit / name)
    shutil.rmtree(tmp_path / "ILSVRC2012_devkit_t12")
    index = read_dataset("imagenet", tmp_path, "val")
    assert [index.class_names[i] for i in index.labels] == truth


def test_a_val_solution_csv_without_its_header_is_refused_naming_line_1(tmp_path):
    """Without the header the first image's row would be taken for it, and that image reported unlabelled."""
    make_imagenet_kaggle(tmp_path)
    sol = tmp_path / "LOC_val_solution.csv"
    sol.write_text("".join(sol.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(StudyError, match=r"LOC_val_solution.csv line 1: expected the header "
                                         r"'ImageId,PredictionString'"):
        read_dataset("imagenet", tmp_path, "val")


def test_an_official_val_sorted_into_wnid_folders_is_checked_against_the_devkit_wnids(tmp_path):
    """torchvision's valprep.sh sorts val into <wnid>/ folders: one with a class folder missing (no image of it) read
    its labels by folder order, so every label after the gap named the train class before it."""
    truth = ["n01443537", "n01484850", "n01443537", "n01443537", "n01484850"]  # no val image of n01440764
    make_imagenet_official(tmp_path, val_labels=truth)
    for k, w in enumerate(truth, 1):
        (tmp_path / "val" / w).mkdir(exist_ok=True)
        name = f"ILSVRC2012_val_{k:08d}.JPEG"
        (tmp_path / "val" / name).rename(tmp_path / "val" / w / name)
    with pytest.raises(StudyError, match=r"class folders of .*val differ from the 3 wnids of .*/meta.mat: "
                                         r"wnids without a folder: 1 \(e.g. n01440764\)$"):
        read_dataset("imagenet", tmp_path, "val")
    write_image(tmp_path / "val" / "n01440764" / "ILSVRC2012_val_00000009.JPEG")
    val = read_dataset("imagenet", tmp_path, "val")
    assert val.class_names == read_dataset("imagenet", tmp_path, "train").class_names == WNIDS


def test_a_val_solution_wnid_not_in_the_synset_mapping_names_the_line(tmp_path):
    make_imagenet_kaggle(tmp_path)
    sol = tmp_path / "LOC_val_solution.csv"
    sol.write_text(sol.read_text().replace("n01443537 1 2", "n09999999 1 2"))
    with pytest.raises(StudyError, match=r"LOC_val_solution.csv line 4: image 'ILSVRC2012_val_00000003' has class "
                                         r"'n09999999', which LOC_synset_mapping.txt does not list"):
        read_dataset("imagenet", tmp_path, "val")


def test_without_a_wnid_list_a_class_folder_not_named_as_a_wnid_is_refused(tmp_path, capsys):
    """No devkit nor LOC_synset_mapping.txt: `lost+found` (a mount point's) would be class 0 and shift every label.
    Refused before the tree is indexed: no warning of its emptiness first, as though it would be read."""
    make_imagenet_official(tmp_path)
    shutil.rmtree(tmp_path / "ILSVRC2012_devkit_t12")
    assert read_dataset("imagenet", tmp_path, "train").class_names == WNIDS
    (tmp_path / "train" / "lost+found").mkdir()
    capsys.readouterr()
    with pytest.raises(StudyError, match=r"train holds 1 folder\(s\) not named as a wnid \(n \+ 8 digits\), e.g. "
                                         r"lost\+found: move them out"):
        read_dataset("imagenet", tmp_path, "train")
    assert "warning" not in capsys.readouterr().err
    (tmp_path / "train" / "lost+found").rmdir()
    (tmp_path / "train" / "n0144076").mkdir()  # n and 7 digits: no wnid either
    with pytest.raises(StudyError, match=r"train holds 1 folder\(s\) not named as a wnid .*e.g. n0144076: move"):
        read_dataset("imagenet", tmp_path, "train")


def test_kaggle_layout_is_recorded_with_its_label_files_as_sources(tmp_path):
    """A rebuild compares the sources' sha256: LOC_synset_mapping.txt sets every label number, so it is one of them."""
    make_imagenet_kaggle(tmp_path)
    train = read_dataset("imagenet", tmp_path, "train")
    assert train.info["layout"] == "kaggle" and [s["path"] for s in train.sources] == ["LOC_synset_mapping.txt"]
    val = read_dataset("imagenet", tmp_path, "val")
    assert [s["path"] for s in val.sources] == ["LOC_synset_mapping.txt", "LOC_val_solution.csv"]
    assert read_dataset("imagenet", make_imagenet_official(tmp_path / "o"), "train").info["layout"] == "official"


@pytest.mark.parametrize("name", ["n014407640", "x01440764", "001440764"])
def test_without_a_wnid_list_a_folder_of_nine_or_ten_characters_that_is_no_wnid_is_refused(tmp_path, name):
    make_imagenet_official(tmp_path)
    shutil.rmtree(tmp_path / "ILSVRC2012_devkit_t12")
    (tmp_path / "train" / name).mkdir()
    with pytest.raises(StudyError, match=rf"train holds 1 folder\(s\) not named as a wnid .*e.g. {name}: move"):
        read_dataset("imagenet", tmp_path, "train")


@pytest.mark.parametrize("row", ["ILSVRC2012_val_00000003,n01443537 1 2 3 4,extra", "ILSVRC2012_val_00000003, "])
def test_a_malformed_val_solution_row_names_the_line(tmp_path, row):
    """A third column or an empty PredictionString (no wnid to label the image) is refused, naming its line."""
    make_imagenet_kaggle(tmp_path)
    sol = tmp_path / "LOC_val_solution.csv"
    sol.write_text("\n".join(sol.read_text().splitlines()[:3] + [row]) + "\n")
    with pytest.raises(StudyError, match=r"LOC_val_solution.csv line 4: expected 'ImageId,<wnid> x y x y \.\.\.'"):
        read_dataset("imagenet", tmp_path, "val")


def test_several_blank_lines_between_ground_truth_labels_name_the_first(tmp_path):
    make_imagenet_official(tmp_path)
    gt = tmp_path / "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(lines[:2] + ["", ""] + lines[2:]) + "\n")
    with pytest.raises(StudyError, match=r"ground_truth.txt line 3: blank line between labels"):
        read_dataset("imagenet", tmp_path, "val")


def test_a_devkit_in_another_usual_place_still_labels_val_before_a_loc_val_solution_csv(tmp_path):
    truth = ["n01443537", "n01484850", "n01440764", "n01440764", "n01484850"]
    make_imagenet_official(tmp_path, val_labels=truth)
    (tmp_path / "ILSVRC2012_devkit_t12").rename(tmp_path / "devkit")
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words\n" for w in WNIDS))
    lines = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{k:08d},n01440764 1 2 3 4" for k in range(1, 6)]
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    index = read_dataset("imagenet", tmp_path, "val")
    assert [index.class_names[i] for i in index.labels] == truth


def test_the_outer_train_archive_left_in_train_is_named_as_such(tmp_path):
    """PyTorch's example extracts ILSVRC2012_img_train.tar inside train/: left there, it is no inner tar to extract
    into train/<wnid>/ (the advice for those), but the outer archive, to move out once its inner tars are extracted."""
    make_imagenet_official(tmp_path)
    (tmp_path / "train" / "ILSVRC2012_img_train.tar").write_bytes(b"x")
    with pytest.raises(StudyError, match=r"imagenet: ILSVRC2012_img_train.tar in .*train is no class's inner tar "
                                         r"\(<wnid>.tar\): the outer archive\? .*move it out of") as e:
        read_dataset("imagenet", tmp_path, "train")
    assert "inner tars not extracted" not in str(e.value)
    (tmp_path / "train" / "n01484850.tar").write_bytes(b"x")  # an inner tar too: that one first
    with pytest.raises(StudyError, match=r"inner tars not extracted: n01484850.tar in "):
        read_dataset("imagenet", tmp_path, "train")
