import argparse
import csv
import io
import json

import numpy as np
import pytest
from manifest_trees import rehash

import study.manifests.materialize as materialize_mod
import study.manifests.verify as verify_mod
from study.corruptions import CORRUPTIONS
from study.corruptions.base import Corruption, Param, register
from study.manifests import load_manifest
from study.manifests.report import export_csv


def test_show_names_the_channels_of_glc20_patches(cli, tmp_path):
    """The channels an image is made of (`--channels 3,1,2`: NIR as red) are shown beside the label rule."""
    root = tmp_path / "glc"
    root.mkdir()
    (root / "occurrences_us_train.csv").write_text("id;lat;lon;species_id\n1234567;40;-70;5\n7654301;41;-71;9\n")
    for i in (1234567, 7654301):
        folder = root / f"patches_us/{i % 100:02d}/{i // 100 % 100:02d}"
        folder.mkdir(parents=True)
        np.save(folder / f"{i}.npy", np.zeros((8, 8, 5), np.uint8))
    for name, channels in (("rgb", []), ("nir", ["--channels", "3,1,2"])):
        code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", root, "--split", "us_train", "--name",
                           name, *channels)
        assert code == 0, err
    assert "\nlabel rule: landcover_center\nchannels: 0,1,2\n" in cli("manifest", "show", "rgb")[1]
    assert "\nchannels: 3,1,2\n" in cli("manifest", "show", "nir")[1]


def test_list_show_export(build, cli, tmp_path):
    tax = tmp_path / "t.csv"
    tax.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\n")
    build("toy", "--sizes", "5,10", "--labeled-sizes", "4,8", "--taxonomy", tax)
    code, out, _ = cli("manifest", "list")
    assert code == 0 and out.splitlines()[1].split()[:5] == ["toy", "imagefolder", "train", "24", "4"]
    code, out, _ = cli("manifest", "show", "toy")
    assert code == 0 and "images per class" in out
    lines = {ln.split()[1]: ln.split()[2:] for ln in out.splitlines() if ln[:1].isdigit()}
    assert lines["cat"][0] == "9" and lines["cat"][3] == "1" and lines["fox"][4] == "2"
    code, out, _ = cli("manifest", "export", "toy", "--labeled", "8")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == "path,label,class_name,group"
    assert len(rows) == 8 and rows[0]["path"] == load_manifest("toy").labeled(8)["path"].iloc[0]
    code, out, _ = cli("manifest", "export", "toy")
    assert len(out.splitlines()) == 25


def test_list_names_the_folder_it_looked_in_and_a_missing_one(cli, manifests, monkeypatch, tmp_path):
    code, out, _ = cli("manifest", "list")  # STUDY_MANIFESTS names a folder not made yet
    assert code == 0 and out == f"no manifests in {manifests} (no such folder; STUDY_MANIFESTS names it)\n"
    manifests.mkdir()
    assert cli("manifest", "list")[1] == f"no manifests in {manifests}\n"
    monkeypatch.delenv("STUDY_MANIFESTS")  # the default, ./manifests, here missing
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    said = cli("manifest", "list")[1]
    assert said == "no manifests in manifests (no such folder; the default: set STUDY_MANIFESTS)\n"
    (tmp_path / "afile").write_text("")  # STUDY_MANIFESTS naming a file: said "no such folder"
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "afile"))
    said = cli("manifest", "list")[1]
    assert said == f"no manifests in {tmp_path / 'afile'} (a file, not a folder; STUDY_MANIFESTS names it)\n"


def test_a_manifest_json_without_its_parquet_says_which_file_is_missing(build, cli, manifests):
    build("toy")
    (manifests / "toy.parquet").unlink()  # the JSON copied alone
    for action in (["show", "toy"], ["verify", "toy"], ["export", "toy"]):
        code, _, err = cli("manifest", *action)
        assert code == 2 and (f"manifest 'toy' not found in {manifests}: toy.json is there without toy.parquet (a "
                              "manifest is both files") in err, (action, err)


