"""`PretrainConfig`: every setting of a pretraining (or fine-tuning) run, validated once by `from_dict`.

Each default says where it comes from: "SimCLR" = the public SimCLR recipe (Chen et al. 2020, see
docs/protocol.md), "MoCo v2" / "BYOL" = those papers' public recipes, "paper" = Cole et al. state it,
"ours" = the paper leaves it unstated and this is our choice.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from study.configfields import (build, check_known, count_or_none, device_name, is_int, is_num, mapping_or_none,
                                nested, positive_int, positive_num_or_none, refuse_unknown, seed_int)
from study.errors import StudyError
from study.runtime_keys import PRETRAIN_RUN_ONLY


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule (linear warmup, then cosine decay to `final_lr_fraction` x peak)."""

    name: str = "lars"  # SimCLR: LARS
    lr: float | None = None  # base lr; None = BASE_LR[lr_scaling], resolved at construction (so recorded as run)
    lr_scaling: str = "linear"  # SimCLR: base lr x batch/256; "sqrt": base lr x sqrt(batch)
    warmup_epochs: float = 10.0  # SimCLR: 10 epochs of linear warmup
    final_lr_fraction: float = 0.0  # SimCLR: cosine decay to 0
    weight_decay: float = 1e-6  # SimCLR: 1e-6
    momentum: float = 0.9  # SimCLR: 0.9 (LARS and SGD)
    trust_coefficient: float = 0.001  # SimCLR: LARS eta 0.001
    betas: tuple[float, float] = (0.9, 0.999)  # ours (AdamW only): torch defaults
    exclude_bias_and_norm: bool = True  # SimCLR: no weight decay / LARS adaptation on biases and norm params

    def __post_init__(self) -> None:
        if self.lr is None and self.lr_scaling in BASE_LR:  # else validate() names lr_scaling
            object.__setattr__(self, "lr", BASE_LR[self.lr_scaling])


OPTIM_FIELDS = frozenset(f.name for f in dataclasses.fields(OptimConfig))

# SimCLR (Chen et al. 2020, appendix B.1): base lr 0.3 x batch/256, or 0.075 x sqrt(batch) (4.8 at 4096 either way)
BASE_LR = {"linear": 0.3, "sqrt": 0.075}


def _check_method_preset(method_class: type, preset: Any) -> None:
    """StudyError naming the method's class (not the grid) where its `augment_preset` is no augmentation preset."""
    from study.train.augment.config import PRESETS

    if preset not in PRESETS:
        raise StudyError(f"{method_class.__module__}.{method_class.__name__}.augment_preset: {preset!r} is no "
                         f"augmentation preset (known: {', '.join(PRESETS)}); fix the method's class (a grid's "
                         "pretrain.augment.preset overrides it)")


def _with_method_recipe(d: dict[str, Any], where: str) -> dict[str, Any]:
    """`d` with its method's `optim` recipe (study.train.methods) under the `optim` keys it sets itself. A recipe is
    one optimizer's: where `optim.name` names another, none of it applies (OptimConfig's defaults fill the rest).
    A recipe's `lr` is a base lr for the linear rule: with `lr_scaling: sqrt` and no `lr` given, a StudyError."""
    from study.train.methods import METHODS

    method = d.get("method", "simclr")
    recipe = METHODS.get(method).optim if isinstance(method, str) and method in METHODS else {}
    if recipe:  # the class's own mistake, named as such: under the grid's `pretrain.optim` it sent its author there
        cls = METHODS.get(method)
        try:
            check_known(OptimConfig, recipe, f"{cls.__module__}.{cls.__name__}.optim")
        except StudyError as e:
            raise StudyError(f"{e}; fix the method's class (its optimizer recipe)") from None
    given = d.get("optim")
    if not recipe or not (given is None or isinstance(given, dict)):  # else `nested` names the value
        return d
    given = {k: v for k, v in (given or {}).items() if v is not None}  # `lr: null` gives no lr: the recipe's holds
    if "name" in given and given["name"] != recipe.get("name"):
        return d
    merged = {**recipe, **given}
    scaling = merged.get("lr_scaling", "linear")  # one BASE_LR does not know: left to validate(), which names it
    if "lr" in recipe and given.get("lr") is None and scaling != "linear" and scaling in BASE_LR:
        raise StudyError(f"{where}.optim.lr: method {method}'s recipe gives its base lr for the linear rule "
                         f"({recipe['lr']} x batch/256), not for lr_scaling {merged['lr_scaling']!r}; set optim.lr")
    return {**d, "optim": merged}


