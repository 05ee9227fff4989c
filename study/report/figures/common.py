"""What every figure shares: the cells it draws (seeds aggregated, one protocol fingerprint per cell, and whether it
has fewer seeds than planned), size labels, the backbone folded into the method's name when it varies
(`label_variants`), and `NoData`, which a figure raises when the grid holds nothing it can show."""
from __future__ import annotations

import json
import math
import re
from typing import Iterable

import numpy as np
import pandas as pd
import seaborn as sns

from study.counts import format_count
from study.report import style
from study.results.table import (AXES, CELL_NEEDS, aggregate, is_null, key_tuples, planned_seeds, require_columns,
                                 resolve_conflicts)
from study.train.config import UNTRAINED_METHODS

INAT_LEVELS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
# axes that no figure lays out: when one varies, each value is drawn apart; an evaluate entry's `variant` always is
VARIANT_AXES = ("backbone", "variant")
# the order figures list methods in (the paper's first; others by name before random)
METHOD_ORDER = ("simclr", "supervised", "moco", "byol", "random")
# each method's colour, dark to light (style.palette), the same in every figure: supervised apart from the SSL methods
METHOD_COLOURS = ("simclr", "moco", "byol", "supervised", "random")
# methods whose encoder saw none of the grid's pretraining images (an untrained one; one trained elsewhere and
# imported): its pretraining set and size are no evidence of what pretraining data does, and not in its label
NOT_TRAINED_HERE = UNTRAINED_METHODS
# the paper's datasets in its order: how figures list datasets that the plan does not order (dataset_order)
DATASET_ORDER = ("imagenet", "inat21", "places365", "glc20")
# what a figure and the findings read of a results table: its axes and what `aggregate` reads (a narrow `read_table`
# without `corruption` would draw corrupted pretraining as clean)
TABLE_NEEDS = (*AXES, *CELL_NEEDS)


class NoData(Exception):
    """The grid has no data for this figure; the message says what it lacks (shown as a note in the report)."""


def cells(table: pd.DataFrame, metric: str = "top1", expected: pd.DataFrame | None = None) -> pd.DataFrame:
    """Evaluation cells of `metric`: mean/std/count over seeds; where two fingerprints meet, the newest one; and
    `partial_seeds`, "k/n" where a cell has a value in k of the n seeds the plan `expected` gives it (0 < k < n),
    else None. A StudyError names the columns of `TABLE_NEEDS` that `table` lacks."""
    require_columns(table, "drawing a figure or checking the findings", TABLE_NEEDS)
    rows = table[(table["stage"] == "evaluate") & (table["metric"] == metric)]
    out = resolve_conflicts(aggregate(rows))
    out["partial_seeds"] = [f"{k}/{n:.0f}" if 0 < k < n else None
                            for k, n in zip(out["count"], planned_seeds(out, expected))]
    if "corruption" in out:
        out["corruption"] = out["corruption"].where(out["corruption"].notna(), "none")
    return out


