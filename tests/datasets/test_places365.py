import shutil

import pytest
from dataset_layouts import PLACES_CLASSES, make_places365, write_image

from study.datasets import read_dataset
from study.errors import StudyError


@pytest.mark.parametrize("image_dir", ["data_256", "data_256_standard", "data_large", "data_large_standard"])
def test_train_list_with_either_image_folder(tmp_path, image_dir):
    make_places365(tmp_path, image_dir=image_dir)
    index = read_dataset("places365", tmp_path, "train")
    assert index.class_names == PLACES_CLASSES  # the third level is kept: bus_station/indoor vs /outdoor
    got = dict(zip(index.paths.to_pylist(), index.labels.tolist()))
    assert got[f"{image_dir}/b/bus_station/outdoor/00000001.jpg"] == 2
    assert got[f"{image_dir}/a/airfield/00000002.jpg"] == 0
    assert all((tmp_path / p).is_file() for p in got)
    assert index.info["image_dir"] == image_dir


def test_val_flat_list(tmp_path):
    make_places365(tmp_path)
    index = read_dataset("places365", tmp_path, "val")
    assert index.paths.to_pylist()[0] == "val_256/Places365_val_00000001.jpg"
    assert index.labels.tolist() == [1, 2, 0, 1]


def test_lines_of_spaces_are_blank_lines(tmp_path):
    make_places365(tmp_path)
    lst = tmp_path / "places365_val.txt"
    lst.write_text(lst.read_text().replace("\n", "\n  \n", 1) + " \r\n")
    index = read_dataset("places365", tmp_path, "val")
    assert len(index) == 4 and index.labels.tolist() == [1, 2, 0, 1]


@pytest.mark.parametrize("line, message", [
    ("/a/airfield/x.jpg", "line 7: expected '<path> <label>'"),
    (" 0", "line 7: expected '<path> <label>', got ' 0'"),  # a label without its path
    ("/a/airfield/x.jpg zero", "line 7: label 'zero' is not an integer"),
    ("/a/airfield/x.jpg 1_0", "line 7: label '1_0' is not an integer"),  # int() would read 10
    ("/a/airfield/x.jpg +1", "line 7: label '\\+1' is not an integer"),
    ("/a/airfield/x.jpg \u0661", "line 7: label '\u0661' is not an integer"),  # an Arabic-Indic 1, int()'s 1
    ("/a/airfield/x.jpg 365", r"line 7: label 365 of '/a/airfield/x.jpg' is out of range 0..2"),
    ("/a/airfield/x.jpg 3", r"line 7: label 3 of '/a/airfield/x.jpg' is out of range 0..2"),  # one past the last
    ("/a/airfield/x.jpg -1", r"line 7: label -1 of '/a/airfield/x.jpg' is out of range 0..2"),
    ("/a/airfield/00000001.jpg 0", r"line 7: image '/a/airfield/00000001.jpg' is listed twice, first on line 6$"),
    ("a/airfield/00000001.jpg 1", r"line 7: image 'a/airfield/00000001.jpg' is listed twice, first on line 6 \(label 0 "
                                  r"there, 1 here\)$"),
])
def test_bad_list_lines(tmp_path, line, message):
    make_places365(tmp_path)
    lst = tmp_path / "places365_train_standard.txt"
    lst.write_text(lst.read_text() + line + "\n")
    with pytest.raises(StudyError, match=message):
        read_dataset("places365", tmp_path, "train")


def test_missing_image_folder_or_list(tmp_path):
    make_places365(tmp_path)
    (tmp_path / "data_256").rename(tmp_path / "elsewhere")
    with pytest.raises(StudyError, match="no image folder"):
        read_dataset("places365", tmp_path, "train")
    (tmp_path / "places365_val.txt").unlink()
    with pytest.raises(StudyError, match="places365_val.txt"):
        read_dataset("places365", tmp_path, "val")


