"""ImageReader (PNG/JPEG, .npy channels, IDX, corruption, unreadable files, also when a view decodes it)."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from study import corruptions
from study.datasets.idx import load_idx
from study.errors import StudyError
from study.train.augment import build_augment
from study.train.data import ViewDataset
from study.train import images
from study.train.augment import geometric
from study.train.images import ImageReader

from idx_files import write_idx
from image_trees import damaged_jpeg
from real_data import FASHION_MNIST
from train_helpers import reader_manifest, write_images

FASHION = FASHION_MNIST / "t10k-images-idx3-ubyte.gz"


def test_png_and_jpeg_open_as_rgb(tmp_path):
    df = write_images(tmp_path / "png", n=3)
    r = ImageReader(reader_manifest(tmp_path / "png", df))
    img = r.open(df.iloc[0])
    assert img.mode == "RGB" and img.size == (20, 20)
    assert np.array_equal(np.asarray(r.open(df.iloc[0]["path"])), np.asarray(img))  # by relative path too
    jdf = write_images(tmp_path / "jpg", n=2, fmt="jpg")
    j = ImageReader(reader_manifest(tmp_path / "jpg", jdf)).open(jdf.iloc[1])
    assert j.format == "JPEG" and j.mode == "RGB"
    assert np.asarray(j).shape == (20, 20, 3)
    Image.fromarray(np.zeros((5, 6), np.uint8), "L").save(tmp_path / "jpg" / "gray.jpg")
    g = ImageReader(reader_manifest(tmp_path / "jpg", jdf)).open({"path": "gray.jpg"})
    assert g.mode == "RGB" and g.size == (6, 5)


def test_unreadable_image_names_file_and_manifest(tmp_path):
    df = write_images(tmp_path, n=2)
    (tmp_path / df.iloc[1]["path"]).write_bytes(b"\x89PNG garbage")
    r = ImageReader(reader_manifest(tmp_path, df))
    with pytest.raises(StudyError) as e:
        r.open(df.iloc[1])
    assert str(tmp_path / df.iloc[1]["path"]) in str(e.value) and "m1" in str(e.value)
    with pytest.raises(StudyError, match="no row with path"):
        r.open("nope.png")


def _one_image(tmp_path, name, arr, **meta):
    """A manifest of one image file `name` holding `arr` as PIL writes it, and its row."""
    Image.fromarray(arr).save(tmp_path / name)
    df = pd.DataFrame([{"path": name, "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    return reader_manifest(tmp_path, df, **meta), df.iloc[0]


@pytest.mark.parametrize("name", ["g16.png", "g16.tif"])
def test_16_bit_grayscale_keeps_its_high_byte(tmp_path, name):
    """PIL's own convert("RGB") clips 16-bit values at 255 (a white image); the reader scales by the bit depth."""
    a = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    m, row = _one_image(tmp_path, name, a)
    assert Image.open(tmp_path / name).mode in ("I;16", "I")  # an older Pillow opens a 16-bit PNG as "I"
    got = np.asarray(ImageReader(m).open(row))
    assert got.dtype == np.uint8 and all(np.array_equal(got[:, :, c], a >> 8) for c in range(3))
    m.corruption = corruptions.parse_corruption("salt_pepper:fraction=0.1")
    noisy = np.asarray(ImageReader(m).open(row))
    assert 0.7 < np.mean(noisy == got) < 0.99  # corrupted from the scaled pixels, not from a clipped white image


def test_16_bit_png_that_an_older_pillow_opens_as_mode_i_is_scaled_too(tmp_path, monkeypatch):
    from PIL import PngImagePlugin

    monkeypatch.setitem(PngImagePlugin._MODES, (16, 0), ("I", "I;16B"))  # Pillow < 10's mapping
    a = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    m, row = _one_image(tmp_path, "g16.png", a)
    assert Image.open(tmp_path / "g16.png").mode == "I"
    assert np.array_equal(np.asarray(ImageReader(m).open(row))[:, :, 1], a >> 8)


