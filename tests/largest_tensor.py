"""LargestFloat: a torch dispatch mode that records how large the largest floating-point tensor made under it is
(to test that work over row chunks never makes a tensor of all the rows)."""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class LargestFloat(TorchDispatchMode):
    """`with LargestFloat() as largest: ...`, then `largest.numel`: the most elements of a floating-point tensor any
    torch operation made inside."""

    numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.numel = max(self.numel, t.numel())
        return out
