"""The corruption registry, the parsed spec, and the seeded rng a corruption draws from."""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PIL import Image

from study.errors import StudyError, did_you_mean
from study.registry import Registry


@dataclass(frozen=True)
class Param:
    """One parameter: its default, how a string becomes a value, and a check that raises ValueError."""

    default: Any
    parse: Callable[[str], Any]
    check: Callable[[Any], None] = lambda v: None
    in_slug: bool = True  # always spelled in the slug and the canonical string (else only when not the default)


@dataclass(frozen=True)
class Corruption:
    """A registered corruption. `label`: how a figure names it, as (its main parameter, that value's text), e.g.
    ("quality", "JPEG quality {}".format); None: the spec's own spelling."""

    name: str
    params: dict[str, Param]
    apply: Callable[[Image.Image, dict, np.random.Generator], Image.Image]
    doc: str = ""
    label: tuple[str, Callable[[Any], str]] | None = None


CORRUPTIONS: Registry[Corruption] = Registry("corruption")


PARSE_EXPECTS = {int: "expected an integer", float: "expected a number"}  # a bad value's words, by Param.parse
PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(corruption: Corruption) -> Corruption:
    """Register `corruption` under its name; ValueError (naming it) for a name the registry refuses, a parameter
    name that is not a word, or a default that its own `check` refuses or that does not read back as itself
    (`parse` of its spelling, same type: `Param(25, float)` would spell one corruption two ways, `sigma=25` and
    `sigma=25.0`, two jobs and two manifests)."""
    if corruption.label is not None:  # the figure calls it: a bad label would fail only when a report is drawn
        key, text = corruption.label
        if key not in corruption.params:
            raise ValueError(f"corruption {corruption.name!r}: label names parameter {key!r}, which it does not have "
                             f"(its parameters: {', '.join(corruption.params) or 'none'})")
        if not callable(text):
            raise ValueError(f"corruption {corruption.name!r}: label's text {text!r} is no function of the value "
                             f"(give {text!r}.format)")
        shown = text(corruption.params[key].default)
        if not isinstance(shown, str):
            raise ValueError(f"corruption {corruption.name!r}: label's text gives {shown!r} for the default "
                             f"{corruption.params[key].default!r}, not a string")
    for key, param in corruption.params.items():
        where = f"corruption {corruption.name!r}: parameter {key!r}"
        if not isinstance(key, str) or not PARAM_RE.match(key):
            raise ValueError(f"{where}: a parameter name is letters, digits and _ (not a digit first)")
        try:
            param.check(param.default)
            back = param.parse(_spell(param.default))
        except ValueError as e:
            raise ValueError(f"{where}: default {param.default!r} is refused ({e})") from None
        if any(c in _spell(param.default) for c in ":,="):
            raise ValueError(f"{where}: default {param.default!r} holds one of : , = (a spec's separators)")
        if type(back) is not type(param.default) or back != param.default:
            raise ValueError(f"{where}: default {param.default!r} is spelled {_spell(param.default)!r}, which "
                             f"parses as {back!r}: give the default as the type `parse` returns")
    return CORRUPTIONS.register(corruption.name, origin=corruption.apply)(corruption)


def _spell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class CorruptionSpec:
    """A corruption and its parameters (every one, defaults filled). `str(spec)` is the canonical spelling."""

    name: str
    params: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def _shown(self) -> list[tuple[str, Any]]:
        spec = CORRUPTIONS.get(self.name)
        return [(k, v) for k, v in self.params if spec.params[k].in_slug or v != spec.params[k].default]

    @property
    def slug(self) -> str:
        """File-name-safe spelling, e.g. `downsample-factor2`, `salt_pepper-fraction0.1`."""
        return "-".join([self.name] + [f"{k}{_spell(v)}" for k, v in self._shown()])

    def __str__(self) -> str:
        shown = self._shown()
        if not shown:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_spell(v)}" for k, v in shown)


def parse_corruption(text: str, where: str = "corruption") -> CorruptionSpec:
    """`name[:key=value,...]` -> CorruptionSpec; StudyError on an unknown name (after `where`: the flag or key that
    gave it), parameter or value."""
    text = str(text).strip()
    name, _, rest = text.partition(":")
    corruption = CORRUPTIONS.get(name.strip(), where)
    given: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq:
            raise StudyError(f"corruption {text!r}: parameter {item!r} must be key=value")
        if key not in corruption.params:
            known = ", ".join(corruption.params) or "none"
            raise StudyError(f"corruption {text!r}: unknown parameter {key!r} of {corruption.name}"
                             f"{did_you_mean(key, corruption.params)} (known: {known})")
        if key in given:
            raise StudyError(f"corruption {text!r}: parameter {key!r} given twice")
        param = corruption.params[key]
        try:
            try:
                value = param.parse(raw.strip())
            except ValueError as e:  # int's and float's own words name Python's literals, not the parameter
                raise ValueError(PARSE_EXPECTS[param.parse]) if param.parse in PARSE_EXPECTS else e
            if isinstance(value, float) and not math.isfinite(value):  # float() takes inf, nan and 1e400
                raise ValueError("not a finite number")
            if isinstance(value, float):
                value += 0.0  # -0.0 -> 0.0: one value, one spelling (else another job and manifest)
            param.check(value)
        except ValueError as e:
            raise StudyError(f"corruption {text!r}: bad value {raw.strip()!r} for {key}: {e}") from None
        given[key] = value
    params = tuple((k, given.get(k, p.default)) for k, p in corruption.params.items())
    return CorruptionSpec(corruption.name, params)


def rgb_or_grey(img: Image.Image) -> Image.Image:
    """`img` itself when it is RGB or L (grey), else converted to RGB: the modes a corruption works on (a palette
    image resizes by nearest and saves to JPEG not at all)."""
    return img if img.mode in ("RGB", "L") else img.convert("RGB")


def corruption_rng(key: str) -> np.random.Generator:
    """The rng of one image: seeded by `key` (`apply_corruption`'s `"<spec>|<image key>"`), the same on every
    machine."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16, person=b"study-corrupt").digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def apply_corruption(spec: CorruptionSpec | str, img: Image.Image, key: str) -> Image.Image:
    """The corrupted image (same size as `img`); deterministic in (spec, image, key). StudyError naming the
    corruption's module where its `apply` returns anything else."""
    if isinstance(spec, str):
        spec = parse_corruption(spec)
    corruption = CORRUPTIONS.get(spec.name, "corruption")
    out = corruption.apply(img, spec.kwargs, corruption_rng(f"{spec}|{key}"))
    if not isinstance(out, Image.Image) or out.size != img.size:
        got = f"an image of size {out.size}" if isinstance(out, Image.Image) else type(out).__name__
        raise StudyError(f"corruption {spec} ({corruption.apply.__module__}): apply returned {got}, not a PIL image "
                         f"of the input's size {img.size}")
    return out