def label_variants(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(table, expected) with `method` renamed "<method> · <backbone>" on every row when the backbone takes more
    than one value across results and plan together (null counts as one where an evaluation of an encoder has none
    beside others that have one: a grid that gained a `backbone` axis), so that each figure draws each backbone apart
    under its own name (a null one under the method's own), and "<method> · <variant>" on the rows of an evaluate
    entry with a `variant`; concatenation rows ('a|b') are renamed part by part. Rows without a method (scratch)
    keep none."""
    frames = [f for f in (table, expected) if f is not None and not f.empty]
    for axis in VARIANT_AXES:
        values = {part for f in frames if axis in f for v in f[axis].dropna() for part in str(v).split("|")}
        if values and any(f.loc[_evaluates_an_encoder(f), axis].isna().any() for f in frames if axis in f):
            values.add(None)
        if len(values) > 1 or (axis == "variant" and values):
            table, expected = (_with_variant(f, axis) if f is not None and axis in f and "method" in f else f
                               for f in (table, expected))
    return table, expected


def _evaluates_an_encoder(df: pd.DataFrame) -> pd.Series:
    """The evaluation rows with a method (not scratch, nor a pretraining job)."""
    rows = df["method"].notna() if "method" in df else pd.Series(False, index=df.index)
    return rows & (df["stage"] == "evaluate") if "stage" in df else rows


def _with_variant(df: pd.DataFrame, axis: str) -> pd.DataFrame:
    def name(method, value):
        if pd.isna(method) or pd.isna(value):
            return method
        ms, vs = str(method).split("|"), str(value).split("|")
        n = max(len(ms), len(vs))
        ms, vs = (ms * n if len(ms) == 1 else ms), (vs * n if len(vs) == 1 else vs)
        if len(ms) != len(vs):
            return f"{method} · {value}"
        parts = [f"{m} · {v}" for m, v in zip(ms, vs)]
        return parts[0] if len(set(parts)) == 1 else "|".join(parts)

    return df.assign(method=pd.Series([name(m, v) for m, v in zip(df["method"], df[axis])], index=df.index,
                                      dtype="object"))


def clean(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["corruption"].fillna("none") == "none"] if "corruption" in df else df


def is_single(dataset: pd.Series) -> pd.Series:
    s = dataset.astype("string").fillna("")
    return ~(s.str.contains("+", regex=False) | s.str.contains("|", regex=False))


def encoder_parts(value, n: int) -> list:
    """The per-encoder values of a concatenation's axis value: `a|b` split (numbers as ints, "None" as None), a
    shared value repeated `n` times."""
    parts = str(value).split("|") if isinstance(value, str) and "|" in value else [value] * n
    return [None if p == "None" else int(p) if isinstance(p, str) and p.isdigit() else p for p in parts]


def fmt_size(n) -> str:
    """study.counts' spelling (50000 -> '50k', 1000000 -> '1M'), grouped where it has no short form
    (2686843 -> '2,686,843'); None/NaN -> 'all'."""
    if is_null(n):
        return "all"
    try:
        n = int(n)
    except (TypeError, ValueError):
        return str(n)
    short = format_count(n)
    return f"{n:,}" if short == str(n) and n >= 10_000 else short


def fmt_axis(column: str, v) -> str:
    """An axis value as a label spells it: a size short (fmt_size: null is 'all'), another null '—'."""
    if column in ("size", "labeled_size"):
        return fmt_size(v)
    return "—" if pd.isna(v) else str(v)


def size_key(v) -> float:
    """Order labeled sizes with 'all' (null) last."""
    if is_null(v):
        return math.inf
    return float(v)


def planned_sizes(text: object) -> list[int | None]:
    """A plan's `labeled_sizes` cell ("1000,10000", "1000,all") as sizes, None for `all` (every label); [] when
    it names none."""
    if not isinstance(text, str) or not text:
        return []
    return [None if v == "all" else int(v) for v in text.split(",")]


def drawn_lines(axes: Iterable) -> dict:
    """Label -> handle of every line the panels `axes` drew, each once (the first panel's), in drawing order: one
    legend for a figure whose lines each panel draws only where it has points."""
    out: dict = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            out.setdefault(name, handle)
    return out


def base_method(label) -> str:
    """The method of a method label: "simclr · resnet18" (a variant, `label_variants`) -> "simclr"."""
    return str(label).split(" · ")[0]


def not_trained_here(label) -> bool:
    """Whether a method label's encoder saw none of the grid's pretraining images (NOT_TRAINED_HERE: random-init,
    imported), a variant of it too ("pretrained · resnet18")."""
    return base_method(label) in NOT_TRAINED_HERE


def method_key(method) -> tuple:
    """Sort key of a method: METHOD_ORDER's by its method (a variant, "simclr · resnet18", as "simclr"; another method
    after the paper's, before the random-init floor), then by name."""
    base = base_method(method)
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else METHOD_ORDER.index("random") - 0.5, str(method))


def dataset_order(datasets: Iterable, expected: pd.DataFrame | None = None) -> list:
    """`datasets` (pretraining or evaluation datasets, pooled 'a+b' and concatenated 'a|b' ones too) in the order the
    plan `expected` first names them (its `dataset`, then `eval_dataset` column: the grid's order), those it lacks
    after them as the paper orders its datasets (DATASET_ORDER; a pooled or concatenated one by its parts), then by
    name."""
    planned = {} if expected is None else {d: i for i, d in enumerate(dict.fromkeys(
        v for c in ("dataset", "eval_dataset") if c in expected for v in expected[c].dropna()))}

    def paper(d) -> tuple:
        return tuple(DATASET_ORDER.index(p) if p in DATASET_ORDER else len(DATASET_ORDER)
                     for p in str(d).replace("|", "+").split("+"))

    return sorted(dict.fromkeys(datasets), key=lambda d: (planned.get(d, len(planned)), paper(d), str(d)))


def dataset_rank(datasets: Iterable, expected: pd.DataFrame | None = None) -> dict:
    """Each of `datasets` -> its place in `dataset_order`, for sorting a frame's dataset column by it."""
    return {d: i for i, d in enumerate(dataset_order(datasets, expected))}


def all_methods(table: pd.DataFrame, expected: pd.DataFrame | None) -> list:
    """Every method of the report's results and plan (method_colours' `among`)."""
    return [m for f in (table, expected) if f is not None and "method" in f for m in f["method"].dropna()]


def method_colours(methods: Iterable, among: Iterable = ()) -> dict:
    """A colour per method of `methods`, alike in every figure that colours by method (quality, granularity): one of
    METHOD_COLOURS' palette for each of its methods and their variants ("simclr · resnet18" as "simclr"), a
    categorical palette's for the others, in method_key order among those of `methods` and `among` (the report's
    methods: an own method keeps its colour in a figure that lacks another)."""
    base = {m: base_method(m) for m in dict.fromkeys(methods)}
    known = dict(zip(METHOD_COLOURS, style.palette(len(METHOD_COLOURS))))
    others = sorted({b for b in [*base.values(), *map(base_method, among)] if b not in known}, key=method_key)
    extra = dict(zip(others, sns.color_palette("colorblind", max(len(others), 1))))
    return {m: known.get(b, extra.get(b)) for m, b in base.items()}


def pick_largest(values: Iterable) -> object:
    """The largest of `values`, null meaning 'all labels' (the largest)."""
    values = list(values)
    return max(values, key=size_key) if values else None


def at_largest_labeled(done: pd.DataFrame, waiting: pd.DataFrame) -> tuple[object, pd.DataFrame]:
    """The largest labeled size of `done`'s cells (of `waiting`'s planned ones when there are none) and the cells of
    `done` at that size followed by `waiting`'s, each put at that size (drawn missing)."""
    labeled = pick_largest((done if not done.empty else waiting)["labeled_size"].unique())
    return labeled, pd.concat([done[same(done["labeled_size"], labeled)], waiting.assign(labeled_size=labeled)],
                              ignore_index=True)


def first_cell(hit: pd.DataFrame) -> dict:
    """`mean`, `std`, `count` and `partial_seeds` of the first of the cells `hit`; NaN, NaN, 0, None without one."""
    r = hit.iloc[0] if not hit.empty else None
    return {"mean": np.nan if r is None else r["mean"], "std": np.nan if r is None else r["std"],
            "count": 0 if r is None else int(r["count"]), "partial_seeds": None if r is None else r["partial_seeds"]}


def same(series: pd.Series, value) -> pd.Series:
    """Equality that treats null == null as True."""
    if is_null(value):
        return series.isna()
    return series.notna() & (series == value)


def expected_rows(expected: pd.DataFrame | None, **equal) -> pd.DataFrame:
    """Planned evaluation jobs (from the plan) filtered by axis values; empty when there is no plan."""
    if expected is None or expected.empty:
        return pd.DataFrame()
    rows = expected[expected["stage"] == "evaluate"] if "stage" in expected else expected
    for key, value in equal.items():
        if key not in rows:
            return rows.iloc[0:0]
        rows = rows[rows[key] == value]
    if "corruption" in rows:
        rows = rows.assign(corruption=rows["corruption"].where(rows["corruption"].notna(), "none"))
    return rows


def planned_missing(expected: pd.DataFrame | None, done: pd.DataFrame, keys: list[str], **equal) -> pd.DataFrame:
    """One row per planned evaluation job matching `equal` (expected_rows) that no row of `done` matches on `keys`:
    its `keys`, its largest planned labeled size (`labeled_size`; None, every row, where the plan names none) and
    no value (mean and std NaN, count 0), so that a figure shows a planned cell as missing, not as never planned;
    and the plan's `levels` ("kingdom,species"; None: the manifest's), where it has that column: of every such job
    with those `keys` (two entries that differ only in their levels: both), None where one of them names none."""
    planned = expected_rows(expected, **equal)
    columns = [*keys, "labeled_size", "mean", "std", "count", *(["levels"] if "levels" in planned else [])]
    if planned.empty:
        return pd.DataFrame(columns=columns)

    have = set(key_tuples(done, keys)) if not done.empty else set()
    rows = planned[[t not in have for t in key_tuples(planned, keys)]]
    largest = [pick_largest(planned_sizes(s))
               for s in rows.get("labeled_sizes", pd.Series([None] * len(rows), index=rows.index))]
    out = pd.DataFrame({k: rows[k] if k in rows else None for k in keys}, index=rows.index)
    out = out.assign(labeled_size=largest, mean=np.nan, std=np.nan, count=0)
    if "levels" in rows:  # each row: the levels its keys' jobs name together (drop_duplicates keeps one row)
        union: dict[tuple, list[str] | None] = {}
        for t, cell in zip(key_tuples(rows, keys), rows["levels"]):
            named = planned_levels(cell)
            if named is None or union.get(t, []) is None:  # one job names none: its manifest's levels, every one
                union[t] = None
            else:
                union[t] = list(dict.fromkeys([*union.get(t, []), *named]))
        out = out.assign(levels=[None if union[t] is None else ",".join(union[t]) for t in key_tuples(rows, keys)])
    return out.drop_duplicates(subset=keys).reset_index(drop=True)[columns]


def planned_levels(cell) -> list[str] | None:
    """The taxonomy levels a plan's `levels` cell names ("kingdom,species" -> ["kingdom", "species"]); None where it
    names none (the job scores every level of its manifest)."""
    return None if is_null(cell) else str(cell).split(",")


def labeled_note(data: pd.DataFrame, whose: str) -> str:
    """The labeled size a bar figure's cells are at, for its caption: "3k labels (the pooled sets' largest)" where
    every evaluation dataset has one, else "the pooled sets' largest labeled size on each evaluation dataset: a 10k,
    b 5k" (`whose`: "pooled sets'"), from `data`'s `eval_dataset` and `labeled_size` (the figure's rows, in order)."""
    sizes = dict(zip(data["eval_dataset"], data["labeled_size"]))
    if len({fmt_size(s) for s in sizes.values()}) == 1:
        return f"{fmt_size(next(iter(sizes.values())))} labels (the {whose} largest labeled size)"
    return (f"the {whose} largest labeled size on each evaluation dataset: "
            + ", ".join(f"{ev} {fmt_size(s)}" for ev, s in sizes.items()))


def chance_note(table: pd.DataFrame, eval_datasets: Iterable) -> str:
    """Top-1 by chance on each of `eval_datasets` (1 / its classes, as its evaluations recorded them: the
    `protocol.num_classes` column), for a caption: "top-1 by chance (1 / classes): fmnist 10%, mnist 10%; "
    (in percent, as the figures' axes; two significant digits: ImageNet's 1000 classes 0.1%, not 0%); "" where no
    record says."""
    column = "protocol.num_classes"
    if column not in table or "eval_dataset" not in table:
        return ""
    classes = table.dropna(subset=[column]).groupby("eval_dataset")[column].max()
    said = [f"{ev} {_chance(1 / int(classes[ev]))}" for ev in dict.fromkeys(eval_datasets) if ev in classes
            and int(classes[ev]) > 0]
    return f"top-1 by chance (1 / classes): {', '.join(said)}; " if said else ""


def _chance(p: float) -> str:
    """A chance rate as a caption spells it, in percent: whole from 10% up (33%), two significant digits below
    (0.27%, 0.01%)."""
    pct = p * 100
    return f"{pct:.0f}%" if pct >= 10 else np.format_float_positional(pct, precision=2, fractional=False,
                                                                        trim="-") + "%"


def units_note(example: str = "45%", change: bool = False) -> str:
    """The last sentence of a top-1 figure's caption: the figure reads top-1 in percent, as the paper's (`example`:
    an axis "45%", a matrix's cell "45.0"), where its table (which `index.html` shows below the figure), its CSV
    files and results.parquet hold a fraction (0.450); with `change`, a figure of differences of top-1, in
    percentage points (an axis "\N{MINUS SIGN}5") where its table holds the difference of fractions (-0.050)."""
    if change:
        return (" The figure reads the change in percentage points (-5); its table and CSV files hold it as a "
                "difference of fractions (-0.050).")
    return f" The figure reads top-1 in percent ({example}); its table and CSV files hold it as a fraction (0.450)."


def seed_range(counts: Iterable) -> str:
    """The seeds per cell of cells with these `count`s: "3", "1-3" where cells differ; "" where none has a value."""
    n = sorted({int(c) for c in counts if not pd.isna(c) and c > 0})
    return "" if not n else str(n[0]) if len(n) == 1 else f"{n[0]}-{n[-1]}"


def seeds_note(counts: Iterable) -> str:
    """What a figure's values are, for its caption: "means over 3 seeds per cell" (or "over 1-3 seeds" where cells
    differ; "one seed per cell": no error bars), from the `count` of the cells it draws."""
    seeds = seed_range(counts)
    if not seeds:
        return "no cell has a value yet"
    if seeds == "1":
        return "one seed per cell (no error bars)"
    return f"means over {seeds} seeds per cell"


def hollow_note(partial: Iterable) -> str:
    """"hollow markers: ...; " for a line figure's caption where some drawn point has fewer seeds than planned
    (`cells`' partial_seeds, drawn by `style.hollow_partial`), else ""."""
    if not any(isinstance(p, str) for p in partial):
        return ""
    return "hollow markers: cells with a value in fewer seeds than planned (k/n in the table); "


def error_bars_note(stds: Iterable, what: str = "standard deviation over seeds") -> str:
    """"error bars: <what>; " for a caption where some drawn value has a spread (a cell of two or more seeds), else
    "": with one seed per cell no bar is drawn (seeds_note says so), nor a '±' in the table."""
    return f"error bars: {what}; " if any(not pd.isna(s) for s in stds) else ""


def note_missing(ax, values: Iterable, top: bool = False) -> None:
    """Say in a panel how many of the points it would draw have no value (planned without a result yet, or diverged):
    a line shows them only as a gap, or not at all; the table marks each '—'. In the lower right corner (`top`: the
    upper right), where the panel's curves usually leave room, on a white ground."""
    n = sum(1 for v in values if pd.isna(v))
    if n:
        ax.text(0.99, 0.98 if top else 0.02, f"{n} point{'s' if n > 1 else ''} without a value: planned or diverged "
                "(table: —)",
                ha="right", va="top" if top else "bottom", fontsize=7, color="0.3", transform=ax.transAxes,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})


def levels_order(table: pd.DataFrame, levels: Iterable[str]) -> list[str]:
    """Taxonomy levels coarse -> fine: the protocol's `levels` lists recorded, merged (two entries of other levels,
    e.g. all seven and [kingdom, supercategory, genus, species], interleave as each orders them), iNat's order for the
    levels none places, then the order in which the records list them."""
    levels = [lv for lv in dict.fromkeys(levels) if isinstance(lv, str)]
    orders = []
    for col in [c for c in table.columns if c == "protocol.levels" or c.endswith(".levels")]:
        for raw in table[col].dropna().unique():
            try:
                order = json.loads(raw) if isinstance(raw, str) else list(raw)
            except (TypeError, ValueError):
                continue
            if isinstance(order, list):
                orders.append([lv for lv in dict.fromkeys(order) if lv in levels])
    merged: list[str] = []
    for order in [*orders, [lv for lv in INAT_LEVELS if lv in levels]]:
        for i, lv in enumerate(order):
            if lv in merged:
                continue
            before = [b for b in order[:i] if b in merged]  # after the last of its coarser levels placed
            after = [a for a in order[i + 1:] if a in merged]  # else before the first of its finer ones
            at = merged.index(before[-1]) + 1 if before else merged.index(after[0]) if after else len(merged)
            merged.insert(at, lv)
    return merged + [lv for lv in levels if lv not in merged]


_LEVEL_VALUES = re.compile(r"^protocol\.probes\.[^.]+\.levels\.(.+)\.values$")


def level_values(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{evaluation dataset: {level: its number of values}} as the granularity records count them
    (`protocol.probes.<n>.levels.<level>.values`: values told by their path, over the train and test manifests; the
    largest where records differ); a level no record counts is left out."""
    out: dict[str, dict[str, int]] = {}
    if "eval_dataset" not in table:
        return out
    for col in table.columns:
        m = _LEVEL_VALUES.match(col)
        if not m:
            continue
        counts = pd.to_numeric(table[col], errors="coerce")
        for ev, n in counts.groupby(table["eval_dataset"]).max().items():
            if pd.notna(n):
                have = out.setdefault(str(ev), {})
                have[m[1]] = max(have.get(m[1], 0), int(n))
    return out


def varying(df: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """Those of `columns` that take more than one value in `df` (what a series label must name)."""
    return [c for c in columns if c in df and df[c].astype("string").fillna("<NA>").nunique() > 1]


def series_labels(lines: pd.DataFrame, columns: list[str]) -> list[str]:
    """Each line's legend label: its values of `columns`, sizes spelled short; the method when no column is left.
    An encoder not trained here (NOT_TRAINED_HERE: random-init, imported) saw none of the grid's images, so its
    pretraining size is left out ("random", not "random 3k") where its method's lines have one size; at several they
    keep it, or two lines would share a label."""
    has = {"method", "size"} <= set(lines.columns)
    one_size = {m for m in NOT_TRAINED_HERE
                if has and lines.loc[lines["method"] == m, "size"].nunique(dropna=False) == 1}
    labels = []
    for _, row in lines.iterrows():
        parts = []
        for c in columns:
            v = row[c]
            if c == "size" and row.get("method") in one_size:
                continue
            parts.append(fmt_axis(c, v))
        labels.append(" ".join(parts) if parts else str(row.get("method", "")))
    return labels


def nan_to_none(v):
    """None for every null spelling (None, NaN, pd.NA), so that keys built from a plan and from results match."""
    return None if is_null(v) else v


def wide(data: pd.DataFrame, index: list[str] | str, columns: str, values: str = "mean",
         order: list | None = None, spread: str | None = "std", blank_absent: bool = False) -> pd.DataFrame:
    """`data` pivoted for a paper-style table: one row per observed combination of `index` (in first-seen order;
    never the cartesian product of its levels), one column per value of `columns` (`order` when given), NaN for a
    missing cell. The index stays the frame's index. The `spread` column (std over seeds), pivoted alike, rides in
    `attrs["spread"]` (same rows in the same order), for the Markdown, LaTeX and HTML tables to print "mean ± std",
    and `data`'s `partial_seeds` ("k/n", see `cells`) in `attrs["partial"]`, for them to print "mean (k/n)".
    With `blank_absent`, the cells that no row of `data` holds (not in the grid, where a row without a value is a
    missing cell) ride in `attrs["absent"]` (True there, same rows), for those tables to leave blank. A cell that two
    rows of `data` hold shows the first; `attrs["duplicates"]` names each such cell and its values."""
    index = [index] if isinstance(index, str) else list(index)
    keys = data[index].drop_duplicates()
    rows = pd.MultiIndex.from_frame(keys) if len(index) > 1 else pd.Index(keys[index[0]], name=index[0])

    def pivot(column: str, frame: pd.DataFrame = data) -> pd.DataFrame:
        t = frame.pivot_table(index=index, columns=columns, values=column, aggfunc="first", dropna=False, sort=False)
        t = t.reindex(rows)
        if order is not None:
            t = t.reindex(columns=order)
        t.columns.name = None
        return t

    out = pivot(values)
    if spread is not None and spread in data and data[spread].notna().any():
        out.attrs["spread"] = pivot(spread).reset_index(drop=True)
    if "partial_seeds" in data and data["partial_seeds"].notna().any():
        out.attrs["partial"] = pivot("partial_seeds").reset_index(drop=True)
    if blank_absent:
        out.attrs["absent"] = pivot("_present", data.assign(_present=1.0)).isna().reset_index(drop=True)
    twice = data[data.duplicated([*index, columns], keep=False)]
    if not twice.empty:
        out.attrs["duplicates"] = [
            "[" + ", ".join(f"{k}={v}" for k, v in zip([*index, columns], key)) + "]: "
            + ", ".join("no value" if pd.isna(v) else f"{v:.3f}" for v in group[values])
            for key, group in twice.groupby([*index, columns], dropna=False, sort=False)]
    return out
