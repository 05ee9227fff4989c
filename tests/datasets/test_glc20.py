import numpy as np
import pytest
from dataset_layouts import glc_patch, make_glc20

from study.datasets import ReaderOptions, read_dataset
from study.datasets.glc20 import LABEL_RULES
from study.errors import StudyError


def _labels(index):
    return {p.rsplit("/", 1)[1]: index.class_names[label] for p, label in zip(index.paths.to_pylist(), index.labels)}


def test_patch_paths_both_regions_and_us_parts(tmp_path):
    make_glc20(tmp_path)
    index = read_dataset("glc20", tmp_path, "train")
    paths = index.paths.to_pylist()
    assert "patches_fr/34/12/10561234.npy" in paths
    assert "patches_us/patches_us_14/67/45/1234567.npy" in paths  # CD=67 -> part 67 // 5 + 1 = 14
    assert "patches_us/patches_us_01/01/43/7654301.npy" in paths
    assert all((tmp_path / p).is_file() for p in paths)
    assert index.kind == "npy" and index.info["label_rule"] == "landcover_center"


def test_label_rules(tmp_path):
    make_glc20(tmp_path)
    centre = _labels(read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="landcover_center")))
    assert centre["7654301.npy"] == "landcover_41" and centre["10567899.npy"] == "landcover_11"
    mode = _labels(read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="landcover_mode")))
    assert mode["7654301.npy"] == "landcover_42" and mode["10567899.npy"] == "landcover_12"
    species = read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    assert species.class_names == ["5", "9"] and _labels(species)["222207.npy"] == "9"
    assert np.array_equal(np.sort(np.unique(species.labels)), [0, 1])


def test_species_labels_of_both_regions_stay_with_their_own_occurrences(tmp_path):
    occurrences = make_glc20(tmp_path)
    index = read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="species"))
    want = {f"{i}.npy": str(s) for rows in occurrences.values() for i, s, *_ in rows}
    assert _labels(index) == want and index.class_names == ["5", "7", "9"]


def test_region_split_and_test_split(tmp_path):
    make_glc20(tmp_path)
    assert len(read_dataset("glc20", tmp_path, "fr_train")) == 2
    test = read_dataset("glc20", tmp_path, "us_test")
    assert test.paths.to_pylist() == ["patches_us/patches_us_14/67/45/1234567.npy"]
    with pytest.raises(StudyError, match="species_id"):
        read_dataset("glc20", tmp_path, "us_test", ReaderOptions(label_rule="species"))


