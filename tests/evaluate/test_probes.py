"""Linear probe, top-k, kNN and the granularity mapping on inputs with known answers."""
from __future__ import annotations

import math


import pandas as pd
import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from device import tf32_matmul_switch
from largest_tensor import LargestFloat
from study.errors import StudyError
from study.evaluate import EvalConfig, LinearConfig
from study.evaluate import granularity, knn, lbfgs, linear, ranking
from study.evaluate.finetune import pretrain_dict
from study.train.config import PretrainConfig


def ranks_of(scores: torch.Tensor) -> torch.Tensor | None:
    """Each row's best 5 classes of whole scores (one block), None where a score is not finite."""
    return ranking.ranked([scores], 5)[0]


def accuracy(scores: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """Top-k accuracy of whole scores, as the evaluation computes it a block of rows at a time."""
    return ranking.hit_rate(ranking.ranked([scores], k)[0], y, k)


def knn_scores(*args, **kwargs) -> torch.Tensor:
    """knn.score_blocks' scores of all test rows, on CPU."""
    return torch.cat([b.cpu() for b in knn.score_blocks(*args, **kwargs)])


def blobs(n_per_class: int, classes: int, dim: int, spread: float, seed: int):
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(123)) * 2
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[y] + spread * torch.randn(len(y), dim, generator=g), y


def test_linear_probe_separates_blobs_and_rejects_an_absurd_weight_decay():
    x, y = blobs(30, 8, 32, 1.0, seed=0)
    xt, yt = blobs(50, 8, 32, 1.0, seed=1)
    cfg = LinearConfig(weight_decays=(1e-4, 1e-2, 10.0, 1000.0))
    probe, info = linear.train_probe(x, y, 8, cfg, seed=0)
    assert info["weight_decay"] in (1e-4, 1e-2)  # 10 and 1000 flatten the probe towards chance
    assert info["held_out"] == 8 * 6  # 20% of each class held out
    assert info["validation_top1"][repr(1e-4)] > 0.9
    assert info["validation_loss"][repr(1000.0)] > 2.0 > info["validation_loss"][repr(1e-2)]  # ln 8 = 2.08: chance
    assert accuracy(probe(xt), yt, 1) > 0.95
    again, info2 = linear.train_probe(x, y, 8, cfg, seed=0)  # deterministic on CPU
    assert torch.equal(again.weight, probe.weight) and info2["weight_decay"] == info["weight_decay"]


def test_lbfgs_reads_its_gradient_tolerance_and_history_size_from_the_config(monkeypatch):
    """`linear.tolerance_grad` stops a fit whose gradient is already under it (a fit from zeros stays zero);
    `linear.history_size` is the memory L-BFGS keeps."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    rows = linear.Rows(x, None)
    assert linear.fit(rows, y, 4, 1e-3, LinearConfig(), seed=0).weight.abs().sum() > 0
    assert linear.fit(rows, y, 4, 1e-3, LinearConfig(tolerance_grad=1e9), seed=0).weight.abs().sum() == 0
    made = []
    real = lbfgs.minimize
    monkeypatch.setattr(lbfgs, "minimize", lambda *a: made.append(a[2]) or real(*a))
    linear.fit(rows, y, 4, 1e-3, LinearConfig(history_size=7, tolerance_grad=1e-5, tolerance=1e-4), seed=0)
    assert made == [lbfgs.Limits(max_iter=100, tolerance_grad=1e-5, tolerance_change=1e-4, history_size=7)]


MATMUL = torch.backends.cuda.matmul
SWITCH, ON, OFF = tf32_matmul_switch()  # the switch `linear.tf32` sets (study.train.tf32)


@pytest.mark.parametrize("tf32", [False, True])
def test_a_probe_fits_under_its_tf32_setting(tf32, monkeypatch, tf32_switch):
    """`linear.tf32`: every fit of `train_probe` (selection and refit) sees TF32 matmuls as the config says on the
    test device when it is a GPU, the switch untouched on a CPU (where the probe is then the same bit for bit);
    the switch is as before once the probe is trained."""
    from device import TEST_DEVICE, is_cuda

    x, y = (t.to(TEST_DEVICE) for t in blobs(10, 4, 8, 1.0, seed=0))
    seen, real = [], lbfgs.minimize
    monkeypatch.setattr(lbfgs, "minimize", lambda *a: seen.append(getattr(MATMUL, SWITCH)) or real(*a))
    entered, switch = [], linear.tf32_matmuls
    monkeypatch.setattr(linear, "tf32_matmuls", lambda device, on: entered.append((device, on)) or switch(device, on))
    before = getattr(MATMUL, SWITCH)
    probe, _ = linear.train_probe(x, y, 4, LinearConfig(weight_decays=(1e-4, 1e-2), tf32=tf32), seed=0)
    assert entered == [(x.device, tf32)]  # what a GPU would then see: checked on a CPU too
    assert len(seen) == 3 and set(seen) == {(ON if tf32 else OFF) if is_cuda() else before}  # 2 selection fits, refit
    assert getattr(MATMUL, SWITCH) == before
    if not is_cuda():
        plain, _ = linear.train_probe(x, y, 4, LinearConfig(weight_decays=(1e-4, 1e-2)), seed=0)
        assert torch.equal(probe.weight, plain.weight)


def test_held_out_rows_are_scaled_with_the_training_rows_statistics(monkeypatch):
    """The weight decay is chosen on held-out rows z-scored as the test rows will be: with the statistics of the rows
    the probe is fit on, never their own (standardizing them by themselves passed every other test)."""
    x, y = blobs(30, 8, 32, 1.0, seed=0)
    x = x * torch.linspace(0.5, 3.0, 32) + torch.linspace(-2.0, 2.0, 32)  # columns of other means and scales
    cfg = LinearConfig(weight_decays=(1e-4, 1e-2), max_iter=20, select_iter=20)
    seen = []
    real = linear.held_out_scores

    def capture(probe, rows_va, y_va):
        seen.append(rows_va.read(slice(0, len(rows_va))))
        return real(probe, rows_va, y_va)

    monkeypatch.setattr(linear, "held_out_scores", capture)
    linear.train_probe(x.clone(), y, 8, cfg, seed=0)
    tr, va = linear.stratified_split(y, cfg.val_fraction, 0)
    mean, std = x[tr].mean(0), x[tr].std(0, unbiased=False)
    assert len(seen) == 2 and all(torch.allclose(v, (x[va] - mean) / std, atol=1e-5) for v in seen)


def test_a_probe_too_large_for_one_logits_matrix_is_fit_over_row_chunks(monkeypatch):
    """Beyond CHUNK_LOGITS logits the full-batch loss and gradient are summed over row chunks: the same probe, the
    same weight decay chosen on the same held-out scores, as fitting it in one piece (float32 summation order
    aside); and no logits matrix of every row is ever made."""
    x, y = blobs(30, 8, 32, 1.0, seed=0)
    cfg = LinearConfig(weight_decays=(1e-4, 1e-2, 10.0))
    whole, info_whole = linear.train_probe(x, y, 8, cfg, seed=0)
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 40)  # 40 rows per chunk: 48 held-out rows make 2
    widest = []
    real = torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *a, **k: widest.append(len(a[1])) or real(*a, **k))
    chunked, info = linear.train_probe(x, y, 8, cfg, seed=0)
    assert max(widest) <= 40
    assert info["weight_decay"] == info_whole["weight_decay"]
    assert info["validation_top1"] == info_whole["validation_top1"]
    for w in cfg.weight_decays:
        assert info["validation_loss"][repr(w)] == pytest.approx(info_whole["validation_loss"][repr(w)], rel=1e-4)
    assert torch.allclose(chunked.weight, whole.weight, atol=1e-4) and torch.allclose(chunked.bias, whole.bias,
                                                                                       atol=1e-4)


def test_row_chunks_are_as_narrow_as_the_wider_of_the_logits_and_the_features(monkeypatch):
    """A row chunk holds at most CHUNK_LOGITS values of the logits (rows x classes) and of the z-scored features (rows
    x dims), whichever is wider: more classes than dims in a fit, more dims than classes in scoring."""
    x, y = blobs(30, 8, 4, 1.0, seed=0)  # 8 classes, 4 dims
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 20)
    rows = []
    real = torch.addmm
    monkeypatch.setattr(torch, "addmm", lambda *a, **k: rows.append(len(a[1])) or real(*a, **k))
    linear.train_probe(x, y, 8, LinearConfig(weight_decays=(1e-4, 1e-2)), seed=0)
    assert 0 < max(rows) <= 20
    rows.clear()
    wide = linear.Probe(torch.zeros(2, 16), torch.zeros(2))  # 2 classes, 16 dims: 10 rows a chunk
    assert sum(len(b) for b in wide.blocks(torch.randn(100, 16))) == 100 and max(rows) <= 10


def test_a_probe_whose_every_weight_decay_diverged_says_so(monkeypatch):
    """Every selection fit diverged: the choice says so, and the refit (at the strongest value) starts from zeros, as
    any fit after a diverged one does: from the selection's NaN weights it could only end NaN."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    x[:, 0] = float("nan")  # features the extraction now refuses: here the probe meets them anyway
    inits, real = [], linear.fit
    monkeypatch.setattr(linear, "fit", lambda *a, init=None, **k: inits.append(init) or real(*a, init=init, **k))
    _, info = linear.train_probe(x, y, 4, LinearConfig(weight_decays=(1e-4, 1e-2)), seed=0)
    assert info["choice"].startswith("none: every weight decay diverged")
    assert len(inits) == 3 and inits[-1] is None


