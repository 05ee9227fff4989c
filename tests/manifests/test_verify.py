import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from manifest_trees import CLASSES, write_tree

from study.errors import StudyError
from study.manifests.store import finalise, write_manifest
from study.manifests.verify import verify_manifest


def test_fresh_manifest_verifies_with_files(build, cli):
    build("toy", "--sizes", "5,10", "--labeled-sizes", "4")
    code, out, _ = cli("manifest", "verify", "toy", "--files")
    assert code == 0 and "OK" in out and "every file decodes" in out


def test_edited_parquet_fails(build, cli, manifests):
    build("toy", "--sizes", "5")
    path = manifests / "toy.parquet"
    t = pq.read_table(path)
    labels = t.column("label").to_numpy().copy()
    labels[0] = (labels[0] + 1) % 4
    pq.write_table(t.set_column(1, "label", pa.array(labels)), path)
    code, _, err = cli("manifest", "verify", "toy")
    assert code == 2 and "Parquet file was changed" in err


def test_metadata_without_a_table_hash_fails_though_its_content_hash_matches(build, manifests):
    """Every build records the rows' hash: metadata without one was written by hand, and its rows are unchecked."""
    from study.manifests.store import content_hash, damage

    build("toy")
    meta = json.loads((manifests / "toy.json").read_text())
    del meta["table_hash"]
    meta["content_hash"] = content_hash(meta)
    (manifests / "toy.json").write_text(json.dumps(meta))
    assert any("records no table hash" in p for p in verify_manifest("toy"))
    assert "records no table hash" in damage("toy")


def test_edited_path_fails(build, manifests):
    build("toy")
    path = manifests / "toy.parquet"
    t = pq.read_table(path)
    paths = pc.replace_substring(t.column("path"), "cat", "cow")
    pq.write_table(t.set_column(0, "path", paths), path)
    assert any("table hash" in p for p in verify_manifest("toy"))


def test_edited_metadata_fails(build, cli, manifests):
    build("toy", "--sizes", "5")
    path = manifests / "toy.json"
    meta = json.loads(path.read_text())
    meta["sizes"] = [6]
    path.write_text(json.dumps(meta))
    code, _, err = cli("manifest", "verify", "toy")
    assert code == 2 and "JSON file was changed" in err


def test_broken_ranks_fail_nesting(build, manifests):
    build("toy")
    path = manifests / "toy.parquet"
    t = pq.read_table(path)
    rank = t.column("rank").to_numpy().copy()
    rank[1] = rank[0]
    pq.write_table(t.set_column(3, "rank", pa.array(rank)), path)
    assert any("not be nested" in p for p in verify_manifest("toy"))


