"""The report's warnings about its cells, one function per kind, each returning its lines: protocol fingerprint
conflicts (and the recipe keys they differ in), results of several code versions (the report's, a cell's) or of a
modified tree, cells whose seeds ran on different devices or CPU thread counts, metrics recorded without a value,
cells with fewer seeds than planned, table positions holding more than one cell, cells of a protocol no figure
draws."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from contextlib import suppress
from numbers import Real
from typing import Any

import pandas as pd

from study.results import AGGREGATE_COLUMNS, cell_columns, resolve_conflicts
from study.results.record import fingerprinted
from study.results.table import flatten, is_null, job_code_versions, own_code_versions, planned_seeds
from study.version import is_modified

DIFFERENCES_SHOWN = 4  # the recipe keys a conflict line names (then "and k more")


def _cell_keys(agg: pd.DataFrame) -> list[str]:
    """The columns of `aggregate`'s output that name a cell in a warning (not its grid, stage or fingerprint)."""
    return [c for c in agg.columns if c not in (*AGGREGATE_COLUMNS, "protocol_fingerprint", "grid", "stage")]


def _cell_text(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys if not pd.isna(row[k]))


def _recipe_leaves(protocol_json: Any) -> dict[str, str] | None:
    """The fingerprinted recipe of a recorded protocol (`protocol_json`), one dotted key per leaf (values as canonical
    text), its encoders' pretraining recipes under `pretrain.` (`pretrain.<i>.` for several); None if unreadable."""
    try:
        protocol = json.loads(protocol_json)
    except (TypeError, ValueError):
        return None
    if not isinstance(protocol, Mapping):
        return None
    recipe = fingerprinted(protocol)
    pretrain = protocol.get("pretrain")  # stripped from the recipe, pinned by encoder_recipes: its keys say more
    if isinstance(pretrain, Mapping):
        recipe["pretrain"] = fingerprinted(pretrain)
    elif isinstance(pretrain, list):
        recipe["pretrain"] = {str(i): fingerprinted(p) for i, p in enumerate(pretrain) if isinstance(p, Mapping)}
    if "pretrain" in recipe:  # the encoders' fingerprints: what their keys above say, as hashes
        recipe.pop("encoder_recipes", None)
    return {k: json.dumps(v, sort_keys=True) for k, v in flatten(recipe).items()}


def _protocols(table: pd.DataFrame | None) -> pd.Series | None:
    """Job id -> its `protocol_json`, one per job; None where the table lacks them."""
    if table is None or "protocol_json" not in table or "job_id" not in table:
        return None
    return table.drop_duplicates("job_id").set_index("job_id")["protocol_json"]


def _differences(protocols: pd.Series | None, job_ids: list[str]) -> str:
    """The recipe keys in which the first job of each of `job_ids` (one per fingerprint) differ, with each one's
    value in that order ("linear.max_iter (30, 50)"; "-" where a recipe lacks the key); "" without `protocols`
    (`_protocols(table)`, which `conflict_lines` reads once: a pass over the whole table)."""
    if protocols is None:
        return ""
    leaves = [_recipe_leaves(protocols.get(j)) for j in job_ids]
    if any(leaf is None for leaf in leaves):
        return ""
    keys = sorted({k for leaf in leaves for k in leaf})
    differ = [k for k in keys if len({leaf.get(k) for leaf in leaves}) > 1]
    shown = [f"{k} ({', '.join(leaf.get(k, '-') for leaf in leaves)})" for k in differ[:DIFFERENCES_SHOWN]]
    more = f" and {len(differ) - DIFFERENCES_SHOWN} more" if len(differ) > DIFFERENCES_SHOWN else ""
    return f"their recipes differ in {', '.join(shown)}{more}" if shown else ""


SUB_CELL = ("labeled_size", "level", "metric")  # what one evaluation job's results of one cell differ in
SUB_CELLS_SHOWN = 6  # the labeled sizes and metrics a conflict line names (then "and k more")


