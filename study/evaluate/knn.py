"""Weighted kNN classification (Wu et al. 2018): cosine similarity on L2-normalised features, each of the k nearest
labeled neighbours votes for its class with weight exp(similarity / temperature)."""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F


BLOCK_BYTES = 1 << 30  # the largest test x train similarity block held at once (float32)
EPS = 1e-12  # the smallest norm a feature row is divided by (F.normalize's default)


def rows_per_block(num_train: int, block_bytes: int = BLOCK_BYTES, most: int = 2048) -> int:
    """Test rows per similarity block: `most`, fewer where `most` x `num_train` similarities would pass
    `block_bytes` (iNat21's 2.7M training rows: 99 rows per GiB, where 2048 would take 22 GB)."""
    return max(1, min(most, block_bytes // (4 * max(num_train, 1))))


def score_blocks(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, num_classes: int, k: int,
                 temperature: float, block_bytes: int = BLOCK_BYTES) -> Iterator[torch.Tensor]:
    """Class scores of the test rows (rows x C, on the features' device), a block of rows at a time in order (each
    block at most `block_bytes` of similarities): the summed vote weights of each test row's k nearest training rows,
    each row scaled by exp(-its top similarity / temperature): the same ranking, without overflow to inf at small
    temperatures. No unit-length copy of either side is made (of iNat21's training rows it would be 22 GB): a block's
    test rows are scaled to unit length, its similarities divided by the training rows' norms."""
    train = train.float()  # the features are float32: no copy
    norms = train.norm(dim=1).clamp_min(EPS)
    k = min(k, len(train))
    labels = labels.to(train.device)
    chunk = rows_per_block(len(train), block_bytes)
    for s in range(0, len(test), chunk):
        sim = (F.normalize(test[s:s + chunk].float(), dim=1, eps=EPS) @ train.t()).div_(norms)
        top, idx = sim.topk(k, dim=1)
        weight = ((top - top[:, :1]) / temperature).exp()
        yield torch.zeros(len(sim), num_classes, device=test.device).scatter_add_(1, labels[idx], weight)