def test_bad_inputs(tmp_path):
    make_glc20(tmp_path)
    with pytest.raises(StudyError, match="unknown --label-rule"):
        read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="centre"))
    for split in ("val", "_train", "de_test"):  # the splits named are the ones `study plan` may suggest
        with pytest.raises(StudyError, match=rf"unknown split '{split}' \(expected train, test, us_train, fr_train, "
                                             r"us_test, fr_test\)"):
            read_dataset("glc20", tmp_path, split)
    with pytest.raises(StudyError, match="occurrences_fr_test.csv"):
        read_dataset("glc20", tmp_path, "fr_test")
    csv = tmp_path / "occurrences_us_train.csv"
    good = csv.read_text()
    csv.write_text(good + "12x;1;2;3\n")
    with pytest.raises(StudyError, match=r"occurrences_us_train.csv line 5: id '12x'"):
        read_dataset("glc20", tmp_path, "us_train")
    csv.write_text("\n" + good.replace("\n", "\n\n", 2) + "\n12x;1;2;3\n")  # blank lines count as lines
    with pytest.raises(StudyError, match=r"occurrences_us_train.csv line 9: id '12x'"):
        read_dataset("glc20", tmp_path, "us_train")
    csv.write_text(good + ";;;\n")  # a row of empty fields is no blank line
    with pytest.raises(StudyError, match=r"occurrences_us_train.csv line 5: id ''"):
        read_dataset("glc20", tmp_path, "us_train")
    csv.write_text(good + "99999999999999999999;1;2;3\n")
    with pytest.raises(StudyError, match=r"line 5: id '99999999999999999999' is not a 64-bit integer"):
        read_dataset("glc20", tmp_path, "us_train")
    csv.write_text("id;lat;lon;species_id\n4242;1;2;3\n")
    for rule in LABEL_RULES:  # no manifest of absent patches, not even by the rule that reads none
        with pytest.raises(StudyError, match="patch folder .*patches_us_09/42/42 not found .*extract the patch"):
            read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule=rule))
    (tmp_path / "patches_us/patches_us_09/42/42").mkdir(parents=True)
    np.save(tmp_path / "patches_us/patches_us_09/42/42/4242_alti.npy", np.zeros((4, 4), np.int16))
    for rule in LABEL_RULES:  # the folder is there (with the altitude patch), the patch is not
        with pytest.raises(StudyError, match=r"patch .*patches_us_09/42/42/4242.npy not found \(1 of the 1 patches"):
            read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule=rule))
    csv.write_text(good.replace("\n", ";\n"))  # every row ends in ';' (the header too): read as written
    assert len(read_dataset("glc20", tmp_path, "us_train")) == 3
    csv.write_text(good.replace("\n", ";\n").replace("id;lat;lon;species_id;", "id;lat;lon;species_id"))
    index = read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))  # the rows only
    assert sorted(p.rsplit("/", 1)[1] for p in index.paths.to_pylist()) == ["1234567.npy", "222207.npy",
                                                                             "7654301.npy"]
    csv.write_text(good.replace("\n", ";0\n", 3).replace("id;lat;lon;species_id;0", "id;lat;lon;species_id"))
    with pytest.raises(StudyError, match="occurrences_us_train.csv line 2: 5 fields, but the header names 4"):
        read_dataset("glc20", tmp_path, "us_train")
    csv.write_text(good)
    patch = tmp_path / "patches_us/patches_us_14/67/45/1234567.npy"
    for bad, why in ((np.zeros((0, 4, 5), np.uint8), r"shape \(0, 4, 5\)"),
                     (np.zeros((16, 16, 4), np.uint8), r"expected H x W x 5, got shape \(16, 16, 4\)"),  # no land cover
                     (np.zeros((5, 32, 32), np.uint8), r"shape \(5, 32, 32\) looks channels-first"),
                     (np.full((4, 4, 5), np.nan, np.float32), "integer array .land-cover codes., got dtype float32")):
        np.save(patch, bad)
        for rule in ("landcover_center", "landcover_mode"):
            with pytest.raises(StudyError, match=f"cannot read patch .*1234567.npy: .*{why}"):
                read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule=rule))


def test_an_empty_patch_file_is_named_not_a_traceback(tmp_path):
    make_glc20(tmp_path)
    (tmp_path / "patches_us/patches_us_14/67/45/1234567.npy").write_bytes(b"")  # a copy cut short at 0 bytes
    with pytest.raises(StudyError, match=r"glc20: cannot read patch .*1234567.npy: No data left in file"):
        read_dataset("glc20", tmp_path, "us_train")


def test_an_occurrence_listed_twice_names_both_lines(tmp_path):
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    csv.write_text(csv.read_text().replace("\n", "\n\n", 1) + "1234567;40.0;-70.0;9\n")  # blank lines count
    for rule in LABEL_RULES:
        with pytest.raises(StudyError, match=r"occurrences_us_train.csv line 6: occurrence 1234567 is listed twice, "
                                             r"first on line 3$"):
            read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule=rule))


def test_csv_errors_name_the_value_that_failed_and_the_separator(tmp_path):
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    csv.write_text("id;lat;lon;species_id\n1234567;43.1;-71.2;+5\n7654301;40.0;-100.0;12.0\n")
    with pytest.raises(StudyError, match=r"line 3: species_id '12.0' is not a 64-bit integer"):
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    csv.write_text("id;lat;lon;species_id\n1234567;43.1;-71.2;5\n7654301;40.0;-100.0;\u00b2\n")
    with pytest.raises(StudyError, match="line 3: species_id '\u00b2' is not a 64-bit integer"):
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    csv.write_text("id,lat,lon,species_id\n1234567,43.1,-71.2,5\n")
    with pytest.raises(StudyError, match="line 1: expected ';'-separated columns .GLC20's format., this header "
                                         "uses ','"):
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    csv.write_text("id;lat;lon;species_id\n1234567;43.1;-71.2;5\n7654301,40.0,-100.0,12\n")  # a ';' header, ',' rows
    with pytest.raises(StudyError, match=r"line 3: id '7654301,40.0,-100.0,12' is not a 64-bit integer; expected "
                                         r"';'-separated fields \(GLC20's format, as its header has them\), this row "
                                         r"uses ','$"):
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="landcover_center"))


