"""Full-batch L-BFGS with a strong Wolfe line search, lean on kernel launches and host reads.

The algorithm, settings and stopping rules of torch.optim.LBFGS with `line_search_fn="strong_wolfe"` and lr 1
(Nocedal & Wright, Algorithms 3.5-3.6 and 7.4, as in minFunc), computed another way:
- the host reads the device once per loss evaluation (loss, slope along the direction, largest gradient entry,
  together) and once per iteration (the new direction's slope and largest entry): torch's reads 14-21 times per
  evaluation, each a synchronisation;
- the direction -H g comes from the compact form of the inverse Hessian (Byrd, Nocedal & Schnabel 1994): two
  matrix-vector products with the stored pairs and a few m x m solves, not the two loops of 5 kernels per pair.
On a GPU a linear probe is then bound by its arithmetic, not by launches (benchmarks/README.md, "Linear probes").
The iterates are those of torch's implementation but for float rounding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

# x -> (loss as a 0-d tensor, its gradient shaped as x); each call returns new tensors
Objective = Callable[[torch.Tensor], "tuple[torch.Tensor, torch.Tensor]"]

SUFFICIENT_DECREASE = 1e-4  # Wolfe's c1 (torch's)
CURVATURE = 0.9  # Wolfe's c2 (torch's)
LINE_SEARCH_TOLERANCE = 1e-9  # the bracket width (x the largest direction entry) that ends a line search (torch's)
CURVATURE_FLOOR = 1e-10  # a pair whose s . y is not above this is not stored (torch's)


@dataclass(frozen=True)
class Limits:
    """When a minimisation stops: after `max_iter` iterations or `max_eval` loss evaluations (default
    max_iter x 5/4, as torch), once no gradient entry exceeds `tolerance_grad`, or once a step or the loss changes
    by less than `tolerance_change`. `history_size` curvature pairs are kept."""

    max_iter: int
    tolerance_grad: float
    tolerance_change: float
    history_size: int
    max_eval: int | None = None


@dataclass(frozen=True)
class Outcome:
    """The last iterate, its loss, and the work done: iterations, loss evaluations, curvature pairs held."""

    x: torch.Tensor
    loss: float
    iterations: int
    evaluations: int
    pairs: int


@dataclass(frozen=True)
class _Point:
    """An evaluation at x + t d: the iterate, its loss, gradient, slope along d and largest gradient entry."""

    t: float
    x: torch.Tensor
    f: float
    g: torch.Tensor
    gtd: float
    gmax: float


def _read(*values: torch.Tensor) -> list[float]:
    """The values on the host, in one transfer."""
    return torch.stack([v.reshape(()).to(values[0].dtype) for v in values]).tolist()


def _largest(v: torch.Tensor) -> torch.Tensor:
    """max |v_i|, in one kernel."""
    return torch.linalg.vector_norm(v, math.inf)


def _evaluate(objective: Objective, x: torch.Tensor, t: float, d: torch.Tensor) -> _Point:
    # x + t d; a step beyond x's dtype (a NaN loss makes the line search extrapolate without end, as torch's) gives
    # inf, where torch.add's alpha raises (torch's then does)
    xt = torch.add(x, d, alpha=t) if abs(t) <= torch.finfo(x.dtype).max else x + d * t
    f, g = objective(xt)
    f_, gtd, gmax = _read(f, torch.dot(g, d), _largest(g))
    return _Point(t, xt, f_, g, gtd, gmax)


class _History:
    """The last `size` pairs (s, y) in a ring of rows, with their products s_i . y_j and y_i . y_j kept in the
    order the pairs came (float64); `direction(g)` is -H g by the compact form."""

    def __init__(self, size: int, like: torch.Tensor):
        self.size, self.count, self.next = size, 0, 0
        # [s_i, y_i]; rows past `count` are never read: left unwritten (no 3.3 GB fill at 10,000 classes)
        self.rows = torch.empty(size, 2, like.numel(), dtype=like.dtype, device=like.device)
        self.sy = torch.zeros(size, size, dtype=torch.float64, device=like.device)
        self.yy = torch.zeros(size, size, dtype=torch.float64, device=like.device)
        self.gamma = torch.ones((), dtype=torch.float64, device=like.device)

    def _products(self, v: torch.Tensor) -> torch.Tensor:
        """count x 2: (s_i . v, y_i . v) for the stored pairs, oldest first."""
        out = (self.rows[:self.count].view(2 * self.count, -1) @ v.reshape(-1)).view(self.count, 2).double()
        return out.roll(-self.next, 0) if self.count == self.size else out

    def push(self, s: torch.Tensor, y: torch.Tensor, ys: float) -> None:
        self.rows[self.next, 0].copy_(s.reshape(-1))
        self.rows[self.next, 1].copy_(y.reshape(-1))
        if self.count == self.size:  # the oldest pair leaves: its row and column of the products with it
            self.sy, self.yy = self.sy.roll((-1, -1), (0, 1)), self.yy.roll((-1, -1), (0, 1))
        else:
            self.count += 1
        self.next = (self.next + 1) % self.size
        new = self._products(y)  # s_i . y_new, y_i . y_new; the new pair last
        last = self.count - 1
        self.sy[:self.count, last] = new[:, 0]
        self.yy[:self.count, last] = new[:, 1]
        self.yy[last, :self.count] = new[:, 1]
        self.gamma = ys / new[last, 1]  # s . y / y . y of the newest pair

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """-H g, H = gamma I + [S Y'] M [S Y']^T with Y' = gamma Y (Nocedal & Wright, eq. 7.24)."""
        if self.count == 0:
            return g.neg()
        n = self.count
        sg_yg = self._products(g)
        r = self.sy[:n, :n].triu()
        u = torch.linalg.solve_triangular(r, sg_yg[:, :1], upper=True)  # R^-1 S^T g
        v = r.diagonal()[:, None] * u + self.gamma * (self.yy[:n, :n] @ u - sg_yg[:, 1:])
        p = torch.linalg.solve_triangular(r.t(), v, upper=False)
        coef = torch.cat([p, -self.gamma * u], 1)  # H g = gamma g + S p - gamma Y u
        if n == self.size:
            coef = coef.roll(self.next, 0)  # back to the ring's rows
        hg = self.rows[:n].view(2 * n, -1).t() @ coef.reshape(-1).to(g.dtype)
        return hg.view_as(g).add_(g * self.gamma.to(g.dtype)).neg_()


