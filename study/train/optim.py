"""Optimizers (LARS, SGD, AdamW), the learning-rate scaling rule, and warmup + cosine schedule (`Schedule`: a run's
steps and learning rates)."""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from study.train.config import OptimConfig


def peak_lr(cfg: OptimConfig, batch_size: int) -> float:
    """Effective peak learning rate: lr x batch/256 ("linear") or lr x sqrt(batch) ("sqrt")."""
    if cfg.lr_scaling == "linear":
        return cfg.lr * batch_size / 256
    return cfg.lr * math.sqrt(batch_size)


def lr_at(step: int, peak: float, warmup_steps: int, total_steps: int, final_fraction: float = 0.0) -> float:
    """Linear warmup from 0 to `peak` over `warmup_steps`, then cosine decay to `final_fraction` x peak at
    `total_steps`. `step` counts optimizer steps already taken (0 for the first)."""
    if step < warmup_steps:
        return peak * step / warmup_steps
    decay = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / decay)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A run's step budget and learning-rate schedule."""
    images: int  # training images
    batch: int  # global batch (over every device)
    steps_per_epoch: int
    total: int  # steps of the whole run
    warmup: int  # warmup steps
    peak_lr: float  # the effective learning rate, after the batch-size scaling rule
    final_lr_fraction: float

    def lr(self, step: int) -> float:
        return lr_at(step, self.peak_lr, self.warmup, self.total, self.final_lr_fraction)


def schedule_steps(cfg, images: int) -> tuple[int, int, int]:
    """(steps per epoch, total steps, warmup steps) of a run of `cfg` (a PretrainConfig) on `images` images: `steps`,
    else epochs x steps per epoch (study.train.data.total_steps); warmup = warmup_epochs x steps per epoch, rounded."""
    from study.train.data import steps_per_epoch, total_steps

    spe = steps_per_epoch(images, cfg.batch_size)
    return (spe, total_steps(cfg.epochs, cfg.steps, images, cfg.batch_size),
            int(round(cfg.optim.warmup_epochs * spe)))


def schedule_problems(cfg, images: int) -> tuple[str | None, list[str]]:
    """(error, warnings) of a run of `cfg` (a PretrainConfig whose method trains) on `images` images: an error when
    it takes no step, or warms up for all of its steps (the learning rate would never reach its peak nor decay);
    warnings when warmup takes more than half of them, and the method's own (`Method.schedule_warning`: MoCo's queue
    larger than the keys the run enqueues, or smaller than a batch). Messages start with the key at fault (`steps`,
    `epochs`, `optim.warmup_epochs`, `moco.queue_size`): the caller puts the section before each."""
    spe, total, warmup = schedule_steps(cfg, images)
    budget = f"steps {cfg.steps}" if cfg.steps is not None else f"epochs {cfg.epochs:g}"
    if total < 1:
        return (f"{'steps' if cfg.steps is not None else 'epochs'}: method {cfg.method} trains, but {budget} come "
                f"to no step"), []
    warm = (f"optim.warmup_epochs {cfg.optim.warmup_epochs:g} x {spe} steps per epoch comes to {warmup} warmup "
            f"steps of the run's {total} ({budget})")
    if warmup >= total:
        return (f"{warm}: the learning rate would never reach its peak nor decay; lower optim.warmup_epochs (0: no "
                f"warmup) or train for more steps"), []
    from study.train.methods import METHODS

    warnings = [f"{warm}, more than half of the run" if 2 * warmup > total else None,
                METHODS.get(cfg.method).schedule_warning(cfg, total)]
    return None, [w for w in warnings if w]


def is_bias_or_norm(p: torch.Tensor) -> bool:
    """Biases and normalisation scales/shifts: every parameter with fewer than 2 dimensions."""
    return p.ndim < 2


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling (You et al. 2017) as SimCLR's code uses it (classic momentum: the learning
    rate inside the momentum buffer). Per parameter p with gradient g, at the step's learning rate lr:

        g <- g + wd * p                                   (groups with weight decay)
        g <- g * eta * ||p|| / ||g||  if ||p||, ||g|| > 0 (groups with `lars_adapt`; eta = trust coefficient)
        v <- momentum * v + lr * g ;  p <- p - v

    So a gradient is applied at the learning rate of its own step: during warmup the first steps' gradients, taken at
    a learning rate near 0, stay small (torch's SGD, `v <- momentum * v + g; p <- p - lr * v`, would apply them at
    each later step's rate). Groups built by `build_optimizer` leave biases and norm parameters without weight decay
    and adaptation.
    """

    MOMENTUM = "classic: lr inside the buffer (SimCLR)"  # in the checkpoint fingerprint: what the buffer holds

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001, lars_adapt: bool = True):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient,
                        lars_adapt=lars_adapt)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                if group["lars_adapt"]:
                    p_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where((p_norm > 0) & (g_norm > 0),
                                        group["trust_coefficient"] * p_norm / g_norm, torch.ones_like(p_norm))
                    g = g * trust
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                state["momentum_buffer"].mul_(group["momentum"]).add_(g, alpha=group["lr"])
                p.sub_(state["momentum_buffer"])
        return loss


def build_optimizer(model: nn.Module, cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """The optimizer over `model`'s trainable parameters, biases and norm parameters in their own group
    (no weight decay; for LARS no adaptation either) when `cfg.exclude_bias_and_norm`."""
    regular, excluded = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (excluded if cfg.exclude_bias_and_norm and is_bias_or_norm(p) else regular).append(p)
    groups = [{"params": regular}]
    if excluded:
        groups.append({"params": excluded, "weight_decay": 0.0, "lars_adapt": False})
    if cfg.name == "lars":
        return LARS(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                    trust_coefficient=cfg.trust_coefficient)
    for g in groups:
        g.pop("lars_adapt", None)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr
