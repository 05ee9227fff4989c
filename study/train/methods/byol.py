"""BYOL: online encoder + projector + predictor; target encoder + projector by EMA with
tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2; symmetric loss. The target never receives gradients."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from study.configfields import is_num, positive_int
from study.errors import StudyError
from study.train.losses import byol_symmetric_loss
from study.train.methods import METHODS, Method, ema_update, mlp


@dataclass(frozen=True)
class ByolSettings:
    """`pretrain.byol` in a grid."""

    tau_base: float = 0.996  # BYOL: target EMA rate, cosine-increased to 1 over training
    projector_hidden: int = 4096  # BYOL
    dim: int = 256  # BYOL: projection/prediction dimension
    predictor_hidden: int = 4096  # BYOL

    def validate(self, where: str) -> None:
        if not is_num(self.tau_base) or not 0 <= self.tau_base <= 1:
            raise StudyError(f"{where}.tau_base: expected a number in [0, 1], got {self.tau_base!r}")
        for key in ("projector_hidden", "dim", "predictor_hidden"):
            positive_int(getattr(self, key), f"{where}.{key}")


def byol_tau(step: int, total_steps: int, tau_base: float) -> float:
    """BYOL's target decay rate at `step` of `total_steps`: tau_base at the start, 1 at the end."""
    if total_steps <= 0:
        return 1.0
    return 1 - (1 - tau_base) * (math.cos(math.pi * min(step, total_steps) / total_steps) + 1) / 2


@METHODS.register("byol")
class BYOL(Method):
    augment_preset = "byol"
    optim = {"name": "lars", "lr": 0.2, "weight_decay": 1.5e-6, "warmup_epochs": 10.0}  # BYOL: 0.2 x batch/256
    settings = ByolSettings

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)
        b = cfg.method_settings["byol"]
        self.projector = mlp(encoder.feature_dim, (b.projector_hidden, b.dim), bn=True)
        self.predictor = mlp(b.dim, (b.predictor_hidden, b.dim), bn=True)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_projector = copy.deepcopy(self.projector)
        for p in list(self.target_encoder.parameters()) + list(self.target_projector.parameters()):
            p.requires_grad_(False)
        self.tau_base = b.tau_base

    def forward(self, views, labels):
        n = views[0].shape[0]
        both = torch.cat(views[:2])
        p = self.predictor(self.projector(self.encoder(both)))
        with torch.no_grad():
            z = self.target_projector(self.target_encoder(both))
        return byol_symmetric_loss(p[:n], p[n:], z[:n], z[n:]), {}

    def after_step(self, step: int, total_steps: int) -> None:
        # step k -> tau(k) with k = steps done before this update (tau_base at the first update)
        tau = byol_tau(step - 1, total_steps, self.tau_base)
        ema_update(self.target_encoder, self.encoder, tau)
        ema_update(self.target_projector, self.projector, tau)
