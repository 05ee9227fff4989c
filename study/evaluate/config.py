"""`EvalConfig`: every setting of an evaluation job, validated once by `from_dict` (StudyError naming the key).

Defaults say where they come from: "SimCLR" = the public SimCLR recipe, "paper" = Cole et al., "ours" = unstated
there, our choice (docs/protocol-evaluation.md, "Evaluation settings").
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from study.configfields import (build, count_or_none, device_name, is_int, is_num, mapping_or_none, nested, plain,
                                positive_int, positive_num_or_none, seed_int)
from study.counts import EXAMPLES, parse_labeled_size
from study.errors import StudyError
from study.evaluate.protocols import PROTOCOLS, protocol, unread_keys
from study.results.record import probe_settings_read

FEATURE_LAYERS = ("pooled", "layer1", "layer2", "layer3", "layer4")
PROBE_OPTIMIZERS = ("lbfgs", "adam", "sgd")
FINETUNE_SET = ("manifest", "method", "subset", "size", "init_encoder")  # of a fine-tune's run: the evaluation sets


@dataclass(frozen=True)
class LinearConfig:
    """The linear probe: multinomial logistic regression on (standardized) frozen features.

    Loss = mean cross-entropy + weight_decay * ||W||^2 (bias not penalised). The weight decay is chosen from
    `weight_decays` by top-1 (ties: cross-entropy) on a class-stratified held-out `val_fraction` of the labeled
    subset, fitting the grid from the strongest penalty down, each fit warm-started from the previous one; then the
    probe is refit on the whole subset, warm-started from the chosen value's solution. With these iteration caps the
    probes of six labeled sizes cost about 0.06 of the feature extraction at 1000 classes on a CPU, 0.11 on an H200
    (where the extraction is fast), and more with more classes (benchmarks/README.md); with `tf32` on an H200, 0.10
    at 1000 classes and 0.15 at 10,000 (0.55 without). `tf32` is left out of the protocol fingerprint, as the
    extraction's TF32 switches are: a precision of the arithmetic, not a setting of the recipe."""

    standardize: bool = True  # ours: z-score with the mean and std of the rows each fit trains on
    optimizer: str = "lbfgs"  # ours: full-batch L-BFGS (strong Wolfe); "adam"/"sgd": mini-batches of batch_size
    weight_decays: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # ours: a log grid
    val_fraction: float = 0.2  # ours
    select_iter: int = 20  # ours: L-BFGS iterations per grid value on the held-out split (warm-started path)
    max_iter: int = 30  # ours: L-BFGS iterations of the final fit, warm-started from the selected path solution
    cold_iter: int = 100  # ours: L-BFGS iterations of a fit from zeros (a single weight decay, nothing held out)
    epochs: int = 90  # SimCLR: 90 epochs of linear evaluation (adam/sgd only)
    lr: float = 0.1  # adam/sgd only (cosine decay; sgd: momentum 0.9)
    batch_size: int = 1024  # adam/sgd only
    tolerance: float = 1e-6  # ours: L-BFGS tolerance_change
    tolerance_grad: float = 1e-7  # ours (torch's default): L-BFGS stops once no gradient entry exceeds this
    history_size: int = 20  # ours: L-BFGS curvature pairs kept (torch's default 100)
    tf32: bool = False  # ours: on a CUDA device the fits' float32 matmuls run as TF32 (no effect on a CPU)

    def recorded_dict(self) -> dict:
        """Every setting but those the chosen optimizer never reads (PROBE_KEYS_UNREAD: L-BFGS reads no epochs, lr or
        batch size; adam/sgd no iteration caps, tolerances or history), so that they change no protocol fingerprint."""
        return probe_settings_read(plain(dataclasses.asdict(self)))


@dataclass(frozen=True)
class KnnConfig:
    """Weighted kNN on L2-normalised features (Wu et al. 2018): cosine similarity, vote weight exp(sim / T)."""

    k: int = 200  # Wu et al. 2018 / common SSL practice
    temperature: float = 0.07  # Wu et al. 2018


