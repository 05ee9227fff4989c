"""study.manifests.materialize: where each row's PNG is written, never outside the output folder; what a rerun
rewrites, removes and refuses."""
from pathlib import Path

import pytest
from manifest_trees import materialized

from study.errors import StudyError
from study.manifests.manifest import load_manifest
from study.manifests.materialize import out_path


def test_rows_are_written_below_the_output_folder(tmp_path):
    assert out_path(tmp_path, "cat/x.jpg", None, False) == tmp_path / "cat" / "x.jpg.png"
    assert out_path(tmp_path, "a b/é\nx.jpg", "src", False) == tmp_path / "src" / "a b" / "é\nx.jpg.png"
    assert out_path(tmp_path, "train-images#7", None, True) == tmp_path / "train-images" / "7.png"


@pytest.mark.parametrize("rel, source", [("/tmp/evil", None), ("../../evil", None), ("cat/../../evil", None),
                                         ("cat//x", None), ("cat/./x", None), ("cat/x", "../up"), ("cat/x", "/abs")])
def test_a_row_leading_out_of_the_output_folder_is_refused(tmp_path, rel, source):
    """A manifest made elsewhere (its hash recomputed) holding `/home/u/.x` or `../x`: `out / rel` was that path,
    and materialize wrote a PNG there."""
    with pytest.raises(StudyError, match="not a relative path below the root"):
        out_path(tmp_path / "png", rel, source, False)
    assert list(Path(tmp_path).iterdir()) == []


def test_a_png_a_crash_left_full_of_zeros_is_rewritten(build, cli, tmp_path):
    """A crash can leave a file of its full length whose blocks were never written (zeros): it lacks PNG's whole
    IEND chunk, so it is rewritten, not skipped."""
    out = tmp_path / "out"
    files, before = materialized(build, cli, out)
    files[0].write_bytes(bytes(len(before[files[0]])))
    code, stdout, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 0 and "1 images written, 23 already there" in stdout and "(1 of them cut short)" in err, err
    assert {p: p.read_bytes() for p in sorted(out.rglob("*.png"))} == before


def test_a_rerun_removes_its_own_temporaries_only(build, cli, tmp_path):
    """Only `.<name>.png.<random>.tmp` (and the stamp's) are a killed run's: other files that look alike stay."""
    out = tmp_path / "out"
    files, before = materialized(build, cli, out)
    files[0].unlink()
    ours = files[1].with_name(f".{files[1].name}.ab12.tmp")
    theirs = [out / ".notes.ab12.tmp", files[1].with_name(f"{files[1].name}.ab12.tmp"),
              files[1].with_name(f".{files[1].name}.ab12.tmp.keep")]
    for p in [ours, *theirs]:
        p.write_text("x")
    code, stdout, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 0 and "1 images written, 23 already there" in stdout
    assert "materialize toy: 1 to write, 23 already there; 1 temporary file(s) of a killed run removed" in err, err
    assert not ours.exists() and all(p.read_text() == "x" for p in theirs)


def test_a_folder_holding_a_cut_short_file_of_unknown_origin_is_refused(build, cli, tmp_path):
    """No stamp: a file where a PNG goes, even one cut short, was not written by materialize; the folder is not
    taken over, and nothing in it is overwritten or removed."""
    build("toy")
    stray = tmp_path / "stray"
    target = out_path(stray, load_manifest("toy").all()["path"].iloc[0], None, False)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"mine")
    alike = target.with_name(f".{target.name}.ab12.tmp")  # named as a temporary of ours: the folder is not ours
    alike.write_bytes(b"mine too")
    code, _, err = cli("manifest", "materialize", "toy", "--out", stray)
    assert code == 2 and "already holds 1 of the files manifest toy would write" in err, err
    assert target.read_bytes() == b"mine" and alike.read_bytes() == b"mine too"
    assert not (stray / ".study-materialize.json").exists()


def test_every_image_that_cannot_be_written_is_named(build, cli, tmp_path):
    build("toy")
    out = tmp_path / "out"
    paths = load_manifest("toy").all()["path"].tolist()[:2]
    for rel in paths:
        (out / f"{rel}.png").mkdir(parents=True)  # a folder where the file goes
    code, _, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 2 and "2 image(s) could not be written" in err, err
    assert all(f"cannot write {out / rel}.png" in err for rel in paths), err


def test_a_stamp_that_is_not_json_is_named_not_a_traceback(build, cli, tmp_path):
    out = tmp_path / "out"
    materialized(build, cli, out)
    (out / ".study-materialize.json").write_text('{"manifest": "to')  # cut short, or written by hand
    code, _, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 2 and f"{out / '.study-materialize.json'}: unreadable (" in err, err
    assert "remove it if this folder is yours to rewrite" in err


def test_every_source_image_that_cannot_be_read_is_named_and_the_others_are_written(build, cli, tmp_path):
    """A missing source file is a reader's StudyError: each one is named, and the run writes the rest, rather than
    stopping at the first."""
    build("toy")
    m = load_manifest("toy")
    missing = [m.abs_path(row) for _, row in m.all().iloc[:2].iterrows()]
    for p in missing:
        p.unlink()
    out = tmp_path / "out"
    code, _, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 2 and "2 image(s) could not be written" in err, err
    assert all(f"cannot read image {p} (manifest toy)" in err for p in missing), err
    reason = "(manifest toy): FileNotFoundError: No such file or directory. "  # the path once, then the reason
    assert all(f"cannot read image {p} {reason}" in err for p in missing), err
    assert len(list(out.rglob("*.png"))) == 22


def test_a_damaged_jpeg_is_written_with_the_pixels_a_job_reads(build, cli, tmp_path):
    """The folder holds the images as jobs read them: a JPEG whose damaged data a job's decoder (OpenCV's libjpeg)
    reads through is written as decoded so, not refused (Pillow refuses it) while jobs train on it."""
    import numpy as np
    from image_trees import damaged_jpeg
    from PIL import Image

    from study.train.augment.geometric import decode_for_boxes
    from study.train.images import ImageReader

    build("toy")
    m = load_manifest("toy")
    row = m.all().iloc[0]
    m.abs_path(row).write_bytes(damaged_jpeg())  # a manifest holds paths: the same manifest
    img = ImageReader(m).open(row)
    job = decode_for_boxes(img, [(0, 0, img.size[1], img.size[0])], 4, False)[0]
    out = tmp_path / "out"
    code, _, err = cli("manifest", "materialize", "toy", "--out", out)
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(out / (row["path"] + ".png"))), job)