def test_a_manifest_parquet_without_its_json_names_a_killed_build(build, cli, manifests):
    """A build killed after its Parquet write, before its JSON: not a manifest, and the error says what is there."""
    build("toy")
    (manifests / "toy.json").unlink()
    code, _, err = cli("manifest", "show", "toy")
    assert code == 2 and (f"manifest 'toy' not found in {manifests}: toy.parquet is there without toy.json, the file "
                          "a build writes last (a killed build") in err, err
    build("toy")  # a rebuild makes it whole
    assert cli("manifest", "show", "toy")[0] == 0


@pytest.mark.parametrize("args, message", [
    (["--dataset", "imagefolder", "--root", "{tmp}/missing", "--split", "train"], "not found"),
    (["--dataset", "imagefoldr", "--root", "{tree}", "--split", "train"], "did you mean 'imagefolder'"),
    (["--dataset", "imagefolder", "--root", "{tree}", "--split", "train", "--sizes", "1M"], "larger than"),
    (["--dataset", "imagefolder", "--root", "{tree}", "--split", "train", "--sizes", "lots"], "not a size"),
    (["--dataset", "imagefolder", "--root", "{tree}", "--split", "train", "--labeled-sizes", "30"], "larger than"),
    (["--dataset", "imagefolder", "--root", "{tree}", "--split", "train", "--label-rule", "species"], "glc20 only"),
    (["--dataset", "inat21", "--root", "{tree}", "--split", "train"], "annotation file not found"),
    (["--dataset", "inat21", "--root", "{bad_json}", "--split", "train"], "train.json line 2 column"),
    (["--dataset", "inat21", "--root", "{dup}", "--split", "train"], "listed twice"),
    (["--dataset", "places365", "--root", "{places_bad}", "--split", "train"], "out of range"),
    (["--dataset", "glc20", "--root", "{glc_bad}", "--split", "us_train"], "line 3"),
])
def test_bad_input_exits_2_and_writes_nothing(cli, tree, tmp_path, manifests, args, message):
    (tmp_path / "bad_json").mkdir()
    (tmp_path / "bad_json" / "train.json").write_text('{"images": [\n {"id": 1,, }]}')
    (tmp_path / "dup").mkdir()
    (tmp_path / "dup" / "train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "train/a.jpg"}, {"id": 1, "file_name": "train/b.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 0}], "categories": [{"id": 0, "name": "a"}]}))
    places = tmp_path / "places_bad"
    (places / "data_256").mkdir(parents=True)
    (places / "categories_places365.txt").write_text("/a/airfield 0\n")
    (places / "places365_train_standard.txt").write_text("/a/airfield/1.jpg 0\n/a/airfield/2.jpg 4\n")
    (tmp_path / "glc_bad").mkdir()
    (tmp_path / "glc_bad" / "occurrences_us_train.csv").write_text("id;lat;lon;species_id\n1;2;3;4\nx;2;3;4\n")
    fill = {"tmp": tmp_path, "tree": tree, "bad_json": tmp_path / "bad_json", "dup": tmp_path / "dup",
            "places_bad": places, "glc_bad": tmp_path / "glc_bad"}
    argv = ["manifest", "build", "--name", "bad"] + [a.format(**fill) for a in args]
    code, out, err = cli(*argv)
    assert code == 2, (out, err)
    assert message in err and err.strip().splitlines()[-1].startswith("study: error:")
    assert not manifests.exists() or not list(manifests.iterdir())


def test_bad_manifest_name(cli, tree, manifests):
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "../escape")
    assert code == 2 and "bad manifest name" in err


def test_export_into_a_closed_pipe_ends_quietly(build):
    """`study manifest export toy | head -1`: the reader leaves early; no traceback."""
    import subprocess
    import sys

    build("toy")
    proc = subprocess.Popen([sys.executable, "-m", "study.cli", "manifest", "export", "toy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_export_onto_a_full_disk_is_one_error_line(build):
    """A filesystem error no command foresaw (here stdout on a full device) is one line and exit 2, not a
    traceback."""
    import subprocess
    import sys

    build("toy")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "study.cli", "manifest", "export", "toy"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == "study: error: No space left on device\n", proc.stderr


def test_a_folder_that_cannot_be_written_is_named_and_no_rows_are_left(cli, tree, tmp_path, monkeypatch, manifests):
    args = ("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train", "--name", "toy")
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "afile" / "manifests"))
    code, _, err = cli(*args)  # said before the indexing (hours for a real dataset), not after it
    assert code == 2 and (f"$STUDY_MANIFESTS {tmp_path}/afile/manifests: cannot be a folder: {tmp_path}/afile is a "
                          "file") in err and "indexing" not in err, err
    monkeypatch.setenv("STUDY_MANIFESTS", str(manifests))
    (manifests / "toy.json").mkdir(parents=True)  # the metadata cannot be written: the rows are not left alone
    code, _, err = cli(*args)
    assert code == 2 and f"cannot write manifest toy in {manifests}" in err
    assert not (manifests / "toy.parquet").exists() and not list(manifests.glob(".*.tmp"))


