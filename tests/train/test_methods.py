"""MoCo's queue, BYOL's target network, SimCLR and supervised forward passes, backbones and encoder files."""
import math

import pytest
import torch

from study.errors import StudyError
from study.train.backbones import BACKBONES, build_backbone, encoder_payload, load_encoder
from study.train.methods import METHODS
from study.train.methods.byol import byol_tau



@pytest.fixture
def make_method(make_config):
    def make(name, **over):
        cfg = make_config(method=name, **over)
        torch.manual_seed(0)
        return METHODS.get(name)(cfg, build_backbone(cfg.backbone, cfg.width), 3)

    return make


def _views(n=4, size=16, k=2):
    g = torch.Generator().manual_seed(3)
    return [torch.randn(n, 3, size, size, generator=g) for _ in range(k)]


def test_moco_queue_holds_the_latest_keys_with_wraparound(make_method):
    m = make_method("moco", moco={"queue_size": 5, "dim": 3})
    keys = [torch.full((2, 3), float(i)) for i in range(1, 5)]  # 8 keys into a queue of 5
    for k in keys:
        m.enqueue(k)
    # written at 0,1 | 2,3 | 4,0 | 1,2 -> pointer 3
    assert int(m.queue_ptr) == 3
    assert m.queue[:, 0].tolist() == [3.0, 4.0, 4.0, 2.0, 3.0]
    latest = sorted(m.queue[:, 0].tolist())
    assert latest == sorted([4.0, 4.0, 3.0, 3.0, 2.0])  # the 5 most recent keys
    m.enqueue(torch.arange(7.0)[:, None].expand(7, 3))  # 7 keys, more than it holds: the newest 5 (2..6), from 3 on
    assert int(m.queue_ptr) == 3 and m.queue[:, 0].tolist() == [4.0, 5.0, 6.0, 2.0, 3.0]


def test_moco_forward_enqueues_this_batch_keys_from_the_momentum_encoder(make_method):
    m = make_method("moco", moco={"queue_size": 8, "dim": 16})
    views = _views(4)
    m.train()
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.isfinite(loss)
    assert int(m.queue_ptr) == 4
    assert torch.allclose(m.queue[:4].norm(dim=1), torch.ones(4), atol=1e-5)
    assert all(not p.requires_grad for p in m.key_encoder.parameters())
    loss.backward()
    assert all(p.grad is None for p in m.key_encoder.parameters())


def test_moco_scores_against_the_queue_before_this_batch_joins_it(make_method):
    """This batch's keys are its positives, never its negatives: the loss uses the queue as it was before the step,
    and the keys join it afterwards (a swap of the two lines passed every other test)."""
    import copy

    import torch.nn.functional as F

    from study.train.losses import infonce

    m = make_method("moco", moco={"queue_size": 8, "dim": 16})
    views = _views(4)
    m.train()
    twin = copy.deepcopy(m)  # the same weights, queue and BN state: what the step should compute
    with torch.no_grad():
        q = twin.head(twin.encoder(views[0]))
        twin._momentum_update()
        k = F.normalize(twin.key_head(twin.key_encoder(views[1])), dim=1)
        expected = infonce(q, k, twin.queue.clone(), twin.temperature)
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss.detach(), expected, atol=1e-6), (float(loss), float(expected))
    assert torch.allclose(m.queue[:4], k, atol=1e-6) and torch.equal(m.queue[4:], twin.queue[4:])


