"""The photometric operations of one image on CPU, with OpenCV: the same definitions as `photometric` (torchvision's
on float tensors), on a float32 H x W x 3 array.

Brightness, contrast, saturation, grayscale and the final normalisation are affine colour maps (y = M x + b per
pixel). `ColourImage` composes them without touching the pixels and applies the composite with one `cv2.transform`
only when the pixels are needed: a clamp (a factor > 1 can leave [0, 1]; a factor <= 1 blends points of [0, 1] and
cannot), a hue rotation, a blur or a solarize. Hue goes through OpenCV's float HSV (exact, H in degrees); the blur
is torchvision's kernel truncated at `photometric.blur_radius`, with reflect border (torchvision's padding).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from study.train.augment.photometric import LUMA, blur_radius

_I = np.eye(3)
_LUMA = np.array(LUMA)
_GRAY = np.outer(np.ones(3), _LUMA)  # every channel := luma
_EYE4 = np.eye(4)
_GRAY4 = np.eye(4)
_GRAY4[:3, :3] = _GRAY


def _h(m: np.ndarray, b=0.0) -> np.ndarray:
    """The 4 x 4 homogeneous matrix of y = m x + b."""
    h = _EYE4.copy()
    h[:3, :3] = m
    h[:3, 3] = b
    return h


class ColourImage:
    """One image, `value = A @ [pixels, 1]` per pixel, with the 3 x 4 map A pending until `pixels()` applies it."""

    def __init__(self, u8: np.ndarray):
        self.x = u8.astype(np.float32)  # H x W x 3, contiguous
        self.a = _h(_I / 255)  # 4 x 4 homogeneous; rows 0-2 are A
        self.pending = True
        self._means: np.ndarray | None = None  # per-channel means of self.x, cached

    @classmethod
    def from_planes(cls, chw: np.ndarray) -> "ColourImage":
        """From a uint8 3 x H x W array."""
        return cls(cv2.merge([np.ascontiguousarray(p) for p in chw]))

    def affine(self, h: np.ndarray) -> None:
        """Compose the homogeneous map `h` (4 x 4) after the current value."""
        self.a = h @ self.a
        self.pending = True

    def pixels(self) -> np.ndarray:
        """The current value as a float32 array (applies what is pending)."""
        if self.pending:
            self.set(cv2.transform(self.x, self.a[:3].astype(np.float32)))
        return self.x

    def set(self, x: np.ndarray) -> None:
        self.x, self.a, self.pending, self._means = x, _EYE4.copy(), False, None

    def clamp(self) -> None:
        x = self.pixels()  # to [0, 1] in place: two threshold passes cost half of np.clip's one
        cv2.threshold(x, 1.0, 1.0, cv2.THRESH_TRUNC, dst=x)
        cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO, dst=x)
        self.set(x)

    def gray_mean(self) -> float:
        """Mean luma of the current value (linear, so computed from the pending map and the raw channel means)."""
        if self._means is None:
            self._means = np.array(cv2.mean(self.x)[:3] + (1.0,))
        return float(_LUMA @ (self.a[:3] @ self._means))

    # ------------------------------------------------------------------ operations
    def brightness(self, f: float) -> None:
        self.a[:3] *= f
        self.pending = True
        if f > 1:
            self.clamp()

    def contrast(self, f: float) -> None:
        self.affine(_h(f * _I, (1 - f) * self.gray_mean()))
        if f > 1:
            self.clamp()

    def saturation(self, f: float) -> None:
        self.affine(_h(f * _I + (1 - f) * _GRAY))
        if f > 1:
            self.clamp()

    def hue(self, f: float) -> None:
        hsv = cv2.cvtColor(self.pixels(), cv2.COLOR_RGB2HSV)  # H in [0, 360)
        # shift H by 360 f, plus 360 so that it stays >= 0: OpenCV's HSV -> RGB takes H modulo 360
        cv2.add(hsv, (360.0 * (1 + f), 0.0, 0.0, 0.0), dst=hsv)
        self.set(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))

    def grayscale(self) -> None:
        self.affine(_GRAY4)

    def blur(self, sigma: float, size: int) -> None:
        r = blur_radius(sigma, size)
        if r > 0:
            k = gaussian_taps(sigma, size, r)
            self.set(cv2.sepFilter2D(self.pixels(), -1, k, k, borderType=cv2.BORDER_REFLECT_101))

    def solarize(self, threshold: float) -> None:
        x = self.pixels()
        np.subtract(1.0, x, out=x, where=x >= threshold)
        self.set(x)

    def normalised_into(self, out: torch.Tensor, scale: np.ndarray, shift: np.ndarray) -> None:
        """Write `value * scale + shift` (per channel) into `out`, a contiguous 3 x H x W float32 tensor: one
        single-row `cv2.transform` per plane (half the time of a 3-channel transform and a split)."""
        self.affine(_h(np.diag(scale), shift))
        a, planes = self.a[:3].astype(np.float32), out.numpy()
        for c in range(3):
            cv2.transform(self.x, a[c:c + 1], dst=planes[c])


def gaussian_taps(sigma: float, size: int, radius: int) -> np.ndarray:
    """The central 2 radius + 1 taps of torchvision's `size`-tap Gaussian (normalised over all `size` taps)."""
    half = (size - 1) * 0.5
    w = np.exp(-0.5 * (np.linspace(-half, half, size, dtype=np.float32) / np.float32(sigma)) ** 2)
    return (w / w.sum())[size // 2 - radius:size // 2 + radius + 1]


JITTER = (ColourImage.brightness, ColourImage.contrast, ColourImage.saturation, ColourImage.hue)
