"""MoCo's InfoNCE against a queue of negative keys."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from study.train.losses.precision import in_fp32


@in_fp32
def infonce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE (He et al. 2020, eq. 1) for N queries q, their positive keys k and K queued negatives.

    With unit vectors q_i = q_i/||q_i||, k_i = k_i/||k_i|| and the queue's rows n_j (already unit):

        l_i  = -log( exp(q_i . k_i / t) / (exp(q_i . k_i / t) + sum_{j=1}^{K} exp(q_i . n_j / t)) )
        loss = (1 / N) sum_i l_i

    Keys carry no gradient (the caller passes them from the momentum encoder, detached).
    """
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1).detach()
    pos = (q * k).sum(dim=1, keepdim=True)
    neg = q @ queue.detach().T
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
