"""Whole training steps of SimCLR, MoCo v2 and BYOL (`train_step` then `after_step`, as the loop runs them) against
references written out here from the papers' code: NT-Xent as SimCLR's TensorFlow code builds it (mean of the two
directions), SimCLR's LARS (classic momentum, no decay or adaptation on biases and norm parameters), MoCo v2's order
(momentum update, keys, InfoNCE against the queue as it was, enqueue) under SGD with weight decay on every parameter,
BYOL's symmetric 2 - 2 cos loss and its target EMA at tau(k) = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2 after the
k-th update. Each piece has its own test; this checks that the loop composes them as the methods do."""
import copy
import math

import torch
import torch.nn.functional as F

from study.train.backbones import build_backbone
from study.train.loop import train_step
from study.train.methods import METHODS
from study.train.optim import Schedule, build_optimizer, peak_lr

STEPS, BATCH = 4, 8
CPU = torch.device("cpu")


class _NoAug:
    def batch(self, views, generator):
        return [v.float() for v in views]


def _train(make_config, name, **over):
    """(cfg, method after STEPS steps, its untrained twin, the views of each step, the schedule)."""
    cfg = make_config(method=name, device="cpu", **over)
    torch.manual_seed(0)
    method = METHODS.get(name)(cfg, build_backbone(cfg.backbone, cfg.width), 3)
    twin = copy.deepcopy(method)
    optimizer = build_optimizer(method, cfg.optim, 0.0)
    sched = Schedule(8 * BATCH, BATCH, 8, STEPS, 1, peak_lr(cfg.optim, BATCH), 0.0)
    g = torch.Generator().manual_seed(1)
    data = [[torch.randn(BATCH, 3, 16, 16, generator=g) for _ in range(2)] for _ in range(STEPS)]
    labels = torch.zeros(BATCH, dtype=torch.long)
    method.train()
    twin.train()
    for step in range(STEPS):
        train_step(method, optimizer, _NoAug(), data[step], labels, None, sched.lr(step), CPU, False, False)
        method.after_step(step + 1, STEPS)
    return cfg, method, twin, data, sched


def _lars(named, buffers, lr, o):
    """SimCLR's LARS step on (name, parameter) pairs: biases and norm parameters (ndim < 2) neither decayed nor
    adapted."""
    with torch.no_grad():
        for n, p in named:
            g = p.grad.clone()
            if p.ndim >= 2:
                g += o.weight_decay * p
                g *= o.trust_coefficient * p.norm() / g.norm()
            buffers[n] = o.momentum * buffers[n] + lr * g
            p -= buffers[n]


def _assert_same(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-5, rtol=1e-4), name


def test_simclr_steps_match_the_reference(make_config):
    cfg, m, ref, data, sched = _train(make_config, "simclr", temperature=0.2,
                                      optim={"name": "lars", "lr": 0.3, "weight_decay": 1e-2})
    named = list(ref.named_parameters())
    buffers = {n: torch.zeros_like(p) for n, p in named}
    eye = torch.eye(BATCH) * 1e9
    for step in range(STEPS):
        z = ref.head(ref.encoder(torch.cat(data[step])))
        a, b = F.normalize(z[:BATCH], dim=1), F.normalize(z[BATCH:], dim=1)
        t, target = 0.2, torch.arange(BATCH)
        loss_a = F.cross_entropy(torch.cat([a @ b.T / t, a @ a.T / t - eye], 1), target)
        loss_b = F.cross_entropy(torch.cat([b @ a.T / t, b @ b.T / t - eye], 1), target)
        ref.zero_grad()
        ((loss_a + loss_b) / 2).backward()
        _lars(named, buffers, sched.lr(step), cfg.optim)
    _assert_same(m, ref)


def test_moco_steps_match_the_reference(make_config):
    cfg, m, ref, data, sched = _train(make_config, "moco", moco={"momentum": 0.9, "queue_size": 12},
                                      optim={"name": "sgd", "lr": 0.5, "weight_decay": 1e-2, "warmup_epochs": 0.0})
    o = cfg.optim
    query = list(ref.encoder.parameters()) + list(ref.head.parameters())
    key = list(ref.key_encoder.parameters()) + list(ref.key_head.parameters())
    buffers = [torch.zeros_like(p) for p in query]
    queue, ptr = ref.queue.clone(), 0
    for step in range(STEPS):
        with torch.no_grad():
            for k, q in zip(key, query):
                k.mul_(0.9).add_(0.1 * q)
            keys = F.normalize(ref.key_head(ref.key_encoder(data[step][1])), dim=1)
        q = F.normalize(ref.head(ref.encoder(data[step][0])), dim=1)
        logits = torch.cat([(q * keys).sum(1, keepdim=True), q @ queue.T], 1) / 0.2
        ref.zero_grad()
        F.cross_entropy(logits, torch.zeros(BATCH, dtype=torch.long)).backward()
        with torch.no_grad():
            for i, p in enumerate(query):
                buffers[i] = o.momentum * buffers[i] + p.grad + o.weight_decay * p
                p -= sched.lr(step) * buffers[i]
        for j in range(BATCH):
            queue[(ptr + j) % len(queue)] = keys[j]
        ptr = (ptr + BATCH) % len(queue)
    _assert_same(m, ref)
    assert torch.allclose(m.queue, queue, atol=1e-5) and int(m.queue_ptr) == ptr


def test_byol_steps_match_the_reference(make_config):
    # tau_base 0.5, not BYOL's 0.996: a target that moves enough in four steps to tell a wrong or missing update
    cfg, m, ref, data, sched = _train(make_config, "byol", byol={"tau_base": 0.5},
                                      optim={"name": "lars", "lr": 0.2, "weight_decay": 1e-2})
    online = [(f"{part}.{n}", p) for part in ("encoder", "projector", "predictor")
              for n, p in getattr(ref, part).named_parameters()]
    buffers = {n: torch.zeros_like(p) for n, p in online}
    for step in range(STEPS):
        both = torch.cat(data[step])
        with torch.no_grad():
            z = ref.target_projector(ref.target_encoder(both))
        p = ref.predictor(ref.projector(ref.encoder(both)))

        def regress(a, b):
            return (2 - 2 * F.cosine_similarity(a, b, dim=1)).mean()

        ref.zero_grad()
        (regress(p[:BATCH], z[BATCH:]) + regress(p[BATCH:], z[:BATCH])).backward()
        _lars(online, buffers, sched.lr(step), cfg.optim)
        tau = 1 - (1 - 0.5) * (math.cos(math.pi * step / STEPS) + 1) / 2
        with torch.no_grad():
            for target, source in ((ref.target_encoder, ref.encoder), (ref.target_projector, ref.projector)):
                for t, s in zip(target.parameters(), source.parameters()):
                    t.mul_(tau).add_((1 - tau) * s)
    _assert_same(m, ref)
