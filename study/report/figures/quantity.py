"""`quantity`: top-1 against the number of labeled images (log x), one line per in-domain pretraining set (its
method and size, and backbone where it varies; cross-domain and pooled pretraining are the domain figures', corrupted
pretraining the quality figure's), a panel per evaluation dataset (rows; the pretraining dataset is the panel's) and
protocol (columns: linear probe, fine-tuning, and kNN where the grid has kNN results: `knn_top1` of `knn` jobs and
`also_knn` probes); colour and marker tell the pretraining size (the method, where the figure has one size) and line
style the method, alike in every panel;
supervised-from-scratch on the same labeled subsets as the reference line (one per backbone where it varies, and one
per `variant` of a scratch entry); error bars are the standard deviation over seeds."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from study.report import style
from study.report.figures.common import (NoData, all_methods, base_method, cells, chance_note, clean, dataset_order,
                                         drawn_lines, error_bars_note, expected_rows, fmt_size, hollow_note,
                                         label_variants, method_colours, method_key, nan_to_none, not_trained_here,
                                         note_missing, planned_sizes, seeds_note, series_labels, size_key, units_note,
                                         varying, wide)
from study.results.table import AGGREGATE_COLUMNS, key_tuples

NAME = "quantity"
TITLE = "Data quantity: top-1 vs labeled images (paper: CVPR Fig. 2; kNN panels ours)"
PROTOCOLS = ("linear", "finetune", "knn")  # knn: the knn_top1 rows of `knn` jobs and of `also_knn` probes
PANEL_NAMES = {"linear": "linear probe", "finetune": "fine-tuning", "knn": "kNN"}
DRAWS = (*PROTOCOLS, "scratch")  # the evaluation protocols whose cells it draws (scratch: the reference line)
LINE_KEYS = ["method", "dataset", "size"]
SCRATCH = "scratch (supervised, random init)"
UNTRAINED_TEXT = {"random": "the frozen features of an untrained (random-init) encoder",  # the caption's words
                  "pretrained": "a given encoder (`pretrained.encoder_file`), not trained on the pretraining set its "
                                "line names"}
POINT_COLUMNS = ["labeled_size", "mean", "std", "count", "partial_seeds"]
# the paper's pretraining sizes (None: the whole set): a figure whose sizes are all among them gives each its colour
# and marker by its place here, so that a size looks alike in every grid's figure (1M in the quantity and domain grids)
SIZE_LADDER = (50_000, 125_000, 250_000, 500_000, 1_000_000, None)


def _with_planned_gaps(done: pd.DataFrame, planned: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`done` plus a row without a value for each planned cell (`keys`, labeled size) that has no result: at each
    planned labeled size where the plan names them (a gap in a line), else one per line without any result."""
    if planned.empty:
        return done
    have = set(key_tuples(done, [*keys, "labeled_size"]))
    lines_with_results = {t[:-1] for t in have}
    extra = []
    labeled_sizes = planned.get("labeled_sizes", pd.Series(None, index=planned.index))
    for line, sizes in zip(key_tuples(planned, keys), labeled_sizes):  # whole-dataset size: NaN in the plan, None here
        for size in planned_sizes(sizes) or [None]:
            if (*line, size) not in have and (size is not None or line not in lines_with_results):
                extra.append({**dict(zip(keys, line)), "labeled_size": size})
    return pd.concat([done, pd.DataFrame(extra).drop_duplicates()], ignore_index=True) if extra else done


def _line_rows(cell: pd.DataFrame, expected: pd.DataFrame | None) -> pd.DataFrame:
    """The cells of the linear-probe, fine-tuning and kNN lines (PROTOCOLS), and the planned ones without a result
    (`_with_planned_gaps`)."""
    main = clean(cell[cell["protocol"].isin(PROTOCOLS)])
    planned = expected_rows(expected)
    if planned.empty or "protocol" not in planned:
        return main
    keys = ["eval_dataset", "protocol", *LINE_KEYS]
    planned = clean(planned[planned["protocol"].isin(PROTOCOLS)])
    return _with_planned_gaps(main, planned, keys) if all(k in planned for k in keys) else main


