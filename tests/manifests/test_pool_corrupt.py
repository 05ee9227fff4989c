import json
import re
from pathlib import Path

import numpy as np
import pytest
from manifest_trees import CLASSES, materialized, write_tree
from PIL import Image

from study.corruptions import apply_corruption
from study.manifests import load_manifest
from study.manifests.build import describe_difference
from study.manifests.parallel import image_reader
from study.manifests.pool import _interleave


def test_pool_takes_each_sources_nested_prefix_and_is_nested(pool_sources, cli):
    code, out, err = cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8", "--sizes", "10,20",
                         "--labeled-sizes", "6")
    assert code == 0, err
    m, a, b = load_manifest("ab"), load_manifest("a"), load_manifest("b")
    assert (m.meta["sizes"], m.meta["labeled_sizes"]) == ([10, 20], [6])  # the pool's own nested sizes
    t = m.all()
    assert len(t) == 20 and set(t["source"]) == {"a", "b"}
    assert set(t.loc[t.source == "a", "path"]) == set(a.subset(12)["path"])
    assert set(t.loc[t.source == "b", "path"]) == set(b.subset(8)["path"])
    first = m.subset(10)
    assert (first.source == "a").sum() == 6 and (first.source == "b").sum() == 4  # in proportion
    assert set(zip(first.source, first.path)) < set(zip(m.subset(20).source, m.subset(20).path))
    assert m.num_classes == 6 and m.class_names[4] == "b/x"
    for _, row in t.iterrows():
        assert m.abs_path(row).is_file()
    assert all(p.is_file() for p in m.abs_paths(t))
    assert m.meta["roots"] == {"a": a.meta["root"], "b": b.meta["root"]}
    assert m.meta["kind"] == "image" and "kinds" not in m.meta  # one kind: the metadata of a plain manifest
    for src, part, n in (("a", a, 12), ("b", b, 8)):  # labeled order: each source's, restricted to its prefix
        kept = set(part.subset(n)["path"])
        want = [p for p in part.labeled(part.num_images)["path"] if p in kept]
        pooled = m.labeled(20)
        assert list(pooled.loc[pooled.source == src, "path"]) == want, src
    code, out, err = cli("manifest", "verify", "ab", "--files")
    assert code == 0, err
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:12", "--from", "b:13")
    assert code == 2 and "has only 12 images" in err


def test_a_pool_without_sizes_has_one_size_of_all_its_images_and_no_labeled_size(pool_sources, cli):
    assert cli("manifest", "pool", "plain", "--from", "a:12", "--from", "b:8")[0] == 0
    plain = load_manifest("plain")
    assert (plain.meta["sizes"], plain.meta["labeled_sizes"]) == ([20], [])
    # its seed (what a corrupted pool's noise is keyed by) is its first source's
    assert cli("manifest", "pool", "plain_ba", "--from", "b:8", "--from", "a:12")[0] == 0
    assert (plain.meta["seed"], load_manifest("plain_ba").meta["seed"]) == (0, 1)
    code, _, err = cli("manifest", "pool", "../plain", "--from", "a:12", "--from", "b:8")
    assert code == 2 and "bad manifest name '../plain'" in err


def test_corrupted_variant_shares_rows_and_records_spec(build, cli, manifests):
    build("toy", "--sizes", "5")
    code, _, err = cli("manifest", "corrupt", "toy_ds2", "--base", "toy", "--corruption", "downsample:factor=2")
    assert code == 0, err
    assert "warning: a grid with corruption 'downsample:factor=2' on toy looks for manifest toy.downsample-factor2, " \
           "not toy_ds2" in err  # written all the same: a user may name it for their own use
    code, _, err = cli("manifest", "corrupt", "toy.downsample-factor2", "--base", "toy", "--corruption",
                       "downsample:factor=2")
    assert code == 0 and "warning" not in err
    base, m = load_manifest("toy"), load_manifest("toy_ds2")
    assert m.meta["table_hash"] == base.meta["table_hash"] and m.content_hash != base.content_hash
    assert m.meta["base"] == {"name": "toy", "content_hash": base.content_hash}
    assert str(m.corruption) == "downsample:factor=2" and m.corruption.slug == "downsample-factor2"
    assert m.table.equals(base.table)
    code, _, _ = cli("manifest", "verify", "toy_ds2")
    assert code == 0
    code, _, err = cli("manifest", "corrupt", "x", "--base", "toy", "--corruption", "blurr")
    assert code == 2 and "study: error: --corruption: unknown corruption 'blurr'" in err, err  # the flag, named
    assert not (manifests / "x.json").exists()
    code, _, err = cli("manifest", "corrupt", "x", "--base", "toy", "--corruption", "jpeg:qual=3")
    assert code == 2 and "unknown parameter 'qual'" in err and not (manifests / "x.parquet").exists()
    code, _, err = cli("manifest", "corrupt", "x", "--base", "toy", "--corruption", " none")
    assert code == 2 and "a grid with corruption none reads toy itself" in err and not (manifests / "x.json").exists()
    code, _, err = cli("manifest", "corrupt", "../x", "--base", "toy", "--corruption", "jpeg")
    assert code == 2 and "bad manifest name '../x'" in err and not (manifests.parent / "x.json").exists()


