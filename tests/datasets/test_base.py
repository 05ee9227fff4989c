"""study.datasets.base: the checks every reader's index passes."""
import numpy as np
import pyarrow as pa
import pytest

from study.datasets.base import (Index, absent_files, apply_taxonomy, check_index, looks_channels_first, open_text,
                                 parent_folders)
from study.errors import StudyError


def test_a_label_equal_to_the_number_of_classes_is_out_of_range():
    index = Index(paths=pa.array(["x/a.png", "y/b.png"]), labels=np.array([0, 2]), class_names=["x", "y"])
    with pytest.raises(StudyError, match=r"toy: label 2 of 'y/b.png' is out of range 0..1"):
        check_index(index, "toy")
    index.labels = np.array([0, 1])
    check_index(index, "toy")


def test_a_negative_label_is_out_of_range():
    index = Index(paths=pa.array(["x/a.png", "y/b.png"]), labels=np.array([0, -1]), class_names=["x", "y"])
    with pytest.raises(StudyError, match=r"toy: label -1 of 'y/b.png' is out of range 0..1"):
        check_index(index, "toy")


def test_a_not_utf8_line_after_a_byte_order_mark_is_named_by_its_own_line(tmp_path):
    """The mark's 3 bytes are not counted twice: a bad byte opening line 2 is on line 2, not line 1."""
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbfa.jpg 1\n\xe9.jpg 2\n")
    with pytest.raises(StudyError, match=r"list.txt line 2: not UTF-8 text"):
        open_text(path)
    path.write_bytes(b"\xef\xbb\xbfa.jpg 1\n")
    assert open_text(path).read() == "a.jpg 1\n"


def test_taxonomy_rows_of_empty_cells_are_skipped_as_blank_lines(tmp_path):
    """Spreadsheets save trailing empty rows as `,`: not a class without levels."""
    index = Index(paths=pa.array(["a/1.png", "b/2.png"]), labels=np.array([0, 1]), class_names=["a", "b"])
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\ng1,a\n,\ng2,b\n , \n")
    apply_taxonomy(index, tax)
    assert index.columns["group"].to_pylist() == ["g1", "g2"] and index.levels == ["group", "class_name"]


@pytest.mark.parametrize("shape, first", [((16, 32, 32), True), ((5, 256, 256), True), ((17, 32, 32), False),
                                          ((256, 256, 5), False), ((16, 16, 16), False), ((32, 32), False)])
def test_looks_channels_first_up_to_16_channels(shape, first):
    assert looks_channels_first(shape) is first


@pytest.mark.parametrize("threads", ["1", "3"])
def test_absent_files_are_the_listed_paths_their_folders_do_not_hold(tmp_path, monkeypatch, threads):
    monkeypatch.setenv("STUDY_SCAN_THREADS", threads)
    for name in ("top.jpg", "a/1.jpg", "a/b/2.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    paths = pa.array(["a/1.jpg", "gone/3.jpg", "top.jpg", "a/b/2.jpg", "a/2.jpg", "none.jpg", "top.jpg/4.jpg"])
    assert absent_files(tmp_path, paths).tolist() == [1, 4, 5, 6]  # a file where a folder is named: absent too


def test_parent_folders_are_each_folder_once_sorted_the_root_not_one():
    assert parent_folders(["a/b/2.jpg", "top.jpg", "a/1.jpg", "a/b/3.jpg", "c/4.jpg"]) == ["a", "a/b", "c"]


def test_an_image_listed_twice_is_refused_naming_it():
    index = Index(paths=pa.array(["x/a.png", "y/b.png", "x/a.png"]), labels=np.array([0, 1, 1]),
                  class_names=["x", "y"])
    with pytest.raises(StudyError, match=r"^toy: image 'x/a.png' is listed twice$"):
        check_index(index, "toy")


def test_a_taxonomy_whose_finest_column_is_not_class_name_adds_that_column_of_class_names(tmp_path):
    """`genus,species`: the finest level is named `species` and holds each image's class name."""
    index = Index(paths=pa.array(["a/1.png", "b/2.png", "a/3.png"]), labels=np.array([0, 1, 0]), class_names=["a", "b"])
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("genus,species\ng1,a\ng2,b\n")
    apply_taxonomy(index, tax)
    assert index.levels == ["genus", "species"]
    assert index.columns["species"].to_pylist() == ["a", "b", "a"]
    assert index.columns["genus"].to_pylist() == ["g1", "g2", "g1"]


def test_a_taxonomy_header_naming_one_level_twice_is_refused(tmp_path):
    index = Index(paths=pa.array(["a/1.png"]), labels=np.array([0]), class_names=["a"])
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,group,class_name\ng,g,a\n")
    with pytest.raises(StudyError, match=r"taxonomy.csv line 1: the header must name two or more distinct levels"):
        apply_taxonomy(index, tax)


def test_a_root_that_is_not_there_is_named_with_the_closest_folder_beside_it_and_a_file_as_not_a_folder(tmp_path):
    from study.datasets.base import read_dataset

    (tmp_path / "data" / "bright").mkdir(parents=True)
    (tmp_path / "data" / "dark").mkdir()
    typo = tmp_path / "data" / "brigth"
    with pytest.raises(StudyError, match=rf"^dataset root not found: {typo} \(did you mean 'bright'\?\)$"):
        read_dataset("imagefolder", typo, "train")
    for root in (tmp_path / "data" / "zzz", tmp_path / "nowhere" / "x"):  # nothing alike; no parent
        with pytest.raises(StudyError, match=rf"^dataset root not found: {root}$"):
            read_dataset("imagefolder", root, "train")
    (tmp_path / "file").write_text("")
    with pytest.raises(StudyError, match=rf"^dataset root {tmp_path}/file is not a folder \(--root names"):
        read_dataset("imagefolder", tmp_path / "file", "train")


def _good_index(root, split, options):
    return Index(paths=pa.array(["a/1.png", "b/2.png"]), labels=np.array([0, 1]), class_names=["a", "b"])


@pytest.mark.parametrize("change, message", [
    (lambda index: (1, index), r"returned tuple, not a study\.datasets\.Index"),
    (lambda index: setattr(index, "labels", [0, 1]) or index, r"Index\.labels is list, not a 1-d integer numpy array"),
    (lambda index: setattr(index, "labels", np.array([0])) or index, r"Index has 2 paths but 1 labels"),
    (lambda index: setattr(index, "kind", "png") or index, r"Index\.kind 'png' is not one ImageReader decodes "
                                                          r"\(image, npy, idx\)"),
], ids=["tuple", "labels_list", "labels_short", "kind_png"])
def test_a_reader_returning_what_is_no_index_is_refused_naming_it_and_its_module(tmp_path, change, message):
    """A new reader's mistakes were tracebacks from the common checks (AttributeError, TypeError, AssertionError), or,
    for a kind ImageReader does not decode, a manifest frozen that every job then refused."""
    from study.datasets import DATASETS, read_dataset

    DATASETS.register("example_layout")(_good_index)
    try:
        assert len(read_dataset("example_layout", tmp_path, "train")) == 2
        DATASETS.unregister("example_layout")
        DATASETS.register("example_layout")(lambda root, split, options: change(_good_index(root, split, options)))
        with pytest.raises(StudyError, match=rf"^reader 'example_layout' \({__name__}\)(:)? " + message + "$"):
            read_dataset("example_layout", tmp_path, "train")
    finally:
        DATASETS.unregister("example_layout")