def _scratch_rows(cell: pd.DataFrame, expected: pd.DataFrame | None) -> pd.DataFrame:
    """The from-scratch cells, with the planned ones that have no result (`_with_planned_gaps`), each line told apart
    by its backbone and `variant`."""
    scratch = clean(cell[cell["protocol"] == "scratch"])
    planned = clean(expected_rows(expected, protocol="scratch"))
    return _with_planned_gaps(scratch, planned, ["eval_dataset", "protocol", "backbone", "variant"])


def _scratch_lines(ref: pd.DataFrame, by_backbone: bool) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) of each from-scratch reference line: one per backbone when backbones vary and one per `variant`
    (two scratch entries of one grid), labelled "<SCRATCH> · <backbone> · <variant>" (rows without either last)."""
    if ref.empty:
        return []
    keys = [k for k, split in (("backbone", by_backbone), ("variant", True)) if split and k in ref
            and ref[k].notna().any()]
    if not keys:
        return [(SCRATCH, ref)]
    return [(" · ".join([SCRATCH, *(str(v) for v in values if not pd.isna(v))]), rows)
            for values, rows in ref.groupby(keys, dropna=False, sort=True)]


def _knn_cells(table: pd.DataFrame, expected: pd.DataFrame | None) -> pd.DataFrame:
    """The knn_top1 cells under protocol "knn": of `knn` jobs and of linear and granularity probes with `also_knn`
    (a granularity job's kNN votes on the manifest's labels, as a linear probe's; where a `knn` job and a probe
    scored one encoder at one labeled size, the `knn` job's)."""
    knn = cells(table, metric="knn_top1", expected=expected)
    if knn.empty or "protocol" not in knn:
        return knn.iloc[0:0]
    knn = knn[knn["protocol"].isin(("knn", "linear", "granularity"))]
    # a cell's key, as resolve_conflicts reads it (every column but the fingerprint and what aggregation adds)
    keys = [c for c in knn.columns if c not in ("protocol_fingerprint", "partial_seeds", *AGGREGATE_COLUMNS)]
    knn = knn.assign(_own=knn["protocol"] != "knn", protocol="knn").sort_values("_own", kind="stable")
    return knn[~pd.Series(key_tuples(knn, keys), index=knn.index).duplicated()].drop(columns="_own")


def _panels() -> str:
    """The panels' names, for a message: "linear probe, fine-tuning or kNN"."""
    names = [PANEL_NAMES[p] for p in PROTOCOLS]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _points(pts: pd.DataFrame, **line) -> list[dict]:
    """The plotted data's rows of one drawn line: its `line` columns, then each point's POINT_COLUMNS (a count of
    none as 0)."""
    return [{**line, "labeled_size": p["labeled_size"], "mean": p["mean"], "std": p["std"],
             "count": 0 if pd.isna(p["count"]) else int(p["count"]), "partial_seeds": p["partial_seeds"]}
            for _, p in pts.iterrows()]


def draw(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(figure, plotted data): one row per drawn point, NaN where a cell is missing."""
    table, expected = label_variants(table, expected)
    cell = cells(table, expected=expected)
    knn = _knn_cells(table, expected)
    cell = pd.concat([cell, knn], ignore_index=True) if not knn.empty else cell
    main = _line_rows(cell, expected)
    main = main[main["dataset"].astype(object).eq(main["eval_dataset"])]  # in-domain; the rest: domain_*
    if main.empty:
        raise NoData(f"no in-domain {_panels()} top-1 results in this grid")
    scratch = _scratch_rows(cell, expected)
    # as label_variants split the methods: by the backbones of results (null counted) and of planned rows that name
    # one (a planned line without a result has none yet)
    known = pd.concat([scratch, main])
    split_scratch = bool(varying(known[known["count"].notna() | known["backbone"].notna()], ["backbone"]))
    evals = dataset_order(main["eval_dataset"].dropna(), expected)  # the grid's order
    protocols = [p for p in PROTOCOLS if p in set(main["protocol"])]
    label_cols = varying(main, ["method", "size"]) or ["size"]  # in-domain: the panel names the dataset
    lines = main[LINE_KEYS].drop_duplicates().sort_values(["method", "dataset", "size"], kind="stable")
    lines = lines.iloc[sorted(range(len(lines)), key=lambda i: method_key(lines["method"].iloc[i]))]  # SimCLR solid
    lines = lines.assign(line=series_labels(lines, label_cols))
    methods = list(dict.fromkeys(lines["method"]))
    sizes = sorted({nan_to_none(s) for s in lines["size"]}, key=lambda s: (s is None, s or 0))  # whole set: last
    by_method = len(sizes) == 1  # one size: colour and marker tell the methods apart too, not one colour for all
    colours = method_colours(methods, all_methods(table, expected))  # then a method's colour in quality, granularity
    sizes = list(SIZE_LADDER) if set(sizes) <= set(SIZE_LADDER) else sizes  # else by place among the figure's own

    fig, axes = plt.subplots(len(evals), len(protocols), figsize=(4.2 * len(protocols), 3.2 * len(evals)),
                             squeeze=False, sharey="row")
    points, hollow = [], 0
    for r, ev in enumerate(evals):
        panel_sizes = sorted(set(main.loc[main["eval_dataset"] == ev, "labeled_size"].dropna())
                             | set(scratch.loc[scratch["eval_dataset"] == ev, "labeled_size"].dropna()))
        for c, proto in enumerate(protocols):
            ax = axes[r][c]
            first = len(points)
            sub = main[(main["eval_dataset"] == ev) & (main["protocol"] == proto)]
            for _, line in lines.iterrows():
                rows = sub
                for k in LINE_KEYS:
                    rows = rows[rows[k].astype(object).eq(line[k]) | (rows[k].isna() & pd.isna(line[k]))]
                if rows.empty:  # neither a result nor a planned job of this line in this panel
                    continue
                rows = rows[rows["labeled_size"].notna()] if "labeled_size" in rows else rows
                if not rows.empty:  # results (a value or diverged) and planned cells: the line's own labeled sizes
                    pts = rows[POINT_COLUMNS].sort_values("labeled_size")
                else:  # planned at no named labeled size, nothing done yet: a missing cell at every size of the panel
                    pts = pd.DataFrame({"labeled_size": panel_sizes, "mean": float("nan"), "std": float("nan"),
                                        "count": 0, "partial_seeds": None})
                look = ({**style.line_style(methods.index(line["method"]), len(methods)),
                         "color": colours[line["method"]]} if by_method else
                        style.line_style(sizes.index(nan_to_none(line["size"])), len(sizes),
                                         dash=methods.index(line["method"])))
                if not by_method and not_trained_here(line["method"]):  # not the colour of a size it never saw
                    look["color"] = style.UNTRAINED
                ax.errorbar(pts["labeled_size"].astype(float), pts["mean"].astype(float),  # NaN: a gap
                            yerr=pts["std"].astype(float), label=line["line"], **look)
                hollow += style.hollow_partial(ax, pts["labeled_size"].astype(float), pts["mean"].astype(float),
                                               pts["partial_seeds"], look)
                points += _points(pts, eval_dataset=ev, protocol=proto, line=line["line"], role="pretrained",
                                  method=line["method"], dataset=line["dataset"], size=line["size"])
            ref = scratch[scratch["eval_dataset"] == ev].sort_values("labeled_size")
            if sub.empty and ref.empty:
                ax.set_title(f"{ev} · {PANEL_NAMES[proto]}")
                ax.text(0.5, 0.5, "not evaluated", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            for k, (name, ref_rows) in enumerate(_scratch_lines(ref, split_scratch)):
                ref_pts = ref_rows[POINT_COLUMNS]
                ref_look = {**style.REFERENCE, **({"marker": style.MARKERS[k % len(style.MARKERS)]} if k else {})}
                ax.errorbar(ref_pts["labeled_size"].astype(float), ref_pts["mean"].astype(float),
                            yerr=ref_pts["std"].astype(float), label=name, **ref_look)
                hollow += style.hollow_partial(ax, ref_pts["labeled_size"].astype(float),
                                               ref_pts["mean"].astype(float), ref_pts["partial_seeds"], ref_look)
                points += _points(ref_pts, eval_dataset=ev, protocol=proto, line=name, role="scratch",
                                  method="scratch", dataset=ev, size=None)
            note_missing(ax, [p["mean"] for p in points[first:]])
            ax.set_xscale("log")
            ax.set_title(f"{ev} · {PANEL_NAMES[proto]}")
            ax.set_xlabel("labeled images")
            style.percent_axis(ax)
            if c == 0:
                ax.set_ylabel("top-1")
            if panel_sizes:
                ax.set_xticks([float(s) for s in panel_sizes], [fmt_size(s) for s in panel_sizes])
                ax.minorticks_off()
    legend = drawn_lines(axes.flat)  # in the legend: the pretrained lines by method and size, then scratch
    pretrained = list(dict.fromkeys(lines.assign(_m=lines["method"].map(method_key), _s=lines["size"].map(size_key))
                                    .sort_values(["_m", "_s"], kind="stable")["line"]))
    names = [n for n in pretrained if n in legend] + [n for n in legend if n not in pretrained]
    handles = [legend[n] for n in names]
    if hollow:
        handles, names = handles + [style.hollow_handle()], names + [style.PARTIAL_LABEL]
    data = pd.DataFrame(points, columns=["eval_dataset", "protocol", "line", "role", "method", "dataset", "size",
                                         *POINT_COLUMNS])
    if not data["mean"].notna().any():
        plt.close(fig)
        if main["count"].notna().any():  # results there are, without a value
            raise NoData(f"no in-domain {_panels()} result has a value: every one diverged "
                         "(recorded without a value; see the warnings)")
        raise NoData(f"no in-domain {_panels()} result yet: every planned cell is missing "
                     "(missing.csv)")
    # of one method, the lines' labels leave it out ("50k", not "simclr 50k"): the legend's title and caption name it
    only = str(methods[0]) if len(methods) == 1 and "method" not in label_cols else None
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5),
               title=f"pretraining ({only})" if only else "pretraining")
    style.tight_layout(fig)
    corrupted = "corruption" in cell and (cell["corruption"].fillna("none") != "none").any()
    grey = not by_method  # colour tells sizes apart: an encoder not trained on the grid's images is grey
    told = {m: ("grey, " if grey and not_trained_here(m) else "") + UNTRAINED_TEXT.get(
        m, "an encoder not trained on the grid's images") for m in map(base_method, methods)
        if m in UNTRAINED_TEXT or grey and not_trained_here(m)}  # each once, with its variants ("random · resnet18")
    data.attrs["caption"] = ("Top-1 against labeled images (log scale), one line per pretraining set"
                             + (f" of {only}" if only else "") + " ("
                             + ("colour, marker and line style: its method, at its one size" if by_method else
                                "colour and marker: its size; line style: its method") + "); "
                             + ("clean pretraining images only (corrupted ones: the quality figure); " if corrupted
                                else "")
                             + "".join(f"{m}: {text}; " for m, text in told.items())
                             + ("dotted black: supervised from scratch on the same labeled subsets; "
                                if not scratch.empty else "")
                             + f"points: {seeds_note(data['count'])}; "
                             + chance_note(table, data["eval_dataset"])
                             + error_bars_note(data["std"]) + hollow_note(data["partial_seeds"])
                             + "a panel's note counts its points without a value (planned, or diverged: a gap in a "
                             "line); "
                             "in the table, '—': planned, no result yet (a row of missing.csv) or diverged, blank: not "
                             "in the grid, "
                             "(k/n): k of the n planned seeds."
                             + (" kNN: top-1 of a cosine k-nearest-neighbour vote on the same frozen features (`knn` "
                                "jobs, and linear and granularity probes with `also_knn`)."
                                if "knn" in protocols else "")
                             + units_note())
    return fig, data


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """Rows (evaluation dataset, protocol, line), one column per labeled size; '—' where a planned cell has no value,
    blank where the grid never plans it."""
    t = data.assign(labeled=data["labeled_size"].map(fmt_size))
    order = list(dict.fromkeys(t.sort_values("labeled_size")["labeled"]))
    return wide(t, ["eval_dataset", "protocol", "line"], "labeled", order=order, blank_absent=True).reset_index()