def test_a_single_weight_decay_fit_on_nan_features_ends_nan_without_raising():
    """A fit from zeros (cold_iter 100: 125 loss evaluations) on NaN features: a NaN loss passes the line search's
    sufficient-decrease test, which extrapolates the step (x 5.5 an evaluation) past float32's range, where torch's
    L-BFGS raised: the probe comes back NaN, which its scores then report as diverged."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    x[:, 0] = float("nan")
    probe, info = linear.train_probe(x, y, 4, LinearConfig(weight_decays=(1e-4,)), seed=0)
    assert info["choice"] == "single value" and not torch.isfinite(probe.weight).any()


def test_a_chosen_weight_decay_whose_refit_diverges_gives_way_to_the_next_best():
    """SGD at weight decay 100 explodes yet stays finite on the held-out split, scores as well as 1e-3 there and wins
    the tie (the stronger penalty); its refit reaches NaN: the probe is then the next best's, and says so."""
    torch.manual_seed(0)
    centers = torch.randn(4, 16) * 3
    y, yt = torch.arange(200) % 4, torch.arange(80) % 4
    x, xt = centers[y] + torch.randn(200, 16), centers[yt] + torch.randn(80, 16)
    cfg = LinearConfig(optimizer="sgd", epochs=5, lr=0.1, batch_size=32, weight_decays=(100.0, 1e-3))
    probe, info = linear.train_probe(x, y, 4, cfg, seed=0)
    assert info["validation_top1"]["100.0"] == info["validation_top1"]["0.001"]  # the tie the refit then loses
    assert info["weight_decay"] == 1e-3 and "the refit at 100.0 diverged" in info["choice"]
    assert accuracy(probe(xt), yt, 1) > 0.9


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "sgd"])
def test_a_fit_leaves_the_probe_it_starts_from_alone(optimizer):
    """`fit(..., init=probe)` starts from a copy: the selection path's probes (each the next one's start, the chosen
    one the refit's) stay as they were fit."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    cfg = LinearConfig(optimizer=optimizer, epochs=2, batch_size=16, lr=0.05, max_iter=5)
    start = linear.Probe(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), torch.ones(4))
    weight, bias = start.weight.clone(), start.bias.clone()
    fitted = linear.fit(linear.Rows(x), y, 4, 1e-3, cfg, seed=0, init=start)
    assert not torch.equal(fitted.weight, weight)
    assert torch.equal(start.weight, weight) and torch.equal(start.bias, bias)


@pytest.mark.parametrize("chunked", [False, True])
def test_an_lbfgs_fit_reaches_the_minimum_of_the_documented_loss(monkeypatch, chunked):
    """The L-BFGS fit's hand-written gradient is that of mean CE(W z + b) + wd ||W||^2: run to convergence (float64)
    the loss's own autograd gradient vanishes there, in one chunk or over row chunks."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    x = x.double()
    if chunked:
        monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 7)  # 7 rows per chunk
    cfg = LinearConfig(cold_iter=300, tolerance_grad=1e-12, tolerance=1e-20)
    probe = linear.fit(linear.Rows(x), y, 4, 0.05, cfg, seed=0)
    w, b = probe.weight.clone().requires_grad_(True), probe.bias.clone().requires_grad_(True)
    (torch.nn.functional.cross_entropy(x @ w.t() + b, y) + 0.05 * (w * w).sum()).backward()
    assert float(w.grad.abs().max()) < 1e-8 and float(b.grad.abs().max()) < 1e-8
    assert float(probe.weight.abs().max()) > 0.1  # not a trivial minimum


def test_minibatch_learning_rate_follows_a_cosine_from_lr_to_zero(monkeypatch):
    """cfg.lr at the first step, then half a cosine over every step of every epoch (3 batches x 2 epochs here)."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)  # 40 rows: batches of 16, 16 and 8
    lrs, real = [], torch.optim.SGD.step
    monkeypatch.setattr(torch.optim.SGD, "step", lambda opt, *a, **k: lrs.append(opt.param_groups[0]["lr"])
                        or real(opt, *a, **k))
    linear.fit(linear.Rows(x), y, 4, 1e-3, LinearConfig(optimizer="sgd", epochs=2, batch_size=16, lr=0.3), seed=0)
    assert lrs == pytest.approx([0.3 * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in range(6)])


def test_selection_fits_run_select_iter_and_the_refit_max_iter_from_the_chosen_fit(monkeypatch):
    """L-BFGS: each fit on the selection split runs at most select_iter iterations (the first from zeros too), the
    refit at most max_iter, warm-started from the chosen value's selection fit."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    cfg = LinearConfig(weight_decays=(1e-3, 1e-1, 1e-2), select_iter=3, max_iter=5, cold_iter=7)
    limits, starts, real = [], [], lbfgs.minimize
    monkeypatch.setattr(lbfgs, "minimize", lambda f, x0, lim: limits.append(lim.max_iter) or starts.append(x0.clone())
                        or real(f, x0, lim))
    path, fit = [], linear.fit
    monkeypatch.setattr(linear, "fit", lambda *a, **k: path.append(fit(*a, **k)) or path[-1])
    _, info = linear.train_probe(x, y, 4, cfg, seed=0)
    assert limits == [3, 3, 3, 5]
    chosen = path[[1e-1, 1e-2, 1e-3].index(info["weight_decay"])]
    assert torch.equal(starts[-1], torch.cat([chosen.weight.reshape(-1), chosen.bias]))


