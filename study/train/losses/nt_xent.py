"""SimCLR's normalized temperature-scaled cross-entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from study.train.losses.precision import in_fp32



@in_fp32
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over a batch of N pairs (Chen et al. 2020, eq. 1).

    With u_i = z_i / ||z_i|| for the 2N rows z = [z1; z2], s_ij = u_i . u_j / t, and p(i) the row holding the
    other view of the same image (p(i) = i + N for i < N, i - N otherwise):

        l_i  = -log( exp(s_{i,p(i)}) / sum_{k != i} exp(s_ik) )
        loss = (1 / 2N) sum_{i=1}^{2N} l_i
    """
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    s = u @ u.T / temperature
    s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=s.device), float("-inf"))
    target = (torch.arange(2 * n, device=s.device) + n) % (2 * n)  # p(i), made on the device: no host copy
    return F.cross_entropy(s, target)
