"""PretrainConfig.from_dict: defaults, and errors naming the bad key."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from study.errors import StudyError
from study.train import PretrainConfig
from study.train.config import METHOD_READ_SETTINGS
from study.train.methods import METHODS, method_settings
from study.train.methods.simclr import SimCLR


@dataclass(frozen=True)
class ExampleSettings:
    scale: float = 2.0


class ExampleMethod(SimCLR):
    settings = ExampleSettings


@pytest.fixture
def register_method():
    """`register_method(name)` registers ExampleMethod (settings of its own) as `name`, as its one new file would;
    every name is removed from METHODS afterwards."""
    names = []

    def register(name):
        names.append(name)
        METHODS.register(name)(ExampleMethod)

    yield register
    for name in names:
        METHODS.unregister(name)


def test_defaults_follow_the_simclr_recipe():
    cfg = PretrainConfig.from_dict({"manifest": "m"})
    assert (cfg.method, cfg.backbone, cfg.batch_size) == ("simclr", "resnet50", 4096)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.lr_scaling, cfg.optim.weight_decay) == ("lars", 0.3, "linear", 1e-6)
    assert (cfg.optim.warmup_epochs, cfg.optim.final_lr_fraction, cfg.optim.momentum, cfg.optim.trust_coefficient,
            cfg.optim.exclude_bias_and_norm) == (10.0, 0.0, 0.9, 0.001, True)  # docs/protocol.md's SimCLR rows
    assert cfg.effective_temperature() == 0.1
    assert PretrainConfig.from_dict({"manifest": "m", "method": "moco"}).effective_temperature() == 0.2
    assert cfg.method_settings["byol"].tau_base == 0.996
    # round trip through a plain dict
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg


# docs/protocol.md's training table: key -> (its default cell, the config's value)
DOCUMENTED_DEFAULTS = {
    "method": ("`simclr`", "simclr"), "backbone": ("`resnet50`", "resnet50"), "width": ("64", 64),
    "subset": ("`pretrain`", "pretrain"), "size": ("all rows", None), "init_encoder": ("none", None),
    "seed": ("0", 0), "epochs": ("1000", 1000), "steps": ("none", None), "batch_size": ("4096", 4096),
    "optim.name": ("`lars`", "lars"), "optim.lr_scaling": ("`linear`", "linear"), "optim.warmup_epochs": ("10", 10),
    "optim.final_lr_fraction": ("0", 0), "optim.weight_decay": ("1e-6", 1e-6), "optim.momentum": ("0.9", 0.9),
    "optim.trust_coefficient": ("0.001", 0.001), "optim.exclude_bias_and_norm": ("true", True),
    "optim.betas": ("(0.9, 0.999)", (0.9, 0.999)), "temperature": ("method's", None),
    "head": ("(2048, 128)", (2048, 128)), "head_output_bn": ("false", False), "augment": ("method's preset", None),
    "image_size": ("224", 224), "precision": ("`auto`", "auto"), "channels_last": ("true", True),
    "sync_bn": ("true", True), "num_workers": ("auto", None), "device": ("`auto`", "auto"),
    "checkpoint_every_steps` / `_minutes": ("none / 10", (None, 10)), "log_every_steps": ("50", 50),
}


def test_every_default_is_the_one_docs_protocol_md_states():
    """Each default of the training table in docs/protocol.md, the cell as written and the value the config holds."""
    doc = (Path(__file__).resolve().parents[2] / "docs/protocol.md").read_text()
    cells = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(.+?)` \| (.*?) \|", doc, re.M)}
    cfg = PretrainConfig.from_dict({"manifest": "m"})

    def value(key):
        if key.startswith("checkpoint_every_steps"):
            return cfg.checkpoint_every_steps, cfg.checkpoint_every_minutes
        return getattr(cfg.optim, key[6:]) if key.startswith("optim.") else getattr(cfg, key)

    assert {k: cells.get(k) for k in DOCUMENTED_DEFAULTS} == {k: cell for k, (cell, _) in DOCUMENTED_DEFAULTS.items()}
    assert {k: value(k) for k in DOCUMENTED_DEFAULTS} == {k: v for k, (_, v) in DOCUMENTED_DEFAULTS.items()}


def test_runtime_keys_leave_the_fingerprint_and_image_size_reaches_the_augmentation():
    """docs/protocol.md: `num_workers`, `device`, `checkpoint_every_*` and `log_every_steps` may change at a resume
    (none is in the fingerprint); the defaults' fingerprint has no `manifest`. `image_size` is the crop side where
    `augment` gives none."""
    runtime = {"num_workers": 2, "device": "cpu", "checkpoint_every_steps": 5, "checkpoint_every_minutes": 1.0,
               "log_every_steps": 1}
    assert set(PretrainConfig.RUNTIME_KEYS) == set(runtime)
    plain = PretrainConfig.from_dict({"manifest": "m"}).fingerprint_dict()
    assert PretrainConfig.from_dict({"manifest": "m", **runtime}).fingerprint_dict() == plain
    assert not set(runtime) & set(plain) and "manifest" not in PretrainConfig.default_fingerprint()
    assert PretrainConfig.from_dict({"manifest": "m", "image_size": 32}).augment_config().image_size == 32
    given = PretrainConfig.from_dict({"manifest": "m", "image_size": 32, "augment": {"image_size": 16}})
    assert given.augment_config().image_size == 16


def test_a_temperature_is_recorded_only_for_the_methods_that_have_one():
    """BYOL, supervised and random have no temperature: a grid-wide `temperature` must not show in their protocol
    as if it had run (a BYOL 'sweep' over it would look like distinct results of one training)."""
    given = {"manifest": "m", "temperature": 0.5}
    assert PretrainConfig.from_dict({**given, "method": "simclr"}).effective_temperature() == 0.5
    assert PretrainConfig.from_dict({**given, "method": "moco"}).effective_temperature() == 0.5
    for method in ("byol", "supervised", "random"):
        assert PretrainConfig.from_dict({**given, "method": method}).effective_temperature() is None


@pytest.mark.parametrize(
    "d,key",
    [
        ({"manifest": "m", "epoch": 3}, "'epoch'"),
        ({"manifest": "m", "method": "simclrr"}, "did you mean 'simclr'"),
        ({"manifest": "m", "backbone": "resnet51"}, "pretrain.backbone"),
        ({"manifest": "m", "batch_size": 0}, "pretrain.batch_size"),
        ({"manifest": "m", "subset": "all"}, "pretrain.subset"),
        ({"manifest": "m", "optim": {"lr_scale": "linear"}}, "pretrain.optim: unknown key(s) 'lr_scale'"),
        ({"manifest": "m", "optim": {"name": "adam"}}, "pretrain.optim.name"),
        ({"manifest": "m", "optim": {"lr_scaling": "log"}}, "pretrain.optim.lr_scaling"),
        ({"manifest": "m", "moco": {"momentum": 2}}, "pretrain.moco.momentum"),
        ({"manifest": "m", "simclr": {"temperature": 0.2}}, "pretrain.simclr: method 'simclr' has no settings "
                                                            "section of its own (its class declares no `settings`): "
                                                            "give its values as pretrain's own keys"),
        ({"manifest": "m", "head": [2048, "x"]}, "pretrain.head"),
        ({"manifest": "m", "head_output_bn": "yes"}, "pretrain.head_output_bn"),
        ({"manifest": "m", "temperature": 0}, "pretrain.temperature"),
        ({"manifest": "m", "precision": "fp16"}, "pretrain.precision"),
        ({"manifest": "m", "augment": {"preset": "nope"}}, "pretrain.augment"),
        ({"manifest": "m", "augment": {"preset": "simclrr"}}, "pretrain.augment.preset: unknown 'simclrr' (did you "
                                                              "mean 'simclr'?)"),
        ({"manifest": "m", "augment": {"blurr_p": 0.5}}, "pretrain.augment: unknown key(s) 'blurr_p' (did you mean "
                                                         "'blur_p'?)"),
        ({}, "pretrain.manifest"),
        ({"manifest": "m", "seed": -1}, "pretrain.seed: expected an integer in [0, 2**63)"),  # numpy refuses it
        ({"manifest": "m", "seed": 2**64}, "pretrain.seed"),
        ({"manifest": "m", "seed": 2**63}, "pretrain.seed: expected an integer in [0, 2**63)"),  # one past the last
        ({"manifest": "m", "batch_size": True}, "pretrain.batch_size"),  # YAML's `yes` is not the integer 1
        ({"manifest": "m", "batch_size": 1}, "pretrain.batch_size: method simclr needs a batch of at least 2"),
        ({"manifest": "m", "temperature": float("nan")}, "pretrain.temperature"),
        ({"manifest": "m", "optim": {"lr": float("inf")}}, "pretrain.optim.lr"),
        ({"manifest": "m", "optim": {"name": "adamw", "betas": [0.9, 1.5]}}, "pretrain.optim.betas"),  # torch does
        ({"manifest": "m", "optim": {"name": "adamw", "betas": [0.9, 1]}}, "pretrain.optim.betas"),  # 1 - beta**t = 0
        ({"manifest": "m", "optim": {"weight_decay": -1e-4}}, "pretrain.optim.weight_decay: expected a number >= 0"),
        ({"manifest": "m", "optim": {"lr": 0}}, "pretrain.optim.lr: expected a number > 0, got 0: the run's steps "
                                                "would move no weight"),
        # not ">= 0": a trained method's lr of 0 is refused too
        ({"manifest": "m", "optim": {"lr": -0.1}}, "pretrain.optim.lr: expected a number > 0, got -0.1"),
        ({"manifest": "m", "method": "random", "optim": {"lr": -0.1}}, "pretrain.optim.lr: expected a number >= 0"),
        ({"manifest": "m", "checkpoint_every_minutes": 0}, "pretrain.checkpoint_every_minutes"),
        ({"manifest": "m", "optim": {"momentum": 1.5}}, "pretrain.optim.momentum: expected a number in [0, 1)"),
        ({"manifest": "m", "optim": {"momentum": 1}}, "pretrain.optim.momentum"),  # never forgets a gradient
        ({"manifest": "m", "optim": {"final_lr_fraction": 5}}, "pretrain.optim.final_lr_fraction: expected a number "
                                                               "in [0, 1]"),
        ({"manifest": "m", "steps": 0}, "pretrain.steps: method simclr trains"),  # an untrained 'simclr' encoder
        ({"manifest": "m", "epochs": 0}, "pretrain.epochs: method simclr trains"),
        ({"manifest": "m", "method": "byol", "optim": {"lr_scaling": "sqrt"}}, "pretrain.optim.lr: method byol's "
                                                                               "recipe gives its base lr for the "
                                                                               "linear rule (0.2 x batch/256)"),
        ({"manifest": "m", "method": "moco", "optim": {"lr_scaling": "sqrt"}}, "pretrain.optim.lr"),
        ({"manifest": "m", "byol": {"tau_base": 1.5}}, "pretrain.byol.tau_base: expected a number in [0, 1]"),
        ({"manifest": "m", "moco": {"queue_size": 0}}, "pretrain.moco.queue_size: expected a positive integer"),
        ({"manifest": "m", "width": 0}, "pretrain.width: expected a positive integer"),  # a ResNet of no channels
        ({"manifest": "m", "size": 0}, "pretrain.size: expected a positive integer"),  # an empty subset
        ({"manifest": "m", "head": [2048, 0]}, "pretrain.head: expected a list of positive integers"),
        ({"manifest": "m", "init_encoder": 5}, "pretrain.init_encoder: expected a path or null"),
        ({"manifest": "m", "image_size": 0}, "pretrain.image_size: expected a positive integer"),
        ({"manifest": "m", "checkpoint_every_steps": 0}, "pretrain.checkpoint_every_steps: expected a positive"),
        ({"manifest": "m", "optim": {"warmup_epochs": -1}}, "pretrain.optim.warmup_epochs: expected a number >= 0"),
        (["manifest"], "pretrain: expected a mapping, got list"),
        ({"manifest": 5}, "pretrain.manifest: a manifest name is required"),
        ({"manifest": "m", "epochs": -1}, "pretrain.epochs: expected a number >= 0"),
        ({"manifest": "m", "epochs": float("inf")}, "pretrain.epochs: expected a number >= 0"),  # never ends
        ({"manifest": "m", "steps": -1}, "pretrain.steps: expected an integer >= 0 or null"),
        ({"manifest": "m", "steps": 2.5}, "pretrain.steps: expected an integer >= 0 or null"),
        ({"manifest": "m", "num_workers": -1}, "pretrain.num_workers: expected an integer >= 0 or null"),
        ({"manifest": "m", "device": "gpu"}, "pretrain.device: expected 'auto', 'cpu' or 'cuda[:N]'"),
        ({"manifest": "m", "channels_last": "yes"}, "pretrain.channels_last: expected true or false"),
        ({"manifest": "m", "sync_bn": 1}, "pretrain.sync_bn: expected true or false"),
        ({"manifest": "m", "log_every_steps": 0}, "pretrain.log_every_steps: expected a positive integer"),
        ({"manifest": "m", "head": []}, "pretrain.head: expected a list of positive integers"),  # no head at all
        ({"manifest": "m", "augment": [0.5]}, "pretrain.augment: expected a mapping"),
        ({"manifest": "m", "optim": {"momentum": -0.1}}, "pretrain.optim.momentum: expected a number >= 0"),
        ({"manifest": "m", "optim": {"final_lr_fraction": -0.1}}, "pretrain.optim.final_lr_fraction: expected a "
                                                                   "number >= 0"),
        ({"manifest": "m", "optim": {"trust_coefficient": -1}}, "pretrain.optim.trust_coefficient: expected a "
                                                                 "number >= 0"),
        ({"manifest": "m", "optim": {"name": "adamw", "betas": [0.9, 0.99, 0.9]}}, "pretrain.optim.betas"),
        ({"manifest": "m", "optim": {"name": "adamw", "betas": [-0.1, 0.9]}}, "pretrain.optim.betas"),
        # a typo of lr_scaling under a method recipe is named as such, not as a missing optim.lr
        ({"manifest": "m", "method": "moco", "optim": {"lr_scaling": "log"}}, "pretrain.optim.lr_scaling: expected "
                                                                              "'linear' or 'sqrt'"),
    ],
)
def test_bad_values_name_the_key(d, key):
    with pytest.raises(StudyError) as e:
        PretrainConfig.from_dict(d)
    assert key in str(e.value)


def test_each_method_pretrains_with_its_own_recipe_where_the_config_sets_no_value():
    """MoCo v2's, BYOL's and a supervised recipe fill the `optim` keys a grid leaves out; a value given wins, and the
    effective values are what the config (and so the run's record) holds. SimCLR keeps OptimConfig's defaults."""
    simclr = PretrainConfig.from_dict({"manifest": "m"}).optim
    assert (simclr.name, simclr.lr, simclr.weight_decay, simclr.warmup_epochs) == ("lars", 0.3, 1e-6, 10.0)
    moco = PretrainConfig.from_dict({"manifest": "m", "method": "moco"}).optim
    assert (moco.name, moco.lr, moco.weight_decay, moco.warmup_epochs, moco.exclude_bias_and_norm) == \
        ("sgd", 0.03, 1e-4, 0.0, False)
    byol = PretrainConfig.from_dict({"manifest": "m", "method": "byol", "optim": {"lr": 0.3}})
    assert (byol.optim.name, byol.optim.lr, byol.optim.weight_decay, byol.optim.warmup_epochs) == \
        ("lars", 0.3, 1.5e-6, 10.0)
    assert PretrainConfig.from_dict(byol.to_dict()) == byol  # the record reads back as the same run
    # the recipes' own base lrs (docs/protocol.md: BYOL 0.2, supervised 0.1, both x batch/256)
    assert [PretrainConfig.from_dict({"manifest": "m", "method": m}).optim.lr for m in ("byol", "supervised")] == \
        [0.2, 0.1]
    sup = PretrainConfig.from_dict({"manifest": "m", "method": "supervised", "optim": {"lr": 0.2}}).optim
    assert (sup.name, sup.lr, sup.weight_decay, sup.warmup_epochs) == ("sgd", 0.2, 1e-4, 5.0)
    assert sup.exclude_bias_and_norm is False  # Goyal et al.: weight decay on every parameter, BN and biases too
    # a recipe is one optimizer's: naming another takes none of it (no SGD weight decay on every BN under LARS)
    lars = PretrainConfig.from_dict({"manifest": "m", "method": "supervised", "optim": {"name": "lars"}}).optim
    assert lars == PretrainConfig.from_dict({"manifest": "m", "optim": {"name": "lars"}}).optim


def test_ranges_take_their_bounds_and_a_method_that_trains_nothing_takes_no_steps():
    ok = PretrainConfig.from_dict({"manifest": "m", "optim": {"momentum": 0, "final_lr_fraction": 1}}).optim
    assert (ok.momentum, ok.final_lr_fraction) == (0, 1)
    for end in (0, 1):  # an EMA rate of 1 keeps the target / key network fixed, 0 copies the online one
        settings = PretrainConfig.from_dict({"manifest": "m", "moco": {"momentum": end}, "byol": {"tau_base": end}})
        assert (settings.method_settings["moco"].momentum, settings.method_settings["byol"].tau_base) == (end, end)
    assert PretrainConfig.from_dict({"manifest": "m", "method": "random", "steps": 0}).steps == 0
    assert PretrainConfig.from_dict({"manifest": "m", "method": "random", "optim": {"lr": 0}}).optim.lr == 0  # unread
    assert PretrainConfig.from_dict({"manifest": "m", "seed": 2**63 - 1}).seed == 2**63 - 1
    assert PretrainConfig.from_dict({"manifest": "m", "epochs": 0, "steps": 5}).steps == 5  # steps replace epochs
    assert PretrainConfig.from_dict({"manifest": "m", "batch_size": 2}).batch_size == 2  # simclr's smallest
    assert PretrainConfig.from_dict({"manifest": "m", "method": "supervised", "batch_size": 1}).batch_size == 1
    with pytest.raises(StudyError, match=r"evaluate.finetune.steps: method supervised trains"):  # a fine-tune's
        PretrainConfig.from_dict({"manifest": "m", "method": "supervised", "steps": 0}, where="evaluate.finetune")


def test_the_base_lr_where_none_is_given_is_the_scaling_rules_and_is_recorded():
    """SimCLR's 0.3 x batch/256 or 0.075 x sqrt(batch); the config, and so the record, holds the value used, and
    reads back as the same run. A method recipe's lr (the linear rule's) is not carried over to the sqrt rule."""
    sqrt = PretrainConfig.from_dict({"manifest": "m", "optim": {"lr_scaling": "sqrt"}})
    assert sqrt.optim.lr == 0.075 and sqrt.to_dict()["optim"]["lr"] == 0.075
    assert PretrainConfig.from_dict(sqrt.to_dict()) == sqrt
    assert PretrainConfig.from_dict({"manifest": "m"}).optim.lr == 0.3
    byol = PretrainConfig.from_dict({"manifest": "m", "method": "byol", "optim": {"lr_scaling": "sqrt", "lr": 0.05}})
    assert (byol.optim.lr, byol.optim.weight_decay) == (0.05, 1.5e-6)  # the rest of the recipe applies
    assert PretrainConfig.from_dict({"manifest": "m", "method": "byol"}).optim.lr == 0.2
    # `lr: null` (a grid's way of saying "no value") leaves the method's own lr, not SimCLR's 0.3
    assert PretrainConfig.from_dict({"manifest": "m", "method": "moco", "optim": {"lr": None}}).optim.lr == 0.03


def test_a_config_read_back_from_json_is_the_same_run():
    """A record or a grid gives sequences as lists: `optim.betas: [0.9, 0.95]` is the tuple the config holds, so
    the config read back from its JSON record equals (and hashes as) the one that ran."""
    cfg = PretrainConfig.from_dict({"manifest": "m", "optim": {"name": "adamw", "betas": [0.9, 0.95]},
                                    "head": [64, 32]})
    assert cfg.optim.betas == (0.9, 0.95)
    again = PretrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and hash(again.optim) == hash(cfg.optim)


def test_a_method_added_leaves_the_other_methods_records_as_they_were(register_method):
    """A run records its own method's settings only: a new method with settings of its own (one new file) changed the
    recorded config, and so the protocol fingerprint, of every run of every other method (its seeds then no longer
    averaged with earlier ones'), and a change of MoCo's settings changed a SimCLR run's."""
    simclr = PretrainConfig.from_dict({"manifest": "m", "moco": {"queue_size": 8}})
    before = simclr.to_dict()
    assert not {"moco", "byol"} & set(before)
    assert PretrainConfig.from_dict({"manifest": "m", "method": "moco"}).to_dict()["moco"]["queue_size"] == 65536
    register_method("example")
    assert PretrainConfig.from_dict({"manifest": "m", "moco": {"queue_size": 8}}).to_dict() == before
    example = PretrainConfig.from_dict({"manifest": "m", "method": "example", "example": {"scale": 3.0}})
    assert example.to_dict()["example"] == {"scale": 3.0} and "moco" not in example.to_dict()
    assert PretrainConfig.from_dict(example.to_dict()) == example


def test_a_run_records_only_the_method_settings_its_method_reads():
    """A supervised, BYOL or MoCo run's record (to_dict, and so its fingerprint) leaves out SimCLR's head and the
    temperature where its method has none (UNREAD_SETTINGS), and reads back as the same run; SimCLR's keeps both."""
    given = {"manifest": "m", "temperature": 0.3, "head": [16, 8], "head_output_bn": True}
    for method, recorded in (("simclr", {"temperature", "head", "head_output_bn"}), ("moco", {"temperature"}),
                             ("byol", set()), ("supervised", set())):
        cfg = PretrainConfig.from_dict({**given, "method": method})
        assert set(METHOD_READ_SETTINGS) & set(cfg.to_dict()) == recorded, method
        assert PretrainConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


def test_a_methods_own_setting_written_at_the_top_of_pretrain_names_its_section():
    """`queue_size: 1024` beside `batch_size` was refused with "did you mean 'image_size'?": the error names the
    section it belongs in (both, for a key two methods have; and the optimizer's, for `momentum` or `lr`); method
    supervised, which every fine-tune runs, reads no method's section: only the optimizer's is named."""
    def error(**d):
        with pytest.raises(StudyError) as e:
            PretrainConfig.from_dict({"manifest": "m", "method": "moco", **d})
        return str(e.value)

    assert error(queue_size=1024) == ("pretrain: unknown key(s) 'queue_size': a setting of a method's own section: "
                                      "give it as pretrain.moco.queue_size")
    assert error(tau_base=0.99) == ("pretrain: unknown key(s) 'tau_base': a setting of a method's own section: give "
                                    "it as pretrain.byol.tau_base")
    owners = sorted(m for m, settings in method_settings().items() if "dim" in settings.__dataclass_fields__)
    assert {"byol", "moco"} <= set(owners)  # every method with a `dim`, a fifth one's too, in name order
    assert error(dim=16).endswith("give it as " + " or ".join(f"pretrain.{m}.dim" for m in owners))
    assert error(momentum=0.99).endswith("give it as pretrain.moco.momentum or pretrain.optim.momentum")
    assert error(lr=0.1) == ("pretrain: unknown key(s) 'lr': a setting of the optimizer: give it as "
                             "pretrain.optim.lr")
    assert error(method="supervised", momentum=0.9).endswith(": a setting of the optimizer: give it as "
                                                             "pretrain.optim.momentum")  # reads no method section
    assert "did you mean 'steps'?" in error(step=3)  # a key of no method's settings: as before


def test_a_method_with_settings_named_as_a_config_field_is_refused(register_method):
    """`pretrain.head` would be both the projection head and the method's settings: every config setting `head`
    failed ("expected a mapping"), whatever its method."""
    register_method("head")
    with pytest.raises(StudyError, match=r"method\(s\) head \(test_config\) have settings under a name "
                                         r"PretrainConfig uses"):
        PretrainConfig.from_dict({"manifest": "m", "head": [16, 8]})


def test_a_method_class_with_an_unknown_augment_preset_is_named_not_the_grid():
    """A method's `augment_preset` is its file's, not the grid's: an unknown one names the class (a grid's own
    `pretrain.augment.preset` still overrides it, and its errors name the grid's key)."""
    class BadPreset(SimCLR):
        augment_preset = "simclrr"

    METHODS.register("bad_preset")(BadPreset)
    try:
        with pytest.raises(StudyError, match=r"^test_config\.BadPreset\.augment_preset: 'simclrr' is no augmentation "
                                             r"preset \(known: simclr, "):
            PretrainConfig.from_dict({"manifest": "m", "method": "bad_preset"}).validate()
        given = PretrainConfig.from_dict({"manifest": "m", "method": "bad_preset", "augment": {"preset": "byol"}})
        given.validate()
        assert given.augment_config().preset == "byol"
    finally:
        METHODS.unregister("bad_preset")


def test_a_method_class_with_an_unknown_optim_key_is_named_not_the_grid():
    """A method's `optim` recipe is its file's: a typo in it was reported as the grid's `pretrain.optim` (a key the
    grid does not hold), and not at all where the grid named another optimizer (the recipe then unused)."""
    class BadRecipe(SimCLR):
        optim = {"name": "sgd", "lrr": 0.05}

    METHODS.register("bad_recipe")(BadRecipe)
    try:
        for optim in ({}, {"name": "lars"}):
            with pytest.raises(StudyError, match=r"^test_config\.BadRecipe\.optim: unknown key\(s\) 'lrr' \(did you "
                                                 r"mean 'lr'\?\) .*; fix the method's class \(its optimizer recipe\)$"):
                PretrainConfig.from_dict({"manifest": "m", "method": "bad_recipe", "optim": optim})
    finally:
        METHODS.unregister("bad_recipe")
    assert PretrainConfig.from_dict({"manifest": "m", "method": "moco"}).optim.name == "sgd"  # a good recipe reads


@dataclass
class _Mutable:
    scale: float = 2.0


class _Plain:
    scale = 2.0


@dataclass(frozen=True)
class _Bare:
    dim: int
    hidden: int = 8


@pytest.mark.parametrize("settings, message", [
    (_Mutable, r"its settings _Mutable must be a frozen dataclass \(@dataclass\(frozen=True\)\)$"),
    (_Plain, r"its settings _Plain must be a frozen dataclass \(@dataclass\(frozen=True\)\)$"),
    (_Bare, r"its settings _Bare give no default for dim \(a grid need not set pretrain\.loose: every field needs "
            r"one\)$"),
], ids=["not-frozen", "no-dataclass", "field-without-default"])
def test_a_methods_settings_must_be_a_frozen_dataclass_of_defaults(settings, message):
    """A method's settings are validated once when a grid is read, then trusted: a class whose values could change
    afterwards (not frozen, or no dataclass) is refused, naming the method; so is a field without a default (every
    config builds every method's settings: a grid of other methods reads their defaults; it was a TypeError naming
    neither the method nor the field)."""
    METHODS.register("loose")(type("Loose", (SimCLR,), {"settings": settings}))
    try:
        with pytest.raises(StudyError, match=r"^method 'loose' \(test_config\.Loose\): " + message):
            PretrainConfig.from_dict({"manifest": "m"})
    finally:
        METHODS.unregister("loose")
    assert PretrainConfig.from_dict({"manifest": "m"}).method == "simclr"


def test_the_untrained_methods_that_planning_names_without_torch_are_those_the_registry_says_train_nothing():
    """`study plan` and `study status` tell a method that trains nothing by UNTRAINED_METHODS (no torch import); the
    registry says it by each method's `trains`: a method added to one and not the other would be priced, capped and
    warned of as the other kind."""
    from study.train.config import UNTRAINED_METHODS

    assert set(UNTRAINED_METHODS) == {name for name in METHODS.names() if not METHODS.get(name).trains}
