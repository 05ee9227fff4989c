import json
import multiprocessing
import os
import re
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from manifest_trees import CLASSES, write_tree

from study.atomic import STALE_TEMPORARY_S
from study.datasets import DATASETS
from study.datasets.imagefolder import read_imagefolder
from study.errors import StudyError
from study.manifests import load_manifest, manifest_exists, store
from study import flock
from study.manifests.build import BuildConfig, build_manifest, check_same_reading, check_sizes
from study.manifests.sizes import parse_size, parse_sizes
from study.manifests.store import table_hash


def test_parse_sizes():
    assert parse_sizes("1M,50k,125k,1000,2.5k") == [1000, 2500, 50_000, 125_000, 1_000_000]
    assert parse_sizes(None) == []
    for bad in ("ten", "-5", "0", "1.2345k"):
        with pytest.raises(StudyError, match=rf"^size: not a size: expected a count[^']*, got {re.escape(repr(bad))}$"):
            parse_size(bad)  # the value named once


def test_parse_sizes_drops_repeats_and_empty_parts():
    """`--sizes 5k,5000,10k,`: a size written twice is one size (built once), a trailing comma adds none."""
    assert parse_sizes("5k,5000,10k,") == [5000, 10_000]
    assert parse_sizes(" , ") == []
    with pytest.raises(StudyError, match=r"^--labeled-sizes: not a size: .*, got 'ten'$"):  # the flag named
        parse_sizes("5k,ten", "--labeled-sizes")


def test_one_reading_is_one_whether_its_channels_are_a_tuple_or_a_list():
    """BuildConfig's --channels are a tuple, a manifest's metadata a list: the same channels, not a refusal; a
    manifest that predates a key (None) is not compared on it."""
    check_same_reading({"label_rule": "landcover_mode", "channels": (3, 1, 2)}, "tr",
                       {"label_rule": "landcover_mode", "channels": [3, 1, 2]}, "glc20 us_test")
    check_same_reading({"label_rule": "landcover_mode", "channels": (3, 1, 2)}, "tr", {}, "glc20 us_test")
    with pytest.raises(StudyError, match=r"^--classes-from tr: glc20 us_test is read with --channels 0,1,2 but tr "
                                         r"with --channels 3,1,2: build it with --channels 3,1,2$"):
        check_same_reading({"channels": (0, 1, 2)}, "tr", {"channels": [3, 1, 2]}, "glc20 us_test")


def test_table_hash_is_of_the_values_not_of_how_the_arrays_are_laid_out():
    """A slice of a table (its arrays keep an offset into the buffers) hashes as the same rows built afresh; the same
    characters split into other paths are other rows."""
    rows = pa.table({"path": ["a/1.png", "b/22.png", "c/333.png", "d/4.png"], "label": [0, 1, 2, 3]})
    part = rows.slice(1, 2)
    assert table_hash(part) == table_hash(pa.table({"path": ["b/22.png", "c/333.png"], "label": [1, 2]}))
    assert table_hash(pa.table({"path": ["ab", "c"], "label": [0, 0]})) != \
        table_hash(pa.table({"path": ["a", "bc"], "label": [0, 0]}))


def test_manifest_api(build, tree, manifests):
    build("toy", "--sizes", "5,10,20", "--labeled-sizes", "4,8")
    assert manifest_exists("toy") and not manifest_exists("other")
    m = load_manifest("toy")
    t = m.table
    assert list(t.columns[:5]) == ["path", "label", "class_name", "rank", "labeled_rank"]
    assert m.num_classes == 4 and m.class_names == ["cat", "dog", "eel", "fox"]
    assert m.sizes == [5, 10, 20] and m.labeled_sizes == [4, 8] and m.levels == [] and m.corruption is None
    assert m.meta["kind"] == "image" and m.meta["root"] == str(tree.resolve())
    assert t["label"].dtype == np.int64 and t["rank"].dtype == np.int64
    assert sorted(t["rank"]) == list(range(24)) and sorted(t["labeled_rank"]) == list(range(24))
    assert (t["class_name"] == [m.class_names[i] for i in t["label"]]).all()
    assert m.subset(5)["rank"].tolist() == [0, 1, 2, 3, 4]
    assert len(m.all()) == 24
    row = m.subset(1).iloc[0]
    assert m.abs_path(row) == tree.resolve() / row["path"] and m.abs_path(row).is_file()
    assert all(p.is_file() for p in m.abs_paths(m.all()))
    with pytest.raises(StudyError, match=r"^manifest toy: subset of 25 images asked, it has 24$"):
        m.subset(25)
    assert len(m.subset(24)) == 24 and m.subset(0).empty  # the bounds themselves are subsets


def test_the_ranking_line_counts_the_classes_with_no_image(cli, tree):
    """A class with no image in the split (a partial list file, an empty class folder) keeps its label and a probe
    output: the ranking line says how many there are, and nothing when every class has images."""
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "full")
    assert code == 0 and "[manifest] ranking 24 images in 4 classes\n" in err
    (tree / "train" / "gnu").mkdir()
    (tree / "train" / "owl").mkdir()
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "gaps")
    assert code == 0 and "[manifest] ranking 24 images in 6 classes (2 of them with no image here)\n" in err


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_subsets_are_nested_for_every_seed(build, seed):
    build(f"s{seed}", "--seed", str(seed), "--sizes", "3,7,15,24", "--labeled-sizes", "4,8,12")
    m = load_manifest(f"s{seed}")
    for small, big in ((3, 7), (7, 15), (15, 24)):
        assert set(m.subset(small)["path"]) < set(m.subset(big)["path"])
    for small, big in ((4, 8), (8, 12)):
        assert set(m.labeled(small)["path"]) < set(m.labeled(big)["path"])


