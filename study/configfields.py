"""Checks shared by the typed configs' `from_dict` (train, evaluate): each raises StudyError naming the key."""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable

from study.errors import StudyError, did_you_mean


def plain(v: Any) -> Any:
    """A fresh copy of plain YAML/JSON data: mappings (YMap too) as dicts, lists and tuples as lists, recursively;
    much faster than copy.deepcopy."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive_int(v: Any, key: str) -> None:
    if not is_int(v) or v <= 0:
        raise StudyError(f"{key}: expected a positive integer, got {v!r}")


def device_name(v: Any, key: str) -> None:
    """A device setting: "auto" (a GPU when there is one), "cpu", "cuda" or "cuda:N"."""
    if not isinstance(v, str) or re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is None:
        raise StudyError(f"{key}: expected 'auto', 'cpu' or 'cuda[:N]', got {v!r}")


def seed_int(v: Any, key: str) -> None:
    """A random seed: an integer in [0, 2**63) (what numpy's SeedSequence and torch both take)."""
    if not is_int(v) or not 0 <= v < 2**63:
        raise StudyError(f"{key}: expected an integer in [0, 2**63), got {v!r}")


def count_or_none(v: Any, key: str) -> None:
    if v is not None and (not is_int(v) or v < 0):
        raise StudyError(f"{key}: expected an integer >= 0 or null, got {v!r}")


def positive_num_or_none(v: Any, key: str) -> None:
    if v is not None and (not is_num(v) or v <= 0):
        raise StudyError(f"{key}: expected a number > 0 or null, got {v!r}")


def check_known(cls: type, d: dict, where: str) -> None:
    """Refuse keys that are not fields of the dataclass `cls`."""
    refuse_unknown(d, {f.name for f in dataclasses.fields(cls)}, where)


def refuse_unknown(d: dict, known: set[str], where: str) -> None:
    """Refuse keys of `d` not in `known`, naming the first with a "did you mean" and listing the known ones."""
    unknown = sorted(set(d) - known, key=str)
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], known)} "
                         f"(known: {', '.join(sorted(known))})")


def nested(cls: type, v: Any, where: str):
    """A nested config section: an instance of `cls`, or a mapping of its fields (lists become tuples where the
    field is a tuple)."""
    if isinstance(v, cls):
        return v
    if not isinstance(v, dict):
        raise StudyError(f"{where}: expected a mapping, got {v!r}")
    check_known(cls, v, where)
    v = dict(v)
    for f in dataclasses.fields(cls):
        if isinstance(v.get(f.name), list) and str(f.type).startswith("tuple"):
            v[f.name] = tuple(v[f.name])
    return cls(**v)


def mapping_or_none(v: Any, where: str) -> dict | None:
    if v is not None and not isinstance(v, dict):
        raise StudyError(f"{where}: expected a mapping, got {v!r}")
    return None if v is None else dict(v)


def build(cls: type, d: Any, where: str, parsers: dict[str, Callable[[Any, str], Any]]):
    """`cls(**d)` validated: `d` must be a mapping of `cls`'s fields; each field named in `parsers` goes through
    `parsers[name](value, "<where>.<name>")`, the rest as given; then `cfg.validate(where)`."""
    if not isinstance(d, dict):
        raise StudyError(f"{where}: expected a mapping, got {type(d).__name__}")
    check_known(cls, d, where)
    kw = {}
    for f in dataclasses.fields(cls):  # in field order, so the first bad field is the one reported
        if f.name in d:
            v = d[f.name]
            kw[f.name] = parsers[f.name](v, f"{where}.{f.name}") if f.name in parsers else v
    cfg = cls(**kw)
    cfg.validate(where)
    return cfg