@pytest.mark.parametrize("name, message", [
    ("categories_places365.txt", "lists no class"),  # not "label 1 ... out of range 0..-1"
    ("places365_val.txt", "lists no image"),  # not "no images found" without the file
])
def test_an_empty_list_or_categories_file_is_named(tmp_path, name, message):
    make_places365(tmp_path)
    (tmp_path / name).write_text("\n")
    with pytest.raises(StudyError, match=rf"{name}: {message} \(an empty file: extract it again\)"):
        read_dataset("places365", tmp_path, "val")


def test_category_index_out_of_line_order_names_the_line(tmp_path):
    make_places365(tmp_path)
    (tmp_path / "categories_places365.txt").write_text(
        "\n/a/airfield 0\n/b/bus_station/indoor 5\n/b/bus_station/outdoor 2\n")  # a blank line counts
    with pytest.raises(StudyError, match=r"categories_places365.txt line 3: class '/b/bus_station/indoor' has index "
                                         r"5, expected 1 \(class indices must be 0..2 in line order\)"):
        read_dataset("places365", tmp_path, "train")


@pytest.mark.parametrize("partial", [False, True])
def test_an_empty_or_partial_image_folder_does_not_hide_a_full_one(tmp_path, partial):
    """`data_256/` comes first, but it holds not every listed file: the full `data_large/` is the image folder."""
    make_places365(tmp_path, image_dir="data_large")
    (tmp_path / "data_256").mkdir()
    if partial:  # every class folder, but a listed file missing
        shutil.copytree(tmp_path / "data_large", tmp_path / "data_256", dirs_exist_ok=True)
        (tmp_path / "data_256" / "a" / "airfield" / "00000001.jpg").unlink()  # the list's last line
    index = read_dataset("places365", tmp_path, "train")
    assert index.info["image_dir"] == "data_large"
    assert all((tmp_path / p).is_file() for p in index.paths.to_pylist())


def test_listed_images_not_on_disk_are_refused_naming_the_first_missing(tmp_path):
    make_places365(tmp_path, image_dir="data_256")
    shutil.rmtree(tmp_path / "data_256" / "b" / "bus_station" / "indoor")
    (tmp_path / "data_large" / "a").mkdir(parents=True)
    with pytest.raises(StudyError, match=r"places365_train_standard.txt: the images it lists are not under .*: "
                                         r"data_256/b/bus_station/indoor/, data_large/a/airfield/ not found"):
        read_dataset("places365", tmp_path, "train")
    (tmp_path / "val_256" / "Places365_val_00000004.jpg").unlink()
    with pytest.raises(StudyError, match=r"places365_val.txt: .* val_256/Places365_val_00000004.jpg not found"):
        read_dataset("places365", tmp_path, "val")


def test_list_file_not_utf8_names_the_line(tmp_path):
    make_places365(tmp_path)
    lst = tmp_path / "places365_val.txt"
    lst.write_bytes(lst.read_bytes() + "caf\u00e9.jpg 1\n".encode("latin-1"))
    with pytest.raises(StudyError, match=r"places365_val.txt line 5: not UTF-8 text"):
        read_dataset("places365", tmp_path, "val")
    lst.write_bytes(b"\xef\xbb\xbf" + lst.read_bytes())  # a byte-order mark does not shift the line
    with pytest.raises(StudyError, match=r"places365_val.txt line 5: not UTF-8 text"):
        read_dataset("places365", tmp_path, "val")


def test_a_file_name_with_a_space_takes_the_label_after_its_last_space(tmp_path):
    make_places365(tmp_path)
    write_image(tmp_path / "data_256/a/airfield/with space.jpg", value=1, size=(16, 16))
    with (tmp_path / "places365_train_standard.txt").open("a") as f:
        f.write("/a/airfield/with space.jpg 0\n")
    index = read_dataset("places365", tmp_path, "train")
    assert dict(zip(index.paths.to_pylist(), index.labels.tolist()))["data_256/a/airfield/with space.jpg"] == 0


