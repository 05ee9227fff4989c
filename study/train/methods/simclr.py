"""SimCLR: two views, projection head with batch norm, NT-Xent over the (global) batch.

On several ranks each rank scores its own pairs against the gathered batch (2n x 2N logits, not 2N x 2N: at a
global batch of 4096 on 8 GPUs, 224 MiB less per fp32 logits matrix) and takes their mean; DDP's mean over ranks is then
the whole batch's loss, and its gradient, as gather_with_grad sums every rank's gradient of the gathered rows.
"""
from __future__ import annotations

import torch

from study.train.distributed import gather_with_grad, is_distributed
from study.train.losses import nt_xent
from study.train.methods import METHODS, Method, mlp


@METHODS.register("simclr")
class SimCLR(Method):
    default_temperature = 0.1  # SimCLR
    min_batch_size = 2  # an image's only negatives are the batch's other images: at 1, NT-Xent is 0 and nothing trains

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)
        self.head = mlp(encoder.feature_dim, cfg.head, bn=True, output_bn=cfg.head_output_bn)
        self.temperature = cfg.effective_temperature()
        self.head_dims = [encoder.feature_dim, *cfg.head]

    def protocol(self) -> dict:
        return {"head": self.head_dims}

    def forward(self, views, labels):
        n = views[0].shape[0]
        z = self.head(self.encoder(torch.cat(views[:2])))
        z1, z2 = gather_with_grad(z[:n]), gather_with_grad(z[n:])
        pairs = (torch.distributed.get_rank() * n, n) if is_distributed() else None  # this rank's share
        return nt_xent(z1, z2, self.temperature, pairs), {}