def _head(v: Any, where: str) -> tuple[int, ...]:
    if not isinstance(v, (list, tuple)) or not v or not all(is_int(x) and x > 0 for x in v):
        raise StudyError(f"{where}: expected a list of positive integers, got {v!r}")
    return tuple(int(x) for x in v)


PARSERS = {  # PretrainConfig fields that need more than the value as given
    "optim": lambda v, where: nested(OptimConfig, v, where),
    "head": _head,
    "augment": mapping_or_none,
}


# the registered methods that train nothing (Method.trains False: `random` builds its encoder, `pretrained` reads
# one), named without their registry, which imports torch: `study status` plans a grid (study.grids.jobs) and the
# report tells them apart without it; tests/report/test_figures.py keeps this equal to the registry's
UNTRAINED_METHODS = ("random", "pretrained")

# the settings every pretraining section may hold that only some methods read: a contrastive loss's temperature,
# SimCLR's projection head
METHOD_READ_SETTINGS = ("temperature", "head", "head_output_bn")
# the settings only a run that trains reads: its schedule, optimizer, augmentation and arithmetic (a method that
# trains nothing, UNTRAINED_METHODS, writes its encoder whatever they say)
TRAINING_SETTINGS = ("epochs", "steps", "batch_size", "optim", "augment", "image_size", "precision", "channels_last",
                     "sync_bn")
# of those, the ones each registered method never reads, named without the registry (torch) so that `study plan`
# and `study status` leave them out of the method's job ids, and a run out of its record and checkpoint fingerprint:
# a grid's SimCLR temperature changed reruns no supervised job, its learning rate no random-init encoder. A method
# not listed reads them all (its ids keep every value: a change reruns it, never a wrong reuse).
# tests/train/test_methods.py checks each listed setting changes nothing a run of its method computes.
UNREAD_SETTINGS: dict[str, tuple[str, ...]] = {
    "moco": ("head", "head_output_bn"),  # MoCo v2's head is its own section's (`moco.hidden`, `moco.dim`)
    **{m: METHOD_READ_SETTINGS for m in ("byol", "supervised")},
    **{m: (*METHOD_READ_SETTINGS, *TRAINING_SETTINGS) for m in UNTRAINED_METHODS},
}
# what a run's protocol (study.train.protocol.run_protocol) says of its training besides its config: a run that
# trains nothing records none of it, and the fingerprint rule leaves it out of the older records that hold it
# (study.results.record), so that a random-init encoder's results are one recipe whatever the grid's schedule
TRAINING_PROTOCOL_KEYS = ("steps", "steps_per_epoch", "epochs", "per_device_batch", "effective_batch", "optimizer",
                          "base_lr", "lr_scaling", "effective_lr", "warmup_steps", "final_lr_fraction", "weight_decay",
                          "momentum", "exclude_bias_and_norm", "trust_coefficient", "temperature", "precision", "tf32",
                          "channels_last", "sync_bn", "augmentation")


