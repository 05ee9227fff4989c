"""`in_fp32`: a loss computed in float32 whatever the surrounding autocast."""
from __future__ import annotations

import functools

import torch


def _fp32(x):
    """A half/bf16 tensor as float32; float32/float64 tensors and non-tensors unchanged."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.to(torch.promote_types(x.dtype, torch.float32))
    return x


def in_fp32(loss):
    """Wrap `loss` so that its floating tensor arguments are cast up to float32 and its body runs with autocast
    off on their device: under bf16 autocast a similarity matrix would otherwise be computed in bf16 (cosines
    near 1 off by ~4e-3, logits by ~4e-2 at temperature 0.1)."""

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        args = tuple(_fp32(a) for a in args)
        kwargs = {k: _fp32(v) for k, v in kwargs.items()}
        device = next((a.device.type for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return loss(*args, **kwargs)

    return wrapper
