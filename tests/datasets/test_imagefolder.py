import re
from pathlib import Path

import numpy as np
import pytest
from dataset_layouts import make_imagefolder, write_image

from study.datasets import read_dataset
from study.datasets.base import apply_taxonomy
from study.errors import StudyError


def test_classes_sorted_labels_and_relative_paths(tmp_path):
    make_imagefolder(tmp_path / "train", {"zebra": 2, "ant": 3, "Moth": 1})
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "ant" / ".hidden.png").write_bytes(b"")
    write_image(tmp_path / "train" / "zebra" / "deeper" / "x.JPEG")
    index = read_dataset("imagefolder", tmp_path, "train")
    assert index.class_names == ["Moth", "ant", "zebra"]  # sorted as torchvision (case-sensitive)
    paths = index.paths.to_pylist()
    assert paths[:2] == ["train/Moth/img000.png", "train/ant/img000.png"]
    assert "train/zebra/deeper/x.JPEG" in paths and not any("notes" in p or ".hidden" in p for p in paths)
    assert list(index.labels) == [0, 1, 1, 1, 2, 2, 2]
    assert index.kind == "image"


def test_the_folders_of_nas_boxes_archivers_and_file_systems_are_neither_classes_nor_images(tmp_path):
    """A tree copied off a Synology NAS holds `@eaDir/<image>/SYNOPHOTO_THUMB_M.jpg` beside each class's images (read
    as more images of that class) and a `#recycle` bin; a macOS zip a `__MACOSX` folder (read as one more class)."""
    make_imagefolder(tmp_path / "train", {"ant": 2, "bee": 1})
    for folder in ("ant/@eaDir/img000.png", "#recycle/ant", "__MACOSX/ant", "$RECYCLE.BIN"):
        write_image(tmp_path / "train" / folder / "SYNOPHOTO_THUMB_M.jpg")
    index = read_dataset("imagefolder", tmp_path, "train")
    assert index.class_names == ["ant", "bee"]
    assert index.paths.to_pylist() == ["train/ant/img000.png", "train/ant/img001.png", "train/bee/img000.png"]


def test_an_empty_class_folder_is_kept_and_named_in_a_warning(tmp_path, capsys):
    make_imagefolder(tmp_path / "train", {"cat": 2, "dog": 1})
    (tmp_path / "train" / "empty_class").mkdir()
    index = read_dataset("imagefolder", tmp_path, "train")
    assert index.class_names == ["cat", "dog", "empty_class"]  # labels stay aligned with a split that has it
    err = capsys.readouterr().err
    assert "1 class folder(s)" in err and "hold no image" in err and "empty_class" in err
    assert "an image is a file ending in .jpg .jpeg .png" in err and "remove a folder that is not a class" in err


def test_the_warning_on_empty_class_folders_names_the_first_ten(tmp_path, capsys):
    make_imagefolder(tmp_path / "train", {"cat": 1})
    for i in range(11):
        (tmp_path / "train" / f"e{i:02d}").mkdir()
    read_dataset("imagefolder", tmp_path, "train")
    names = ", ".join(f"e{i:02d}" for i in range(10))
    err = capsys.readouterr().err
    assert f"11 class folder(s) of {tmp_path / 'train'} hold no image and become classes without images: " \
        f"{names} ... (" in err
    (tmp_path / "train" / "e10").rmdir()
    read_dataset("imagefolder", tmp_path, "train")
    assert f"without images: {names} (an image" in capsys.readouterr().err


@pytest.mark.parametrize("images", [0, 2])
def test_a_root_without_class_folders_is_named(tmp_path, images):
    """A folder of images alone (no class folders), or an empty one: no class folders, not images "beside" them."""
    (tmp_path / "d").mkdir()
    for i in range(images):
        write_image(tmp_path / "d" / f"img{i}.png")
    with pytest.raises(StudyError, match=re.escape(f"no class folders in {tmp_path / 'd'}")):
        read_dataset("imagefolder", tmp_path / "d", "")


