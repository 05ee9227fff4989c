"""Pretrained: no training; the run writes the encoder `init_encoder` names, trained elsewhere (a study encoder
file: `study encoder import` makes one of a torchvision, MoCo, solo-learn or DINO checkpoint), so that the grid's
evaluations score it with the paper's protocols. Its record names the weights' sha256 (`weights_sha256`: the recipe,
the same for the same weights in any file), the file's, the recipe a study run's encoder carries and, for an
imported one, the checkpoint its weights came from.
"""
from __future__ import annotations

from pathlib import Path

from study.hashing import file_sha256
from study.train.backbones import encoder_provenance, weights_sha256
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
        # the weights' hash is the recipe (fingerprinted); the file's (`study status` compares it with the file, to
        # find a result of an encoder since replaced) and where the weights came from are said, not fingerprinted
        self.source = {"init_encoder_weights_sha256": weights_sha256(encoder), "init_encoder_recipe": recipe,
                       "init_encoder_sha256": file_sha256(cfg.init_encoder),
                       "init_encoder_file": str(Path(cfg.init_encoder).resolve()),  # a relative path, resolved
                       "imported_from": (provenance or {}).get("imported")}

    def protocol(self) -> dict:
        return dict(self.source)

    def forward(self, views, labels):  # pragma: no cover - never called
        raise RuntimeError("method 'pretrained' does not train")
