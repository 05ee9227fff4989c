"""study.evaluate.lbfgs against torch.optim.LBFGS (strong Wolfe), the algorithm it computes another way."""
from __future__ import annotations

import inspect
import math
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
import torch.optim.lbfgs as torchs_lbfgs
from torch.utils._python_dispatch import TorchDispatchMode

from study.evaluate import lbfgs


# a max_eval no fit here reaches
UNBOUND = 10 ** 6
# torch's line search spends at most the evaluations max_eval leaves since pytorch/pytorch#135026 (ours too); before,
# 25 whatever max_eval left: the reference then gets the newer budget (torch 2.4 is the lowest pyproject allows)
TORCH_BOUNDS_ITS_LINE_SEARCHES = "max_ls=" in inspect.getsource(torch.optim.LBFGS.step)


def with_gradient(loss):
    """The objective of a scalar `loss` of theta: theta -> (the loss, its gradient by autograd), both detached."""
    def objective(theta):
        theta = theta.detach().requires_grad_(True)
        value = loss(theta)
        value.backward()
        return value.detach(), theta.grad

    return objective


def probe_problem(dtype=torch.float32):
    """A 6-class logistic regression on 40 x 12 features: (objective of a flat theta, loss of W and b, theta size)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 12, generator=g, dtype=dtype)
    y = torch.arange(6).repeat_interleave(40 // 6 + 1)[:40]
    x = centres[y] + torch.randn(40, 12, generator=g, dtype=dtype)

    def loss(w, b):
        return F.cross_entropy(x @ w.t() + b, y) + 1e-3 * (w * w).sum()

    return with_gradient(lambda theta: loss(theta[:72].view(6, 12), theta[72:])), loss, 78


@with_gradient
def rosenbrock(theta):
    """The 4-d Rosenbrock function (non-convex, curved valley: the line search extrapolates and zooms)."""
    return sum(100 * (theta[i + 1] - theta[i] ** 2) ** 2 + (1 - theta[i]) ** 2 for i in range(3))


def torchs(objective, x0, limits: lbfgs.Limits) -> tuple[torch.Tensor, int, int]:
    """torch.optim.LBFGS's (iterate, loss evaluations, iterations) from x0 with the same limits."""
    p = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([p], lr=1, max_iter=limits.max_iter, max_eval=limits.max_eval,
                            tolerance_grad=limits.tolerance_grad,
                            tolerance_change=limits.tolerance_change, history_size=limits.history_size,
                            line_search_fn="strong_wolfe")
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        value, grad = objective(p.detach())
        p.grad = grad
        return value

    if TORCH_BOUNDS_ITS_LINE_SEARCHES:
        opt.step(closure)
    else:
        wolfe = torchs_lbfgs._strong_wolfe

        def bounded(*args, **kwargs):
            return wolfe(*args, max_ls=opt.param_groups[0]["max_eval"] - opt.state[p]["func_evals"], **kwargs)

        with mock.patch.object(torchs_lbfgs, "_strong_wolfe", bounded):
            opt.step(closure)
    return p.detach(), len(calls), opt.state[p]["n_iter"]


@pytest.mark.parametrize("max_iter", [1, 2, 5, 10, 30])
def test_the_iterates_are_torchs_on_a_probe_loss(max_iter):
    """Same iterate (float32 rounding aside), same loss evaluations and iterations, at every cap, the history filled
    (20 pairs) and rolled over (30 iterations)."""
    objective, _, n = probe_problem()
    limits = lbfgs.Limits(max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-9, history_size=20,
                          max_eval=UNBOUND)
    ours = lbfgs.minimize(objective, torch.zeros(n), limits)
    theirs, evaluations, iterations = torchs(objective, torch.zeros(n), limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations)
    assert torch.allclose(ours.x, theirs, atol=5e-5)
    assert ours.loss == float(objective(ours.x)[0]) == pytest.approx(float(objective(theirs)[0]), rel=1e-5)
    assert ours.pairs == min(20, iterations - 1)  # every step of a convex loss keeps its pair


def test_a_fit_run_to_convergence_reaches_torchs_minimum():
    """Near the minimum float32 noise decides when the tolerances stop a fit (the counts differ): the minimum is the
    same."""
    objective, _, n = probe_problem()
    limits = lbfgs.Limits(max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-9, history_size=20)
    ours = lbfgs.minimize(objective, torch.zeros(n), limits)
    theirs, _, iterations = torchs(objective, torch.zeros(n), limits)
    assert 30 < ours.iterations < 500 and 30 < iterations < 500
    assert ours.loss == pytest.approx(float(objective(theirs)[0]), rel=1e-5)
    assert torch.allclose(ours.x, theirs, atol=2e-3)


