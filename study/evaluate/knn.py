"""Weighted kNN classification (Wu et al. 2018): cosine similarity on L2-normalised features, each of the k nearest
labeled neighbours votes for its class with weight exp(similarity / temperature)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


BLOCK_BYTES = 1 << 30  # the largest test x train similarity block held at once (float32)


def rows_per_block(num_train: int, block_bytes: int = BLOCK_BYTES, most: int = 2048) -> int:
    """Test rows per similarity block: `most`, fewer where `most` x `num_train` similarities would pass
    `block_bytes` (iNat21's 2.7M training rows: 99 rows per GiB, where 2048 would take 22 GB)."""
    return max(1, min(most, block_bytes // (4 * max(num_train, 1))))


def knn_scores(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, num_classes: int, k: int,
               temperature: float, block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """Class scores (N_test x C, on CPU): the summed vote weights of each test row's k nearest training rows
    (computed on the features' device, in blocks of test rows of at most `block_bytes` of similarities), each row
    scaled by exp(-its top similarity / temperature): the same ranking, without overflow to inf at small
    temperatures."""
    train = F.normalize(train.float(), dim=1)
    test = F.normalize(test.float(), dim=1)
    k = min(k, len(train))
    labels = labels.to(train.device)
    out = torch.zeros(len(test), num_classes, device=test.device)
    chunk = rows_per_block(len(train), block_bytes)
    for s in range(0, len(test), chunk):
        sim = test[s:s + chunk] @ train.t()
        top, idx = sim.topk(k, dim=1)
        weight = ((top - top[:, :1]) / temperature).exp()
        out[s:s + chunk].scatter_add_(1, labels[idx], weight)
    return out.cpu()
