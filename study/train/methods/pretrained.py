"""Pretrained: no training; the run writes the encoder `init_encoder` names, trained elsewhere (a study encoder
file: `study encoder import` makes one of a torchvision, MoCo, solo-learn or DINO checkpoint), so that the grid's
evaluations score it with the paper's protocols. Its record names that file's sha256 (its recipe, as a study run's
encoder carries one) and, for an imported one, the checkpoint its weights came from.
"""
from __future__ import annotations

from study.hashing import file_sha256
from study.train.backbones import encoder_provenance
from study.train.methods import METHODS, Method


@METHODS.register("pretrained")
class Pretrained(Method):
    trains = False
    needs_init_encoder = True
    num_views = 1
    augment_preset = "eval"

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)  # the loop loaded `cfg.init_encoder`'s weights into it
        recipe, provenance = encoder_provenance(cfg.init_encoder)
        # the weights' hash is the recipe (the fingerprint); where they came from is said, not fingerprinted
        self.source = {"init_encoder_sha256": file_sha256(cfg.init_encoder), "init_encoder_recipe": recipe,
                       "imported_from": (provenance or {}).get("imported")}

    def protocol(self) -> dict:
        return dict(self.source)

    def forward(self, views, labels):  # pragma: no cover - never called
        raise RuntimeError("method 'pretrained' does not train")