@pytest.mark.parametrize("history_size", [1, 3, 100])
def test_the_iterates_are_torchs_on_rosenbrock_in_float64(history_size):
    """On a non-convex valley the line search brackets, extrapolates and zooms; in float64 the two implementations
    stay together to 1e-9 over 100 iterations, and the pairs kept never exceed history_size."""
    x0 = torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)
    limits = lbfgs.Limits(max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-14, history_size=history_size,
                          max_eval=UNBOUND)
    ours = lbfgs.minimize(rosenbrock, x0, limits)
    theirs, evaluations, iterations = torchs(rosenbrock, x0, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations)
    assert torch.allclose(ours.x, theirs, atol=1e-9)
    assert 0 < ours.pairs <= history_size
    assert torch.equal(x0, torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64))  # the start is not written


def test_the_history_is_the_memory_the_directions_use():
    """Fewer pairs kept: another path (torch's too), so history_size is read."""
    x0 = torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)
    paths = [lbfgs.minimize(rosenbrock, x0, lbfgs.Limits(20, 1e-12, 1e-14, size)).x for size in (1, 10)]
    assert not torch.allclose(paths[0], paths[1])


def test_a_gradient_under_tolerance_grad_stops_before_any_step():
    objective, _, n = probe_problem()
    out = lbfgs.minimize(objective, torch.zeros(n), lbfgs.Limits(100, 1e9, 1e-9, 20))
    assert (out.iterations, out.evaluations, out.pairs) == (0, 1, 0) and torch.equal(out.x, torch.zeros(n))


def test_the_evaluation_cap_bounds_a_fit_and_its_line_searches():
    """A line search spends at most the evaluations max_eval leaves (+ its first), then the fit stops: as torch's
    since 2.x (torch 2.4's line search took up to 25 whatever was left)."""
    objective, _, n = probe_problem()
    for max_eval in (1, 2, 7):
        limits = lbfgs.Limits(max_iter=100, tolerance_grad=1e-7, tolerance_change=1e-9, history_size=20,
                              max_eval=max_eval)
        out = lbfgs.minimize(objective, torch.zeros(n), limits)
        assert max_eval <= out.evaluations <= max_eval + 1 and out.iterations < 100, max_eval
    default = lbfgs.minimize(objective, torch.zeros(n), lbfgs.Limits(8, 1e-7, 1e-9, 20))
    assert default.evaluations <= 8 * 5 // 4 + 1  # torch's default max_eval: max_iter x 5/4


class Reads(TorchDispatchMode):
    """Counts reads of one tensor value on the host (item, float, bool of a tensor)."""

    def __init__(self):
        super().__init__()
        self.scalars = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.scalars += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


def test_the_host_reads_the_device_once_per_evaluation_and_once_per_iteration(monkeypatch):
    """Each read is a synchronisation on a GPU: one batched read per loss evaluation and one per iteration, no
    scalar read besides (torch's implementation makes 14-21 per evaluation)."""
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 5, (300,), generator=torch.Generator().manual_seed(2))

    def objective(theta):  # no autograd: its backward reads nothing either, but keep the count to lbfgs's own
        w = theta.view(5, 16)
        p = torch.softmax(x @ w.t(), 1)
        loss = F.cross_entropy(x @ w.t(), y)
        p[torch.arange(300), y] -= 1
        return loss, (p.t() @ x / 300).reshape(-1)

    batched = []
    real = lbfgs._read
    monkeypatch.setattr(lbfgs, "_read", lambda *v: batched.append(len(v)) or real(*v))
    with Reads() as reads:
        out = lbfgs.minimize(objective, torch.zeros(80), lbfgs.Limits(15, 1e-7, 1e-9, 20))
    assert out.iterations > 5 and reads.scalars == 0
    assert len(batched) == out.evaluations + out.iterations


def two_loop(pairs, g, gamma):
    """-H g by the two-loop recursion (Nocedal & Wright, Algorithm 7.4) over `pairs` (s, y), oldest first."""
    q, alphas = g.clone(), []
    for s, y in reversed(pairs):
        alphas.append(float(s @ q) / float(y @ s))
        q = q - alphas[-1] * y
    r = gamma * q
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        r = r + (alpha - float(y @ r) / float(y @ s)) * s
    return -r