def test_a_diverged_refit_gives_way_to_the_next_best_value_that_refits_and_no_further(monkeypatch):
    """Held-out top-1 ranks 1.0 > 0.1 > 0.01; the refit at 1.0 diverges, the one at 0.1 does not: the probe is 0.1's
    (0.01, which would refit too, is never tried)."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    top1 = {1.0: 0.9, 0.1: 0.8, 0.01: 0.7}
    refits = []

    def fit(rows, y, num_classes, wd, cfg, seed, init=None, max_iter=None):
        if max_iter is None:  # a refit
            refits.append(wd)
        value = math.nan if max_iter is None and wd == 1.0 else wd
        return linear.Probe(torch.full((num_classes, rows.x.shape[1]), value, dtype=torch.float64),
                            torch.zeros(num_classes, dtype=torch.float64))

    monkeypatch.setattr(linear, "fit", fit)
    monkeypatch.setattr(linear, "held_out_scores", lambda probe, rows, y: (top1[float(probe.weight[0, 0])], 1.0))
    probe, info = linear.train_probe(x, y, 4, LinearConfig(weight_decays=tuple(top1)), seed=0)
    assert refits == [1.0, 0.1] and info["weight_decay"] == 0.1 and float(probe.weight[0, 0]) == 0.1
    assert info["choice"].endswith("; the refit at 1.0 diverged: the next best that refits")


def test_a_refit_that_diverges_too_passes_to_the_next_value_each_from_its_selection_fit(monkeypatch):
    """Held-out top-1 ranks 1.0 > 0.1 > 0.01; the refits at 1.0 and at 0.1 diverge: the probe is 0.01's. Each
    fallback's refit starts from its own value's selection fit."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    top1 = {1.0: 0.9, 0.1: 0.8, 0.01: 0.7}
    refits = []

    def fit(rows, y, num_classes, wd, cfg, seed, init=None, max_iter=None):
        if max_iter is None:  # a refit
            refits.append((wd, None if init is None else float(init.weight[0, 0])))
        value = math.nan if max_iter is None and wd in (1.0, 0.1) else wd
        return linear.Probe(torch.full((num_classes, rows.x.shape[1]), value, dtype=torch.float64),
                            torch.zeros(num_classes, dtype=torch.float64))

    monkeypatch.setattr(linear, "fit", fit)
    monkeypatch.setattr(linear, "held_out_scores", lambda probe, rows, y: (top1[float(probe.weight[0, 0])], 1.0))
    probe, info = linear.train_probe(x, y, 4, LinearConfig(weight_decays=tuple(top1)), seed=0)
    assert refits == [(1.0, 1.0), (0.1, 0.1), (0.01, 0.01)]
    assert info["weight_decay"] == 0.01 and float(probe.weight[0, 0]) == 0.01
    assert info["choice"].endswith("; the refit at 1.0 diverged: the next best that refits")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_minibatch_probe_draws_its_batch_order_from_the_seed(optimizer):
    """The mini-batch order comes from the evaluation's seed: the same seed, the same probe; another, another."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    cfg = LinearConfig(optimizer=optimizer, epochs=2, batch_size=8, lr=0.05)
    a, b, c = (linear.fit(linear.Rows(x), y, 4, 1e-3, cfg, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_a_minibatch_epoch_reads_every_row_once_in_batches_of_batch_size(monkeypatch):
    """adam/sgd: each epoch is a permutation of the rows, cut into batches of batch_size (40 rows: 13, 13, 13, 1)."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    batches, real = [], linear.Rows.read
    monkeypatch.setattr(linear.Rows, "read",
                        lambda self, c, own=False: batches.append(c.tolist()) or real(self, c, own))
    linear.fit(linear.Rows(x), y, 4, 1e-3, LinearConfig(optimizer="sgd", epochs=2, batch_size=13), seed=0)
    assert [len(b) for b in batches] == [13, 13, 13, 1] * 2
    assert sorted(sum(batches[:4], [])) == sorted(sum(batches[4:], [])) == list(range(40))


def test_the_minibatch_loss_penalises_the_weights_and_not_the_bias():
    """adam/sgd minimise mean CE(W x + b) + wd ||W||^2, as L-BFGS does: the bias is not penalised."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    w, b = torch.full((4, 8), 0.5), torch.tensor([3.0, -1.0, 2.0, 0.0])
    ce = torch.nn.functional.cross_entropy(x @ w.t() + b, y)
    assert float(linear._loss(x, y, w, b, 0.1)) == pytest.approx(float(ce + 0.1 * 32 * 0.25))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_minibatch_probe_optimizers_also_learn(optimizer):
    x, y = blobs(30, 4, 16, 1.0, seed=0)
    xt, yt = blobs(30, 4, 16, 1.0, seed=1)
    cfg = LinearConfig(optimizer=optimizer, weight_decays=(1e-4,), epochs=30, batch_size=32, lr=0.05)
    probe, info = linear.train_probe(x, y, 4, cfg, seed=0)
    assert info["choice"] == "single value"
    assert accuracy(probe(xt), yt, 1) > 0.95


def test_scaler_uses_the_statistics_of_the_rows_it_was_fit_on():
    a = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    b = torch.tensor([[2.0, 7.0]])
    scaler = linear.Scaler.fit(a)
    assert torch.allclose(scaler(a), torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(scaler(b), torch.tensor([[0.0, 2.0]]))  # constant feature: std 1, centred on 5


def test_each_fit_is_standardized_with_its_own_training_rows_only(monkeypatch):
    """The weight decay is chosen on features z-scored with the mean and std of the selection fits' training rows:
    held-out rows (here far off) shape nothing the choice sees; the refit uses all labeled rows; the returned probe
    takes raw features."""
    x, y = blobs(30, 4, 16, 1.0, seed=0)
    tr, va = linear.stratified_split(y, 0.2, seed=0)
    x[va] += 50.0  # held-out rows far from the training rows
    seen = []
    real_fit = linear.fit
    monkeypatch.setattr(linear, "fit", lambda rows, *a, **k: seen.append(rows.read(slice(0, len(rows))))
                        or real_fit(rows, *a, **k))
    cfg = LinearConfig(weight_decays=(1e-4, 1e-2))
    probe, info = linear.train_probe(x, y, 4, cfg, seed=0)
    assert info["held_out"] == len(va) and [len(f) for f in seen] == [len(tr), len(tr), len(x)]
    for f in seen:  # each fit's features: mean 0 and std 1 over exactly its own rows
        assert torch.allclose(f.mean(0), torch.zeros(16), atol=1e-5)
        assert torch.allclose(f.std(0, unbiased=False), torch.ones(16), atol=1e-4)
    z = linear.Scaler.fit(x)(x)  # the refit's statistics: every labeled row
    assert torch.allclose(probe(x), torch.addmm(probe.bias, z, probe.weight.t()))


def test_without_standardize_every_fit_reads_the_raw_features(monkeypatch):
    """`linear.standardize: false`: neither the selection fits, nor the held-out scores, nor the refit z-score, and
    the returned probe takes the raw features as they are."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    x = x * 3 + 5
    scalers, real_fit = [], linear.fit
    monkeypatch.setattr(linear, "fit", lambda rows, *a, **k: scalers.append(rows.scaler) or real_fit(rows, *a, **k))
    probe, _ = linear.train_probe(x, y, 4, LinearConfig(standardize=False, weight_decays=(1e-4, 1e-2)), seed=0)
    assert scalers == [None, None, None] and probe.scaler is None
    assert torch.equal(probe(x), torch.addmm(probe.bias, x, probe.weight.t()))