def test_materialize_is_resumable_and_byte_identical(build, cli, tmp_path):
    build("toy")
    assert cli("manifest", "corrupt", "toy_sp", "--base", "toy", "--corruption", "salt_pepper:fraction=0.3")[0] == 0
    out = tmp_path / "out"
    code, stdout, err = cli("manifest", "materialize", "toy_sp", "--out", out, "--workers", "2")
    assert code == 0, err
    files = sorted(out.rglob("*.png"))
    assert len(files) == 24 and "24 images written" in stdout
    m = load_manifest("toy_sp")
    row = m.table.iloc[0]
    expected = apply_corruption(m.corruption, Image.open(m.abs_path(row)).convert("RGB"), f"0:{row['path']}")
    got = Image.open(out / f"{row['path']}.png")  # x.png -> x.png.png: x.jpg and x.png stay apart
    assert np.array_equal(np.asarray(got), np.asarray(expected))
    before = {p: p.read_bytes() for p in files}
    files[3].unlink()
    code, stdout, _ = cli("manifest", "materialize", "toy_sp", "--out", out)
    assert code == 0 and "1 images written, 23 already there" in stdout
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.png"))} == before
    assert not list(out.rglob("*.tmp"))
    (tmp_path / "afile").write_text("")
    code, _, err = cli("manifest", "materialize", "toy_sp", "--out", tmp_path / "afile")
    assert code == 2 and "afile: exists and is not a folder" in err  # not a traceback
    code, _, err = cli("manifest", "materialize", "toy_sp", "--out", tmp_path / "afile" / "sub")
    assert code == 2 and f"sub: cannot be a folder: {tmp_path / 'afile'} is a file" in err
    blocked = tmp_path / "blocked"
    (blocked / f"{row['path']}.png").mkdir(parents=True)  # a folder where a file goes: that file cannot be written
    code, _, err = cli("manifest", "materialize", "toy_sp", "--out", blocked)
    assert code == 2 and "1 image(s) could not be written" in err and f"cannot write {blocked}/{row['path']}.png" in err
    assert not list(blocked.rglob(".*.tmp"))


def test_materialize_never_counts_another_manifests_images_as_its_own(build, cli, tmp_path):
    """A folder holding the clean images is not taken for the corrupted variant's (same file names): refused."""
    build("toy")
    assert cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg")[0] == 0
    out = tmp_path / "out"
    assert cli("manifest", "materialize", "toy", "--out", out)[0] == 0
    code, _, err = cli("manifest", "materialize", "toy_j", "--out", out)
    assert code == 2 and f"--out {out}: holds the images of manifest toy" in err and "not of toy_j" in err
    build("toy2")  # the same content under another name: its images, and the stamp then names it
    assert load_manifest("toy2").content_hash == load_manifest("toy").content_hash
    assert cli("manifest", "materialize", "toy2", "--out", out)[0] == 0
    assert json.loads((out / ".study-materialize.json").read_text())["manifest"] == "toy2"
    stray = tmp_path / "stray"
    first = sorted(out.rglob("*.png"))[0]
    (stray / first.relative_to(out)).parent.mkdir(parents=True)
    (stray / first.relative_to(out)).write_bytes(first.read_bytes())
    code, _, err = cli("manifest", "materialize", "toy_j", "--out", stray)  # files of unknown origin
    assert code == 2 and "already holds 1 of the files manifest toy_j would write" in err
    code, stdout, err = cli("manifest", "materialize", "toy_j", "--out", tmp_path / "fresh")
    assert code == 0 and "24 images written" in stdout
    assert cli("manifest", "materialize", "toy_j", "--out", tmp_path / "fresh")[0] == 0  # its own: skipped


def test_materialize_names_a_stamp_that_is_not_a_json_object(build, cli, tmp_path):
    build("toy")
    out = tmp_path / "out"
    assert cli("manifest", "materialize", "toy", "--out", out)[0] == 0
    (out / ".study-materialize.json").write_text("[]\n")  # valid JSON, hand-edited or written by another tool
    code, _, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 2 and f"{out / '.study-materialize.json'}: not a JSON object naming a manifest" in err, err


def test_pool_and_corrupt_metadata_is_json(build, cli, manifests):
    build("toy")
    cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg")
    meta = json.loads((manifests / "toy_j.json").read_text())
    assert meta["corruption"] == "jpeg:quality=10"


def test_a_corrupted_pool_draws_per_source_when_two_sources_share_a_path(build, cli, tmp_path):
    """Two sources with the same relative paths (two copies of one tree): the same image gets independent noise in
    each source, and the same noise on every read."""
    from study.train.images import ImageReader

    build("a", "--seed", "0")
    copy = write_tree(tmp_path / "copy", CLASSES)
    build("b", "--seed", "0", root=copy)
    assert cli("manifest", "pool", "ab", "--from", "a:24", "--from", "b:24")[0] == 0
    assert cli("manifest", "corrupt", "ab_sp", "--base", "ab", "--corruption", "salt_pepper:fraction=0.3")[0] == 0
    m = load_manifest("ab_sp")
    t = m.all()
    path = t.loc[t.source == "a", "path"].iloc[0]
    rows = [t[(t.source == s) & (t.path == path)].iloc[0] for s in ("a", "b")]
    reader = ImageReader(m)
    pix = [np.asarray(reader.open(r)) for r in rows]
    assert np.array_equal(np.asarray(Image.open(m.abs_path(rows[0]))), np.asarray(Image.open(m.abs_path(rows[1]))))
    assert not np.array_equal(pix[0], pix[1])  # same source pixels, different noise
    assert np.array_equal(pix[0], np.asarray(ImageReader(m).open(rows[0])))


