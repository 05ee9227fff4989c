"""`domain_pooling`: in-domain pretraining vs pooled sets (`a+b`) of equal size, per evaluation dataset, as grouped
bars and a table. In-domain is shown at each pooled size and at the per-domain share of it (1M of 4 sets: 250k),
where the grid plans it or a result exists."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from study.report import style
from study.report.figures.common import (NoData, at_largest_labeled, cells, clean, dataset_order, dataset_rank,
                                         error_bars_note, expected_rows, first_cell, fmt_size, label_variants,
                                         labeled_note, planned_missing, same, seeds_note, units_note, wide)

NAME = "domain_pooling"
DRAWS = ("linear",)  # the evaluation protocols whose cells it draws
TITLE = "Domain: in-domain vs pooled pretraining (paper: Table 2)"


def draw(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(figure, plotted data): one row per bar (NaN height where missing)."""
    table, expected = label_variants(table, expected)
    cell = cells(table, expected=expected)
    lin = clean(cell[cell["protocol"] == "linear"])
    if "dataset" not in lin:
        raise NoData("no pretraining datasets recorded")

    def is_pooled(frame: pd.DataFrame) -> pd.Series:
        return frame["dataset"].astype("string").str.contains("+", regex=False).fillna(False).astype(bool)

    pooled = lin[is_pooled(lin)]
    waiting = planned_missing(expected, pooled, ["method", "dataset", "size", "eval_dataset"], protocol="linear")
    waiting = waiting[is_pooled(waiting)] if not waiting.empty else waiting  # planned pooled sets without a result
    if pooled.empty and waiting.empty:
        raise NoData("no pooled pretraining sets (dataset 'a+b') in this grid")
    # a bar names its method where the pooled sets' methods differ (not for a method met only elsewhere, such as
    # the supervised encoder a concatenation pairs with, which has no bar here)
    multi_method = pd.concat([pooled["method"], waiting["method"]]).nunique() > 1
    bars = []
    for ev in dataset_order([*pooled["eval_dataset"].dropna(), *waiting["eval_dataset"].dropna()], expected):
        pool_ev, wait_ev = pooled[pooled["eval_dataset"] == ev], waiting[waiting["eval_dataset"] == ev]
        labeled, pool_ev = at_largest_labeled(pool_ev, wait_ev)
        sizes = set()
        for _, p in pool_ev.iterrows():
            if pd.isna(p["size"]):
                continue
            parts = str(p["dataset"]).count("+") + 1
            sizes |= {int(p["size"]), int(p["size"]) // parts}
        own = lin[(lin["dataset"] == ev) & (lin["eval_dataset"] == ev) & same(lin["labeled_size"], labeled)]
        planned = expected_rows(expected, protocol="linear", dataset=ev, eval_dataset=ev)
        methods = sorted(pool_ev["method"].dropna().unique()) or [None]
        for method in methods:
            suffix = f" · {method}" if multi_method else ""
            mine = planned[same(planned["method"], method)] if "method" in planned else planned
            wanted = set(own.loc[same(own["method"], method), "size"]) | set(mine.get("size", pd.Series()).dropna())
            for s in sorted(sizes & wanted):
                hit = own[(own["size"] == s) & same(own["method"], method)]
                bars.append({"eval_dataset": ev, "bar": f"in-domain {fmt_size(s)}{suffix}", "kind": "in-domain",
                             "dataset": ev, "method": method, "size": s, "labeled_size": labeled, **first_cell(hit)})
            for _, p in pool_ev[same(pool_ev["method"], method)].sort_values(["size", "dataset"]).iterrows():
                bars.append({"eval_dataset": ev, "bar": f"pooled {p['dataset']} {fmt_size(p['size'])}{suffix}",
                             "kind": "pooled", "dataset": p["dataset"], "method": method, "size": p["size"],
                             "labeled_size": labeled, "mean": p["mean"], "std": p["std"], "count": int(p["count"]),
                             "partial_seeds": p.get("partial_seeds")})
    data = pd.DataFrame(bars)
    evals = list(dict.fromkeys(data["eval_dataset"]))
    rank = dataset_rank(data["dataset"], expected)
    # by size, then the number of parts, then the grid's order
    order = data.assign(parts=data["dataset"].astype(str).str.count(r"\+"), rank=data["dataset"].map(rank))
    labels = list(dict.fromkeys(order.sort_values(["kind", "size", "parts", "rank"], kind="stable")["bar"]))
    # a dataset's group holds its own bars only (a pooled set without it has no slot there)
    widest = int(data.groupby("eval_dataset")["bar"].nunique().max())
    legend = max(0.8, 0.45 + 0.075 * max(len(b) for b in labels))  # inches: the legend, outside on the right
    # inches: ~0.27 a bar (wider bars only widen the figure, which index.html then shows smaller), the y axis
    width = 0.27 * len(evals) * widest + 1.2
    fig, ax = plt.subplots(figsize=(min(16.0, max(4.5 - legend, width)) + legend, 3.4))
    style.grouped_bars(ax, data, "eval_dataset", evals, "bar", labels, compact=True)
    ax.set_xticks(np.arange(len(evals)), evals)
    ax.set_xlabel("evaluation dataset")
    ax.set_ylabel("linear top-1")
    style.percent_axis(ax)
    style.tight_layout(fig)
    style.tilt_crowded_xticks(ax)
    data.attrs["bars"] = labels  # the table's columns in the figure's order (by kind, size, parts)
    data.attrs["caption"] = ("Linear-probe top-1 of in-domain pretraining (at each pooled size and the per-domain "
                             "share of it, where planned or done) against pooled sets; "
                             + labeled_note(data, "pooled sets'") + f"; bars: {seeds_note(data['count'])}; "
                             + error_bars_note(data["std"])
                             + "'missing': planned, no result yet." + _outside_note(data) + units_note())
    return fig, data


def _outside_note(data: pd.DataFrame) -> str:
    """A caption sentence naming each pooled set scored on a dataset it does not hold (a cross-domain score, not an
    in-domain comparison: its group has no in-domain bar of the pool's own data), or ''."""
    pooled = data[data["kind"] == "pooled"]
    outside = pooled[[ev not in str(ds).split("+") for ds, ev in zip(pooled["dataset"], pooled["eval_dataset"])]]
    if outside.empty:
        return ""
    pairs = dict.fromkeys(f"{ds} on {ev}" for ds, ev in zip(outside["dataset"], outside["eval_dataset"]))
    return f" Cross-domain, not pooled in-domain (the pool does not hold the evaluation dataset): {'; '.join(pairs)}."


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """As the paper's pooling table: rows: each pretraining set (`pretraining`: in-domain at each size, then each
    pooled set, in the figure's order); columns: evaluation datasets; '—' where a planned cell has no value, blank
    where the grid never plans it (a pooled set not evaluated on that dataset)."""
    bars = data.attrs.get("bars") or list(dict.fromkeys(data["bar"]))
    rows = data.iloc[sorted(range(len(data)), key=lambda i: bars.index(data["bar"].iloc[i]))]
    return wide(rows.rename(columns={"bar": "pretraining"}), "pretraining", "eval_dataset",
                order=list(dict.fromkeys(data["eval_dataset"])), blank_absent=True).reset_index()