def test_files_that_are_not_images_by_their_name_are_counted_in_a_note(tmp_path, capsys):
    """A class of .heic photos would shrink without a word: the files left out are counted by extension (hidden
    files aside), in nested folders too; a tree of images only has nothing to say."""
    make_imagefolder(tmp_path / "train", {"cat": 2, "dog": 1})
    cat = tmp_path / "train" / "cat"
    for name in ("a.HEIC", "b.heic", "notes.txt", "README", ".DS_Store"):
        (cat / name).write_bytes(b"x")
    (cat / "more").mkdir()
    (cat / "more" / "c.heic").write_bytes(b"x")
    (cat / "more" / "d.png").write_bytes((cat / "img000.png").read_bytes())
    index = read_dataset("imagefolder", tmp_path, "train")
    assert index.keys.to_pylist() == ["cat/img000.png", "cat/img001.png", "cat/more/d.png", "dog/img000.png"]
    err = capsys.readouterr().err
    assert (f"[manifest] note: 5 file(s) in the class folders of {tmp_path / 'train'} are not listed, not images by "
            "their name (3 .heic, 1 (none), 1 .txt); an image is a file ending in .jpg") in err
    make_imagefolder(tmp_path / "clean" / "train", {"cat": 2})
    read_dataset("imagefolder", tmp_path / "clean", "train")
    assert "not listed" not in capsys.readouterr().err


def test_the_note_on_files_that_are_not_images_is_the_same_whatever_the_listing_order(tmp_path, capsys):
    """Kinds by count, ties by name (not by the order the class folders were walked); the five commonest, then
    `...`; a link to a folder is walked, a dangling link counts by its own name."""
    make_imagefolder(tmp_path / "train", {"a": 1, "b": 1, "c": 1})
    for cls, names in {"a": ("x.zip", "y.txt"), "b": ("x.psd", "y.gif"), "c": ("x.doc", "y.avi", "z.pdf")}.items():
        for name in names:
            (tmp_path / "train" / cls / name).write_bytes(b"x")
    (tmp_path / "train" / "c" / "gone.heic").symlink_to(tmp_path / "nowhere.heic")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.mov").write_bytes(b"x")
    (tmp_path / "train" / "a" / "linked").symlink_to(tmp_path / "elsewhere")
    read_dataset("imagefolder", tmp_path, "train")
    assert (f"note: 9 file(s) in the class folders of {tmp_path / 'train'} are not listed, not images by their name "
            "(1 .avi, 1 .doc, 1 .gif, 1 .heic, 1 .mov, ...); an image") in capsys.readouterr().err
    for cls, name in (("a", "y.txt"), ("b", "y.gif"), ("c", "z.pdf"), ("c", "gone.heic")):
        (tmp_path / "train" / cls / name).unlink()
    read_dataset("imagefolder", tmp_path, "train")  # five kinds: no `...`
    err = capsys.readouterr().err
    assert "are not listed, not images by their name (1 .avi, 1 .doc, 1 .mov, 1 .psd, 1 .zip); an image" in err, err


def test_without_split_folder_the_root_is_the_tree_and_a_note_says_so(tmp_path, capsys):
    """`--root <tree> --split train` indexes the tree; since `--split test` would give the same images, stderr says
    which split is the whole tree, unless the tree is the split's own folder (`--root data/train --split train`, the
    quickstart's)."""
    make_imagefolder(tmp_path, {"a": 1, "b": 1})
    index = read_dataset("imagefolder", tmp_path, "train")
    assert index.paths.to_pylist() == ["a/img000.png", "b/img000.png"]
    assert index.info["image_dir"] == "."
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"[manifest] note: split 'train' is the whole tree at {tmp_path} ")
    read_dataset("imagefolder", tmp_path, "")  # no split named: nothing to say
    make_imagefolder(tmp_path / "data" / "test", {"a": 1})
    assert read_dataset("imagefolder", tmp_path / "data", "test").info["image_dir"] == "test"
    assert capsys.readouterr().err == ""
    make_imagefolder(tmp_path / "other" / "train", {"a": 1})
    assert read_dataset("imagefolder", tmp_path / "other" / "train", "train").info["image_dir"] == "."
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("present, asked", [("train", "val"), ("validation", "val"), ("test", "train")])
def test_a_missing_split_folder_beside_other_splits_is_an_error(tmp_path, present, asked):
    make_imagefolder(tmp_path / present, {"cat": 1, "dog": 1})  # its classes would be [present]
    with pytest.raises(StudyError, match=rf"no '{asked}' folder \(it has split folders \['{present}'\]\)"):
        read_dataset("imagefolder", tmp_path, asked)


