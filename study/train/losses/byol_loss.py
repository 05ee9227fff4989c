"""BYOL's regression loss between the online prediction and the target projection."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from study.train.losses.precision import in_fp32


@in_fp32
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Normalized mean squared error (Grill et al. 2020, eq. 2), averaged over the N rows:

        l_i  = || p_i/||p_i|| - z_i/||z_i|| ||^2 = 2 - 2 (p_i . z_i) / (||p_i|| ||z_i||)
        loss = (1 / N) sum_i l_i

    The target projection z is detached: no gradient reaches the target network.
    """
    p = F.normalize(p, dim=1)
    z = F.normalize(z, dim=1).detach()
    return (2 - 2 * (p * z).sum(dim=1)).mean()


def byol_symmetric_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """BYOL's symmetrized loss: each view's prediction regresses the other view's target projection,

        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
    """
    return byol_loss(p1, z2) + byol_loss(p2, z1)
