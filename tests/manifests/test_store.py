"""The store's contracts not reached through a build: the table hash's inputs, the metadata it accepts, the
subset sizes a manifest answers."""
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from study.errors import StudyError
from study.manifests import load_manifest
from study.manifests.store import load_meta, table_hash


def test_table_hash_covers_the_column_names():
    """A Parquet file whose `rank` and `labeled_rank` columns were swapped holds other subsets: its rows must not
    match the recorded hash (the same bytes under other names)."""
    a = pa.table({"rank": pa.array([0, 1, 2], pa.int64()), "labeled_rank": pa.array([2, 0, 1], pa.int64())})
    b = pa.table({"labeled_rank": pa.array([0, 1, 2], pa.int64()), "rank": pa.array([2, 0, 1], pa.int64())})
    assert table_hash(a) != table_hash(b)


def test_table_hash_refuses_missing_values_naming_the_column():
    """A missing path and an empty one would hash alike: refused, not hashed."""
    with pytest.raises(StudyError, match="manifest column 'path' has missing values"):
        table_hash(pa.table({"path": ["a.png", None]}))


def test_metadata_of_another_schema_version_is_refused_naming_the_file(build, manifests):
    build("toy")
    meta_path = manifests / "toy.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(dict(meta, schema_version=2)))
    with pytest.raises(StudyError, match=f"{meta_path}: not a study manifest of schema version 1: written by a "
                                         "newer version of study; read it with that version"):
        load_meta("toy")
    meta_path.write_text(json.dumps(dict(meta, schema_version=0)))
    with pytest.raises(StudyError, match=r"schema version 1$"):
        load_meta("toy")


def test_a_negative_subset_size_is_refused(build):
    build("toy")
    m = load_manifest("toy")
    assert len(m.subset(0)) == 0 and len(m.labeled(24)) == 24
    for ask in (m.subset, m.labeled):
        with pytest.raises(StudyError, match="of -1 images asked, it has 24"):
            ask(-1)


def test_metadata_without_its_content_hash_is_a_study_error_naming_the_file(build, manifests):
    """The content hash is optional to the metadata checks (`study plan` reads metadata written by hand) but every
    job reads it: its absence is named, not a KeyError."""
    build("toy")
    meta_path = manifests / "toy.json"
    meta = json.loads(meta_path.read_text())
    del meta["content_hash"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StudyError, match=f"{meta_path}: manifest metadata has no 'content_hash'"):
        load_manifest("toy").content_hash


def test_a_table_that_is_not_parquet_is_named_once_in_the_error(build, manifests):
    """Arrow's message names the file again ("Could not open Parquet input source '<path>': ..."): the error says
    the path once, then why."""
    build("toy")
    table = manifests / "toy.parquet"
    table.write_bytes(b"not parquet")
    with pytest.raises(StudyError) as e:
        load_manifest("toy").rows
    assert str(e.value).startswith(f"{table}: unreadable manifest table: ") and str(e.value).count(str(table)) == 1
    assert str(e.value).endswith("; restore it, or delete it and its .json and build it again (`study plan` on a grid "
                                 "that uses it prints the command; the same sources give the same content hash)")


@pytest.mark.parametrize("name", ["toy\n", "toy\n.x", "../toy", "/tmp/toy", "", ".toy", "a" * 201, "toy.json"])
def test_a_name_that_is_not_one_file_name_of_the_folder_is_refused(manifests, name):
    """`re.match` with `$` let a trailing line break through: `toy\n` made the files `toy\n.parquet`, `toy\n.json`."""
    from study.manifests.store import check_name, manifest_exists

    with pytest.raises(StudyError, match="bad manifest name"):
        check_name(name)
    assert not manifest_exists(name)
    assert check_name("a" * 200) == "a" * 200 and check_name("toy_train.jpeg-quality10") == "toy_train.jpeg-quality10"