def test_show_refuses_edited_metadata_and_labels_without_a_class(build, cli, manifests):
    """`show` neither crashes on an edited manifest nor leaves out the images of a class edited away: it names the
    file and the field."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    build("toy", "--sizes", "10")
    path = manifests / "toy.json"
    built = json.loads(path.read_text())
    path.write_text(json.dumps(dict(built, class_names=["cat", "dog", "eel"])))
    code, out, err = cli("manifest", "show", "toy")
    assert code == 2 and not out and f"{path}: metadata differs from the recorded content hash" in err
    for key, value, message in (("class_names", "abc", "'class_names' must be a list of class names, not 'abc'"),
                                ("sizes", ["10k"], "'sizes' must be a list of whole numbers, not ['10k']")):
        path.write_text(json.dumps(dict(built, **{key: value})))
        code, out, err = cli("manifest", "show", "toy")
        assert code == 2 and not out and f"{path}: {message}" in err
    del built["class_names"]
    path.write_text(json.dumps(built))
    code, _, err = cli("manifest", "show", "toy")
    assert code == 2 and f"{path}: manifest metadata has no 'class_names'" in err
    build("other")
    table = manifests / "other.parquet"
    t = pq.read_table(table)
    pq.write_table(t.set_column(1, "label", pa.array([7] * t.num_rows, pa.int64())), table)
    code, out, err = cli("manifest", "show", "other")
    assert code == 2 and not out and f"{table} (manifest other): rows differ from the recorded table hash" in err
    rehash(manifests, "other")  # hashes recomputed: the edit is consistent
    code, out, err = cli("manifest", "show", "other")
    assert code == 2 and not out and f"{table}: labels outside 0..3, the classes of other.json" in err
    pq.write_table(t.set_column(1, "label", pa.array(["1"] * t.num_rows)), table)
    code, out, err = cli("manifest", "show", "other")
    assert code == 2 and f"{table}: column 'label' must hold integers, not string" in err


def test_list_and_show_count_each_subset_by_its_own_sizes(build, cli):
    build("toy", "--sizes", "5,10", "--labeled-sizes", "4,8")
    code, out, _ = cli("manifest", "list")
    assert code == 0 and out.splitlines()[1].split()[5:7] == ["5,10", "4,8"]  # sizes, labeled
    code, out, _ = cli("manifest", "show", "toy")
    per_class = [ln.split()[2:] for ln in out.splitlines() if ln[:1].isdigit()]  # all, 5, 10, labeled 4, labeled 8
    assert code == 0 and [sum(int(r[k]) for r in per_class) for k in range(5)] == [24, 5, 10, 4, 8]
    m = load_manifest("toy")  # each column counts its own subset's images per class, not only as many
    for k, rows in enumerate((m.all(), m.subset(5), m.subset(10), m.labeled(4), m.labeled(8))):
        assert [int(r[k]) for r in per_class] == rows["label"].value_counts().reindex(range(4), fill_value=0).tolist()


def test_list_and_show_as_json_hold_the_tables_values_whole(build, cli, manifests, monkeypatch):
    """--format json, for scripts: list's rows with whole values (sizes as numbers, the whole hash; an unreadable
    manifest says why), show's metadata as written and its images per class under the table's column names."""
    build("toy", "--sizes", "5,10", "--labeled-sizes", "4,8")
    (manifests / "bad.json").write_text("{")
    (manifests / "bad.parquet").write_bytes(b"")
    code, out, _ = cli("manifest", "list", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    m = load_manifest("toy")
    assert code == 0 and rows["toy"] == {
        "name": "toy", "dataset": "imagefolder", "split": "train", "num_images": 24, "num_classes": 4,
        "sizes": [5, 10], "labeled_sizes": [4, 8], "corruption": None, "content_hash": m.content_hash,
        "unreadable": None}
    assert rows["bad"]["unreadable"] and rows["bad"]["num_images"] is None
    code, out, _ = cli("manifest", "show", "toy", "--format", "json")
    got = json.loads(out)
    assert code == 0 and got["meta"] == json.loads((manifests / "toy.json").read_text())
    counts = got["images_per_class"]
    assert list(counts) == ["class_names", "all", "5", "10", "labeled 4", "labeled 8"]
    assert counts["class_names"] == list(m.class_names)
    assert counts["labeled 8"] == m.labeled(8)["label"].value_counts().reindex(range(4), fill_value=0).tolist()
    monkeypatch.setenv("STUDY_MANIFESTS", str(manifests / "none"))  # no manifests: [] and, on stderr, why
    code, out, err = cli("manifest", "list", "--format", "json")
    assert (code, json.loads(out)) == (0, []) and err == f"study: warning: no manifests in {manifests / 'none'} " \
                                                          "(no such folder; STUDY_MANIFESTS names it)\n", err


def test_labeled_uniform_draws_labeled_subsets_by_frequency_not_per_class(build):
    """--labeled-uniform: the labeled subsets follow the classes' frequencies (cat has 9 of the 24 images), not an
    equal share per class as without it."""
    build("bal", "--labeled-sizes", "16")
    build("uni", "--labeled-sizes", "16", "--labeled-uniform")
    assert load_manifest("bal").labeled(16)["label"].value_counts().tolist() == [4, 4, 4, 4]
    uniform = load_manifest("uni")
    assert uniform.labeled(16)["label"].value_counts().tolist() != [4, 4, 4, 4]
    assert uniform.meta["labeled_balanced"] is False


def test_materialize_subset_writes_that_subsets_images_only(build, cli, tmp_path):
    build("toy", "--sizes", "5,10")
    code, out, err = cli("manifest", "materialize", "toy", "--out", tmp_path / "png", "--subset", "5")
    assert code == 0, err
    assert "5 images written, 0 already there" in out
    assert len(list((tmp_path / "png").rglob("*.png"))) == 5


def test_build_channels_picks_the_patch_channels_of_a_glc20_image(cli, tmp_path):
    """--channels 3,1,2 (NIR as red) is recorded in the manifest and read through it; without it, RGB."""
    glc = tmp_path / "glc"
    (glc / "patches_fr" / "34" / "12").mkdir(parents=True)
    patch = np.arange(8 * 8 * 5, dtype=np.uint8).reshape(8, 8, 5)
    np.save(glc / "patches_fr" / "34" / "12" / "10561234.npy", patch)
    (glc / "occurrences_fr_train.csv").write_text("id;lat;lon;species_id\n10561234;1;2;3\n")
    for name, extra in (("nir", ["--channels", "3,1,2"]), ("rgb", [])):
        code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "fr_train",
                           "--name", name, "--label-rule", "landcover_mode", *extra)
        assert code == 0, err
    assert load_manifest("nir").meta["channels"] == [3, 1, 2] and load_manifest("rgb").meta["channels"] == [0, 1, 2]


def test_verify_and_materialize_run_the_workers_they_are_given(build, cli, tmp_path, monkeypatch):
    """--workers reaches the file checks of `verify --files` and the writers of `materialize`."""
    build("toy", "--sizes", "5")
    seen = {}
    real_verify, real_materialize = verify_mod.verify_manifest, materialize_mod.materialize

    def verify(*a, **k):
        seen["verify"] = k.get("workers")
        return real_verify(*a, **k)

    def materialize(*a, **k):
        seen["materialize"] = k.get("workers")
        return real_materialize(*a, **k)

    monkeypatch.setattr(verify_mod, "verify_manifest", verify)
    monkeypatch.setattr(materialize_mod, "materialize", materialize)
    assert cli("manifest", "verify", "toy", "--files", "--workers", "3")[0] == 0
    code, out, err = cli("manifest", "materialize", "toy", "--out", tmp_path / "png", "--workers", "2")
    assert code == 0 and "24 images written" in out, err
    assert seen == {"verify": 3, "materialize": 2}


def test_corrupt_help_lists_every_registered_corruption_with_its_defaults(cli, capsys):
    """The help is read from the registry, so a corruption's one new file shows up there too."""
    register(Corruption("help_noise", {"sigma": Param(0.5, float)}, lambda img, kw, rng: img))
    try:
        with pytest.raises(SystemExit):
            cli("manifest", "corrupt", "--help")
    finally:
        CORRUPTIONS.unregister("help_noise")
    shown = " ".join(capsys.readouterr().out.split())
    assert "downsample: factor=2, interpolation=bicubic" in shown
    assert "none: no parameters" in shown and "help_noise: sigma=0.5" in shown