def test_a_root_one_level_above_the_split_folders_is_an_error(tmp_path):
    """`--root data` for data/shapes/{train,test}/<class>/ would make one class `shapes` of the train and test images
    together: refused, naming the root to give (or, for a tree of classes first, how to lay it out)."""
    make_imagefolder(tmp_path / "shapes" / "train", {"a": 1, "b": 1})
    make_imagefolder(tmp_path / "shapes" / "test", {"a": 1, "b": 1})
    (tmp_path / ".ipynb_checkpoints").mkdir()  # a hidden folder is no class: it does not hide the mistake
    with pytest.raises(StudyError, match=re.escape(f"its folder shapes holds split folders ['train', 'test'], not "
                                                   f"images of a class: give --root {tmp_path / 'shapes'}; a ")):
        read_dataset("imagefolder", tmp_path, "train")
    make_imagefolder(tmp_path / "dark" / "train", {"a": 1})
    with pytest.raises(StudyError, match=re.escape(f"--root {tmp_path / 'dark'} (each of its 2 folders a dataset); "
                                                   "a <class>/<split>/ tree is to be laid out as <split>/<class>/ "
                                                   "(move dark/train/* to train/dark/)")):
        read_dataset("imagefolder", tmp_path, "train")
    make_imagefolder(tmp_path, {"cats": 1})  # a class beside them: a tree of classes, one of which has sub-folders
    assert read_dataset("imagefolder", tmp_path, "train").class_names == ["cats", "dark", "shapes"]


def test_a_root_above_the_split_folders_beside_folders_without_images_is_an_error(tmp_path, capsys):
    """`--root data` for data/shapes/{train,test}/ beside data/notes/ (no image) or an empty data/manifests/: the
    same mistake (one class `shapes` of train and test images), refused; beside a class of images, a warning."""
    make_imagefolder(tmp_path / "shapes" / "train", {"a": 1, "b": 1})
    make_imagefolder(tmp_path / "shapes" / "test", {"a": 1, "b": 1})
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not an image")
    (tmp_path / "manifests").mkdir()
    with pytest.raises(StudyError, match=re.escape(f"its folder shapes holds split folders ['train', 'test'], not "
                                                   f"images of a class: give --root {tmp_path / 'shapes'}; a ")):
        read_dataset("imagefolder", tmp_path, "train")
    assert "split 'train' is the whole tree" not in capsys.readouterr().err  # refused: no note of what it would do
    make_imagefolder(tmp_path, {"cats": 1})
    assert read_dataset("imagefolder", tmp_path, "train").class_names == ["cats", "manifests", "notes", "shapes"]
    assert (f"[manifest] warning: class folder(s) shapes of {tmp_path} hold split folders (train, test): each becomes "
            "one class of all its images") in capsys.readouterr().err


@pytest.mark.parametrize("split, where", [("train", "train"), ("", ".")])
def test_images_beside_the_class_folders_are_refused(tmp_path, split, where):
    """In the split folder, or in a root that is the tree: no class would list them (torchvision drops them)."""
    make_imagefolder(tmp_path / where, {"cat": 1, "dog": 1})
    write_image(tmp_path / where / "stray.jpg")
    (tmp_path / where / "notes.txt").write_text("not an image")
    with pytest.raises(StudyError, match=re.escape(f"{tmp_path / where} holds 1 image file(s) beside its class "
                                                   "folders (e.g. stray.jpg), which no class lists: move each into its "
                                                   "class folder, or out of")):
        read_dataset("imagefolder", tmp_path, split)


@pytest.mark.parametrize("order_seed", [1, 2, 3])
def test_index_does_not_depend_on_creation_order(tmp_path, order_seed):
    ref = read_dataset("imagefolder", make_imagefolder(tmp_path / "ref", {"c": 4, "a": 5, "b": 3}), "x")
    other = read_dataset("imagefolder", make_imagefolder(tmp_path / "o", {"b": 3, "c": 4, "a": 5}, order_seed), "x")
    assert ref.paths.to_pylist() == other.paths.to_pylist()
    assert np.array_equal(ref.labels, other.labels)


def test_taxonomy_csv_adds_levels(tmp_path):
    make_imagefolder(tmp_path / "d", {"t-shirt_top": 1, "trouser": 1, "sandal": 1})
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\ntops,T-shirt/top\nbottoms,trouser\nfootwear,sandal\n")
    index = read_dataset("imagefolder", tmp_path / "d", "x")
    apply_taxonomy(index, tax)
    assert index.levels == ["group", "class_name"]
    groups = dict(zip(index.class_names, [None] * 3))
    for label, g in zip(index.labels, index.columns["group"].to_pylist()):
        groups[index.class_names[label]] = g
    assert groups == {"sandal": "footwear", "t-shirt_top": "tops", "trouser": "bottoms"}
    excel = tmp_path / "excel.csv"  # saved by Excel as "CSV UTF-8": a byte-order mark, CRLF lines
    excel.write_bytes(b"\xef\xbb\xbf" + tax.read_text().replace("\n", "\r\n").encode())
    index = read_dataset("imagefolder", tmp_path / "d", "x")
    apply_taxonomy(index, excel)
    assert index.levels == ["group", "class_name"]