def test_byol_target_gets_no_gradient_and_follows_the_ema_schedule(make_method):
    m = make_method("byol")
    m.train()
    loss, _ = m(_views(4), torch.zeros(4, dtype=torch.long))
    loss.backward()
    targets = list(m.target_encoder.parameters()) + list(m.target_projector.parameters())
    assert all(p.grad is None and not p.requires_grad for p in targets)
    online = [p.detach().clone() for p in list(m.encoder.parameters()) + list(m.projector.parameters())]
    before = [p.detach().clone() for p in targets]
    with torch.no_grad():  # move the online network so that the EMA has something to follow
        for p in list(m.encoder.parameters()) + list(m.projector.parameters()):
            p.add_(1.0)
    m.after_step(1, 10)  # first update: tau = tau_base
    tau = 0.996
    for t, b, o in zip(targets, before, online):
        assert torch.allclose(t, tau * b + (1 - tau) * (o + 1.0), atol=1e-6)
    assert byol_tau(0, 10, 0.996) == pytest.approx(0.996)
    assert byol_tau(5, 10, 0.996) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 2) + 1) / 2)
    assert byol_tau(10, 10, 0.996) == pytest.approx(1.0)


def test_simclr_and_supervised_forward(make_method):
    m = make_method("simclr")
    loss, _ = m(_views(4), torch.zeros(4, dtype=torch.long))
    assert loss.ndim == 0 and torch.isfinite(loss)
    s = make_method("supervised")
    labels = torch.tensor([0, 1, 2, 0])
    loss, stats = s(_views(4, k=1), labels)
    assert torch.isfinite(loss) and int(stats["seen"]) == 4
    assert s.classifier.out_features == 3


def test_simclr_v2_output_bn_scales_without_shifting(make_method):
    """`head_output_bn`: the head's last Linear has no bias and feeds a BN with a scale and no shift, so in training
    mode every output dimension has batch mean 0 whatever the scale learns; without it the output is a plain Linear."""
    v1 = make_method("simclr", head=[16, 8])
    assert isinstance(v1.head[-1], torch.nn.Linear) and v1.head[-1].bias is not None
    m = make_method("simclr", head=[16, 8], head_output_bn=True)
    linear, bn = m.head[-2], m.head[-1]
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.bias is None and linear.bias is None
    with torch.no_grad():
        bn.weight.mul_(3.0)
    z = m.head(m.encoder(torch.cat(_views(6))))
    assert torch.allclose(z.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.full((8,), 3.0), atol=1e-2)
    loss, _ = m(_views(4), torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert bn.weight.grad is not None and torch.isfinite(loss)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_registered_method_builds_its_preset_and_runs_a_step(make_method, make_config, name):
    """What the config and the loop ask of any method, a new one included: an augmentation preset, a temperature
    only where it has one, and a forward pass giving a finite scalar loss that trains (or no training at all)."""
    cls = METHODS.get(name)
    cfg = make_config(method=name)
    assert cfg.augment_config().preset == cls.augment_preset
    assert cfg.effective_temperature() == cls.default_temperature
    m = make_method(name)
    if not cls.trains:
        return
    loss, stats = m(_views(4, k=cls.num_views), torch.tensor([0, 1, 2, 0]))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())


@pytest.mark.parametrize("name,dim", [("resnet18", 8 * 8), ("resnet50", 8 * 8 * 4), ("resnet18_small", 64),
                                      ("resnet50_small", 256)])
def test_backbones_give_pooled_features(name, dim):
    m = build_backbone(name, width=8).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert m(x).shape == (2, dim) == (2, m.feature_dim)
    assert name in BACKBONES


def test_width_64_resnet50_is_torchvisions_architecture():
    import torchvision

    ours = build_backbone("resnet50", 64)
    ref = torchvision.models.resnet50(weights=None)
    ref_shapes = {k: v.shape for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref_shapes
    assert ours.feature_dim == 2048


def test_load_encoder_roundtrip_and_bad_file(tmp_path):
    m = build_backbone("resnet18_small", 4)
    torch.save(encoder_payload(m), tmp_path / "encoder.pt")
    back = load_encoder(tmp_path / "encoder.pt")
    x = torch.randn(2, 3, 16, 16)
    m.eval()
    with torch.no_grad():
        assert torch.equal(back(x), m(x))
    assert back.feature_dim == m.feature_dim
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(StudyError, match="junk.pt"):
        load_encoder(tmp_path / "junk.pt")
    with pytest.raises(StudyError, match="missing.pt"):
        load_encoder(tmp_path / "missing.pt")
