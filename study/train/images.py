"""`ImageReader`: a manifest's images as RGB PIL images, each row decoded by its kind (image files, GLC20-style
`.npy` patches, IDX arrays) with the manifest's corruption applied; the error naming an image that does not read."""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image

from study.datasets.base import KINDS, load_npy, looks_channels_first
from study.errors import StudyError, os_reason

# Pillow refuses an image of over 2 x Image.MAX_IMAGE_PIXELS pixels as a possible decompression bomb (179 MP by
# default: a 200 MP phone photo, a stitched panorama) and warns from 89 MP. A study reads its user's own images, and
# OpenCV, which decodes its RGB JPEGs, caps a decode at 2^30 pixels (OPENCV_IO_MAX_IMAGE_PIXELS): Pillow refuses
# from there too (a warning from 2^29), unless the process set its own limit.
MAX_PIXELS = 1 << 30
PILLOW_DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)
if Image.MAX_IMAGE_PIXELS == PILLOW_DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2


def unreadable(file: Any, manifest: str, why: str) -> StudyError:
    """The error for an image of `manifest` that does not read: the file, the reason, and what to do (the first
    unreadable file of a job stops it; `study manifest verify --files` names them all at once)."""
    return StudyError(f"cannot read image {file} (manifest {manifest}): {why.rstrip('.')}. `study manifest verify "
                      f"{manifest} --files` names every image of it that does not read: replace each with a good copy "
                      "(a manifest holds paths, not pixels: it, the job ids and the results stay valid), or remove it "
                      "and build the manifest again (a new content hash: the results of jobs on it are then stale)")