def test_topk_against_a_loop_reference():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(200, 12, generator=g)
    y = torch.randint(0, 12, (200,), generator=g)
    for k in (1, 5):
        ref = 0
        for row, label in zip(scores.tolist(), y.tolist()):
            order = sorted(range(12), key=lambda c: -row[c])
            ref += label in order[:k]
        assert accuracy(scores, y, k) == pytest.approx(ref / 200)
    assert accuracy(scores, y, 12) == 1.0


def test_stratified_split_holds_out_each_class():
    y = torch.tensor([0] * 10 + [1] * 5 + [2] * 1)
    tr, va = linear.stratified_split(y, 0.2, seed=0)
    assert sorted(y[va].tolist()) == [0, 0, 1]  # class 2 has one image: kept for training
    assert sorted(tr.tolist() + va.tolist()) == list(range(16))


def test_knn_weighted_vote_on_a_toy_set():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.2, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 2])
    test = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    s = knn_scores(train, labels, test, 3, k=1, temperature=0.1)
    assert s.argmax(1).tolist() == [0, 1]
    # k=3 for a point near class 0: one very close class-0 neighbour against two far class-1 ones
    q = torch.tensor([[1.0, 0.3]])
    near = knn_scores(train[:3], labels[:3], q, 3, k=3, temperature=0.05)
    flat = knn_scores(train[:3], labels[:3], q, 3, k=3, temperature=100.0)
    assert near.argmax(1).item() == 0  # sharp weights: the nearest wins
    assert flat.argmax(1).item() == 1  # flat weights: the majority wins
    sims = torch.nn.functional.normalize(train[:3], dim=1) @ torch.nn.functional.normalize(q, dim=1).t()
    w = ((sims - sims.max()) / 0.05).exp().flatten().tolist()  # weights relative to the nearest neighbour's
    assert near[0].tolist() == pytest.approx([w[0], w[1] + w[2], 0.0], rel=1e-5)


def test_knn_at_a_tiny_temperature_neither_overflows_nor_loses_the_ranking():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(50, 8, generator=g), torch.randn(20, 8, generator=g)
    labels = torch.randint(0, 4, (50,), generator=g)
    sharp = knn_scores(train, labels, test, 4, k=5, temperature=0.001)
    assert torch.isfinite(sharp).all()
    nearest = labels[(torch.nn.functional.normalize(test, dim=1)
                      @ torch.nn.functional.normalize(train, dim=1).t()).argmax(1)]
    assert sharp.argmax(1).tolist() == nearest.tolist()  # at T -> 0 the nearest neighbour decides


def test_knn_holds_at_most_a_block_of_similarities_and_scores_alike(monkeypatch):
    """A large training set takes fewer test rows per block (2048 x 2.7M iNat21 similarities would be 22 GB); the
    scores do not depend on the blocks."""
    assert knn.rows_per_block(50_000) == 2048 and knn.rows_per_block(2_700_000) == 99
    assert knn.rows_per_block(10**12) == 1
    g = torch.Generator().manual_seed(1)
    train, test = torch.randn(40, 8, generator=g), torch.randn(30, 8, generator=g)
    labels = torch.randint(0, 3, (40,), generator=g)
    whole = knn_scores(train, labels, test, 3, k=4, temperature=0.1)
    shapes = []
    real_topk = torch.Tensor.topk
    monkeypatch.setattr(torch.Tensor, "topk",
                        lambda t, *a, **kw: shapes.append(tuple(t.shape)) or real_topk(t, *a, **kw))
    blocked = knn_scores(train, labels, test, 3, k=4, temperature=0.1, block_bytes=4 * 40 * 7)
    assert shapes == [(7, 40)] * 4 + [(2, 40)]
    torch.testing.assert_close(blocked, whole, rtol=1e-6, atol=1e-7)


def test_knn_over_an_empty_training_set_scores_nothing_rather_than_dividing_by_zero():
    """An empty training set takes a whole block of test rows (no similarity to hold) and scores every class 0."""
    assert knn.rows_per_block(0) == 2048
    s = knn_scores(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.randn(3, 4), 2, k=5, temperature=0.1)
    assert s.tolist() == [[0.0, 0.0]] * 3


def test_topk_of_a_diverged_classifier_is_missing_not_chance():
    y = torch.arange(10)
    assert math.isnan(accuracy(torch.full((10, 10), float("nan")), y, 1))
    assert math.isnan(accuracy(torch.randn(10, 10).index_fill_(0, torch.tensor([3]), float("inf")), y, 5))


def test_granularity_maps_fine_predictions_up_the_taxonomy():
    # 6 species -> 3 genera -> 2 families
    table = pd.DataFrame({"label": range(6), "genus": ["g0", "g0", "g1", "g1", "g2", "g2"],
                          "family": ["f0", "f0", "f0", "f0", "f1", "f1"]})
    taxonomy = ["family", "genus"]
    y = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2])
    pred = torch.tensor([0, 0, 3, 1, 5, 0, 4, 2])
    logits = torch.nn.functional.one_hot(pred, 6).float() * 10
    fine = float((pred == y).float().mean())
    genus, gv = granularity.level_map([table], granularity.level_path(taxonomy, "genus"), 6, "t")
    family, fv = granularity.level_map([table], granularity.level_path(taxonomy, "family"), 6, "t")
    assert gv == ["f0/g0", "f0/g1", "f1/g2"] and fv == ["f0", "f1"]
    # by hand: genus right for rows 0,1,2,4,7 ; family right for rows 0,1,2,3,4,7
    assert fine == pytest.approx(2 / 8)
    assert granularity.mapped_top1(ranks_of(logits), y, genus) == pytest.approx(5 / 8)
    assert granularity.mapped_top1(ranks_of(logits), y, family) == pytest.approx(6 / 8)
    scores = granularity.level_scores(logits, family, 2)
    assert scores.argmax(1).tolist() == family[pred].tolist()


def test_granularity_tells_apart_same_named_values_under_different_parents():
    # Morus the mulberry (Plantae) and Morus the gannet (Animalia): predicting one for the other is wrong at genus
    table = pd.DataFrame({"label": [0, 1], "kingdom": ["Plantae", "Animalia"], "genus": ["Morus", "Morus"]})
    genus, values = granularity.level_map([table], granularity.level_path(["kingdom", "genus"], "genus"), 2, "t")
    assert values == ["Animalia/Morus", "Plantae/Morus"]
    logits = torch.tensor([[0.0, 5.0], [5.0, 0.0]])  # each image predicted as the other Morus
    assert granularity.mapped_top1(ranks_of(logits), torch.tensor([0, 1]), genus) == 0.0


def test_granularity_of_a_diverged_classifier_is_missing():
    table = pd.DataFrame({"label": range(4), "genus": ["a", "a", "b", "b"]})
    genus, _ = granularity.level_map([table], ["genus"], 4, "t")
    nan = torch.full((3, 4), float("nan"))
    assert math.isnan(granularity.mapped_top1(ranks_of(nan), torch.tensor([0, 1, 2]), genus))


def test_granularity_of_no_test_row_is_missing_not_a_division_by_zero():
    """mapped_top1 of no row is NaN, as ranking.hit_rate's."""
    genus = torch.tensor([0, 0, 1, 1])
    assert math.isnan(granularity.mapped_top1(ranks_of(torch.zeros(0, 4)), torch.zeros(0, dtype=torch.long), genus))


