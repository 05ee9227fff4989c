"""MoCo's queue, BYOL's target network, SimCLR and supervised forward passes, backbones and encoder files."""
import copy
import dataclasses
import functools
import math

import pytest
import torch
from torch import nn

from study.errors import StudyError
from study.train import PretrainConfig
from study.train.backbones import BACKBONES, build_backbone, encoder_payload, load_encoder
from study.train.config import METHOD_READ_SETTINGS, TRAINING_SETTINGS, UNREAD_SETTINGS
from study.train.losses import byol_loss, infonce, nt_xent
from study.train.methods import METHODS, ema_update
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


def test_simclr_records_its_head_and_the_other_methods_nothing_of_their_own(make_method):
    """`Method.protocol()`: SimCLR's head dims from the encoder's features to the output (the protocol's `head`);
    the other methods record their settings through the config, nothing more."""
    m = make_method("simclr", head=[16, 8])
    assert m.protocol() == {"head": [m.encoder.feature_dim, 16, 8]}
    for name in ("moco", "byol", "supervised", "random"):
        assert make_method(name).protocol() == {}, name


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
def test_every_registered_method_builds_its_preset_and_runs_a_step(make_method, make_config, name, tmp_path):
    """What the config and the loop ask of any method, a new one included: an augmentation preset, a temperature
    only where it has one, and a forward pass giving a finite scalar loss that trains (or no training at all). A
    method that scores a given encoder (`encoder_file` among its settings) is refused without one, and given one."""
    cls = METHODS.get(name)
    fields = {f.name for f in dataclasses.fields(cls.settings)} if cls.settings else set()
    if "encoder_file" in fields:  # a method that scores a given encoder: refused without one, then given one
        with pytest.raises(StudyError, match=f"^pretrain.{name}.encoder_file: method {name} scores a given encoder"):
            make_config(method=name)
        given = tmp_path / "given.pt"
        torch.save(encoder_payload(build_backbone("resnet18_small", 4)), given)
        make_config = functools.partial(make_config, **{name: {"encoder_file": str(given)}})
        make_method = functools.partial(make_method, **{name: {"encoder_file": str(given)}})
    # its optimizer recipe, read and validated as a grid that sets no `optim` reads it (make_config names LARS, which
    # leaves out every other optimizer's recipe: a recipe's typo or bad value passed here)
    own = PretrainConfig.from_dict({"manifest": "m", "method": name,
                                    **({name: {"encoder_file": "given.pt"}} if "encoder_file" in fields else {})})
    assert {k: getattr(own.optim, k) for k in cls.optim} == {k: tuple(v) if isinstance(v, list) else v
                                                             for k, v in cls.optim.items()}
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


# two values of each setting of METHOD_READ_SETTINGS, each valid for any method
OTHER_VALUES = {"temperature": (0.05, 0.5), "head": ((16, 8), (32, 4)), "head_output_bn": (False, True)}


@pytest.mark.parametrize("name", sorted(UNREAD_SETTINGS))
def test_a_setting_a_method_is_listed_as_never_reading_changes_nothing_it_computes(make_method, name, tmp_path):
    """UNREAD_SETTINGS leaves a setting out of a method's job ids, records and checkpoint fingerprints: two runs that
    differ in it share one id and one result. Each listed setting, at two values, builds the same modules with the
    same weights and (a method that trains) gives the same loss and gradients; a method listed as reading no
    temperature has none."""
    assert set(OTHER_VALUES) == set(METHOD_READ_SETTINGS)
    assert name in METHODS, f"UNREAD_SETTINGS names {name!r}, which no method module registers"
    cls = METHODS.get(name)
    assert "temperature" not in UNREAD_SETTINGS[name] or cls.default_temperature is None
    # the training settings only for a method that trains nothing (test_pretrain: its runs at two values of each)
    assert set(UNREAD_SETTINGS[name]) <= {*METHOD_READ_SETTINGS, *(() if cls.trains else TRAINING_SETTINGS)}
    own = {}
    if name == "pretrained":
        given = tmp_path / "given.pt"
        torch.save(encoder_payload(build_backbone("resnet18_small", 4)), given)
        own = {name: {"encoder_file": str(given)}}

    def step(**setting):
        m = make_method(name, **own, **setting)
        if not cls.trains:
            return m.state_dict(), None, []
        loss, _ = m(_views(4, k=cls.num_views), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        return m.state_dict(), loss, [p.grad for p in m.parameters()]

    for key in set(UNREAD_SETTINGS[name]) & set(METHOD_READ_SETTINGS):
        (state_a, loss_a, grads_a), (state_b, loss_b, grads_b) = (step(**{key: v}) for v in OTHER_VALUES[key])
        assert list(state_a) == list(state_b), (name, key)
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), (name, key)
        if cls.trains:
            assert torch.equal(loss_a, loss_b), (name, key)
            assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads_a, grads_b)), (name, key)


