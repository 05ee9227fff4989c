"""IDX files (the MNIST format) written as the format stores them, shared by the reader and data-pipeline tests."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}  # the format's type codes; values stored big-endian


def idx_bytes(array: np.ndarray) -> bytes:
    """The bytes of an IDX file of `array`: its header, then its values, multi-byte ones big-endian as the format
    stores them."""
    array = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    return bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file of `array` (`idx_bytes`), gzipped when `path` ends in `.gz`."""
    with (gzip.open if path.name.endswith(".gz") else open)(path, "wb") as f:
        f.write(idx_bytes(array))
    return path
