"""`AugmentConfig`: every parameter of the augmentation, filled from a preset (simclr | byol | supervised | eval),
validated once by `from_dict` (StudyError naming the key), with the effective derived values as fields so that
`dataclasses.asdict(cfg)` is the full record for a result's protocol."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from study.configfields import is_num, plain, refuse_unknown
from study.errors import StudyError, did_you_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Per preset: the values that differ from the field defaults below (which are SimCLR's).
PRESETS: dict[str, dict[str, Any]] = {
    # SimCLR (Chen et al. 2020, appendix A): crop 0.08-1, flip, jitter 0.8s/0.8s/0.8s/0.2s p 0.8, gray 0.2, blur p 0.5
    "simclr": {"num_views": 2},
    # BYOL (Grill et al. 2020, table 6): jitter 0.4/0.4/0.2/0.1 p 0.8, gray 0.2, blur p 1.0 / 0.1, solarize p 0 / 0.2
    "byol": {"num_views": 2, "brightness": 0.4, "contrast": 0.4, "saturation": 0.2, "hue": 0.1,
             "blur_p": (1.0, 0.1), "solarize_p": (0.0, 0.2)},
    # the supervised baseline: random resized crop and flip only
    "supervised": {"num_views": 1, "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": (0.0,), "solarize_p": (0.0,)},
    # evaluation: resize the short side to image_size * resize_ratio, centre crop image_size
    "eval": {"num_views": 1, "crop": "center", "flip_p": 0.0, "jitter_p": 0.0, "grayscale_p": 0.0,
             "blur_p": (0.0,), "solarize_p": (0.0,)},
}
CROPS = ("random_resized", "center")
INTERPOLATIONS = ("bilinear", "bicubic")
PER_VIEW = ("blur_p", "solarize_p")


@dataclass(frozen=True)
class AugmentConfig:
    """The augmentation of one run. Defaults are SimCLR's at 224 px, except `interpolation`, `mean` and `std`,
    which are ours (torchvision's conventions, as MoCo v2's code); `preset` overrides some of them."""

    preset: str = "simclr"
    image_size: int = 224  # SimCLR: 224 px crops
    num_views: int = 2
    crop: str = "random_resized"  # "random_resized" (train) or "center" (eval)
    crop_scale: tuple[float, float] = (0.08, 1.0)  # SimCLR: area fraction of the crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # SimCLR: aspect ratio, drawn log-uniform
    resize_ratio: float = 256 / 224  # eval: short side resized to image_size * resize_ratio, then centre crop
    # ours: antialiased resize of the crop (PIL's, as torchvision's on PIL images); SimCLR's and BYOL's code resize
    # bicubic (`interpolation: bicubic`)
    interpolation: str = "bilinear"
    flip_p: float = 0.5
    jitter_strength: float = 1.0  # SimCLR's s: brightness/contrast/saturation/hue below are multiplied by it
    brightness: float = 0.8
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2
    jitter_p: float = 0.8  # colour jitter applied with this probability, its four parts in random order
    grayscale_p: float = 0.2
    blur_p: tuple[float, ...] = (0.5, 0.5)  # per view
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_fraction: float = 0.1  # kernel = 10% of the side, made odd: 2 * ((side * f) // 2) + 1
    solarize_p: tuple[float, ...] = (0.0, 0.0)  # per view (BYOL: 0 and 0.2)
    solarize_threshold: float = 0.5  # pixels >= threshold (in [0, 1]) are inverted
    # ours: torchvision's ImageNet normalisation (as MoCo v2's code); SimCLR's code feeds the network [0, 1] pixels
    # without it (`mean: [0, 0, 0], std: [1, 1, 1]`)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    jpeg_draft: bool = True  # decode JPEGs at 1/2, 1/4 or 1/8 scale when every crop still has >= image_size px
    # ---- derived, recorded for the protocol (not settable)
    blur_kernel: int = field(init=False)
    jitter_effective: tuple[float, float, float, float] = field(init=False)  # brightness, contrast, saturation, hue

    def __post_init__(self) -> None:
        object.__setattr__(self, "blur_kernel", blur_kernel_size(self.image_size, self.blur_kernel_fraction))
        s = self.jitter_strength
        object.__setattr__(self, "jitter_effective",
                           (self.brightness * s, self.contrast * s, self.saturation * s, self.hue * s))

    # ------------------------------------------------------------------ edges
    @classmethod
    def from_dict(cls, d: dict | None, where: str = "augment") -> "AugmentConfig":
        """A validated config: `preset` (default simclr) supplies the defaults, keys of `d` override them."""
        d = dict(d or {})
        settable = {f.name for f in dataclasses.fields(cls) if f.init}
        derived = {f.name for f in dataclasses.fields(cls) if not f.init}
        refuse_unknown({k: v for k, v in d.items() if k not in derived}, settable, where)
        preset = d.get("preset", "simclr")
        if not isinstance(preset, str) or preset not in PRESETS:  # a list is unhashable: no TypeError
            raise StudyError(f"{where}.preset: unknown {preset!r}{did_you_mean(preset, PRESETS)}; expected one of "
                             f"{sorted(PRESETS)}")
        values = {f.name: f.default for f in dataclasses.fields(cls) if f.init}
        values.update(PRESETS[preset])
        given = {k: v for k, v in d.items() if k in settable}
        values.update(given)
        values["preset"] = preset
        values = _validate(values, given, where)
        cfg = cls(**values)
        for k in sorted(set(d) & derived):  # a recorded protocol read back: derived values must agree
            if plain(d[k]) != plain(getattr(cfg, k)):
                raise StudyError(f"{where}.{k}: is derived ({getattr(cfg, k)!r} here), cannot be set to {d[k]!r}")
        return cfg

    def random_settings(self) -> dict[str, Any]:
        """The settings that make this transform draw at random ({key: value}; empty for a deterministic one, such as
        the `eval` preset's resize and centre crop)."""
        drawn = {"crop": self.crop != "center", "num_views": self.num_views > 1, "flip_p": self.flip_p > 0,
                 "jitter_p": self.jitter_p > 0 and any(self.jitter_effective), "grayscale_p": self.grayscale_p > 0,
                 "blur_p": any(self.blur_p) and self.blur_kernel > 1, "solarize_p": any(self.solarize_p)}
        return {k: plain(getattr(self, k)) for k, random in drawn.items() if random}

    def to_dict(self) -> dict:
        """Every effective parameter (plain JSON types), derived ones included."""
        return {k: plain(v) for k, v in dataclasses.asdict(self).items()}


def blur_kernel_size(image_size: int, fraction: float = 0.1) -> int:
    """SimCLR's kernel: `side * fraction` rounded down, made odd (224 -> 23, 32 -> 3, 28 -> 3, 16 -> 1)."""
    return 2 * (int(image_size * fraction) // 2) + 1


def _validate(v: dict, given: dict, where: str) -> dict:
    def bad(key: str, msg: str) -> StudyError:
        return StudyError(f"{where}.{key}: {msg}, got {v[key]!r}")

    for key in ("image_size", "num_views"):
        if not isinstance(v[key], int) or isinstance(v[key], bool) or v[key] < 1:
            raise bad(key, "expected a positive integer")
    if v["image_size"] < 8:
        raise bad("image_size", "expected at least 8 px")
    if v["crop"] not in CROPS:
        raise bad("crop", f"expected one of {list(CROPS)}")
    if v["interpolation"] not in INTERPOLATIONS:
        raise bad("interpolation", f"expected one of {list(INTERPOLATIONS)}")
    for key in ("flip_p", "jitter_p", "grayscale_p", "solarize_threshold"):
        if not is_num(v[key]) or not 0 <= v[key] <= 1:
            raise bad(key, "expected a number in [0, 1]")
    for key in ("jitter_strength", "brightness", "contrast", "saturation", "hue"):
        if not is_num(v[key]) or v[key] < 0:
            raise bad(key, "expected a number >= 0")
    if v["hue"] * v["jitter_strength"] > 0.5:
        raise bad("hue", "hue x jitter_strength must be <= 0.5")
    if not is_num(v["resize_ratio"]) or v["resize_ratio"] < 1:
        raise bad("resize_ratio", "expected a number >= 1")
    if not is_num(v["blur_kernel_fraction"]) or not 0 <= v["blur_kernel_fraction"] < 1:
        raise bad("blur_kernel_fraction", "expected a number in [0, 1)")
    if not isinstance(v["jpeg_draft"], bool):
        raise bad("jpeg_draft", "expected true or false")
    for key, lo, hi in (("crop_scale", 0, 1), ("crop_ratio", 0, math.inf), ("blur_sigma", 0, math.inf)):
        pair = v[key]
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(is_num(x) for x in pair)
                or not lo < pair[0] <= pair[1] <= hi):
            raise bad(key, f"expected [low, high] with {lo} < low <= high <= {hi}")
        v[key] = (float(pair[0]), float(pair[1]))
    for key in ("mean", "std"):
        t = v[key]
        if not isinstance(t, (list, tuple)) or len(t) != 3 or not all(is_num(x) for x in t):
            raise bad(key, "expected three numbers (R, G, B)")
        if key == "std" and min(t) <= 0:
            raise bad(key, "expected positive numbers")
        v[key] = tuple(float(x) for x in t)
    n = v["num_views"]
    for key in PER_VIEW:
        p = v[key]
        if is_num(p):
            p = (p,) * n
        if not isinstance(p, (list, tuple)) or not all(is_num(x) and 0 <= x <= 1 for x in p):
            raise bad(key, "expected a probability or one probability per view")
        p = tuple(float(x) for x in p)
        if len(p) != n:
            if key not in given and len(set(p)) == 1:  # a preset's uniform value follows num_views
                p = (p[0],) * n
            else:
                raise bad(key, f"expected one probability per view ({n} views)")
        v[key] = p
    return v