def _sub_cell_text(row: pd.Series) -> str:
    """One labeled size and metric of a cell: "top1 at 1000 labels", "top1 (species)"."""
    level = f" ({row['level']})" if "level" in row and not pd.isna(row["level"]) else ""
    labels = f" at {row['labeled_size']} labels" if "labeled_size" in row and not pd.isna(row["labeled_size"]) else ""
    return f"{row['metric'] if 'metric' in row else 'value'}{level}{labels}"


def conflict_lines(conflicts: pd.DataFrame, table: pd.DataFrame | None = None) -> list[str]:
    """A line per cell of two or more fingerprints (its every labeled size and metric in one line, as one change of
    recipe conflicts at each of them): each fingerprint's mean (its range over them), seeds and jobs, the one the
    figures draw and, given the results `table` (its `protocol_json`), the recipe keys in which they differ."""
    lines = []
    keys = _cell_keys(conflicts)
    outer = [k for k in keys if k not in SUB_CELL]
    differences: dict[tuple, str] = {}  # per fingerprints: one recipe change is the conflict of many cells
    protocols = _protocols(table)
    for _, cell_rows in (conflicts.groupby(outer, dropna=False, sort=True) if outer else [(None, conflicts)]):
        subs = list(cell_rows.groupby([k for k in keys if k in SUB_CELL], dropna=False, sort=True)) \
            if any(k in SUB_CELL for k in keys) else [(None, cell_rows)]
        newest = list(dict.fromkeys(resolve_conflicts(g)["protocol_fingerprint"].iloc[0] for _, g in subs))
        parts = []
        for fingerprint, g in cell_rows.groupby("protocol_fingerprint", sort=False):
            low, high = g["mean"].min(), g["mean"].max()
            mean = f"mean {low:.4f}" if len(g) == 1 or low == high or pd.isna(low) else f"mean {low:.4f} to {high:.4f}"
            jobs = ",".join(dict.fromkeys(j for ids in g["job_ids"] for j in str(ids).split(",")))
            parts.append(f"{fingerprint}: {mean} over {g['count'].max()} seed(s) (jobs {jobs})")
        prints = tuple(dict.fromkeys(cell_rows["protocol_fingerprint"]))
        if prints not in differences:
            first = cell_rows.drop_duplicates("protocol_fingerprint")
            differences[prints] = _differences(protocols, [str(j).split(",")[0] for j in first["job_ids"]])
        differ = f" ({differences[prints]})" if differences[prints] else ""
        at = ""
        if len(subs) > 1:
            named = [_sub_cell_text(g.iloc[0]) for _, g in subs]
            more = f" and {len(named) - SUB_CELLS_SHOWN} more" if len(named) > SUB_CELLS_SHOWN else ""
            at = f" at each of its {len(named)} labeled sizes and metrics ({', '.join(named[:SUB_CELLS_SHOWN])}{more})"
        drawn = (f"the newest, {newest[0]}" if len(newest) == 1 else
                 f"the newest of each labeled size and metric ({', '.join(newest)})")
        cell = _cell_text(cell_rows.iloc[0], outer if len(subs) > 1 else keys)  # one: its labeled size in it
        lines.append(f"protocol fingerprint conflict in cell [{cell}]{at}: "
                     f"{'; '.join(parts)}{differ}. Kept apart in cells.csv; the figures draw {drawn}.")
    return lines


