"""`granularity`: top-1 at each taxonomy level, coarse -> fine (as the protocol's `levels` list orders them), one
line per method (supervised included; its colour and marker: the method, its line style: the pretraining set and
size), a panel per evaluation dataset, at its largest labeled size; a panel draws only the lines with results or
planned jobs on its dataset (a line looks alike in every panel; a planned line without a result is missing at each
level its entry names); a line joins the levels its jobs scored: a level only another entry's `levels` name is not
drawn on it nor counted missing, and is blank in its table row."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from study.report import style
from study.report.figures.common import (NoData, all_methods, cells, clean, dataset_order, dataset_rank, drawn_lines,
                                         error_bars_note, expected_rows, fmt_size, hollow_note, label_variants,
                                         level_values, levels_order, method_colours, method_key, note_missing,
                                         pick_largest, planned_levels, planned_missing, same, seeds_note,
                                         series_labels, units_note, varying, wide)

NAME = "granularity"
DRAWS = ("granularity",)  # the evaluation protocols whose cells it draws
TITLE = "Label granularity: top-1 per taxonomy level (paper: CVPR Fig. 5, arXiv v1 Fig. 6)"
LINE_KEYS = ["method", "dataset", "size"]
MODES = {"finest level mapped up": "one finest-level classifier mapped up the taxonomy",
         "per_level": "one classifier per level"}


def draw(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(figure, plotted data): one row per (panel, line, level), NaN where a level is missing."""
    table, expected = label_variants(table, expected)
    cell = clean(cells(table, expected=expected))
    gran = cell[(cell["protocol"] == "granularity") & cell["level"].notna()]
    if gran.empty:
        if not expected_rows(expected, protocol="granularity").empty:  # not "not in this grid"
            raise NoData("no per-level (granularity) result yet: every planned cell is missing (missing.csv)")
        raise NoData("no per-level (granularity) results in this grid")
    # planned jobs without a result: their lines are drawn (and tabled) missing at the levels their entries name
    waiting = clean(planned_missing(expected, gran, [*LINE_KEYS, "corruption", "eval_dataset"],
                                    protocol="granularity"))
    rows_t = table[(table["protocol"] == "granularity") & table["level"].notna()]
    named = [lv for cell in waiting.get("levels", pd.Series(dtype=object)) for lv in planned_levels(cell) or []]
    levels = levels_order(rows_t, [*rows_t["level"], *named])  # a level only a planned line names: on the axis too
    counts = level_values(rows_t)  # {eval dataset: {level: values}}, as the records count them
    both = pd.concat([gran[[*LINE_KEYS, "eval_dataset"]], waiting[[*LINE_KEYS, "eval_dataset"]]], ignore_index=True)
    label_cols = varying(both, LINE_KEYS) or ["method"]
    rank = dataset_rank(both["dataset"].dropna(), expected)
    lines = both[LINE_KEYS].drop_duplicates().sort_values(LINE_KEYS, kind="stable",
                                                          key=lambda s: s.map(rank) if s.name == "dataset" else s)
    lines = lines.iloc[sorted(range(len(lines)), key=lambda i: method_key(lines["method"].iloc[i]))]  # SimCLR first
    labels = series_labels(lines, label_cols)
    # colour and marker: the method; line style: the rest of the line (its pretraining set and size), alike for
    # every method, so that "simclr 500k" and "supervised 500k" share a dash
    methods = list(dict.fromkeys(lines["method"]))
    variants = list(dict.fromkeys(_variant(line) for _, line in lines.iterrows()))
    colours = method_colours(lines["method"], all_methods(table, expected))  # a method's colour in quality too
    evals = dataset_order(both["eval_dataset"].dropna(), expected)
    fig, axes = plt.subplots(1, len(evals), figsize=(4.8 * len(evals) + 1.8, 3.4), squeeze=False)
    out, hollow = [], 0
    for ax, ev in zip(axes[0], evals):
        sub, wait_ev = gran[gran["eval_dataset"] == ev], waiting[waiting["eval_dataset"] == ev]
        labeled = pick_largest((sub if not sub.empty else wait_ev)["labeled_size"].unique())
        first, values = len(out), counts.get(str(ev), {})
        for (_, line), label in zip(lines.iterrows(), labels):
            pts, planned = sub, wait_ev
            for k in LINE_KEYS:
                pts, planned = pts[same(pts[k], line[k])], planned[same(planned[k], line[k])]
            if pts.empty and planned.empty:  # neither a result nor a job of this line on this dataset: not missing
                continue
            pts = pts[same(pts["labeled_size"], labeled)]
            # the levels its jobs scored (a value, or none: diverged); a planned line's, those its entry names
            # (every level where it names none). A level the line's entry never asked (another entry's `levels`) is
            # neither drawn nor counted missing: the line joins the levels it has
            scored = [lv for lv in levels if lv in set(pts["level"])]
            asked = scored if not pts.empty else _planned_levels(planned, levels)
            pts = pts.drop_duplicates("level").set_index("level").reindex(asked)
            xs = np.array([levels.index(lv) for lv in asked])
            look = {**style.line_style(methods.index(line["method"]), len(methods),
                                       dash=variants.index(_variant(line))), "color": colours[line["method"]]}
            ax.errorbar(xs, pts["mean"].astype(float), yerr=pts["std"].astype(float), label=label, **look)
            hollow += style.hollow_partial(ax, xs, pts["mean"].astype(float), pts["partial_seeds"], look)
            for j, lv in zip(xs.tolist(), asked):
                out.append({"eval_dataset": ev, "line": label, "method": line["method"], "labeled_size": labeled,
                            "level": lv,
                            "level_index": j, "values": values.get(lv), "mean": pts.loc[lv, "mean"],
                            "std": pts.loc[lv, "std"],
                            "count": 0 if pd.isna(pts.loc[lv, "count"]) else int(pts.loc[lv, "count"]),
                            "partial_seeds": pts.loc[lv, "partial_seeds"]})
        note_missing(ax, [p["mean"] for p in out[first:]], top=True)  # top-1 falls from coarse to fine
        ax.set_xticks(np.arange(len(levels)), [f"{lv} ({values[lv]})" if lv in values else lv for lv in levels],
                      rotation=20, ha="right")  # each level's number of values, where recorded
        ax.set_xlabel("taxonomy level (coarse → fine)")
        ax.set_ylabel("top-1")
        style.percent_axis(ax)
        ax.set_title(f"{ev} ({fmt_size(labeled)} labels)")
    legend = drawn_lines(axes[0])
    names = [label for label in labels if label in legend]
    handles = [legend[n] for n in names]
    if hollow:
        handles, names = handles + [style.hollow_handle()], names + [style.PARTIAL_LABEL]
    axes[0][-1].legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5))
    style.tight_layout(fig)
    data = pd.DataFrame(out)
    mode_col = "protocol.granularity_mode"
    drawn = rows_t[rows_t["protocol_fingerprint"].isin(set(gran["protocol_fingerprint"]))]  # not a superseded recipe
    modes = sorted(drawn[mode_col].dropna().unique()) if mode_col in drawn else []
    how = " and ".join(MODES.get(m, str(m)) for m in modes) or "one finest-level classifier mapped up the taxonomy"
    data.attrs["caption"] = (f"Top-1 at each taxonomy level of {how}, at each evaluation dataset's largest labeled "
                             f"size (panel title); points: {seeds_note(data['count'])}; "
                             + error_bars_note(data["std"]) + hollow_note(data["partial_seeds"])
                             + "a panel's note counts its points without a value (planned, or diverged)."
                             + _values_note(counts, set(data["eval_dataset"]) if len(data) else set(), levels)
                             + units_note())
    return fig, data


