"""How much of the data and compute the quickstart uses, and the grid rescaled to it.

`full` is the README's run on grids/quickstart.yaml as written. Smaller scales (`tiny`: the end-to-end test's)
keep the grid's structure (every axis, stage and figure) and map each size, step budget and batch to theirs, so a
test of the small grid exercises the same jobs as the full one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from study.atomic import write_text_if_changed
from study.counts import format_count
from study.errors import StudyError, os_reason
from study.grids.schema import ALL
from study.manifests.sizes import parse_size

# The quickstart's manifests at full scale (grids/quickstart.yaml names these sizes).
FMNIST_SIZES = ("3k", "7.5k", "15k", "30k", "60k")  # nested pretraining subsets: the paper's 50k..1M ratios
FMNIST_LABELED = ("100", "300", "1k", "3k", "10k")
DIGITS_SIZES = ("1.5k", "3k", "4k")
DIGITS_LABELED = ("100", "300", "1k", "3k")
POOL_EACH = "1.5k"  # the pooled set takes this many images of each domain


@dataclass(frozen=True)
class Scale:
    name: str
    fmnist_train_per_class: int | None  # None: all 6,000 per class
    fmnist_test_per_class: int | None  # None: all 1,000 per class
    digits_train_per_class: int
    digits_test_per_class: int
    sizes: dict[int, int] = field(default_factory=dict)  # full-scale pretraining size -> this scale's
    labeled: dict[int, int] = field(default_factory=dict)  # full-scale labeled size -> this scale's
    batch_size: int | None = None  # pretraining batch (None: the grid's)
    steps: int | None = None  # pretraining steps (None: the grid's)
    finetune_steps: int | None = None  # fine-tuning / scratch steps (None: the grid's)

    def size(self, text: str, where: str = "size") -> int:
        n = parse_size(text, where)
        return self.sizes.get(n, n)

    def labeled_size(self, text: str, where: str = "labeled size") -> int:
        n = parse_size(text, where)
        return self.labeled.get(n, n)

    def manifest_sizes(self, sizes: tuple[str, ...], labeled: bool = False) -> str:
        """A `--sizes` / `--labeled-sizes` argument at this scale."""
        scaled = [self.labeled_size(s) if labeled else self.size(s) for s in sizes]
        return ",".join(format_count(n) for n in sorted(set(scaled)))

    @property
    def is_full(self) -> bool:
        return not (self.sizes or self.labeled or self.batch_size or self.steps or self.finetune_steps)


SCALES = {
    "full": Scale("full", None, 500, 400, 100),
    "tiny": Scale("tiny", 60, 10, 20, 10,
                  sizes={1500: 20, 3000: 40, 4000: 200, 7500: 100, 15000: 200, 30000: 400, 60000: 600},
                  labeled={100: 20, 300: 50, 1000: 100, 3000: 200, 10000: 400},
                  batch_size=16, steps=4, finetune_steps=3),
}


def _map_sizes(value: Any, fn, where: str) -> Any:
    """A size or a list of sizes, as the grid grammar writes them (`size: [3k, 60k]`, `exclude: [{size: 3k}]`,
    `labeled_sizes: all` or `[all, 1k]`), each rescaled by `fn(text, where)`; `all` and None kept."""
    if isinstance(value, list):
        return [_map_sizes(v, fn, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or value == ALL:
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return fn(str(value), where)
    raise StudyError(f"{where}: expected a size or a list of sizes, got {value!r}")


def _walk(node: Any, scale: Scale, where: str) -> Any:
    """Every `size` / `labeled_sizes` list and every `pool` share, rescaled; the rest unchanged."""
    if isinstance(node, list):
        return [_walk(v, scale, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        at = f"{where}.{key}" if where else str(key)
        if key == "size":
            out[key] = _map_sizes(value, scale.size, at)
        elif key == "labeled_sizes":
            out[key] = _map_sizes(value, scale.labeled_size, at)
        elif key == "pool" and isinstance(value, dict):
            out[key] = {k: scale.size(str(v), f"{at}.{k}") for k, v in value.items()}
        else:
            out[key] = _walk(value, scale, at)
    return out


def scale_grid(grid: dict, scale: Scale, counts: dict[str, tuple[int, int]]) -> dict:
    """`grid` (grids/quickstart.yaml, parsed) at `scale`; `counts`: dataset -> (train, test) images written."""
    out = _walk(grid, scale, "")
    out["name"] = f"{grid['name']}-{scale.name}"
    for ds, (train, test) in counts.items():
        if ds in out.get("datasets", {}):
            out["datasets"][ds].update(train_images=train, test_images=test)
    pre = out.setdefault("defaults", {}).setdefault("pretrain", {})
    if scale.steps is not None:
        pre["steps"] = scale.steps
    if scale.batch_size is not None:
        pre["batch_size"] = scale.batch_size
    if scale.finetune_steps is not None:
        for entry in out.get("stages", {}).get("evaluate", []):
            ft = entry.get("params", {}).get("finetune")
            if isinstance(ft, dict) and "steps" in ft:
                ft["steps"] = scale.finetune_steps
    return out


def write_scaled_grid(src: Path, scale: Scale, counts: dict[str, tuple[int, int]], dest: Path) -> Path:
    """Write `src` at `scale` to `dest` (atomically); `src` itself when the scale is full."""
    if scale.is_full:
        return src
    try:
        grid = yaml.safe_load(src.read_text(encoding="utf-8"))  # as load_grid reads it, whatever the locale
    except (OSError, yaml.YAMLError) as e:
        raise StudyError(f"{src}: cannot read the quickstart grid ({os_reason(e)})") from None
    text = (f"# {src} at the quickstart's {scale.name!r} scale (study/quickstart/scale.py); written by "
            f"`study quickstart --scale {scale.name}`, do not edit.\n")
    text += yaml.safe_dump(scale_grid(grid, scale, counts), sort_keys=False, default_flow_style=None, width=120)
    write_text_if_changed(dest, text)  # a read-only --data prepared before: as it is
    return dest
