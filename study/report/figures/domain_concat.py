"""`domain_concat`: single encoders vs their concatenated features (protocol `concat`, dataset `a|b`; method `m`
or `m1|m2`), per evaluation dataset: bars for the first encoder, the second and the concatenation, and a table with
the gain of the concatenation over the better single encoder and over the in-domain one (the paper's comparison:
the encoder pretrained on the evaluation dataset, where exactly one of the two is; an encoder not trained here, random
or imported (`pretrained`), never is, whatever dataset key the grid gives it). A single encoder's bar is of the
seeds its concatenation was made of (a concatenation of seed 0's encoders beside singles of seeds 0 and 1: seed 0's
single cells, not their mean over both seeds). A single encoder's cell without a result that the plan has no linear
job of (at that labeled size; or that the part `--where` reports leaves out) is blank, in the figure and the table,
not "missing" (a planned cell without a result yet, as in every figure)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from study.report import style
from study.report.figures.common import (NoData, at_largest_labeled, cells, clean, dataset_order, dataset_rank,
                                         encoder_parts, error_bars_note, expected_rows, first_cell, fmt_size,
                                         label_variants, labeled_note, not_trained_here, planned_missing,
                                         planned_sizes, same, seeds_note, units_note, wide)
from study.results.table import is_null, key_tuples

NAME = "domain_concat"
DRAWS = ("linear", "concat")  # the evaluation protocols whose cells it draws
TITLE = "Domain: single encoders vs concatenated features (paper: CVPR Table 3)"
ROLES = ("first encoder", "second encoder", "concatenated")


def _role_seeds(seeds, n: int) -> list[set[str] | None]:
    """Per encoder, the seeds (as text) a concatenation cell's `seeds` ("0", "0,1", seed pairs "0|1,0|2") holds;
    None each where it holds none (a planned cell without a result)."""
    if not isinstance(seeds, str) or not seeds:
        return [None] * n
    out: list[set[str] | None] = [set() for _ in range(n)]
    for pair in seeds.split(","):
        for i, s in enumerate(encoder_parts(pair, n)):
            out[i].add(str(s))
    return out


def _of_seeds(hit: pd.DataFrame, table: pd.DataFrame, seeds: set[str] | None) -> pd.DataFrame:
    """`hit` (linear cells of one encoder) recomputed from `table`'s rows of `seeds` only, where it also averages
    other seeds; unchanged otherwise."""
    if seeds is None or hit.empty or "seed" not in table:
        return hit
    if all(set(str(v).split(",")) <= seeds for v in hit["seeds"]):
        return hit
    rows = table[(table["stage"] == "evaluate") & (table["protocol"] == "linear")
                 & table["seed"].astype("string").isin(seeds)]
    if rows.empty:
        return hit.iloc[0:0]
    mine = clean(cells(rows))
    keys = [c for c in ("method", "dataset", "size", "eval_dataset", "labeled_size") if c in hit]
    want = set(key_tuples(hit, keys))
    return mine[[k in want for k in key_tuples(mine, keys)]]


def concat_encoders(c) -> list[tuple]:
    """(method, dataset, size, seeds) of each encoder of the concatenation cell `c` (a row of `cells`): size None for
    a whole dataset's, seeds as `_role_seeds` gives them."""
    datasets = encoder_parts(c["dataset"], len(ROLES) - 1)  # a shared value stands for both encoders
    size = c["size_pair"] if "size_pair" in c and isinstance(c["size_pair"], str) else c["size"]
    methods, sizes = encoder_parts(c["method"], len(datasets)), encoder_parts(size, len(datasets))
    return list(zip(methods, datasets, sizes, _role_seeds(c.get("seeds"), len(datasets))))


def encoder_cells(lin: pd.DataFrame, table: pd.DataFrame, encoder: tuple, eval_dataset, labeled) -> pd.DataFrame:
    """The linear cells (of `lin`, `table`'s clean linear cells) of one encoder of a concatenation (`concat_encoders`)
    on `eval_dataset` at `labeled` labels, of the seeds the concatenation was made of: what its bar draws, and what
    study.report.findings compares the concatenation with."""
    method, dataset, size, seeds = encoder
    hit = lin[(lin["dataset"] == dataset) & same(lin["method"], method) & (lin["eval_dataset"] == eval_dataset)
              & same(lin["labeled_size"], labeled)]
    whole = size is None or pd.isna(size)  # an encoder of the whole dataset: its cells have no size
    hit = hit[hit["size"].isna()] if whole else hit[hit["size"] == size]
    return _of_seeds(hit, table, seeds)


