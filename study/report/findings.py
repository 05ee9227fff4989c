"""The paper's findings, each checked on a report's results: does it hold here?

Each finding is a claim of Cole et al. (reports/README.md lists them, with the test each gets) and a check that reads
the report's top-1 cells (`study.report.figures.common.cells`: mean over seeds) and makes like-for-like comparisons:
the same method (and backbone or variant), pretraining size, evaluation dataset and labeled size, at the largest
labeled size both sides have. A comparison holds or not; the finding's verdict counts them:

    holds             every comparison holds
    does not hold     none does
    holds in k of n   some do
    not tested        the results have no cells to compare (the `evidence` column says which it needs)

The thresholds are ours where the paper gives none in numbers ("clearly beats": over 2 points). Adding a finding is
one function under `@finding`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from study.report.figures.common import (base_method, cells, clean, encoder_parts, expected_rows, fmt_size, is_single,
                                         label_variants, level_values, levels_order, not_trained_here, size_key)
from study.report.figures.domain_concat import concat_encoders, encoder_cells

COLUMNS = ("axis", "name", "finding", "verdict", "evidence")
NONE = "(none)"  # a null key value, so that merges match null with null
EXAMPLES = 4  # comparisons the evidence names; the verdict counts them all


@dataclass(frozen=True)
class Comparison:
    holds: bool
    text: str  # what was compared, with the numbers

    def __post_init__(self) -> None:
        object.__setattr__(self, "holds", bool(self.holds))  # a numpy bool too


@dataclass(frozen=True)
class Finding:
    name: str
    axis: str  # quantity, domain, quality or granularity
    claim: str  # the paper's finding, then how it is tested here
    needs: str  # the cells a test takes (what "not tested" says)
    check: Callable[[pd.DataFrame], list[Comparison]]


FINDINGS: list[Finding] = []


def finding(axis: str, claim: str, needs: str):
    """Register the decorated check (top-1 cells -> comparisons) as a finding named after it."""
    def deco(check: Callable[[pd.DataFrame], list[Comparison]]):
        FINDINGS.append(Finding(check.__name__, axis, claim, needs, check))
        return check

    return deco


def findings_table(table: pd.DataFrame, expected: pd.DataFrame | None = None,
                   whole: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(one row per finding: COLUMNS, in FINDINGS' order; warning lines of checks that failed) for the results
    `table` (study.results' tidy table) and the plan's `expected` jobs (which name method variants alike).

    `whole`: where `table` holds part of a grid's results (`study report --where`), the results of the whole grid
    (and `expected` its whole plan's jobs). A comparison is then made only where the whole grid's results make it
    alike: one that the left-out cells change (the best cross-domain encoder among those kept, a size step to a size
    left out) is dropped, named in the evidence, and a finding left without any reads 'not tested'."""
    top1 = _top1_cells(table, expected)
    every = None if whole is None else _top1_cells(whole, expected)
    rows, failed = [], []
    for f in FINDINGS:
        try:
            found = f.check(top1) if not top1.empty else []
            dropped = 0
            if every is not None and found:
                alike = set(f.check(every)) if not every.empty else set()
                dropped = sum(c not in alike for c in found)
                found = [c for c in found if c in alike]
            row = {"verdict": verdict(found), "evidence": evidence(found, f)}
            if dropped:
                row["evidence"] = (f"{row['evidence']}; " if found else "") + (
                    f"{dropped} comparison(s) left out: the cells --where leaves out change them (the whole grid's "
                    "report makes them)")
        except Exception as e:  # one check's failure is named; the report and the other checks go on
            failed.append(f"finding {f.name} could not be checked ({type(e).__name__}: {e})")
            row = {"verdict": "not tested", "evidence": f"the check failed: {type(e).__name__}: {e}"}
        rows.append({"axis": f.axis, "name": f.name, "finding": f.claim, **row})
    return pd.DataFrame(rows, columns=list(COLUMNS)), failed


def verdict(found: list[Comparison]) -> str:
    k = sum(c.holds for c in found)
    if not found:
        return "not tested"
    return "holds" if k == len(found) else "does not hold" if k == 0 else f"holds in {k} of {len(found)}"


def tally(verdicts) -> str:
    """The verdicts counted: "holds 2, holds in part 1, does not hold 1, not tested 6" (those of none left out)."""
    kinds = {"holds": 0, "holds in part": 0, "does not hold": 0, "not tested": 0}
    for v in verdicts:
        kinds["holds in part" if v.startswith("holds in ") else v] += 1
    return ", ".join(f"{k} {n}" for k, n in kinds.items() if n) or "none"


