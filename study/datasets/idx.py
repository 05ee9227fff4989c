"""IDX files (MNIST / Fashion-MNIST format, optionally gzipped): `load_idx(path) -> np.ndarray`, cached per file."""
from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from study.errors import StudyError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an IDX file declares, reading only its header; an uncompressed file shorter than they
    declare (an interrupted copy) is refused here too, a gzipped one only once `load_idx` reads it."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise StudyError(f"{path}: not an IDX file (bad magic number)")
            ndim = head[3]
            dims = f.read(4 * ndim)
            if len(dims) != 4 * ndim:
                raise StudyError(f"{path}: truncated IDX header")
            shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
            dtype = np.dtype(_DTYPES[head[2]])
            if opener is open and os.fstat(f.fileno()).st_size < _end(shape, dtype):  # a .gz: known once read
                raise StudyError(f"{path}: truncated IDX file: {shape} of {dtype} declared")
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a .gz damaged mid-stream
        raise StudyError(f"{path}: cannot read IDX file: {e}") from None
    return dtype, shape


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
        raise StudyError(f"{p}: cannot read IDX file: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise StudyError(f"{p}: not an IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    count = int(np.prod(shape)) if shape else 0
    offset = 4 + 4 * ndim
    if len(data) < _end(shape, dtype):
        raise StudyError(f"{p}: truncated IDX file: {shape} of {dtype} declared")
    arr = np.frombuffer(data, dtype, count=count, offset=offset).reshape(shape)
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """The array of an IDX file (uint8 N x H x W for images, N for labels); read once, then cached (read-only)."""
    return _load(os.fspath(Path(path).resolve()))