def code_version_lines(agg: pd.DataFrame, shown: int = 3, digests: Mapping[str, str] | None = None) -> list[str]:
    """A line naming (the first `shown` of) the cells whose seeds ran on more than one code (the code version is no
    part of the fingerprint, so they are averaged as one recipe), and one naming those with a result run on a
    modified ("-dirty") tree that no commit of the results reproduces; where that is every cell, all of one code
    version, the version once and no cell. `digests`: `study.version.code_digests` of the versions, where known
    (versions of one digest are one code: a docs-only commit, a try later committed)."""
    if agg.empty or "code_versions" not in agg:
        return []
    versions = [[v for v in str(vs).split(",") if v] if isinstance(vs, str) else [] for vs in agg["code_versions"]]
    code, committed = _codes(digests)
    keys = _cell_keys(agg)
    lines = []
    for picked, said in (([len({code(v) for v in vs}) > 1 for vs in versions],
                          "average seeds run by several code versions (or hold a run resumed under another, or an "
                          "evaluation of an encoder trained under another), as one recipe (the code version is no "
                          "part of the protocol fingerprint)"),
                         ([any(is_modified(v) and code(v) not in committed for v in vs) for vs in versions],
                          "hold results run on a modified ('-dirty') source tree, which no commit reproduces")):
        cells = agg[picked]
        if cells.empty:
            continue
        if len(cells) == len(agg) > 1 and cells["code_versions"].nunique() == 1:
            lines.append(f"all {len(cells)} of the report's cells {said}, each on "
                         f"{cells['code_versions'].iloc[0]}")
            continue
        listed = "; ".join(f"[{_cell_text(row, keys)}]: {row['code_versions']}"
                           for _, row in cells.head(shown).iterrows())
        more = f"; and {len(cells) - shown} more" if len(cells) > shown else ""
        lines.append(f"{len(cells)} cell(s) {said}: {listed}{more}. cells.csv gives each cell's code_versions")
    return lines


def version_mix_lines(table: pd.DataFrame, shown: int = 3, code_versions: pd.Series | None = None,
                      digests: Mapping[str, str] | None = None) -> list[str]:
    """One line where the report's results ran on more than one code (study updated mid-study): cells side by side
    in one figure may then differ by their code too. Each code's versions (the first `shown` codes, most jobs
    first) with its number of jobs; a run resumed under another version counts under each of its sessions', an
    evaluation under its encoders' versions too, and the jobs of several codes are counted by how: resumed, or
    reading an encoder trained (in part) under another code than theirs. `code_versions`: `job_code_versions(table)`
    where the caller has it already; `digests`: as for `code_version_lines`."""
    if table.empty or "code_version" not in table:
        return []
    versions = job_code_versions(table) if code_versions is None else code_versions
    jobs = table.assign(versions=versions).drop_duplicates("job_id")
    code, _ = _codes(digests)
    labels: dict[str, set[str]] = {}  # code -> its versions
    counts: Counter = Counter()
    for vs in jobs["versions"].dropna():
        for v in vs.split(","):
            labels.setdefault(code(v), set()).add(v)
        counts.update({code(v) for v in vs.split(",")})
    if len(counts) < 2:
        return []
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = "; ".join(f"{_one_code(labels[c])}: {n} job(s)" for c, n in ranked[:shown])
    more = f"; and {len(ranked) - shown} more" if len(ranked) > shown else ""
    # each job's own sessions' codes (not its encoders'), and all of them
    sets = [({code(v) for v in _joined(o)}, {code(v) for v in _joined(a)})
            for o, a in zip(own_code_versions(jobs), jobs["versions"])]
    mixed = sum(len(a) > 1 for _, a in sets)
    resumed_n = sum(len(o) > 1 for o, _ in sets)  # its own sessions ran on several
    read_n = sum(bool(a - o) for o, a in sets)  # an encoder it read was trained (in part) on another
    ways = [f"{n} {said}" for n, said in ((resumed_n, "resumed under another"),
                                          (read_n, "evaluating an encoder trained under another")) if n]
    resumed = f"; {mixed} job(s) ran on several of them ({', '.join(ways)})" if mixed else ""
    return [f"the results ran on {len(counts)} code versions ({listed}{more}{resumed}): cells compared in one figure "
            f"may differ by their code too (cells.csv names each cell's versions)"]


def _codes(digests: Mapping[str, str] | None) -> tuple[Any, set[str]]:
    """(version -> its code: its digest where `digests` has it, else the version itself; the digests of commits')."""
    digests = digests or {}
    return (lambda v: digests.get(v, v)), {d for v, d in digests.items() if "+git." in v and not is_modified(v)}


def _one_code(versions: set[str]) -> str:
    """A code's versions as a line names them: one, or several joined by `=` (one code: a docs-only commit)."""
    return " = ".join(sorted(versions)) + (" (one code)" if len(versions) > 1 else "")