@pytest.mark.parametrize("text, message", [
    ("group,class_name\ntops,sandal\n", "has no row"),
    ("group,class_name\ntops,sandal\ntops,trouser\nx,unknown\n", "not a class"),
    ("group,class_name\ntops,sandal,extra\n", "line 2"),
    ("class_name\nsandal\n", "two or more"),
    ("group,class_name\ntops,sandal\nbottoms,sandal\nx,trouser\n", "line 3: class 'sandal' is listed twice"),
    ("class_name,species\ntops,sandal\ntops,trouser\n", "line 1: level name 'class_name' is reserved .only the last"),
    ("group,class_name\ntops,sandal\n ,trouser\n", "line 3: no value for level 'group' of class 'trouser'"),
    ("group,class_name\ntops,sandal\nbottoms,trouser\ntops,\n", "line 4: no value for level 'class_name': give"),
])
def test_bad_taxonomy_is_a_clear_error(tmp_path, text, message):
    make_imagefolder(tmp_path / "d", {"trouser": 1, "sandal": 1})
    tax = tmp_path / "taxonomy.csv"
    tax.write_text(text)
    index = read_dataset("imagefolder", tmp_path / "d", "x")
    with pytest.raises(StudyError, match=message):
        apply_taxonomy(index, tax)


def test_missing_root_and_empty_tree(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        read_dataset("imagefolder", tmp_path / "nope", "train")
    (tmp_path / "train.tar").write_bytes(b"")  # the archive named instead of the folder it extracts to
    with pytest.raises(StudyError, match=r"dataset root .*train.tar is not a folder \(--root names"):
        read_dataset("imagefolder", tmp_path / "train.tar", "train")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(StudyError, match="no images"):
        read_dataset("imagefolder", tmp_path / "empty", "train")


def test_unknown_dataset_suggests_a_name(tmp_path):
    with pytest.raises(StudyError, match="did you mean 'imagenet'"):
        read_dataset("imagenett", Path(tmp_path), "train")


@pytest.mark.parametrize("where", ["file", "class folder"])
def test_a_name_that_is_not_utf8_is_named_not_a_traceback(tmp_path, where):
    """A latin-1 name on disk (os.scandir gives it surrogate-escaped) cannot be stored in the manifest's UTF-8 paths."""
    import os
    make_imagefolder(tmp_path / "d", {"ant": 1, "bee": 1})
    if where == "file":
        os.rename(tmp_path / "d" / "ant" / "img000.png", os.fsencode(tmp_path / "d" / "ant") + b"/caf\xe9.png")
        folder = tmp_path / "d" / "ant"
    else:
        os.rename(tmp_path / "d" / "bee", os.fsencode(tmp_path / "d") + b"/b\xe9e")
        folder = tmp_path / "d"
    with pytest.raises(StudyError) as e:
        read_dataset("imagefolder", tmp_path / "d", "x")
    shown = "'caf\\xe9.png'" if where == "file" else "'b\\xe9e'"
    assert str(e.value).startswith(f"{folder}: file name {shown} is not valid UTF-8")


def test_a_utf8_name_read_under_an_ascii_locale_says_so_not_rename_it(tmp_path):
    """Under a C locale with UTF-8 mode off (LC_ALL=C PYTHONUTF8=0) Python decodes file names as ASCII, so a UTF-8
    name arrives surrogate-escaped: the error names the locale, not `convmv -f latin1` (which would garble it)."""
    import os
    import subprocess
    import sys
    make_imagefolder(tmp_path / "d", {"ant": 1, "bee": 1})
    os.rename(tmp_path / "d" / "ant" / "img000.png", tmp_path / "d" / "ant" / "café.png")
    code = "import sys; from study.datasets import read_dataset; read_dataset('imagefolder', sys.argv[1], 'x')"
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], env=env, capture_output=True)
    err = proc.stderr.decode("ascii", "replace")
    assert proc.returncode == 1 and "StudyError" in err, err
    assert "file name 'caf\\xe9.png' is UTF-8, but this Python reads file names as ascii" in err, err
    assert "convmv" not in err