def test_labeled_subsets_are_class_balanced(build):
    build("toy", "--labeled-sizes", "4,8,16")
    m = load_manifest("toy")
    assert m.labeled(4)["label"].value_counts().tolist() == [1, 1, 1, 1]
    assert m.labeled(8)["label"].value_counts().tolist() == [2, 2, 2, 2]
    counts = m.labeled(16)["label"].value_counts()
    assert counts.tolist() == [4, 4, 4, 4]


def test_subsets_come_in_the_order_of_their_own_ranks(build):
    """`subset(n)` in rank order, `labeled(n)` in labeled-rank order (the two rankings are independent)."""
    build("toy", "--sizes", "10", "--labeled-sizes", "8")
    m = load_manifest("toy")
    assert m.subset(10)["rank"].tolist() == list(range(10))
    assert m.labeled(8)["labeled_rank"].tolist() == list(range(8))


def test_balanced_pretraining_subsets(build):
    build("bal", "--balanced", "--sizes", "8")
    m = load_manifest("bal")
    assert sorted(m.subset(8)["label"].value_counts().tolist()) == [2, 2, 2, 2]


def test_seeds_give_different_subsets(build):
    build("a", "--seed", "0")
    build("b", "--seed", "1")
    assert load_manifest("a").subset(6)["path"].tolist() != load_manifest("b").subset(6)["path"].tolist()


@pytest.mark.parametrize("order_seed", [11, 12, 13])
def test_byte_identical_whatever_the_creation_order(tmp_path, manifests, monkeypatch, order_seed):
    metas = []
    for k, seed in enumerate((None, order_seed)):
        root = write_tree(tmp_path / f"d{k}", CLASSES, order_seed=seed)
        folder = tmp_path / f"m{k}"
        monkeypatch.setenv("STUDY_MANIFESTS", str(folder))
        meta, _ = build_manifest(BuildConfig("imagefolder", root, "train", "x", sizes=[5, 10], labeled_sizes=[4]))
        metas.append((meta, (folder / "x.parquet").read_bytes()))
    (m0, b0), (m1, b1) = metas
    assert m0["content_hash"] == m1["content_hash"] and b0 == b1


def test_golden_export_pins_the_ranking(build, cli):
    """Ranks are a keyed blake2b of (seed, key): the same on every machine and every version."""
    build("toy", "--sizes", "6", "--labeled-sizes", "4")
    code, out, _ = cli("manifest", "export", "toy", "--subset", "6")
    from pathlib import Path

    golden = Path(__file__).parent / "golden" / "toy_seed0_subset6.csv"
    assert code == 0 and out == golden.read_text()


def test_no_sizes_still_ranks_every_row(build):
    build("plain")
    m = load_manifest("plain")
    assert m.sizes == [] and sorted(m.table["rank"]) == list(range(24))


def test_size_up_to_the_dataset_size_is_allowed(build, cli, manifests):
    build("full", "--sizes", "24", "--labeled-sizes", "24")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", manifests.parent / "data",
                       "--split", "train", "--name", "big", "--sizes", "10,25")
    assert code == 2 and "larger than the dataset" in err and "24" in err
    assert not any(p.name.startswith("big") for p in manifests.iterdir())


def test_a_size_too_large_is_named_once_or_with_its_digits():
    """`--sizes 25`, not `25 (25)`; a size with a short form also gives its digits."""
    with pytest.raises(StudyError, match=r"^x: --sizes 25 is larger than the dataset \(24 images\)"):
        check_sizes([10, 25], 24, "--sizes", "x")
    with pytest.raises(StudyError, match=r"^x: --labeled-sizes 1k \(1000\) is larger than the dataset"):
        check_sizes([1000], 24, "--labeled-sizes", "x")


def test_identical_rebuild_is_a_noop_and_different_one_refused(build, cli, tree, manifests):
    build("toy", "--sizes", "5")
    parquet, meta = manifests / "toy.parquet", manifests / "toy.json"
    before = (parquet.read_bytes(), meta.read_bytes(), parquet.stat().st_mtime_ns)
    out = build("toy", "--sizes", "5")
    assert "unchanged" in out
    assert (parquet.read_bytes(), meta.read_bytes(), parquet.stat().st_mtime_ns) == before

    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "toy", "--sizes", "5", "--seed", "3")
    assert code == 2 and "already exists with different content" in err and "seed: 0 -> 3" in err
    assert "rows: 0 added, 0 removed (labels or ranks changed)" in err
    assert f"or delete {parquet} and {meta} first" in err  # the files themselves, wherever STUDY_MANIFESTS points
    moved = shutil.copytree(tree, tree.parent / "moved")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", moved, "--split", "train",
                       "--name", "toy", "--sizes", "5")
    assert code == 2 and "already exists with the same content under another root" in err and "root:" in err
    (tree / "train" / "cat" / "000.png").unlink()
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "toy", "--sizes", "5")
    assert code == 2 and "1 removed" in err and "train/cat/000.png" in err
    assert "labels or ranks changed" not in err  # said only where no row was added or removed
    assert (parquet.read_bytes(), meta.read_bytes()) == before[:2]


def test_a_rebuild_with_other_sizes_only_says_that_its_rows_are_the_same(build, cli, tree, manifests):
    """Sizes are a record (a grid takes any size): a rebuild that differs in them only is refused, saying that the
    rows are the same and that the first build's sizes keep the manifest, not only to delete it."""
    build("toy", "--sizes", "5", "--labeled-sizes", "4")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "toy", "--sizes", "5,10")
    assert code == 2 and "sizes: [5] -> [5, 10]" in err and "labeled_sizes: [4] -> []" in err, err
    assert ("(the rows and subsets are the same: sizes are only recorded, a grid takes any size up to 24; rebuild "
            "with --sizes 5 --labeled-sizes 4 to keep it)") in err, err
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "toy", "--sizes", "5,10", "--seed", "1")
    assert code == 2 and "sizes are only recorded" not in err, err