def _variant(line: pd.Series) -> tuple:
    """A line's keys but its method (a NaN size as None, so that two such lines are one variant)."""
    return tuple(None if pd.isna(line[k]) else line[k] for k in LINE_KEYS if k != "method")


def _planned_levels(planned: pd.DataFrame, levels: list[str]) -> list[str]:
    """The levels of `levels` that the planned jobs of one line name (their `levels`, "kingdom,species"); all of
    them where a job names none (it scores its manifest's levels), or none is planned, or the plan has no such
    column."""
    named = [planned_levels(cell) for cell in planned["levels"]] if "levels" in planned else [None]
    if not named or None in named:
        return levels
    asked = {lv for cell in named for lv in cell}
    return [lv for lv in levels if lv in asked]


def _values_note(counts: dict[str, dict[str, int]], evals: set, levels: list[str]) -> str:
    """The caption's count of each level's values per evaluation dataset (top-1 by chance: about 1 / values), and a
    warning for a level of one value, which every classifier scores 1.0 on."""
    shown = {ev: c for ev, c in counts.items() if ev in evals and c}
    if not shown:
        return ""
    note = " Values per level (a tick's number; top-1 by chance about 1/values): " + "; ".join(
        f"{ev}: " + ", ".join(f"{lv} {c[lv]}" for lv in levels if lv in c) for ev, c in sorted(shown.items())) + "."
    single = sorted({f"{lv} ({ev})" for ev, c in shown.items() for lv, n in c.items() if n == 1 and lv in levels})
    if single:
        note += (f" {', '.join(single)}: one value, so 100% (1.0 in the table) whatever the encoder (not a result; "
                 "the granularity_gap_grows finding leaves such a level out).")
    return note


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """Rows: (evaluation dataset, labeled size, line); columns: levels coarse -> fine."""
    levels = list(dict.fromkeys(data.sort_values("level_index")["level"]))
    return wide(data.assign(labeled_size=data["labeled_size"].map(fmt_size)), ["eval_dataset", "labeled_size", "line"],
                "level", order=levels, blank_absent=True).reset_index()  # blank: a level the line's entry never asked