def test_a_levels_top5_counts_every_top1_hit():
    # class 0 alone in its group with the highest score; 12 classes of 6 other groups score a little less each,
    # so their groups' summed probabilities would outrank group 0 and push it out of the top 5
    table = pd.DataFrame({"label": range(13), "group": ["g0"] + [f"g{1 + i // 2}" for i in range(12)]})
    mapping, values = granularity.level_map([table], ["group"], 13, "t")
    logits = torch.log(torch.tensor([[0.10] + [0.075] * 12]))
    y = torch.tensor([0])
    assert granularity.mapped_top1(ranks_of(logits), y, mapping) == 1.0
    assert accuracy(granularity.level_scores(logits, mapping, len(values)), mapping[y], 5) == 1.0


def test_a_level_outside_the_taxonomy_is_told_by_its_own_column_alone():
    """level_path: a taxonomy level is told by its path from the root; another column (the class name) by itself."""
    assert granularity.level_path(["kingdom", "family", "genus"], "family") == ["kingdom", "family"]
    assert granularity.level_path(["kingdom", "family", "genus"], "class_name") == ["class_name"]


def test_a_class_no_row_shows_maps_to_no_value_and_a_prediction_of_it_is_wrong_at_every_level():
    """A class absent from the tables maps to -1: predicting it hits no value (not the level's first value), and it
    adds nothing to any value's score."""
    table = pd.DataFrame({"label": [0, 1, 2], "genus": ["a", "a", "b"]})
    mapping, values = granularity.level_map([table], ["genus"], 4, "t")
    assert mapping.tolist() == [0, 0, 1, -1] and values == ["a", "b"]
    logits = torch.tensor([[0.0, 1.0, 2.0, 9.0]])  # class 3 (no row) scores highest; the true class 0 is genus a
    assert granularity.mapped_top1(ranks_of(logits), torch.tensor([0]), mapping) == 0.0
    assert granularity.level_scores(logits, mapping, 2).tolist() == [[1.0, 2.0]]


def test_a_levels_score_is_its_best_class_score_even_when_every_score_is_negative():
    """level_scores: each value scores the highest (log-probability) score of its classes, negative ones included;
    it does not start from 0."""
    mapping = torch.tensor([0, 0, 1, 2, 2])
    logits = torch.tensor([[-3.0, -1.0, -2.0, -5.0, -4.0], [-0.5, -6.0, -7.0, -0.25, -9.0]])
    assert granularity.level_scores(logits, mapping, 3).tolist() == [[-1.0, -2.0, -4.0], [-0.5, -7.0, -0.25]]


def test_a_single_non_finite_score_makes_a_levels_top1_missing():
    """One inf or NaN among otherwise finite scores (a classifier diverging) gives NaN, as linear.topk does."""
    table = pd.DataFrame({"label": range(4), "genus": ["a", "a", "b", "b"]})
    genus, _ = granularity.level_map([table], ["genus"], 4, "t")
    y = torch.tensor([0, 1, 2])
    for bad in (float("inf"), float("nan")):
        logits = torch.eye(3, 4).index_put_((torch.tensor([1]), torch.tensor([2])), torch.tensor(bad))
        assert math.isnan(granularity.mapped_top1(ranks_of(logits), y, genus)), bad


def test_a_class_only_the_test_manifest_shows_still_maps_to_its_value():
    """level_map reads every table it is given (train and test): a class no labeled row shows is still told."""
    train = pd.DataFrame({"label": [0, 1], "genus": ["a", "b"]})
    test = pd.DataFrame({"label": [1, 2], "genus": ["b", "b"]})
    mapping, values = granularity.level_map([train, test], ["genus"], 3, "t")
    assert mapping.tolist() == [0, 1, 1] and values == ["a", "b"]


def test_the_mapped_protocol_scores_a_levels_top5_against_the_true_classes_value():
    """Granularity's mapped protocol (run._granularity) at a level of more than 5 values: its top-5 is a hit rate
    against each test row's value at that level, not its class index."""
    from study.evaluate import run as run_mod

    cfg = EvalConfig.from_dict({"protocol": "granularity", "train_manifest": "a", "test_manifest": "b",
                                "linear": {"weight_decays": [1e-4], "val_fraction": 0, "max_iter": 50}})
    y = torch.arange(12).repeat(4)
    x = torch.nn.functional.one_hot(y, 12).float() * 5
    genus = torch.arange(12) // 2  # 6 values of 2 classes each
    level_maps = {"genus": (genus, [f"g{i}" for i in range(6)])}
    info = {}
    rows = run_mod._granularity(cfg, x, y, x[:12], torch.arange(12), 48, level_maps, 12, info)
    got = {(r["metric"], r["level"]): r["value"] for r in rows}
    assert got == {("top1", "genus"): 1.0, ("top5", "genus"): 1.0}
    assert info["levels"] == {"genus": {"values": 6}}  # each level's values recorded


def test_granularity_refuses_a_class_with_two_parents():
    table = pd.DataFrame({"label": [0, 0, 1], "genus": ["a", "b", "b"]})
    with pytest.raises(StudyError, match=r"class 0 has several values at level 'genus': \['a', 'b'\]"):
        granularity.level_map([table], ["genus"], 2, "evaluate.levels")


BASE = {"protocol": "linear", "train_manifest": "a", "test_manifest": "b"}


@pytest.mark.parametrize("over, key", [
    ({"protocol": "probe"}, "evaluate.protocol"),
    ({"labeled_sizes": [0]}, "evaluate.labeled_sizes"),
    ({"linear": {"optimiser": "lbfgs"}}, "evaluate.linear: unknown key"),
    ({"linear": {"weight_decays": []}}, "evaluate.linear.weight_decays"),
    ({"knn": {"k": 0}}, "evaluate.knn.k"),
    ({"also_knn": "yes"}, "evaluate.also_knn: expected true or false"),
    ({"per_level": 1}, "evaluate.per_level: expected true or false"),
    ({"feature_layer": "fc"}, "evaluate.feature_layer"),
    ({"augment": {"crop": "middle"}}, "evaluate.augment.crop"),
    ({"augment": {"flip_p": 0.5}}, "evaluate.augment.flip_p: 0.5 draws at random"),
    ({"augment": {"preset": "simclr"}}, "evaluate.augment.crop: 'random_resized' (of preset 'simclr') draws at random"),
    ({"augment": {"blur_p": 0.5, "image_size": 64}}, "evaluate.augment.blur_p: [0.5] draws at random"),
    ({"finetune": {"method": "simclr"}}, "evaluate.finetune.method"),
    ({"protocol": "finetune", "finetune": {"stpes": 80}}, "evaluate.finetune: unknown key"),
    ({"protocol": "scratch", "finetune": {"optim": {"lr": "x"}}}, "evaluate.finetune.optim.lr"),
    ({"protocol": "finetune", "finetune": {"augment": "simclr"}}, "evaluate.finetune.augment"),
    ({"protocol": "finetune", "finetune": {"batch_size": "x"}}, "evaluate.finetune.batch_size"),
    ({"colour": 1}, "evaluate: unknown key"),
    ({"test_manifest": ""}, "evaluate.test_manifest"),
    ({"seed": -1}, "evaluate.seed"),
    ({"checkpoint_every_minutes": 0}, "evaluate.checkpoint_every_minutes"),
    ({"epochs": "x"}, "evaluate.epochs"),
    ({"linear": {"val_fraction": 1}}, "evaluate.linear.val_fraction"),
    ({"linear": {"weight_decays": [1e-4, -1e-4]}}, "evaluate.linear.weight_decays"),
    ({"knn": {"temperature": 0}}, "evaluate.knn.temperature"),
])
def test_config_errors_name_the_key(over, key):
    import re

    with pytest.raises(StudyError, match=re.escape(key)):
        EvalConfig.from_dict({**BASE, **over}, where="evaluate")


