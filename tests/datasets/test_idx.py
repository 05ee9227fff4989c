"""study.datasets.idx: the header (type code, dimensions) and the values of each of the format's types."""
import numpy as np
import pytest
from idx_files import IDX_CODES, write_idx

from study.datasets.idx import load_idx, read_idx_header
from study.errors import StudyError


@pytest.mark.parametrize("dtype", list(IDX_CODES), ids=str)
def test_each_type_code_reads_back_its_values_and_declared_shape(tmp_path, dtype):
    """Signed bytes (0x09) keep their sign, multi-byte values (0x0B..0x0E) are read big-endian at their own width."""
    values = np.array({"u": [[0, 1, 255]], "i": [[0, 1, -2], [100, -128, 127]], "f": [[0.5, -1.25, 3e8]]}[dtype.kind])
    path = write_idx(tmp_path / f"{dtype.str[1:]}-idx2", values.astype(dtype))
    assert read_idx_header(path) == (dtype, values.shape)
    got = load_idx(path)
    assert got.dtype == dtype.newbyteorder("=") and got.tolist() == values.tolist()


@pytest.mark.parametrize("read", [read_idx_header, load_idx])
def test_a_bad_second_magic_byte_and_a_cut_header_are_refused(tmp_path, read):
    """Only the first 4 + 4 x ndim bytes are the header: one cut inside its dimensions is named, not read as fewer
    dimensions (a 20 x 28 x 28 file cut after its first dimension would read as 20 labels); `load_idx` raised a bare
    ValueError of numpy's there."""
    good = write_idx(tmp_path / "images-idx3", np.zeros((20, 28, 28), np.uint8)).read_bytes()
    (tmp_path / "magic-idx3").write_bytes(b"\x00\x01" + good[2:])
    with pytest.raises(StudyError, match=r"magic-idx3: not an IDX file \(bad magic number\)$"):
        read(tmp_path / "magic-idx3")
    for k, cut in enumerate((3, 8, 10)):
        (tmp_path / f"cut{k}-idx3").write_bytes(good[:cut])
        message = "not an IDX file \\(bad magic number\\)" if cut < 4 else "truncated IDX header"
        with pytest.raises(StudyError, match=rf"cut{k}-idx3: {message}$"):
            read(tmp_path / f"cut{k}-idx3")


def test_a_cut_uncompressed_file_is_refused_from_its_header_and_size(tmp_path):
    """The reader indexes Fashion-MNIST from the images file's header alone: an interrupted copy of the uncompressed
    file was indexed in full, and failed only in training."""
    whole = write_idx(tmp_path / "images-idx3", np.zeros((20, 28, 28), np.uint8))
    assert read_idx_header(whole) == (np.dtype(np.uint8), (20, 28, 28))
    (tmp_path / "cut-idx3").write_bytes(whole.read_bytes()[:-1])
    for read in (read_idx_header, load_idx):
        with pytest.raises(StudyError, match=r"cut-idx3: truncated IDX file: \(20, 28, 28\) of uint8 declared$"):
            read(tmp_path / "cut-idx3")


@pytest.mark.parametrize("read", [read_idx_header, load_idx])
def test_a_bad_first_magic_byte_an_unknown_type_code_and_no_dimensions_are_refused(tmp_path, read):
    """Only `00 00 <type> <ndim>` opens an IDX array: a first byte that is not 0, a type code the format lacks (0x07),
    and a header of no dimensions (whose 0 values numpy failed to shape: a bare ValueError) are named."""
    good = write_idx(tmp_path / "labels-idx1", np.arange(5, dtype=np.uint8)).read_bytes()
    for name, data, message in (("first", b"\x01" + good[1:], r"not an IDX file \(bad magic number\)"),
                                ("code", good[:2] + b"\x07" + good[3:], r"not an IDX file \(bad magic number\)"),
                                ("nodims", good[:3] + b"\x00", r"not an IDX array \(its header declares no "
                                                               r"dimensions\)")):
        (tmp_path / f"{name}-idx1").write_bytes(data)
        with pytest.raises(StudyError, match=rf"{name}-idx1: {message}$"):
            read(tmp_path / f"{name}-idx1")


def test_the_header_of_a_gzipped_file_cut_short_is_refused(tmp_path):
    """An interrupted download of a `.gz`: reading even its header meets the stream's end (EOFError, a traceback)."""
    data = write_idx(tmp_path / "images-idx3.gz", np.zeros((20, 28, 28), np.uint8)).read_bytes()
    (tmp_path / "cut-idx3.gz").write_bytes(data[:20])
    with pytest.raises(StudyError, match=r"cut-idx3.gz: cannot read IDX file: Compressed file ended"):
        read_idx_header(tmp_path / "cut-idx3.gz")


def test_the_cached_array_is_read_only_and_keyed_by_the_absolute_path(tmp_path, monkeypatch):
    """One array per file, shared by every caller: none may write into it (a big-endian file's values too, which are
    a converted copy); a relative path read from another working folder is another file, not the cached one."""
    for d, n in (("a", 3), ("b", 5)):
        (tmp_path / d).mkdir()
        write_idx(tmp_path / d / "labels-idx1", np.arange(n, dtype=np.int16))
    monkeypatch.chdir(tmp_path / "a")
    first = load_idx("labels-idx1")
    assert first.tolist() == [0, 1, 2] and not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 9
    monkeypatch.chdir(tmp_path / "b")
    assert load_idx("labels-idx1").tolist() == [0, 1, 2, 3, 4]


def test_a_file_the_system_refuses_to_read_is_named_once_with_the_reason(tmp_path, monkeypatch):
    """An OSError's text repeats the file name ("[Errno 13] Permission denied: '/data/...'"): the message names the
    file first, then the reason alone."""
    from study.datasets import idx

    path = write_idx(tmp_path / "locked-idx1", np.arange(4, dtype=np.uint8))

    def refuse(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(idx, "open", refuse, raising=False)  # root reads any file: the refusal is simulated
    for read in (read_idx_header, load_idx):
        with pytest.raises(StudyError) as e:
            read(path)
        assert str(e.value) == f"{path}: cannot read IDX file: Permission denied"