@pytest.mark.parametrize("size, pushes", [(5, 3), (5, 5), (5, 17), (3, 10), (1, 1), (1, 6)])
def test_the_compact_direction_is_the_two_loop_recursions(size, pushes):
    """After each pair pushed (the ring not yet full, just full, wrapped around several times; a ring of one) -H g by
    the compact form is the two-loop recursion's over the last `size` pairs, gamma the newest pair's s.y / y.y."""
    gen = torch.Generator().manual_seed(100 * size + pushes)
    a = torch.randn(7, 7, generator=gen, dtype=torch.float64)
    a = a @ a.t() + torch.eye(7, dtype=torch.float64)
    history, pairs = lbfgs._History(size, torch.zeros(7, dtype=torch.float64)), []
    for k in range(pushes):
        s = torch.randn(7, generator=gen, dtype=torch.float64)
        y = a @ s + 0.1 * torch.randn(7, generator=gen, dtype=torch.float64)
        assert float(s @ y) > 0  # a pair the curvature test keeps
        history.push(s, y, float(s @ y))
        pairs = (pairs + [(s, y)])[-size:]
        g = torch.randn(7, generator=gen, dtype=torch.float64)
        expected = two_loop(pairs, g, float(s @ y) / float(y @ y))
        assert history.count == len(pairs)
        assert torch.allclose(history.direction(g), expected, rtol=1e-10, atol=1e-12), k


def walled(beyond):
    """|theta - 2|^2, but where some |theta_i| > 0.5 its (loss, gradient) are beyond(loss, gradient): from 0.1 the
    second iteration's first step (t = 1) lands there."""
    def objective(theta):
        value, grad = (theta - 2).square().sum(), 2 * (theta - 2)
        return beyond(value, grad) if float(theta.abs().max()) > 0.5 else (value, grad)

    return objective


BEYOND_THE_WALL = {
    "inf loss, NaN gradient": lambda v, g: (torch.full_like(v, math.inf), g * math.nan),  # torch's backs off: finite
    "NaN loss and gradient": lambda v, g: (torch.full_like(v, math.nan), g * math.nan),
    "NaN gradient": lambda v, g: (v, g * math.nan),
    "inf loss": lambda v, g: (torch.full_like(v, math.inf), g),
}


@pytest.mark.parametrize("max_eval", [200, 3])
@pytest.mark.parametrize("beyond", BEYOND_THE_WALL, ids=list(BEYOND_THE_WALL))
def test_non_finite_losses_and_slopes_take_torchs_path(beyond, max_eval):
    """A NaN or inf loss or slope met in a line search: torch's comparisons decide as they do there (a NaN loss
    passes its sufficient-decrease test; a NaN cubic is bisected), so the same iterate, NaN or not, the same counts.
    max_eval 3: the zoom's last evaluation is the NaN step of the cubic through an inf loss, which becomes the
    bracket's low end and is the step, as torch's (not the inf-loss end: a finite iterate of infinite loss)."""
    x0 = torch.full((4,), 0.1, dtype=torch.float64)
    limits = lbfgs.Limits(max_iter=10, tolerance_grad=1e-9, tolerance_change=1e-12, history_size=5, max_eval=max_eval)
    ours = lbfgs.minimize(walled(BEYOND_THE_WALL[beyond]), x0, limits)
    theirs, evaluations, iterations = torchs(walled(BEYOND_THE_WALL[beyond]), x0, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations)
    assert torch.allclose(ours.x, theirs, rtol=1e-12, equal_nan=True)


def test_a_loss_linear_along_the_direction_extrapolates_as_torchs():
    """Along d the cubic through two points of a linear loss degenerates (x / 0): Python's floats raised there
    where torch's tensors give inf; the line search extrapolates 10x a step, as torch's does."""
    c = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)  # |c|_1 = 1: exact steps t = 1, 10, 100, ...

    def objective(theta):
        return (c * theta).sum(), c.clone()

    x0 = torch.zeros(3, dtype=torch.float64)
    limits = lbfgs.Limits(max_iter=3, tolerance_grad=1e-9, tolerance_change=1e-12, history_size=5, max_eval=40)
    ours = lbfgs.minimize(objective, x0, limits)
    theirs, evaluations, iterations = torchs(objective, x0, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations) == (41, 1)
    assert torch.equal(ours.x, theirs) and float(ours.x[0]) < -1e37


def test_a_nan_loss_extrapolated_past_float32s_range_ends_nan_without_raising():
    """A NaN loss in float32: the line search extrapolates its step (x 5.5 an evaluation, as torch's) beyond float32's
    largest value, where torch.add's alpha raises (and torch's implementation with it): the fit ends NaN, which the
    probe reports as diverged."""
    objective = walled(BEYOND_THE_WALL["NaN loss and gradient"])
    limits = lbfgs.Limits(max_iter=10, tolerance_grad=1e-9, tolerance_change=1e-12, history_size=5, max_eval=200)
    out = lbfgs.minimize(objective, torch.full((4,), 0.1), limits)
    assert math.isnan(out.loss) and not torch.isfinite(out.x).all() and out.evaluations == 201