def test_a_setting_a_method_reads_changes_what_it_computes(make_method):
    """The check above can fail: SimCLR reads its head and temperature, MoCo its temperature (neither is listed)."""
    assert not set(UNREAD_SETTINGS.get("simclr", ())) and "temperature" not in UNREAD_SETTINGS["moco"]
    assert list(make_method("simclr", head=(16, 8)).state_dict()["head.0.weight"].shape) != \
        list(make_method("simclr", head=(32, 4)).state_dict()["head.0.weight"].shape)
    for name in ("simclr", "moco"):
        losses = [make_method(name, temperature=t)(_views(4), torch.tensor([0, 1, 2, 0]))[0] for t in (0.05, 0.5)]
        assert not torch.equal(*losses), name


@pytest.mark.parametrize("name,dim", [("resnet18", 8 * 8), ("resnet34", 8 * 8), ("resnet50", 8 * 8 * 4),
                                      ("resnet18_small", 64), ("resnet34_small", 64), ("resnet50_small", 256)])
def test_backbones_give_pooled_features(name, dim):
    m = build_backbone(name, width=8).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert m(x).shape == (2, dim) == (2, m.feature_dim)
    assert name in BACKBONES


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_registered_backbone_gives_its_feature_dim_and_reads_back_from_its_encoder_file(name, tmp_path):
    """What training and evaluation ask of any backbone, a new one included: `(width)` builds it, its output is
    (batch, feature_dim), and an encoder file of it loads as the same network."""
    torch.manual_seed(0)
    m = build_backbone(name, width=4).eval()
    assert m.spec == {"name": name, "width": 4}
    x = torch.randn(2, 3, 32, 32)
    torch.save(encoder_payload(m), tmp_path / "encoder.pt")
    back = load_encoder(tmp_path / "encoder.pt")
    with torch.no_grad():
        assert m(x).shape == (2, m.feature_dim) and torch.equal(back(x), m(x))


@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("size", [28, 30, 45])
def test_every_registered_backbone_takes_any_image_size(name, size):
    """docs/contributing.md: a backbone's forward takes any `image_size` a grid sets, not only the 32 and 64 px the
    other tests give (28: the quickstart's; 30 and 45: off a 4, 8 or 16 px patch grid), so that a backbone which
    does not (a ViT's fixed position embeddings or patch grid) fails here, not in a job after its pretraining."""
    m = build_backbone(name, width=4).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, size, size)).shape == (2, m.feature_dim)


def test_a_backbone_without_a_feature_dim_is_refused_naming_it():
    """A registered function whose module gives no positive int `feature_dim` is refused when built, naming the
    backbone, not met later as an AttributeError in a method's head."""
    BACKBONES.register("no_feature_dim")(lambda width=64: nn.Sequential(nn.Conv2d(3, width, 3), nn.Flatten()))
    try:
        with pytest.raises(ValueError, match="backbone 'no_feature_dim': its module Sequential gives feature_dim "
                                             "None"):
            build_backbone("no_feature_dim", 4)
    finally:
        BACKBONES.unregister("no_feature_dim")


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


def _layers(seq):
    """(kind, width) of each layer of a head: Linear -> ("Linear", out_features, has bias), BN -> ("BN", features)."""
    out = []
    for layer in seq:
        if isinstance(layer, nn.Linear):
            out.append(("Linear", layer.out_features, layer.bias is not None))
        elif isinstance(layer, nn.BatchNorm1d):
            out.append(("BN", layer.num_features))
        else:
            out.append((type(layer).__name__,))
    return out