def test_a_rebuild_of_as_many_images_under_other_names_is_other_content(build, cli, tree, manifests):
    """The content hash covers the rows, not only the counts and settings: one image renamed (same number of images
    and classes) is another manifest, refused under the old name (a hash of the metadata alone took it for the same
    one, and cached features and results of the old rows would have served the new)."""
    from study.manifests import load_manifest

    build("toy", "--sizes", "5")
    before = load_manifest("toy").content_hash
    (tree / "train" / "cat" / "000.png").rename(tree / "train" / "cat" / "000-renamed.png")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "toy", "--sizes", "5")
    assert code == 2 and "already exists with different content" in err, err
    build("toy2", "--sizes", "5")
    assert load_manifest("toy2").num_images == load_manifest("toy").num_images
    assert load_manifest("toy2").content_hash != before


def test_taxonomy_option_for_imagefolder(build, tmp_path):
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\n")
    build("tax", "--taxonomy", tax)
    m = load_manifest("tax")
    assert m.levels == ["group", "class_name"]
    t = m.table
    assert set(t.loc[t["class_name"] == "fox", "group"]) == {"canid"}
    assert m.meta["sources"][0]["path"] == "taxonomy.csv"


def test_a_taxonomy_row_matches_a_class_folder_named_in_another_unicode_form(build, tmp_path):
    """A class folder `café` decomposed (NFD: unpacked from a macOS archive) and its taxonomy row composed (NFC, as
    an editor writes it): one class; it read "class 'café' of the dataset has no row", two names that print alike."""
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\ndrink,caf\u00e9\ndrink,tea\n", encoding="utf-8")
    build("uni", "--taxonomy", tax, root=write_tree(tmp_path / "mac", {"cafe\u0301": 2, "tea": 2}))
    t = load_manifest("uni").table
    assert set(t["group"]) == {"drink"} and len(t) == 4


@pytest.fixture
def bands_reader():
    """Reader `example_bands` (an image folder that records the channels it was given), registered as its one new
    file would register it, declaring the option it reads; unregistered after."""
    def read(root, split, options):
        index = read_imagefolder(root, split, options)
        index.info["channels"] = list(options.channels or (0, 1, 2))
        return index

    read.options = ("channels",)
    DATASETS.register("example_bands")(read)
    yield read
    DATASETS.unregister("example_bands")


def test_a_reader_takes_the_build_flags_it_declares_and_no_other(bands_reader, cli, tree, manifests):
    """`--channels` and `--label-rule` went to GLC20 alone, by name: a new reader that reads one needed an edit of
    study.manifests.build. A reader declares them (`options`); the others' flags are refused, naming who takes them."""
    code, _, err = cli("manifest", "build", "--dataset", "example_bands", "--root", tree, "--split", "train",
                       "--name", "bands", "--channels", "2,1,0")
    assert code == 0, err
    assert load_manifest("bands").meta["channels"] == [2, 1, 0]
    code, _, err = cli("manifest", "build", "--dataset", "example_bands", "--root", tree, "--split", "train",
                       "--name", "rule", "--label-rule", "species")
    assert code == 2 and "--label-rule applies to glc20 only, not example_bands" in err
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "plain", "--channels", "2,1,0")
    assert code == 2 and "--channels applies to example_bands, glc20 only, not imagefolder" in err


def test_meta_records_what_it_was_built_from(build, manifests):
    build("toy", "--sizes", "5", "--seed", "2")
    meta = json.loads((manifests / "toy.json").read_text())
    for key in ("dataset", "root", "split", "seed", "sizes", "label_rule", "sources", "schema_version",
                "content_hash", "table_hash"):
        assert key in meta
    assert meta["seed"] == 2 and meta["dataset"] == "imagefolder"
    assert isinstance(pd.read_parquet(manifests / "toy.parquet"), pd.DataFrame)