def test_files_missing_or_undecodable_are_named(build, cli, tree):
    build("toy")
    (tree / "train" / "dog" / "002.png").unlink()
    (tree / "train" / "eel" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = cli("manifest", "verify", "toy")
    assert code == 0
    code, _, err = cli("manifest", "verify", "toy", "--files")
    assert code == 2
    assert "dog/002.png: missing" in err and "eel/001.png: does not decode" in err


def test_unknown_manifest(cli):
    code, _, err = cli("manifest", "verify", "nope")
    assert code == 2 and "manifest 'nope' not found" in err


def test_a_name_close_to_a_manifests_name_is_pointed_out(build, cli):
    build("toy_train")
    code, _, err = cli("manifest", "verify", "toy-train")
    assert code == 2 and "manifest 'toy-train' not found" in err and "(did you mean 'toy_train'?)" in err, err


def test_a_root_that_is_not_here_is_a_warning_and_with_files_one_problem(build, cli, tree, pool_sources, tmp_path):
    """verify said OK for a manifest whose images are gone. The manifest itself is sound (a cluster may mount the
    data on its compute nodes only), so without --files that is a warning naming the root; with --files it is one
    problem per root (not one per image), and a pool's other sources are still read."""
    build("toy")
    assert cli("manifest", "pool", "ab", "--from", "a:10", "--from", "b:6")[0] == 0
    tree.rename(tmp_path / "moved")
    for name, said in (("toy", "this manifest"), ("ab", "source a")):
        code, out, err = cli("manifest", "verify", name)
        assert code == 0 and "OK" in out and f"warning: manifest {name}: root {tree} is not a folder here" in err
        assert f"no image of {said} can be read here" in err, err
        code, _, err = cli("manifest", "verify", name, "--files")
        assert code == 2 and f"manifest {name} failed verification" in err and err.count("is not a folder here") == 1
        assert str(tree) not in err.replace(f"root {tree} is", "").replace(f"where {tree} is now", ""), err  # no
        # line per image under that root; a manifest built from the root is given its build command, a pool not
        assert (name == "toy") == ("options it was built with (the same content hash):\n    study manifest build "
                                   '--dataset imagefolder --root "$NEW_ROOT" --split train --name toy' in err), err
    for image in (tmp_path / "other").rglob("*.png"):  # source b's images gone, its folder still there
        image.unlink()
    code, _, err = cli("manifest", "verify", "ab", "--files")
    lines = err.split("\n  ")[1:]
    assert code == 2 and len(lines) == 7 and "is not a folder here" in lines[0], err  # a's root; b's 6 pooled rows
    assert all(str(tmp_path / "other") in line for line in lines[1:]), err


def test_idx_and_npy_manifests_verify_files(cli, tmp_path):
    import numpy as np
    from idx_files import write_idx

    idx = tmp_path / "fm"
    idx.mkdir()
    for stem, n in (("train", 12), ("t10k", 4)):
        write_idx(idx / f"{stem}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(idx / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    code, _, err = cli("manifest", "build", "--dataset", "fashion-mnist", "--root", idx, "--split", "train",
                       "--name", "fm", "--sizes", "6")
    assert code == 0, err
    from study.manifests import load_manifest

    assert load_manifest("fm").meta["kind"] == "idx"
    code, out, err = cli("manifest", "verify", "fm", "--files")
    assert code == 0, err
    # a corrupted variant's rows are no image files: read as the base's are, never opened by Pillow as one
    assert cli("manifest", "corrupt", "fm.jpeg-quality10", "--base", "fm", "--corruption", "jpeg")[0] == 0
    code, _, err = cli("manifest", "verify", "fm.jpeg-quality10", "--files")
    assert code == 0, err

    glc = tmp_path / "glc"
    (glc / "patches_fr" / "34" / "12").mkdir(parents=True)
    np.save(glc / "patches_fr" / "34" / "12" / "10561234.npy", np.full((8, 8, 5), 3, np.uint8))
    (glc / "occurrences_fr_train.csv").write_text("id;lat;lon;species_id\n10561234;1;2;3\n")
    code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "fr_train",
                       "--name", "glc", "--label-rule", "landcover_mode")
    assert code == 0, err
    m = load_manifest("glc")
    assert m.meta["kind"] == "npy" and m.meta["label_rule"] == "landcover_mode" and m.class_names == ["landcover_3"]
    assert cli("manifest", "verify", "glc", "--files")[0] == 0
    assert cli("manifest", "corrupt", "glc.jpeg-quality10", "--base", "glc", "--corruption", "jpeg")[0] == 0
    code, _, err = cli("manifest", "verify", "glc.jpeg-quality10", "--files")
    assert code == 0, err


def test_edited_metadata_is_one_problem_not_a_traceback(build, cli, manifests):
    """Metadata that no longer has its content hash is reported alone, whatever the edit (a field removed, a number
    written as text): nothing in it is trusted. Recomputing the hash does not make a field of the wrong type pass."""
    from study.manifests.store import content_hash

    build("toy", "--sizes", "10")
    path = manifests / "toy.json"
    built = json.loads(path.read_text())
    for key, value in (("class_names", None), ("class_names", "abc"), ("sizes", ["10k"]), ("num_images", "24")):
        meta = dict(built, **{key: value})
        if value is None:
            del meta[key]
        path.write_text(json.dumps(meta))
        code, _, err = cli("manifest", "verify", "toy")
        assert code == 2, (key, err)
        assert err.splitlines()[1:] == [f"  metadata differs from the recorded content hash (the JSON file was "
                                        f"changed): {path}"]
    meta = dict(built, sizes=["10k"])
    meta["content_hash"] = content_hash(meta)
    path.write_text(json.dumps(meta))
    code, _, err = cli("manifest", "verify", "toy")
    assert code == 2 and f"{path}: 'sizes' must be a list of whole numbers, not ['10k']" in err


