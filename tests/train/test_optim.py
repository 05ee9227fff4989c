"""LARS (and its exclusions), lr scaling, warmup + cosine."""
import copy
import math

import pytest
import torch
from torch import nn

from study.train.config import OptimConfig
from study.train.optim import LARS, build_optimizer, lr_at, peak_lr, set_lr


def test_lr_scaling_rules():
    assert peak_lr(OptimConfig(lr=0.3, lr_scaling="linear"), 4096) == pytest.approx(4.8)
    assert peak_lr(OptimConfig(lr=0.075, lr_scaling="sqrt"), 4096) == pytest.approx(4.8)
    assert peak_lr(OptimConfig(lr=0.3, lr_scaling="linear"), 256) == pytest.approx(0.3)
    assert peak_lr(OptimConfig(lr=0.3, lr_scaling="linear"), 96) == pytest.approx(0.1125)  # not a multiple of 256
    assert peak_lr(OptimConfig(lr=0.075, lr_scaling="sqrt"), 100) == pytest.approx(0.75)


def test_the_default_base_lr_follows_the_scaling_rule():
    """SimCLR's two rules agree at its batch of 4096 (4.8); the sqrt rule with the linear rule's 0.3 gave 19.2."""
    assert (OptimConfig().lr, OptimConfig(lr_scaling="sqrt").lr) == (0.3, 0.075)
    assert peak_lr(OptimConfig(lr_scaling="sqrt"), 4096) == pytest.approx(4.8)
    assert peak_lr(OptimConfig(lr_scaling="linear"), 4096) == pytest.approx(4.8)
    assert OptimConfig(lr=0.5, lr_scaling="sqrt").lr == 0.5  # a value given wins


def test_warmup_then_cosine():
    assert lr_at(0, 1.0, 10, 110) == 0.0
    assert lr_at(5, 1.0, 10, 110) == pytest.approx(0.5)
    assert lr_at(10, 1.0, 10, 110) == pytest.approx(1.0)
    assert lr_at(60, 1.0, 10, 110) == pytest.approx(0.5)
    assert lr_at(110, 1.0, 10, 110) == pytest.approx(0.0)
    assert lr_at(110, 1.0, 10, 110, final_fraction=0.1) == pytest.approx(0.1)
    assert lr_at(35, 2.0, 10, 110) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi * 0.25)))


def test_lars_exempts_biases_and_norms_from_decay_and_adaptation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    opt = build_optimizer(model, OptimConfig(name="lars", weight_decay=0.1, momentum=0.9, trust_coefficient=0.001),
                          lr=0.5)
    assert isinstance(opt, LARS)
    regular, excluded = opt.param_groups
    assert [p.shape for p in regular["params"]] == [torch.Size([3, 4])]
    assert len(excluded["params"]) == 3  # linear bias, bn weight, bn bias
    assert excluded["weight_decay"] == 0.0 and excluded["lars_adapt"] is False
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(torch.randn(5, 4)).pow(2).sum().backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for name, p in model.named_parameters():
        w, g = before[name], grads[name]
        if name == "0.weight":
            g = g + 0.1 * w
            g = g * 0.001 * w.norm() / g.norm()
        expect = w - 0.5 * g  # first step: momentum buffer = lr * g
        assert torch.allclose(p.detach(), expect, atol=1e-7), name


def test_lars_momentum_applies_each_gradient_at_its_own_steps_learning_rate():
    """SimCLR's classic momentum, v <- m v + lr_t g_t; p <- p - v, against a loop over the steps: during warmup a
    gradient taken at lr 0 moves nothing later (torch-style momentum, v <- m v + g; p <- p - lr v, would)."""
    torch.manual_seed(0)
    start, lrs = torch.randn(6), [0.0, 0.4, 0.8, 1.2]
    grads = [torch.randn(6) for _ in lrs]

    def run(grads):
        p = nn.Parameter(start.clone())
        opt = LARS([{"params": [p], "lars_adapt": False}], lr=0.0, momentum=0.9)
        for g, lr in zip(grads, lrs):
            opt.param_groups[0]["lr"] = lr
            p.grad = g.clone()
            opt.step()
        return p.detach()

    w, v = start.clone(), torch.zeros(6)
    for g, lr in zip(grads, lrs):
        v = 0.9 * v + lr * g
        w = w - v
    assert torch.allclose(run(grads), w, atol=1e-6)
    assert torch.equal(run([100 * torch.randn(6)] + grads[1:]), run(grads))  # the step at lr 0 leaves no trace