def test_val_images_in_val_large(tmp_path):
    """The high-resolution val images extract to `val_large/`."""
    make_places365(tmp_path)
    (tmp_path / "val_256").rename(tmp_path / "val_large")
    index = read_dataset("places365", tmp_path, "val")
    assert index.info["image_dir"] == "val_large"
    assert index.paths.to_pylist()[0] == "val_large/Places365_val_00000001.jpg"
    assert index.labels.tolist() == [1, 2, 0, 1]


def test_an_image_folder_lacking_the_first_listed_file_does_not_hide_a_full_one(tmp_path):
    """`data_256/` holds every class folder and the list's last file, but not its first: `data_large/` is read."""
    make_places365(tmp_path, image_dir="data_large")
    shutil.copytree(tmp_path / "data_large", tmp_path / "data_256")
    first = (tmp_path / "places365_train_standard.txt").read_text().splitlines()[0].rsplit(" ", 1)[0]
    (tmp_path / "data_256" / first.lstrip("/")).unlink()
    index = read_dataset("places365", tmp_path, "train")
    assert index.info["image_dir"] == "data_large"
    assert all((tmp_path / p).is_file() for p in index.paths.to_pylist())


def test_a_listed_image_missing_between_the_first_and_last_is_refused_naming_its_line(tmp_path):
    """Every listed file is looked for (one listing per folder), not the list's ends alone."""
    make_places365(tmp_path, image_dir="data_256")
    (tmp_path / "data_256/b/bus_station/indoor/00000002.jpg").unlink()  # line 3 of 6
    (tmp_path / "val_256/Places365_val_00000002.jpg").unlink()
    with pytest.raises(StudyError, match=r"places365_train_standard.txt: the images it lists are not under .*: "
                                         r"data_256/b/bus_station/indoor/00000002.jpg \(line 3\) not found"):
        read_dataset("places365", tmp_path, "train")
    with pytest.raises(StudyError, match=r"places365_val.txt: .* val_256/Places365_val_00000002.jpg \(line 2\) not"):
        read_dataset("places365", tmp_path, "val")
    (tmp_path / "data_256/a/airfield/00000002.jpg").unlink()  # line 5: the first absent file, and a count
    with pytest.raises(StudyError, match=r"data_256/b/bus_station/indoor/00000002.jpg \(line 3, 1 more after it\) not"):
        read_dataset("places365", tmp_path, "train")
    shutil.copytree(tmp_path / "data_256", tmp_path / "data_large")  # a full high-res copy is taken instead
    for name in ("b/bus_station/indoor/00000002.jpg", "a/airfield/00000002.jpg"):
        write_image(tmp_path / "data_large" / name, size=(16, 16))
    assert read_dataset("places365", tmp_path, "train").info["image_dir"] == "data_large"


def test_a_class_listed_twice_in_the_categories_file_names_both_lines(tmp_path):
    make_places365(tmp_path)
    (tmp_path / "categories_places365.txt").write_text("/a/airfield 0\n/b/bus_station/indoor 1\n/a/airfield 2\n")
    with pytest.raises(StudyError, match=r"categories_places365.txt line 3: class '/a/airfield' is listed twice, "
                                         r"first on line 1"):
        read_dataset("places365", tmp_path, "val")


def test_a_train_image_in_another_class_folder_than_its_label_names_the_line(tmp_path):
    """`/a/airfield/x.jpg 1`: the list and the categories file disagree (files of two releases, an edited list)."""
    make_places365(tmp_path)
    lst = tmp_path / "places365_train_standard.txt"
    lst.write_text(lst.read_text().replace("/a/airfield/00000002.jpg 0", "/a/airfield/00000002.jpg 1"))
    with pytest.raises(StudyError, match=r"line 5: image '/a/airfield/00000002.jpg' has label 1, class "
                                         r"'/b/bus_station/indoor' in categories_places365.txt, but lies in another"):
        read_dataset("places365", tmp_path, "train")


def test_spaces_after_the_label_are_ignored(tmp_path):
    make_places365(tmp_path)
    lst = tmp_path / "places365_val.txt"
    lst.write_text(lst.read_text().replace("\n", " \n"))
    assert read_dataset("places365", tmp_path, "val").labels.tolist() == [1, 2, 0, 1]