def test_a_column_of_another_type_is_named_not_a_traceback(build, cli, manifests):
    build("toy")
    path = manifests / "toy.parquet"
    t = pq.read_table(path)
    pq.write_table(t.set_column(1, "label", pc.cast(t.column("label"), pa.string())), path)
    code, _, err = cli("manifest", "verify", "toy")
    assert code == 2 and f"{path}: column 'label' must hold integers, not string" in err


def _glc_manifest(cli, tmp_path, patch):
    """A GLC20 manifest of one patch, built with the species rule (the build never opens the patch)."""
    import numpy as np

    glc = tmp_path / "glc"
    (glc / "patches_fr" / "34" / "12").mkdir(parents=True)
    np.save(glc / "patches_fr" / "34" / "12" / "10561234.npy", patch)
    (glc / "occurrences_fr_train.csv").write_text("id;lat;lon;species_id\n10561234;1;2;3\n")
    code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", glc, "--split", "fr_train",
                       "--name", "glc", "--label-rule", "species")
    assert code == 0, err
    return glc / "patches_fr" / "34" / "12" / "10561234.npy"


@pytest.mark.parametrize("patch, message", [
    (np.full((8, 8, 5), 200.0, np.float32), "float patch values must lie in [0, 1]"),
    (np.zeros((5, 32, 32), np.uint8), "looks channels-first"),
    (np.zeros((8, 8, 2), np.uint8), "channel 2 asked for, the patch has 2"),
])
def test_files_are_read_as_training_reads_them(cli, tmp_path, patch, message):
    """`verify --files` opens each row with training's reader: a patch that training refuses fails verification,
    named with the reader's reason."""
    from study.manifests import load_manifest
    from study.train.images import ImageReader

    file = _glc_manifest(cli, tmp_path, patch)
    with pytest.raises(StudyError, match=re.escape(message)):
        ImageReader(load_manifest("glc")).open(load_manifest("glc").all().iloc[0])
    code, _, err = cli("manifest", "verify", "glc", "--files")
    assert code == 2 and f"{file}: does not decode (ValueError: " in err and message in err


def test_a_pool_of_one_tree_under_two_sources_fails_verification(build, cli, tmp_path, manifests):
    """Two pooled sources whose roots are one folder (one written with a trailing slash) list every shared image
    twice: verify names one."""
    build("a")
    copy = write_tree(tmp_path / "copy", CLASSES)
    build("b", "--seed", "1", root=copy)
    assert cli("manifest", "pool", "ab", "--from", "a:10", "--from", "b:10")[0] == 0
    assert cli("manifest", "verify", "ab")[0] == 0
    path = manifests / "ab.json"
    meta = json.loads(path.read_text())
    meta["roots"]["b"] = meta["roots"]["a"] + "/"  # roots are not hashed: the metadata stays intact
    path.write_text(json.dumps(meta))
    problems = verify_manifest("ab")
    twice = [p for p in problems if p.startswith("an image is listed twice (e.g. " + meta["roots"]["a"] + "/")]
    assert len(twice) == 1, problems


def test_a_missing_base_or_pooled_source_is_a_warning_naming_it(build, cli, tmp_path, manifests):
    """The variant and the pool are usable without the manifests they were made from (their rows and roots are
    their own): verify passes, and says which manifest it could not compare them with."""
    build("toy")
    copy = write_tree(tmp_path / "copy", CLASSES)
    build("other", root=copy)
    assert cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg")[0] == 0
    assert cli("manifest", "pool", "tp", "--from", "toy:8", "--from", "other:8")[0] == 0
    for suffix in (".json", ".parquet"):
        (manifests / f"toy{suffix}").unlink()
    code, out, err = cli("manifest", "verify", "toy_j")
    assert code == 0 and "OK" in out
    assert (f"[manifest] warning: manifest toy_j: base manifest 'toy' not found in {manifests}: its rows were not "
            f"compared with this manifest's") in err
    code, out, err = cli("manifest", "verify", "tp")
    assert code == 0 and "pooled source 'toy' not found" in err and "'other'" not in err


