"""study.train.protocol: what a run records; its LARS entries (and the fingerprint's) for LARS runs only."""
from types import SimpleNamespace

import torch

from study.train import distributed
from study.train.optim import Schedule
from study.train.protocol import run_protocol
from study.train.resume import run_fingerprint


def test_the_protocol_and_fingerprint_carry_the_lars_entries_for_lars_only(make_config):
    """`trust_coefficient` (LARS's eta) is recorded, and `lars_momentum` (what its momentum buffer holds) pinned in
    the checkpoint's fingerprint, for a LARS run only: an SGD checkpoint is not refused for lacking it. Epochs are
    steps over steps per epoch, a fraction where the budget ends mid-epoch; the effective batch is every device's."""
    manifest = SimpleNamespace(name="tiny", content_hash="h", corruption=None, num_classes=3)
    method = SimpleNamespace(encoder=SimpleNamespace(feature_dim=16), protocol=lambda: {"head": [16, 4]},
                             trains=True)
    sched = Schedule(24, 8, 3, 4, 1, 0.1, 0.0)
    cpu, world = torch.device("cpu"), distributed.World(size=2)
    for name, lars in (("lars", True), ("sgd", False), ("adamw", False)):
        cfg = make_config(optim={"name": name})
        p = run_protocol(cfg, manifest, world, cpu, False, False, False, sched, None, method)
        assert (p["epochs"], p["per_device_batch"], p["effective_batch"], p["optimizer"]) == (4 / 3, 4, 8, name)
        assert p["head"] == [16, 4]  # the method's own entries (Method.protocol)
        assert ("trust_coefficient" in p, "lars_momentum" in run_fingerprint(cfg, manifest, world, cpu, False,
                                                                              False)) == (lars, lars), name
    assert p.get("trust_coefficient") is None
    assert run_protocol(make_config(), manifest, world, cpu, False, False, False, sched, None, method)[
        "trust_coefficient"] == make_config().optim.trust_coefficient