def test_materialize_keeps_same_stem_files_and_hash_signs_apart(build, cli, tree, tmp_path):
    cat = tree / "train" / "cat"
    Image.open(cat / "000.png").convert("RGB").save(cat / "000.jpg")  # 000.jpg beside 000.png
    Image.open(cat / "001.png").save(cat / "photo#1.png")  # '#' in a plain image name
    build("toy")
    out = tmp_path / "out"
    code, stdout, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 0, err
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert len(written) == len(load_manifest("toy").table) == 26
    assert {"train/cat/000.jpg.png", "train/cat/000.png.png", "train/cat/photo#1.png.png"} <= written
    from study.manifests.materialize import out_path
    assert out_path(out, "t10k-images-idx3-ubyte.gz#7", "fm", idx=True) == out / "fm/t10k-images-idx3-ubyte.gz/7.png"
    idx_row = "a#1/t10k-images-idx3-ubyte.gz#7"  # only the last '#' numbers the image
    assert out_path(out, idx_row, None, idx=True) == out / "a#1/t10k-images-idx3-ubyte.gz/7.png"


def test_materialize_names_a_broken_source_image_not_the_output(build, cli, tree, tmp_path):
    """A clean JPEG is opened undecoded (for draft decoding), so a truncated one fails only when loaded: that is a
    source to name, not an output that could not be written."""
    cat = tree / "train" / "cat"
    Image.open(cat / "000.png").convert("RGB").resize((64, 64)).save(cat / "000.jpg", quality=90)
    data = (cat / "000.jpg").read_bytes()
    (cat / "000.jpg").write_bytes(data[: len(data) // 2])
    build("withjpg")
    code, _, err = cli("manifest", "materialize", "withjpg", "--out", tmp_path / "out")
    assert code == 2 and f"cannot read image {cat / '000.jpg'} (manifest withjpg)" in err
    assert "cannot write" not in err


def test_materialize_jobs_carry_their_rows_and_workers_never_read_the_table(build, cli, tmp_path):
    """A worker is given the metadata, and each job its row's path and source: it holds no copy of the table (2.7M
    rows for iNat21, in every worker process). The images are those the manifest's reader gives, per source."""
    from study.manifests import materialize as mat
    from study.train.images import ImageReader

    build("a")
    copy = write_tree(tmp_path / "copy", CLASSES)
    build("b", root=copy)
    assert cli("manifest", "pool", "ab", "--from", "a:24", "--from", "b:10")[0] == 0
    assert cli("manifest", "corrupt", "ab_sp", "--base", "ab", "--corruption", "salt_pepper:fraction=0.3")[0] == 0
    out = tmp_path / "out"
    assert mat.materialize("ab_sp", out, workers=1, subset=20) == (20, 0)  # one worker: set up in this process
    assert image_reader().manifest._table is None
    m = load_manifest("ab_sp")
    reader = ImageReader(m)
    rows = m.subset(20)
    assert set(rows["source"]) == {"a", "b"} and len(list(out.rglob("*.png"))) == 20
    for _, row in rows.iterrows():
        got = Image.open(mat.out_path(out, row["path"], row["source"], idx=False))
        assert np.array_equal(np.asarray(got), np.asarray(reader.open(row)))


def test_a_pool_of_sources_sharing_files_is_refused(build, cli, tree, manifests):
    """One tree built twice (another seed; another split root) is one set of files: pooling them would list an image
    twice, under two labels. Refused, naming both sources and a shared file; nothing written."""
    build("a", "--seed", "0")
    build("b", "--seed", "1")
    build("c", root=tree / "train")  # paths `cat/...` under root data/train: the same files as a's `train/cat/...`
    for other in ("b", "c"):
        code, _, err = cli("manifest", "pool", "dup", "--from", "a:20", "--from", f"{other}:20")
        assert code == 2 and f"--from a and --from {other} share " in err, err
        shared = re.search(r"\(e\.g\. (.+?)\)", err).group(1)
        assert shared.startswith(f"{tree.resolve()}/train/") and Path(shared).is_file()
        assert not (manifests / "dup.json").exists()
    copy = write_tree(tree.parent / "copy", CLASSES)  # the same relative paths under another root: other files
    build("d", root=copy)
    assert cli("manifest", "pool", "ad", "--from", "a:20", "--from", "d:20")[0] == 0


def test_materialize_removes_a_killed_runs_temporaries_and_rewrites_a_cut_short_png(build, cli, tmp_path):
    out = tmp_path / "out"
    files, before = materialized(build, cli, out)
    stale = [files[0].with_name(f".{files[0].name}.5951.tmp"), files[1].with_name(f".{files[1].name}.k2j_9x0a.tmp"),
             out / "..study-materialize.json.abcd1234.tmp"]
    for p in stale:
        p.write_bytes(b"\x89PNG partial")
    keep = out / "notes.tmp"  # not this tool's: left alone
    keep.write_text("mine")
    files[2].write_bytes(before[files[2]][: len(before[files[2]]) // 2])  # cut short by a crash before the fix
    code, stdout, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 0 and "1 images written, 23 already there" in stdout, err
    assert "1 to write (1 of them cut short)" in err and "3 temporary file(s) of a killed run removed" in err
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.png"))} == before
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
    assert not (out / ".study-materialize.lock").exists()


def test_materialize_rewrites_a_png_cut_shorter_than_its_end_chunk(build, cli, tmp_path):
    """A file of fewer bytes than PNG's IEND chunk (empty, or a few bytes of header) is cut short too, not skipped."""
    out = tmp_path / "out"
    files, before = materialized(build, cli, out)
    files[0].write_bytes(b"")
    files[1].write_bytes(before[files[1]][:5])
    code, stdout, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 0 and "2 images written, 22 already there" in stdout, err
    assert "2 to write (2 of them cut short)" in err  # seen as files cut short, not as missing ones
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.png"))} == before


def test_materialize_syncs_no_image_to_disk_but_its_stamp(build, cli, tmp_path, monkeypatch):
    """Two fsyncs per PNG (the file, its folder) cost most of a write on a network filesystem; a PNG a node crash
    cuts short is rewritten by the next run (above), so images are renamed into place unsynced. The folder's stamp,
    which no rerun checks that way, is still synced."""
    from study import atomic

    synced = []
    real = atomic._fsync
    monkeypatch.setattr(atomic, "_fsync", lambda path: synced.append(Path(path)) or real(path))
    out = tmp_path / "out"
    files, _ = materialized(build, cli, out)
    assert len(files) == 24 and not [p for p in synced if out in p.parents and not p.name.startswith("..study-")]
    assert any(p.name.startswith("..study-materialize.json") for p in synced), synced


def test_materialize_refuses_a_folder_another_run_is_writing(build, cli, tmp_path):
    import fcntl

    build("toy")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".study-materialize.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = cli("manifest", "materialize", "toy", "--out", out)
        assert code == 2 and f"--out {out}: another `study manifest materialize` is writing this folder" in err
        assert not list(out.rglob("*.png"))
    assert cli("manifest", "materialize", "toy", "--out", out)[0] == 0 and len(list(out.rglob("*.png"))) == 24


def test_materialize_writes_through_the_atomic_helper(build, cli, tmp_path, monkeypatch):
    """Every image goes through study.atomic (written beside, then renamed)."""
    import study.atomic
    from study.manifests import materialize as mat

    seen = []
    real = study.atomic.atomic_path

    def spy(path, **kw):
        seen.append(Path(path))
        return real(path, **kw)

    monkeypatch.setattr(mat, "atomic_path", spy, raising=False)
    build("toy")
    assert mat.materialize("toy", tmp_path / "out", workers=1) == (24, 0)
    assert sorted(seen) == sorted(p for p in (tmp_path / "out").rglob("*.png"))


def test_a_damaged_base_or_pooled_source_is_refused(build, cli, tmp_path, manifests):
    """A variant or pool made from a manifest whose Parquet file was edited would carry the edited rows under a
    fresh, valid hash: refused, naming the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    build("toy")
    copy = write_tree(tmp_path / "copy", CLASSES)
    build("other", root=copy)
    parquet = manifests / "toy.parquet"
    t = pq.read_table(parquet)
    pq.write_table(t.set_column(1, "label", pa.array((t.column("label").to_numpy() + 1) % 4)), parquet)
    code, _, err = cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg")
    assert code == 2 and f"base manifest 'toy' is damaged: {parquet}: rows differ from the recorded table hash" in err
    code, _, err = cli("manifest", "pool", "p", "--from", "other:8", "--from", "toy:8")
    assert code == 2 and f"pooled source manifest 'toy' is damaged: {parquet}" in err
    assert not (manifests / "toy_j.json").exists() and not (manifests / "p.json").exists()


def test_a_missing_base_is_named_as_missing_not_as_damaged(build, cli, manifests):
    build("toy")
    code, _, err = cli("manifest", "corrupt", "toy_j", "--base", "toi", "--corruption", "jpeg")
    assert code == 2 and "manifest 'toi' not found" in err and "did you mean 'toy'" in err and "damaged" not in err
    assert not (manifests / "toy_j.json").exists()


def test_materialize_refuses_the_images_of_an_earlier_manifest_of_the_same_name(build, cli, tmp_path, manifests):
    """A folder is claimed by content, not by name: toy_c rebuilt with another JPEG quality does not reuse the
    images its earlier self wrote there."""
    build("toy")
    assert cli("manifest", "corrupt", "toy_c", "--base", "toy", "--corruption", "jpeg:quality=10")[0] == 0
    out = tmp_path / "out"
    assert cli("manifest", "materialize", "toy_c", "--out", out)[0] == 0
    for suffix in (".json", ".parquet"):
        (manifests / f"toy_c{suffix}").unlink()
    assert cli("manifest", "corrupt", "toy_c", "--base", "toy", "--corruption", "jpeg:quality=90")[0] == 0
    code, _, err = cli("manifest", "materialize", "toy_c", "--out", out)
    assert code == 2 and f"--out {out}: holds the images of manifest toy_c (content" in err


def test_a_pool_of_three_sources_gives_each_source_its_own_labels(build, cli, tmp_path):
    """A third source's labels follow the first two's classes: label i is class_names[i] for every row."""
    build("a", "--seed", "0")
    for name, classes in (("b", {"x": 5, "y": 7}), ("c", {"p": 4, "q": 6})):
        build(name, "--seed", "1", root=write_tree(tmp_path / name, classes))
    code, _, err = cli("manifest", "pool", "abc", "--from", "a:12", "--from", "b:8", "--from", "c:6")
    assert code == 0, err
    m = load_manifest("abc")
    t = m.all()
    assert m.num_classes == 8 and m.class_names[6:] == ["c/p", "c/q"]
    assert [m.class_names[label] for label in t["label"]] == list(t["class_name"])
    assert t["label"].nunique() == t["class_name"].nunique()


def test_a_corrupted_variant_is_not_corrupted_again(build, cli, manifests):
    """Its base would be the variant, and the first corruption would be lost from the record."""
    build("toy")
    assert cli("manifest", "corrupt", "toy.jpeg-quality10", "--base", "toy", "--corruption", "jpeg:quality=10")[0] == 0
    code, _, err = cli("manifest", "corrupt", "twice", "--base", "toy.jpeg-quality10", "--corruption",
                       "downsample:factor=2")
    assert code == 2 and "toy.jpeg-quality10 is already corrupted (jpeg:quality=10); corrupt its clean base" in err
    assert not (manifests / "twice.json").exists()


def test_a_pool_is_made_of_clean_manifests_that_are_not_pools(pool_sources, cli, manifests):
    """A pool of a pool would nest its sources' classes twice; a pool of a corrupted variant would lose the
    corruption from the record (pool clean manifests, then corrupt the pool)."""
    assert cli("manifest", "pool", "ab", "--from", "a:8", "--from", "b:8")[0] == 0
    assert cli("manifest", "corrupt", "a_j", "--base", "a", "--corruption", "jpeg")[0] == 0
    for source, message in (("ab", "ab is itself a pool; pool its sources instead"),
                            ("a_j", "a_j is a corrupted variant; pool clean manifests, then corrupt the pool")):
        code, _, err = cli("manifest", "pool", "bad", "--from", f"{source}:8", "--from", "b:8")
        assert code == 2 and message in err, err
        assert not (manifests / "bad.json").exists()


def test_a_pool_of_a_test_split_is_refused_naming_it(pool_sources, cli, manifests, tmp_path):
    """A pool is a pretraining set: a source that is a test split (an image folder's `val/` or `test/`, a paper
    dataset's `val` or GLC20's `us_test`) would pretrain encoders on the images they are scored on."""
    root = write_tree(tmp_path / "split_tree" / "val", {"x": 3, "y": 3}).parent
    assert cli("manifest", "build", "--dataset", "imagefolder", "--root", root, "--split", "val", "--name",
               "c_val")[0] == 0
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:8", "--from", "c_val:all")
    assert code == 2 and ("--from c_val: c_val is a test split (imagefolder val): a pool is a pretraining set, and its "
                          "encoders would be scored on images they were pretrained on; pool train manifests"
                          ) in err, err
    assert not (manifests / "bad.json").exists() and not (manifests / "bad.parquet").exists()


def test_every_prefix_of_a_pool_holds_each_source_within_half_an_image_of_its_share(pool_sources, cli):
    """A row of source rank r sits at the fraction (r + 0.5) / n of its source: every prefix of the pool, in its
    pretraining order and in its labeled order, holds each source's share rounded to the nearest image."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    m = load_manifest("ab")
    for order in (m.subset(20), m.labeled(20)):
        sources = list(order["source"])
        for k in range(1, 21):
            for src, n in (("a", 12), ("b", 8)):
                assert abs(sources[:k].count(src) - k * n / 20) <= 0.5, (k, src, sources)



def test_interleaving_places_each_row_at_the_middle_of_its_share_and_ties_by_source_order():
    """Sources of 1 and 3 rows: b's rows sit at 1/6, 3/6, 5/6 and a's only row at 1/2, tied with b's second and
    before it (source order). So the first image is b's (3/4 of the pool), not a's, as a row at r / n would put it."""
    assert _interleave([1, 3], [np.arange(1), np.arange(3)]).tolist() == [1, 0, 2, 3]
    assert _interleave([3, 1], [np.arange(3), np.arange(1)]).tolist() == [0, 1, 3, 2]


def test_a_source_named_twice_is_refused_as_such(pool_sources, cli, manifests):
    """Two --from of one manifest are refused by name (not only as sources sharing their files)."""
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:4", "--from", "a:8")
    assert code == 2 and "a source is named twice in --from" in err, err
    assert not (manifests / "bad.json").exists()


def test_a_pool_of_one_source_or_of_labeled_sizes_beyond_its_images_is_refused(pool_sources, cli, manifests):
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:12")
    assert code == 2 and "a pool needs two or more --from NAME:SIZE" in err
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:12", "--from", "b:8", "--labeled-sizes", "10,21")
    assert code == 2 and "pool bad: --labeled-sizes" in err and "larger than the dataset (20 images)" in err
    assert not (manifests / "bad.json").exists() and not (manifests / "bad.parquet").exists()


def test_a_pool_of_taxonomy_manifests_keeps_their_levels(build, cli, tmp_path):
    """Each row keeps its source's coarser level, and the pool's levels still end with class_name."""
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\nfelid,cat\ncanid,dog\nfish,eel\ncanid,fox\n")
    build("a", "--taxonomy", tax)
    other = write_tree(tmp_path / "other", {"x": 5, "y": 7})
    other_tax = tmp_path / "other.csv"
    other_tax.write_text("group,class_name\nxs,x\nys,y\n")
    build("b", "--taxonomy", other_tax, root=other)
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    m = load_manifest("ab")
    assert m.levels == load_manifest("a").levels == ["group", "class_name"]
    groups = {"a/cat": "felid", "a/dog": "canid", "a/eel": "fish", "a/fox": "canid", "b/x": "xs", "b/y": "ys"}
    assert [groups[c] for c in m.table["class_name"]] == list(m.table["group"])


def test_a_pool_keeps_only_the_columns_every_source_has(build, cli, tmp_path):
    """A taxonomy level that one source lacks is not a level of the pool, and a pool with a source of no taxonomy has
    none (not `class_name` alone, which would let the granularity protocol run on one level), whichever source comes
    first."""
    tax = tmp_path / "taxonomy.csv"
    tax.write_text("group,class_name\nxs,x\nys,y\n")
    build("a")
    build("b", "--taxonomy", tax, root=write_tree(tmp_path / "other", {"x": 5, "y": 7}))
    for name, first, second in (("ab", "a:12", "b:8"), ("ba", "b:8", "a:12")):
        code, _, err = cli("manifest", "pool", name, "--from", first, "--from", second)
        assert code == 0, err
        m = load_manifest(name)
        assert "group" not in m.table.columns and m.levels == [] and len(m.table) == 20, name
        assert cli("manifest", "verify", name)[0] == 0


def test_a_corrupted_variant_is_not_corrupted_again_even_by_the_same_corruption(build, cli, manifests):
    """The variant's base would be a variant, and its images would be corrupted twice."""
    build("toy")
    assert cli("manifest", "corrupt", "toy_j", "--base", "toy", "--corruption", "jpeg:quality=10")[0] == 0
    code, _, err = cli("manifest", "corrupt", "twice", "--base", "toy_j", "--corruption", "jpeg:quality=10")
    assert code == 2 and "toy_j is already corrupted (jpeg:quality=10); corrupt its clean base instead" in err
    assert not (manifests / "twice.json").exists()


def _build_places(cli, root, categories: list[str], labels: list[int]) -> None:
    """Manifest `places`: a Places365 tree under `root` listing `categories` (names as its file gives them), one
    8 px JPEG per entry of `labels` (image k of class labels[k]; every category is `a/airfield`, with or without
    its leading slash, so all files lie in one folder)."""
    (root / "data_256" / "a" / "airfield").mkdir(parents=True)
    (root / "categories_places365.txt").write_text("".join(f"{c} {i}\n" for i, c in enumerate(categories)))
    lines = []
    for k, label in enumerate(labels):
        Image.new("RGB", (8, 8), (k, k, k)).save(root / "data_256" / "a" / "airfield" / f"{k}.jpg")
        lines.append(f"{categories[label]}/{k}.jpg {label}\n")  # the list names a file by its class as written
    (root / "places365_train_standard.txt").write_text("".join(lines))
    assert cli("manifest", "build", "--dataset", "places365", "--root", root, "--split", "train",
               "--name", "places")[0] == 0


def test_a_pooled_places365_class_name_has_one_slash_after_its_source(build, cli, tmp_path):
    """Places365's class names begin with a slash (`/a/airfield`); the pool's `<source>/<class>` keeps one."""
    _build_places(cli, tmp_path / "places", ["/a/airfield"], [0, 0, 0])
    build("a", "--seed", "0")
    code, _, err = cli("manifest", "pool", "pa", "--from", "places:3", "--from", "a:6")
    assert code == 0, err
    m = load_manifest("pa")
    assert m.class_names[0] == "places/a/airfield" and m.class_names[1:] == [f"a/{c}" for c in sorted(CLASSES)]
    assert set(m.all()["class_name"]) == set(m.class_names)


def test_a_pool_whose_source_has_classes_a_and_slash_a_is_refused(build, cli, tmp_path):
    """`/a/airfield` and `a/airfield` of one source would both read `<source>/a/airfield` once the leading slash
    goes: refused, naming it, rather than two classes under one name."""
    _build_places(cli, tmp_path / "places", ["/a/airfield", "a/airfield"], [0, 1, 0, 1])
    build("a", "--seed", "0")
    code, _, err = cli("manifest", "pool", "pa", "--from", "places:4", "--from", "a:6")
    assert code == 2 and "class name(s) places/a/airfield would stand for two classes of one source" in err


def test_materialize_writes_a_pooled_idx_sources_rows_as_idx_rows(build, cli, tmp_path):
    """In a pool of an IDX source and an image folder, the IDX rows (`<file>#<i>`) become `<source>/<file>/<i>.png`,
    by their source's kind (the pool's own kind is `mixed`)."""
    from idx_files import write_idx

    from study.manifests import materialize as mat

    fm = tmp_path / "fm"
    fm.mkdir()
    for stem, n in (("train", 6), ("t10k", 2)):
        write_idx(fm / f"{stem}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(fm / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    assert cli("manifest", "build", "--dataset", "fashion-mnist", "--root", fm, "--split", "train", "--name", "fm",
               "--sizes", "6")[0] == 0
    build("a")
    code, _, err = cli("manifest", "pool", "fa", "--from", "fm:6", "--from", "a:4")
    assert code == 0, err
    m = load_manifest("fa")
    assert m.meta["kind"] == "mixed" and m.kind_of("fm") == "idx"
    out = tmp_path / "out"
    assert mat.materialize("fa", out) == (10, 0)
    for _, row in m.all().iterrows():
        assert mat.out_path(out, row["path"], row["source"], idx=row["source"] == "fm").is_file(), row["path"]


def test_a_from_without_a_name_is_refused_as_such():
    import pytest

    from study.errors import StudyError
    from study.manifests.pool import parse_from

    assert parse_from("imagenet_train:250k") == ("imagenet_train", 250_000)
    for text in (":250k", "250k"):
        with pytest.raises(StudyError, match=f"--from '{text}': expected NAME:SIZE"):
            parse_from(text)


def test_a_pool_refuses_its_first_and_third_sources_sharing_files(build, cli, tree, tmp_path, manifests):
    """Every pair of sources is compared, not only neighbours on the command line."""
    build("a", "--seed", "0")
    build("b", root=write_tree(tmp_path / "other", {"x": 5, "y": 7}))
    build("a2", "--seed", "1")  # a's tree again
    code, _, err = cli("manifest", "pool", "dup", "--from", "a:10", "--from", "b:6", "--from", "a2:10")
    assert code == 2 and "--from a and --from a2 share " in err, err
    assert not (manifests / "dup.json").exists()


def _glc(cli, root, name, *flags):
    """Manifest `name` of a GLC20 tree of three 8x8 patches under `root` (label rule: the land cover's mode)."""
    lines = ["id;lat;lon;species_id"]
    for i, patch_id in enumerate((10561234, 10561235, 10561236)):
        folder = root / "patches_fr" / str(patch_id)[-2:] / str(patch_id)[-4:-2]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{patch_id}.npy", np.full((8, 8, 5), 3 + i, np.uint8))
        lines.append(f"{patch_id};1;2;3")
    (root / "occurrences_fr_train.csv").write_text("\n".join(lines) + "\n")
    code, _, err = cli("manifest", "build", "--dataset", "glc20", "--root", root, "--split", "fr_train", "--name",
                       name, "--label-rule", "landcover_mode", *flags)
    assert code == 0, err


def test_a_pool_of_one_kind_records_its_channels_once_or_per_source_where_they_differ(cli, tmp_path):
    """Two GLC20 manifests read with the same channels: a plain npy manifest's `channels`. Read with other channels:
    the kind stays `npy` (not `mixed`), and each source's kind and channels are recorded; both read their files."""
    _glc(cli, tmp_path / "g1", "g1")
    _glc(cli, tmp_path / "g2", "g2")
    _glc(cli, tmp_path / "g3", "g3", "--channels", "3,1,2")
    assert cli("manifest", "pool", "same", "--from", "g1:3", "--from", "g2:3")[0] == 0
    meta = load_manifest("same").meta
    assert (meta["kind"], meta["channels"]) == ("npy", [0, 1, 2]) and "kinds" not in meta, meta
    code, _, err = cli("manifest", "pool", "other", "--from", "g1:3", "--from", "g3:3")
    assert code == 0, err
    meta = load_manifest("other").meta
    assert meta["kind"] == "npy" and "channels" not in meta, meta
    assert meta["kinds"] == {"g1": "npy", "g3": "npy"}
    assert meta["source_channels"] == {"g1": [0, 1, 2], "g3": [3, 1, 2]}
    for name in ("same", "other"):
        code, _, err = cli("manifest", "verify", name, "--files")
        assert code == 0, err


def test_interleaving_ties_by_source_order_in_pools_large_enough_for_an_unstable_sort_to_reorder_them():
    """Two sources of 1000 rows: each row of the first sits at the same fraction as the second's row of its rank,
    and comes first."""
    ranks = _interleave([1000, 1000], [np.arange(1000), np.arange(1000)])
    assert ranks.tolist() == list(range(0, 2000, 2)) + list(range(1, 2000, 2))


def test_interleaving_is_exact_for_sources_of_tens_of_millions_of_images():
    """Of a source of 2**25 images, rank 2**24 sits just after the middle: after the middle row of a source of one
    (fractions in float32 would round both to 1/2 and tie them)."""
    assert _interleave([2**25, 1], [np.array([2**24]), np.array([0])]).tolist() == [1, 0]


def test_a_pool_of_sizes_beyond_its_images_or_of_too_large_a_source_is_refused_naming_them(pool_sources, cli,
                                                                                          manifests):
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:12", "--from", "b:8", "--sizes", "10,21")
    assert code == 2 and "pool bad: --sizes 21 is larger than the dataset (20 images)" in err, err
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:12", "--from", "b:13")
    assert code == 2 and "--from b:13: b has only 12 images" in err, err
    assert not (manifests / "bad.json").exists() and not (manifests / "bad.parquet").exists()


def test_a_pool_made_again_with_other_shares_says_its_shares_before_and_after(pool_sources, cli):
    """The refusal to replace a frozen pool lists the shares (a dict's repr was cut off before them) and, for the
    same number of classes, that their names differ."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    code, _, err = cli("manifest", "pool", "ab", "--from", "a:10", "--from", "b:10")
    assert code == 2 and "pool: a:12, b:8 -> a:10, b:10" in err, err
    code, _, err = cli("manifest", "pool", "ab", "--from", "b:8", "--from", "a:12")
    assert code == 2 and "pool: a:12, b:8 -> b:8, a:12" in err and "in another order (e.g. 'a/" in err, err


def test_a_pool_made_again_of_the_same_shares_of_a_source_made_again_names_that_source(pool_sources, cli, manifests,
                                                                                       build):
    """The same shares of a source rebuilt since (another content hash): the refusal names that source, not
    `pool: a:12, b:8 -> a:12, b:8`, which reads as no difference."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    for suffix in (".json", ".parquet"):
        (manifests / f"a{suffix}").unlink()
    build("a", "--seed", "0", "--sizes", "12")  # the same rows, other recorded sizes: another content hash
    code, _, err = cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")
    assert code == 2 and "pool: a:12, b:8, source a made again since (another content hash)" in err, err


def test_classes_of_a_rebuild_as_many_as_before_are_said_renamed_or_reordered():
    old = {"class_names": ["cat", "dog"], "table_hash": "t"}
    assert describe_difference("x", old, {**old, "class_names": ["cat", "cow"]}, None) == (
        "classes: 2, other names (e.g. 'dog' -> 'cow')")
    assert describe_difference("x", old, {**old, "class_names": ["dog", "cat"]}, None) == (
        "classes: 2, in another order (e.g. 'cat' -> 'dog')")


def test_a_pools_share_all_takes_every_image_of_its_source_and_is_recorded_as_its_count(pool_sources, cli):
    """`--from b:all` is b's every image (12 here), recorded as that count, so a grid's `pool:` names it as a number;
    a share that is no size is refused naming it."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:all")[0] == 0
    meta = load_manifest("ab").meta
    assert [(src["name"], src["size"]) for src in meta["pool"]] == [("a", 12), ("b", 12)]
    assert meta["num_images"] == 24
    code, _, err = cli("manifest", "pool", "bad", "--from", "a:12", "--from", "b:most")
    assert code == 2 and "--from b:most: not a size" in err, err


def test_a_pools_meta_names_each_sources_dataset_and_split_in_source_order(pool_sources, cli):
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    meta = load_manifest("ab").meta
    assert (meta["dataset"], meta["split"]) == ("imagefolder+imagefolder", "train+train")


def test_a_pool_of_sources_sharing_files_names_a_file_both_prefixes_hold(build, cli):
    """The example is a shared file (here the one file of b's prefix), not any file of the first source."""
    build("a", "--seed", "0")
    build("b", "--seed", "1")
    a, b = load_manifest("a"), load_manifest("b")
    shared = f"{b.meta['root']}/{b.subset(1)['path'].iloc[0]}"
    assert shared != f"{a.meta['root']}/{a.subset(1)['path'].iloc[0]}"
    code, _, err = cli("manifest", "pool", "dup", "--from", "a:24", "--from", "b:1")
    assert code == 2 and f"--from a and --from b share 1 image file(s) in their pooled prefixes (e.g. {shared})" in err


def test_show_of_a_pool_says_its_subsets_follow_its_sources_not_none(pool_sources, cli):
    """A pool interleaves its sources' own orders (their balanced flags, recorded as null): `show` says so, not
    `balanced: None`."""
    assert cli("manifest", "pool", "ab", "--from", "a:12", "--from", "b:8")[0] == 0
    code, out, err = cli("manifest", "show", "ab")
    assert code == 0, err
    assert "balanced: per source   labeled balanced: per source" in out and "None" not in out, out


def test_a_variant_or_pool_named_as_its_base_or_source_is_refused_without_advising_to_delete_it(pool_sources, cli,
                                                                                                  manifests):
    """The frozen-name refusal would say "delete a.parquet and a.json first": the very manifest it is made from."""
    before = {p: p.read_bytes() for p in manifests.glob("a.*")}
    code, _, err = cli("manifest", "corrupt", "a", "--base", "a", "--corruption", "jpeg")
    assert code == 2 and "manifest 'a' is the base itself" in err and "a.jpeg-quality10" in err, err
    assert "delete" not in err
    code, _, err = cli("manifest", "pool", "a", "--from", "a:8", "--from", "b:8")
    assert code == 2 and "manifest 'a' is one of its own sources" in err and "delete" not in err, err
    assert {p: p.read_bytes() for p in manifests.glob("a.*")} == before
    assert load_manifest("a").meta.get("corruption") is None


def _read_whole_tree(root: Path, split: str, options):
    """Every split is the whole class tree at `root`: a new reader whose test split has a name of its own."""
    from study.datasets.imagefolder import index_class_tree

    return index_class_tree(root, root)


@pytest.fixture
def heldout_reader():
    """`_read_whole_tree` registered as `heldout_reader`, its attributes and registration undone afterwards."""
    from study.datasets import DATASETS

    DATASETS.register("heldout_reader")(_read_whole_tree)
    yield _read_whole_tree
    for attr in ("suggested_splits", "splits"):
        if hasattr(_read_whole_tree, attr):
            delattr(_read_whole_tree, attr)
    DATASETS.unregister("heldout_reader")


def test_a_pool_of_a_new_readers_own_test_split_is_refused(pool_sources, heldout_reader, cli, manifests, tmp_path):
    """A reader's test split of its own name is one where its `suggested_splits` gives a val or test manifest that
    split, or one of its `splits` ends `_test` (as GLC20's `us_test`): the names GLC20's were refused by, alone,
    let a new reader's through."""
    heldout_reader.suggested_splits = {"val": "heldout"}
    heldout_reader.splits = ("eu_train", "eu_test")
    root = write_tree(tmp_path / "heldout_tree", {"x": 3, "y": 3})
    for split in ("heldout", "eu_test", "eu_train"):
        code, _, err = cli("manifest", "build", "--dataset", "heldout_reader", "--root", root, "--split", split,
                           "--name", f"h_{split}")
        assert code == 0, err
    for split in ("heldout", "eu_test"):
        code, _, err = cli("manifest", "pool", "bad", "--from", "a:8", "--from", f"h_{split}:all")
        assert code == 2 and f"--from h_{split}: h_{split} is a test split (heldout_reader {split})" in err, err
        assert not (manifests / "bad.json").exists()
    code, _, err = cli("manifest", "pool", "good", "--from", "a:8", "--from", "h_eu_train:all")
    assert code == 0, err