def test_files_of_16_bit_grayscale_verify_and_float_images_are_named_with_their_mode(cli, tmp_path):
    """`verify --files` reads images as training does: a 16-bit PNG scaled by its bit depth (not clipped to white)
    passes; a float TIFF, which has no bit depth to scale by, is named with its mode."""
    from PIL import Image

    root = tmp_path / "micro"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.arange(0, 65536, 256, dtype=np.uint16).reshape(16, 16)).save(root / c / "g16.png")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", root, "--split", "", "--name", "m")
    assert code == 0, err
    code, out, err = cli("manifest", "verify", "m", "--files")
    assert code == 0 and "every file decodes" in out, err
    Image.fromarray(np.full((16, 16), 0.5, np.float32)).save(root / "b" / "f.tif")
    code, _, err = cli("manifest", "build", "--dataset", "imagefolder", "--root", root, "--split", "", "--name", "f")
    assert code == 0, err
    code, _, err = cli("manifest", "verify", "f", "--files")
    assert code == 2 and f"{root / 'b' / 'f.tif'}: does not decode (ValueError: mode F (floating-point pixels)" in err


def test_a_base_rebuilt_since_with_the_same_rows_fails_verification(build, cli, manifests):
    """The variant's rows still match its base's, but the base was rebuilt (other sizes: another content hash):
    results made from the variant name a base that no longer exists as it was."""
    build("toy")
    assert cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg")[0] == 0
    for suffix in (".json", ".parquet"):
        (manifests / f"toy{suffix}").unlink()
    build("toy", "--sizes", "8")
    code, out, err = cli("manifest", "verify", "toy_j")
    assert code != 0 and "base manifest 'toy' changed since this one was made" in out + err


def _rewrite(manifests, name, edit=lambda t: t, **changes):
    """Rewrite manifest `name` with its rows edited and metadata fields changed, its table and content hashes
    recomputed: stored files that match their hashes, yet rows or metadata that do not agree."""
    table = edit(pq.read_table(manifests / f"{name}.parquet"))
    meta = dict(json.loads((manifests / f"{name}.json").read_text()), **changes)
    write_manifest(name, *finalise(name, table, meta))


def _set_first(t, column, value):
    """`t` with the first value of `column` replaced by `value` (the second's value when None)."""
    values = t.column(column).to_numpy().copy()
    values[0] = values[1] if value is None else value
    return t.set_column(t.column_names.index(column), column, pa.array(values))


def _set_where(t, column, old, new):
    """`t` with the value `old` of `column` replaced by `new`."""
    values = t.column(column).to_numpy().copy()
    values[values == old] = new
    return t.set_column(t.column_names.index(column), column, pa.array(values))


@pytest.mark.parametrize("edit, changes, problem", [
    (lambda t: t.take(pa.array(np.arange(t.num_rows)[::-1])), {}, "rows are not stored in rank order"),
    (lambda t: _set_first(t, "labeled_rank", None), {},
     "labeled ranks are not 0..N-1 each once: labeled subsets would not be nested"),
    (lambda t: t, {"sizes": [5, 25]}, "sizes [5, 25] are not increasing sizes within 24 images"),
    (lambda t: t, {"num_images": 23}, "24 rows, the metadata says 23"),
    (lambda t: _set_first(t, "label", 4), {}, "labels outside 0..3"),
    (lambda t: _set_first(t, "rank", -1), {}, "ranks are not 0..N-1 each once: subsets would not be nested"),
    (lambda t: _set_where(t, "labeled_rank", t.num_rows - 1, t.num_rows), {},
     "labeled ranks are not 0..N-1 each once: labeled subsets would not be nested"),
    (lambda t: t, {"sizes": [5, 5]}, "sizes [5, 5] are not increasing sizes within 24 images"),
    (lambda t: _set_first(t, "label", -1), {}, "labels outside 0..3"),
    (lambda t: _set_first(t, "class_name", "eel" if t.column("class_name")[0].as_py() != "eel" else "fox"), {},
     "class_name does not match class_names[label]"),
    (lambda t: t, {"labeled_sizes": [4, 25]}, "labeled sizes [4, 25] are not increasing sizes within 24 images"),
], ids=["rank-order", "labeled-rank-twice", "size-beyond-rows", "row-count", "label-beyond-classes",
        "rank-negative", "labeled-rank-beyond-rows", "size-twice", "label-negative", "class-name-not-its-labels",
        "labeled-size-beyond-rows"])