def _divide(a: float, b: float) -> float:
    """a / b as torch's tensors divide (x / 0: +-inf, 0 / 0: NaN), where Python's floats raise."""
    if b != 0:
        return a / b
    return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)


def _cubic_minimum(a: _Point, b: _Point, low: float | None = None, high: float | None = None) -> float:
    """The minimiser, clipped to [low, high] (default: between a.t and b.t), of the cubic through the two points'
    values and slopes; the middle of those bounds where the cubic has no minimum (or a value is NaN: torch's)."""
    lo, hi = (low, high) if low is not None else (min(a.t, b.t), max(a.t, b.t))
    d1 = a.gtd + b.gtd - _divide(3 * (a.f - b.f), a.t - b.t)
    square = d1 * d1 - a.gtd * b.gtd
    if not square >= 0:
        return (lo + hi) / 2
    d2 = math.sqrt(square)
    if a.t <= b.t:
        t = b.t - (b.t - a.t) * _divide(b.gtd + d2 - d1, b.gtd - a.gtd + 2 * d2)
    else:
        t = a.t - (a.t - b.t) * _divide(a.gtd + d2 - d1, a.gtd - b.gtd + 2 * d2)
    return min(max(t, lo), hi)


def _line_search(objective: Objective, start: _Point, d: torch.Tensor, t: float, dmax: float,
                 tries: int) -> tuple[_Point, int]:
    """A step along d from `start` (t = 0) satisfying the strong Wolfe conditions, or the best point found within
    1 + `tries` evaluations; returns (point, evaluations)."""
    def insufficient(p: _Point) -> bool:  # (torch's test: a NaN loss passes it)
        return p.f > start.f + SUFFICIENT_DECREASE * p.t * start.gtd

    def flat(p: _Point) -> bool:
        return abs(p.gtd) <= -CURVATURE * start.gtd

    prev, new = start, _evaluate(objective, start.x, t, d)
    evals, bracket = 1, None
    while evals <= tries:  # bracketing: extrapolate until a step overshoots or satisfies both
        if insufficient(new) or (evals > 2 and new.f >= prev.f):  # (not yet at the first extrapolation: torch's)
            bracket = [prev, new]
            break
        if flat(new):
            return new, evals
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        t = _cubic_minimum(prev, new, new.t + 0.01 * (new.t - prev.t), new.t * 10)
        prev, new = new, _evaluate(objective, start.x, t, d)
        evals += 1
    if bracket is None:  # out of evaluations while extrapolating
        bracket = [start, new]
    stuck = False
    # the low end is re-chosen only where a point replaces the high one (torch's): a NaN loss that passes both tests
    # below becomes the low end, and stays it
    lo_i = 0 if bracket[0].f <= bracket[1].f else 1
    while evals <= tries:  # zoom: shrink the bracket around a point satisfying both
        low, high = bracket[lo_i], bracket[1 - lo_i]
        if abs(high.t - low.t) * dmax < LINE_SEARCH_TOLERANCE:
            break
        t = _cubic_minimum(bracket[0], bracket[1])
        left, right = min(low.t, high.t), max(low.t, high.t)
        margin = 0.1 * (right - left)
        if min(right - t, t - left) < margin:  # too near an end: move it inside, unless last time made progress
            if stuck or t >= right or t <= left:
                t = right - margin if abs(t - right) < abs(t - left) else left + margin
                stuck = False
            else:
                stuck = True
        else:
            stuck = False
        new = _evaluate(objective, start.x, t, d)
        evals += 1
        if insufficient(new) or new.f >= low.f:
            bracket[1 - lo_i] = new
            lo_i = 0 if bracket[0].f <= bracket[1].f else 1
        else:
            if flat(new):
                return new, evals
            if new.gtd * (high.t - low.t) >= 0:
                bracket[1 - lo_i] = low
            bracket[lo_i] = new
    return bracket[lo_i], evals