def test_export_puts_the_taxonomy_levels_coarse_to_fine_before_other_columns(build, cli, tmp_path):
    """The levels as the taxonomy names them (`order` before `family`, not alphabetically), after the class name."""
    tax = tmp_path / "t.csv"
    tax.write_text("order,family,class_name\ncarnivora,felidae,cat\ncarnivora,canidae,dog\n"
                   "anguilliformes,anguillidae,eel\ncarnivora,canidae,fox\n")
    build("toy", "--taxonomy", tax)
    code, out, _ = cli("manifest", "export", "toy", "--subset", "3")
    assert code == 0 and out.splitlines()[0] == "path,label,class_name,order,family"


def test_export_of_both_a_subset_and_a_labeled_subset_is_refused(build):
    """The command's flags exclude each other; the function refuses both, not one silently."""
    from study.errors import StudyError
    from study.manifests.report import export_csv

    build("toy", "--sizes", "5")
    with pytest.raises(StudyError, match="give --subset or --labeled, not both"):
        export_csv("toy", io.StringIO(), subset=5, labeled=4)


def test_show_refuses_a_label_one_past_the_last_class(build, cli, manifests):
    """Label 4 of 4 classes has no class either (the per-class counts would leave its image out)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    build("toy")
    table = manifests / "toy.parquet"
    t = pq.read_table(table)
    labels = t.column("label").to_pylist()
    pq.write_table(t.set_column(1, "label", pa.array([4] + labels[1:], pa.int64())), table)
    rehash(manifests, "toy")  # hashes recomputed: the edit is consistent
    code, out, err = cli("manifest", "show", "toy")
    assert code == 2 and not out and f"{table}: labels outside 0..3, the classes of toy.json" in err


def test_list_show_and_export_report_what_the_manifest_holds(build, cli, manifests, pool_sources):
    """list: the corruption and the content hash's first 12 characters, a manifest it cannot read named as such;
    show: the content hash; export --subset: that subset's rows in rank order (a pool's with their source), as
    plain lines."""
    assert cli("manifest", "corrupt", "a.jpeg-quality10", "--base", "a", "--corruption", "jpeg:quality=10")[0] == 0
    (manifests / "broken.json").write_text("{")
    (manifests / "broken.parquet").write_bytes((manifests / "a.parquet").read_bytes())
    code, out, _ = cli("manifest", "list")
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:]}
    a = load_manifest("a")
    assert code == 0 and rows["a.jpeg-quality10"][-2:] == ["jpeg:quality=10", load_manifest("a.jpeg-quality10")
                                                          .content_hash[:12]]
    assert rows["a"][-2:] == ["-", a.content_hash[:12]] and rows["broken"][1] == "unreadable:"
    assert f"\ncontent hash: {a.content_hash}\n" in cli("manifest", "show", "a")[1]
    code, out, _ = cli("manifest", "export", "a", "--subset", "5")
    assert code == 0 and "\r" not in out
    assert [r["path"] for r in csv.DictReader(io.StringIO(out))] == a.subset(5)["path"].tolist()
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    buffer = io.StringIO()
    assert export_csv("ab", buffer, labeled=None) == 20
    assert buffer.getvalue().splitlines()[0] == "path,label,class_name,source"


def test_show_refuses_a_negative_label(build, cli, manifests):
    import pyarrow as pa
    import pyarrow.parquet as pq

    build("toy")
    table = manifests / "toy.parquet"
    t = pq.read_table(table)
    pq.write_table(t.set_column(1, "label", pa.array([-1] + t.column("label").to_pylist()[1:], pa.int64())), table)
    rehash(manifests, "toy")
    code, out, err = cli("manifest", "show", "toy")
    assert code == 2 and not out and f"{table}: labels outside 0..3, the classes of toy.json" in err


def test_the_command_line_refuses_what_it_cannot_use_and_says_what_it_wrote(build, cli, tree, tmp_path):
    """A bare `study manifest` is a usage error; channels with a gap, zero workers and a corrupt without
    --corruption are refused; materialize writes in one process unless told; a build says its content hash."""
    from study.manifests.cli import _channels

    assert cli("manifest")[0] == 2
    with pytest.raises(argparse.ArgumentTypeError, match="expected channel numbers"):
        _channels("0,,2")
    out = build("toy")
    assert f"content hash {load_manifest('toy').content_hash[:16]}" in out
    for argv in (["verify", "toy", "--workers", "0"], ["corrupt", "x", "--base", "toy"]):
        with pytest.raises(SystemExit) as exited:  # argparse's usage error
            cli("manifest", *argv)
        assert exited.value.code == 2, argv
    seen = {}
    real = materialize_mod.materialize

    def materialize(*a, **k):
        seen.update(k)
        return real(*a, **k)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(materialize_mod, "materialize", materialize)
        assert cli("manifest", "materialize", "toy", "--out", tmp_path / "png")[0] == 0
    assert seen["workers"] == 1


def _two_region_glc(root) -> None:
    """GLC20 tables of both regions, every patch's land cover code 11 (OSO's and NLCD's code 11 are other classes)."""
    tables = {"fr_train": [10561234, 10561235], "fr_test": [10561236], "us_train": [1234567], "us_test": [1234568]}
    for table, ids in tables.items():
        species = table.endswith("_train")
        (root / f"occurrences_{table}.csv").parent.mkdir(parents=True, exist_ok=True)
        (root / f"occurrences_{table}.csv").write_text("id;lat;lon" + ";species_id" * species + "\n"
                                                       + "".join(f"{i};1;2" + ";5" * species + "\n" for i in ids))
        for i in ids:
            folder = root / ("patches_fr" if table.startswith("fr") else "patches_us") / f"{i % 100:02d}" / \
                f"{i // 100 % 100:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{i}.npy", np.full((8, 8, 5), 11, np.uint8))