def _joined(versions: Any) -> set[str]:
    """The versions of a comma-joined `job_code_versions` value (none for a job without)."""
    return set(versions.split(",")) if isinstance(versions, str) else set()


DEVICE = "protocol.device_kind"  # the GPU's name, or "cpu"
THREADS = "protocol.cpu_threads"  # on a CPU, float sums (so the numbers) depend on it; a list for a resumed run's


def _device_text(kind: Any, threads: Any) -> str | None:
    """Where one job ran, as a device line names it: "NVIDIA H100 80GB HBM3", "cpu, 2 threads" (each session's
    count where a resumed run's differ: "cpu, [2, 1] threads"); None where it is not recorded."""
    if not isinstance(kind, str) or not kind:
        return None
    threads = _decoded(threads)
    text = kind
    if kind == "cpu" and not is_null(threads):
        text += f", {threads:.0f} thread{'' if threads == 1 else 's'}" if isinstance(threads, Real) else \
            f", {threads} threads"
    return text


def _decoded(value: Any) -> Any:
    """A table cell as recorded: a column that holds a resumed run's list of its sessions' values holds each job's
    value as JSON text (a count: "2"; a list: "[2, 1]"), decoded; any other value (a device's name) as it is."""
    if isinstance(value, str):
        with suppress(ValueError):
            return json.loads(value)
    return value


def _sessions_differ(value: Any) -> bool:
    """Whether a resumed run's device kind or thread count is a list of its sessions' (JSON text in the table's
    column) that holds more than one value: the run's float sums, so its weights, are none of one device's."""
    value = _decoded(value)
    return isinstance(value, list) and len({json.dumps(v) for v in value}) > 1


def device_mix_lines(table: pd.DataFrame, shown: int = 3) -> list[str]:
    """A line naming (the first `shown` of) the cells whose seeds ran on more than one device kind (a GPU model, the
    CPU) or CPU thread count (`protocol.device_kind`, `protocol.cpu_threads`), or that hold a run resumed on another
    (its sessions' list of more than one): no part of the protocol fingerprint (the number of devices is: another
    count is a conflict), so they are averaged as one recipe, though their float sums, so their numbers, differ. A
    cell is an evaluation's or a pretraining's (whose line covers the encoders its evaluations read)."""
    if table.empty or DEVICE not in table or "metric" not in table:
        return []
    jobs = table[table["metric"].notna()].drop_duplicates("job_id")
    if jobs.empty:
        return []
    threads = jobs[THREADS] if THREADS in jobs else pd.Series([None] * len(jobs), index=jobs.index, dtype=object)
    where = pd.Series([_device_text(k, t) for k, t in zip(jobs[DEVICE], threads)], index=jobs.index, dtype=object)
    resumed = pd.Series([w is not None and (_sessions_differ(k) or _sessions_differ(t))
                         for w, k, t in zip(where, jobs[DEVICE], threads)], index=jobs.index, dtype=bool)
    keys = [c for c in cell_columns(jobs) if c not in SUB_CELL] + ["protocol_fingerprint"]
    cells = []
    for _, g in jobs.assign(_where=where, _resumed=resumed).groupby(keys, dropna=False, sort=True):
        found = sorted(set(g["_where"].dropna()))
        if len(found) > 1 or g["_resumed"].any():
            named = [k for k in keys if k not in ("grid", "protocol_fingerprint")]
            cells.append(f"[{_cell_text(g.iloc[0], named)}]: {'; '.join(found)}")
    if not cells:
        return []
    more = f"; and {len(cells) - shown} more" if len(cells) > shown else ""
    return [f"{len(cells)} cell(s) average seeds run on different devices or CPU thread counts (or hold a run resumed "
            f"on another), as one recipe (neither is part of the protocol fingerprint; each gives other float sums, "
            f"so other numbers): {'; '.join(cells[:shown])}{more}. results.parquet gives each job's "
            "protocol.device_kind and protocol.cpu_threads"]


