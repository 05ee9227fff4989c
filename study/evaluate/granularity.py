"""Label granularity (the paper's protocol): one classifier at the finest level (the manifest's labels), its
predictions mapped up the taxonomy through the manifest's taxonomy columns to score every coarser level."""
from __future__ import annotations

import pandas as pd
import torch

from study.errors import StudyError


def level_map(tables: list[pd.DataFrame], level: str, num_classes: int, where: str) -> tuple[torch.Tensor, list[str]]:
    """(class -> index of its value at `level` (C,), the level's values). -1 for a class no row shows.
    A class with two values at one level is refused (the taxonomy must be a tree)."""
    pairs = pd.concat([t[["label", level]] for t in tables]).drop_duplicates()
    twice = pairs[pairs["label"].duplicated(keep=False)]
    if len(twice):
        c = int(twice["label"].iloc[0])
        raise StudyError(f"{where}: class {c} has several values at level {level!r}: "
                         f"{sorted(map(str, twice[twice['label'] == c][level]))}")
    values = sorted(map(str, pairs[level].unique()))
    index = {v: i for i, v in enumerate(values)}
    mapping = torch.full((num_classes,), -1, dtype=torch.long)
    for label, value in zip(pairs["label"].tolist(), pairs[level].tolist()):
        mapping[int(label)] = index[str(value)]
    return mapping, values


def mapped_top1(pred: torch.Tensor, y: torch.Tensor, mapping: torch.Tensor) -> float:
    """Top-1 at a coarser level: the predicted class's value there against the true class's."""
    if len(y) == 0:
        return float("nan")
    return float((mapping[pred] == mapping[y]).float().mean())


def level_scores(logits: torch.Tensor, mapping: torch.Tensor, num_values: int) -> torch.Tensor:
    """Probabilities summed over the classes of each value of the level (N x values), for top-5 at a level."""
    probs = logits.float().softmax(dim=1)
    out = torch.zeros(len(logits), num_values)
    keep = mapping >= 0
    out.index_add_(1, mapping[keep], probs[:, keep])
    return out