def evidence(found: list[Comparison], f: Finding) -> str:
    """The first EXAMPLES comparisons' texts ("needs ..." without any); of a mixed verdict each marked yes/no, and
    where some are left out those that do not hold named first (what "holds in k of n" is short of is not hidden)."""
    if not found:
        return f"needs {f.needs}"
    mixed = 0 < sum(c.holds for c in found) < len(found)
    if mixed and len(found) > EXAMPLES:
        found = sorted(found, key=lambda c: c.holds)  # stable: each kind in its own order
    texts = [("yes: " if c.holds else "no: ") * mixed + c.text for c in found[:EXAMPLES]]
    return "; ".join(texts) + (f"; and {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else "")


def _top1_cells(table: pd.DataFrame, expected: pd.DataFrame | None) -> pd.DataFrame:
    """The evaluation cells of top-1 with a value, their key columns' nulls as NONE, `_size` and `_labeled` as
    `size_key` orders them (null: the largest)."""
    if table.empty:
        return pd.DataFrame()
    table, expected = label_variants(table, expected)
    c = cells(table)
    c = _with_singles(c[c["mean"].notna()].copy(), table)
    for col in ("method", "backbone", "dataset", "size", "corruption", "protocol", "eval_dataset", "labeled_size",
                "level"):
        c[col] = c[col].astype(object).where(c[col].notna(), NONE) if col in c else NONE
    c.attrs["levels"] = levels_order(table, c["level"][c["level"] != NONE].unique())  # coarse -> fine
    c.attrs["level_values"] = level_values(table)  # {eval dataset: {level: its number of values}}
    c["_size"] = [_order(v) for v in c["size"]]
    c["_labeled"] = [_order(v) for v in c["labeled_size"]]
    c.attrs["planned_sizes"] = _planned_sizes(expected)
    c.attrs["whole_sizes"] = _whole_sizes(table)
    return c


def _whole_sizes(table: pd.DataFrame) -> dict[str, float]:
    """Pretraining dataset -> the images a pretraining of size `all` read there, as its runs recorded them
    (`images`: a pretraining job's protocol, an evaluation's `pretrain` one; every method that trains reads the same
    rows); a dataset without such a run is left out."""
    out: dict[str, float] = {}
    for stage, col in (("pretrain", "protocol.images"), ("evaluate", "protocol.pretrain.images")):
        if not {"stage", "method", "dataset", "size", col} <= set(table):
            continue
        rows = table[(table["stage"] == stage) & table["size"].isna() & table[col].notna()]
        for method, dataset, n in zip(rows["method"], rows["dataset"], rows[col]):
            if (isinstance(method, str) and not not_trained_here(method) and isinstance(dataset, str)
                    and isinstance(n, (int, float, np.number))):
                out.setdefault(dataset, float(n))
    return out


def _planned_sizes(expected: pd.DataFrame | None) -> dict[tuple, set[float]]:
    """(method, dataset) -> the sizes (`_order`) of its planned in-domain linear probes on clean images: {} without
    a plan."""
    rows = expected_rows(expected, protocol="linear")
    if rows.empty or not {"method", "dataset", "size", "eval_dataset", "corruption"} <= set(rows):
        return {}
    rows = rows[rows["dataset"].astype(object).eq(rows["eval_dataset"]) & (rows["corruption"] == "none")]
    out: dict[tuple, set[float]] = {}
    for method, dataset, size in zip(rows["method"], rows["dataset"], rows["size"]):
        out.setdefault((method, dataset), set()).add(_order(NONE if pd.isna(size) else size))
    return out


def _with_singles(c: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """`c` with `_single0` and `_single1`: on a concatenation's cell, its two encoders' linear top-1 at its labeled
    size and of the seeds it was made of, as domain_concat takes them (`encoder_cells`); NaN elsewhere."""
    c = c.assign(_single0=np.nan, _single1=np.nan)
    if "protocol" not in c or not (c["protocol"] == "concat").any():
        return c
    lin = clean(c[c["protocol"] == "linear"])
    for i, r in c[c["protocol"] == "concat"].iterrows():
        for k, encoder in enumerate(concat_encoders(r)[:2]):
            hit = encoder_cells(lin, table, encoder, r["eval_dataset"], r["labeled_size"])
            c.loc[i, f"_single{k}"] = hit["mean"].iloc[0] if not hit.empty else np.nan
    return c


def _order(v) -> float:
    """size_key's order of a size (NONE: the largest); NaN for a size that is not one (a concatenation's pair)."""
    if v == NONE:
        return size_key(None)
    try:
        return size_key(v)
    except (TypeError, ValueError):
        return float("nan")


def _size(v) -> str:
    return fmt_size(None if v == NONE else v)


def _pts(d: float) -> str:
    """`d` (a top-1 difference) in points, signed; one that rounds to zero is "+0.0" (not "-0.0", which reads as
    a drop where there is none: -d of an unchanged cell is -0.0)."""
    return f"{round(100 * d, 1) + 0.0:+.1f} points"


def _linear(c: pd.DataFrame, in_domain: bool = True) -> pd.DataFrame:
    """Linear-probe cells of trained encoders of single (not pooled or concatenated) pretraining sets on clean images;
    in-domain only (the encoder's pretraining dataset is the evaluation dataset) with `in_domain`."""
    lin = _trained(c[(c["protocol"] == "linear") & (c["corruption"] == "none")
                     & is_single(c["dataset"].replace(NONE, ""))])
    return lin[lin["dataset"] == lin["eval_dataset"]] if in_domain else lin


def _trained(c: pd.DataFrame) -> pd.DataFrame:
    """The cells of `c` whose encoder was trained here: a random-init one saw no image, an imported one (`pretrained`)
    none of the grid's, so their pretraining dataset and size are no evidence of what pretraining data does."""
    return _rows(c, [not not_trained_here(m) for m in c["method"]])


def _pairs(a: pd.DataFrame, b: pd.DataFrame, on: list[str], per: tuple[str, ...] = ()) -> pd.DataFrame:
    """`a` and `b` side by side (their columns suffixed `_a`, `_b`) where their `on` columns agree, at the largest
    labeled size the two share for each value of `on` and of the suffixed columns `per` (each of several `b` cells
    of one `on` value at its own: one whose probe diverged at the largest is compared at the next)."""
    both = a.merge(b, on=[*on, "_labeled"], suffixes=("_a", "_b"))
    if both.empty:
        return both
    largest = both.groupby([*on, *per], sort=False)["_labeled"].transform("max")
    return both[both["_labeled"] == largest]


def _labels(r) -> str:
    return f"{_size(r['labeled_size_a'] if 'labeled_size_a' in r else r['labeled_size'])} labels"


def _variant(method: str, to: str) -> str:
    """`method`'s name with its method replaced by `to` ("simclr · resnet18" -> "supervised · resnet18")."""
    return to + method[len(base_method(method)):]


def _supervised_twins(df: pd.DataFrame, names: tuple[str, ...] = ("simclr",)
                      ) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """(method, its supervised twin, their rows) for each SimCLR method of `df` ("simclr", "simclr · resnet18" with
    "supervised · resnet18"), or of each method `names` names, in name order."""
    for method in _methods_of(df, *names):
        twin = _variant(method, "supervised")
        yield method, twin, df[df["method"] == method], df[df["method"] == twin]


def _rows(df: pd.DataFrame, mask: list[bool]) -> pd.DataFrame:
    """The rows of `df` where `mask` is true (an empty list too: `df[[]]` would select no columns)."""
    return df[np.asarray(mask, dtype=bool)]


def _is(method: str, name: str) -> bool:
    return base_method(method) == name


@finding("quantity", "Beyond a point more pretraining images barely help: 500k and 1M images differ by under 1-2 "
         "points of linear top-1. Tested: the largest pretraining size against the next one down (at most 2.5x "
         "smaller), in-domain, within 2 points", "linear probes of one method on one dataset at its largest "
         "pretraining size and one at most 2.5x smaller (in-domain)")
def quantity_saturation(c: pd.DataFrame) -> list[Comparison]:
    def step(sizes):
        return (sizes[-1], sizes[-2]) if len(sizes) >= 2 and sizes[-1] <= 2.5 * sizes[-2] else None

    return _size_steps(c, step, lambda d: abs(d) < 0.02)


@finding("quantity", "Small pretraining sets cost a lot: 50k against 250k images often costs over 10 points of "
         "linear top-1. Tested: the smallest pretraining size (a small set: at most a fifth of the largest, as 50k of "
         "250k) against the largest at most 5x it, in-domain, over 10 points", "linear probes of one method on one "
         "dataset at a size at most a fifth of its largest and at one 2-5x it (in-domain)")
def quantity_small_sets(c: pd.DataFrame) -> list[Comparison]:
    def step(sizes):  # 250k of 1M is no small set: the paper has it 2-3 points from 500k, 1M 1-2 from that
        up = [s for s in sizes[1:] if 2 * sizes[0] <= s <= 5 * sizes[0]]
        return (up[-1], sizes[0]) if up and 5 * sizes[0] <= sizes[-1] else None

    return _size_steps(c, step, lambda d: d > 0.10)


def _size_steps(c: pd.DataFrame, choose, holds) -> list[Comparison]:
    """Per method and dataset (in-domain linear probes), the pair of pretraining sizes `choose(sorted sizes)` gives
    (larger, smaller), compared: `holds(top-1 of the larger - top-1 of the smaller)`. The sizes are those with a
    value and those planned (c.attrs["planned_sizes"]): a pair of which one has no value yet is not compared, nor
    replaced by a pair the paper's finding is not about (1M planned, not run: not 500k against 250k). Size `all`
    is the images a run of it read on that dataset (c.attrs["whole_sizes"]: 60, 120 and `all` of 320 images step
    from 320, not from 120); where no run recorded them, a count unknown, it is left out, but for `all` planned and not
    run yet: then nothing of that method and dataset is compared."""
    lin, out = _linear(c), []
    planned, whole = c.attrs.get("planned_sizes", {}), c.attrs.get("whole_sizes", {})
    for (method, dataset), g in lin.groupby(["method", "dataset"], sort=True):
        def count(s: float) -> float:  # 'all' (inf): the images a run of it read, NaN where unknown
            return whole.get(dataset, math.nan) if math.isinf(s) else s

        g = g.assign(_count=[count(s) for s in g["_size"]])
        # `all` beside a size that is every image of it (`study plan` warns): one set of images, compared once, at
        # the size the grid names (two comparisons of it read "holds in 1 of 2")
        sized = {s for s in g["_size"] if math.isfinite(s)}
        g = g[[math.isfinite(s) or n not in sized for s, n in zip(g["_size"], g["_count"])]]
        have = set(g["_count"].dropna())
        if math.inf in planned.get((method, dataset), ()) and math.inf not in set(g["_size"]) \
                and math.isnan(count(math.inf)):
            continue  # `all` planned, not run: the largest size, of a count no run has told yet
        planned_counts = (count(s) for s in planned.get((method, dataset), ()))
        step = choose(sorted(have | {s for s in planned_counts if not math.isnan(s)}))
        if step is None or not set(step) <= have:
            continue
        big, small = (g[g["_count"] == s] for s in step)
        for _, r in _pairs(big, small, ["method", "dataset", "eval_dataset"]).iterrows():
            d = r["mean_a"] - r["mean_b"]
            out.append(Comparison(holds(d), f"{method} on {dataset}, {_labels(r)}: {_counted(r['size_a'], step[0])} "
                                            f"{r['mean_a']:.3f} against {_counted(r['size_b'], step[1])} "
                                            f"{r['mean_b']:.3f} ({_pts(d)})"))
    return out


def _counted(size, count: float) -> str:
    """A size as the evidence names it: `all` with its count ("all (320)")."""
    return f"{_size(size)} ({fmt_size(count)})" if size == NONE else _size(size)


@finding("quantity", "With few labels, fine-tuning a SimCLR encoder clearly beats training from scratch; with many "
         "labels the two meet. Tested: at the smallest labeled size fine-tuning leads by over 2 points, and its lead "
         "is smaller at the largest (against the best scratch cell of each labeled size)", "fine-tune cells of simclr "
         "encoders and scratch cells of the same backbone on one evaluation dataset at two or more of the same "
         "labeled sizes")
def finetune_vs_scratch(c: pd.DataFrame) -> list[Comparison]:
    scratch = c[c["protocol"] == "scratch"].sort_values("mean", ascending=False, kind="stable").drop_duplicates(
        ["eval_dataset", "backbone", "_labeled"])  # of several (a `variant` each), the best at each labeled size
    tuned = c[(c["protocol"] == "finetune") & (c["corruption"] == "none")]
    tuned = _rows(tuned, [_is(m, "simclr") for m in tuned["method"]])
    out = []
    for (method, dataset, size, ev), g in tuned.groupby(["method", "dataset", "size", "eval_dataset"], sort=True):
        both = g.merge(scratch, on=["eval_dataset", "backbone", "_labeled"], suffixes=("_a", "_b")).sort_values(
            "_labeled")
        if both.empty:
            continue
        gaps = (both["mean_a"] - both["mean_b"]).tolist()
        first, last = both.iloc[0], both.iloc[-1]
        if len(gaps) == 1 and gaps[0] > 0.02:
            continue  # one labeled size: a lead there cannot show the two meet with more labels (one of 2 points
            # or less, the paper's clear lead missing, does not hold)
        holds = gaps[0] > 0.02 and gaps[-1] < gaps[0]  # (one labeled size: no lead, or skipped above)
        ends = [(first, gaps[0])] + ([(last, gaps[-1])] if len(gaps) > 1 else [])
        at = [f"{_labels(r)}: fine-tuned {r['mean_a']:.3f}, scratch {r['mean_b']:.3f} ({_pts(gap)})" for r, gap in ends]
        out.append(Comparison(holds, f"{method} {dataset} {_size(size)} on {ev}: " + ", ".join(at)))
    return out


@finding("quantity", "SimCLR trails supervised pretraining in linear top-1 (paper: about 7 points on ImageNet, about "
         "30 on iNat21). Tested: supervised above SimCLR, same dataset and size, in-domain (linear probes, or "
         "granularity's species level where the two have no probe to compare)", "in-domain linear probes (or "
         "granularity scores at level species) of simclr and supervised encoders of the same dataset and size")
def supervised_beats_simclr(c: pd.DataFrame) -> list[Comparison]:
    out = []
    for method in _methods_of(c, "simclr"):
        twin = _variant(method, "supervised")
        for how, r in _twin_pairs(c, method, twin):
            d = r["mean_b"] - r["mean_a"]
            out.append(Comparison(d > 0, f"{r['dataset']} {_size(r['size'])}, {_labels(r)}{how}: {twin} "
                                         f"{r['mean_b']:.3f}, {method} {r['mean_a']:.3f} ({_pts(d)})"))
    return out


@finding("quantity", "BYOL is the best self-supervised method on iNat21. Tested: on the dataset named inat21, BYOL "
         "above SimCLR and MoCo, same size, in-domain (linear probes, or granularity's species level where the two "
         "have no probe to compare)", "in-domain linear probes (or granularity scores at level species) on inat21 of "
         "byol encoders and of simclr or moco ones of the same size")
def byol_best_on_inat21(c: pd.DataFrame) -> list[Comparison]:
    return [cmp for rival in ("simclr", "moco") for cmp in _byol_on_inat21(c, rival, lambda d: d > 0)]


@finding("quantity", "BYOL still trails supervised pretraining on iNat21 (paper: by about 25 points). Tested: on the "
         "dataset named inat21, supervised above BYOL, same size, in-domain (linear probes, or granularity's species "
         "level where the two have no probe to compare)", "in-domain linear probes (or granularity scores at level "
         "species) on inat21 of byol and supervised encoders of the same size")
def byol_trails_supervised_on_inat21(c: pd.DataFrame) -> list[Comparison]:
    return _byol_on_inat21(c, "supervised", lambda d: d < 0)


def _byol_on_inat21(c: pd.DataFrame, rival: str, holds: Callable[[float], bool]) -> list[Comparison]:
    """Each BYOL encoder of inat21 against its `rival` twin (same backbone and size), in-domain (`_twin_pairs`):
    `holds(BYOL's top-1 - the rival's)`."""
    c = c[c["dataset"] == "inat21"]
    out = []
    for method in _methods_of(c, "byol"):
        for how, r in _twin_pairs(c, method, _variant(method, rival)):
            d = r["mean_a"] - r["mean_b"]
            out.append(Comparison(holds(d), f"inat21 {_size(r['size'])}, {_labels(r)}{how}: {method} "
                                            f"{r['mean_a']:.3f}, {r['method_b']} {r['mean_b']:.3f} ({_pts(d)})"))
    return out


def _methods_of(c: pd.DataFrame, *names: str) -> list[str]:
    """The methods of `c` whose base method is one of `names` ("simclr", "simclr · resnet18"), in name order."""
    return sorted(m for m in c["method"].unique() if base_method(m) in names)


def _twin_pairs(c: pd.DataFrame, method: str, twin: str) -> Iterator[tuple[str, pd.Series]]:
    """(how, the pair's row: `_pairs`' columns, `method` as `_a`) of `method`'s in-domain encoders against `twin`'s
    of the same dataset and size: their linear probes where both have one; else the granularity grid's species
    level (its classifier's own top-1 on the dataset's classes, the same probe; `how` then says so), never a probe
    against a species score."""
    lin = _linear(c)
    species = _trained(c[(c["protocol"] == "granularity") & (c["level"] == "species") & (c["corruption"] == "none")
                         & (c["dataset"] == c["eval_dataset"])])
    on = ["dataset", "size", "eval_dataset"]
    probed = _pairs(lin[lin["method"] == method], lin[lin["method"] == twin], on)
    keys = set(zip(*(probed[k] for k in on)))
    scored = _pairs(species[species["method"] == method], species[species["method"] == twin], on)
    scored = _rows(scored, [k not in keys for k in zip(*(scored[k] for k in on))])
    for how, pairs in (("", probed), (" (granularity, species)", scored)):
        for _, r in pairs.iterrows():
            yield how, r


@finding("domain", "In-domain pretraining beats cross-domain pretraining on every dataset. Tested: the encoder "
         "pretrained on the evaluation dataset above every other single dataset's, same method and size",
         "linear probes of encoders of two datasets at the same size on one evaluation dataset")
def in_domain_beats_cross_domain(c: pd.DataFrame) -> list[Comparison]:
    lin = _linear(c, in_domain=False)
    own, cross = lin[lin["dataset"] == lin["eval_dataset"]], lin[lin["dataset"] != lin["eval_dataset"]]
    both = _pairs(own, cross, ["method", "size", "eval_dataset"], per=("dataset_b",))
    out = []
    for (method, size, ev), g in both.groupby(["method", "size", "eval_dataset"], sort=True):
        best = g.loc[(g["mean_a"] - g["mean_b"]).idxmin()]  # the closest to in-domain (each at its labeled size)
        d = best["mean_a"] - best["mean_b"]
        out.append(Comparison(d > 0, f"{method} {_size(size)} on {ev}, {_labels(best)}: in-domain "
                                     f"{best['mean_a']:.3f}, best cross-domain ({best['dataset_b']}) "
                                     f"{best['mean_b']:.3f} ({_pts(d)})"))
    return out


@finding("domain", "ImageNet pretraining transfers best, GLC20 worst. Tested: on each evaluation dataset, among the "
         "encoders of the other single datasets (same method and size), the one of the dataset named imagenet is the "
         "best and the one of glc20 the worst", "linear probes of encoders of imagenet or glc20 and of another "
         "dataset, neither the evaluation dataset, at the same size on one evaluation dataset")
def imagenet_best_glc20_worst(c: pd.DataFrame) -> list[Comparison]:
    lin = _linear(c, in_domain=False)
    cross = lin[lin["dataset"] != lin["eval_dataset"]]
    out = []
    for (method, size, ev), g in cross.groupby(["method", "size", "eval_dataset"], sort=True):
        shared = set.intersection(*(set(v) for _, v in g.groupby("dataset")["_labeled"]))
        if g["dataset"].nunique() < 2 or not shared:
            continue
        g = g[g["_labeled"] == max(shared)]  # the largest labeled size every dataset's encoder has
        top1 = g.groupby("dataset")["mean"].max()
        ranked = ", ".join(f"{d} {v:.3f}" for d, v in top1.sort_values(ascending=False).items())
        where = f"{method} {_size(size)} on {ev}, {_labels(g.iloc[0])}: {ranked}"
        for name, extreme in (("imagenet", top1.max()), ("glc20", top1.min())):
            if name in top1:
                best = "best" if name == "imagenet" else "worst"
                # alone at the extreme: tied with another dataset's encoder is no best (worst), as a tie holds
                # no finding
                alone = top1[name] == extreme and int((top1 == extreme).sum()) == 1
                out.append(Comparison(alone, f"{name} {best}? {where}"))
    return out


def _pooled(c: pd.DataFrame) -> pd.DataFrame:
    """Linear probes of encoders of pooled sets ('a+b') on clean images, with `_sources` (how many sets they pool)."""
    lin = _trained(c[(c["protocol"] == "linear") & (c["corruption"] == "none")])
    pooled = lin[lin["dataset"].astype(str).str.contains("+", regex=False)].copy()
    pooled["_sources"] = [len(str(d).split("+")) for d in pooled["dataset"]]
    return pooled


@finding("domain", "Pooling datasets at equal size hurts: in-domain pretraining beats every pooled set of as many "
         "images. Tested: the in-domain encoder above the pooled one, same method and size, on a dataset the pool "
         "holds", "linear probes of a pooled set's encoder and an in-domain encoder of the same size, on a dataset "
         "the pool holds")
def in_domain_beats_pooled(c: pd.DataFrame) -> list[Comparison]:
    pooled = _pooled(c)
    # on a dataset the pool holds (a pool probed on another is cross-domain, not pooled, pretraining for it); a
    # whole dataset's ('all'): a count unknown
    return _against_pooled(_linear(c), _rows(pooled, [ev in str(d).split("+") and math.isfinite(s) for d, ev, s
                                                      in zip(pooled["dataset"], pooled["eval_dataset"],
                                                             pooled["_size"])]), "as many as")


@finding("domain", "A pooled set is worth less than its in-domain share: pooled 1M (4 x 250k) is below in-domain "
         "250k. Tested: the in-domain encoder of 1/k of the size above the pool of k sets that holds its dataset",
         "linear probes of a pool of k sets of size n, and an in-domain encoder of size n/k")
def in_domain_share_beats_pooled(c: pd.DataFrame) -> list[Comparison]:
    pooled = _pooled(c)
    pooled = _rows(pooled, [ev in str(d).split("+") and math.isfinite(s)
                            for d, ev, s in zip(pooled["dataset"], pooled["eval_dataset"], pooled["_size"])])
    return _against_pooled(_linear(c), pooled.assign(_size=pooled["_size"] / pooled["_sources"]), "its share of")


def _against_pooled(own: pd.DataFrame, pooled: pd.DataFrame, how: str) -> list[Comparison]:
    """In-domain cells `own` against the pooled cells `pooled` of the same method, evaluation dataset and `_size`."""
    out = []
    for _, r in _pairs(own, pooled, ["method", "_size", "eval_dataset"], per=("dataset_b",)).iterrows():
        d = r["mean_a"] - r["mean_b"]
        out.append(Comparison(d > 0, f"{r['method']} on {r['eval_dataset']}, {_labels(r)}: in-domain "
                                     f"{_size(r['size_a'])} {r['mean_a']:.3f}, pooled {r['dataset_b']} "
                                     f"{_size(r['size_b'])} {r['mean_b']:.3f} ({_pts(d)}; {how} the pool's images)"))
    return out


def _concat_gains(c: pd.DataFrame) -> pd.DataFrame:
    """Per concatenation of two encoders on clean images, one of them pretrained on the evaluation dataset: the
    concatenated top-1 (`mean`), that in-domain encoder's own linear top-1 (`alone`, of the seeds the concatenation
    was made of: `_with_singles`), its method (`own`) and the other encoder's (`other`), at the largest labeled size
    both have."""
    rows = []
    conc = c[(c["protocol"] == "concat") & (c["corruption"] == "none")]
    for _, r in conc.iterrows():
        datasets, methods = encoder_parts(r["dataset"], 2), encoder_parts(r["method"], 2)
        sizes = [NONE if s is None else s  # a whole dataset's in a pair ("None|1000000")
                 for s in encoder_parts(r["size_pair"] if isinstance(r.get("size_pair"), str) else r["size"], 2)]
        if len(datasets) != 2 or datasets.count(r["eval_dataset"]) != 1:
            continue
        i = datasets.index(r["eval_dataset"])
        alone = r[f"_single{i}"]
        if not pd.isna(alone) and not not_trained_here(methods[i]):  # no pretraining of its own to compare
            sized = _size(sizes[0]) if sizes[0] == sizes[1] else "|".join(_size(s) for s in sizes)
            rows.append({**r, "alone": alone, "own": methods[i], "other": methods[1 - i], "_sizes": str(sizes),
                         "pair": f"{r['method']} {r['dataset']} {sized}"})
    out = pd.DataFrame(rows)
    if not rows:
        return out
    return out[out["_labeled"] == out.groupby(["pair", "_sizes", "eval_dataset"])["_labeled"].transform("max")]


def _concat_comparisons(c: pd.DataFrame, pick, holds) -> list[Comparison]:
    out = []
    for _, r in _concat_gains(c).iterrows():
        if pick(r["own"], r["other"]):
            d = r["mean"] - r["alone"]
            out.append(Comparison(holds(d), f"{r['pair']} on {r['eval_dataset']}, {_size(r['labeled_size'])} labels: "
                                            f"concatenated {r['mean']:.3f}, the in-domain {r['own']} encoder alone "
                                            f"{r['alone']:.3f} ({_pts(d)})"))
    return out


@finding("domain", "Two SimCLR encoders' features are largely redundant: concatenating ImageNet's and iNat21's "
         "changes top-1 by -0.6 (ImageNet) and +1.4 (iNat21) over the in-domain encoder alone. Tested: a "
         "concatenation of two encoders of one method within 2 points of its in-domain encoder",
         "a concatenation (protocol concat) of two encoders of one method, one pretrained on the evaluation dataset, "
         "and that encoder's linear probe")
def concat_adds_little(c: pd.DataFrame) -> list[Comparison]:
    return _concat_comparisons(c, lambda own, other: own == other, lambda d: abs(d) < 0.02)


@finding("domain", "A supervised encoder's features add to an in-domain SimCLR encoder's (+4.7 on iNat21 with "
         "ImageNet-supervised features). Tested: the concatenation above the in-domain SimCLR encoder alone",
         "a concatenation of an in-domain simclr encoder and a supervised one, and the simclr encoder's linear probe")
def concat_supervised_adds(c: pd.DataFrame) -> list[Comparison]:
    return _concat_comparisons(c, lambda own, other: _is(own, "simclr") and other == _variant(own, "supervised"),
                               lambda d: d > 0)


def _drops(c: pd.DataFrame) -> pd.DataFrame:
    """Per corrupted-pretraining linear cell: `drop` = the clean encoder's top-1 (same method, dataset, size,
    evaluation dataset and labeled size) less its own."""
    lin = c[(c["protocol"] == "linear") & is_single(c["dataset"].replace(NONE, ""))]
    clean, bad = lin[lin["corruption"] == "none"], lin[lin["corruption"] != "none"]
    both = bad.merge(clean, on=["method", "dataset", "size", "eval_dataset", "_labeled"], suffixes=("", "_clean"))
    return both.assign(drop=both["mean_clean"] - both["mean"])


PAPER_CORRUPTIONS = ("downsample", "jpeg", "salt_pepper")  # those the paper compared (a user's own: not here)


def _corruption_name(corruption) -> str:
    """A corruption spec's registered name ("downsample:factor=2" -> "downsample")."""
    return str(corruption).split(":")[0]


def _downsampling(corruption) -> bool:
    """Whether a corruption spec ("downsample:factor=2") is the `downsample` corruption (not another whose name
    begins so)."""
    return _corruption_name(corruption) == "downsample"


@finding("quality", "Downsampling hurts SimCLR most; JPEG and salt-and-pepper much less (paper: 2x and 4x "
         "downsampling cost about 15 and 34 points). Tested: the largest drop from clean pretraining, among the "
         "paper's corruptions (downsampling, JPEG, salt-and-pepper) at the largest labeled size all have, is a "
         "downsampling's, alone",
         "linear probes of simclr encoders pretrained on clean images, on downsampled ones and on JPEG or "
         "salt-and-pepper ones")
def downsampling_hurts_most(c: pd.DataFrame) -> list[Comparison]:
    drops = _drops(c)
    drops = _rows(drops, [_is(m, "simclr") and _corruption_name(k) in PAPER_CORRUPTIONS
                          for m, k in zip(drops["method"], drops["corruption"])])
    out = []
    for (method, dataset, size, ev), g in drops.groupby(["method", "dataset", "size", "eval_dataset"], sort=True):
        # the largest labeled size every corruption has (one probed at fewer sizes is not left out of the ranking,
        # nor the pair missed where the largest of one is not the other's)
        shared = set.intersection(*(set(v) for _, v in g.groupby("corruption")["_labeled"]))
        if not shared:
            continue
        g = g[g["_labeled"] == max(shared)].sort_values("drop", ascending=False, kind="stable")
        down = np.array([_downsampling(k) for k in g["corruption"]])
        if not down.any() or down.all():
            continue
        worst = ", ".join(f"{k} {_pts(-v)}" for k, v in zip(g["corruption"], g["drop"]))
        # hurts most alone: a downsampling tied with JPEG or salt-and-pepper is not the largest drop
        out.append(Comparison(g["drop"][down].max() > g["drop"][~down].max(),
                              f"{method} {dataset} {_size(size)} on {ev}, {_size(g['labeled_size'].iloc[0])} "
                              f"labels: {worst}"))
    return out


@finding("quality", "Supervised pretraining is hurt less by corrupted images than SimCLR. Tested: per corruption, "
         "the supervised encoder's drop from clean pretraining below SimCLR's",
         "linear probes of simclr and supervised encoders pretrained on clean and on corrupted images")
def supervised_hurt_less(c: pd.DataFrame) -> list[Comparison]:
    drops, out = _drops(c), []
    for method, twin, simclr, sup in _supervised_twins(drops):
        both = _pairs(simclr, sup, ["dataset", "size", "eval_dataset", "corruption"])
        for _, r in both.iterrows():
            out.append(Comparison(r["drop_b"] < r["drop_a"], f"{r['corruption']} on {r['dataset']} "
                                                             f"{_size(r['size'])}, {_labels(r)}: {twin} "
                                                             f"{_pts(-r['drop_b'])}, {method} {_pts(-r['drop_a'])}"))
    return out


@finding("granularity", "The gap between supervised and SimCLR or MoCo pretraining grows at finer taxonomy levels "
         "(paper, iNat21: about 0.99 against 0.975 at kingdom, 0.80 against 0.50 at species). Tested: for SimCLR and "
         "for MoCo, the gap at the finest level above the gap at the coarsest of two or more values",
         "granularity cells of simclr or moco and supervised encoders at two levels")
def granularity_gap_grows(c: pd.DataFrame) -> list[Comparison]:
    gran = c[(c["protocol"] == "granularity") & (c["corruption"] == "none") & (c["level"] != NONE)]
    order = c.attrs.get("levels") or list(dict.fromkeys(gran["level"]))
    counts = c.attrs.get("level_values") or {}
    out = []
    for method, twin, simclr, sup in _supervised_twins(gran, ("moco", "simclr")):
        both = simclr.merge(sup, on=["dataset", "size", "eval_dataset", "_labeled", "level"], suffixes=("_a", "_b"))
        for (dataset, size, ev), g in both.groupby(["dataset", "size", "eval_dataset"], sort=True):
            g = g[g["_labeled"] == g["_labeled"].max()]
            g = g.assign(_rank=[order.index(lv) for lv in g["level"]]).sort_values("_rank")
            # a level of one value (one kingdom) is 1.0 for every encoder: no gap to grow from
            g = g[[counts.get(str(ev), {}).get(lv) != 1 for lv in g["level"]]]
            if len(g) < 2:
                continue
            gaps = (g["mean_b"] - g["mean_a"]).tolist()
            levels = ", ".join(f"{lv} {_pts(gap)}" for lv, gap in zip(g["level"], gaps))
            out.append(Comparison(gaps[-1] > gaps[0], f"{dataset} {_size(size)} on {ev}: {twin} minus {method}: "
                                                      f"{levels}"))
    return out