@with_gradient
def ridge(theta):
    """The larger of two quadratics: along a line the slope jumps where they meet, so the cubics the line search fits
    miss, its zoom runs long and its safeguards move trial steps off the bracket's ends."""
    return torch.maximum((theta - 1).square().sum(), 3 * (theta + 0.5).square().sum())


@with_gradient
def kink(theta):
    return (theta - 0.7).abs().sum() + 0.05 * theta.square().sum()


@with_gradient
def huber(theta):
    return F.huber_loss(theta, torch.full_like(theta, 3.0), reduction="sum", delta=0.5)


def quantized(objective, step):
    """`objective` with its loss and gradient rounded to multiples of `step`: losses and slopes that tie exactly (as
    float32 losses do near a minimum)."""
    def rounded(theta):
        value, grad = objective(theta)
        return torch.round(value / step) * step, torch.round(grad / step) * step

    return rounded


KINKED = {  # objective, start, max_iter, tolerance_change, history_size, max_eval
    "ridge": (ridge, [-0.1, 1.6, -1.1], 5, 1e-12, 1, UNBOUND),
    "ridge, loose tolerance": (ridge, [0.2, -1.7], 20, 1e-3, 3, UNBOUND),
    "ridge, out of evaluations extrapolating": (ridge, [0.2, -1.9], 5, 1e-12, 1, 10),
    "ridge, tied losses": (quantized(ridge, 0.01), [0.0, 1.6, 0.0], 20, 1e-12, 5, UNBOUND),
    "ridge, tied losses, capped": (quantized(ridge, 0.125), [-0.6, 0.5], 20, 1e-12, 1, 10),
    "kink, tied losses": (quantized(kink, 0.01), [0.0, 1.6, 0.0], 20, 1e-12, 5, UNBOUND),
    "huber, tied slopes": (quantized(huber, 0.01), [0.1, 0.1, -1.1, -1.1], 20, 1e-3, 5, 10),
}


@pytest.mark.parametrize("case", KINKED, ids=list(KINKED))
def test_the_iterates_are_torchs_where_the_line_search_zooms_long(case):
    """Kinks and ties (a smooth loss's line searches mostly end at their first or second step): the sufficient
    decrease and curvature tests, the extrapolation, the zoom's safeguards and its choice of ends decide as torch's."""
    objective, start, max_iter, tolerance_change, history_size, max_eval = KINKED[case]
    x0 = torch.tensor(start, dtype=torch.float64)
    limits = lbfgs.Limits(max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=tolerance_change,
                          history_size=history_size, max_eval=max_eval)
    ours = lbfgs.minimize(objective, x0, limits)
    theirs, evaluations, iterations = torchs(objective, x0, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations)
    assert torch.allclose(ours.x, theirs, rtol=1e-9, atol=1e-12)


def test_pairs_under_the_curvature_floor_are_not_kept_and_the_direction_stays_steepest_descent():
    """Close to a minimum each step's s . y (here 1e-12) is under CURVATURE_FLOOR: no pair is kept, and every
    direction is -g (torch's), each step halving the distance to the minimum until max_iter."""
    def objective(theta):
        return 0.25 * theta.square().sum(), 0.5 * theta

    x0 = torch.full((4,), 1e-6, dtype=torch.float64)
    limits = lbfgs.Limits(max_iter=6, tolerance_grad=1e-15, tolerance_change=1e-30, history_size=5, max_eval=UNBOUND)
    ours = lbfgs.minimize(objective, x0, limits)
    theirs, evaluations, iterations = torchs(objective, x0, limits)
    assert (ours.evaluations, ours.iterations, ours.pairs) == (evaluations, iterations, 0) == (7, 6, 0)
    assert torch.equal(ours.x, theirs) and torch.equal(ours.x, x0 / 2 ** 6)


STOPS = {  # objective, start, Limits: each stops the fit before max_iter by another rule
    "no gradient entry over tolerance_grad": ("probe", lbfgs.Limits(100, 1e-3, 1e-12, 20, UNBOUND)),
    "a step under tolerance_change": ("rosenbrock", lbfgs.Limits(100, 1e-12, 1e-3, 5, UNBOUND)),
    "max_eval reached exactly": ("probe", lbfgs.Limits(100, 1e-12, 1e-12, 20, 7)),
    "the default max_eval": ("rosenbrock", lbfgs.Limits(22, 1e-12, 1e-14, 5)),  # 27 stops it; 26 or 28 would not
}