def test_heads_have_their_papers_widths_and_batch_norm_placement():
    """The recipes' defaults on a (thin) encoder of feature_dim f: SimCLR f-2048-128 with BN after the hidden
    Linear (2048-2048-128 on ResNet-50); MoCo v2 f-2048-128, fc-ReLU-fc without BN; BYOL's projector f-4096-256 and
    predictor 256-4096-256, each Linear-BN-ReLU-Linear. A hidden Linear followed by BN has no bias."""
    encoder = build_backbone("resnet18_small", 4)
    f = encoder.feature_dim
    cfgs = {name: PretrainConfig.from_dict({"manifest": "m", "method": name}) for name in ("simclr", "moco", "byol")}
    simclr = METHODS.get("simclr")(cfgs["simclr"], copy.deepcopy(encoder), 3)
    assert simclr.head[0].in_features == f
    assert _layers(simclr.head) == [("Linear", 2048, False), ("BN", 2048), ("ReLU",), ("Linear", 128, True)]
    moco = METHODS.get("moco")(cfgs["moco"], copy.deepcopy(encoder), 3)
    assert moco.head[0].in_features == f
    assert _layers(moco.head) == [("Linear", 2048, True), ("ReLU",), ("Linear", 128, True)]
    assert _layers(moco.key_head) == _layers(moco.head)
    assert moco.momentum == 0.999 and moco.queue.shape == (65536, 128)  # MoCo v2: m = 0.999, K = 65536
    byol = METHODS.get("byol")(cfgs["byol"], copy.deepcopy(encoder), 3)
    assert byol.projector[0].in_features == f and byol.predictor[0].in_features == 256
    assert _layers(byol.projector) == [("Linear", 4096, False), ("BN", 4096), ("ReLU",), ("Linear", 256, True)]
    assert _layers(byol.predictor) == [("Linear", 4096, False), ("BN", 4096), ("ReLU",), ("Linear", 256, True)]
    assert byol.tau_base == 0.996


def test_simclr_loss_is_nt_xent_between_the_two_views_at_the_configured_temperature(make_method):
    """Each image's first view is paired with its second (not with itself), at the grid's `temperature`."""
    m = make_method("simclr", temperature=0.5)
    views = _views(4)
    m.train()
    twin = copy.deepcopy(m)
    with torch.no_grad():
        z = twin.head(twin.encoder(torch.cat(views)))
        expected = nt_xent(z[:4], z[4:], 0.5)
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss.detach(), expected, atol=1e-6), (float(loss), float(expected))
    at_default = nt_xent(z[:4], z[4:], 0.1)  # SimCLR's default temperature: not the one configured
    assert float(loss.detach()) != pytest.approx(float(at_default), abs=1e-3)


def test_moco_key_encoder_and_head_follow_the_query_ones_at_the_configured_momentum(make_method):
    """Each step, before computing its keys: key <- m * key + (1 - m) * query, for the encoder and the head, with
    `pretrain.moco.momentum`."""
    m = make_method("moco", moco={"momentum": 0.9})
    m.train()
    keys = list(m.key_encoder.parameters()) + list(m.key_head.parameters())
    before = [p.detach().clone() for p in keys]
    with torch.no_grad():  # move the query network so that the keys have something to follow
        for p in list(m.encoder.parameters()) + list(m.head.parameters()):
            p.add_(1.0)
    queries = [p.detach().clone() for p in list(m.encoder.parameters()) + list(m.head.parameters())]
    m(_views(4), torch.zeros(4, dtype=torch.long))
    assert len(keys) == len(queries)
    for k, b, q in zip(keys, before, queries):
        assert torch.allclose(k, 0.9 * b + 0.1 * q, atol=1e-6)


def test_byol_loss_regresses_each_views_prediction_on_the_other_views_target(make_method):
    """loss = byol_loss(predictor(projector(encoder(v1))), target(v2)) + byol_loss(prediction of v2, target(v1))."""
    m = make_method("byol")
    views = _views(4)
    m.train()
    twin = copy.deepcopy(m)
    with torch.no_grad():
        both = torch.cat(views)
        p = twin.predictor(twin.projector(twin.encoder(both)))
        z = twin.target_projector(twin.target_encoder(both))
        expected = byol_loss(p[:4], z[4:]) + byol_loss(p[4:], z[:4])
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss.detach(), expected, atol=1e-6), (float(loss), float(expected))