def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path):
    """pandas says "EOF inside string starting at row 4", counting lines (blank ones too) from 0."""
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    csv.write_text('id;lat;lon;species_id\n\n1234567;43.1;-71.2;5\n\n7654301;"40.0;-100.0;12\n7654302;1;2;3\n')
    with pytest.raises(StudyError, match=r"occurrences_us_train.csv line 5: a '\"' opens a quoted value that no "
                                         r"later '\"' closes"):
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))


def test_an_unclosed_quote_after_a_quoted_value_over_lines_names_its_own_line(tmp_path):
    """pandas' row counts records: the quotes on lines 2 and 4 make one record of lines 2-4, and it said "row 4" of
    the quote on line 7 (read as line 5, which holds none); the error names line 7, and lines 2-4, which that pair
    joined into one row; a '"' inside a value (line 6's `a"b`) opens none and is not named."""
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    csv.write_text('id;lat;lon;species_id\n1;"2;3;4\n5;6;7;8\n9;"1;2;3\n4;5;6;7\n7;a"b;1;2\n8;"9;1;2\n3;4;5;6\n')
    with pytest.raises(StudyError) as e:
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    assert str(e.value).startswith(f"{csv} line 7: a '\"' opens a quoted value that no later '\"' closes"), e.value
    assert "; lines 2-4 before it read as one row (a '\"' at each end pairs up): check those" in str(e.value), e.value


def test_a_pair_of_stray_quotes_in_one_column_is_refused_not_read_as_one_row(tmp_path):
    """A '"' in the lat column of lines 3 and 5: the csv reader made one row of lines 3-5, every field count right,
    and occurrences 7654301 and 7654302 were silently dropped."""
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    csv.write_text('id;lat;lon;species_id\n1234567;43.1;-71.2;5\n1234568;"43.2;-71.3;5\n7654301;40.0;-100.0;7\n'
                   '7654302;40.1";-100.1;7\n7654303;40.2;-100.2;8\n')
    with pytest.raises(StudyError) as e:
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    assert str(e.value) == (f"{csv} lines 3-5: read as one row (a '\"' on line 3 and one on line 5 pair up, making one "
                            "value of the lines between; GLC20's files quote no value): remove them"), e.value


def test_a_bad_value_after_a_quoted_value_over_lines_names_its_own_line(tmp_path):
    """A quoted value over lines 3-4 is one row: the species_id error of the row after it names line 5, where it is
    (counting non-blank lines it named line 4)."""
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    csv.write_text('id;lat;lon;species_id\n\n1234567;"43.1\n";-71.2;5\n7654301;40.0;-100.0;x\n')
    with pytest.raises(StudyError, match=r"occurrences_us_train.csv line 5: species_id 'x' is not a 64-bit integer"):
        read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))


def test_land_cover_is_read_in_scan_threads_with_the_same_labels(tmp_path, monkeypatch):
    make_glc20(tmp_path)
    one = read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="landcover_mode"))
    monkeypatch.setenv("STUDY_SCAN_THREADS", "3")
    three = read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="landcover_mode"))
    assert np.array_equal(one.labels, three.labels) and one.class_names == three.class_names


