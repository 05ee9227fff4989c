"""Axes -> pretraining points: cartesian product (zip groups move together), minus `exclude`, plus `include`.

A point is a dict over the six pretraining axes (method, backbone, dataset, size, corruption, seed). Order is
deterministic: the product in file order (first axis slowest), then each include rule's points.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from study.grids.schema import PRETRAIN_AXES, Grid, normalise_axis_value, value_text
from study.grids.yamlio import fail
from study.train.config import PretrainConfig

Unit = tuple[tuple[str, ...], list[tuple[Any, ...]]]


def _units(grid: Grid) -> list[Unit]:
    units: list[Unit] = []
    placed: set[str] = set()
    for axis in grid.axes:
        if axis in placed:
            continue
        group = next((g for g in grid.zip if axis in g), (axis,))
        units.append((group, list(zip(*(grid.axes[a] for a in group)))))
        placed.update(group)
    return units


def axis_defaults(grid: Grid) -> dict[str, Any]:
    """The value of each pretraining axis the grid does not sweep: from defaults.pretrain, else the value a job
    trains with where none is given (PretrainConfig's backbone and seed; corruption `none`; size null: every image;
    a grid always names its method), so that writing that value later (`seeds: [0]`, before more seeds) keeps
    every job's id."""
    out: dict[str, Any] = {}
    d = grid.defaults_pretrain
    lines = grid.defaults_lines.get("pretrain", {})
    for axis in PRETRAIN_AXES:
        if axis in d:
            try:  # defaults.pretrain holds a value as written (`50k`): normalised here, as the axes' were
                out[axis] = normalise_axis_value(axis, d[axis])
            except ValueError as e:  # schema.load_grid checks them first; a Grid made otherwise gets the same error
                raise fail(grid.path, lines.get(axis) or grid.lines.get("defaults"),
                           f"defaults.pretrain.{axis}: {e}") from None
        else:
            out[axis] = _ABSENT.get(axis)
    return out


_ABSENT = {"corruption": "none", **{f.name: f.default for f in dataclasses.fields(PretrainConfig)
                                    if f.name in ("backbone", "seed")}}


def _check_exclude_values(grid: Grid, base: dict[str, Any]) -> None:
    """A StudyError at an exclude rule naming a value its axis never takes (a typo such as `5k` for `50k`, or a typo
    on the axis itself): such a value removes nothing, even where the rule's other values match."""
    for rule in grid.exclude:
        for axis, values in rule.conditions:
            taken = grid.axes[axis] if axis in grid.axes else [base[axis]]
            for v in values:
                if v not in taken:
                    raise fail(grid.path, rule.line, f"exclude {rule.describe()}: {axis} "
                                                     f"{value_text(axis, v, quoted=True)} is not a value of "
                                                     f"axis {axis!r} (its values: "
                                                     f"{', '.join(value_text(axis, x) for x in taken)})")


def expand_points(grid: Grid) -> list[dict[str, Any]]:
    """Every pretraining point of `grid`, each a full dict over PRETRAIN_AXES; StudyError for zero-job axes, and at an
    exclude rule that removes nothing or an include rule that adds nothing."""
    units = _units(grid)
    base = axis_defaults(grid)
    names = [n for n, _ in units]
    seen: set[tuple] = set()
    points: list[dict[str, Any]] = []

    def add(pt: dict[str, Any]) -> bool:
        """Whether `pt` is new (then appended)."""
        key = tuple(pt[a] for a in PRETRAIN_AXES)
        if key in seen:
            return False
        seen.add(key)
        points.append(pt)
        return True

    excludes = grid.exclude
    _check_exclude_values(grid, base)
    excluded_any = [False] * len(excludes)
    for combo in itertools.product(*(vals for _, vals in units)):
        pt = dict(base)
        for group, values in zip(names, combo):
            pt.update(zip(group, values))
        hits = [m.matches(pt) for m in excludes]
        if any(hits):
            excluded_any = [a or h for a, h in zip(excluded_any, hits)]
            continue
        add(pt)
    for rule, hit in zip(excludes, excluded_any):
        if not hit:  # a typo in a value, or a value no longer on its axis: the jobs meant to go would still run
            raise fail(grid.path, rule.line, f"exclude {rule.describe()} matches no combination of the axes: it "
                                             f"removes nothing (check its values against the axes)")

    for rule in grid.include:
        cond = dict(rule.conditions)
        sub: list[Unit] = []
        for group, vals in units:
            if group[0] in cond:  # schema guarantees a zip group is named whole or not at all
                lists = [cond[a] for a in group]
                if len({len(v) for v in lists}) != 1:
                    raise fail(grid.path, rule.line, "include: axes that move together (zip) need lists of one "
                                                     "length")
                sub.append((group, list(zip(*lists))))
            else:
                sub.append((group, vals))
        for axis, vs in rule.conditions:
            if axis not in grid.axes:
                sub.append(((axis,), [(v,) for v in vs]))
        added = False
        for combo in itertools.product(*(vals for _, vals in sub)):
            pt = dict(base)
            for (group, _), values in zip(sub, combo):
                pt.update(zip(group, values))
            added = add(pt) or added
        if not added:  # a typo in a value, most often: the job meant to run would not
            raise fail(grid.path, rule.line, f"include {rule.describe()} adds no job: each point it names is already "
                                             f"in the grid (check its values against the axes and exclude rules)")

    if not points:
        raise fail(grid.path, grid.lines.get("axes") or grid.lines.get("exclude"),
                   "the axes expand to zero pretraining jobs (every combination is excluded)")
    for axis, values in grid.axes.items():
        present = {pt[axis] for pt in points}
        for i, v in enumerate(values):
            if v not in present:
                line = grid.axis_lines[axis][1][i]
                raise fail(grid.path, line, f"axis {axis!r} value {v!r} expands to zero jobs "
                                            f"(every combination with it is excluded)")
    return points