def test_val_images_in_both_val_256_and_val_large_are_read_from_val_256(tmp_path):
    """Both complete: the small images are read, as train's data_256 is preferred over data_large."""
    make_places365(tmp_path)
    shutil.copytree(tmp_path / "val_256", tmp_path / "val_large")
    assert read_dataset("places365", tmp_path, "val").info["image_dir"] == "val_256"


def test_an_image_missing_after_blank_lines_is_named_by_its_own_line(tmp_path):
    """Blank lines count: the line named is the file's own line, not its rank among the listed images."""
    make_places365(tmp_path)
    lst = tmp_path / "places365_val.txt"
    lst.write_text("\n\n" + lst.read_text())
    (tmp_path / "val_256/Places365_val_00000002.jpg").unlink()
    with pytest.raises(StudyError, match=r"places365_val.txt: .* val_256/Places365_val_00000002.jpg \(line 4\) not"):
        read_dataset("places365", tmp_path, "val")


def test_the_categories_file_and_the_list_are_the_sources(tmp_path):
    """A rebuild compares the sources' sha256: the categories file names every label, so it is one of them."""
    make_places365(tmp_path)
    for split, lst in (("train", "places365_train_standard.txt"), ("val", "places365_val.txt")):
        index = read_dataset("places365", tmp_path, split)
        assert [s["path"] for s in index.sources] == ["categories_places365.txt", lst]


def test_train_images_in_both_data_256_standard_and_data_256_are_read_from_data_256_standard(tmp_path):
    """Both complete: the first of IMAGE_DIRS is read, torchvision's name before the archive's."""
    make_places365(tmp_path)
    shutil.copytree(tmp_path / "data_256", tmp_path / "data_256_standard")
    assert read_dataset("places365", tmp_path, "train").info["image_dir"] == "data_256_standard"


def test_a_root_one_level_off_is_named_with_the_root_that_holds_the_files(tmp_path):
    """`--root data` for `data/places365/`, or `--root data/places365/val_256`: the message gives the folder to use;
    a root neither above nor below the files gets no guess."""
    root = tmp_path / "data" / "places365"
    make_places365(root)
    with pytest.raises(StudyError, match=rf"^places365 categories file not found: {tmp_path}/data/categories_places365"
                                         rf"\.txt \(found {root}/categories_places365\.txt: give --root {root}\)$"):
        read_dataset("places365", tmp_path / "data", "val")
    with pytest.raises(StudyError, match=rf"not found: {root}/val_256/categories_places365\.txt \(found "
                                         rf"{root}/categories_places365\.txt: give --root {root}\)$"):
        read_dataset("places365", root / "val_256", "val")
    with pytest.raises(StudyError, match=rf"^places365 categories file not found: {tmp_path}/categories_places365"
                                         r"\.txt$"):
        read_dataset("places365", tmp_path, "val")  # two levels above
    (root / "places365_train_standard.txt").rename(tmp_path / "data" / "places365_train_standard.txt")
    above = tmp_path / "data"
    with pytest.raises(StudyError, match=r"train list not found: .*/places365/places365_train_standard\.txt \(found "
                                         rf"{above}/places365_train_standard\.txt: give --root {above}\)$"):
        read_dataset("places365", root, "train")  # the file that is missing is looked for, not the first


def test_list_files_still_in_the_filelist_archive_are_named(tmp_path):
    """The four list files ship in `filelist_places365-standard.tar`: one not extracted names that archive."""
    root = make_places365(tmp_path / "places365")
    (root / "places365_val.txt").unlink()
    (root / "filelist_places365-standard.tar").write_bytes(b"x")
    with pytest.raises(StudyError, match=r"places365 val list not found: .*/places365_val\.txt \(found "
                                         r"filelist_places365-standard\.tar beside it, not extracted"):
        read_dataset("places365", root, "val")
    (root / "categories_places365.txt").unlink()
    with pytest.raises(StudyError, match=r"categories file not found: .* \(found filelist_places365-standard\.tar"):
        read_dataset("places365", root, "train")