def test_occurrence_tables_may_sit_in_an_occurrences_folder(tmp_path):
    """As the archive extracts: `occurrences/occurrences_us_train.csv` beside `patches_us/`."""
    make_glc20(tmp_path)
    (tmp_path / "occurrences").mkdir()
    for csv in tmp_path.glob("occurrences_*.csv"):
        csv.rename(tmp_path / "occurrences" / csv.name)
    index = read_dataset("glc20", tmp_path, "train")
    assert len(index) == 5
    assert {s["path"] for s in index.sources if s["path"].endswith(".csv")} == {
        "occurrences/occurrences_fr_train.csv", "occurrences/occurrences_us_train.csv"}
    with pytest.raises(StudyError, match="occurrences_fr_test.csv .nor .*/occurrences/occurrences_fr_test.csv"):
        read_dataset("glc20", tmp_path, "fr_test")


def test_glc20_pools_with_an_image_dataset_each_row_read_by_its_source(tmp_path, monkeypatch):
    """The paper's pooled sets mix GLC20's .npy patches with image datasets; a pool reads each row by its source's
    kind and channels (it used to refuse sources of two kinds)."""
    from dataset_layouts import make_imagefolder

    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest
    from study.manifests.pool import pool_manifests
    from study.train.images import ImageReader

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_glc20(tmp_path / "glc")
    make_imagefolder(tmp_path / "folder", {"cat": 3, "dog": 3})
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="glc",
                               channels=(3, 1, 2)))
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "folder", split="train", name="folder"))
    pool_manifests("pooled", [("folder", 4), ("glc", 2)], [6], [])
    m = load_manifest("pooled")
    assert m.meta["kind"] == "mixed" and m.meta["kinds"] == {"folder": "image", "glc": "npy"}
    assert m.meta["source_channels"] == {"glc": [3, 1, 2]}
    reader = ImageReader(m)
    for _, row in m.all().iterrows():
        img = reader.open(row)
        assert img.mode == "RGB"
        if row["source"] == "glc":  # NIR, G, B: the GLC20 manifest's own channels
            assert np.array_equal(np.asarray(img), np.load(m.abs_path(row))[:, :, [3, 1, 2]])
    assert sorted(m.all()["source"]) == ["folder"] * 4 + ["glc"] * 2
    from study.manifests.verify import check_files

    assert check_files(m) == []  # `verify --files` decodes each row by its source's kind too
    make_glc20(tmp_path / "glc2")  # another tree: a pool of one tree's files twice is refused
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc2", split="us_train", name="glc_rgb"))
    pool_manifests("two_glc", [("glc", 2), ("glc_rgb", 2)], [4], [])  # one kind, other channels: read per source
    both = load_manifest("two_glc")
    assert both.meta["kind"] == "npy" and both.meta["source_channels"] == {"glc": [3, 1, 2], "glc_rgb": [0, 1, 2]}
    for _, row in both.all().iterrows():
        want = [3, 1, 2] if row["source"] == "glc" else [0, 1, 2]
        assert np.array_equal(np.asarray(ImageReader(both).open(row)), np.load(both.abs_path(row))[:, :, want])


def test_a_test_split_takes_the_train_splits_classes(tmp_path, monkeypatch):
    """GLC20's land-cover classes are the codes found in each split: us_test here lacks code 41, so its manifest
    would list other classes than us_train's and every evaluation would be refused. --classes-from aligns it."""
    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_glc20(tmp_path / "glc")
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="tr"))
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_test", name="own"))
    assert load_manifest("own").class_names == ["landcover_21"]  # only the codes of its own patches
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_test", name="te", classes_from="tr"))
    train, test = load_manifest("tr"), load_manifest("te")
    assert test.class_names == train.class_names == ["landcover_21", "landcover_41"]
    row = test.all().iloc[0]
    assert (row["class_name"], row["label"]) == ("landcover_21", 0) and test.meta["classes_from"] == "tr"
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="same",
                               classes_from="tr"))  # the same classes: the same manifest as without the flag
    assert load_manifest("same").content_hash == train.content_hash and "classes_from" not in load_manifest("same").meta
    with pytest.raises(StudyError, match="--classes-from own: glc20 us_train has class.*landcover_41"):
        build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="x",
                                   classes_from="own"))


