"""SimCLR's normalized temperature-scaled cross-entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from study.train.losses.precision import in_fp32


@in_fp32
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float,
            pairs: tuple[int, int] | None = None) -> torch.Tensor:
    """NT-Xent over a batch of N pairs (Chen et al. 2020, eq. 1).

    With u_i = z_i / ||z_i|| for the 2N rows z = [z1; z2], s_ij = u_i . u_j / t, and p(i) the row holding the
    other view of the same image (p(i) = i + N for i < N, i - N otherwise):

        l_i  = -log( exp(s_{i,p(i)}) / sum_{k != i} exp(s_ik) )
        loss = (1 / 2N) sum_{i=1}^{2N} l_i

    `pairs` = (start, k): the mean of l_i over the rows of pairs start..start+k-1 only (both views), each against
    all 2N rows: one rank's share of a gathered batch (2k x 2N logits, not 2N x 2N); the mean over equal shares is
    the loss above.
    """
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    if pairs is None:
        rows = torch.arange(2 * n, device=u.device)  # made on the device: no host copy
        s = u @ u.T / temperature
    else:
        start, k = pairs
        mine = torch.arange(start, start + k, device=u.device)
        rows = torch.cat([mine, mine + n])
        s = u[rows] @ u.T / temperature
    s = s.masked_fill(rows[:, None] == torch.arange(2 * n, device=u.device), float("-inf"))  # s_ii
    return F.cross_entropy(s, (rows + n) % (2 * n))  # the targets p(i)
