"""The evaluation protocols, one `Protocol` each in `PROTOCOL_TABLE`: what a job of it reads and does.

Every part that treats protocols by kind reads this table: `EvalConfig`'s validation and recorded keys, a grid's
`stages.evaluate[].protocol` and its unread `params`, the evaluation's encoder count and what scores a frozen one's
features (probes, or its entry of `study.evaluate.run.SCORERS`), the planner's cost, memory and feature-cache
models, the report's measured rates. Code doing what one protocol alone does names it (granularity's levels,
concat's pairs; a figure's panel). Imports nothing heavy: `study plan` and `study status` read it.
"""
from __future__ import annotations

from dataclasses import dataclass

TRAINING_KEYS = ("finetune", "epochs", "backbone", "width")  # EvalConfig keys only a training protocol reads
FROZEN_KEYS = ("feature_layer", "linear", "knn", "also_knn")  # EvalConfig keys only a frozen-feature one reads
LEVEL_KEYS = ("levels", "per_level")  # EvalConfig keys only granularity reads


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol. `trains`: it trains the network on each labeled subset (by its entry of
    `study.evaluate.run.TRAINERS`, from its recipe in `study.evaluate.recipes`); otherwise it scores frozen features,
    extracted once per encoder into the feature cache. `fits_probes`: it fits linear probes on those features (and
    reads `knn` only with `also_knn`); a frozen one that fits none is scored by its entry of
    `study.evaluate.run.SCORERS`. `unused`: the EvalConfig keys it never reads, left out of its records and so of its
    job ids and fingerprints."""

    name: str
    encoders: int  # encoder files a job of it reads (a training one: 0 or 1, what run.TRAINERS take)
    trains: bool
    fits_probes: bool
    unused: tuple[str, ...]


PROTOCOL_TABLE = (
    Protocol("linear", 1, trains=False, fits_probes=True, unused=(*LEVEL_KEYS, *TRAINING_KEYS)),
    # the encoder's own architecture: backbone and width are scratch's
    Protocol("finetune", 1, trains=True, fits_probes=False, unused=(*LEVEL_KEYS, "backbone", "width", *FROZEN_KEYS)),
    Protocol("scratch", 0, trains=True, fits_probes=False, unused=(*LEVEL_KEYS, *FROZEN_KEYS)),
    Protocol("knn", 1, trains=False, fits_probes=False, unused=(*LEVEL_KEYS, "linear", "also_knn", *TRAINING_KEYS)),
    Protocol("granularity", 1, trains=False, fits_probes=True, unused=TRAINING_KEYS),
    Protocol("concat", 2, trains=False, fits_probes=True, unused=(*LEVEL_KEYS, *TRAINING_KEYS)),
)
PROTOCOLS = tuple(p.name for p in PROTOCOL_TABLE)
_BY_NAME = {p.name: p for p in PROTOCOL_TABLE}


def protocol(name: str) -> Protocol:
    """The protocol called `name` (a KeyError for another name: validate it against PROTOCOLS first)."""
    return _BY_NAME[name]


def unread_keys(name: str, also_knn: object = False) -> frozenset[str]:
    """The EvalConfig keys a job of protocol `name` never reads: its `unused`, and `knn` where it fits probes and
    is not asked `also_knn` (what its record leaves out, and its job id)."""
    p = protocol(name)
    return frozenset((*p.unused, "knn") if p.fits_probes and also_knn is not True else p.unused)


def names_where(**kind: bool | int) -> tuple[str, ...]:
    """The names of the protocols whose attributes are as `kind` says, e.g. `names_where(trains=True)`."""
    return tuple(p.name for p in PROTOCOL_TABLE if all(getattr(p, k) == v for k, v in kind.items()))