def test_rows_and_metadata_that_disagree_fail_though_their_hashes_match(build, cli, manifests, edit, changes, problem):
    """Hashes only say the files are as written: verify also checks what they say (rank order, each labeled rank
    once, sizes within the images, the row count, labels of the class list)."""
    build("toy", "--sizes", "5")
    _rewrite(manifests, "toy", edit, **changes)
    code, _, err = cli("manifest", "verify", "toy")
    assert code == 2 and problem in err, err


def test_a_variant_whose_rows_are_not_its_bases_fails_verification(build, cli, manifests):
    """A corrupted variant is its base's rows read through a corruption: one whose rows changed since it was made
    (its hashes recomputed) is named, though its base is as it was."""
    build("toy")
    assert cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg")[0] == 0
    _rewrite(manifests, "toy_j", lambda t: _set_first(t, "label", (t.column("label")[0].as_py() + 1) % 4))
    code, _, err = cli("manifest", "verify", "toy_j")
    assert code == 2 and "rows differ from those of its base manifest 'toy'" in err, err


def test_a_pool_whose_source_was_rebuilt_since_fails_verification(pool_sources, build, cli, manifests):
    """A source rebuilt with other sizes (another content hash) after the pool was made: the pool's rows still match
    the source's prefix, but the pool names a source that no longer exists as it was."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    for suffix in (".json", ".parquet"):
        (manifests / f"a{suffix}").unlink()
    build("a", "--sizes", "8")
    code, _, err = cli("manifest", "verify", "ab")
    assert code == 2 and "pooled source 'a' changed since this pool was made" in err, err


def test_a_pool_holding_fewer_rows_of_a_source_than_it_records_fails_verification(pool_sources, cli, manifests):
    """The pool records 13 images of `a` but holds its first 12: its rows are not that nested prefix."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    pool = json.loads((manifests / "ab.json").read_text())["pool"]
    _rewrite(manifests, "ab", pool=[dict(pool[0], size=13), pool[1]])
    code, _, err = cli("manifest", "verify", "ab")
    assert code == 2 and "rows of 'a' are not its nested prefix of 13 images" in err, err


def test_a_pool_holding_other_rows_of_a_source_than_its_prefix_fails_verification(pool_sources, cli, manifests):
    """As many rows of `a` as the pool records, one of them from beyond a's first 12: not that nested prefix."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    beyond = pq.read_table(manifests / "a.parquet").column("path")[20].as_py()

    def edit(t):
        paths = t.column("path").to_pylist()
        paths[t.column("source").to_pylist().index("a")] = beyond
        return t.set_column(0, "path", pa.array(paths))

    _rewrite(manifests, "ab", edit)
    code, _, err = cli("manifest", "verify", "ab")
    assert code == 2 and "rows of 'a' are not its nested prefix of 12 images" in err, err


def test_a_pool_without_its_source_column_is_one_problem_not_a_traceback(pool_sources, cli, manifests):
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    _rewrite(manifests, "ab", lambda t: t.drop_columns(["source"]))
    code, _, err = cli("manifest", "verify", "ab")
    assert code == 2 and "missing columns: source" in err, err


def test_pooled_rows_of_a_source_without_a_root_are_named_by_verify_files(pool_sources, cli, manifests):
    """Roots are not hashed: a pool whose metadata lost one source's root is still intact, and `verify --files`
    names that source once, not a traceback nor once per row; the other source's files are read."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    path = manifests / "ab.json"
    meta = json.loads(path.read_text())
    del meta["roots"]["b"]
    path.write_text(json.dumps(meta))
    problems = verify_manifest("ab", files=True)
    assert problems == ["manifest ab: row source 'b' has no root: its 8 image(s) cannot be read"], problems
    rows = pq.read_table(manifests / "ab.parquet").to_pylist()
    gone = Path(meta["roots"]["a"]) / next(r["path"] for r in rows if r["source"] == "a")
    gone.unlink()  # and source a's rows are still read
    assert verify_manifest("ab", files=True)[1:] == [f"{gone}: missing"]


