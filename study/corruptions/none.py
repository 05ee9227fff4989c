"""`none`: the clean image (the reference cell of the quality axis)."""
from __future__ import annotations

from study.corruptions.base import Corruption, register

register(Corruption("none", {}, lambda img, p, rng: img, "the image unchanged"))
