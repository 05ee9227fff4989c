"""Photometric operations on float images in [0, 1], shape n x 3 x H x W, one factor per image (a tensor that
broadcasts as n x 1 x 1 x 1). Each follows torchvision's definition on float tensors (`transforms.v2.functional`):
brightness, contrast and saturation blend with black, the grey mean and the grey image and clamp to [0, 1];
hue shifts HSV hue (exact, via the closed-form HSV -> RGB), grey is ITU-R 601-2 luma; the blur is a separable
Gaussian with reflect padding."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LUMA = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
BLUR_TAIL = 1e-4  # taps lighter than this fraction of the centre tap are skipped on the per-image CPU path
# (photometric_cv; the skipped taps hold < 1.5e-4 of the kernel's mass per pass: both passes move a pixel
# < 0.08 uint8 level)


def gray(x: torch.Tensor) -> torch.Tensor:
    """n x 1 x H x W luma."""
    r, g, b = x.unbind(1)
    return (r * LUMA[0] + g * LUMA[1] + b * LUMA[2]).unsqueeze(1)


def brightness(x: torch.Tensor, f) -> torch.Tensor:
    return (x * f).clamp_(0, 1)


def contrast(x: torch.Tensor, f) -> torch.Tensor:
    mean = gray(x).mean(dim=(1, 2, 3), keepdim=True)
    return (x * f).add_(mean * (1 - f)).clamp_(0, 1)


def saturation(x: torch.Tensor, f) -> torch.Tensor:
    return (x * f).add_(gray(x) * (1 - f)).clamp_(0, 1)


def hue(x: torch.Tensor, f) -> torch.Tensor:
    """Shift HSV hue by `f` (a fraction of the circle, in [-0.5, 0.5]). Value and chroma are kept; the channels
    come from the closed form  C_n = V - chroma * clamp(min(k, 4 - k), 0, 1),  k = (n + 6 h) mod 6,  n = 5, 3, 1."""
    r, g, b = x.unbind(1)
    v = x.amax(1)
    chroma = v - x.amin(1)
    inv = torch.where(chroma > 0, chroma, 1.0).reciprocal_()
    # 6 x hue in [-1, 5): the maximum channel decides the sector (red first, then green, as torchvision)
    h6 = torch.where(v == r, (g - b).mul_(inv), torch.where(v == g, (b - r).mul_(inv).add_(2),
                                                            (r - g).mul_(inv).add_(4)))
    h6 += (f * 6 + 6) if not torch.is_tensor(f) else (f * 6 + 6).view(-1, 1, 1)  # now in [2, 14)
    out = torch.empty_like(x)
    for c, n in enumerate((5.0, 3.0, 1.0)):
        k = h6 + n
        k.sub_(torch.floor(k * (1 / 6)), alpha=6)  # mod 6, cheaper than remainder on CPU
        t = torch.minimum(k, 4 - k).clamp_(0, 1)
        torch.addcmul(v, chroma, t, value=-1, out=out[:, c])
    return out


def grayscale(x: torch.Tensor) -> torch.Tensor:
    return gray(x).expand_as(x).contiguous()


def solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    return torch.where(x >= threshold, 1 - x, x)


def gaussian_kernel(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """n x size weights, normalised over `size` taps, as torchvision's `_get_gaussian_kernel1d`."""
    half = (size - 1) * 0.5
    xs = torch.linspace(-half, half, size, device=sigma.device, dtype=torch.float32)
    w = torch.exp(-0.5 * (xs.view(1, -1) / sigma.view(-1, 1).float()) ** 2)
    return w / w.sum(1, keepdim=True)


def blur(x: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Gaussian blur, kernel `size` (odd), one sigma per image; reflect padding (torchvision's)."""
    if size < 3:
        return x
    n, c, hgt, wid = x.shape
    w = gaussian_kernel(sigma, size).to(x.dtype)
    pad = size // 2
    xp = F.pad(x.reshape(1, n * c, hgt, wid), (pad, pad, pad, pad), mode="reflect")
    wk = w.repeat_interleave(c, 0)
    xp = F.conv2d(xp, wk.view(n * c, 1, 1, size), groups=n * c)
    xp = F.conv2d(xp, wk.view(n * c, 1, size, 1), groups=n * c)
    return xp.view(n, c, hgt, wid)


def blur_radius(sigma: float, size: int) -> int:
    """The radius of the truncated kernel the per-image CPU path (photometric_cv) uses for `sigma`."""
    return min(size // 2, int(math.floor(sigma * math.sqrt(-2 * math.log(BLUR_TAIL)))))
