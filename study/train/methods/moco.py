"""MoCo v2: query encoder + MLP head, momentum key encoder, a queue of negative keys, InfoNCE.

Differences from the reference implementation, stated: MoCo v2's shuffle BN (keys computed on a batch shuffled
across GPUs) is not implemented. With several GPUs, `sync_bn: true` (the default) turns every BatchNorm layer of
both encoders, query and key, into SyncBatchNorm, so keys and queries use global batch statistics; with
`sync_bn: false` both use per-device batch statistics. One device: ordinary batch norm.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from study.configfields import is_num, positive_int
from study.errors import StudyError
from study.train.distributed import gather_no_grad
from study.train.losses import infonce
from study.train.methods import METHODS, Method, ema_update, mlp


@dataclass(frozen=True)
class MocoSettings:
    """`pretrain.moco` in a grid."""

    queue_size: int = 65536  # MoCo v2
    momentum: float = 0.999  # MoCo v2: key encoder EMA
    dim: int = 128  # MoCo v2: key/query dimension
    hidden: int = 2048  # MoCo v2: MLP head hidden width

    def validate(self, where: str) -> None:
        for key in ("queue_size", "dim", "hidden"):
            positive_int(getattr(self, key), f"{where}.{key}")
        if not is_num(self.momentum) or not 0 <= self.momentum <= 1:
            raise StudyError(f"{where}.momentum: expected a number in [0, 1], got {self.momentum!r}")


@METHODS.register("moco")
class MoCo(Method):
    default_temperature = 0.2  # MoCo v2
    # MoCo v2: SGD 0.03 x batch/256, weight decay 1e-4 on every parameter, no warmup, cosine decay
    optim = {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4, "warmup_epochs": 0.0, "exclude_bias_and_norm": False}
    settings = MocoSettings

    @classmethod
    def schedule_warning(cls, cfg, steps: int) -> str | None:
        queue, keys = cfg.method_settings["moco"].queue_size, steps * cfg.batch_size
        if queue < cfg.batch_size:  # enqueue keeps a batch's newest keys: the queue is one batch's, less some
            return (f"moco.queue_size {queue} is less than the {cfg.batch_size} keys each step enqueues (batch_size): "
                    f"each step's newest {queue} keys replace the whole queue, so every step's negatives are part of "
                    f"the previous batch alone; set it to a multiple of batch_size (MoCo v2: 65536 at 256)")
        if queue <= keys:
            return None
        return (f"moco.queue_size {queue} is more than the {keys} keys the run enqueues ({steps} steps x batch_size "
                f"{cfg.batch_size}): most of its negatives stay the queue's random initial keys to the end; set it to "
                f"at most {keys} (MoCo v2's 65536 fill in 256 steps at batch 256)")

    def __init__(self, cfg, encoder, num_classes: int):
        super().__init__(encoder)
        m = cfg.method_settings["moco"]
        self.head = mlp(encoder.feature_dim, (m.hidden, m.dim), bn=False)  # MoCo v2: fc-ReLU-fc
        self.key_encoder = copy.deepcopy(self.encoder)
        self.key_head = copy.deepcopy(self.head)
        for p in list(self.key_encoder.parameters()) + list(self.key_head.parameters()):
            p.requires_grad_(False)
        self.momentum = m.momentum
        self.temperature = cfg.effective_temperature()
        self.register_buffer("queue", F.normalize(torch.randn(m.queue_size, m.dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        # key <- m * key + (1 - m) * query, parameters only (the key encoder keeps its own BN statistics)
        for online, target in ((self.encoder, self.key_encoder), (self.head, self.key_head)):
            ema_update(target, online, self.momentum, copy_buffers=False)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write `keys` (unit rows) over the oldest entries, wrapping around; the pointer moves past them.

        The pointer stays a tensor on the queue's device (a buffer: checkpointed with the queue), and every step of
        this is a device operation: no host read, no CPU-GPU synchronisation."""
        size = self.queue.shape[0]
        keys = keys.to(self.queue.dtype)[-size:]  # more keys than the queue holds: the newest fill it
        k = keys.shape[0]
        idx = (torch.arange(k, device=self.queue.device) + self.queue_ptr) % size  # k <= size: distinct rows
        self.queue.index_copy_(0, idx, keys)
        self.queue_ptr.add_(k).remainder_(size)

    def forward(self, views, labels):
        q = self.head(self.encoder(views[0]))
        with torch.no_grad():
            self._momentum_update()
            k = F.normalize(self.key_head(self.key_encoder(views[1])).float(), dim=1)
        loss = infonce(q, k, self.queue.clone(), self.temperature)
        self.enqueue(gather_no_grad(k))
        return loss, {}