def test_config_round_trips_through_a_plain_dict():
    cfg = EvalConfig.from_dict({**BASE, "labeled_sizes": [10, "all"], "levels": ["group", "class_name"],
                                "linear": {"weight_decays": [0.1, 1]}})
    again = EvalConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.linear.weight_decays == (0.1, 1.0)


def test_scratch_trains_with_a_from_scratch_recipe_and_finetune_with_simclrs():
    """Training from random init with the fine-tuning recipe (no weight decay, 60 epochs) would favour fine-tuning in
    the comparison the paper makes; each protocol has its own defaults, and a grid's values win."""
    from study.evaluate.finetune import pretrain_dict
    from study.train.config import PretrainConfig

    def run_config(**over):
        cfg = EvalConfig.from_dict({**BASE, "labeled_sizes": [100], **over})
        return PretrainConfig.from_dict(pretrain_dict(cfg, 100, 100, None))

    ft = run_config(protocol="finetune")
    assert (ft.epochs, ft.optim.name, ft.optim.lr, ft.optim.weight_decay, ft.optim.warmup_epochs) == \
        (60, "sgd", 0.05, 0.0, 0)
    assert ft.optim.exclude_bias_and_norm is True
    scratch = run_config(protocol="scratch")
    assert (scratch.epochs, scratch.optim.name, scratch.optim.lr, scratch.optim.weight_decay,
            scratch.optim.warmup_epochs) == (90, "sgd", 0.1, 1e-4, 5.0)
    assert run_config(protocol="scratch", epochs=30, finetune={"optim": {"weight_decay": 5e-4}}).optim.weight_decay \
        == 5e-4
    for protocol in ("finetune", "scratch"):  # SimCLR's batch of 256 where the labeled subset has the images
        cfg = EvalConfig.from_dict({**BASE, "labeled_sizes": [1000], "protocol": protocol})
        assert PretrainConfig.from_dict(pretrain_dict(cfg, 1000, 1000, None)).batch_size == 256, protocol


def test_a_probe_leaves_the_callers_features_alone():
    """Each fit reads z-scored copies of its rows' chunks; the caller's features stay as they were."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 16, generator=g) * 3
    y = torch.randint(0, 4, (300,), generator=g)
    scaler = linear.Scaler.fit(x)
    assert torch.equal(scaler(x), (x - scaler.mean) / scaler.std)
    before = x.clone()
    linear.train_probe(x, y, 4, LinearConfig(), seed=0)
    assert torch.equal(x, before)


def test_statistics_over_row_chunks_are_those_of_the_rows_at_once(monkeypatch):
    """Scaler.fit of some rows, in one piece or (beyond CHUNK_LOGITS values) over row chunks in float64: the same
    mean and std, of exactly those rows."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(500, 8, generator=g) * torch.linspace(0.1, 100.0, 8) + 1000.0  # large means, small spreads
    index = torch.arange(0, 500, 3)
    whole = linear.Scaler.fit(x[index])
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 16)  # 16 rows per chunk
    chunked = linear.Scaler.fit(x, index)
    assert len(linear._row_chunks(len(index), 8)) == 11
    assert torch.allclose(chunked.mean, x[index].double().mean(0, keepdim=True).float(), rtol=0, atol=1e-4)
    assert torch.allclose(chunked.std, x[index].double().std(0, unbiased=False, keepdim=True).float(), rtol=1e-5)
    assert torch.allclose(chunked.mean, whole.mean) and torch.allclose(chunked.std, whole.std, rtol=1e-4)


def test_statistics_over_many_row_chunks_keep_float64_precision(monkeypatch):
    """Over thousands of row chunks the mean is the float64 mean of the rows (chunk sums added in float64, even with a
    first row, the shift, far off) and the std the float64 std even at a mean 1e6 times the spread (corrected two-pass:
    the float32 mean's rounding adds nothing to it)."""
    x = torch.rand(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 0] = 1e4 + 1e-2 * x[:, 0]
    x[:, 1] += 1.0
    x[0, 1] = -1000.0
    x = x.float()
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 2)  # one row per chunk
    scaler = linear.Scaler.fit(x)
    mean, std = x.double().mean(0), x.double().std(0, unbiased=False)
    assert float((scaler.mean[0, 1] - mean[1]).abs() / std[1]) < 1e-6
    assert torch.allclose(scaler.std[0].double(), std, rtol=1e-6, atol=0)


def test_statistics_in_one_chunk_are_torchs_own_bit_for_bit():
    """Below CHUNK_LOGITS values the statistics are torch's mean and std of the rows themselves, to the last bit (a
    probe that fits in one chunk standardizes as it always did)."""
    x = torch.rand(200, 8, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 100.0, 8) + 3.3
    index = torch.arange(1, 200, 2)
    scaler = linear.Scaler.fit(x, index)
    assert torch.equal(scaler.mean, x[index].mean(0, keepdim=True))
    assert torch.equal(scaler.std, x[index].std(0, unbiased=False, keepdim=True))


@pytest.mark.parametrize("value", [0.1, 3.3, 1000.1])
def test_a_constant_column_over_row_chunks_keeps_std_one_and_z_scores_to_zero(monkeypatch, value):
    """A column of one value has std 0, hence 1 (its z-scores 0), over row chunks as in one piece: its float32 chunk
    sums once missed the value by an ulp, leaving a std of that ulp (1e-4 at 1000.1) and z-scores of +-1 that blow a
    test row's other value up by 1/ulp."""
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    x[:, 2] = value
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 4 * 37)  # 37 rows per chunk
    scaler = linear.Scaler.fit(x, torch.arange(0, 500, 2))
    assert scaler.std[0, 2] == 1.0 and scaler.mean[0, 2] == x[0, 2]
    assert torch.equal(scaler(x)[:, 2], torch.zeros(500))


def test_a_read_of_copied_rows_z_scores_that_copy_in_place():
    """Rows read through an index (of Rows or of the read) are copied once and z-scored in that copy: one tensor of
    their size is made, not a second for the z-scores (a chunk of the training rows, each L-BFGS step)."""
    x = torch.rand(100, 8, generator=torch.Generator().manual_seed(0))
    scaler = linear.Scaler.fit(x)

    class Made(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.storages = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.shape == (10, 8):
                self.storages.add(out.untyped_storage().data_ptr())
            return out

    for rows, c in ((linear.Rows(x, torch.arange(0, 100, 3), scaler), slice(0, 10)),
                    (linear.Rows(x, None, scaler), torch.arange(10, 30, 2))):
        with Made() as made:
            part = rows.read(c)
        assert len(made.storages) == 1 and part.untyped_storage().data_ptr() in made.storages
        whole = x if rows.index is None else x[rows.index]
        assert torch.equal(part, scaler(whole[c]))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "sgd"])
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("standardize", [False, True])
def test_a_fit_on_rows_is_the_fit_on_their_z_scored_copy(monkeypatch, optimizer, chunked, standardize):
    """A fit that reads x's rows `index` (z-scored as it reads them) gives the very probe a fit on a z-scored copy of
    those rows gives, in one chunk or over row chunks, full batch or in minibatches."""
    x, y = blobs(20, 4, 8, 1.0, seed=0)
    x = x * torch.linspace(0.5, 3.0, 8) + 5.0
    index = torch.arange(0, 80, 2)
    if chunked:
        monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 7)  # 7 rows per chunk
    scaler = linear.Scaler.fit(x, index) if standardize else None
    copy = scaler(x[index]) if standardize else x[index]
    cfg = LinearConfig(optimizer=optimizer, epochs=3, batch_size=16, lr=0.05, cold_iter=20)
    read = linear.fit(linear.Rows(x, index, scaler), y[index], 4, 1e-3, cfg, seed=0)
    made = linear.fit(linear.Rows(copy), y[index], 4, 1e-3, cfg, seed=0)
    assert torch.equal(read.weight, made.weight) and torch.equal(read.bias, made.bias)
    assert bool(read.weight.abs().sum() > 0)