def _point_run_settings(d: dict[str, Any], where: str) -> None:
    """A fine-tuning or scratch run's own setting written one level too high, beside `finetune:` (`steps`, `optim`,
    `lr`): StudyError naming where it goes, `finetune.<key>` (an optimizer's: `finetune.optim.<key>`), as
    PretrainConfig.from_dict points a nested setting; not those the run never reads or the evaluation sets."""
    from study.train.config import OPTIM_FIELDS, PretrainConfig, unread_settings

    name = d.get("protocol", EvalConfig.protocol)
    if not isinstance(name, str) or name not in PROTOCOLS or not protocol(name).trains:
        return
    known = {f.name for f in dataclasses.fields(EvalConfig)}
    run = ({f.name for f in dataclasses.fields(PretrainConfig)} - {"method_settings", *FINETUNE_SET}
           - set(unread_settings("supervised")))
    for key in sorted(set(d) - known, key=str):
        place = "finetune" if key in run else "finetune.optim" if key in OPTIM_FIELDS else None
        if place:
            raise StudyError(f"{where}: unknown key(s) {key!r}: a setting of the {name} run's training: give it as "
                             f"{where}.{place}.{key} (in a grid entry: params.{place}.{key})")


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation job; see docs/protocol-evaluation.md, section "Evaluation settings"."""

    protocol: str = "linear"
    train_manifest: str = ""  # required: labeled subsets come from train_manifest.labeled(n)
    test_manifest: str = ""  # required: every row is scored
    labeled_sizes: tuple[Any, ...] = ("all",)  # ints, or "all" (every row of the train manifest)
    levels: tuple[str, ...] | None = None  # granularity: taxonomy columns coarse -> fine; None = manifest.levels
    per_level: bool = False  # granularity: one classifier per level instead of mapping the finest one up
    feature_layer: str = "pooled"  # SimCLR: the pooled penultimate layer; or layerN (its global average pool)
    image_size: int = 224  # SimCLR: 224 px (when `augment` does not give image_size)
    augment: dict | None = None  # eval transform: study.train.augment fields over the "eval" preset
    batch_size: int = 256  # feature extraction batch
    num_workers: int | None = None  # None = auto: min(8, cpus - 1)
    checkpoint_every_minutes: float | None = 10.0  # ours: an extraction saves the rows done (and at SIGUSR2/SIGTERM)
    device: str = "auto"  # "auto" = cuda when available
    seed: int = 0  # held-out split, mini-batch probe order (probes start from zeros), fine-tuning
    linear: LinearConfig = field(default_factory=LinearConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    also_knn: bool = False  # linear/granularity/concat: add knn_top1 rows from the same features
    finetune: dict | None = None  # finetune/scratch: PretrainConfig fields (method supervised, subset labeled set here)
    epochs: float | None = None  # finetune/scratch: epochs over the labeled subset (overrides finetune.epochs)
    backbone: str | None = None  # scratch: the architecture (finetune: the encoder's own)
    width: int | None = None  # scratch: base width (finetune: the encoder's own); None = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "evaluate") -> "EvalConfig":
        if isinstance(d, EvalConfig):
            return d
        if isinstance(d, dict):
            _point_run_settings(d, where)
        return build(cls, d, where, PARSERS)

    def validate(self, where: str = "evaluate") -> None:
        def bad(key: str, why: str) -> StudyError:
            return StudyError(f"{where}.{key}: {why}")

        if self.protocol not in PROTOCOLS:
            raise bad("protocol", f"unknown {self.protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        for key in ("train_manifest", "test_manifest"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise bad(key, "a manifest name is required")
        if self.feature_layer not in FEATURE_LAYERS:
            raise bad("feature_layer", f"expected one of {', '.join(FEATURE_LAYERS)}, got {self.feature_layer!r}")
        for key in ("per_level", "also_knn"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, f"expected true or false, got {getattr(self, key)!r}")
        positive_int(self.image_size, f"{where}.image_size")
        positive_int(self.batch_size, f"{where}.batch_size")
        count_or_none(self.num_workers, f"{where}.num_workers")
        positive_num_or_none(self.checkpoint_every_minutes, f"{where}.checkpoint_every_minutes")
        device_name(self.device, f"{where}.device")
        seed_int(self.seed, f"{where}.seed")
        lin = self.linear
        if lin.optimizer not in PROBE_OPTIMIZERS:
            raise bad("linear.optimizer", f"expected one of {', '.join(PROBE_OPTIMIZERS)}, got {lin.optimizer!r}")
        for key in ("standardize", "tf32"):
            if not isinstance(getattr(lin, key), bool):
                raise bad(f"linear.{key}", f"expected true or false, got {getattr(lin, key)!r}")
        wds = lin.weight_decays
        if not isinstance(wds, (list, tuple)) or not wds or not all(is_num(w) and w >= 0 for w in wds):
            raise bad("linear.weight_decays", f"expected a non-empty list of numbers >= 0, got {wds!r}")
        object.__setattr__(lin, "weight_decays", tuple(float(w) for w in wds))
        if not is_num(lin.val_fraction) or not 0 <= lin.val_fraction < 1:
            raise bad("linear.val_fraction", f"expected a number in [0, 1), got {lin.val_fraction!r}")
        if len(wds) > 1 and lin.val_fraction == 0:
            raise bad("linear.val_fraction", "must be > 0 to choose among several weight_decays")
        for key in ("select_iter", "max_iter", "cold_iter", "history_size", "epochs", "batch_size"):
            positive_int(getattr(lin, key), f"{where}.linear.{key}")
        for key in ("lr", "tolerance", "tolerance_grad"):
            if not is_num(getattr(lin, key)) or getattr(lin, key) <= 0:
                raise bad(f"linear.{key}", f"expected a number > 0, got {getattr(lin, key)!r}")
        positive_int(self.knn.k, f"{where}.knn.k")
        if not is_num(self.knn.temperature) or self.knn.temperature <= 0:
            raise bad("knn.temperature", f"expected a number > 0, got {self.knn.temperature!r}")
        positive_num_or_none(self.epochs, f"{where}.epochs")
        if self.backbone is not None:
            from study.train.backbones import BACKBONES

            if self.backbone not in BACKBONES:
                raise StudyError(BACKBONES.unknown_message(self.backbone, f"{where}.backbone"))
        if self.width is not None:
            positive_int(self.width, f"{where}.width")
        if self.finetune is not None:
            fixed = sorted(set(self.finetune) & set(FINETUNE_SET))
            if fixed:
                raise bad(f"finetune.{fixed[0]}", "is set by the evaluation; remove it")
        drawn = self.augment_config(where).random_settings()  # validates the transform
        if drawn:
            key, value = next(iter(drawn.items()))
            set_by = "" if key in (self.augment or {}) else f" (of preset {self.augment_dict()['preset']!r})"
            raise bad(f"augment.{key}", f"{value!r}{set_by} draws at random: the transform an evaluation extracts "
                      "and scores with must be deterministic (frozen features are extracted once and cached; a "
                      "fine-tune's training augmentation is finetune.augment)")
        if protocol(self.protocol).trains:  # the training run's settings, checked now, not in the job
            from study.evaluate.finetune import pretrain_dict
            from study.train.config import PretrainConfig

            PretrainConfig.from_dict(pretrain_dict(self, None, 1, None), where=f"{where}.finetune")

    # ------------------------------------------------------------------ derived values
    def augment_dict(self) -> dict:
        """The eval transform's settings: the `eval` preset at `image_size` unless `augment` says otherwise."""
        d = dict(self.augment or {})
        d.setdefault("preset", "eval")
        d.setdefault("image_size", self.image_size)
        return d

    def augment_config(self, where: str = "evaluate"):
        from study.train.augment import AugmentConfig

        return AugmentConfig.from_dict(self.augment_dict(), where=f"{where}.augment")

    def to_dict(self) -> dict:
        return plain(dataclasses.asdict(self))

    def recorded_dict(self) -> dict:
        """`to_dict()` without the keys this protocol reads nothing from, nor the linear-probe settings its optimizer
        never reads (a result records what shaped it: a granularity key on a linear job changes no number, so it does
        not change the protocol fingerprint)."""
        unused = unread_keys(self.protocol, self.also_knn)
        d = {k: v for k, v in self.to_dict().items() if k not in unused}
        if "linear" in d:
            d["linear"] = self.linear.recorded_dict()
        return d