def _planned_single(expected: pd.DataFrame | None, encoder: tuple, eval_dataset, labeled) -> bool:
    """Whether the plan `expected` has a linear job of one encoder of a concatenation (`concat_encoders`), pretrained
    on clean images (as the cells its bar draws), on `eval_dataset` at `labeled` labels (a job naming no labeled
    sizes, or `all`: at any size, as a result records `all` by its count); True without a plan (nothing says which
    cells a grid has: each is drawn, as missing where it has no result)."""
    if expected is None or expected.empty:
        return True
    method, dataset, size, _ = encoder
    rows = expected_rows(expected, protocol="linear", dataset=dataset, eval_dataset=eval_dataset)
    if "corruption" in rows:
        rows = rows[rows["corruption"] == "none"]
    if rows.empty:
        return False
    if "method" in rows:
        rows = rows[same(rows["method"], method)]
    if "size" in rows:
        whole = size is None or pd.isna(size)
        rows = rows[rows["size"].isna()] if whole else rows[rows["size"] == size]
    if "labeled_sizes" in rows:  # None: `all`, whose count a result records (the train manifest's): any size
        rows = rows[[not sizes or any(v is None or not is_null(labeled) and v == labeled for v in sizes)
                     for sizes in map(planned_sizes, rows["labeled_sizes"])]]
    return not rows.empty


def _untrained_alone(conc: pd.DataFrame) -> set:
    """The methods not trained here (random-init, imported) that the concatenations of `conc` hold with one dataset
    key and size only: named by their method alone (that key and size are no images it saw); with several, they tell
    its encoders apart and stay in its name."""
    seen: dict = {}
    for _, c in conc.iterrows():
        for method, dataset, size, _ in concat_encoders(c):
            if not_trained_here(method):
                seen.setdefault(method, set()).add((dataset, None if size is None or pd.isna(size) else size))
    return {m for m, where in seen.items() if len(where) == 1}


