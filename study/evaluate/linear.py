"""The linear probe: multinomial logistic regression on frozen (standardized) features.

    loss(W, b) = mean_i CE(W z_i + b, y_i) + wd * ||W||_F^2,   z = (x - mean) / std

The weight decay `wd` is chosen from a grid by top-1 (ties: cross-entropy) on a class-stratified held-out part of
the labeled subset (fits warm-started from the strongest penalty down), then the probe is refit on all of it (a refit
that diverges gives way to the next-ranked value, as the result's `choice` says). Each
fit standardizes with the mean and std of the rows it trains on: the held-out rows never shape the features the
weight decay is chosen with, and the test rows never shape anything.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from study.evaluate import lbfgs, ranking
from study.evaluate.config import LinearConfig
from study.train.tf32 import tf32_matmuls

# what a result's protocol records of the standardization (with linear.standardize)
STANDARDIZED_WITH = "each fit's own training rows (held-out rows excluded while the weight decay is chosen)"
# the most values a row chunk holds, as logits (rows x classes) or as z-scored features (rows x dims): beyond it the
# full-batch loss and gradient are summed over row chunks, each chunk's rows read and z-scored as it is used (the
# same sums; iNat21's 2.7M x 10,000 logits would otherwise take 107 GB, a z-scored copy of its features 22 GB)
CHUNK_LOGITS = 2 ** 26


@dataclass(frozen=True)
class Scaler:
    """Per-feature z-scoring with the statistics of the rows it was fit on (constant features get std 1)."""

    mean: torch.Tensor  # 1 x D
    std: torch.Tensor  # 1 x D

    @classmethod
    def fit(cls, x: torch.Tensor, index: torch.Tensor | None = None) -> "Scaler":
        """The statistics of x's rows `index` (all of them where None); over row chunks when they do not fit in one,
        so that no copy of them all is made: two passes of chunk sums added in float64, the first of the rows less
        the first row (a constant column's mean exact, so that its std is 0 and becomes 1), the second of the rows
        less that mean, corrected for the mean's rounding to x's dtype (the corrected two-pass variance)."""
        rows = Rows(x, index)
        chunks = _row_chunks(len(rows), x.shape[1])
        if len(chunks) == 1:
            part = rows.read(chunks[0])
            mean, std = part.mean(0, keepdim=True), part.std(0, unbiased=False, keepdim=True)
        else:
            n, shift = len(rows), rows.read(slice(0, 1), own=True)  # sum(dtype=) would copy a chunk in float64
            total = sum(rows.read(c, own=True).sub_(shift).sum(0, keepdim=True).double() for c in chunks)
            mean = (shift.double() + total / n).to(x.dtype)
            first, second = 0.0, 0.0
            for c in chunks:
                part = rows.read(c, own=True).sub_(mean)
                first = first + part.sum(0, keepdim=True).double()
                second = second + part.square_().sum(0, keepdim=True).double()
                del part  # freed before the next chunk is read
            std = (second / n - (first / n).square()).clamp_min(0).sqrt().to(x.dtype)
        return cls(mean, torch.where(std > 1e-8, std, torch.ones_like(std)))

    def __call__(self, x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """`x` z-scored: a new tensor, or `x` itself overwritten with `in_place` (a copy the caller made for it)."""
        return (x.sub_(self.mean) if in_place else torch.sub(x, self.mean)).div_(self.std)


@dataclass(frozen=True)
class Rows:
    """The rows a fit reads: x's rows `index` (all of them where None), z-scored by `scaler` where set. `read(c)`
    copies only the rows of `c` (a slice of 0..len, or an index tensor): no copy of them all is ever made."""

    x: torch.Tensor
    index: torch.Tensor | None = None
    scaler: Scaler | None = None

    def __len__(self) -> int:
        return len(self.x) if self.index is None else len(self.index)

    def read(self, c: slice | torch.Tensor, own: bool = False) -> torch.Tensor:
        """The rows `c`; with `own`, a tensor the caller may write (never a view of x)."""
        view = self.index is None and isinstance(c, slice)  # x's own rows, not a copy: never written
        part = self.x[c] if self.index is None else self.x.index_select(0, self.index[c])
        if self.scaler is not None:
            return self.scaler(part, in_place=not view)
        return part.clone() if own and view else part


@dataclass
class Probe:
    """Class scores of raw features: `scaler` (when set) first, then W z + b."""

    weight: torch.Tensor  # C x D
    bias: torch.Tensor  # C
    scaler: Scaler | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, self.scaler(x) if self.scaler is not None else x, self.weight.t())

    def blocks(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """The scores of x's rows a row chunk at a time (see CHUNK_LOGITS), in order: neither all the scores nor a
        z-scored copy of x is made at once."""
        for c in _row_chunks(len(x), max(self.weight.shape)):
            yield self(x[c])


def _row_chunks(n: int, width: int) -> list[slice]:
    """Row ranges of at most CHUNK_LOGITS values `width` wide (the widest of the logits and the features); one range
    when all of them fit."""
    rows = max(1, CHUNK_LOGITS // max(1, width))
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)] or [slice(0, 0)]


def held_out_scores(probe: "Probe", rows: Rows, y: torch.Tensor) -> tuple[float, float]:
    """(top-1, mean cross-entropy) of `probe` on (rows, y), computed over row chunks (see CHUNK_LOGITS)."""
    chunks = _row_chunks(len(y), max(probe.weight.shape))
    if len(chunks) == 1:
        logits = probe(rows.read(chunks[0]))
        return ranking.hit_rate(ranking.ranked([logits], 1)[0], y, 1), float(F.cross_entropy(logits, y))
    hits, ce, finite = 0.0, 0.0, True
    for c in chunks:
        logits = probe(rows.read(c))
        finite = finite and bool(torch.isfinite(logits).all())
        hits += float((logits.argmax(1) == y[c]).sum())
        ce += float(F.cross_entropy(logits, y[c], reduction="sum"))
    return (hits / len(y) if finite else float("nan")), ce / len(y)


def stratified_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train index, held-out index), sorted, on y's device: of each class with >= 2 rows, round(fraction x count)
    rows held out (half to even), but at least one and at most count - 1 (so at 2 labels per class, one of them).
    Each row draws one random key from `seed`; a class holds out its rows of the smallest keys: the split depends on
    which rows share a class, not on how the classes are numbered."""
    y_np = y.cpu().numpy()
    keys = np.random.default_rng([seed, 0x9A1]).random(len(y_np))
    order = np.lexsort((keys, y_np))  # by class, then by key
    _, starts, counts = np.unique(y_np[order], return_index=True, return_counts=True)
    k = np.minimum(counts - 1, np.maximum(1, np.rint(fraction * counts).astype(np.int64)))
    held = np.where((counts >= 2) & (fraction > 0), k, 0)
    rank = np.arange(len(order)) - np.repeat(starts, counts)  # a row's place in its class, by key
    out = rank < np.repeat(held, counts)
    return (torch.as_tensor(np.sort(order[~out]), device=y.device),
            torch.as_tensor(np.sort(order[out]), device=y.device))


def fit(rows: Rows, y: torch.Tensor, num_classes: int, wd: float, cfg: LinearConfig, seed: int,
        init: Probe | None = None, max_iter: int | None = None) -> Probe:
    """Minimise the probe loss on `rows` (as they read: z-scored where they carry a scaler) at weight decay `wd`
    from `init` (else zeros); L-BFGS runs at most `max_iter` iterations (default: cfg.max_iter from `init`,
    cfg.cold_iter from zeros)."""
    if max_iter is None:
        max_iter = cfg.max_iter if init is not None else cfg.cold_iter
    x = rows.x
    w = (init.weight.clone() if init is not None else torch.zeros(num_classes, x.shape[1], dtype=x.dtype,
                                                                  device=x.device))
    b = (init.bias.clone() if init is not None else torch.zeros(num_classes, dtype=x.dtype, device=x.device))
    if cfg.optimizer == "lbfgs":
        return _fit_lbfgs(rows, y, w, b, wd, cfg, max_iter)
    w.requires_grad_(True)
    b.requires_grad_(True)
    _fit_minibatch(rows, y, w, b, wd, cfg, seed)
    return Probe(w.detach(), b.detach())


def _loss(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, wd: float) -> torch.Tensor:
    """The probe loss: mean cross-entropy of W x + b, plus wd * ||W||^2."""
    return F.cross_entropy(torch.addmm(b, x, w.t()), y) + wd * (w * w).sum()


def _fit_lbfgs(rows: Rows, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, wd: float, cfg: LinearConfig,
               max_iter: int) -> Probe:
    """Full-batch L-BFGS (strong Wolfe line search; study.evaluate.lbfgs) from `w`, `b`; the loss and its gradient
    (written out: no autograd graph) summed over row chunks where the rows do not fit in one."""
    classes, dims = w.shape
    cut = classes * dims  # theta = [W flattened, b]
    chunks = _row_chunks(len(y), max(w.shape))
    whole = rows.read(chunks[0]) if len(chunks) == 1 else None  # read once: it fits

    def objective(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = theta[:cut].view(classes, dims), theta[cut:]
        grad = torch.empty_like(theta)
        grad_w, grad_b = grad[:cut].view(classes, dims), grad[cut:]
        ce = theta.new_zeros(())
        for i, c in enumerate(chunks):
            z = whole if whole is not None else rows.read(c)
            part, residual = _cross_entropy_and_residual(z, y[c], w, b)
            ce += part
            grad_w.addmm_(residual.t(), z, beta=1 if i else 0)  # sum over rows of (softmax - one-hot) z^T
            if i:
                grad_b += residual.sum(0)
            else:
                torch.sum(residual, 0, out=grad_b)
            del z, residual  # freed before the next chunk is read
        grad.div_(len(y))
        grad_w.add_(w, alpha=2 * wd)
        return ce / len(y) + wd * torch.dot(theta[:cut], theta[:cut]), grad

    limits = lbfgs.Limits(max_iter=max_iter, tolerance_grad=cfg.tolerance_grad, tolerance_change=cfg.tolerance,
                          history_size=cfg.history_size)
    theta = lbfgs.minimize(objective, torch.cat([w.reshape(-1), b]), limits).x
    return Probe(theta[:cut].view(classes, dims), theta[cut:])


def _cross_entropy_and_residual(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                                b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over rows of the cross-entropy of W z + b, softmax(W z + b) - one-hot(y)): the loss of the rows and the
    gradient of that sum with respect to the logits."""
    log_p = torch.log_softmax(torch.addmm(b, z, w.t()), 1)
    ce = log_p.gather(1, y[:, None]).sum().neg()
    residual = log_p.exp_()
    residual.scatter_add_(1, y[:, None], residual.new_full((len(y), 1), -1.0))
    return ce, residual


def _fit_minibatch(rows: Rows, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, wd: float, cfg: LinearConfig,
                   seed: int) -> None:
    """cfg.epochs of Adam, or SGD with momentum 0.9, on `w`, `b` in place: batches of cfg.batch_size in an order
    drawn from `seed`, the learning rate on a cosine from cfg.lr to 0."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([w, b], lr=cfg.lr) if cfg.optimizer == "adam" else torch.optim.SGD([w, b], lr=cfg.lr,
                                                                                               momentum=0.9)
    n = len(y)
    total = cfg.epochs * max(1, math.ceil(n / cfg.batch_size))
    step = 0
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=g).to(w.device)
        for s in range(0, n, cfg.batch_size):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            idx = perm[s:s + cfg.batch_size]
            opt.zero_grad()
            _loss(rows.read(idx), y[idx], w, b, wd).backward()
            opt.step()
            step += 1