@pytest.mark.parametrize("arr, mode", [(np.full((8, 8), 70000, np.int32), "I"),
                                       (np.full((8, 8), 0.5, np.float32), "F")])
def test_32_bit_and_float_images_are_refused_naming_file_and_mode(tmp_path, arr, mode):
    m, row = _one_image(tmp_path, "x.tif", arr)
    with pytest.raises(StudyError) as e:
        ImageReader(m).open(row)
    assert str(e.value).startswith(f"cannot read image {tmp_path}/x.tif (manifest m1): ValueError: mode {mode} (")


def test_an_image_that_does_not_decode_is_named_with_what_to_do(tmp_path):
    """A job stops at the first unreadable image: its error names the file and the manifest, and points at
    `study manifest verify --files`, which names all of them at once."""
    m, row = _one_image(tmp_path, "x.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(StudyError) as e:
        ImageReader(m).open(row)
    assert str(e.value).startswith(f"cannot read image {tmp_path}/x.png (manifest m1): UnidentifiedImageError: ")
    assert ("`study manifest verify m1 --files` names every image of it that does not read: replace each with a good "
            "copy (a manifest holds paths, not pixels: it, the job ids and the results stay valid)") in str(e.value)


def test_a_jpeg_truncated_past_its_header_is_named_when_its_views_decode_it(tmp_path):
    """An RGB JPEG opens undecoded (for draft()); a truncated one fails in the augmentation: that error names the
    file and the manifest too, and points at `study manifest verify --files`."""
    m, row = _one_image(tmp_path, "x.jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    data = (tmp_path / "x.jpg").read_bytes()
    (tmp_path / "x.jpg").write_bytes(data[:len(data) // 2])
    ds = ViewDataset(ImageReader(m), m.table, build_augment({"preset": "simclr", "image_size": 16}), seed=0)
    with pytest.raises(StudyError) as e:
        ds[(0, 0)]
    assert str(e.value).startswith(f"cannot read image {tmp_path}/x.jpg (manifest m1): ")
    assert "`study manifest verify m1 --files` names every image of it that does not read" in str(e.value)


def _jpeg_of_size(path, width, height):
    """A real 16 x 16 JPEG whose frame header says `width` x `height`: what Image.open reads of a large photo
    (an RGB JPEG opens undecoded), written in bytes, not megabytes."""
    import io
    import struct

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))


def test_a_200_megapixel_phone_photo_opens_as_pillows_decompression_bomb_guard_would_refuse_it(tmp_path):
    """Pillow refuses over 179 MP by default (and warns from 89 MP): a 200 MP phone photo (16320 x 12240) would fail
    its job and `verify --files`; images up to OpenCV's cap of 2^30 pixels open, without a warning below 2^29."""
    m, row = _one_image(tmp_path, "x.jpg", np.zeros((8, 8, 3), np.uint8))
    _jpeg_of_size(tmp_path / "x.jpg", 16320, 12240)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = ImageReader(m).open(row)
    assert img.size == (16320, 12240) and images.is_lazy_jpeg(img)
    _jpeg_of_size(tmp_path / "x.jpg", 40000, 30000)  # 1.2 gigapixels: past OpenCV's cap, refused naming the file
    with pytest.raises(StudyError, match=rf"^cannot read image {re.escape(str(tmp_path))}/x\.jpg \(manifest m1\): "
                                         "DecompressionBombError: "):
        ImageReader(m).open(row)


class _BrokenStream:
    """An augmentation whose decoding of the (lazily opened) image fails as PIL fails on some corrupt files."""
    num_views = 1

    def sample(self, img, rng):
        raise SyntaxError("broken data stream when reading image file")


def test_a_lazily_decoded_image_that_pil_finds_broken_is_named_with_its_manifest(tmp_path):
    m, row = _one_image(tmp_path, "x.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(StudyError, match=r"^cannot read image .*x.jpg \(manifest m1\): broken data stream"):
        ViewDataset(ImageReader(m), m.table, _BrokenStream(), seed=0)[(0, 0)]


def test_8_bit_modes_read_as_pil_converts_them(tmp_path):
    """Grayscale, palette, RGBA and CMYK files: the pixels of PIL's convert("RGB"), as before 16-bit scaling."""
    rng = np.random.default_rng(1)
    images = {"l.png": Image.fromarray(rng.integers(0, 256, (9, 7), np.uint8), "L"),
              "rgba.png": Image.fromarray(rng.integers(0, 256, (9, 7, 4), np.uint8), "RGBA"),
              "p.png": Image.fromarray(rng.integers(0, 256, (9, 7, 3), np.uint8)).convert("P"),
              "cmyk.tif": Image.fromarray(rng.integers(0, 256, (9, 7, 4), np.uint8), "CMYK"),
              "bw.png": Image.fromarray(rng.integers(0, 2, (9, 7), np.uint8) * 255, "L").convert("1")}
    rows = []
    for name, img in images.items():
        img.save(tmp_path / name)
        rows.append({"path": name, "label": 0, "class_name": "x", "rank": len(rows), "labeled_rank": len(rows)})
    df = pd.DataFrame(rows)
    r = ImageReader(reader_manifest(tmp_path, df))
    for i, name in enumerate(images):
        expect = np.asarray(Image.open(tmp_path / name).convert("RGB"))
        assert np.array_equal(np.asarray(r.open(df.iloc[i])), expect), name


def test_npy_patches_choose_channels(tmp_path):
    a = np.arange(4 * 4 * 4, dtype=np.uint8).reshape(4, 4, 4)
    np.save(tmp_path / "p.npy", a)
    df = pd.DataFrame([{"path": "p.npy", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    m = reader_manifest(tmp_path, df, kind="npy")
    assert np.array_equal(np.asarray(ImageReader(m).open(df.iloc[0])), a[:, :, :3])
    nir = np.asarray(ImageReader(m, channels=[3]).open(df.iloc[0]))
    assert all(np.array_equal(nir[:, :, c], a[:, :, 3]) for c in range(3))
    m.meta["channels"] = [3, 0, 1]
    assert np.array_equal(np.asarray(ImageReader(m).open(df.iloc[0])), a[:, :, [3, 0, 1]])
    with pytest.raises(StudyError, match="channel 9"):
        ImageReader(m, channels=[9, 0, 1]).open(df.iloc[0])
    with pytest.raises(StudyError, match=r"channels must name 1 or 3 channels, got \(0, 1\)"):
        ImageReader(m, channels=[0, 1])  # refused when the reader is made, not at its first image
    np.save(tmp_path / "p.npy", np.zeros((5, 32, 32), np.uint8))  # C x H x W: channel 0 would be a 32-px column
    with pytest.raises(StudyError, match=r"p.npy .manifest m1.*shape \(5, 32, 32\) looks channels-first"):
        ImageReader(m).open(df.iloc[0])
    np.save(tmp_path / "p.npy", np.full((2, 2, 3), 0.5, np.float32))
    assert np.asarray(ImageReader(reader_manifest(tmp_path, df, kind="npy")).open(df.iloc[0])).max() == 128


def test_float_patches_are_read_as_0_to_1_whatever_their_own_values(tmp_path):
    """The scale comes from the dtype, not from each patch: a dark float patch of a dataset in [0, 1] is not
    brightened, and a float patch outside [0, 1] (a dataset in 0-255) is refused naming the file, not guessed."""
    df = pd.DataFrame([{"path": "p.npy", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    reader = ImageReader(reader_manifest(tmp_path, df, kind="npy"))
    np.save(tmp_path / "p.npy", np.full((2, 2, 3), 0.2, np.float64))
    assert np.asarray(reader.open(df.iloc[0])).max() == 51
    np.save(tmp_path / "p.npy", np.full((2, 2, 3), 0.9, np.float32))
    assert np.asarray(reader.open(df.iloc[0])).max() == 229  # float32 0.9 x 255 = 229.49999
    np.save(tmp_path / "p.npy", np.full((2, 2, 3), 200.0, np.float32))
    with pytest.raises(StudyError, match=r"p.npy.*float patch values must lie in \[0, 1\] \(found 200.0"):
        reader.open(df.iloc[0])
    np.save(tmp_path / "p.npy", np.full((2, 2, 3), 300, np.uint16))  # other integers: clipped, not rescaled
    assert np.asarray(reader.open(df.iloc[0])).max() == 255
    for bad in (-0.5, np.nan, 1.5):  # standardised patches; a missing value; just above 1
        np.save(tmp_path / "p.npy", np.array([[[0.5, bad, 0.5]]], np.float32))
        with pytest.raises(StudyError, match=r"p.npy.*float patch values must lie in \[0, 1\]"):
            reader.open(df.iloc[0])


def test_a_channel_the_patch_lacks_is_refused_naming_it(tmp_path):
    """Channels count from 0: channel 3 of a 3-channel patch is one too many, told as such, not as an IndexError;
    a 2-channel patch read with no channels named is told to name 1 or 3."""
    np.save(tmp_path / "p.npy", np.zeros((2, 2, 3), np.uint8))
    df = pd.DataFrame([{"path": "p.npy", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    with pytest.raises(StudyError, match=r"p.npy .manifest m1.: .*channel 3 asked for, the patch has 3"):
        ImageReader(reader_manifest(tmp_path, df, kind="npy"), channels=[0, 1, 3]).open(df.iloc[0])
    np.save(tmp_path / "p.npy", np.zeros((2, 2, 2), np.uint8))  # no channels named: two are not an RGB image
    with pytest.raises(StudyError, match=r"p.npy .manifest m1.: .*two channels cannot make an RGB image; name 1 or 3"):
        ImageReader(reader_manifest(tmp_path, df, kind="npy")).open(df.iloc[0])


def test_an_npz_or_another_format_under_an_npy_name_is_named_as_such(tmp_path):
    """np.load returns an archive for a zip file (an .npz saved as .npy) and says a JPEG holds pickled data: each is
    told for what it is."""
    df = pd.DataFrame([{"path": "p.npy", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    np.savez(tmp_path / "p.npz", np.zeros((2, 2, 3), np.uint8))
    (tmp_path / "p.npz").rename(tmp_path / "p.npy")
    reader = ImageReader(reader_manifest(tmp_path, df, kind="npy"))
    with pytest.raises(StudyError, match=r"p.npy .manifest m1.: ValueError: a zip archive \(.npz\), not a .npy array"):
        reader.open(df.iloc[0])
    Image.new("RGB", (2, 2)).save(tmp_path / "p.npy", format="JPEG")
    with pytest.raises(StudyError, match=r"p.npy .manifest m1.: ValueError: not a NumPy .npy file \(it begins with "
                                         r"b'\\xff"):
        reader.open(df.iloc[0])
    np.save(tmp_path / "p.npy", np.array([None, 1], dtype=object), allow_pickle=True)  # an npy of objects: as numpy
    with pytest.raises(StudyError, match=r"p.npy .manifest m1.: ValueError: Array can't be memory-mapped"):
        reader.open(df.iloc[0])


def test_an_unknown_image_kind_is_refused_when_the_reader_is_made(tmp_path):
    df = write_images(tmp_path, n=1)
    with pytest.raises(StudyError, match=r"manifest m1: unknown image kind 'tif' \(expected image, npy or idx\)"):
        ImageReader(reader_manifest(tmp_path, df, kind="tif"))
    with pytest.raises(StudyError, match="unknown image kind 'png'"):  # a pool's source of an unknown kind
        ImageReader(reader_manifest(tmp_path, df.assign(source="a"), kinds={"a": "png"}))


def test_a_single_channel_patch_reads_as_gray_rgb(tmp_path):
    """H x W and H x W x 1 patches: their one channel, repeated, with no channels named."""
    df = pd.DataFrame([{"path": "p.npy", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    reader = ImageReader(reader_manifest(tmp_path, df, kind="npy"))
    a = np.arange(4 * 5, dtype=np.uint8).reshape(4, 5)
    for arr in (a, a[:, :, None]):
        np.save(tmp_path / "p.npy", arr)
        got = np.asarray(reader.open(df.iloc[0]))
        assert got.shape == (4, 5, 3) and all(np.array_equal(got[:, :, c], a) for c in range(3))


def test_idx_rows_split_at_the_last_hash_so_a_folder_may_hold_one(tmp_path):
    root = tmp_path / "run#1"
    root.mkdir()
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(root / "imgs.idx", images)
    df = pd.DataFrame([{"path": f"imgs.idx#{i}", "label": 0, "class_name": "x", "rank": i, "labeled_rank": i}
                       for i in range(3)])
    got = np.asarray(ImageReader(reader_manifest(root, df, kind="idx")).open(df.iloc[2]))
    assert got.shape == (4, 5, 3) and np.array_equal(got[:, :, 0], images[2])


def test_an_idx_row_without_its_index_is_named_with_the_form_it_needs(tmp_path):
    write_idx(tmp_path / "imgs.idx", np.zeros((3, 4, 5), np.uint8))
    df = pd.DataFrame([{"path": "imgs.idx", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    with pytest.raises(StudyError, match=r"imgs.idx .manifest m1.: .*IDX row path must be '<file>#<index>'"):
        ImageReader(reader_manifest(tmp_path, df, kind="idx")).open(df.iloc[0])


def test_an_idx_file_that_does_not_read_is_named_with_its_manifest_and_what_to_do(tmp_path):
    """load_idx's own error names the file only; the reader's names the manifest too, as for any other image."""
    images = np.zeros((3, 4, 5), np.uint8)
    write_idx(tmp_path / "imgs.idx", images)
    (tmp_path / "imgs.idx").write_bytes((tmp_path / "imgs.idx").read_bytes()[:30])  # an interrupted copy
    df = pd.DataFrame([{"path": "imgs.idx#0", "label": 0, "class_name": "x", "rank": 0, "labeled_rank": 0}])
    with pytest.raises(StudyError) as e:
        ImageReader(reader_manifest(tmp_path, df, kind="idx")).open(df.iloc[0])
    assert str(e.value).startswith(f"cannot read image {tmp_path}/imgs.idx#0 (manifest m1): ")
    assert "truncated IDX file" in str(e.value) and "`study manifest verify m1 --files`" in str(e.value)


def test_a_pool_row_whose_source_has_no_kind_is_refused_naming_it(tmp_path):
    df = write_images(tmp_path, n=1).assign(source="b")
    with pytest.raises(StudyError, match="manifest m1: row source 'b' has no kind"):
        ImageReader(reader_manifest(tmp_path, df, kinds={"a": "image"})).open(df.iloc[0])


@pytest.mark.skipif(not FASHION.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_idx_rows_read_real_fashion_mnist():
    df = pd.DataFrame([{"path": f"{FASHION.name}#{i}", "label": 0, "class_name": "x", "rank": i, "labeled_rank": i}
                       for i in (0, 42)])
    r = ImageReader(reader_manifest(FASHION.parent, df, kind="idx"))
    img = r.open(df.iloc[1])
    assert img.mode == "RGB" and img.size == (28, 28)
    assert np.array_equal(np.asarray(img)[:, :, 1], load_idx(str(FASHION))[42])


def test_corruption_is_applied_keyed_by_manifest_seed_and_path(tmp_path):
    spec = corruptions.parse_corruption("downsample:factor=2")
    df = write_images(tmp_path, n=2, fmt="jpg")
    clean = ImageReader(reader_manifest(tmp_path, df)).open(df.iloc[1])
    m = reader_manifest(tmp_path, df)
    m.corruption = spec
    got = ImageReader(m).open(df.iloc[1])
    expect = corruptions.apply_corruption(spec, clean.convert("RGB"), f"7:{df.iloc[1]['path']}")
    assert got.mode == "RGB"
    assert np.array_equal(np.asarray(got), np.asarray(expect.convert("RGB")))
    assert not np.array_equal(np.asarray(got), np.asarray(clean))


def test_a_random_corruption_is_drawn_from_the_manifest_seed_and_the_path(tmp_path):
    """Salt and pepper draws its pixels by the key "<manifest seed>:<path>": another seed, other pixels."""
    spec = corruptions.parse_corruption("salt_pepper:fraction=0.2")
    df = write_images(tmp_path, n=2)
    clean = ImageReader(reader_manifest(tmp_path, df)).open(df.iloc[1])

    def noisy(seed):
        m = reader_manifest(tmp_path, df, seed=seed)
        m.corruption = spec
        return np.asarray(ImageReader(m).open(df.iloc[1]))

    expect = corruptions.apply_corruption(spec, clean, f"7:{df.iloc[1]['path']}")
    assert np.array_equal(noisy(7), np.asarray(expect)) and not np.array_equal(noisy(7), noisy(8))


def _clean_decode(m, row):
    """The pixels a job on the clean manifest `m` reads from `row` (augmentation's decode of the whole image)."""
    img = ImageReader(m).open(row)
    return geometric.decode_for_boxes(img, [(0, 0, img.size[1], img.size[0])], 4, False)[0]


def test_a_corrupted_variant_decodes_its_jpegs_with_the_decoder_of_the_clean_images(tmp_path, monkeypatch):
    """A clean manifest's JPEGs are decoded by augmentation's decoder (OpenCV's libjpeg-turbo); a corrupted
    variant's were decoded by Pillow's, another build (pixels up to 2 levels apart): the clean-vs-corrupted
    comparison held a decoder difference too. Here OpenCV is marked: its pixels are 123 everywhere."""
    m, row = _one_image(tmp_path, "x.jpg", np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8))
    real = images.cv2.imdecode
    monkeypatch.setattr(images.cv2, "imdecode", lambda buf, flags: np.full_like(real(buf, flags), 123))
    assert (_clean_decode(m, row) == 123).all()
    m.corruption = corruptions.parse_corruption("downsample")  # of a flat image: the same flat image
    assert (np.asarray(ImageReader(m).open(row)) == 123).all()


def test_a_damaged_jpeg_reads_the_same_in_a_clean_and_a_corrupted_manifest(tmp_path):
    """Damaged entropy data that OpenCV reads through and Pillow refuses: a clean job read it, the same file
    stopped a job on its corrupted variant ("broken data stream")."""
    m, row = _one_image(tmp_path, "x.jpg", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "x.jpg").write_bytes(damaged_jpeg())
    clean = _clean_decode(m, row)
    m.corruption = corruptions.parse_corruption("none")
    assert np.array_equal(np.asarray(ImageReader(m).open(row)), clean)


def test_an_empty_file_is_named_as_such(tmp_path):
    """A zero-byte file (a copy or download that never wrote) is "an empty file", not PIL's "cannot identify image
    file", which reads as a format problem."""
    m, row = _one_image(tmp_path, "x.jpg", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(StudyError, match=r"^cannot read image .*x\.jpg \(manifest m1\): an empty file \(0 bytes\)\. "):
        ImageReader(m).open(row)
