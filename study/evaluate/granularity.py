"""Label granularity (the paper's protocol): one classifier at the finest level (the manifest's labels), its
predictions mapped up the taxonomy through the manifest's taxonomy columns to score every coarser level.

A level's value is told by its path from the root (the taxonomy's coarser levels, then its own): two genera of one
name in different kingdoms (Morus the mulberry, Morus the gannet) are two values."""
from __future__ import annotations

import math

import pandas as pd
import torch

from study.errors import StudyError


def level_path(taxonomy: list[str], level: str) -> list[str]:
    """The columns that tell a value of `level`: the taxonomy's levels (coarse -> fine) down to `level`; `level`
    alone when it is not one of them (the class name, another column)."""
    return taxonomy[:taxonomy.index(level) + 1] if level in taxonomy else [level]


def level_map(tables: list[pd.DataFrame], path: list[str], num_classes: int,
              where: str) -> tuple[torch.Tensor, list[str]]:
    """(class -> index of its value at level path[-1] (C,), the level's values as "root/.../value"). -1 for a class
    no row shows. A class with two values there (or two paths to it) is refused: the taxonomy must be a tree."""
    level = path[-1]
    pairs = pd.concat([t[["label", *path]] for t in tables]).drop_duplicates()
    keys = ["/".join(map(str, row)) for row in pairs[path].itertuples(index=False)]
    pairs = pairs.assign(_value=keys)[["label", "_value"]].drop_duplicates()
    twice = pairs[pairs["label"].duplicated(keep=False)]
    if len(twice):
        c = int(twice["label"].iloc[0])
        raise StudyError(f"{where}: class {c} has several values at level {level!r}: "
                         f"{sorted(twice[twice['label'] == c]['_value'])}")
    values = sorted(pairs["_value"].unique())
    index = {v: i for i, v in enumerate(values)}
    mapping = torch.full((num_classes,), -1, dtype=torch.long)
    for label, value in zip(pairs["label"].tolist(), pairs["_value"].tolist()):
        mapping[int(label)] = index[value]
    return mapping, values


def mapped_top1(ranks: torch.Tensor | None, y: torch.Tensor, mapping: torch.Tensor) -> float:
    """Top-1 at a coarser level: the value there of each row's best class (ranks[:, 0], see ranking.ranked) against
    its true class's (on the ranks' device). NaN with no row or no ranks (a diverged classifier), as
    ranking.hit_rate."""
    if ranks is None or len(y) == 0:
        return math.nan
    mapping = mapping.to(ranks.device)
    return int((mapping[ranks[:, 0]] == mapping[y.to(ranks.device)]).sum()) / len(y)  # exact, as hit_rate


def level_scores(logits: torch.Tensor, mapping: torch.Tensor, num_values: int) -> torch.Tensor:
    """Each value's score at a level (N x values, on the logits' device): the highest score of its classes, so that
    the value the top-1 maps to ranks first, and top-5 at a level counts every top-1 hit. -inf for a value with no
    class."""
    spare = torch.where(mapping >= 0, mapping, num_values)  # a class of no value scores a spare column, dropped
    out = torch.full((len(logits), num_values + 1), -math.inf, device=logits.device)
    index = spare.to(logits.device).expand(len(logits), -1)
    return out.scatter_reduce_(1, index, logits.float(), "amax")[:, :num_values]
