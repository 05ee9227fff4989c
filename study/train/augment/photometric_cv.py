"""The photometric operations of one image on CPU, with OpenCV: the same definitions as `photometric` (torchvision's
on float tensors), on a float32 H x W x 3 array, or H x W once the image is grey (its three channels equal: a third
of the work for what follows, the blur above all).

Brightness, contrast, saturation, grayscale and the final normalisation are affine colour maps (y = A [x, 1] per
pixel). `ColourImage` composes them without touching the pixels and applies the composite with one `cv2.transform`
only when the pixels are needed: a clamp (a factor > 1 can leave [0, 1]; a factor <= 1 blends points of [0, 1] and
cannot), a hue rotation, a blur or a solarize. Hue goes through OpenCV's float HSV (exact, H in degrees); the blur
is torchvision's kernel truncated at `photometric.blur_radius`, with reflect border (torchvision's padding).
The maps are small float64 arrays updated in place: per image, numpy's per-call overhead is the cost to keep low.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from study.train.augment.photometric import LUMA, blur_radius

_LUMA = np.array(LUMA)
_ID = {3: np.eye(3, 4), 2: np.array([[1.0, 0.0]] * 3)}  # per x.ndim (H x W x 3, or H x W grey): [x, 1] -> x


class ColourImage:
    """One image, `value = A @ [pixels, 1]` per pixel, with the 3 x 4 map A (3 x 2 on grey pixels) pending until
    `pixels()` applies it. `gray`: the value's channels are equal (then `pixels()` keeps one)."""

    def __init__(self, u8: np.ndarray):
        self.x = u8.astype(np.float32)  # H x W x 3, contiguous
        self.a = _ID[3] / 255
        self.pending, self.gray = True, False
        self._means: np.ndarray | None = None  # per-channel means of self.x (and 1), cached

    @classmethod
    def from_planes(cls, chw: np.ndarray) -> "ColourImage":
        """From a uint8 3 x H x W array."""
        return cls(cv2.merge(list(np.ascontiguousarray(chw))))

    def pixels(self) -> np.ndarray:
        """The current value as a float32 array (applies what is pending)."""
        if self.pending:
            self.set(cv2.transform(self.x, self.a[:1 if self.gray else 3].astype(np.float32)))
        return self.x

    def set(self, x: np.ndarray) -> None:
        """Hold the value `x` (H x W x 3, or H x W: grey)."""
        self.x, self.a, self.pending, self._means = x, _ID[x.ndim].copy(), False, None
        self.gray = x.ndim == 2

    def clamp(self, low: bool = True) -> None:
        """To [0, 1] in place (two threshold passes cost half of np.clip's one); `low=False`: to <= 1 only."""
        x = self.pixels()
        cv2.threshold(x, 1.0, 1.0, cv2.THRESH_TRUNC, dst=x)
        if low:
            cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO, dst=x)
        self._means = None

    def gray_mean(self) -> float:
        """Mean luma of the current value (linear, so computed from the pending map and the raw channel means)."""
        if self._means is None:
            self._means = np.array(cv2.mean(self.x)[:self.a.shape[1] - 1] + (1.0,))
        return float(_LUMA @ (self.a @ self._means))

    # ------------------------------------------------------------------ operations
    def brightness(self, f: float) -> None:
        self.a *= f
        self.pending = True
        if f > 1:
            self.clamp(low=False)  # a value in [0, 1] times f >= 0 stays >= 0

    def contrast(self, f: float) -> None:
        shift = (1 - f) * self.gray_mean()
        self.a *= f
        self.a[:, -1] += shift
        self.pending = True
        if f > 1:
            self.clamp()

    def saturation(self, f: float) -> None:
        gray = (1 - f) * (_LUMA @ self.a)  # the luma row of A, weighted
        self.a *= f
        self.a += gray
        self.pending = True
        if f > 1:
            self.clamp()

    def hue(self, f: float) -> None:
        if self.gray:  # saturation 0: no hue to shift
            return
        hsv = cv2.cvtColor(self.pixels(), cv2.COLOR_RGB2HSV)  # H in [0, 360)
        # shift H by 360 f, plus 360 so that it stays >= 0: OpenCV's HSV -> RGB takes H modulo 360
        cv2.add(hsv, (360.0 * (1 + f), 0.0, 0.0, 0.0), dst=hsv)
        self.set(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))

    def grayscale(self) -> None:
        self.a[:] = _LUMA @ self.a
        self.pending, self.gray = True, True

    def blur(self, sigma: float, size: int) -> None:
        r = blur_radius(sigma, size)
        if r > 0:
            k = gaussian_taps(sigma, size, r)
            self.set(cv2.sepFilter2D(self.pixels(), -1, k, k, borderType=cv2.BORDER_REFLECT_101))

    def solarize(self, threshold: float) -> None:
        x = self.pixels()
        np.subtract(1.0, x, out=x, where=x >= threshold)
        self._means = None

    def normalised_into(self, out: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
        """Write `value * scale + shift` (per channel) into `out`, a contiguous 3 x H x W float32 array: one
        single-row `cv2.transform` per plane (half the time of a 3-channel transform and a split); a grey value
        is first reduced to one channel (its planes then read a third of the pixels)."""
        if self.gray:
            self.pixels()
        a = self.a * scale[:, None]
        a[:, -1] += shift
        a = a.astype(np.float32)
        for c in range(3):
            cv2.transform(self.x, a[c:c + 1], dst=out[c])


def normalise_planes(u8: np.ndarray, out: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
    """Write `u8 / 255 * scale + shift` (per channel) of a uint8 3 x H x W array into `out` (float32, same shape):
    an image no operation touched, one pass per plane."""
    for c in range(3):
        cv2.addWeighted(u8[c], scale[c] / 255, u8[c], 0.0, shift[c], dst=out[c], dtype=cv2.CV_32F)


@functools.lru_cache(maxsize=None)
def _tap_positions(size: int) -> np.ndarray:
    half = (size - 1) * 0.5
    return np.linspace(-half, half, size, dtype=np.float32)


def gaussian_taps(sigma: float, size: int, radius: int) -> np.ndarray:
    """The central 2 radius + 1 taps of torchvision's `size`-tap Gaussian (normalised over all `size` taps)."""
    w = np.exp(-0.5 * (_tap_positions(size) / np.float32(sigma)) ** 2)
    return (w / w.sum())[size // 2 - radius:size // 2 + radius + 1]


JITTER = (ColourImage.brightness, ColourImage.contrast, ColourImage.saturation, ColourImage.hue)
