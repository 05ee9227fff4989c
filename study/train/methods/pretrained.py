"""Pretrained: no training; the run writes a given encoder (`pretrain.pretrained.encoder_file`, a study encoder
file: `study encoder import` makes one of a torchvision, MoCo, solo-learn, VISSL or DINO checkpoint), so that the grid's
evaluations score it with the paper's protocols, beside the encoders its other methods train. Its record names the
weights' sha256 (`weights_sha256`: the recipe, the same for the same weights in any file), the file's, its path as
resolved, the recipe a study run's encoder carries and, for an imported one, the checkpoint its weights came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from study.errors import StudyError
from study.hashing import file_sha256
from study.train.backbones import encoder_provenance, load_weights_into, weights_sha256
from study.train.methods import METHODS, Method


@dataclass(frozen=True)
class PretrainedSettings:
    """`pretrain.pretrained` in a grid."""

    encoder_file: str = ""  # ours: the study encoder file to score (required); relative: to where the jobs start

    def validate(self, where: str) -> None:
        if not isinstance(self.encoder_file, str):
            raise StudyError(f"{where}.encoder_file: expected a path, got {self.encoder_file!r}")


@METHODS.register("pretrained")
class Pretrained(Method):
    trains = False
    num_views = 1
    augment_preset = "eval"
    settings = PretrainedSettings
    file_settings = {"encoder_file": "encoder"}

    @classmethod
    def config_error(cls, cfg) -> str | None:
        if cfg.init_encoder:
            return ("init_encoder: method pretrained scores the encoder pretrained.encoder_file names, and starts "
                    "from no other: give it there")
        if not cfg.method_settings["pretrained"].encoder_file:
            return ("pretrained.encoder_file: method pretrained scores a given encoder: name its study encoder file "
                    "(`study encoder import` makes one of a torchvision, MoCo, solo-learn, VISSL or DINO "
                    "checkpoint)")
        return None

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)
        path = cfg.method_settings["pretrained"].encoder_file
        load_weights_into(encoder, path, "pretrain.pretrained.encoder_file")
        recipe, provenance = encoder_provenance(path)
        # the weights' hash is the recipe (fingerprinted); the file's (`study status` compares it with the file, to
        # find a result of an encoder since replaced), its path and where the weights came from are said, not
        # fingerprinted (RUN_SPECIFIC_KEYS)
        self.source = {"init_encoder_weights_sha256": weights_sha256(encoder), "init_encoder_recipe": recipe,
                       "init_encoder_sha256": file_sha256(path), "init_encoder_file": str(Path(path).resolve()),
                       "imported_from": (provenance or {}).get("imported")}

    def protocol(self) -> dict:
        return dict(self.source)

    def forward(self, views, labels):  # pragma: no cover - never called
        raise RuntimeError("method 'pretrained' does not train")
