"""study/evaluate/finetune.py: the training run a `finetune` or `scratch` evaluation makes (its end-to-end runs are
test_evaluate's)."""
from __future__ import annotations

from study.evaluate.config import EvalConfig
from study.evaluate.finetune import pretrain_dict
from study.train.config import PretrainConfig

BASE = {"train_manifest": "a", "test_manifest": "b", "labeled_sizes": [100]}


def _run(**over) -> dict:
    return pretrain_dict(EvalConfig.from_dict({**BASE, **over}), 100, 100, None)


def test_both_protocols_checkpoint_every_ten_minutes_by_default():
    """A preempted fine-tune resumes from its last checkpoint, not from its start."""
    for protocol in ("finetune", "scratch"):
        assert PretrainConfig.from_dict(_run(protocol=protocol)).checkpoint_every_minutes == 10.0, protocol


def test_a_scratch_network_is_the_evaluations_backbone_then_the_finetune_sections_then_resnet50():
    """A grid fills `backbone` and `width` from the pretraining jobs the baseline stands beside: they win over what
    the `finetune` section says, which fills them where the evaluation gives none."""
    own = {"backbone": "resnet18_small", "width": 8}
    assert (_run(protocol="scratch")["backbone"], _run(protocol="scratch")["width"]) == ("resnet50", 64)
    got = _run(protocol="scratch", finetune=own)
    assert (got["backbone"], got["width"]) == ("resnet18_small", 8)
    got = _run(protocol="scratch", finetune=own, backbone="resnet50", width=16)
    assert (got["backbone"], got["width"]) == ("resnet50", 16)


def test_the_default_normalisation_leaves_the_training_augmentation_unset():
    """Only a normalisation other than the default is handed to the training run: a default recipe stays the
    method's own (augment None), as runs recorded before were."""
    assert _run(protocol="finetune").get("augment") is None
    got = _run(protocol="finetune", augment={"mean": [0.5, 0.5, 0.5]})
    assert got["augment"] == {"mean": [0.5, 0.5, 0.5]}


def test_the_training_run_takes_the_evaluations_device_and_loader_workers_unless_it_sets_its_own():
    got = _run(protocol="finetune", device="cuda:1", num_workers=3)
    assert (got["device"], got["num_workers"]) == ("cuda:1", 3)
    got = _run(protocol="finetune", device="cuda:1", num_workers=3, finetune={"device": "cpu", "num_workers": 1})
    assert (got["device"], got["num_workers"]) == ("cpu", 1)
