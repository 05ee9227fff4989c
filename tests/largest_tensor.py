"""LargestFloat: a torch dispatch mode that records how large the largest floating-point tensor made under it is
(to test that work over row chunks never makes a tensor of all the rows)."""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class LargestFloat(TorchDispatchMode):
    """`with LargestFloat() as largest: ...`, then `largest.numel`: the most elements of a floating-point tensor any
    torch operation made inside (a view of an input, or an input changed in place, is not made); `largest.made`: the
    number of elements of each, in order."""

    numel = 0

    def __init__(self):
        super().__init__()
        self.made: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(a, torch.Tensor)}
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.untyped_storage().data_ptr() not in inputs:
                self.made.append(t.numel())
                self.numel = max(self.numel, t.numel())
        return out