def test_sgd_and_adamw_groups_have_no_decay_on_biases():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    for name, cls in (("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)):
        opt = build_optimizer(model, OptimConfig(name=name, weight_decay=0.05), lr=0.1)
        assert isinstance(opt, cls)
        assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    opt = build_optimizer(model, OptimConfig(name="sgd", exclude_bias_and_norm=False), lr=0.1)
    assert len(opt.param_groups) == 1


def test_the_cosine_starts_at_the_peak_and_ends_at_the_final_fraction():
    """With a floor (final_lr_fraction) the decay runs from the peak itself, not from peak + floor: warmup ends at
    the peak, halfway through the decay is midway between peak and floor, the end is the floor."""
    assert lr_at(10, 2.0, 10, 110, final_fraction=0.1) == pytest.approx(2.0)
    assert lr_at(60, 2.0, 10, 110, final_fraction=0.1) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert lr_at(110, 2.0, 10, 110, final_fraction=0.1) == pytest.approx(0.2)


def test_lars_runs_with_the_configured_momentum_and_trust_coefficient():
    """Values away from the defaults (0.9, 0.001) reach the optimizer: two steps against the formula."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    opt = build_optimizer(model, OptimConfig(name="lars", weight_decay=0.0, momentum=0.5, trust_coefficient=0.02),
                          lr=0.5)
    w, v = model.weight.detach().clone(), torch.zeros(3, 4)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        g = model.weight.grad.detach().clone()
        opt.step()
        v = 0.5 * v + 0.5 * (0.02 * w.norm() / g.norm()) * g
        w = w - v
        assert torch.allclose(model.weight.detach(), w, atol=1e-7)


def _two_steps(model: nn.Module, opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    torch.manual_seed(1)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("cfg, reference", [
    (OptimConfig(name="sgd", momentum=0.5, weight_decay=0.01, exclude_bias_and_norm=False),
     lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.5, weight_decay=0.01)),
    (OptimConfig(name="sgd", weight_decay=0.01, exclude_bias_and_norm=False),  # the default momentum, 0.9
     lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01)),
    (OptimConfig(name="adamw", betas=(0.5, 0.9), weight_decay=0.01, exclude_bias_and_norm=False),
     lambda params: torch.optim.AdamW(params, lr=0.1, betas=(0.5, 0.9), weight_decay=0.01)),
])
def test_sgd_and_adamw_run_with_the_configured_momentum_and_betas(cfg, reference):
    torch.manual_seed(0)
    base = nn.Linear(4, 3)
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    got = _two_steps(a, build_optimizer(a, cfg, lr=0.1))
    want = _two_steps(b, reference(b.parameters()))
    assert all(torch.allclose(x, y, atol=1e-7) for x, y in zip(got, want))


@pytest.mark.parametrize("name", ["lars", "sgd", "adamw"])
def test_set_lr_reaches_every_group_so_biases_and_norms_train_too(name):
    """The loop builds the optimizer at lr 0 and sets each step's rate: the excluded group (biases, norms) must get
    it too, or it never moves."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    opt = build_optimizer(model, OptimConfig(name=name), lr=0.0)
    set_lr(opt, 0.2)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    (model(torch.randn(5, 4)) * torch.randn(5, 3)).sum().backward()
    opt.step()
    assert [n for n, p in model.named_parameters() if torch.equal(p.detach(), before[n])] == []


def test_the_schedule_holds_its_floor_past_the_last_step_and_its_peak_without_room_to_decay():
    """Past total_steps the cosine stays at its floor (it does not climb back); a run whose warmup ends at its last
    step sits at the peak there instead of dividing by zero decay steps."""
    assert lr_at(150, 1.0, 10, 110) == pytest.approx(0.0)
    assert lr_at(210, 2.0, 10, 110, final_fraction=0.1) == pytest.approx(0.2)
    assert lr_at(5, 1.0, 5, 5) == pytest.approx(1.0)
    assert lr_at(0, 3.0, 0, 0) == pytest.approx(3.0)


def test_lars_moves_a_zero_weight_by_its_plain_gradient_and_leaves_a_zero_gradient_finite():
    """A weight of norm 0 (a zero-initialised layer) has no trust ratio: LARS uses a trust of 1 (as SimCLR's code),
    so the first step is lr x g; a ratio of 0 would keep it at 0 for ever. A gradient of norm 0 (no weight decay)
    moves nothing, where eta ||p|| / 0 would make the weight NaN."""
    p = nn.Parameter(torch.zeros(3, 2))
    opt = LARS([p], lr=0.5, momentum=0.9, weight_decay=0.1, trust_coefficient=0.001)
    g = torch.arange(6.0).reshape(3, 2) - 2
    p.grad = g.clone()
    opt.step()
    assert torch.allclose(p.detach(), -0.5 * g)
    q = nn.Parameter(torch.ones(3, 2))
    opt = LARS([q], lr=0.5, momentum=0.9, weight_decay=0.0, trust_coefficient=0.001)
    q.grad = torch.zeros(3, 2)
    opt.step()
    assert torch.equal(q.detach(), torch.ones(3, 2))


def test_lars_skips_a_parameter_without_a_gradient_and_the_optimizer_holds_only_trainable_ones():
    """A parameter the step's forward did not use (grad None) is left as it is, with no momentum state; a frozen
    parameter (requires_grad False) is in no group at all."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    opt = build_optimizer(model, OptimConfig(name="lars", weight_decay=0.1), lr=0.5)
    held = [p for g in opt.param_groups for p in g["params"]]
    assert len(held) == 3 and all(p is not model[0].weight for p in held)
    unused = model[1].weight.detach().clone()
    model[0](torch.randn(5, 4)).pow(2).sum().backward()  # model[1] takes no part: its grads stay None
    opt.step()
    assert torch.equal(model[1].weight.detach(), unused) and model[1].weight not in opt.state
    assert model[0].bias in opt.state


def test_a_schedule_of_one_step_runs_and_one_all_or_half_warmup_is_refused_or_warned_about_at_the_bounds():
    """24 images in batches of 8: 3 steps per epoch. One step is a run; warmup of every step is refused; warmup of
    exactly half the steps is not warned about, of more than half is."""
    import dataclasses

    from study.train.config import PretrainConfig
    from study.train.optim import schedule_problems

    def problems(steps=None, epochs=1.0, warmup_epochs=0.0):
        return schedule_problems(PretrainConfig(manifest="m", batch_size=8, steps=steps, epochs=epochs,
                                                optim=OptimConfig(warmup_epochs=warmup_epochs)), 24)

    assert problems(steps=1) == (None, [])
    assert problems(steps=6, warmup_epochs=1) == (None, [])  # 3 of 6: half, not more
    assert problems(steps=6, warmup_epochs=4 / 3) == (None, ["optim.warmup_epochs 1.33333 x 3 steps per epoch comes "
                                                             "to 4 warmup steps of the run's 6 (steps 6), more than "
                                                             "half of the run"])
    error, warnings = problems(steps=6, warmup_epochs=2)
    assert warnings == [] and error.startswith("optim.warmup_epochs 2 x 3 steps per epoch comes to 6 warmup steps "
                                                "of the run's 6 (steps 6): the learning rate would never reach"), error
    assert problems(epochs=2, warmup_epochs=3)[0].startswith("optim.warmup_epochs 3 x 3 steps per epoch comes to 9 "
                                                             "warmup steps of the run's 6 (epochs 2)")
    none = dataclasses.replace(PretrainConfig(manifest="m", batch_size=8), steps=0)
    assert schedule_problems(none, 24) == ("steps: method simclr trains, but steps 0 come to no step", [])


def test_a_moco_queue_smaller_than_a_batch_is_warned_of():
    """A queue of fewer keys than a step enqueues runs (the newest keys fill it), but each step's keys replace it
    whole: the negatives are part of one batch. Warned of (study plan, the run's log); a queue of one batch is not,
    and neither is one too large for the run: each warning alone."""
    from study.train.config import PretrainConfig
    from study.train.optim import schedule_problems

    def warnings(queue):
        return schedule_problems(PretrainConfig.from_dict({"manifest": "m", "method": "moco", "batch_size": 16,
                                                           "steps": 6, "moco": {"queue_size": queue}}), 240)[1]

    assert warnings(8) == ["moco.queue_size 8 is less than the 16 keys each step enqueues (batch_size): each step's "
                           "newest 8 keys replace the whole queue, so every step's negatives are part of the previous "
                           "batch alone; set it to a multiple of batch_size (MoCo v2: 65536 at 256)"]
    assert warnings(16) == warnings(70) == warnings(96) == []
    [too_large] = warnings(97)
    assert too_large.startswith("moco.queue_size 97 is more than the 96 keys the run enqueues"), too_large


def test_warmup_steps_are_warmup_epochs_times_steps_per_epoch_rounded_to_nearest():
    """SimCLR's `int(round(...))`: 0.9 epochs of 3 steps is 3 warmup steps (2.7 rounded), not 2 (truncated)."""
    from study.train.config import PretrainConfig
    from study.train.optim import schedule_steps

    cfg = PretrainConfig(manifest="m", batch_size=8, steps=10, optim=OptimConfig(warmup_epochs=0.9))
    assert schedule_steps(cfg, 24) == (3, 10, 3)


def test_an_epoch_budget_of_no_step_is_an_error_naming_epochs():
    """Fewer images than a batch: no step per epoch, so any number of epochs comes to no step. The error names the
    key at fault, `epochs` (not `steps`, which is unset), and the budget."""
    from study.train.config import PretrainConfig
    from study.train.optim import schedule_problems

    cfg = PretrainConfig(manifest="m", batch_size=32, epochs=3)
    assert schedule_problems(cfg, 24) == ("epochs: method simclr trains, but epochs 3 come to no step", [])


def test_lars_step_calls_its_closure_and_returns_its_loss():
    """torch's Optimizer.step(closure) contract: the closure recomputes the loss and its gradient (with grad
    enabled, inside step's no_grad), the step uses that gradient and returns the loss."""
    p = nn.Parameter(torch.ones(2))
    opt = LARS([{"params": [p], "lars_adapt": False}], lr=0.5, momentum=0.9)

    def closure():
        opt.zero_grad()
        loss = (3 * p).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure).detach()) == 6.0
    assert torch.allclose(p.detach(), torch.full((2,), 1 - 0.5 * 3))