def test_byol_target_moves_at_each_steps_scheduled_rate(make_method):
    """after_step(k, K) updates the target with byol_tau(k - 1, K): 0.998 halfway through 10 steps, 1 (no move)
    past the end; not tau_base at every step."""
    m = make_method("byol")
    targets = list(m.target_encoder.parameters()) + list(m.target_projector.parameters())
    online = list(m.encoder.parameters()) + list(m.projector.parameters())
    for step, tau in ((6, 0.998), (11, 1.0)):
        with torch.no_grad():
            for p in online:
                p.add_(1.0)
        before, now = [t.detach().clone() for t in targets], [o.detach().clone() for o in online]
        m.after_step(step, 10)
        for t, b, o in zip(targets, before, now):
            assert torch.allclose(t, tau * b + (1 - tau) * o, atol=1e-6), step


def test_byol_tau_stays_at_one_past_the_end_and_for_a_run_of_no_step():
    assert byol_tau(12, 10, 0.996) == pytest.approx(1.0)
    assert byol_tau(20, 10, 0.996) == pytest.approx(1.0)
    assert byol_tau(0, 0, 0.996) == 1.0


def test_ema_update_averages_parameters_and_copies_buffers():
    torch.manual_seed(0)
    target, online = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        target.weight.fill_(1.0)
        online.weight.fill_(3.0)
    online.train()
    online(torch.randn(8, 3) * 2 + 5)  # online's running statistics move away from target's
    ema_update(target, online, 0.75)
    assert torch.allclose(target.weight, torch.full((3,), 0.75 * 1.0 + 0.25 * 3.0))
    assert torch.equal(target.running_mean, online.running_mean) and torch.equal(target.running_var, online.running_var)
    assert int(target.num_batches_tracked) == 1


def test_supervised_counts_correct_predictions_and_takes_cross_entropy_on_labels(make_method):
    s = make_method("supervised")
    with torch.no_grad():  # every image predicted as class 1
        s.classifier.weight.zero_()
        s.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    labels = torch.tensor([1, 0, 1, 1])
    loss, stats = s(_views(4, k=1), labels)
    assert int(stats["correct"]) == 3 and int(stats["seen"]) == 4
    log_p = torch.log_softmax(torch.tensor([0.0, 5.0, 0.0]), dim=0)
    assert float(loss.detach()) == pytest.approx(float(-log_p[labels].mean()), abs=1e-6)


@pytest.mark.parametrize("name,side", [("resnet18", 1), ("resnet34", 1), ("resnet50", 1), ("resnet18_small", 4),
                                       ("resnet34_small", 4), ("resnet50_small", 4)])
def test_small_variants_keep_the_resolution_with_a_3x3_stride_1_stem_and_no_max_pool(name, side):
    """On 32 px inputs the last stage sees 32/32 = 1 px with torchvision's stem (7x7 stride 2 + max-pool) and
    32/8 = 4 px with the small-image stem (3x3 stride 1, no max-pool)."""
    m = build_backbone(name, width=4).eval()
    seen = {}

    def record(module, inputs, output):
        seen["shape"] = tuple(output.shape[-2:])

    m.layer4.register_forward_hook(record)
    m.layer1.register_forward_hook(lambda module, inputs, output: seen.update(first=tuple(output.shape[-2:])))
    with torch.no_grad():
        m(torch.randn(2, 3, 32, 32))
    assert seen["shape"] == (side, side)
    assert seen["first"] == ((32, 32) if name.endswith("_small") else (8, 8))  # the small stem keeps all 32 px
    assert m.conv1.kernel_size == ((3, 3) if name.endswith("_small") else (7, 7))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_small_variants_have_the_same_blocks_as_torchvisions_layout(name):
    """A `*_small` network differs from its torchvision layout only in the stem: same parameters, same shapes,
    save the 3x3 first convolution (so the depth of every stage is the ResNet's)."""
    full, small = build_backbone(name, 4).state_dict(), build_backbone(f"{name}_small", 4).state_dict()
    assert full.keys() == small.keys()
    assert {k for k in full if full[k].shape != small[k].shape} == {"conv1.weight"}


def test_load_encoder_refuses_weights_that_do_not_fit_the_named_backbone(tmp_path):
    """Weights of another width, or with keys the backbone lacks or misses (a DDP 'module.' prefix), are refused,
    never loaded in part over a random initialisation."""
    m = build_backbone("resnet18_small", 4)
    payload = encoder_payload(m)
    torch.save({**payload, "backbone": {"name": "resnet18_small", "width": 8}}, tmp_path / "wide.pt")
    with pytest.raises(StudyError, match="wide.pt: weights do not fit backbone"):
        load_encoder(tmp_path / "wide.pt")
    torch.save({**payload, "backbone": {"name": "resnet50_small", "width": 4}}, tmp_path / "other.pt")
    with pytest.raises(StudyError, match="other.pt: weights do not fit backbone"):
        load_encoder(tmp_path / "other.pt")
    prefixed = {f"module.{k}": v for k, v in payload["state_dict"].items()}
    torch.save({**payload, "state_dict": prefixed}, tmp_path / "ddp.pt")
    with pytest.raises(StudyError, match="ddp.pt: weights do not fit backbone"):
        load_encoder(tmp_path / "ddp.pt")


