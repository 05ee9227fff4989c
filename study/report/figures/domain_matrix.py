"""`domain_matrix`: pretraining dataset (rows) by evaluation dataset (columns), linear-probe top-1, as a heatmap
(one panel per method with an in-domain cell) and a table; the diagonal (in-domain) is boxed. One pretraining size
(the one at which the plan has the most cross-domain cells; without a plan, the one with the most cells with a
result; ties: the larger) and one labeled size (the largest common to every evaluation dataset); the caption says
which."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from study.report.figures.common import (NoData, cells, chance_note, clean, dataset_order, expected_rows, fmt_size,
                                         is_single, label_variants, method_key, not_trained_here, pick_largest, same,
                                         seeds_note, size_key, units_note, wide)
from study.report import style

NAME = "domain_matrix"
DRAWS = ("linear",)  # the evaluation protocols whose cells it draws
TITLE = "Domain: pretraining dataset x evaluation dataset, linear top-1 (paper: arXiv v1 Table 1)"
MAX_ROW_WIDTH = 16.0  # inches of panels side by side (index.html shows a figure at most 1200 px wide)
COLOUR_BAR = 1.0  # inches right of the panels for the colour bar every panel shares


def _matrix_size(planned: pd.DataFrame):
    """The pretraining size (as `size_key` orders it: a whole dataset, null, is the largest) at which `planned`
    (single-dataset linear probes) has the most cross-domain (dataset, eval_dataset) cells, ties: the larger; None
    where it plans none."""
    if planned.empty or not {"size", "dataset", "eval_dataset"} <= set(planned):
        return None
    cross = planned[planned["dataset"] != planned["eval_dataset"]]
    counts = {s: len(set(zip(g["dataset"], g["eval_dataset"]))) for s, g in cross.groupby(cross["size"].map(size_key))}
    return max(counts, key=lambda s: (counts[s], s)) if counts else None


def _choose(lin: pd.DataFrame, planned_size=None):
    """(the cells at one pretraining size and one labeled size, the caption's note, the pretraining size as
    `size_key` gives it, or None). The plan's matrix size (`_matrix_size`) where given, so that a grid still running
    keeps its matrix (its cells without a result yet show as missing); else the size with the most (dataset,
    eval_dataset) cells with a result; the largest size of each dataset when no size is shared. A whole dataset
    (size null) is a size like the others, the largest."""
    key = lin["size"].map(size_key)
    cells_at = {s: len(set(zip(g["dataset"], g["eval_dataset"]))) for s, g in lin.groupby(key)}
    shared = max((g["dataset"].nunique() for _, g in lin.groupby(key)), default=0)
    size = planned_size
    if size is None and cells_at and (shared >= 2 or lin["dataset"].nunique() == 1):
        size = max(cells_at, key=lambda s: (cells_at[s], s))
    if size is not None:
        lin = lin[key == size]
        size_note = "each dataset's whole training set" if math.isinf(size) else f"pretraining size {fmt_size(size)}"
    else:
        lin = lin[key == key.groupby(lin["dataset"]).transform("max")]
        size_note = "largest pretraining size of each dataset (no size common to two)"
    lab = [set(g["labeled_size"].map(size_key)) for _, g in lin.groupby("eval_dataset")]
    common_l = set.intersection(*lab) if lab else set()
    if common_l:
        key = max(common_l)
        lin = lin[lin["labeled_size"].map(size_key) == key]
        chosen = lin["labeled_size"].iloc[0] if not lin.empty else None
        lab_note = f"labeled size {fmt_size(chosen)}"
    else:
        best = lin.groupby("eval_dataset")["labeled_size"].transform(lambda s: size_key(pick_largest(s)))
        lin = lin[lin["labeled_size"].map(size_key) == best]
        lab_note = "largest labeled size of each evaluation dataset"
    return lin, f"{size_note}, {lab_note}", size


def _colour_bar(fig, panels, vmax: float) -> None:
    """One colour bar for every panel (they share the scale 0..vmax), right of them all and as tall as their rows,
    not beside the last panel (mid-figure where the last row of panels is short)."""
    boxes = [ax.get_position() for ax in panels]
    right, bottom, top = max(b.x1 for b in boxes), min(b.y0 for b in boxes), max(b.y1 for b in boxes)
    inch = 1 / fig.get_figwidth()
    cax = fig.add_axes((right + 0.25 * inch, bottom, 0.15 * inch, top - bottom))
    fig.colorbar(ScalarMappable(Normalize(0, vmax), cmap="Greys"), cax=cax, label="top-1")
    style.percent_axis(cax)


def _crosses_domains(rows: pd.DataFrame) -> bool:
    """Whether a row evaluates a single-dataset encoder on another dataset."""
    if rows.empty or not {"dataset", "eval_dataset"} <= set(rows.columns):
        return False
    rows = rows[is_single(rows["dataset"]) & rows["dataset"].notna() & rows["eval_dataset"].notna()]
    return bool((rows["dataset"].astype(str) != rows["eval_dataset"].astype(str)).any())


def _draw_cells(ax, grid: pd.DataFrame, rows: list, cols: list, wanted: set | None, vmax: float) -> None:
    """One method's matrix on `ax`: each cell's mean (grey scale up to `vmax`), 'missing' where a cell without a
    value is planned (`wanted`: the planned (dataset, eval_dataset) pairs; None without a plan: every cell, marked
    'no result', as nothing says it was planned), the in-domain cells (`grid`'s `diagonal`) boxed; a cell the grid
    does not plan is left blank."""
    matrix = grid.pivot(index="dataset", columns="eval_dataset", values="mean").reindex(index=rows, columns=cols)
    in_domain = set(zip(grid.loc[grid["diagonal"], "dataset"], grid.loc[grid["diagonal"], "eval_dataset"]))
    # each cell's top-1 in percent, as the paper's tables give it (the tables here: a fraction)
    values = matrix.astype(float)
    sns.heatmap(values, ax=ax, annot=values * 100, fmt=".1f", cmap="Greys", vmin=0, vmax=vmax, cbar=False,
                linewidths=0.5, linecolor="white")
    for i, d in enumerate(rows):
        for j, e in enumerate(cols):
            blank = np.isnan(matrix.iloc[i, j]) and wanted is not None and (d, e) not in wanted  # not in the grid
            if np.isnan(matrix.iloc[i, j]) and not blank:
                ax.text(j + 0.5, i + 0.5, "missing" if wanted is not None else "no result", ha="center",
                        va="center", fontsize=7, color="0.4")
            if (d, e) in in_domain and not blank:
                ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor=style.HIGHLIGHT, linewidth=2.5))


def draw(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(figure, plotted data): one row per matrix cell (NaN where missing), `diagonal` marks in-domain."""
    table, expected = label_variants(table, expected)
    cell = cells(table, expected=expected)
    lin = clean(cell[cell["protocol"] == "linear"])
    lin = lin[is_single(lin["dataset"]) & lin["dataset"].notna()] if "dataset" in lin else lin.iloc[0:0]
    if lin.empty or lin["dataset"].nunique() < 2 and lin["eval_dataset"].nunique() < 2:
        if _crosses_domains(expected_rows(expected, protocol="linear")):  # not "not in this grid"
            raise NoData("no linear-probe result of a second pretraining or evaluation dataset yet: the grid's "
                         "cross-domain cells are planned without a result (missing.csv)")
        raise NoData("needs linear-probe results of at least two pretraining or evaluation datasets")
    planned = expected_rows(expected, protocol="linear")
    if not (_crosses_domains(lin) or _crosses_domains(planned)):  # a diagonal alone is the quantity figure's
        raise NoData("every encoder is evaluated in its own domain only: no cross-domain cell to draw")
    has_plan = not planned.empty and {"dataset", "eval_dataset"} <= set(planned)
    if has_plan:
        planned = clean(planned[is_single(planned["dataset"]) & planned["dataset"].notna()])
    lin, note, size = _choose(lin, _matrix_size(planned) if has_plan else None)
    datasets = set(lin["dataset"])
    evals = set(lin["eval_dataset"])
    methods = set(lin["method"].dropna())
    if has_plan:
        datasets |= set(planned["dataset"])
        evals |= set(planned["eval_dataset"].dropna())
        if "method" in planned:
            methods |= set(planned["method"].dropna())
        if size is not None and "size" in planned:  # a cell is missing where the grid plans it at this size
            planned = planned[planned["size"].map(size_key) == size]
    rows = dataset_order(datasets, expected)  # the grid's order
    cols = [d for d in rows if d in evals] + dataset_order(evals - set(rows), expected)
    # a panel per method with an in-domain cell (done or planned): a method met only off the diagonal (e.g. the
    # supervised encoder a concatenation pairs with) is no domain study of its own; domain_concat shows it
    diagonal = [lin[lin["dataset"] == lin["eval_dataset"]]]
    if has_plan:
        diagonal.append(planned[planned["dataset"] == planned["eval_dataset"]])
    in_domain = set().union(*(set(d["method"].dropna()) for d in diagonal if "method" in d))
    methods = (sorted((m for m in methods if m in in_domain), key=method_key)  # as the other figures order them
               or sorted(methods, key=method_key) or [None])

    # panels as wide as their cells side by side, as many as fit in MAX_ROW_WIDTH inches, the rest in rows below
    # (five methods of six datasets are not one 40-inch row); the row names (~0.075 in a character) on each row's
    # first panel only: every panel has the same rows
    names = 0.6 + 0.075 * max(len(str(d)) for d in rows)
    panel = 1.2 * len(cols) + 0.3
    per_row = max(1, min(len(methods), int((MAX_ROW_WIDTH - names) // panel)))
    n_rows = math.ceil(len(methods) / per_row)
    height = 0.9 * len(rows) + 1.0 + 0.075 * max(len(str(e)) for e in cols)  # the cells, then the column names
    width = names + panel * per_row + COLOUR_BAR
    fig, grid_axes = plt.subplots(n_rows, per_row, figsize=(width, height * n_rows), squeeze=False)
    vmax = max(1e-9, float(np.nanmax(lin["mean"])) if lin["mean"].notna().any() else 1.0)
    panels = list(grid_axes.flat[:len(methods)])
    for ax in grid_axes.flat[len(methods):]:
        fig.delaxes(ax)
    out = []
    for k, (ax, method) in enumerate(zip(panels, methods)):
        sub = lin[same(lin["method"], method)]
        grid = pd.DataFrame([(d, e) for d in rows for e in cols], columns=["dataset", "eval_dataset"])
        grid = grid.merge(sub[["dataset", "eval_dataset", "size", "labeled_size", "mean", "std", "count",
                               "partial_seeds"]],
                          on=["dataset", "eval_dataset"], how="left")
        grid.insert(0, "method", method)
        # an encoder not trained here (random-init, imported: NOT_TRAINED_HERE) saw none of these datasets: its row
        # is the dataset key the grid gives it, and no cell of it is in-domain
        grid["diagonal"] = (grid["dataset"] == grid["eval_dataset"]) & (not not_trained_here(method))
        grid["count"] = grid["count"].fillna(0).astype(int)
        # a cell without a result is "missing" where the grid plans it (or, without a plan, always), else blank
        wanted = set(zip(sub["dataset"], sub["eval_dataset"]))
        if has_plan:
            mine = planned[same(planned["method"], method)] if "method" in planned else planned
            wanted |= set(zip(mine["dataset"], mine["eval_dataset"]))
        grid["planned"] = [(d, e) in wanted or not has_plan for d, e in zip(grid["dataset"], grid["eval_dataset"])]
        out.append(grid)
        _draw_cells(ax, grid, rows, cols, wanted if has_plan else None, vmax)
        first = k % per_row == 0  # of its row of panels: the row names
        ax.tick_params(axis="y", labelrotation=0, labelleft=first)  # names read across, as the paper's table rows
        ax.grid(False)  # the style's grid would cross a missing cell
        ax.set_xlabel("evaluation dataset")
        ax.set_ylabel("pretraining dataset" if first else "")
        ax.set_title(f"{method}" if method else "")
    style.tight_layout(fig, rect=(0, 0, 1 - COLOUR_BAR / width, 1))
    _colour_bar(fig, panels, vmax)
    data = pd.concat(out, ignore_index=True)
    spread = " (the table adds ± the standard deviation)" if data["std"].notna().any() else ""
    untrained = [str(m) for m in methods if not_trained_here(m)]
    untrained_note = (f" {', '.join(untrained)}: trained on none of these datasets (its row: the dataset the grid "
                      "gives it), no cell boxed." if untrained else "")
    data.attrs["caption"] = (f"Linear-probe top-1, {seeds_note(data['count'])}{spread}; {note}; "
                             + chance_note(table, data["eval_dataset"]) + "boxed diagonal: "
                             "in-domain pretraining (where the grid has it); "
                             + ("'missing': planned, no result yet; blank: not in the grid for that method." if has_plan
                                else "'no result': none in these results (read without the grid's plan, which cells "
                                "it plans is not known).")
                             + untrained_note + units_note("a cell's 45.0"))
    return fig, data


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """Rows: (method,) pretraining dataset; columns: evaluation datasets; '—' where a planned cell has no result, blank
    where the grid never plans the cell (a row the grid never plans is left out)."""
    index = ["method", "dataset"] if data["method"].nunique(dropna=False) > 1 else ["dataset"]
    return wide(data[data["planned"]], index, "eval_dataset", blank_absent=True).reset_index()
