"""The fashion-mnist reader: IDX rows as (file, index), its split names and errors, and the real Debian files."""
import struct
import zlib

import numpy as np
import pytest
from dataset_layouts import make_fashion_mnist
from idx_files import idx_bytes
from real_data import FASHION_MNIST

from study.datasets import read_dataset
from study.datasets.idx import load_idx
from study.errors import StudyError
from study.manifests import load_manifest
from study.manifests.build import BuildConfig, build_manifest

def test_rows_are_file_and_index(tmp_path):
    make_fashion_mnist(tmp_path, n_train=20, n_test=10)
    index = read_dataset("fashion-mnist", tmp_path, "train")
    assert index.kind == "idx"
    assert index.paths.to_pylist()[:2] == ["train-images-idx3-ubyte.gz#0", "train-images-idx3-ubyte.gz#1"]
    assert index.labels.tolist() == [i % 10 for i in range(20)]
    assert index.class_names[0] == "T-shirt/top" and len(index.class_names) == 10
    test = read_dataset("fashion-mnist", tmp_path, "test")
    assert len(test) == 10 and test.paths.to_pylist()[0] == "t10k-images-idx3-ubyte.gz#0"
    t10k = read_dataset("fashion-mnist", tmp_path, "t10k")  # the files' own name for the split
    assert t10k.paths.to_pylist() == test.paths.to_pylist() and t10k.keys.to_pylist() == test.keys.to_pylist()


def test_load_idx_shape_and_cache(tmp_path):
    make_fashion_mnist(tmp_path, n_train=5)
    a = load_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert a.shape == (5, 28, 28) and a.dtype == np.uint8
    assert load_idx(tmp_path / "train-images-idx3-ubyte.gz") is a


def test_bad_idx_and_mismatch(tmp_path):
    make_fashion_mnist(tmp_path, n_train=5)
    import gzip

    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    with pytest.raises(StudyError, match="labels"):
        read_dataset("fashion-mnist", tmp_path, "test")
    (tmp_path / "junk.gz").write_bytes(gzip.compress(b"PK\x03\x04 not idx"))
    with pytest.raises(StudyError, match="not an IDX file"):
        load_idx(tmp_path / "junk.gz")
    with pytest.raises(StudyError, match="unknown split"):
        read_dataset("fashion-mnist", tmp_path, "val")
    damaged = gzip.compress(b"\x00\x00\x08\x01" + (300).to_bytes(4, "big") + bytes(range(256)) + bytes(44))
    (tmp_path / "damaged.gz").write_bytes(damaged[:30] + bytes(b ^ 0xFF for b in damaged[30:-8]) + damaged[-8:])
    with pytest.raises(StudyError, match="damaged.gz: cannot read IDX file"):  # zlib.error mid-stream
        load_idx(tmp_path / "damaged.gz")


def test_swapped_or_wrong_rank_files_are_named_without_contradiction(tmp_path):
    make_fashion_mnist(tmp_path, n_train=20)
    images, labels = tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz"
    image_bytes, label_bytes = images.read_bytes(), labels.read_bytes()
    images.write_bytes(label_bytes)
    labels.write_bytes(image_bytes)
    with pytest.raises(StudyError, match=r"train-images-idx3-ubyte.gz: expected an N x H x W image array \(idx3\), "
                                         r"found shape \(20,\)$"):
        read_dataset("fashion-mnist", tmp_path, "train")
    images.write_bytes(image_bytes)  # both hold images
    with pytest.raises(StudyError, match=r"train-labels-idx1-ubyte.gz: expected a 1-D label vector \(idx1\), "
                                         r"found shape \(20, 28, 28\)$"):
        read_dataset("fashion-mnist", tmp_path, "train")


