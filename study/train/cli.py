"""`study encoder import CHECKPOINT OUT --backbone NAME [--width N] [--key K] [--prefix P]`: an encoder trained
elsewhere as a study encoder file (study.train.import_encoder), for a grid's `pretrained` method
(`pretrain.pretrained.encoder_file`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from study.cli import action_parser, command_with_actions


def register(subparsers) -> None:
    sub = command_with_actions(subparsers, "encoder", "bring an encoder trained elsewhere into a study",
                               "Bring an encoder trained elsewhere into a study: `study encoder import` writes a "
                               "checkpoint's weights as a study encoder file, which a grid scores with method "
                               "`pretrained` (`pretrain.pretrained.encoder_file`).")
    i = action_parser(sub, "import", "write a checkpoint's encoder weights (torchvision, MoCo, solo-learn, VISSL, "
                                     "DINO) as a study encoder file")
    i.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="the checkpoint file (read by torch.load with "
                   "weights_only: tensors, no code)")
    i.add_argument("out", type=Path, metavar="OUT", help="the study encoder file to write, e.g. encoders/tv_rn50.pt")
    i.add_argument("--backbone", required=True, help="the registered backbone its weights are (e.g. resnet50)")
    i.add_argument("--width", type=int, default=64, help="the backbone's stem width (default: 64, torchvision's)")
    i.add_argument("--key", default=None, help="where in the checkpoint its state dict is, a dotted path (e.g. "
                   "state_dict; default: the checkpoint itself, else the first of state_dict, model, teacher, "
                   "student, online_network, classy_state_dict.base_model.model.trunk (VISSL's) that holds one)")
    i.add_argument("--prefix", default=None, help="the encoder's key prefix, stripped (e.g. module.encoder_q. for "
                   "MoCo, backbone. for solo-learn; default: the one prefix of the backbone's first weight, a ResNet's "
                   "`conv1.weight`)")
    i.set_defaults(func=_import)


def _import(a: argparse.Namespace) -> int:
    from study.train.import_encoder import import_encoder

    got = import_encoder(a.checkpoint, a.out, a.backbone, a.width, a.key, a.prefix)
    left, placeholders = got["left_out"], got.get("placeholders", [])
    print(f"encoder {a.out}: {a.backbone} (width {a.width}) from {a.checkpoint} (key {got['key'] or '-'}, prefix "
          f"{got['prefix'] or '-'}; checkpoint sha256 {got['sha256'][:16]})"
          + (f"; left out {len(left)} key(s) not of the encoder: {', '.join(left[:6])}{' ...' * (len(left) > 6)}"
             if left else "")
          + (f"; read as placeholders, no code run: {', '.join(placeholders)}" if placeholders else ""))
    return 0