class ImageReader:
    """Opens a manifest's images as RGB PIL images, its corruption (if any) applied, keyed by
    `"<manifest seed>:<relative path>"` (`corruption_key`).

    Formats by the row's kind (`manifest.kind_of`: the manifest's, or its source's in a pool of several kinds):
    "image" (anything PIL decodes; a clean RGB JPEG is returned not yet loaded so that augmentation may use draft
    decoding; an RGB JPEG of a corrupted variant is decoded by `decode_rgb`, as augmentation decodes a clean one,
    so that its images are the clean images' pixels corrupted; 16-bit grayscale keeps its high byte, 32-bit
    integer and float images are refused: `eight_bit`; EXIF orientation is not applied, alpha is dropped),
    "npy" (channels-last patches; `channels` picks 3 channels, or 1 which is repeated; default
    `manifest.channels_of(source)` or the first three), "idx" (row path `<file>#<index>`, read with
    study.datasets.idx.load_idx). Any failure raises StudyError naming the file and the manifest.
    """

    def __init__(self, manifest: Any, channels: Sequence[int] | None = None):
        self.manifest = manifest
        self.mixed = bool(manifest.meta.get("kinds"))  # a pool of sources of several kinds
        given = self._channels(channels)  # given here: for every npy row
        self._formats: dict[str | None, tuple[str, tuple[int, ...] | None]] = {}  # source -> (kind, channels)
        for source in (manifest.meta["kinds"] if self.mixed else [None]):
            kind = manifest.kind_of(source)
            if kind not in KINDS:
                raise StudyError(f"manifest {manifest.name}: unknown image kind {kind!r} (expected image, npy or idx)")
            self._formats[source] = (kind, given or self._channels(manifest.channels_of(source)))
        self.corruption = manifest.corruption
        self.seed = manifest.meta.get("seed", 0)
        self._rows: dict[str, Any] | None = None

    def _row(self, path_or_row: Any) -> Any:
        if not isinstance(path_or_row, (str, os.PathLike)):
            return path_or_row
        if self._rows is None:
            t = self.manifest.table
            self._rows = {p: i for i, p in enumerate(t["path"].tolist())}
        key = str(path_or_row)
        if key not in self._rows:
            raise StudyError(f"manifest {self.manifest.name}: no row with path {key!r}")
        return self.manifest.table.iloc[self._rows[key]]

    def open(self, path_or_row: Any) -> Image.Image:
        """The image of a manifest row (a table row, or its relative `path`), mode RGB."""
        row = self._row(path_or_row)
        file = str(self.manifest.abs_path(row))
        source = row["source"] if self.mixed else None
        if source not in self._formats:
            self.manifest.kind_of(source)  # raises: the pool records no kind for this source
        kind, channels = self._formats[source]
        try:
            if kind == "image":
                img = Image.open(file)
                if is_lazy_jpeg(img) and img.mode == "RGB":
                    if self.corruption is None:
                        return img  # not yet decoded: augmentation's decode_rgb may reduce it (1/2 to 1/8)
                    img = Image.fromarray(decode_rgb(img), "RGB")  # the clean image's decoder, not PIL's
                else:
                    img.load()
                    img = eight_bit(img).convert("RGB")
            elif kind == "npy":
                img = self._npy(load_npy(file), channels)
            else:
                img = self._idx(file)
        except StudyError as e:  # load_idx's: it names the file, not the manifest
            raise unreadable(file, self.manifest.name, str(e)) from None
        except Exception as e:
            why = empty_reason(file) or f"{type(e).__name__}: {os_reason(e)}"
            raise unreadable(file, self.manifest.name, why) from None
        if self.corruption is not None:
            from study.corruptions import apply_corruption

            img = apply_corruption(self.corruption, img, self.corruption_key(row)).convert("RGB")
        return img

    def corruption_key(self, row: Any) -> str:
        """What a row's corruption draws are keyed by: "<seed>:<path>", with the row's source in a pooled manifest
        ("<seed>:<source>:<path>"), where two sources may hold the same relative path. The path, not the rank key:
        the same images in two folder layouts (Places365's `data_256/`, `data_256_standard/`) get the same subsets but
        other noise. Kept so: keying by the rank key would change the pixels of every existing corrupted manifest."""
        if self.manifest.meta.get("roots"):
            return f"{self.seed}:{row['source']}:{row['path']}"
        return f"{self.seed}:{row['path']}"

    def _channels(self, ch: Sequence[int] | None) -> tuple[int, ...] | None:
        if ch is None:
            return None
        ch = tuple(int(c) for c in ch)
        if len(ch) not in (1, 3):
            raise StudyError(f"manifest {self.manifest.name}: channels must name 1 or 3 channels, got {ch}")
        return ch

    def _npy(self, arr: np.ndarray, channels: tuple[int, ...] | None) -> Image.Image:
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"expected an H x W x C array, got shape {arr.shape}")
        if looks_channels_first(arr.shape):
            raise ValueError(f"shape {arr.shape} looks channels-first (C x H x W); save patches as H x W x C")
        ch = channels or tuple(range(min(3, arr.shape[2])))
        if max(ch) >= arr.shape[2]:
            raise ValueError(f"channel {max(ch)} asked for, the patch has {arr.shape[2]} (0-{arr.shape[2] - 1}; shape "
                             f"{arr.shape})")
        a = np.asarray(arr[:, :, list(ch)])
        if np.issubdtype(a.dtype, np.floating):  # by dtype, never by a patch's own values: [0, 1] -> 0-255
            if a.size and not (np.nanmin(a) >= -1e-6 and np.nanmax(a) <= 1 + 1e-6 and not np.isnan(a).any()):
                raise ValueError(f"float patch values must lie in [0, 1] (found {np.min(a)} to {np.max(a)}); save "
                                 f"patches as uint8 (0-255) or scale them to [0, 1]")
            a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
        elif a.dtype != np.uint8:  # other integers: values as they are, clipped to 0-255
            a = np.clip(a, 0, 255).astype(np.uint8)
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        elif a.shape[2] == 2:
            raise ValueError("two channels cannot make an RGB image; name 1 or 3")
        return Image.fromarray(np.ascontiguousarray(a), "RGB")

    def _idx(self, file: str) -> Image.Image:
        from study.datasets.idx import load_idx

        name, sep, index = file.rpartition("#")
        if not sep:
            raise ValueError("IDX row path must be '<file>#<index>'")
        images = load_idx(name)
        a = np.asarray(images[int(index)])
        if a.ndim == 2:
            return Image.fromarray(a, "L").convert("RGB")
        return Image.fromarray(a).convert("RGB")


