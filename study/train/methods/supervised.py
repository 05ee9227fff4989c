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
    # ours, after Goyal et al. 2017's large-batch ResNet-50 recipe: SGD 0.1 x batch/256, weight decay 1e-4 on every
    # parameter, 5 warmup epochs (cosine decay instead of steps); fine-tuning sets its own (study.evaluate.finetune)
    optim = {"name": "sgd", "lr": 0.1, "weight_decay": 1e-4, "warmup_epochs": 5.0, "exclude_bias_and_norm": False}

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)
        self.classifier = nn.Linear(encoder.feature_dim, num_classes)

    def forward(self, views, labels):
        logits = self.classifier(self.encoder(views[0]))
        loss = F.cross_entropy(logits.float(), labels)
        correct = (logits.argmax(dim=1) == labels).sum().detach()
        return loss, {"correct": correct, "seen": labels.numel()}