def test_a_test_split_must_take_the_label_rule_and_channels_of_its_classes_from(tmp_path, monkeypatch):
    """Land-cover classes are named by code under both land-cover rules: a test split built with the default rule
    from a `landcover_mode` train split would list its classes and label otherwise (or read other channels)."""
    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_glc20(tmp_path / "glc")
    glc = tmp_path / "glc"
    build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_train", name="tr", label_rule="landcover_mode",
                               channels=(3, 1, 2)))
    with pytest.raises(StudyError, match="--classes-from tr: glc20 us_test is read with --label-rule "
                                         "landcover_center but tr with --label-rule landcover_mode"):
        build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_test", name="te", classes_from="tr"))
    with pytest.raises(StudyError, match="read with --channels 0,1,2 but tr with --channels 3,1,2"):
        build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_test", name="te", classes_from="tr",
                                   label_rule="landcover_mode"))
    with pytest.raises(StudyError, match="read with --label-rule species but tr"):  # given: before indexing
        build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "absent", split="us_test", name="te",
                                   classes_from="tr", label_rule="species"))
    build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_test", name="te", classes_from="tr",
                               label_rule="landcover_mode", channels=(3, 1, 2)))
    assert load_manifest("te").meta["label_rule"] == "landcover_mode"


def test_channels_are_a_named_choice_recorded_in_the_manifest(tmp_path, monkeypatch):
    """RGB by default (ours; the paper does not say); --channels picks others, e.g. NIR as red."""
    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest
    from study.train.images import ImageReader

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_glc20(tmp_path / "glc")
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="rgb"))
    build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="nir",
                               channels=(3, 1, 2)))
    rgb, nir = load_manifest("rgb"), load_manifest("nir")
    assert rgb.meta["channels"] == [0, 1, 2] and nir.meta["channels"] == [3, 1, 2]
    row = rgb.all().iloc[0]
    patch = np.load(rgb.abs_path(row))
    assert np.array_equal(np.asarray(ImageReader(nir).open(row)), patch[:, :, [3, 1, 2]])
    for bad in ((0, 1), (0, 1, 4), (-1, 1, 2)):  # -1 would index the land-cover channel
        with pytest.raises(StudyError, match="name 1 or 3 of the image channels"):
            build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="bad",
                                       channels=bad))
    # one channel thrice is one channel (repeated when read): the same images under another content hash
    with pytest.raises(StudyError, match=r"--channels 3,3,3: one channel thrice is `--channels 3`"):
        build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="bad",
                                   channels=(3, 3, 3)))


def test_landcover_mode_ties_go_to_the_smallest_code(tmp_path):
    make_glc20(tmp_path)
    patch_file = tmp_path / "patches_us/patches_us_14/67/45/1234567.npy"
    patch = np.load(patch_file)
    patch[:8, :, 4] = 30
    patch[8:, :, 4] = 12  # as many pixels of 30 as of 12
    np.save(patch_file, patch)
    index = read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="landcover_mode"))
    assert _labels(index)["1234567.npy"] == "landcover_12"


def test_one_channel_may_be_chosen(tmp_path):
    """`--channels 3`: the NIR channel alone (repeated into a grey image when read)."""
    make_glc20(tmp_path)
    assert read_dataset("glc20", tmp_path, "us_train", ReaderOptions(channels=(3,))).info["channels"] == [3]


def test_a_split_of_both_regions_with_one_region_on_disk_is_that_region(tmp_path, capsys):
    make_glc20(tmp_path)  # occurrences_us_test.csv, no occurrences_fr_test.csv
    index = read_dataset("glc20", tmp_path, "test")
    assert index.paths.to_pylist() == ["patches_us/patches_us_14/67/45/1234567.npy"]
    assert "only occurrences_us_test.csv found: split 'test' is that region alone" in capsys.readouterr().err


def test_us_parts_lying_directly_under_the_root_are_found(tmp_path):
    """`patches_us_NN/CD/AB/` as each part's archive extracts when unpacked in the root itself."""
    make_glc20(tmp_path)
    nested = read_dataset("glc20", tmp_path, "us_train")
    for part in sorted((tmp_path / "patches_us").iterdir()):
        part.rename(tmp_path / part.name)
    (tmp_path / "patches_us").rmdir()
    index = read_dataset("glc20", tmp_path, "us_train")
    assert "patches_us_14/67/45/1234567.npy" in index.paths.to_pylist()
    assert all((tmp_path / p).is_file() for p in index.paths.to_pylist())
    # rank keys are the occurrence ids, whatever the layout: the same subsets either way
    assert index.keys.to_pylist() == nested.keys.to_pylist() == ["1234567", "7654301", "222207"]


