"""Supervised: a linear classifier over the manifest's classes on the same backbone, cross-entropy on labels.
Also the fine-tuning path (init_encoder + subset "labeled")."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from study.train.methods import METHODS, Method


@METHODS.register("supervised")
class Supervised(Method):
    augment_preset = "supervised"
    num_views = 1

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)
        self.classifier = nn.Linear(encoder.feature_dim, num_classes)

    def forward(self, views, labels):
        logits = self.classifier(self.encoder(views[0]))
        loss = F.cross_entropy(logits.float(), labels)
        correct = (logits.argmax(dim=1) == labels).sum().detach()
        return loss, {"correct": correct, "seen": labels.numel()}
