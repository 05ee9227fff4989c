"""IDX files (MNIST / Fashion-MNIST format, optionally gzipped): `load_idx(path) -> np.ndarray`, cached per file."""
from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from study.errors import StudyError, os_reason

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an IDX file declares, reading only its header; an uncompressed file shorter than they
    declare (an interrupted copy) is refused here too, a gzipped one only once `load_idx` reads it."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            dtype, shape = _header(path, f.read(4), lambda ndim: f.read(4 * ndim))
            if opener is open and os.fstat(f.fileno()).st_size < _end(shape, dtype):  # a .gz: known once read
                raise StudyError(f"{path}: truncated IDX file: {shape} of {dtype} declared")
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a .gz damaged mid-stream
        raise StudyError(f"{path}: cannot read IDX file: {os_reason(e)}") from None
    return dtype, shape


def _header(path: Path, magic: bytes, dims_of: Callable[[int], bytes]) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) of an IDX header: `magic` its first 4 bytes, `dims_of(ndim)` the 4 x ndim bytes after them."""
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
        raise StudyError(f"{path}: not an IDX file (bad magic number)")
    if magic[3] == 0:  # no dimensions: no array to read (numpy would fail to shape its 0 values as a scalar)
        raise StudyError(f"{path}: not an IDX array (its header declares no dimensions)")
    dims = dims_of(magic[3])
    if len(dims) != 4 * magic[3]:
        raise StudyError(f"{path}: truncated IDX header")
    return np.dtype(_DTYPES[magic[2]]), tuple(int(d) for d in np.frombuffer(dims, ">u4"))


def _end(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """The size of a whole IDX file of `shape` and `dtype`: its header, then the values."""
    return 4 + 4 * len(shape) + (int(np.prod(shape)) if shape else 0) * dtype.itemsize


@functools.lru_cache(maxsize=8)
def _load(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise StudyError(f"IDX file not found: {p}")
    opener = gzip.open if p.name.endswith(".gz") else open
    try:
        with opener(p, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a .gz damaged mid-stream
        raise StudyError(f"{p}: cannot read IDX file: {os_reason(e)}") from None
    dtype, shape = _header(p, data[:4], lambda ndim: data[4:4 + 4 * ndim])
    if len(data) < _end(shape, dtype):
        raise StudyError(f"{p}: truncated IDX file: {shape} of {dtype} declared")
    count = int(np.prod(shape)) if shape else 0
    arr = np.frombuffer(data, dtype, count=count, offset=4 + 4 * len(shape)).reshape(shape)
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """The array of an IDX file (uint8 N x H x W for images, N for labels); read once, then cached (read-only)."""
    return _load(os.fspath(Path(path).resolve()))