@pytest.mark.parametrize("parts", ["patches_us/patches_us_", "patches_us_"])
@pytest.mark.parametrize("occurrence, nn", [(1234597, "20"), (1234503, "01")])
def test_the_first_or_last_us_part_alone_is_found(tmp_path, parts, occurrence, nn):
    """Part 20 holds CD 95..99, part 01 CD 00..04: a root with only that part extracted (in patches_us/ or in the root
    itself) is still a root of parts."""
    (tmp_path / "occurrences_us_train.csv").write_text(f"id;lat;lon;species_id\n{occurrence};43.1;-71.2;5\n")
    path = f"{parts}{nn}/{occurrence % 100:02d}/45/{occurrence}.npy"
    (tmp_path / path).parent.mkdir(parents=True)
    np.save(tmp_path / path, glc_patch(21, 21))
    assert read_dataset("glc20", tmp_path, "us_train").paths.to_pylist() == [path]


def test_an_occurrence_table_in_the_root_is_read_before_one_in_occurrences(tmp_path):
    make_glc20(tmp_path)
    (tmp_path / "occurrences").mkdir()
    (tmp_path / "occurrences" / "occurrences_us_train.csv").write_text("id;lat;lon;species_id\n1234567;1;2;5\n")
    index = read_dataset("glc20", tmp_path, "us_train")
    assert len(index) == 3 and [s["path"] for s in index.sources] == ["occurrences_us_train.csv"]


def test_land_cover_of_both_regions_warns_that_their_schemes_differ(tmp_path, capsys):
    """France's OSO and the US's NLCD codes share numbers but not meanings: a split of both regions with a land-cover
    rule says so; one region, or species labels, say nothing."""
    make_glc20(tmp_path)
    read_dataset("glc20", tmp_path, "train")
    err = capsys.readouterr().err
    assert err.startswith("[manifest] warning: glc20: France's land-cover codes (OSO) and the US's (NLCD) are "
                          "different schemes") and "use us_train or fr_train for one scheme" in err
    read_dataset("glc20", tmp_path, "us_train")
    read_dataset("glc20", tmp_path, "train", ReaderOptions(label_rule="species"))
    assert capsys.readouterr().err == ""  # nor a progress line: a split of fewer than 50,000 patches has none


def test_spaces_around_column_names_and_blank_trailing_fields_are_read(tmp_path):
    """`id ; species_id` names the columns `id` and `species_id`; trailing fields of spaces hold no value."""
    make_glc20(tmp_path)
    (tmp_path / "occurrences_us_train.csv").write_text(
        "id ;lat;lon; species_id\n1234567;43.1;-71.2;5; \n7654301;40.0;-100.0;9; \n222207;1;2;9;  \n")
    index = read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))
    assert _labels(index) == {"1234567.npy": "5", "7654301.npy": "9", "222207.npy": "9"}


def test_landcover_center_is_the_centre_of_a_patch_that_is_not_square(tmp_path):
    make_glc20(tmp_path)
    patch_file = tmp_path / "patches_us/patches_us_14/67/45/1234567.npy"
    patch = np.full((16, 20, 5), 21, np.uint8)
    patch[8, 10, 4] = 33  # row H // 2, column W // 2
    patch[10, 8, 4] = 44
    np.save(patch_file, patch)
    assert _labels(read_dataset("glc20", tmp_path, "us_train"))["1234567.npy"] == "landcover_33"


