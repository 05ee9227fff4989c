"""Test-set accuracy from class scores that arrive a block of rows at a time: each row keeps its k best classes
(N x k indices), never its scores (iNat21's 100k test images x 10,000 classes are 4 GB of scores, and each taxonomy
level's scores as much again)."""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch

View = Callable[[torch.Tensor], torch.Tensor]  # a block's scores -> other scores of its rows (a taxonomy level's)


def ranked(blocks: Iterable[torch.Tensor], k: int,
           views: Sequence[View | None] = (None,)) -> list[torch.Tensor | None]:
    """For each view (None: the scores themselves), each row's best min(k, width) classes, best first (on CPU, rows
    in the blocks' order). Each None when a score is not finite (a diverged classifier: its ranking would put NaN
    first and score chance, not a missing value); the blocks after the first such one are not computed."""
    out: list[list[torch.Tensor]] = [[] for _ in views]
    for scores in blocks:
        if not bool(torch.isfinite(scores).all()):
            return [None] * len(views)
        for kept, view in zip(out, views):
            s = scores if view is None else view(scores)
            kept.append(_best(s, k).cpu())
    return [torch.cat(kept) if kept else torch.zeros(0, k, dtype=torch.long) for kept in out]


class TopClasses:
    """`top(scores)`: each row's best min(k, width) classes of a block of scores, best first, on the scores' device
    (for work that keeps only each block's result, e.g. features.forward_rows' `keep`). `top.finite` turns False at
    the first block with a score that is not finite: then the ranks are no accuracy (see `ranked`)."""

    def __init__(self, k: int):
        self.k, self.finite = k, True

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        self.finite = self.finite and bool(torch.isfinite(scores).all())
        return _best(scores, self.k)


def _best(scores: torch.Tensor, k: int) -> torch.Tensor:
    return scores.topk(min(k, scores.shape[1]), dim=1).indices


def hit_rate(ranks: torch.Tensor | None, y: torch.Tensor, k: int) -> float:
    """The fraction of rows whose label is among their first k ranked classes (compared on the ranks' device: y may
    be on another, e.g. a probe's held-out labels on the GPU); NaN with no row or no ranks (None: a diverged
    classifier). Exact: hits / rows in double precision (a float32 mean gives 0.38999998569488525 for 0.39)."""
    if ranks is None or len(y) == 0:
        return math.nan
    return int((ranks[:, :k] == y.to(ranks.device)[:, None]).any(dim=1).sum()) / len(y)
