"""IDX files (the MNIST format) written as the format stores them, shared by the reader and data-pipeline tests."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}  # the format's type codes; values stored big-endian


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file, gzipped when `path` ends in `.gz`; multi-byte values written big-endian, as the format stores
    them."""
    array = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with (gzip.open if path.name.endswith(".gz") else open)(path, "wb") as f:
        f.write(header + array.tobytes())
    return path