def test_taxonomy_of_a_train_split_applies_to_its_test_split_built_with_its_classes(build, cli, tree, tmp_path):
    """--classes-from adds the train split's classes the test split has no image of: the taxonomy is checked against
    that class list, so the train split's file serves, and a file lacking one of those classes is refused."""
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\n")
    build("tr", "--taxonomy", tax)
    for c in ("cat", "dog"):  # a val split without eel and fox images
        (tree / "val" / c).mkdir(parents=True)
        shutil.copy(tree / "train" / c / "000.png", tree / "val" / c / "000.png")
    val = ["manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "val", "--classes-from", "tr"]
    code, _, err = cli(*val, "--name", "va", "--taxonomy", tax)
    assert code == 0, err
    m = load_manifest("va")
    assert m.class_names == ["cat", "dog", "eel", "fox"] and m.levels == ["group", "class_name"]
    assert sorted(zip(m.table["class_name"], m.table["group"])) == [("cat", "felid"), ("dog", "canid")]
    assert m.meta["sources"] == [s for s in load_manifest("tr").meta["sources"] if s.get("role") == "taxonomy"]
    short = tmp_path / "short.csv"
    short.write_text("group,class_name\nfelid,cat\ncanid,dog\ncanid,fox\n")
    code, _, err = cli(*val, "--name", "va2", "--taxonomy", short)
    assert code == 2 and f"{short}: class 'eel' of the dataset has no row" in err and not manifest_exists("va2")
    other = tmp_path / "other.csv"  # dog moved to another group: a classifier's predictions would map up otherwise
    other.write_text("group,class_name\nfelid,cat\nfelid,dog\nfish,eel\ncanid,fox\n")
    code, _, err = cli(*val, "--name", "va3", "--taxonomy", other)
    assert code == 2 and not manifest_exists("va3"), err
    assert ("--classes-from tr: class 'dog' has group 'felid' in imagefolder val but 'canid' in tr: granularity" in
            err), err
    build("flat")  # a train split without a taxonomy: a level only the test split has is compared with nothing
    code, _, err = cli(*val[:-1], "flat", "--name", "va4", "--taxonomy", tax)
    assert code == 0 and load_manifest("va4").levels == ["group", "class_name"], err


def test_drop_other_classes_leaves_out_the_images_of_classes_the_train_manifest_lacks(build, cli, tree, tmp_path):
    """A test split with a class its train split has no image of (GLC20: a land-cover code found in one split only)
    is refused with --classes-from alone; --drop-other-classes leaves that class's images out and records them."""
    build("tr", root=write_tree(tmp_path / "few", {"cat": 3, "eel": 2}))
    for c, n in (("cat", 2), ("dog", 3), ("eel", 1)):  # dog: not a class of tr
        (tree / "val" / c).mkdir(parents=True)
        for k in range(n):
            shutil.copy(tree / "train" / c / f"{k:03d}.png", tree / "val" / c / f"{k:03d}.png")
    val = ["manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "val", "--classes-from", "tr"]
    code, _, err = cli(*val, "--name", "va")
    assert code == 2 and "has class(es) dog that it does not list (2 classes); --drop-other-classes" in err
    assert not manifest_exists("va")
    code, _, err = cli(*val, "--name", "va", "--drop-other-classes")
    assert code == 0, err
    m = load_manifest("va")
    assert m.class_names == ["cat", "eel"] and m.num_images == 3
    assert sorted(zip(m.table["class_name"], m.table["label"])) == [("cat", 0), ("cat", 0), ("eel", 1)]
    assert m.meta["info"]["dropped_classes"] == {"dog": 3} and m.meta["classes_from"] == "tr"
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "val",
                       "--name", "vb", "--drop-other-classes")
    assert code == 2 and "--drop-other-classes needs --classes-from" in err


def test_a_test_split_whose_class_folder_is_named_in_another_unicode_form_is_told_so(build, cli, tmp_path):
    """A train tree unpacked from a macOS archive names `café` decomposed (NFD), a test tree made elsewhere composed
    (NFC): the two print alike, so the refusal says which form each is and how to rename them."""
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    build("tr", root=write_tree(tmp_path / "mac", {nfd: 2, "tea": 2}))
    test = write_tree(tmp_path / "linux", {nfc: 2, "tea": 2}) / "train"  # a held-out tree of class folders
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", test, "--split", "test",
                       "--classes-from", "tr", "--name", "te")
    assert code == 2 and not manifest_exists("te")
    assert (f"has class(es) {nfc} that it does not list (2 classes); --drop-other-classes leaves their images out. "
            f"{nfc} is listed as 'cafe\\u0301' (NFD) and named here 'caf\\xe9' (NFC): one name in two Unicode forms"
            ) in err, err
    assert "`convmv -r -f utf8 -t utf8 --nfc --notest DIR`" in err
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", test, "--split", "test",
                       "--classes-from", "tr", "--name", "te", "--drop-other-classes")  # café's images: not dropped
    assert code == 2 and not manifest_exists("te")
    assert (f"has class(es) {nfc} that it does not list (2 classes); --drop-other-classes would leave out the "
            f"images of a class it lists. {nfc} is listed as 'cafe\\u0301' (NFD)") in err, err


def test_drop_classes_leaves_out_the_named_classes_and_warns_of_a_name_the_split_lacks(build, cli, tree, tmp_path):
    """--drop-classes leaves the images of the named classes out (labels renumbered over the rest, counts recorded
    beside --drop-other-classes' own); a name that is no class of the split drops nothing and is said on stderr."""
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "kept", "--drop-classes", "cat, nope,cat", "--drop-classes", "gnu,nope")
    assert code == 0, err
    m = load_manifest("kept")
    assert m.class_names == sorted(set(CLASSES) - {"cat"}) and m.num_images == sum(CLASSES.values()) - CLASSES["cat"]
    assert sorted(set(m.table["label"])) == list(range(len(m.class_names)))
    assert all(m.class_names[label] == name for label, name in zip(m.table["label"], m.table["class_name"]))
    assert m.meta["info"]["dropped_classes"] == {"cat": CLASSES["cat"]}
    assert f"\ndropped classes: cat ({CLASSES['cat']} images)\n" in cli("manifest", "show", "kept")[1]
    assert "warning: --drop-classes: nope, gnu are no class of imagefolder train (its classes: " in err
    assert "cat is no class" not in err
    build("tr", root=write_tree(tmp_path / "few", {"dog": 3, "eel": 2}))
    for c in ("dog", "eel", "fox"):  # a test split with a class tr lacks (fox), and one named to be dropped (eel)
        (tree / "val" / c).mkdir(parents=True)
        shutil.copy(tree / "train" / "cat" / "000.png", tree / "val" / c / "000.png")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "val", "--name",
                       "va", "--classes-from", "tr", "--drop-other-classes", "--drop-classes", "eel", "--drop-classes",
                       "gnu")
    assert code == 0, err
    va = load_manifest("va")
    assert va.class_names == ["dog", "eel"] and va.table["class_name"].tolist() == ["dog"]
    assert va.meta["info"]["dropped_classes"] == {"eel": 1, "fox": 1}
    assert "warning: --drop-classes: gnu is no class of imagefolder val" in err
    code, out, err = cli("manifest", "show", "va")
    assert code == 0 and "classes from: tr\ndropped classes: eel (1 image), fox (1 image)\n" in out, err
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "val", "--name",
                       "va2", "--classes-from", "tr", "--drop-other-classes", "--drop-classes", "dog,eel")
    assert code == 2 and not manifest_exists("va2")  # tr lists dog and eel, but --drop-classes left out both
    assert ("--classes-from tr: imagefolder val: none of its classes that --drop-classes kept is listed, so "
            "--drop-other-classes would leave no image") in err, err


