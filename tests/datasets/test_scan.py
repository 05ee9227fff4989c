import os
import re

import pytest
from dataset_layouts import make_imagefolder, write_image

from study.datasets import read_dataset
from study.errors import StudyError


def test_scan_threads_not_a_count_is_named_and_a_count_lists_the_same_index(tmp_path, monkeypatch):
    make_imagefolder(tmp_path / "train", {"a": 3, "b": 2, "c": 4})
    one = read_dataset("imagefolder", tmp_path, "train")
    for value in ("auto", "2.5", "0", ""):
        monkeypatch.setenv("STUDY_SCAN_THREADS", value)
        message = re.escape(f"STUDY_SCAN_THREADS={value!r}: expected a whole number of threads, 1 or more")
        with pytest.raises(StudyError, match=message):
            read_dataset("imagefolder", tmp_path, "train")
    monkeypatch.setenv("STUDY_SCAN_THREADS", "3")
    three = read_dataset("imagefolder", tmp_path, "train")
    assert three.paths.to_pylist() == one.paths.to_pylist() and three.labels.tolist() == one.labels.tolist()


def _tree(tmp_path):
    root = make_imagefolder(tmp_path / "tree", {"cat": 2, "dog": 1})
    return root, root / "cat" / "img000.png"


@pytest.mark.parametrize("threads", ["1", "3"])
def test_a_file_link_into_another_class_is_refused_naming_both_paths(tmp_path, monkeypatch, threads):
    monkeypatch.setenv("STUDY_SCAN_THREADS", threads)
    root, a = _tree(tmp_path)
    os.symlink("../cat/img000.png", root / "dog" / "link.png")
    with pytest.raises(StudyError, match=re.escape(f"{root}: cat/img000.png and dog/link.png are one file ({a}): an "
                                                   "image is listed once, under one class; remove the link")):
        read_dataset("imagefolder", root, "")


@pytest.mark.parametrize("link, target", [("dog/more", "../cat"), ("eel", "cat")])
def test_a_folder_link_to_another_class_is_refused(tmp_path, link, target):
    """Inside a class folder, or as a class folder of its own: cat's images would be listed under a second label."""
    root, a = _tree(tmp_path)
    os.symlink(target, root / link)
    with pytest.raises(StudyError, match=re.escape(f"cat/img000.png and {link}/img000.png are one file ({a})")):
        read_dataset("imagefolder", root, "")


@pytest.mark.parametrize("links, named", [({"dog/up": ".."}, "dog/up"), ({"dog/self": "."}, "dog/self"),
                                          ({"dog/a/b/up": "../.."}, "dog/a/b/up"),
                                          ({"cat/x": "../dog", "dog/y": "../cat"}, "cat/x/y/x")])
def test_a_folder_link_loop_is_refused_at_once(tmp_path, links, named):
    """A link back to a folder it lies in, or two links into each other's folders: named, not a 40-level path."""
    root, _ = _tree(tmp_path)
    (root / "dog" / "a" / "b").mkdir(parents=True)
    for link, target in links.items():
        os.symlink(target, root / link)
    with pytest.raises(StudyError, match=r"/(up|self|x|y): a link to /.*, a folder it lies in \(a loop of links\): "
                                         r"the listing would never end; remove the link$") as e:
        read_dataset("imagefolder", root, "")
    assert len(str(e.value)) < 300 and str(e.value).startswith(f"{root}/{named}: a link to ")


def test_a_tree_of_links_into_a_store_lists_as_the_files_themselves(tmp_path):
    """Every image a link into a store (as DVC or git-annex lay trees out), one class folder a link too: the same
    index as before the files moved into the store."""
    root = make_imagefolder(tmp_path / "tree", {"cat": 3, "dog": 2})
    before = read_dataset("imagefolder", root, "")
    store = tmp_path / "store"
    for i, f in enumerate(sorted(root.rglob("*.png"))):
        blob = store / str(i % 2) / f"blob{i}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        f.rename(blob)
        os.symlink(blob, f)
    (root / "dog").rename(store / "dog")
    os.symlink(store / "dog", root / "dog")
    after = read_dataset("imagefolder", root, "")
    assert after.paths.to_pylist() == before.paths.to_pylist() and after.labels.tolist() == before.labels.tolist()
    assert len(after) == 5 and all(os.path.islink(root / p) for p in after.paths.to_pylist())