def minimize(objective: Objective, x: torch.Tensor, limits: Limits) -> Outcome:
    """Minimise `objective` from `x` (not modified) within `limits`. A line search may spend the evaluations
    `max_eval` leaves (as torch's does)."""
    max_eval = limits.max_eval if limits.max_eval is not None else limits.max_iter * 5 // 4
    f0, g = objective(x)
    f, gmax, gsum = _read(f0, _largest(g), g.abs().sum())  # torch's sum: the first step as torch's
    here = _Point(0.0, x, f, g, math.nan, gmax)
    history = _History(limits.history_size, x)
    evals, it = 1, 0
    if gmax <= limits.tolerance_grad:
        return Outcome(x, f, 0, evals, 0)
    step: tuple[torch.Tensor, _Point] | None = None  # the last step's direction and starting point
    while it < limits.max_iter:
        it += 1
        if step is None:
            d, t = g.neg(), min(1.0, 1.0 / gsum)
        else:
            d_prev, before = step
            ys = here.t * (here.gtd - before.gtd)  # (g_new - g) . (t d), from slopes read already
            if ys > CURVATURE_FLOOR:
                history.push(d_prev * here.t, here.g - before.g, ys)
            d, t = history.direction(here.g), 1.0
        gtd, dmax = _read(torch.dot(here.g, d), _largest(d))
        if gtd > -limits.tolerance_change:
            break
        start = _Point(0.0, here.x, here.f, here.g, gtd, here.gmax)
        new, n = _line_search(objective, start, d, t, dmax, tries=max_eval - evals)  # torch's budget
        evals += n
        step, prev_f, here = (d, start), here.f, new
        if it == limits.max_iter or evals >= max_eval or here.gmax <= limits.tolerance_grad:
            break
        if abs(here.t) * dmax <= limits.tolerance_change or abs(here.f - prev_f) < limits.tolerance_change:
            break
    return Outcome(here.x, here.f, it, evals, history.count)