def test_drop_classes_leaves_a_land_cover_code_out_with_its_code(tmp_path, monkeypatch):
    """A land-cover code left out with --drop-classes (a no-data code, say) leaves `class_codes` in step with the
    class list; its test split drops it too, or is refused when that would leave no image."""
    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_glc20(tmp_path / "glc")  # us_train: codes 21, 41, 41 at the centre; us_test: the code-21 occurrence alone
    glc = tmp_path / "glc"
    build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_train", name="tr", drop_classes=("landcover_21",)))
    tr = load_manifest("tr")
    assert tr.class_names == ["landcover_41"] and tr.num_images == 2 and set(tr.table["label"]) == {0}
    assert tr.meta["info"]["class_codes"] == [41] and tr.meta["info"]["dropped_classes"] == {"landcover_21": 1}
    with pytest.raises(StudyError, match="glc20 us_test has class.*landcover_21 that it does not list"):
        build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_test", name="te", classes_from="tr"))
    with pytest.raises(StudyError, match="glc20 us_test: these are all its classes, so --drop-classes would leave "
                                         "no image"):
        build_manifest(BuildConfig(dataset="glc20", root=glc, split="us_test", name="te", classes_from="tr",
                                   drop_classes=("landcover_21",)))


def test_a_manifest_records_the_label_rule_its_reader_applied(tmp_path, monkeypatch):
    """Without --label-rule the metadata records GLC20's default rule, once (not again in `info`): recorded as null,
    a test split built from it with --classes-from and another rule was not refused."""
    from study.manifests.build import BuildConfig, build_manifest

    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_glc20(tmp_path / "glc")
    meta, _ = build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_train", name="tr"))
    assert meta["label_rule"] == "landcover_center" and "label_rule" not in meta["info"]
    with pytest.raises(StudyError, match="read with --label-rule landcover_mode but tr with --label-rule "
                                         "landcover_center"):
        build_manifest(BuildConfig(dataset="glc20", root=tmp_path / "glc", split="us_test", name="te",
                                   classes_from="tr", label_rule="landcover_mode"))


def test_a_compressed_occurrence_table_is_named(tmp_path):
    """A table kept gzipped (`occurrences_us_train.csv.gz`), in the root or in occurrences/, is named with the
    advice to extract it, not only reported missing."""
    make_glc20(tmp_path)
    (tmp_path / "occurrences_us_train.csv").rename(tmp_path / "occurrences_us_train.csv.gz")
    with pytest.raises(StudyError, match=r"occurrence file not found: .*occurrences_us_train\.csv \(nor .*\) \(found "
                                         r"occurrences_us_train\.csv\.gz beside it, not extracted"):
        read_dataset("glc20", tmp_path, "us_train")
    (tmp_path / "occurrences").mkdir()
    (tmp_path / "occurrences_us_train.csv.gz").rename(tmp_path / "occurrences" / "occurrences_us_train.csv.zip")
    with pytest.raises(StudyError, match=rf"\(found occurrences_us_train\.csv\.zip beside it, not extracted: extract "
                                         rf"it in {tmp_path}/occurrences\)"):
        read_dataset("glc20", tmp_path, "us_train")


def test_an_occurrence_without_a_patch_is_named_with_its_line(tmp_path):
    make_glc20(tmp_path)
    csv = tmp_path / "occurrences_us_train.csv"
    good = csv.read_text()
    csv.write_text(good + "4242;1;2;3\n")  # split train: the French table's rows come first
    with pytest.raises(StudyError, match=r"patch folder .*patches_us_09/42/42 not found .*, first needed by "
                                         r"occurrence 4242 \(.*occurrences_us_train.csv line 5\)"):
        read_dataset("glc20", tmp_path, "train")
    (tmp_path / "patches_us/patches_us_09/42/42").mkdir(parents=True)
    with pytest.raises(StudyError, match=r"patch .*4242.npy not found .*, first needed by occurrence 4242 "
                                         r"\(.*occurrences_us_train.csv line 5\)"):
        read_dataset("glc20", tmp_path, "train")


@pytest.mark.parametrize("kind, why", [("npz", r"a zip archive \(.npz\), not a .npy array"),
                                       ("jpeg", r"not a NumPy .npy file \(it begins with b'\\xff\\xd8")])