def test_files_of_a_manifest_whose_metadata_lost_its_root_are_one_problem(build, manifests):
    build("toy")
    path = manifests / "toy.json"
    meta = json.loads(path.read_text())
    del meta["root"]  # roots are not hashed: the metadata is still intact
    path.write_text(json.dumps(meta))
    assert verify_manifest("toy", files=True) == [f"{path}: manifest metadata has no 'root': no image can be read"]


def test_files_of_a_manifest_the_reader_refuses_are_one_problem(build, manifests):
    """Metadata of an image kind no reader knows (its hashes recomputed): `--files` says so once, not per row."""
    build("toy")
    _rewrite(manifests, "toy", kind="webp")
    problems = verify_manifest("toy", files=True)
    assert problems == ["manifest toy: unknown image kind 'webp' (expected image, npy or idx)"], problems


def test_a_truncated_jpeg_that_opens_but_does_not_decode_is_named(build, cli, tmp_path):
    """A clean JPEG is read lazily: one whose header reads but whose pixels are cut short fails only where training
    decodes it, and verify decodes it."""
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "jpg" / "train" / c).mkdir(parents=True)
        for i in range(2):
            noise = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(noise).save(tmp_path / "jpg" / "train" / c / f"{i}.jpg")
    build("jpg", root=tmp_path / "jpg")
    jpg = tmp_path / "jpg" / "train" / "b" / "1.jpg"
    jpg.write_bytes(jpg.read_bytes()[:len(jpg.read_bytes()) // 2])
    code, _, err = cli("manifest", "verify", "jpg", "--files")
    assert code == 2 and "b/1.jpg: does not decode (OSError: image file is truncated" in err, err


def test_a_pool_whose_source_was_rebuilt_with_other_rows_is_named_once(pool_sources, build, cli, manifests):
    """A source changed since the pool was made is one problem: its new rows are not compared with the pool's."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    for suffix in (".json", ".parquet"):
        (manifests / f"a{suffix}").unlink()
    build("a", "--seed", "5")
    problems = verify_manifest("ab")
    assert problems == ["pooled source 'a' changed since this pool was made: delete this manifest's .json and "
                        ".parquet and make it again (`study plan` on a grid that uses it prints the command)"], problems


def test_verify_files_decodes_in_the_workers_it_is_given(build, monkeypatch):
    import study.manifests.verify as verify_mod

    build("toy")
    seen, real = [], verify_mod.run_jobs
    monkeypatch.setattr(verify_mod, "run_jobs", lambda *a, **k: seen.append(a[2]) or real(*a, **k))
    assert verify_manifest("toy", files=True, workers=2) == [] and seen == [2]


def test_a_damaged_jpeg_that_jobs_read_through_is_named_as_damaged(build, cli, tmp_path):
    """Damaged entropy data that Pillow refuses and a job's decoder (OpenCV's libjpeg) reads through: verify names
    it as damaged and says that jobs read it anyway (it said "does not decode", which jobs on the clean manifest
    contradicted by reading it)."""
    from image_trees import damaged_jpeg
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "jpg" / "train" / c).mkdir(parents=True)
        for i in range(2):
            noise = np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(noise).save(tmp_path / "jpg" / "train" / c / f"{i}.jpg")
    (tmp_path / "jpg" / "train" / "b" / "1.jpg").write_bytes(damaged_jpeg())
    build("jpg", root=tmp_path / "jpg")
    code, _, err = cli("manifest", "verify", "jpg", "--files")
    assert code == 2 and "b/1.jpg: damaged JPEG data (Pillow: broken data stream" in err, err
    assert "jobs read it anyway" in err and "a/0.jpg" not in err, err
    # a corrupted variant's images are decoded, then corrupted: its damaged JPEG is named as the clean one's is
    assert cli("manifest", "corrupt", "jpg.jpeg-quality10", "--base", "jpg", "--corruption", "jpeg")[0] == 0
    code, _, err = cli("manifest", "verify", "jpg.jpeg-quality10", "--files")
    assert code == 2 and "b/1.jpg: damaged JPEG data (Pillow: broken data stream" in err, err
    assert "a/0.jpg" not in err and "b/0.jpg" not in err, err
    (tmp_path / "jpg" / "train" / "a" / "0.jpg").write_bytes(b"")
    code, _, err = cli("manifest", "verify", "jpg", "--files")
    assert code == 2 and "a/0.jpg: an empty file (0 bytes)" in err, err