def test_an_image_link_to_no_file_is_refused_naming_it_not_left_out(tmp_path):
    """A git-annex tree whose content was not fetched: its image links lead nowhere. Listed without them, the
    manifest would lose those images without a word."""
    root = make_imagefolder(tmp_path / "tree", {"cat": 3, "dog": 2})
    for name in ("img007.png", "img008.png"):
        os.symlink("../.git/annex/objects/absent", root / "cat" / name)
    with pytest.raises(StudyError, match=r"tree/cat/img007.png: a link to \.\./\.git/annex/objects/absent, which leads "
                                         r"to no file \(and 1 more in its folder\): fetch its content"):
        read_dataset("imagefolder", root, "")
    (root / "cat" / "img008.png").unlink()
    with pytest.raises(StudyError, match=r"tree/cat/img007.png: a link to \.\./\.git/annex/objects/absent, which leads "
                                         r"to no file: fetch its content"):  # one: no "(and 0 more"
        read_dataset("imagefolder", root, "")
    (root / "cat" / "img007.png").unlink()
    assert len(read_dataset("imagefolder", root, "")) == 5  # the tree without them lists as before


def _two_copies(tmp_path, cat_as: str, dog_as: str):
    """A 2 + 2 image tree whose first cat and first dog image are one file, an object outside the tree: each kept as
    a `symlink` to it or as a `hardlink` of it."""
    root = make_imagefolder(tmp_path / "tree", {"cat": 2, "dog": 2})
    cat_file, dog_file = sorted((root / "cat").glob("*.png"))[0], sorted((root / "dog").glob("*.png"))[0]
    blob = tmp_path / "store" / "one-object"
    blob.parent.mkdir()
    cat_file.rename(blob)
    dog_file.unlink()
    for path, how in ((cat_file, cat_as), (dog_file, dog_as)):
        (os.symlink if how == "symlink" else os.link)(blob, path)
    assert os.stat(cat_file).st_ino == os.stat(dog_file).st_ino
    return root, cat_file, dog_file


@pytest.mark.parametrize("cat_as, dog_as", [("symlink", "symlink"), ("hardlink", "hardlink"),
                                            ("symlink", "hardlink")])
def test_identical_images_kept_as_one_file_by_two_entries_list_as_two_images(tmp_path, cat_as, dog_as):
    """Byte-identical images are two images of the dataset (ImageNet has such duplicates), not one listed twice,
    however the tree keeps them as one file: two links to one object of a store (git-annex, DataLad), two hard links
    (a deduplicated copy: `hardlink`, `rdfind -makehardlinks`), or one of each (git-annex's locked and unlocked
    copies under annex.thin). A class folder linked to another, or a link to the hard link in the tree (its chain
    passes through it), still lists that image twice."""
    root, cat_file, dog_file = _two_copies(tmp_path, cat_as, dog_as)
    index = read_dataset("imagefolder", root, "")
    assert len(index) == 4 and index.labels.tolist() == [0, 0, 1, 1]
    os.symlink("dog", root / "emu")
    with pytest.raises(StudyError, match=re.escape(f"{root}: dog/{dog_file.name} and emu/{dog_file.name} are one "
                                                   "file")):
        read_dataset("imagefolder", root, "")
    (root / "emu").unlink()
    if dog_as == "hardlink":
        os.symlink(os.path.join("..", "dog", dog_file.name), root / "cat" / "again.png")
        with pytest.raises(StudyError, match=re.escape(f"{root}: cat/again.png and dog/{dog_file.name} are one "
                                                       "file")):
            read_dataset("imagefolder", root, "")


@pytest.mark.parametrize("how", ["class folder linked to another", "link to another class's link",
                                 "link to a later class's link"])
def test_an_image_of_a_store_listed_under_two_classes_is_refused(tmp_path, how):
    """In a tree of links into a store (git-annex, DataLad), a second class made of the first's links is still one
    image listed twice: only two link files of their own, each to the object, are two images."""
    root = make_imagefolder(tmp_path / "tree", {"cat": 2, "dog": 1})
    store = tmp_path / "store"
    store.mkdir()
    for f in sorted(root.rglob("*.png")):
        blob = store / f"{f.parent.name}-{f.name}"
        f.rename(blob)
        os.symlink(blob, f)
    if how == "class folder linked to another":
        os.symlink(root / "cat", root / "emu")
    elif how == "link to another class's link":
        first = sorted((root / "cat").glob("*.png"))[0]
        os.symlink(os.path.join("..", "cat", first.name), root / "dog" / "again.png")
    else:  # listed before the link it leads through: cat/ is walked before dog/
        os.symlink(os.path.join("..", "dog", "img000.png"), root / "cat" / "again.png")
    with pytest.raises(StudyError, match="are one file .*: an image is listed once, under one class"):
        read_dataset("imagefolder", root, "")