@pytest.mark.parametrize("case", STOPS, ids=list(STOPS))
def test_the_stopping_rules_are_torchs(case):
    """Each stopping rule ends the fit where torch's does: the largest gradient entry (not another norm), the step's
    largest entry (not the step length t: Rosenbrock's first t is 1 / |g|_1, under 1e-3), the evaluations once they
    reach max_eval, and max_eval's default, max_iter x 5/4."""
    name, limits = STOPS[case]
    objective, x0 = ((probe_problem()[0], torch.zeros(78)) if name == "probe"
                     else (rosenbrock, torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64)))
    ours = lbfgs.minimize(objective, x0, limits)
    theirs, evaluations, iterations = torchs(objective, x0, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations) and iterations < limits.max_iter
    assert torch.allclose(ours.x, theirs, atol=5e-5)


def test_a_gradient_at_exactly_tolerance_grad_stops_before_any_step():
    """"Once no gradient entry exceeds tolerance_grad": one equal to it does not."""
    objective, _, n = probe_problem()
    largest = float(objective(torch.zeros(n))[1].abs().max())
    out = lbfgs.minimize(objective, torch.zeros(n), lbfgs.Limits(100, largest, 1e-9, 20))
    assert (out.iterations, out.evaluations) == (0, 1)


def quarter(theta):
    """0.25 |theta|^2: from 1 (or 4) every value of a fit is exact in binary, so a stopping rule can be met exactly."""
    return 0.25 * theta.square().sum(), 0.5 * theta


TIES = {  # start, tolerance_grad, tolerance_change, iterations: after the first step (x = 0.5, or 3 from 4)...
    "the largest gradient entry equal to tolerance_grad": (1.0, 0.25, 1e-12, 1),  # |g| = 0.25
    "the step's largest entry equal to tolerance_change": (4.0, 1e-12, 1.0, 1),  # step 0.5 x 2, loss change 1.75
    "the loss change equal to tolerance_change": (1.0, 1e-12, 0.1875, 2),  # 0.25 - 0.0625; step 0.5: not under it
}


@pytest.mark.parametrize("case", TIES, ids=list(TIES))
def test_a_stopping_rule_met_exactly_after_a_step_decides_as_torchs(case):
    """"Once no gradient entry exceeds tolerance_grad" and a step of at most tolerance_change stop the fit; a loss
    change equal to tolerance_change does not (torch's `<`): the next iteration's slope, -0.125, ends it."""
    x0, tolerance_grad, tolerance_change, iterations = TIES[case]
    limits = lbfgs.Limits(max_iter=10, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                          history_size=5, max_eval=UNBOUND)
    x = torch.tensor([x0], dtype=torch.float64)
    ours = lbfgs.minimize(quarter, x, limits)
    theirs, evaluations, torchs_iterations = torchs(quarter, x, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, torchs_iterations) == (2, iterations)
    assert torch.equal(ours.x, theirs)


def test_a_loss_exactly_on_the_sufficient_decrease_line_passes_it_as_torchs():
    """A loss equal to f + c1 t g.d (here at every step: the loss is c1 times the line the slope gives) is a
    sufficient decrease (torch's `>`): the line search extrapolates, where a refused step would have zoomed to 0."""
    def on_the_line(theta):
        return -lbfgs.SUFFICIENT_DECREASE * theta.sum(), torch.full_like(theta, -1.0)

    x0 = torch.zeros(1, dtype=torch.float64)
    limits = lbfgs.Limits(max_iter=1, tolerance_grad=1e-9, tolerance_change=1e-12, history_size=5, max_eval=6)
    ours = lbfgs.minimize(on_the_line, x0, limits)
    theirs, evaluations, iterations = torchs(on_the_line, x0, limits)
    assert (ours.evaluations, ours.iterations) == (evaluations, iterations) == (7, 1)
    assert torch.equal(ours.x, theirs) and float(ours.x[0]) > 1


SPECIAL = [0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan]


def test_divide_is_torchs_division_where_pythons_raises():
    """_divide(a, b) is a / b as a float64 tensor divides: x / +-0 is +-inf by both signs, 0 / 0 and NaN / 0 NaN."""
    for a in SPECIAL:
        for b in SPECIAL:
            expected = float(torch.tensor(a, dtype=torch.float64) / torch.tensor(b, dtype=torch.float64))
            got = lbfgs._divide(a, b)
            assert got == expected or (math.isnan(got) and math.isnan(expected)), (a, b)
