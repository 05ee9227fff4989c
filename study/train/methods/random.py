"""Random: no training; the run writes the randomly initialised encoder (the random-init reference)."""
from __future__ import annotations

from study.train.methods import METHODS, Method


@METHODS.register("random")
class Random(Method):
    trains = False
    num_views = 1
    augment_preset = "eval"

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)

    def forward(self, views, labels):  # pragma: no cover - never called
        raise RuntimeError("method 'random' does not train")