def test_a_manifest_not_found_names_the_folder_looked_in_whole(tmp_path, monkeypatch):
    """STUDY_MANIFESTS relative (or unset: ./manifests): the message gives the absolute folder, as `study plan` does,
    so that a job's log read elsewhere says where it looked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDY_MANIFESTS", "rel")
    with pytest.raises(StudyError, match=f"manifest 'nope' not found in {re.escape(str(tmp_path / 'rel'))} "
                                         r"\(STUDY_MANIFESTS\)"):
        load_meta("nope")
    monkeypatch.delenv("STUDY_MANIFESTS")  # and whence: a notebook started in another folder looks in its own
    with pytest.raises(StudyError, match=f"not found in {re.escape(str(tmp_path / 'manifests'))} "
                                         r"\(./manifests: STUDY_MANIFESTS is not set\)"):
        load_meta("nope")


def test_a_manifest_loads_from_the_folder_given_and_reads_its_rows_there(build, manifests, tmp_path, monkeypatch):
    """A notebook names the folder (`load_manifest(name, folder)`); the rows, read on first use, come from the folder
    the manifest was loaded from, whatever STUDY_MANIFESTS or the current folder is by then."""
    build("toy")
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "elsewhere"))
    m = load_manifest("toy", manifests)
    monkeypatch.chdir(tmp_path / "data")
    monkeypatch.delenv("STUDY_MANIFESTS")
    assert m.files == (manifests / "toy.parquet", manifests / "toy.json") and len(m.subset(24)) == 24
    with pytest.raises(StudyError, match=f"manifest 'toi' not found in {re.escape(str(manifests))} \\(the folder "
                                         r"given\) \(did you mean 'toy'\?\)"):
        load_manifest("toi", manifests)
    monkeypatch.setenv("STUDY_MANIFESTS", "manifests")  # relative: frozen as it resolved when loaded
    m = load_manifest("toy", folder=tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    assert m.folder == manifests and m.num_images == len(m.all()) == 24


def test_narrower_integer_columns_are_finalised_to_the_hash_of_int64_ones():
    """Labels and both ranks are stored as int64 whatever integers the table was made of: the same rows, however
    made, have one table hash (the column types are hashed)."""
    from study.manifests.store import finalise

    def rows(t):
        return pa.table({"path": ["a.png", "b.png"], "label": pa.array([1, 0], t), "class_name": ["y", "x"],
                         "rank": pa.array([0, 1], t), "labeled_rank": pa.array([1, 0], t)})

    narrow, _ = finalise("n", rows(pa.int32()), {})
    wide, _ = finalise("w", rows(pa.int64()), {})
    assert [f.type for f in narrow.schema][1:] == [pa.int64(), pa.string(), pa.int64(), pa.int64()]
    assert table_hash(narrow) == table_hash(wide)


def test_a_json_file_alone_is_no_manifest_and_a_build_of_its_name_writes_one(build, manifests):
    """A manifest is both files: a JSON copied without its Parquet file is not listed, does not exist, and building
    that name writes the manifest (no refusal as a damaged one)."""
    from study.manifests.store import list_manifests, manifest_exists

    build("toy")
    (manifests / "half.json").write_bytes((manifests / "toy.json").read_bytes())
    assert list_manifests() == ["toy"] and not manifest_exists("half")
    assert "written" in build("half")
    assert list_manifests() == ["half", "toy"] and load_manifest("half").num_images == 24


def test_a_file_is_one_key_whatever_the_trailing_slash_of_its_root():
    """A root recorded as `/data/` (roots are not hashed: a moved dataset's may be edited in) names the same files
    as `/data`: pooled sources sharing files are found either way."""
    from study.manifests.store import file_keys

    paths = pa.array(["train/a.png"])
    assert file_keys("/data/", paths).to_pylist() == file_keys("/data", paths).to_pylist() == ["/data/train/a.png"]


def test_a_row_source_without_a_root_is_a_study_error(manifests):
    """A pool's metadata whose roots lack a row's source (edited: roots are not hashed) names it, not a KeyError."""
    from study.manifests.manifest import Manifest

    m = Manifest("p", {"roots": {"a": "/data/a"}, "class_names": [], "num_images": 0})
    assert m.abs_path({"path": "x.png", "source": "a"}) == Path("/data/a/x.png")
    with pytest.raises(StudyError, match=r"^manifest p: row source 'b' has no root$"):
        m.abs_path({"path": "x.png", "source": "b"})


def test_metadata_that_is_not_json_is_named_with_its_line(build, manifests):
    build("toy")
    meta_path = manifests / "toy.json"
    meta_path.write_text('{\n  "seed": 0,\n}\n')
    with pytest.raises(StudyError, match=f"^{re.escape(str(meta_path))} line 3: malformed manifest metadata: "):
        load_meta("toy")


@pytest.mark.parametrize("key, value, message", [
    ("num_images", None, "manifest metadata has no 'num_images'"),
    ("num_images", -1, "'num_images' must be a whole number, not -1"),
    ("sizes", [10, -5], "'sizes' must be a list of whole numbers, not [10, -5]"),
    ("class_names", ["cat", 1], "'class_names' must be a list of class names, not ['cat', 1]"),
    ("roots", {"a": 1}, "'roots' must be a mapping of sources to folders, not {'a': 1}"),
])
def test_metadata_fields_the_readers_compute_with_are_checked_to_their_elements(key, value, message):
    """Metadata written by hand (its content hash recomputed): a count below 0, a list or mapping holding a value of
    another type, a required field missing is named, not a traceback where it is used."""
    from study.manifests.store import check_meta

    meta = {"class_names": ["cat"], "num_images": 1, "roots": {"a": "/data/a"}, key: value}
    if value is None:
        del meta[key]
    with pytest.raises(StudyError, match=f"^{re.escape(f'm.json: {message}')}$"):
        check_meta(meta, Path("m.json"))
    assert check_meta({"class_names": ["cat"], "num_images": 0, "sizes": [0, 5]}, Path("m.json"))


def test_a_value_in_a_message_is_cut_to_its_limit_with_an_ellipsis():
    from study.manifests.store import short_repr

    assert short_repr("x" * 8, 10) == "'xxxxxxxx'"  # 10 characters: whole
    assert short_repr("x" * 9, 10) == "'xxxxxx..."  # 11: cut to 10, the last three "..."


def _label_as_float(t):
    return t.set_column(t.schema.get_field_index("label"), "label", pc.cast(t.column("label"), pa.float64()))


def _a_missing_path(t):
    paths = t.column("path").to_pylist()
    return t.set_column(0, "path", pa.array([None, *paths[1:]], pa.string()))


@pytest.mark.parametrize("edit, problem", [
    (_label_as_float, "column 'label' must hold integers, not double"),
    (_a_missing_path, "column 'path' has missing values"),
])
def test_a_rebuild_over_rows_of_another_type_or_with_missing_values_names_the_damage(build, cli, tree, manifests,
                                                                                     edit, problem):
    """Rows the table hash cannot hash (a float column, a missing value) are damage named with the file and what
    to delete, as rows of another hash are."""
    build("toy")
    path = manifests / "toy.parquet"
    pq.write_table(edit(pq.read_table(path)), path)
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", tree, "--split", "train",
                       "--name", "toy")
    assert code == 2 and (f"manifest 'toy' already exists but is damaged: {path}: {problem} (the Parquet file was "
                          "changed)") in err, err


def test_rows_of_large_strings_or_from_pandas_finalise_as_plain_ones():
    """finalise's table is the same whatever arrays made it: large strings are stored as strings (the column types
    are hashed) and no pandas schema metadata reaches the Parquet file."""
    from study.manifests.store import finalise

    plain = pa.table({"path": ["a.png", "b.png"], "label": pa.array([0, 1], pa.int64())})
    large = pa.table({"path": pa.array(["a.png", "b.png"], pa.large_string()), "label": pa.array([0, 1], pa.int64())})
    (p, p_meta), (g, g_meta), (d, _) = (finalise("x", t, {}) for t in (plain, large, pa.Table.from_pandas(
        plain.to_pandas())))
    assert g.schema.field("path").type == pa.string() and g_meta["table_hash"] == p_meta["table_hash"]
    assert d.schema.metadata is None and d.equals(p)


def test_a_manifest_reads_its_kind_channels_and_root_per_source_or_names_the_missing_root(manifests):
    """Per-source kinds and channels where a pool records them, else the manifest's own (kind: image by default); a
    manifest of one root whose metadata lost it is a StudyError naming the JSON file, not a TypeError."""
    from study.manifests.manifest import Manifest

    pool = Manifest("p", {"kinds": {"a": "npy", "b": "image"}, "source_channels": {"a": [3, 1, 2]}, "channels": [0]})
    assert pool.kind_of("a") == "npy" and pool.channels_of("a") == [3, 1, 2] and pool.channels_of("b") is None
    one = Manifest("o", {"channels": [0, 1, 2]})
    assert one.kind_of() == "image" and one.channels_of() == [0, 1, 2]
    with pytest.raises(StudyError, match=re.escape(f"{manifests / 'o.json'}: manifest metadata has no 'root'")):
        one.abs_path("x.png")


def test_an_empty_content_hash_is_refused_and_the_table_keeps_one_copy_of_the_rows(build, manifests):
    """`content_hash` refuses an empty value as a missing one; `table` lets the Arrow rows go once it has them."""
    from study.manifests.manifest import Manifest

    with pytest.raises(StudyError, match="has no 'content_hash'"):
        Manifest("toy", {"content_hash": ""}).content_hash
    build("toy")
    m = load_manifest("toy")
    assert len(m.table) == 24 and m._rows is None


def test_a_relative_manifests_folder_is_frozen_when_the_manifest_is_loaded(build, manifests, tmp_path, monkeypatch):
    """STUDY_MANIFESTS relative to the folder a notebook started in: rows read after a chdir still come from there."""
    build("toy")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDY_MANIFESTS", "manifests")
    m = load_manifest("toy")
    monkeypatch.chdir(tmp_path / "data")
    assert m.folder == manifests and len(m.all()) == 24