def test_drop_classes_keeps_the_taxonomy_of_the_whole_dataset_usable(build, cli, tree, tmp_path):
    """--drop-classes leaves a class out of the list that --taxonomy's file is checked against: the file of the whole
    dataset (a row for the dropped class) still serves, as it does for --drop-other-classes' classes; a row for a
    class that is neither the split's nor dropped is still refused."""
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\n")
    build("tax", "--taxonomy", tax, "--drop-classes", "eel")
    m = load_manifest("tax")
    assert m.class_names == ["cat", "dog", "fox"] and m.levels == ["group", "class_name"]
    assert "eel" not in set(m.table["class_name"]) and set(m.table["group"]) == {"felid", "canid"}
    two = tmp_path / "two.csv"
    two.write_text("group,class_name\nfelid,cat\ncanid,dog\n")
    build("tr", "--taxonomy", two, root=write_tree(tmp_path / "few", {"cat": 3, "dog": 2}))
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train", "--name",
                       "va", "--classes-from", "tr", "--drop-other-classes", "--taxonomy", tax)
    assert code == 0, err
    assert load_manifest("va").meta["info"]["dropped_classes"] == {"eel": CLASSES["eel"], "fox": CLASSES["fox"]}
    extra = tmp_path / "extra.csv"
    extra.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\nfelid,lynx\n")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train", "--name",
                       "tax2", "--taxonomy", extra, "--drop-classes", "eel")
    assert code == 2 and f"{extra}: class 'lynx' is not a class of the dataset" in err and not manifest_exists("tax2")


@pytest.mark.parametrize("value, message", [
    (",", "--drop-classes: expected class names such as landcover_0, got ','"),
    ("cat,dog,eel,fox", "imagefolder train: these are all its classes, so --drop-classes would leave no image"),
])
def test_drop_classes_that_names_nothing_or_every_class_is_refused(cli, tree, capsys, value, message):
    assert set(CLASSES) == {"cat", "dog", "eel", "fox"}  # the value above names every class of the tree
    try:
        code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                           "--name", "none", "--drop-classes", value)
    except SystemExit as e:  # argparse's refusal of the flag's value
        code, err = e.code, capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not manifest_exists("none")


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "imagefoldr"], "--dataset: unknown dataset 'imagefoldr'"),
    (["--dataset", "imagefolder", "--drop-other-classes"], "--drop-other-classes needs --classes-from"),
])
def test_a_flag_error_is_refused_before_the_dataset_is_indexed(cli, tree, monkeypatch, flags, message):
    """A wrong flag is said at once, not after `[manifest] indexing ...` and a scan of a million files."""
    import study.manifests.build as build_module

    monkeypatch.setattr(build_module, "read_dataset", lambda *a, **k: pytest.fail("indexed before the flags' check"))
    code, _, err = cli("manifest", "build", *flags, "--root", tree, "--split", "val", "--name", "vb")
    assert code == 2 and message in err and "indexing" not in err, err


def test_classes_from_a_manifest_of_the_same_class_list_changes_nothing(build, manifests):
    """--classes-from naming a manifest of the very class list the split has: the manifest built without the flag,
    byte for byte (no `classes_from` recorded), so the two names share one content hash."""
    build("tr")
    build("same", "--classes-from", "tr")
    assert "classes_from" not in load_manifest("same").meta
    assert load_manifest("same").content_hash == load_manifest("tr").content_hash
    assert (manifests / "same.parquet").read_bytes() == (manifests / "tr.parquet").read_bytes()


def test_classes_from_a_manifest_whose_json_was_changed_is_refused(build, cli, tree, manifests):
    """--classes-from reads the class list of the train manifest's JSON file: edited since its build (two classes
    swapped: every label of the new manifest would be wrong), it is refused, naming the file, and nothing is
    written."""
    build("tr")
    path = manifests / "tr.json"
    meta = json.loads(path.read_text())
    meta["class_names"] = meta["class_names"][::-1]
    path.write_text(json.dumps(meta))
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--classes-from", "tr", "--name", "te")
    assert code == 2 and f"--classes-from manifest 'tr' is damaged: {path} no longer matches its recorded content " \
        "hash" in err
    assert not manifest_exists("te")


def test_drop_other_classes_that_would_leave_no_image_is_refused(build, cli, tree, tmp_path):
    build("tr", root=write_tree(tmp_path / "few", {"cat": 3}))
    (tree / "val" / "dog").mkdir(parents=True)
    shutil.copy(tree / "train" / "dog" / "000.png", tree / "val" / "dog" / "000.png")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "val",
                       "--classes-from", "tr", "--drop-other-classes", "--name", "va")
    assert code == 2 and "imagefolder val: none of its classes is listed, so --drop-other-classes would leave " \
        "no image" in err
    assert not manifest_exists("va")

@pytest.mark.parametrize("flag, value, message", [
    ("--classes-from", "trian", "manifest 'trian' not found"),
    ("--taxonomy", "{tmp}/nope.csv", "taxonomy file not found: {tmp}/nope.csv"),
    ("--taxonomy", "{tmp}/bad.csv", "{tmp}/bad.csv line 1: the header must name two or more distinct levels"),
])
def test_the_flags_files_are_checked_before_the_dataset_is_indexed(cli, tree, tmp_path, flag, value, message):
    """A misspelt --classes-from or a missing or malformed --taxonomy file is reported before any image is listed
    (here the split folder is missing: indexing would fail on that first)."""
    (tmp_path / "bad.csv").write_text("class_name\ncat\n")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "nosplit",
                       "--name", "x", flag, value.format(tmp=tmp_path))
    assert code == 2 and message.format(tmp=tmp_path) in err
    assert "indexing" not in err and "nosplit" not in err