def _finite(probe: Probe) -> bool:
    return bool(torch.isfinite(probe.weight).all()) and bool(torch.isfinite(probe.bias).all())


def _rows(x: torch.Tensor, index: torch.Tensor | None, cfg: LinearConfig) -> Rows:
    """x's rows `index` (all where None), z-scored with their own statistics with cfg.standardize."""
    return Rows(x, index, Scaler.fit(x, index) if cfg.standardize else None)


def train_probe(x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: LinearConfig,
                seed: int) -> tuple[Probe, dict]:
    """Choose the weight decay on a held-out part of (x, y), refit on all of it; x are raw features (each fit
    standardizes with its own training rows' statistics when cfg.standardize). Returns (probe of raw features, info)
    with info = {"weight_decay", "held_out", "validation_top1"/"validation_loss": {wd: value}, "choice",
    "seconds"}. Its fits and held-out scores run under `tf32_matmuls(x.device, cfg.tf32)`."""
    with tf32_matmuls(x.device, cfg.tf32):
        return _train_probe(x, y, num_classes, cfg, seed)


def _train_probe(x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: LinearConfig,
                 seed: int) -> tuple[Probe, dict]:
    t0 = time.monotonic()
    grid = sorted(cfg.weight_decays, reverse=True)  # strongest penalty first: each fit warm-starts the next
    info: dict = {"validation_top1": {}, "validation_loss": {}, "held_out": 0}
    start, fallbacks = None, []
    if len(grid) == 1:
        wd, info["choice"] = grid[0], "single value"
    else:
        tr, va = stratified_split(y, cfg.val_fraction, seed)
        info["held_out"] = int(len(va))
        if len(va) == 0:
            wd = grid[len(grid) // 2]
            info["choice"] = "no class has 2 labeled images to hold one out: the middle of the grid"
        else:
            probe, scores, losses, path = None, {}, {}, {}
            rows_tr = _rows(x, tr, cfg)
            rows_va = Rows(x, va, rows_tr.scaler)  # z-scored as the training rows are
            for w in grid:  # a fit that diverged warm-starts nothing: the next one starts from zeros
                init = probe if probe is not None and _finite(probe) else None
                probe = path[w] = fit(rows_tr, y[tr], num_classes, w, cfg, seed, init=init, max_iter=cfg.select_iter)
                scores[w], losses[w] = held_out_scores(probe, rows_va, y[va])
            def rank(w: float) -> tuple[float, float]:  # ties: the lower held-out cross-entropy; diverged: last
                return (-math.inf if math.isnan(scores[w]) else scores[w],
                        -losses[w] if math.isfinite(losses[w]) else -math.inf)

            ranked = sorted(grid, key=rank, reverse=True)  # stable: ties keep the grid's order (stronger first)
            wd, fallbacks = ranked[0], [w for w in ranked[1:] if not math.isnan(scores[w])]
            info["validation_top1"] = {repr(w): s for w, s in scores.items()}
            info["validation_loss"] = {repr(w): v for w, v in losses.items()}
            info["choice"] = ("best held-out top-1 (ties: lower held-out cross-entropy)"
                              if not all(math.isnan(v) for v in scores.values())
                              else "none: every weight decay diverged on the held-out rows (the strongest refit)")
            start = path[wd] if _finite(path[wd]) else None  # (every value diverged: the refit starts from zeros)
    rows_all = _rows(x, None, cfg)
    probe = fit(rows_all, y, num_classes, wd, cfg, seed, init=start)
    for fallback in fallbacks if not _finite(probe) else ():  # a selection fit that exploded but scored well
        retry = fit(rows_all, y, num_classes, fallback, cfg, seed,
                    init=path[fallback] if _finite(path[fallback]) else None)
        if _finite(retry):
            info["choice"] += f"; the refit at {wd!r} diverged: the next best that refits"
            probe, wd = retry, fallback
            break
    info["weight_decay"] = wd
    info["seconds"] = time.monotonic() - t0
    return Probe(probe.weight, probe.bias, rows_all.scaler), info