def _levels(v: Any, where: str) -> tuple[str, ...] | None:
    from study.datasets.base import RESERVED  # a manifest's own columns

    if v is not None and (not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, str) and x for x in v)):
        raise StudyError(f"{where}: expected a list of taxonomy column names, got {v!r}")
    own = next((x for x in v or () if x in RESERVED), None)
    if own is not None:
        raise StudyError(f"{where}: {own!r} is a manifest column of its own, not a taxonomy level (the finest level, "
                         "the labels', is class_name)")
    twice = next((x for i, x in enumerate(v or ()) if x in v[:i]), None)
    if twice is not None:  # each level is scored once
        raise StudyError(f"{where}: {twice!r} is listed twice")
    return None if v is None else tuple(v)


def _sizes(v: Any, where: str) -> tuple:
    """Labeled sizes as grids write them (`1000`, `"1k"`, `"all"`), counts as ints."""
    if is_int(v) or isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v:
        raise StudyError(f"{where}: expected a list of counts ({EXAMPLES}) or 'all', got {v!r}")
    try:
        sizes = tuple(parse_labeled_size(x) for x in v)
    except ValueError as e:
        raise StudyError(f"{where}: {e}") from None
    twice = next((x for i, x in enumerate(sizes) if x in sizes[:i]), None)
    if twice is not None:  # `["1k", 1000]`: one subset scored twice
        raise StudyError(f"{where}: {twice} is listed twice")
    return sizes


PARSERS = {  # EvalConfig fields that need more than the value as given
    "linear": lambda v, where: nested(LinearConfig, v, where),
    "knn": lambda v, where: nested(KnnConfig, v, where),
    "labeled_sizes": _sizes,
    "levels": _levels,
    "augment": mapping_or_none,
    "finetune": mapping_or_none,
}