def _edit_labels(parquet, count=5):
    import pyarrow.parquet as pq

    t = pq.read_table(parquet)
    labels = t.column("label").to_numpy().copy()
    labels[:count] = (labels[:count] + 1) % 4
    pq.write_table(t.set_column(1, "label", pa.array(labels)), parquet)


def test_rebuild_over_a_damaged_manifest_is_refused_naming_the_file(build, cli, tree, manifests):
    """A rebuild compares the stored files with their hashes, not only the recorded content hash: an edited Parquet
    or JSON file is named, with how to rebuild, and left as it is."""
    build("a", "--sizes", "5")
    parquet, meta = manifests / "a.parquet", manifests / "a.json"
    _edit_labels(parquet)
    args = ("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train", "--name", "a",
            "--sizes", "5")
    code, out, err = cli(*args)
    assert code == 2 and "unchanged" not in out
    assert (f"manifest 'a' already exists but is damaged: {parquet}: rows differ from the recorded table hash "
            f"(the Parquet file was changed). Delete {parquet} and {meta}, then build it again") in err
    build("b", "--sizes", "5")
    edited = dict(json.loads((manifests / "b.json").read_text()), seed=3)  # content hash left as it was
    (manifests / "b.json").write_text(json.dumps(edited))
    code, _, err = cli(*args[:-3], "b", "--sizes", "5")
    assert code == 2 and f"{manifests / 'b.json'} no longer matches its recorded content hash" in err
    assert json.loads((manifests / "b.json").read_text()) == edited
    parquet.unlink()
    meta.unlink()
    assert "written" in build("a", "--sizes", "5")  # both files deleted: built again


def test_a_job_reading_an_edited_parquet_file_is_refused(build, manifests):
    build("a")
    _edit_labels(manifests / "a.parquet")
    m = load_manifest("a")
    with pytest.raises(StudyError, match=re.escape(f"{manifests / 'a.parquet'} (manifest a): rows differ from the "
                                                   f"recorded table hash")):
        m.subset(5)


def test_a_build_waits_for_another_build_of_the_name_and_a_stale_lock_file_does_not_block(build, tree, manifests):
    """Check-and-write of a name is one process at a time: a build started while another holds the name's lock
    waits for it, then finds the other's manifest; a lock file left by a killed process (no holder) is taken."""
    import fcntl
    import subprocess
    import sys
    import time

    build("a")
    lock = manifests / ".c.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-m", "study.cli", "manifest", "build", "--dataset", "imagefolder",
                                 "--root", str(tree), "--split", "train", "--name", "c"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err = ""
        deadline = time.monotonic() + 120
        while "waiting for another build of c" not in err and time.monotonic() < deadline and proc.poll() is None:
            err += proc.stderr.readline()
        assert "waiting for another build of c" in err, (proc.poll(), err + proc.stderr.read())
        time.sleep(0.5)
        assert proc.poll() is None and not manifest_exists("c")  # still waiting: nothing written
    out, rest = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "manifest c: written" in out, err + rest
    assert manifest_exists("c") and not lock.exists()
    manifests.joinpath(".b.lock").write_text("")  # left by a killed build: nobody holds it
    assert "written" in build("b") and not manifests.joinpath(".b.lock").exists()


def _build_killed_writing_the_rows(cfg):
    """A build SIGKILLed (out of memory, a node crash) once its rows are written to their temporary file."""
    real = store.pq.write_table

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    store.pq.write_table = write_then_die
    build_manifest(cfg)


def test_a_build_killed_mid_write_leaves_no_manifest_and_the_next_one_removes_its_temporary(tree, manifests,
                                                                                               monkeypatch):
    """Nothing of a killed build is taken for a manifest, and the next build of the name writes the files a build
    never killed writes, byte for byte, and removes the killed one's temporary (as large as the rows; no later
    command would)."""
    cfg = BuildConfig(dataset="imagefolder", root=tree, split="train", name="toy", sizes=[5])
    clean = manifests.parent / "clean"
    monkeypatch.setenv("STUDY_MANIFESTS", str(clean))
    build_manifest(cfg)
    monkeypatch.setenv("STUDY_MANIFESTS", str(manifests))
    child = multiprocessing.get_context("fork").Process(target=_build_killed_writing_the_rows, args=(cfg,))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    assert not manifest_exists("toy") and len(list(manifests.glob(".toy.parquet.*.tmp"))) == 1
    assert build_manifest(cfg)[1]
    assert sorted(p.name for p in manifests.iterdir()) == ["toy.json", "toy.parquet"]
    for name in ("toy.json", "toy.parquet"):
        assert (manifests / name).read_bytes() == (clean / name).read_bytes()


def test_without_the_lock_a_build_removes_only_temporaries_old_enough_to_be_a_killed_builds(tree, manifests,
                                                                                             monkeypatch):
    """Where the filesystem has no flock the build runs unlocked: a fresh temporary may be another build's live
    file and is left; one older than any build takes is removed."""
    monkeypatch.setattr(flock, "_acquire", lambda *a: None)  # as on a filesystem without flock
    manifests.mkdir(parents=True, exist_ok=True)
    live, dead = manifests / ".toy.parquet.abcdefgh.tmp", manifests / ".toy.json.ijklmnop.tmp"
    for f in (live, dead):
        f.write_bytes(b"part")
    os.utime(dead, (time.time() - 2 * STALE_TEMPORARY_S,) * 2)
    build_manifest(BuildConfig(dataset="imagefolder", root=tree, split="train", name="toy"))
    assert live.exists() and not dead.exists() and manifest_exists("toy")