def _move(*modules: torch.nn.Module) -> None:
    """Perturb the online networks' weights, as training steps after the first have moved them from the target's."""
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.add_(0.1 * torch.randn_like(p))


def test_byol_regresses_on_the_target_network_not_on_the_online_one(make_method):
    """Once the online network has moved away from the target (every step after the first), the loss compares the
    online predictions with the target encoder and projector's projections, not with the online projector's."""
    m = make_method("byol")
    m.train()
    _move(m.encoder, m.projector)
    views = _views(4)
    twin = copy.deepcopy(m)
    with torch.no_grad():
        both = torch.cat(views)
        p = twin.predictor(twin.projector(twin.encoder(both)))
        z = twin.target_projector(twin.target_encoder(both))
        online_z = twin.projector(twin.encoder(both))
        expected = byol_loss(p[:4], z[4:]) + byol_loss(p[4:], z[:4])
        against_online = byol_loss(p[:4], online_z[4:]) + byol_loss(p[4:], online_z[:4])
    assert float(expected) != pytest.approx(float(against_online), abs=1e-4)  # the case tells the two apart
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss.detach(), expected, atol=1e-6), (float(loss), float(expected))


def test_byol_projector_and_predictor_take_their_own_hidden_widths(make_method):
    m = make_method("byol", byol={"projector_hidden": 24, "predictor_hidden": 40, "dim": 8})
    assert _layers(m.projector) == [("Linear", 24, False), ("BN", 24), ("ReLU",), ("Linear", 8, True)]
    assert _layers(m.predictor) == [("Linear", 40, False), ("BN", 40), ("ReLU",), ("Linear", 8, True)]
    assert _layers(m.target_projector) == _layers(m.projector)


def test_byol_pretrains_on_its_asymmetric_augmentation(make_config):
    """BYOL's preset (blur p 1.0 / 0.1, solarize p 0 / 0.2 on the two views), not SimCLR's symmetric one."""
    aug = make_config(method="byol").augment_config()
    assert (aug.preset, aug.blur_p, aug.solarize_p) == ("byol", (1.0, 0.1), (0.0, 0.2))
    assert make_config(method="simclr").augment_config().preset == "simclr"


def test_supervised_trains_on_crop_and_flip_and_random_records_the_eval_transform(make_config):
    """The supervised baseline's preset draws only the random resized crop and the flip; the random-init
    reference's is the eval preset, which draws nothing."""
    sup = make_config(method="supervised").augment_config()
    assert sup.preset == "supervised" and list(sup.random_settings()) == ["crop", "flip_p"]
    rnd = make_config(method="random").augment_config()
    assert rnd.preset == "eval" and rnd.random_settings() == {}


def test_moco_keys_come_from_the_key_encoder_after_this_steps_momentum_update(make_method):
    """MoCo v2 updates the key encoder, then computes the keys: once the query network has moved, the keys enqueued
    (and scored as positives) are those of the updated key network, not of the one before the update."""
    m = make_method("moco", moco={"queue_size": 8, "dim": 16, "momentum": 0.5})
    m.train()
    _move(m.encoder, m.head)
    views = _views(4)
    twin = copy.deepcopy(m)
    with torch.no_grad():
        stale = torch.nn.functional.normalize(twin.key_head(twin.key_encoder(views[1])), dim=1)
        twin._momentum_update()
        fresh = torch.nn.functional.normalize(twin.key_head(twin.key_encoder(views[1])), dim=1)
    assert not torch.allclose(stale, fresh, atol=1e-4)  # the case tells the two apart
    m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(m.queue[:4], fresh, atol=1e-6)


