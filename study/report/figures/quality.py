"""`quality`: change in linear top-1 from clean pretraining for each corruption of the pretraining images, one bar
per method (SimCLR beside supervised), a panel per (pretraining set, evaluation dataset). A (corruption, method)
bar is there where that corrupted cell has a result or the plan has its job ('missing' when it has no value); a pair
never planned is blank, in the figure and in the table. Corruptions run in the grid's order (without a plan: by name,
then parameter values)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from study.corruptions import CORRUPTIONS, parse_corruption
from study.errors import StudyError
from study.report import style
from study.report.figures.common import (NoData, all_methods, cells, dataset_rank, error_bars_note, expected_rows,
                                         fmt_size, label_variants, method_colours, method_key, pick_largest, same,
                                         seeds_note, units_note, wide)

NAME = "quality"
DRAWS = ("linear",)  # the evaluation protocols whose cells it draws
CLEAN_ROW = "none (clean top-1)"  # the table's row of each panel's clean top-1, not a change
TITLE = "Quality: change in top-1 from clean pretraining (paper: CVPR Fig. 4, arXiv v1 Fig. 5)"


def corruption_label(corruption) -> str:
    """A corruption as a figure names it: its registered label with its main parameter ("downsample 2x", "JPEG
    quality 10", "salt & pepper 10%": the paper's names), then any other parameter off its default; the grid's
    spelling for one without a label, or that does not parse."""
    try:
        spec = parse_corruption(corruption)
    except StudyError:
        return str(corruption)
    registered = CORRUPTIONS.get(spec.name)
    if registered.label is None:
        return str(spec)
    main, text = registered.label
    rest = [f"{k}={v}" for k, v in spec.params if k != main and v != registered.params[k].default]
    return text(spec.kwargs[main]) + (f" ({', '.join(rest)})" if rest else "")


def _corruption_order(corruptions, expected: pd.DataFrame | None) -> list:
    """`corruptions` in the order the plan first meets them (the grid's `corruption:` list), those it lacks after
    them by name, then parameter values (downsample:factor=2 before factor=16)."""
    planned = [] if expected is None or "corruption" not in expected else \
        list(dict.fromkeys(expected["corruption"].dropna()))

    def natural(c) -> tuple:
        try:
            spec = parse_corruption(c)
        except StudyError:
            return str(c), ()
        return spec.name, tuple(v for _, v in spec.params)

    return sorted(corruptions, key=lambda c: (planned.index(c) if c in planned else len(planned), *natural(c)))


def _seeds_note(rows: pd.DataFrame) -> str | None:
    """The "k/n" note of a cell (`cells`' partial_seeds; its first row's), None for all its planned seeds."""
    return rows["partial_seeds"].iloc[0] if not rows.empty and isinstance(rows["partial_seeds"].iloc[0], str) else None


def _partial(hit: pd.DataFrame, base: pd.DataFrame) -> str | None:
    """The "k/n" note of a bar: its corrupted cell's, and its clean cell's as "clean k/n"."""
    notes = [f"{prefix}{note}" for prefix, note in (("", _seeds_note(hit)), ("clean ", _seeds_note(base))) if note]
    return ", ".join(notes) or None


def draw(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(figure, plotted data): one row per (panel, corruption, method) bar: clean mean, corrupted mean, delta."""
    table, expected = label_variants(table, expected)
    cell = cells(table, expected=expected)
    lin = cell[cell["protocol"] == "linear"]
    if "corruption" not in lin or not (lin["corruption"] != "none").any():
        planned = expected_rows(expected, protocol="linear")
        if "corruption" in planned and (planned["corruption"] != "none").any():  # not "not in this grid"
            raise NoData("no result of corrupted pretraining yet: every planned cell is missing (missing.csv)")
        raise NoData("no results of corrupted pretraining in this grid")
    if not (lin["corruption"] == "none").any() and not (expected_rows(expected, protocol="linear").get(
            "corruption", pd.Series(dtype=object)) == "none").any():
        raise NoData("no clean pretraining (corruption none) in these results or their plan to measure the change "
                     "from: a `--where` that keeps only corrupted pretraining leaves it out (add --where "
                     "corruption=none)")
    rows = []
    rank = dataset_rank([*lin["eval_dataset"].dropna(), *lin["dataset"].dropna()], expected)
    panels = lin.groupby(["eval_dataset", "dataset", "size"], sort=True, dropna=False)  # datasets: the grid's order
    for (ev, ds, size), group in sorted(panels, key=lambda p: (rank.get(p[0][0], len(rank)),
                                                                rank.get(p[0][1], len(rank)))):
        corrupted = group[group["corruption"] != "none"]
        if corrupted.empty:
            continue
        # the corrupted cells' largest labeled size: a clean cell also probed at a larger one (another evaluate
        # entry) would leave every bar without a value
        labeled = pick_largest(corrupted["labeled_size"].unique())
        group = group[same(group["labeled_size"], labeled)]
        # the (corruption, method) pairs with a corrupted cell here, done or planned; not every method of the clean
        # cells, nor every method with every corruption
        pairs = set(zip(corrupted["corruption"], corrupted["method"]))
        plan = expected_rows(expected, protocol="linear", eval_dataset=ev, dataset=ds)
        if {"method", "corruption", "size"} <= set(plan):
            planned = plan[(plan["corruption"] != "none") & same(plan["size"], size)]
            pairs |= set(zip(planned["corruption"], planned["method"]))
        methods = sorted({m for _, m in pairs if not pd.isna(m)}, key=method_key)
        for corr in _corruption_order({c for c, _ in pairs}, expected):
            for m in methods:
                if (corr, m) not in pairs:  # never planned: no bar, a blank cell
                    continue
                base = group[(group["corruption"] == "none") & (group["method"] == m)]
                hit = group[(group["corruption"] == corr) & (group["method"] == m)]
                b, b_std = (base["mean"].iloc[0], base["std"].iloc[0]) if not base.empty else (np.nan, np.nan)
                v, v_std = (hit["mean"].iloc[0], hit["std"].iloc[0]) if not hit.empty else (np.nan, np.nan)
                rows.append({"eval_dataset": ev, "dataset": ds, "size": size, "labeled_size": labeled,
                             "corruption": corr, "method": m, "clean_mean": b, "clean_std": b_std, "mean": v,
                             "delta": v - b,
                             "delta_std": float(np.hypot(b_std, v_std)),
                             "count": int(hit["count"].iloc[0]) if not hit.empty else 0,
                             "partial_seeds": _partial(hit, base),
                             "clean_partial_seeds": _seeds_note(base)})
    if not rows:
        raise NoData("no corrupted pretraining result shares its cell with a clean one")
    data = pd.DataFrame(rows)
    panels = list(dict.fromkeys(zip(data["eval_dataset"], data["dataset"], data["size"])))
    methods = sorted(data["method"].unique(), key=method_key)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels) + 1.5, 3.4), squeeze=False)
    for ax, (ev, ds, size) in zip(axes[0], panels):
        sub = data[(data["eval_dataset"] == ev) & (data["dataset"] == ds) & same(data["size"], size)]
        corrs = list(dict.fromkeys(sub["corruption"]))
        style.grouped_bars(ax, sub.assign(mean=sub["delta"], std=sub["delta_std"]), ["corruption"], corrs, "method",
                           methods, legend=False, colours=method_colours(methods, all_methods(table, expected)))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(corrs)), [corruption_label(c) for c in corrs], rotation=20, ha="right",
                      fontsize=8)
        ax.set_ylabel("Δ top-1 vs clean (points)")
        style.percent_axis(ax, points=True)
        title = f"{ds} {fmt_size(size)}", f"→ {ev} ({fmt_size(sub['labeled_size'].iloc[0])} labels)"
        ax.set_title(("\n" if len(" ".join(title)) > 50 else " ").join(title))  # long names: two lines
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), title="method")
    style.tight_layout(fig)
    data.attrs["caption"] = ("Change in linear-probe top-1 when the pretraining images are corrupted (probe trained "
                             "and tested on clean images), relative to clean pretraining of the same method; the "
                             f"corrupted cells' largest labeled size; corrupted cells: {seeds_note(data['count'])}; "
                             + error_bars_note(data["delta_std"], "the two cells' standard deviations over seeds "
                                               "combined as independent")
                             + "'missing': the corrupted or the clean cell has no value; blank: that method is not "
                             "pretrained with that corruption in the grid; (k/n): the corrupted cell (or, 'clean k/n', "
                             "the clean one) has a value in k of its n planned seeds." + units_note(change=True))
    return fig, data


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """Rows: (evaluation dataset, pretraining set, its size, the probes' labeled size, corruption); columns: Δ top-1
    per method (blank: not planned). Each panel's first row, corruption `CLEAN_ROW`, holds the clean top-1 itself
    that the changes below it are measured from."""
    methods = sorted(data["method"].dropna().unique(), key=method_key)
    panel = ["eval_dataset", "dataset", "size", "labeled_size"]
    order = {key: i for i, key in enumerate(dict.fromkeys(zip(*(data[k] for k in panel))))}
    clean = data.drop_duplicates([*panel, "method"]).assign(
        corruption=CLEAN_ROW, delta=lambda d: d["clean_mean"], delta_std=lambda d: d["clean_std"],
        partial_seeds=lambda d: d["clean_partial_seeds"])
    both = pd.concat([clean, data], ignore_index=True)
    both = both.iloc[np.argsort([order[key] for key in zip(*(both[k] for k in panel))], kind="stable")]
    shown = both.assign(size=both["size"].map(fmt_size), labeled_size=both["labeled_size"].map(fmt_size))
    return wide(shown, ["eval_dataset", "dataset", "size", "labeled_size", "corruption"],
                "method", values="delta", order=methods, spread="delta_std", blank_absent=True).reset_index()