def test_a_pool_made_again_from_sources_under_other_roots_is_refused(build, cli, tree, manifests):
    """A pool's roots are not part of its content hash: pooling again under the same name after its sources were
    rebuilt from moved folders is refused, not taken for the pool already there (which reads the old folders)."""
    build("a")
    other = write_tree(tree.parent / "other", {"x": 5, "y": 7})
    build("b", root=other)
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    before = (manifests / "ab.json").read_bytes()
    for name, root in (("a", tree), ("b", other)):
        for suffix in (".json", ".parquet"):
            (manifests / f"{name}{suffix}").unlink()
        build(name, root=shutil.copytree(root, tree.parent / f"moved_{name}"))
    code, _, err = cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")
    assert code == 2 and "manifest 'ab' already exists with the same content under another root" in err, err
    assert (manifests / "ab.json").read_bytes() == before


def test_meta_records_each_rankings_balance_apart(build, manifests):
    """`balanced` is the pretraining subsets', `labeled_balanced` the labeled subsets' (default: uniform, balanced)."""
    build("default")
    build("swapped", "--balanced", "--labeled-uniform")
    default, swapped = load_manifest("default").meta, load_manifest("swapped").meta
    assert (default["balanced"], default["labeled_balanced"]) == (False, True)
    assert (swapped["balanced"], swapped["labeled_balanced"]) == (True, False)


def test_uniform_labeled_ranks_are_drawn_apart_from_the_pretraining_ranks(build):
    """Both rankings uniform, the labeled one is still its own draw (keyed by its purpose), not the pretraining
    order again: a labeled subset is not the pretraining subset of its size."""
    build("uni", "--labeled-uniform")
    t = load_manifest("uni").table
    assert sorted(t["labeled_rank"]) == list(range(24)) and t["labeled_rank"].tolist() != t["rank"].tolist()


def test_index_table_does_not_depend_on_the_listing_order_and_extra_columns_follow_their_rows():
    """A reader may list its images in any order: the rows, ranks and extra columns (taxonomy levels) are those of
    the index listed in key order, each row keeping its own column values."""
    from study.datasets.base import Index
    from study.manifests.build import index_table

    names = [f"{c}/{i}.png" for c in ("a", "b", "c") for i in range(4)]

    def index(order):
        rows = [names[i] for i in order]
        return Index(paths=pa.array([f"train/{n}" for n in rows]), labels=np.array([ord(n[0]) - 97 for n in rows]),
                     class_names=["a", "b", "c"], keys=pa.array(rows), levels=["group", "class_name"],
                     columns={"group": pa.array([f"g-{n}" for n in rows])})

    listed = index_table(index(list(range(12))), 5, False, True)
    shuffled = index_table(index([7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4]), 5, False, True)
    assert shuffled.equals(listed)
    assert shuffled.column("group").to_pylist() == [f"g-{p[6:]}" for p in shuffled.column("path").to_pylist()]


def test_classes_from_drops_the_codes_of_the_splits_own_classes():
    """GLC20's `class_codes` are the codes of the split's own class list: once the labels are renumbered to another
    list they would name other classes, so they leave the metadata (the class names say the codes)."""
    from study.datasets.base import Index
    from study.manifests.build import align_classes

    index = Index(paths=pa.array(["x/1.npy", "x/2.npy"]), labels=np.array([0, 1]),
                  class_names=["landcover_21", "landcover_41"], info={"class_codes": [21, 41]})
    assert align_classes(index, ["landcover_11", "landcover_21", "landcover_41"], "--classes-from tr", "glc20 us_test")
    assert index.labels.tolist() == [1, 2] and "class_codes" not in index.info


def test_a_manifests_files_are_synced_to_disk_before_they_are_renamed_into_place(build, manifests, monkeypatch):
    """A node crash after a build must not leave a manifest whose rows or metadata were never written out: each
    file is synced under its temporary name, then renamed."""
    from study import atomic

    synced = []
    real = atomic._fsync
    monkeypatch.setattr(atomic, "_fsync", lambda path: synced.append(Path(path).name) or real(path))
    build("toy")
    for name in ("toy.parquet", "toy.json"):
        assert any(s.startswith(f".{name}.") and s.endswith(".tmp") for s in synced), (name, synced)


def test_keys_that_repeat_anywhere_in_the_listing_fall_back_to_ranking_by_path():
    """Two images of one name (listed apart, not side by side) cannot be told apart by their keys: the index is
    ranked by path, as an index without keys, and its `rank_key` leaves the metadata."""
    from study.datasets.base import Index
    from study.manifests.build import index_table

    paths = ["train/x/1.png", "train/y/2.png", "train/y/1.png", "train/x/3.png"]

    def index(keys):
        return Index(paths=pa.array(paths), labels=np.array([0, 1, 1, 0]), class_names=["x", "y"], keys=keys,
                     info={"rank_key": "file name"} if keys is not None else {})

    named = index(pa.array([p.rsplit("/", 1)[1] for p in paths]))
    table = index_table(named, 0, False, True)
    assert named.keys is None and "rank_key" not in named.info
    assert table.equals(index_table(index(None), 0, False, True))


def test_two_images_of_one_key_fall_back_to_ranking_by_path():
    """The smallest index whose keys repeat (two images, one name) is ranked by path as a longer one is."""
    from study.datasets.base import Index
    from study.manifests.build import index_table

    index = Index(paths=pa.array(["train/x/1.png", "train/y/1.png"]), labels=np.array([0, 1]), class_names=["x", "y"],
                  keys=pa.array(["1.png", "1.png"]), info={"rank_key": "file name"})
    index_table(index, 0, False, True)
    assert index.keys is None and "rank_key" not in index.info