def unread_settings(method: object) -> tuple[str, ...]:
    """The settings of METHOD_READ_SETTINGS and TRAINING_SETTINGS that `method` (a name) never reads (UNREAD_SETTINGS);
    none for a method not listed."""
    return UNREAD_SETTINGS.get(method, ()) if isinstance(method, str) else ()


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining or fine-tuning run. See docs/protocol.md for the table of defaults and their sources."""

    manifest: str = ""  # required: manifest name (study.manifests.load_manifest)
    method: str = "simclr"  # paper: SimCLR is the main method
    backbone: str = "resnet50"  # paper: ResNet-50 throughout
    width: int = 64  # ours: base channels (64 = torchvision's ResNet); smaller gives a thin ResNet for CPU runs
    size: int | None = None  # pretraining images (manifest.subset(size) / labeled(size)); None = every row
    subset: str = "pretrain"  # "pretrain": manifest.subset(size); "labeled": manifest.labeled(size) (fine-tuning)
    init_encoder: str | None = None  # encoder.pt to start from (fine-tuning); None = random init
    seed: int = 0  # ours
    epochs: float = 1000.0  # paper (secondary note, unconfirmed): 1000 epochs for every subset size
    steps: int | None = None  # a step budget; when set it replaces `epochs`
    batch_size: int = 4096  # SimCLR: 4096; the effective (global) batch, split over devices
    temperature: float | None = None  # None = the method's `default_temperature`; unused by BYOL and supervised
    head: tuple[int, ...] = (2048, 128)  # SimCLR: projection head feature-2048-128 (2048-2048-128 on ResNet-50), BN
    head_output_bn: bool = False  # SimCLR v1 paper: plain linear output; true = SimCLR's code's (v1, v2) output BN
    optim: OptimConfig = field(default_factory=OptimConfig)
    # each method's own settings (study.train.methods: `Method.settings`), given as `pretrain.<method>` (`moco`,
    # `byol`); every method that has some gets its defaults here, a run records its own method's (`to_dict`)
    method_settings: dict[str, Any] = field(default_factory=dict)
    augment: dict | None = None  # study.train.augment.AugmentConfig fields; None = the method's preset
    image_size: int = 224  # SimCLR: 224 px crops (used when `augment` does not give image_size)
    num_workers: int | None = None  # None = auto: min(8, cpus - 1) loader processes
    device: str = "auto"  # "auto" = cuda when available, else cpu
    precision: str = "auto"  # "auto" = bf16 autocast on cuda, fp32 on cpu; or "bf16" | "fp32"
    channels_last: bool = True  # used on cuda only (see docs/protocol.md)
    # SimCLR: global batch norm across devices, applied to every method: with several GPUs each BatchNorm layer of
    # the whole model (encoders, heads, MoCo's key encoder, BYOL's target) becomes SyncBatchNorm; false = per-device
    # statistics. One device or CPU processes: plain BN (recorded false). MoCo v2's shuffle BN is not implemented.
    sync_bn: bool = True
    checkpoint_every_steps: int | None = None  # ours: None = only by time and at signals / the end
    checkpoint_every_minutes: float | None = 10.0  # ours
    log_every_steps: int = 50  # ours: a progress line on stderr

    # settings that do not change what is computed: a checkpoint may be resumed with other values
    RUNTIME_KEYS = (*PRETRAIN_RUN_ONLY, "device")

    def __post_init__(self) -> None:
        from study.train.methods import method_settings

        given = self.method_settings
        object.__setattr__(self, "method_settings", {name: given.get(name) or settings()
                                                     for name, settings in method_settings().items()})

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "pretrain") -> "PretrainConfig":
        from study.train.methods import METHODS, method_settings

        if not isinstance(d, dict):
            raise StudyError(f"{where}: expected a mapping, got {type(d).__name__}")
        sections = method_settings()
        fields = {f.name for f in dataclasses.fields(cls)} - {"method_settings"}
        for name in d:
            if name in METHODS and name not in sections:
                raise StudyError(f"{where}.{name}: method {name!r} has no settings section of its own (its class "
                                 f"declares no `settings`): give its values as {where}'s own keys "
                                 f"({where}.temperature, {where}.head, ...)")
        pointed = {} if d.get("method") == "supervised" else sections  # supervised (every fine-tune) reads none
        for name in sorted(set(d) - fields - set(sections), key=str):  # a nested setting one level too high
            owners = [m for m, settings in pointed.items() if name in {f.name for f in dataclasses.fields(settings)}]
            places = [f"{where}.{m}.{name}" for m in owners] + ([f"{where}.optim.{name}"] if name in OPTIM_FIELDS
                                                                 else [])
            if places:
                raise StudyError(f"{where}: unknown key(s) {name!r}: a setting of "
                                 + ("a method's own section" if owners else "the optimizer")
                                 + f": give it as {' or '.join(places)}")
        refuse_unknown(d, fields | set(sections), where)
        own = {}
        for name, settings in sections.items():
            if name in d:
                own[name] = nested(settings, d[name], f"{where}.{name}")
                if hasattr(own[name], "validate"):
                    own[name].validate(f"{where}.{name}")
        rest = {k: v for k, v in d.items() if k not in sections}
        rest = _with_method_recipe(rest, where)
        return build(cls, {**rest, "method_settings": own}, where, PARSERS)

    def validate(self, where: str = "pretrain") -> None:
        """Raise StudyError naming the first invalid key."""
        from study.train.backbones import BACKBONES
        from study.train.methods import METHODS

        def bad(key: str, why: str) -> StudyError:
            return StudyError(f"{where}.{key}: {why}")

        if not isinstance(self.manifest, str) or not self.manifest:
            raise bad("manifest", "a manifest name is required")
        if self.method not in METHODS:
            raise StudyError(METHODS.unknown_message(self.method, f"{where}.method"))
        if self.backbone not in BACKBONES:
            raise StudyError(BACKBONES.unknown_message(self.backbone, f"{where}.backbone"))
        positive_int(self.width, f"{where}.width")
        if self.size is not None:
            positive_int(self.size, f"{where}.size")
        if self.subset not in ("pretrain", "labeled"):
            raise bad("subset", f"expected 'pretrain' or 'labeled', got {self.subset!r}")
        if self.init_encoder is not None and not isinstance(self.init_encoder, str):
            raise bad("init_encoder", f"expected a path or null, got {self.init_encoder!r}")
        lacking = METHODS.get(self.method).config_error(self)
        if lacking:
            raise StudyError(f"{where}.{lacking}")
        seed_int(self.seed, f"{where}.seed")
        if not is_num(self.epochs) or self.epochs < 0:
            raise bad("epochs", f"expected a number >= 0, got {self.epochs!r}")
        count_or_none(self.steps, f"{where}.steps")
        if METHODS.get(self.method).trains:  # no step would run: an untrained encoder labelled with the method
            if self.steps == 0:
                raise bad("steps", f"method {self.method} trains: expected a positive integer or null, got 0")
            if self.steps is None and self.epochs == 0:
                raise bad("epochs", f"method {self.method} trains: expected a number > 0, got 0 (and no steps)")
        positive_int(self.batch_size, f"{where}.batch_size")
        if self.batch_size < METHODS.get(self.method).min_batch_size:
            raise bad("batch_size", f"method {self.method} needs a batch of at least "
                                    f"{METHODS.get(self.method).min_batch_size} images, got {self.batch_size}")
        if self.temperature is not None and (not is_num(self.temperature) or self.temperature <= 0):
            raise bad("temperature", f"expected a number > 0, got {self.temperature!r}")
        count_or_none(self.num_workers, f"{where}.num_workers")
        device_name(self.device, f"{where}.device")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise bad("precision", f"expected 'auto', 'bf16' or 'fp32', got {self.precision!r}")
        for key in ("channels_last", "sync_bn", "head_output_bn"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, f"expected true or false, got {getattr(self, key)!r}")
        positive_int(self.image_size, f"{where}.image_size")
        if self.checkpoint_every_steps is not None:
            positive_int(self.checkpoint_every_steps, f"{where}.checkpoint_every_steps")
        positive_num_or_none(self.checkpoint_every_minutes, f"{where}.checkpoint_every_minutes")
        positive_int(self.log_every_steps, f"{where}.log_every_steps")
        o = self.optim
        if o.name not in ("lars", "sgd", "adamw"):
            raise bad("optim.name", f"expected 'lars', 'sgd' or 'adamw', got {o.name!r}")
        if o.lr_scaling not in ("linear", "sqrt"):
            raise bad("optim.lr_scaling", f"expected 'linear' or 'sqrt', got {o.lr_scaling!r}")
        trained = self.method not in UNTRAINED_METHODS
        for key in ("lr", "warmup_epochs", "final_lr_fraction", "weight_decay", "momentum", "trust_coefficient"):
            v = getattr(o, key)
            if not is_num(v) or v < 0:
                floor = "> 0" if key == "lr" and trained else ">= 0"  # 0 is refused below: not the bound to name
                raise bad(f"optim.{key}", f"expected a number {floor}, got {v!r}")
        if o.lr == 0 and trained:  # a fine-tune would score its untrained classifier
            raise bad("optim.lr", "expected a number > 0, got 0: the run's steps would move no weight")
        if o.momentum >= 1:  # a momentum of 1 or more never forgets a gradient: the steps grow without bound
            raise bad("optim.momentum", f"expected a number in [0, 1), got {o.momentum!r}")
        if o.final_lr_fraction > 1:  # the cosine would rise from the peak instead of decaying
            raise bad("optim.final_lr_fraction", f"expected a number in [0, 1], got {o.final_lr_fraction!r}")
        if not isinstance(o.betas, (tuple, list)) or len(o.betas) != 2 or not all(is_num(b) and 0 <= b < 1
                                                                                    for b in o.betas):
            raise bad("optim.betas", f"expected two numbers in [0, 1), got {o.betas!r}")
        self.augment_config(where)  # validates the nested augmentation settings

    # ------------------------------------------------------------------ derived values
    def method_class(self):
        """The registered Method class of `method` (its augmentation preset, its default temperature)."""
        from study.train.methods import METHODS

        return METHODS.get(self.method, "pretrain.method")

    def augment_dict(self) -> dict:
        """The augmentation settings handed to AugmentConfig: the method's preset unless `augment` names one."""
        d = dict(self.augment or {})
        if "preset" not in d:
            method_class = self.method_class()
            d["preset"] = method_class.augment_preset
            _check_method_preset(method_class, d["preset"])
        d.setdefault("image_size", self.image_size)
        return d

    def augment_config(self, where: str = "pretrain"):
        """The validated AugmentConfig of `augment_dict`; errors name `<where>.augment.<key>`."""
        from study.train.augment import AugmentConfig

        return AugmentConfig.from_dict(self.augment_dict(), where=f"{where}.augment")

    def effective_temperature(self) -> float | None:
        """The contrastive loss's temperature: `temperature`, else the method's (SimCLR 0.1, MoCo v2 0.2); None for
        a method without one (BYOL, supervised, random), whatever `temperature` says, so that a result never
        records a value that did not run."""
        default = self.method_class().default_temperature
        if default is None:
            return None
        return float(self.temperature) if self.temperature is not None else default

    def to_dict(self) -> dict:
        """Every setting as plain values, keyed as a grid gives them; of the methods' own settings, only this run's
        method's (under its name), and none its method never reads (UNREAD_SETTINGS): a method added, another
        method's settings or SimCLR's temperature changed, leaves the record, and so the protocol fingerprint, of this
        run as it was."""
        d = dataclasses.asdict(self)
        own = d.pop("method_settings")
        if self.method in own:
            d[self.method] = own[self.method]
        for key in unread_settings(self.method):
            del d[key]
        return d

    def fingerprint_dict(self) -> dict:
        """The settings that decide what is computed (a checkpoint from other values is refused)."""
        d = self.to_dict()
        for k in self.RUNTIME_KEYS:
            d.pop(k, None)
        return d

    @classmethod
    def default_fingerprint(cls) -> dict:
        """`fingerprint_dict` of the defaults (`manifest` has none: its absence never matches)."""
        return {k: v for k, v in cls(manifest="").fingerprint_dict().items() if k != "manifest"}