def valueless_lines(table: pd.DataFrame) -> list[str]:
    """The jobs that recorded a metric without a value (a diverged run), and what that does to their cells: one
    with other seeds is their mean (the diverged seed left out), one without is missing. A record without metrics
    (its one row has no metric) is not one."""
    table = table[table["metric"].notna()] if not table.empty else table
    if table.empty or not table["value"].isna().any():
        return []
    jobs = table.loc[table["value"].isna(), "job_id"].value_counts(sort=False).sort_index()
    lines = [f"job {job}: {n} metric(s) recorded without a value (a diverged run)" for job, n in jobs.items()]
    keys = [*cell_columns(table), "protocol_fingerprint"]
    seeds = table.assign(valued=table["value"].notna()).groupby(keys, dropna=False)["valued"].agg(["size", "sum"])
    partial, empty = int(((seeds["sum"] > 0) & (seeds["sum"] < seeds["size"])).sum()), int((seeds["sum"] == 0).sum())
    if partial:
        lines.append(f"{partial} cell(s) are the mean of their seeds with a value only, the diverged ones left out "
                     f"(which may read high): cells.csv gives each cell's count")
    if empty:
        lines.append(f"{empty} cell(s) have no value in any seed: shown as missing")
    return lines


def partial_seed_lines(agg: pd.DataFrame, planned: pd.DataFrame | None, shown: int = 3) -> list[str]:
    """One line naming (the first `shown` of) the evaluation cells with a value in fewer seeds than the plan gives
    them (a job still to run, or a diverged seed): the tables print them "mean (k/n)"."""
    agg = agg[agg["stage"] == "evaluate"] if not agg.empty else agg
    if agg.empty or planned is None:
        return []
    agg = agg.assign(planned_seeds=planned_seeds(agg, planned))
    short = agg[(agg["count"] > 0) & (agg["count"] < agg["planned_seeds"])]
    if short.empty:
        return []
    keys = [k for k in _cell_keys(short) if k not in ("labeled_size", "level", "metric", "planned_seeds")]
    groups = [(_cell_text(g.iloc[0], keys), f"{g['count'].min()}/{g['planned_seeds'].iloc[0]:.0f}")
              for _, g in short.groupby(keys, dropna=False, sort=True)]
    listed = "; ".join(f"[{cell}]: {seeds} seeds" for cell, seeds in groups[:shown])
    more = f"; and {len(groups) - shown} more" if len(groups) > shown else ""
    return [f"{len(groups)} cell(s) have a value in fewer seeds than the grid plans, so far: {listed}{more}. The "
            "tables print them 'mean (k/n)'; cells.csv gives each cell's count and seeds"]


def duplicate_lines(name: str, paper: pd.DataFrame, shown: int = 3) -> list[str]:
    """One line naming the cells of a figure's table that more than one cell of results fell on (`wide`)."""
    cells = paper.attrs.get("duplicates") or []
    if not cells:
        return []
    more = f"; and {len(cells) - shown} more" if len(cells) > shown else ""
    return [f"table {name}: {len(cells)} position(s) hold more than one cell ({'; '.join(cells[:shown])}{more}); the "
            f"table shows the first of each, {name}_data.csv has every one: they differ in an axis this figure does "
            "not tell apart (cells.csv has every axis)"]


def undrawn_lines(agg: pd.DataFrame, drawn: frozenset[str] | set[str]) -> list[str]:
    """The line naming the evaluation protocols of `agg`'s cells that no figure draws (not in `drawn`), each with its
    count of cells: a protocol of study.evaluate.protocols that no figure names in its `DRAWS` has its results in the
    tables alone, which a report should say rather than leave them out of every figure unsaid."""
    if agg.empty or not {"stage", "protocol"} <= set(agg):
        return []
    protocols = agg.loc[(agg["stage"] == "evaluate") & agg["protocol"].notna(), "protocol"].astype(str)
    undrawn = Counter(p for p in protocols if p not in drawn)
    if not undrawn:
        return []
    named = ", ".join(f"{p} ({n} cell(s))" for p, n in sorted(undrawn.items()))
    return [f"no figure draws the results of protocol(s) {named}: they are in cells.csv and results.parquet only "
            "(a figure draws the protocols its module lists in DRAWS, study/report/figures; docs/contributing.md, "
            "\"An evaluation protocol\")"]
