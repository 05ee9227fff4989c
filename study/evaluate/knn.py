"""Weighted kNN classification (Wu et al. 2018): cosine similarity on L2-normalised features, each of the k nearest
labeled neighbours votes for its class with weight exp(similarity / temperature)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_scores(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, num_classes: int, k: int,
               temperature: float, chunk: int = 2048) -> torch.Tensor:
    """Class scores (N_test x C, on CPU): the summed vote weights of each test row's k nearest training rows
    (computed on the features' device), each row scaled by exp(-its top similarity / temperature): the same ranking,
    without overflow to inf at small temperatures."""
    train = F.normalize(train.float(), dim=1)
    test = F.normalize(test.float(), dim=1)
    k = min(k, len(train))
    labels = labels.to(train.device)
    out = torch.zeros(len(test), num_classes, device=test.device)
    for s in range(0, len(test), chunk):
        sim = test[s:s + chunk] @ train.t()
        top, idx = sim.topk(k, dim=1)
        weight = ((top - top[:, :1]) / temperature).exp()
        out[s:s + chunk].scatter_add_(1, labels[idx], weight)
    return out.cpu()