def test_a_patch_of_another_format_is_named_as_such(tmp_path, kind, why):
    make_glc20(tmp_path)
    patch = tmp_path / "patches_us/patches_us_14/67/45/1234567.npy"
    if kind == "npz":
        np.savez(patch.with_suffix(".npz"), np.zeros((4, 4, 5), np.uint8))
        patch.with_suffix(".npz").rename(patch)  # an .npz under the .npy name: np.load returns an archive
    else:
        patch.write_bytes(b"\xff\xd8\xff\xe0" + bytes(40))  # a JPEG's first bytes: numpy says "pickled data"
    with pytest.raises(StudyError, match=f"cannot read patch .*1234567.npy: {why}"):
        read_dataset("glc20", tmp_path, "us_train")


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.int8])
def test_a_patch_of_another_integer_dtype_than_uint8_is_refused_naming_it(tmp_path, dtype):
    """A 16-bit copy of the patches (values x 256) made landcover_2816 a class, and the jobs clipped its pixels to 255:
    a land-cover rule refuses any dtype but GLC20's uint8, naming the patch and the dtype."""
    make_glc20(tmp_path)
    patch = tmp_path / "patches_us/patches_us_14/67/45/1234567.npy"
    np.save(patch, (np.load(patch).astype(np.int64) * (256 if dtype is np.uint16 else 1)).astype(dtype))
    for rule in ("landcover_center", "landcover_mode"):
        with pytest.raises(StudyError, match=rf"cannot read patch .*1234567.npy: expected uint8 .*got dtype "
                                             rf"{np.dtype(dtype).name}: save the patches as uint8"):
            read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule=rule))
    assert len(read_dataset("glc20", tmp_path, "us_train", ReaderOptions(label_rule="species"))) == 3  # reads none


def test_species_on_a_test_table_says_that_test_tables_have_none(tmp_path):
    make_glc20(tmp_path)
    with pytest.raises(StudyError, match=r"occurrences_us_test.csv line 1: no 'species_id' column, which --label-rule "
                                         r"species needs \(GLC20's test tables have none"):
        read_dataset("glc20", tmp_path, "us_test", ReaderOptions(label_rule="species"))


def test_land_cover_regions_and_a_test_split_of_another_scheme():
    """France's OSO and the US's NLCD give one code other classes: a test manifest labelled with a region's codes that
    its train manifest lacks clashes; species ids (one id space) and other readers never do."""
    from study.datasets.glc20 import landcover_regions, landcover_scheme_clash

    def meta(split, rule="landcover_center", dataset="glc20", tables=()):
        return {"dataset": dataset, "split": split, "label_rule": rule,
                "sources": [{"path": f"occurrences/occurrences_{t}.csv"} for t in tables]}

    assert landcover_regions(meta("us_test")) == ["us"]
    assert landcover_regions(meta("test", tables=["us_test", "fr_test"])) == ["fr", "us"]
    assert landcover_regions(meta("train", tables=["fr_train"])) == ["fr"]  # the US table absent
    assert landcover_regions(meta("test")) is None  # not indexed yet: not known
    assert landcover_regions(meta("us_test", "species")) is None and landcover_regions(meta("x", None, "imagenet")) \
        is None
    assert landcover_regions({"dataset": "glc20", "split": "us_test"}) == ["us"]  # the default rule: land cover
    why, split = landcover_scheme_clash(meta("fr_train"), meta("us_test"), "tr", "glc20 us_test")
    assert why == ("glc20 us_test is labelled with the US's (NLCD) land-cover codes, tr with France's (OSO): the two "
                   "schemes give one code other classes") and split == "fr_test"
    assert landcover_scheme_clash(meta("us_train"), meta("test", tables=["fr_test", "us_test"]), "a", "b")[1] == \
        "us_test"
    assert landcover_scheme_clash(meta("train", tables=["fr_train", "us_train"]), meta("fr_train"), "a", "b") is None
    assert landcover_scheme_clash(meta("us_train"), meta("fr_test"), "a", "b") is not None
    assert landcover_scheme_clash(meta("fr_train"), meta("fr_test"), "a", "b") is None
    assert landcover_scheme_clash(meta("fr_train", "species"), meta("us_train", "species"), "a", "b") is None