def eight_bit(img: Image.Image) -> Image.Image:
    """`img` with 8-bit channels, scaled by its bit depth, never by its values: 16-bit grayscale (modes I;16*, and a
    PNG's mode I, as Pillow < 10 opens 16-bit PNGs) keeps its high byte, as Pillow keeps it of 16-bit RGB; other
    modes as they are. A 32-bit integer or float image (mode I, F) has no depth to scale by: ValueError naming it."""
    if img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PNG"):
        return Image.fromarray((np.asarray(img) >> 8).astype(np.uint8), "L")
    if img.mode in ("I", "F"):
        what = "32-bit integer" if img.mode == "I" else "floating-point"
        raise ValueError(f"mode {img.mode} ({what} pixels) has no fixed range to read as 8-bit RGB; save the "
                         "image with 8 or 16 bits per channel")
    return img


def empty_reason(file: str) -> str | None:
    """"an empty file (0 bytes)" for a file of no bytes (a download or copy that never wrote), which PIL names only
    as "cannot identify image file"; else None."""
    try:
        return "an empty file (0 bytes)" if os.path.getsize(file) == 0 else None
    except OSError:
        return None


# cv2.imdecode flags per libjpeg reduction: RGB order, EXIF orientation ignored (as PIL and torchvision do)
JPEG_FLAGS = {d: (f & ~cv2.IMREAD_COLOR_BGR) | cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION for d, f in (
    (1, cv2.IMREAD_COLOR_BGR), (2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
    (8, cv2.IMREAD_REDUCED_COLOR_8))}


def is_lazy_jpeg(img: Image.Image) -> bool:
    """An opened JPEG whose pixels have not been decoded yet (so its decode can still be reduced)."""
    return img.format == "JPEG" and bool(getattr(img, "tile", None))


def jpeg_bytes(img: Image.Image) -> bytes | None:
    """The whole file of a lazy JPEG, when it is complete (ends with the EOI marker); else None (PIL decodes it,
    and raises on a truncated file)."""
    fp = getattr(img, "fp", None)
    if fp is None:
        return None
    pos = fp.tell()
    fp.seek(0)
    data = fp.read()
    fp.seek(pos)
    return data if data.endswith(b"\xff\xd9") else None


def decode_rgb(img: Image.Image, denom: int = 1) -> np.ndarray:
    """`img`'s pixels as an RGB uint8 H x W x 3 array, as every path that reads a manifest's images decodes them
    (augmentation for training and evaluation, a corrupted variant before its corruption, `verify --files`,
    `materialize`): a lazy RGB JPEG by OpenCV's libjpeg-turbo, at 1/`denom` scale (1, 2, 4 or 8; PIL's draft where
    OpenCV does not decode it: a file with bytes after its end, or truncated, which PIL then refuses), anything
    else by PIL. OpenCV reads through damaged entropy data (libjpeg's recovery: part of the image grey or garbled,
    a "Corrupt JPEG data" line on stderr) where PIL refuses the file ("broken data stream"): one decoder for every
    path, so that a file reads, or fails, the same way in each."""
    width, height = img.size
    if is_lazy_jpeg(img) and img.mode == "RGB":
        data = jpeg_bytes(img)
        if data is not None:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), JPEG_FLAGS[denom])
            if arr is not None:
                return arr
        if denom > 1:
            img.draft("RGB", (math.ceil(width / denom), math.ceil(height / denom)))
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