def test_a_probe_over_row_chunks_never_copies_every_row(monkeypatch):
    """Beyond CHUNK_LOGITS values a fit reads its rows chunk by chunk, z-scoring each as it goes: no tensor near the
    size of the features is made (a z-scored copy of the training rows, then of all of them, once took two to three
    times the features' memory: 44-66 GB at iNat21's 2.7M x 2048), and the probe is the one fit in one piece."""
    x, y = blobs(60, 8, 32, 1.0, seed=0)  # 480 x 32 features
    cfg = LinearConfig(weight_decays=(1e-3, 1e-1), history_size=2)  # L-BFGS's history: 2 x 2 x 8 x 33 values
    whole, info_whole = linear.train_probe(x, y, 8, cfg, seed=0)

    monkeypatch.setattr(linear, "CHUNK_LOGITS", 32 * 40)  # 40 rows per chunk
    before = x.clone()
    with LargestFloat() as largest:
        chunked, info = linear.train_probe(x, y, 8, cfg, seed=0)
    assert 0 < largest.numel <= 40 * 32 < x.numel() // 4  # a chunk at most
    assert torch.equal(x, before)  # chunks of the caller's own rows are read, never written
    assert info["weight_decay"] == info_whole["weight_decay"]  # the same probe but for summation order, which
    assert torch.allclose(chunked.weight, whole.weight, atol=5e-3)  # L-BFGS's capped iterations carry to 1e-3 here
    assert torch.equal(chunked(x).argmax(1), whole(x).argmax(1))


def test_stratified_split_draws_the_same_rows_however_the_classes_are_numbered():
    """A granularity level's values renumber the classes (by name): the same rows held out; another seed, others."""
    y = torch.arange(40) % 8
    renumbered = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])[y]
    tr, va = linear.stratified_split(y, 0.25, seed=3)
    tr2, va2 = linear.stratified_split(renumbered, 0.25, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2) and len(va) == 8  # round(0.25 x 5) = 1 per class
    assert not torch.equal(va, linear.stratified_split(y, 0.25, seed=4)[1])


def test_stratified_split_holds_out_the_rounded_fraction_and_keeps_a_training_row_of_each_class():
    """Of each class, round(fraction x count) rows held out, at least one (a class of 2: one of them) and never all."""
    y = torch.tensor([0] * 8 + [1] * 3 + [2] * 2)
    # 0.2 x 8 = 1.6 -> 2; 0.9 x 3 = 2.7 -> 3, capped at 2; 0.3125 x 8 = 2.5 -> 2 (half to even, not 3)
    for fraction, held in ((0.2, [2, 1, 1]), (0.9, [7, 2, 1]), (0.3125, [2, 1, 1])):
        tr, va = linear.stratified_split(y, fraction, seed=0)
        assert torch.bincount(y[va], minlength=3).tolist() == held, fraction
        assert torch.bincount(y[tr], minlength=3).tolist() == [8 - held[0], 3 - held[1], 2 - held[2]]
    assert len(linear.stratified_split(y, 0.0, seed=0)[1]) == 0  # a fraction of 0 holds out nothing


def test_held_out_scores_over_row_chunks_of_a_diverged_probe_are_missing(monkeypatch):
    """A probe whose scores are not finite has no held-out top-1 (not the chance its argmax would give), whether the
    held-out rows are scored at once or in row chunks."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    probe = linear.Probe(torch.full((4, 8), float("nan")), torch.zeros(4))
    assert math.isnan(linear.held_out_scores(probe, linear.Rows(x), y)[0])
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 16)  # 16 rows per chunk: 40 rows make 3
    assert len(linear._row_chunks(len(y), 8)) == 3
    assert math.isnan(linear.held_out_scores(probe, linear.Rows(x), y)[0])


def test_held_out_scores_over_row_chunks_are_missing_where_only_the_first_chunk_is_not_finite(monkeypatch):
    """One held-out row of non-finite features, in the first of three row chunks: the probe has no held-out top-1,
    as when the rows are scored at once."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    x[0, 0] = float("inf")
    probe = linear.Probe(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), torch.zeros(4))
    assert math.isnan(linear.held_out_scores(probe, linear.Rows(x), y)[0])
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 16)  # 16 rows per chunk: 40 rows make 3
    assert math.isnan(linear.held_out_scores(probe, linear.Rows(x), y)[0])


def test_held_out_scores_are_the_same_top1_at_once_and_over_row_chunks(monkeypatch):
    """The held-out top-1 (and cross-entropy) of a probe that is often wrong: the rows' argmax hits, whether they are
    scored at once or in row chunks."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    probe = linear.Probe(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), torch.zeros(4))
    logits = probe(x)
    top1 = float((logits.argmax(1) == y).float().mean())
    assert 0 < top1 < float((logits.topk(2, dim=1).indices == y[:, None]).any(1).float().mean())  # not vacuous
    whole = linear.held_out_scores(probe, linear.Rows(x), y)
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 8 * 16)  # 16 rows per chunk: 40 rows make 3
    chunked = linear.held_out_scores(probe, linear.Rows(x), y)
    assert whole[0] == pytest.approx(top1) and chunked[0] == pytest.approx(top1)
    assert whole[1] == pytest.approx(chunked[1]) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)))


def test_several_weight_decays_with_no_row_to_hold_out_take_the_middle_of_the_grid():
    """One labeled image per class: nothing can be held out, and the probe is fit at the middle of the grid; no
    held-out score of either kind is recorded (both keys there, as train_probe's contract says)."""
    x, y = blobs(1, 4, 8, 1.0, seed=0)
    probe, info = linear.train_probe(x, y, 4, LinearConfig(weight_decays=(1e-3, 1e-1, 1e-2)), seed=0)
    assert info["held_out"] == 0 and info["choice"].startswith("no class has 2 labeled images")
    assert info["validation_top1"] == {} and info["validation_loss"] == {}
    assert info["weight_decay"] == 1e-2
    assert accuracy(probe(x), y, 1) == 1.0



def test_no_row_to_hold_out_under_the_default_grid_takes_its_weaker_middle_value():
    """The default grid has six values, so two middles: nothing to hold out takes grid[len // 2] of the strongest-first
    grid, 1e-4 (not 1e-3), the value results without a held-out split were recorded with."""
    x, y = blobs(1, 4, 8, 1.0, seed=0)
    _, info = linear.train_probe(x, y, 4, EvalConfig.from_dict(BASE).linear, seed=0)
    assert info["held_out"] == 0 and info["weight_decay"] == 1e-4


def test_topk_with_k_beyond_the_class_count_counts_every_row():
    """k larger than the number of classes is every class (a hit for each row), not torch's out-of-range error."""
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.0, 0.1]])
    assert accuracy(scores, torch.tensor([0, 1]), 5) == 1.0
    assert accuracy(scores, torch.tensor([0, 1]), 1) == 0.0