def test_classes_from_a_manifest_of_another_regions_land_cover_is_refused(cli, tmp_path):
    """`--split us_test --classes-from` a fr_train manifest gave the US's NLCD code 11 (open water) France's class
    landcover_11 (OSO's coniferous forest) without a word (with --drop-other-classes, whatever the codes): refused,
    before the patches are read where the split names its region, naming the split to build instead."""
    glc = tmp_path / "glc"
    _two_region_glc(glc)
    assert cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "fr_train", "--name", "tr")[0] == 0
    code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "us_test", "--name", "te",
                       "--classes-from", "tr", "--drop-other-classes")
    assert code == 2 and "indexing" not in err, err
    assert ("--classes-from tr: glc20 us_test is labelled with the US's (NLCD) land-cover codes, tr with France's "
            "(OSO): the two schemes give one code other classes: build it from tr's region, --split fr_test") in err
    code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "test", "--name", "te",
                       "--classes-from", "tr")  # both regions: known once the tables are read
    assert code == 2 and "glc20 test is labelled with France's (OSO) and the US's (NLCD) land-cover codes" in err, err
    assert cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "fr_test", "--name", "te",
               "--classes-from", "tr")[0] == 0
    for name, split in (("sp", "fr_train"), ("sp_us", "us_train")):  # species ids: one id space for both regions
        extra = ["--classes-from", "sp"] if name == "sp_us" else []
        code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", split, "--name", name,
                           "--label-rule", "species", *extra)
        assert code == 0, err