def draw(table: pd.DataFrame, expected: pd.DataFrame | None = None):
    """(figure, plotted data): one row per bar (NaN where a single-encoder cell is missing; `planned` False, and no
    bar, where the plan never evaluates it)."""
    table, expected = label_variants(table, expected)
    cell = clean(cells(table, expected=expected))
    conc = cell[cell["protocol"] == "concat"]
    waiting = planned_missing(expected, conc, ["method", "dataset", "size", "size_pair", "eval_dataset"],
                              protocol="concat")  # planned concatenations without a result: drawn missing
    if conc.empty and waiting.empty:
        raise NoData("no concatenated-encoder results (protocol 'concat') in this grid")
    lin = cell[cell["protocol"] == "linear"]
    alone = _untrained_alone(conc)
    rows = []
    for ev in dataset_order([*conc["eval_dataset"].dropna(), *waiting["eval_dataset"].dropna()], expected):
        group, wait_ev = conc[conc["eval_dataset"] == ev], waiting[waiting["eval_dataset"] == ev]
        labeled, group = at_largest_labeled(group, wait_ev)
        rank = dataset_rank(group["dataset"], expected)
        for _, c in group.sort_values("dataset", key=lambda s: s.map(rank)).iterrows():
            encoders = concat_encoders(c)
            methods, datasets, sizes, seeds = (list(v) for v in zip(*encoders))
            names = [m if m in alone else f"{m} {d}" + (f" {fmt_size(s)}" if s is not None and not pd.isna(s) else "")
                     for m, d, s in zip(methods, datasets, sizes)]
            if seeds[0] != seeds[1]:  # a concatenation of two seeds' encoders: name each encoder's seed
                names = [f"{n} seed {','.join(sorted(s, key=lambda v: (len(v), v)))}" for n, s in zip(names, seeds)]
            pair = " | ".join(names)
            for role, encoder, name in zip(ROLES, encoders, names):
                hit = encoder_cells(lin, table, encoder, ev, labeled)
                own = encoder[1] == ev and not not_trained_here(encoder[0])  # pretrained on ev
                # a cell without a result that the plan never has (or the reported part leaves out): blank, not
                # "missing"
                planned = not hit.empty or _planned_single(expected, encoder, ev, labeled)
                rows.append({"eval_dataset": ev, "pair": pair, "role": role, "encoder": name, "dataset": encoder[1],
                             "in_domain": own, "planned": planned, "labeled_size": labeled, **first_cell(hit)})
            rows.append({"eval_dataset": ev, "pair": pair, "role": "concatenated", "encoder": pair, "dataset": None,
                         "in_domain": False, "planned": True, "labeled_size": labeled, "mean": c["mean"],
                         "std": c["std"], "count": int(c["count"]), "partial_seeds": c.get("partial_seeds")})
    data = pd.DataFrame(rows)
    groups = list(dict.fromkeys(zip(data["eval_dataset"], data["pair"])))
    # one encoder per line, and a group as wide as its longest line (7 pt: ~0.06 in a character), so that the long
    # pair names of neighbouring groups do not overlap
    ticks = [f"{ev}\n" + pair.replace(" | ", " |\n") for ev, pair in groups]
    group = max(1.8, 0.3 + 0.06 * max(len(line) for t in ticks for line in t.split("\n")))
    fig, ax = plt.subplots(figsize=(max(4.5, group * len(groups) + 2), 3.6))
    style.grouped_bars(ax, data[data["planned"]], ["eval_dataset", "pair"], groups, "role", list(ROLES))
    ax.set_xticks(np.arange(len(groups)), ticks, fontsize=7)
    ax.set_ylabel("linear top-1")
    style.percent_axis(ax)
    style.tight_layout(fig)
    data.attrs["caption"] = ("Linear-probe top-1 of each single encoder and of their concatenated features, per "
                             "evaluation dataset (x label: evaluation dataset, then the pair), at "
                             + labeled_note(data, "concatenations'") + f"; bars: {seeds_note(data['count'])}; "
                             + error_bars_note(data["std"])
                             + "'missing': planned, no result yet"
                             + ("; blank: a single encoder the grid never probes there (a linear entry of it would)"
                                if not data["planned"].all() else "") + "." + units_note())
    return fig, data


def paper_table(data: pd.DataFrame) -> pd.DataFrame:
    """Rows: (evaluation dataset, pair); columns: each role, the gain of concatenating over the better single encoder
    and over the in-domain one (NaN where neither or both encoders are in-domain: `in_domain`, pretrained here on the
    evaluation dataset). A cell the plan never has (a single encoder's, `draw` leaves out), and a gain that compares
    with one or that has no in-domain encoder to compare with, reads blank (`attrs["absent"]`); a planned cell without
    a result, and a gain of one, reads missing."""
    shown = data[data["planned"].astype(bool)] if "planned" in data else data
    table = wide(shown, ["eval_dataset", "pair"], "role", order=list(ROLES), blank_absent=True)
    best = table[["first encoder", "second encoder"]].max(axis=1, skipna=False)
    table["gain over better single"] = table["concatenated"] - best
    singles = data[data["role"] != "concatenated"]
    in_domain, compared = {}, set()
    for (ev, pair), g in singles.groupby(["eval_dataset", "pair"], sort=False):
        hit = g[g["in_domain"].astype(bool)]
        in_domain[(ev, pair)] = hit["mean"].iloc[0] if len(hit) == 1 else float("nan")
        if len(hit) == 1 and bool(hit["planned"].iloc[0] if "planned" in hit else True):
            compared.add((ev, pair))
    table["gain over in-domain"] = table["concatenated"] - pd.Series(
        [in_domain.get(k, float("nan")) for k in table.index], index=table.index, dtype=float)
    absent = table.attrs["absent"]
    absent["gain over better single"] = (absent["first encoder"] | absent["second encoder"]).to_numpy()
    absent["gain over in-domain"] = [k not in compared for k in table.index]
    return table.reset_index()