def test_moco_queue_starts_as_unit_rows_and_the_loss_takes_the_configured_temperature(make_method):
    """InfoNCE takes the queue's rows as unit vectors (only keys and queries are normalised): the random queue of
    the first steps must be unit rows too. `temperature` set in the grid replaces MoCo v2's 0.2."""
    m = make_method("moco", moco={"queue_size": 8, "dim": 16}, temperature=0.5)
    assert torch.allclose(m.queue.norm(dim=1), torch.ones(8), atol=1e-5)
    assert m.temperature == 0.5
    m.train()
    views = _views(4)
    twin = copy.deepcopy(m)
    with torch.no_grad():
        q = twin.head(twin.encoder(views[0]))
        k = twin.key_head(twin.key_encoder(views[1]))
        expected = infonce(q, k, twin.queue.clone(), 0.5)
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss.detach(), expected, atol=1e-6), (float(loss), float(expected))


@pytest.mark.parametrize("name", ["resnet18", "resnet18_small"])
def test_convolutions_start_from_torchvisions_kaiming_normal_fan_out(name):
    """torchvision's initialisation: conv weights N(0, 2 / fan_out), fan_out = out_channels x kernel area; BN
    weight 1, bias 0."""
    torch.manual_seed(0)
    m = build_backbone(name, width=16)
    conv = m.layer2[0].conv1  # 3x3, 16 -> 32 channels: fan_out 288, fan_in 144
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert float(conv.weight.detach().std()) == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)
    assert torch.equal(m.bn1.weight, torch.ones(16)) and torch.equal(m.bn1.bias, torch.zeros(16))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_width_64_resnets_compute_torchvisions_features_with_its_weights(name):
    """Same weights, same pooled features as torchvision's model without its classifier: the stem's padding, the
    max-pool and every block's layout, which equal parameter shapes alone do not pin."""
    import torchvision

    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)(weights=None)
    ref.fc = nn.Identity()
    ours = build_backbone(name, 64)
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_simclr_on_a_rank_scores_its_own_pairs_of_the_gathered_batch(make_method, monkeypatch):
    """Rank r of a gathered batch takes the loss of pairs r*n..r*n+n-1 (both views) against every row: rank 1 of 2
    here, the other rank's rows stood in for by fixed ones."""
    import study.train.methods.simclr as simclr

    torch.manual_seed(0)
    m = make_method("simclr", temperature=0.5)
    views = _views(4)
    others = [torch.randn(4, m.head[-1].out_features) for _ in range(2)]
    twin = copy.deepcopy(m)
    with torch.no_grad():
        z = twin.head(twin.encoder(torch.cat(views)))
        expected = nt_xent(torch.cat([others[0], z[:4]]), torch.cat([others[1], z[4:]]), 0.5, (4, 4))
    gathered = iter(others)
    monkeypatch.setattr(simclr, "is_distributed", lambda: True)
    monkeypatch.setattr(simclr, "gather_with_grad", lambda t: torch.cat([next(gathered), t]))
    monkeypatch.setattr(torch.distributed, "get_rank", lambda *a, **k: 1)
    loss, _ = m(views, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss.detach(), expected, atol=1e-6), (float(loss), float(expected))


def test_moco_enqueues_unit_keys_under_bf16_autocast(make_method):
    """The keys are normalised in float32 (the key head's bf16 output cast up first): the queue's rows, which
    InfoNCE takes as unit vectors, stay unit to float32 precision under a bf16 run's autocast."""
    m = make_method("moco", moco={"queue_size": 8, "dim": 16})
    m.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(_views(4), torch.zeros(4, dtype=torch.long))
    assert torch.allclose(m.queue[:4].norm(dim=1), torch.ones(4), atol=1e-5)


def test_an_encoder_file_tells_its_provenance_and_none_where_it_has_none(tmp_path):
    """`encoder_provenance`: the (recipe, protocol) `encoder_payload` wrote; None for each where the file has none,
    or a value of another type (a foreign file), or no dict at all. A file written without a protocol has no key."""
    from study.train.backbones import encoder_provenance

    m = build_backbone("resnet18_small", 4)
    assert "protocol" not in encoder_payload(m, "abc")
    torch.save(encoder_payload(m, "abc", {"method": "simclr"}), tmp_path / "own.pt")
    assert encoder_provenance(tmp_path / "own.pt") == ("abc", {"method": "simclr"})
    torch.save({**encoder_payload(m), "recipe": 5, "protocol": "simclr"}, tmp_path / "odd.pt")
    assert encoder_provenance(tmp_path / "odd.pt") == (None, None)
    torch.save([1, 2], tmp_path / "list.pt")
    assert encoder_provenance(tmp_path / "list.pt") == (None, None)