def test_uncompressed_idx_files(tmp_path):
    """Kaggle's copy, or a gunzipped folder: the same rows, named by the uncompressed file."""
    make_fashion_mnist(tmp_path / "gz", n_train=20)
    make_fashion_mnist(tmp_path / "raw", n_train=20, suffix="")
    gz, raw = (read_dataset("fashion-mnist", tmp_path / d, "train") for d in ("gz", "raw"))
    assert raw.paths.to_pylist()[:2] == ["train-images-idx3-ubyte#0", "train-images-idx3-ubyte#1"]
    assert np.array_equal(raw.labels, gz.labels)
    assert [s["path"] for s in raw.sources] == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    (tmp_path / "raw" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(StudyError, match=r"fashion-mnist images file not found: .*/t10k-images-idx3-ubyte.gz "
                                         r"\(nor t10k-images-idx3-ubyte uncompressed\)"):
        read_dataset("fashion-mnist", tmp_path / "raw", "test")


def test_gzipped_and_uncompressed_copies_give_the_same_subsets(tmp_path, monkeypatch):
    """Both copies rank each row by the official `.gz` file name, so the same rows make each subset."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    make_fashion_mnist(tmp_path / "gz", n_train=60)
    make_fashion_mnist(tmp_path / "raw", n_train=60, suffix="")
    tables = []
    for name in ("gz", "raw"):
        build_manifest(BuildConfig("fashion-mnist", tmp_path / name, "train", name, sizes=[20], labeled_sizes=[10]))
        tables.append(load_manifest(name).table)
    gz, raw = tables
    assert raw["path"].tolist() == [p.replace(".gz#", "#") for p in gz["path"]]  # rows in rank order
    assert raw["labeled_rank"].tolist() == gz["labeled_rank"].tolist()


def _stored_gzip(data: bytes) -> bytes:
    """`data` gzipped as one stored (uncompressed) deflate block, mtime 0: the same bytes whatever the zlib."""
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x01" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF)
            + data + struct.pack("<II", zlib.crc32(data), len(data)))


def test_debian_layout_manifest_keeps_its_content_hash(tmp_path, monkeypatch):
    """The hashes that the reader gave before rows were keyed by the official file name (Debian's copy is named so:
    its subsets, rows and metadata are unchanged)."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests"))
    images = (np.arange(40 * 28 * 28) % 251).astype(np.uint8).reshape(40, 28, 28)
    labels = (np.arange(40) * 7 % 10).astype(np.uint8)
    for name, a in (("train-images-idx3-ubyte.gz", images), ("train-labels-idx1-ubyte.gz", labels)):
        (tmp_path / name).write_bytes(_stored_gzip(idx_bytes(a)))
    meta, _ = build_manifest(BuildConfig("fashion-mnist", tmp_path, "train", "fm", sizes=[10], labeled_sizes=[5]))
    assert meta["info"] == {}
    assert meta["table_hash"] == "f38d6fcfa13b236bcf76f22888baeb33b39a074efa4d2365915c52074f72b3c9"
    assert meta["content_hash"] == "203413c44d4cafe34fa2aaa26e30fc4a0da39bf01efee2331bbe1f75cf3bf113"


@pytest.mark.skipif(not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="dataset-fashion-mnist not installed")
def test_real_debian_files():
    index = read_dataset("fashion-mnist", FASHION_MNIST, "test")
    assert len(index) == 10000
    assert np.bincount(index.labels).tolist() == [1000] * 10


def test_load_idx_reads_big_endian_values_into_native_arrays(tmp_path):
    """IDX stores multi-byte values big-endian: load_idx gives their values, in the machine's byte order (torch
    refuses a big-endian array)."""
    shorts = np.array([[1, -2, 300], [-30000, 7, 0]], dtype=">i2")
    (tmp_path / "shorts-idx2").write_bytes(idx_bytes(shorts))
    floats = np.array([0.5, -1.25, 3e8], dtype=">f4")
    (tmp_path / "floats-idx1").write_bytes(idx_bytes(floats))
    for name, want in (("shorts-idx2", shorts), ("floats-idx1", floats)):
        got = load_idx(tmp_path / name)
        assert got.tolist() == want.tolist() and got.dtype == want.dtype.newbyteorder("=") and got.dtype.isnative
    import torch

    assert torch.from_numpy(load_idx(tmp_path / "shorts-idx2").copy()).tolist() == shorts.tolist()


def test_load_idx_refuses_a_truncated_file_and_a_bad_magic_number(tmp_path):
    """Three 2-byte values declared, five bytes there; a second magic byte that is not 0."""
    full = idx_bytes(np.array([1, 2, 3], dtype=">i2"))
    (tmp_path / "short-idx1").write_bytes(full[:-1])
    with pytest.raises(StudyError, match=r"short-idx1: truncated IDX file: \(3,\) of >i2 declared"):
        load_idx(tmp_path / "short-idx1")
    (tmp_path / "magic-idx1").write_bytes(b"\x00\x01" + idx_bytes(np.array([1, 2], np.uint8))[2:])
    with pytest.raises(StudyError, match="magic-idx1: not an IDX file"):
        load_idx(tmp_path / "magic-idx1")


def test_the_gzipped_file_is_read_when_both_copies_lie_in_the_root(tmp_path):
    make_fashion_mnist(tmp_path, n_train=20)
    make_fashion_mnist(tmp_path, n_train=20, suffix="")
    index = read_dataset("fashion-mnist", tmp_path, "train")
    assert index.paths.to_pylist()[0] == "train-images-idx3-ubyte.gz#0"
    assert [s["path"] for s in index.sources] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


def test_more_labels_than_images_a_4d_images_file_and_a_missing_labels_file_are_named(tmp_path):
    """Each file's count and rank checked both ways; the file that is absent is the one named."""
    from idx_files import write_idx

    make_fashion_mnist(tmp_path, n_train=20, n_test=10)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, (np.arange(12) % 10).astype(np.uint8))
    with pytest.raises(StudyError, match=r"t10k-images-idx3-ubyte.gz: 10 images but .*t10k-labels-idx1-ubyte.gz has "
                                         r"12 labels$"):
        read_dataset("fashion-mnist", tmp_path, "test")
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((20, 28, 28, 1), np.uint8))
    with pytest.raises(StudyError, match=r"expected an N x H x W image array \(idx3\), found shape \(20, 28, 28, 1\)"):
        read_dataset("fashion-mnist", tmp_path, "train")
    labels.unlink()
    with pytest.raises(StudyError, match=r"fashion-mnist labels file not found: .*/t10k-labels-idx1-ubyte.gz \(nor "
                                         r"t10k-labels-idx1-ubyte uncompressed\)"):
        read_dataset("fashion-mnist", tmp_path, "test")