def test_a_sub_folder_named_like_an_image_is_listed_too(tmp_path):
    """Images lie anywhere under a class folder: also in a sub-folder whose name ends in an image extension (such a
    folder was taken for an image, neither listed nor walked)."""
    root = make_imagefolder(tmp_path / "tree", {"cat": 1, "dog": 1})
    write_image(root / "cat" / "album.jpg" / "b.png")
    write_image(root / "dog" / "scans.tif" / "c.png")
    index = read_dataset("imagefolder", root, "")
    assert index.paths.to_pylist() == ["cat/album.jpg/b.png", "cat/img000.png", "dog/img000.png",
                                       "dog/scans.tif/c.png"]
    assert index.labels.tolist() == [0, 0, 1, 1]
    write_image(root / "logo.png" / "d.png")  # a class folder named like an image is a class, not an image beside
    assert read_dataset("imagefolder", root, "").class_names == ["cat", "dog", "logo.png"]


def test_a_folder_link_to_a_folder_whose_path_begins_the_trees_is_no_loop(tmp_path):
    """A link from data/imgs-v2/ into data/imgs/: `data/imgs` is a prefix of the folder's path as a string, but not a
    folder it lies in (a loop needs a `/` after the link's target)."""
    root = make_imagefolder(tmp_path / "imgs-v2", {"cat": 1, "dog": 1})
    write_image(tmp_path / "imgs" / "x.png")
    os.symlink(tmp_path / "imgs", root / "cat" / "more")
    assert read_dataset("imagefolder", root, "").paths.to_pylist() == ["cat/img000.png", "cat/more/x.png",
                                                                      "dog/img000.png"]


def test_every_torchvision_image_extension_is_listed_whatever_its_case(tmp_path):
    """torchvision's IMG_EXTENSIONS, matched on the lower-case name (ImageNet's `.JPEG`); other files are not images.
    Names only: no file is opened."""
    extensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]
    images = [f"a{i}{ext.upper() if i % 2 else ext}" for i, ext in enumerate(extensions)]
    for name in images + ["notes.txt", "b.gif", "c.svg", "d.jpg.part"]:
        (tmp_path / "tree" / "cat" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / "cat" / name).write_bytes(b"")
    assert read_dataset("imagefolder", tmp_path / "tree", "").paths.to_pylist() == sorted(f"cat/{n}" for n in images)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_a_slow_listing_says_how_many_class_folders_it_has_listed(tmp_path, monkeypatch, capsys, threads):
    """A network filesystem can take minutes over ImageNet's 1000 folders: a line each LISTING_PROGRESS_S, none
    after the last folder; the index is the same."""
    import study.datasets.scan as scan
    monkeypatch.setenv("STUDY_SCAN_THREADS", threads)
    make_imagefolder(tmp_path / "train", {"a": 3, "b": 2, "c": 4})
    quiet = read_dataset("imagefolder", tmp_path, "train")
    assert "listed" not in capsys.readouterr().err
    monkeypatch.setattr(scan, "LISTING_PROGRESS_S", 0.0)
    said = read_dataset("imagefolder", tmp_path, "train")
    lines = [line for line in capsys.readouterr().err.splitlines() if "listed" in line]
    assert lines == [f"[manifest] listed 1/3 class folders of {tmp_path / 'train'} (3 images so far)",
                     f"[manifest] listed 2/3 class folders of {tmp_path / 'train'} (5 images so far)"]
    assert said.paths.to_pylist() == quiet.paths.to_pylist()


@pytest.mark.parametrize("links", [{"self.png": "self.png"}, {"x.png": "y.png", "y.png": "x.png"}])
def test_an_image_link_loop_is_named_as_a_loop_not_as_a_file_to_fetch(tmp_path, links):
    root, _ = _tree(tmp_path)
    for link, target in links.items():
        os.symlink(target, root / "dog" / link)
    with pytest.raises(StudyError, match=r"/dog/(self|x|y)\.png: a link to (self|x|y)\.png, which leads back through "
                                         r"itself \(a loop of links\) to no file") as e:
        read_dataset("imagefolder", root, "")
    assert "git annex" not in str(e.value)