def test_a_refused_rebuild_says_how_the_classes_and_the_source_files_changed(build, cli, tree, tmp_path):
    """The difference is said old -> new: the class count, the source files the rebuild read (with their new
    sha256); the rows are said as rows, not as a table hash."""
    from study.hashing import file_sha256

    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\n")
    build("toy", "--taxonomy", tax)
    tax.write_text("group,class_name\nfelid,cat\nfelid,dog\nfish,eel\ncanid,fox\n")
    again = ["manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train", "--name", "toy"]
    code, _, err = cli(*again, "--taxonomy", tax)
    assert code == 2 and f"source files: taxonomy.csv (sha256 {file_sha256(tax)[:12]}) changed" in err, err
    assert "rows: 0 added, 0 removed (labels or ranks changed)" in err and "table_hash" not in err
    code, _, err = cli(*again, "--drop-classes", "cat")
    assert code == 2 and "classes: 4 -> 3" in err, err


def test_a_relative_root_is_recorded_as_the_folder_it_names(build, tree, monkeypatch):
    """`--root data` given in the data's parent folder: the metadata records the folder itself, so that a job started
    elsewhere finds the images."""
    monkeypatch.chdir(tree.parent)
    build("rel", root=Path(tree.name))
    assert load_manifest("rel").meta["root"] == str(tree.resolve())


def test_taxonomy_levels_are_stored_coarse_to_fine_after_the_base_columns(build, tmp_path, manifests):
    """The level columns keep the taxonomy's order (coarse -> fine), not the alphabet's: `order` before `family`."""
    import pyarrow.parquet as pq

    tax = tmp_path / "taxonomy.csv"
    tax.write_text("order,family,class_name\nx,felidae,cat\ny,canidae,dog\nz,fishes,eel\ny,canidae,fox\n")
    build("tax", "--taxonomy", tax)
    assert pq.read_schema(manifests / "tax.parquet").names == [*store.BASE_COLUMNS, "order", "family"]


def _labelled_index(class_names, labels, **extra):
    from study.datasets.base import Index

    return Index(paths=pa.array([f"{class_names[c]}/{k}.png" for k, c in enumerate(labels)]),
                 labels=np.array(labels, dtype=np.int64), class_names=list(class_names), **extra)


def test_the_same_classes_listed_in_another_order_renumber_the_labels():
    """A label is a position in the class list: --classes-from a manifest of the same classes in another order
    relabels the split (labels kept as they were would name the other classes)."""
    from study.manifests.build import align_classes

    index = _labelled_index(["dog", "cat"], [0, 1, 1])
    assert align_classes(index, ["cat", "dog"], "--classes-from tr", "x val")
    assert index.class_names == ["cat", "dog"] and index.labels.tolist() == [1, 0, 0]


def test_classes_the_list_lacks_are_named_five_at_most():
    from study.manifests.build import align_classes

    with pytest.raises(StudyError, match=r"^--classes-from tr: x val has class\(es\) b, c, d, e, f \.\.\. that it "
                                         r"does not list \(1 classes\)"):
        align_classes(_labelled_index(list("abcdefg"), list(range(7))), ["a"], "--classes-from tr", "x val")


def test_dropped_classes_take_their_images_rows_out_of_every_per_row_column():
    """A reader's own columns (iNat21's taxonomy levels) and keys lose the dropped images' rows as the paths do."""
    from study.manifests.build import drop_classes

    index = _labelled_index(["cat", "dog", "eel"], [0, 1, 2, 1], keys=pa.array(["k0", "k1", "k2", "k3"]),
                            columns={"genus": pa.array(["c", "d", "e", "d"])})
    drop_classes(index, ["dog"], "x train", "--drop-classes", "these are all its classes")
    assert index.paths.to_pylist() == ["cat/0.png", "eel/2.png"] and index.keys.to_pylist() == ["k0", "k2"]
    assert index.columns["genus"].to_pylist() == ["c", "e"]
    assert index.class_names == ["cat", "eel"] and index.labels.tolist() == [0, 1]
    assert index.info["dropped_classes"] == {"dog": 2}


def test_a_build_config_from_python_takes_sizes_as_the_command_does(tree, manifests, cli):
    """A notebook's BuildConfig: counts as a grid writes them, kept sorted and once each as `--sizes` keeps them, so
    that the same options give the command's content hash; anything else is named by its field, not a TypeError
    from inside the build."""
    cfg = BuildConfig("imagefolder", str(tree), "train", "py", sizes=[10, "5", 10], labeled_sizes="4,2")
    assert (cfg.sizes, cfg.labeled_sizes) == ([5, 10], [2, 4])
    meta, written = build_manifest(cfg)
    code, _, _ = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train", "--name",
                     "cmd", "--sizes", "5,10", "--labeled-sizes", "2,4")
    assert written and code == 0
    assert meta["content_hash"] == json.loads((manifests / "cmd.json").read_text())["content_hash"]
    for bad, said in ((["5", "1x"], r"sizes: not a size: expected a count .*, got '1x'"),
                      (5, r"sizes: expected a list of sizes such as \[50000, '125k'\], got 5"),
                      ([0], r"sizes: not a size: expected a count >= 1, got 0")):
        with pytest.raises(StudyError, match=f"^{said}$"):
            BuildConfig("imagefolder", tree, "train", "bad", sizes=bad)
    with pytest.raises(StudyError, match=r"^labeled_sizes: not a size"):
        BuildConfig("imagefolder", tree, "train", "bad", labeled_sizes=[True])