def test_a_selection_fit_that_diverged_warm_starts_nothing_and_the_others_still_compete():
    """SGD at weight decay 1e4 reaches NaN on the selection split; the weaker 1e-3 starts from zeros (not from the
    NaN weights, which once made every weaker value diverge too) and wins on its own, the diverged value ranked last:
    the choice is the plain best held-out top-1, with no refit that had to give way."""
    x, y = blobs(30, 4, 16, 1.0, seed=0)
    cfg = LinearConfig(optimizer="sgd", epochs=6, lr=0.1, batch_size=32, weight_decays=(1e4, 1e-3))
    probe, info = linear.train_probe(x, y, 4, cfg, seed=0)
    assert math.isnan(info["validation_top1"]["10000.0"]) and info["validation_top1"]["0.001"] > 0.9
    assert info["weight_decay"] == 1e-3
    assert info["choice"] == "best held-out top-1 (ties: lower held-out cross-entropy)"
    assert accuracy(probe(x), y, 1) > 0.9

def test_defaults_are_the_documented_ones():
    """docs/protocol-evaluation.md, "Evaluation settings": a config that sets nothing evaluates with these."""
    cfg = EvalConfig.from_dict(BASE)
    assert (cfg.knn.k, cfg.knn.temperature) == (200, 0.07)  # Wu et al. 2018
    lin = cfg.linear
    assert (lin.standardize, lin.optimizer, lin.val_fraction) == (True, "lbfgs", 0.2)
    assert lin.weight_decays == (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    assert (lin.select_iter, lin.max_iter, lin.cold_iter, lin.epochs) == (20, 30, 100, 90)
    assert (lin.tolerance, lin.tolerance_grad, lin.history_size, lin.tf32) == (1e-6, 1e-7, 20, False)
    assert (lin.lr, lin.batch_size, cfg.batch_size, cfg.checkpoint_every_minutes) == (0.1, 1024, 256, 10.0)
    assert (cfg.labeled_sizes, cfg.feature_layer, cfg.image_size, cfg.seed) == (("all",), "pooled", 224, 0)


@pytest.mark.parametrize("protocol", ["finetune", "scratch"])
def test_a_finetune_trains_with_the_evaluations_seed(protocol):
    """`seed` also seeds the fine-tuning and from-scratch runs (their sampler and initialisation); the finetune
    settings may set their own."""
    cfg = EvalConfig.from_dict({**BASE, "protocol": protocol, "labeled_sizes": [100], "seed": 7})
    assert PretrainConfig.from_dict(pretrain_dict(cfg, 100, 100, None)).seed == 7
    own = EvalConfig.from_dict({**BASE, "protocol": protocol, "labeled_sizes": [100], "seed": 7,
                                "finetune": {"seed": 3}})
    assert PretrainConfig.from_dict(pretrain_dict(own, 100, 100, None)).seed == 3


def test_a_probes_row_chunks_are_read_fit_and_scored_on_the_features_gpu(monkeypatch):
    """The probe's row-chunk paths on a GPU, which no test on a GPU reaches (they start beyond 2**26 values):
    checked with fake CUDA features (no GPU here), which raise on two devices as CUDA does. The chunked statistics
    and each read of z-scored rows are on the features' device; the minibatch fits run through; the L-BFGS fit gets
    through its closure over every chunk to its read of the loss, the chunked held-out scores through the first
    chunk's scores to their read (a fake tensor cannot give a value). A fake tensor has no autograd engine:
    `backward` does nothing here (the minibatch fits' loss, not their gradient, is what is checked there)."""
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 4 * 5)  # 5 rows per chunk
    monkeypatch.setattr(torch.Tensor, "backward", lambda self, *a, **k: None)
    with FakeTensorMode(allow_non_fake_inputs=True):
        x, y = torch.zeros(12, 4, device="cuda"), torch.zeros(12, dtype=torch.long, device="cuda")
        index = torch.arange(1, 12, device="cuda")
        rows = linear.Rows(x, index, linear.Scaler.fit(x, index))
        assert len(linear._row_chunks(len(index), 4)) == 3
        read = (rows.scaler.mean, rows.scaler.std, rows.read(slice(0, 5)), rows.read(index[:3] - 1))
        assert {t.device.type for t in read} == {"cuda"}
        for optimizer in ("sgd", "adam"):
            cfg = LinearConfig(optimizer=optimizer, epochs=1, batch_size=4)
            probe = linear.fit(rows, y[index], 3, 1e-3, cfg, seed=0)
            assert probe.weight.device.type == probe.bias.device.type == "cuda", optimizer
        with pytest.raises(DataDependentOutputException):
            linear.fit(rows, y[index], 3, 1e-3, LinearConfig(), seed=0)
        with pytest.raises(DataDependentOutputException):
            linear.held_out_scores(probe, rows, y[index])


def test_knn_makes_no_unit_length_copy_of_the_training_rows_and_scores_as_on_unit_rows():
    """Similarities are divided by the training rows' norms, block by block (a unit-length copy of iNat21's 2.7M
    training rows would be 22 GB); the scores are those of unit-length rows."""
    g = torch.Generator().manual_seed(3)
    train, test = torch.randn(600, 16, generator=g) * 5, torch.randn(40, 16, generator=g)
    labels = torch.randint(0, 5, (600,), generator=g)
    with LargestFloat() as largest:
        blocks = knn_scores(train, labels, test, 5, k=7, temperature=0.1, block_bytes=4 * 600 * 8)
    assert largest.numel == 8 * 600  # one block of similarities; never 600 x 16 rows
    unit = knn_scores(torch.nn.functional.normalize(train, dim=1), labels, test, 5, k=7, temperature=0.1)
    torch.testing.assert_close(blocks, unit, rtol=1e-5, atol=1e-6)


def test_knn_scores_a_zero_training_row_and_half_precision_rows_as_unit_rows():
    """A training row of norm 0 (its norm clamped at knn.EPS, as F.normalize does) is at similarity 0 from every test
    row, not NaN; half-precision features are scored in float32, as their float32 values are."""
    g = torch.Generator().manual_seed(4)
    train, test = torch.randn(30, 8, generator=g) * 3, torch.randn(6, 8, generator=g)
    train[[0, 7]] = 0
    labels = torch.randint(0, 3, (30,), generator=g)
    got = knn_scores(train, labels, test, 3, k=30, temperature=0.1)  # every training row votes
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, knn_scores(torch.nn.functional.normalize(train, dim=1), labels, test, 3, k=30,
                                                temperature=0.1))
    half = knn_scores(train.half(), labels, test.half(), 3, k=7, temperature=0.1)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, knn_scores(train.half().float(), labels, test.half().float(), 3, k=7,
                                                temperature=0.1))


def test_a_weight_decay_whose_warm_start_takes_no_step_ties_with_the_stronger_one_which_wins():
    """On separable blobs the 1e-5 selection fit ends where the gradient at 1e-6 has g.g below `tolerance`: L-BFGS
    takes no step (torch's test of the first direction's slope), so 1e-6 is scored with 1e-5's probe, to the last
    digit, and the exact tie goes to the stronger penalty (docs/protocol-evaluation.md, "Linear probe details")."""
    x, y = blobs(10, 4, 8, 1.0, seed=0)
    _, info = linear.train_probe(x, y, 4, LinearConfig(), seed=0)
    assert info["validation_loss"]["1e-06"] == info["validation_loss"]["1e-05"]
    assert info["validation_top1"]["1e-06"] == info["validation_top1"]["1e-05"] == 1.0
    assert info["validation_loss"]["1e-05"] < info["validation_loss"]["0.0001"]  # the tie is the best held-out score
    assert info["weight_decay"] == 1e-5
