"""Result records -> one tidy table: one row per (job, metric), every axis a column, the protocol alongside.

Columns, in order: `job_id`, `stage`, `grid`, the axes (`AXES` first, any other axis after, sorted), `labeled_size`,
`level`, `metric`, `value`, `protocol_fingerprint`, `code_version`, `wall_time_s`, `finished_at`, `depends_on`
(the ids of the jobs it read, `|`-joined: an evaluation's pretraining jobs, to join on `job_id`), `protocol_json`
(the whole effective protocol, canonical JSON) and one `protocol.<dotted.key>` column per protocol leaf (lists as
JSON text; a key null in every record where others hold keys under it, no column of its own). Absent axes and
metrics are null (NaN), never 0. A record without metrics (a `random` pretraining) is one row with `metric` and
`value` null, so that it is counted and its protocol kept. The integer axes (`INTEGER_COLUMNS`, `*_size`) are
nullable integers (Int64) even where some rows have none, as is a protocol leaf of integers that some records lack.
Seeds aggregate with `aggregate`.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable, Mapping  # typing's Mapping: isinstance several times slower
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from study.atomic import atomic_path
from study.errors import StudyError, did_you_mean
from study.hashing import canonical_json
from study.results.record import SCHEMA_VERSION, SkippedFile, protocol_fingerprint, read_results, result_path
from study.version import newer_note

AXES = ("method", "backbone", "dataset", "size", "corruption", "seed", "protocol", "eval_dataset")
METRIC_COLUMNS = ("labeled_size", "level", "metric", "value")
RUN_COLUMNS = ("protocol_fingerprint", "code_version", "wall_time_s", "finished_at", "depends_on", "protocol_json")
PROTOCOL_PREFIX = "protocol."
TABLE_SCHEMA_KEY = b"study.table_schema_version"
TABLE_GRID_KEY = b"study.grid"
TABLE_WHERE_KEY = b"study.where"  # a report of part of its grid: the `--where` selection, as JSON
TABLE_SCHEMA_VERSION = 1
# Columns that tell seeds apart, or describe one run: never part of a cell's identity.
NOT_CELL = {"seed", "seed_pair", "job_id", "value", "code_version", "wall_time_s", "finished_at", "protocol_json"}
# what `aggregate` adds to a cell's key columns
AGGREGATE_COLUMNS = ("mean", "std", "count", "n_jobs", "seeds", "job_ids", "code_versions", "finished_at")
INTEGER_COLUMNS = ("size", "seed", "labeled_size")  # and any other axis named *_size
PAIR_SUFFIX = "_pair"
_NUMERIC_PAIR = re.compile(r"(-?\d+|None)(\|(-?\d+|None))+")  # None: an encoder of the whole dataset


def split_numeric_pairs(axes: Mapping[str, Any]) -> dict[str, Any]:
    """`axes` with each joined numeric value ("50000|1000000", "1000000|None") moved to `<axis>_pair`, the axis
    itself None."""
    out = dict(axes)
    for axis, value in axes.items():
        if isinstance(value, str) and _NUMERIC_PAIR.fullmatch(value):
            out[axis], out[f"{axis}{PAIR_SUFFIX}"] = None, value
    return out


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One dotted key per leaf of `obj` (`a.b.c`), lists and empty mappings as JSON text: the `protocol.*` columns."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple, Mapping)):
            out[name] = json.dumps(value, sort_keys=True, default=str)
        else:
            out[name] = value
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def is_null(v: Any) -> bool:
    """A null of any spelling: None, pd.NA, a float NaN (numpy's too)."""
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v))


def key_tuples(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Each row's values of `columns`, None for a null of any spelling (None, NaN, pd.NA) or a column `df` lacks:
    keys that match between a plan's frame and a results table."""
    return [tuple(None if is_null(r.get(k)) else r.get(k) for k in columns) for r in df.to_dict("records")]


def _normalise(col: pd.Series, integer: bool = False) -> pd.Series:
    """One type per column, so that pyarrow writes it and pandas reads it back the same; an `integer` column whose
    values are whole numbers is Int64 even where a null made pandas read it as float, or where it holds none."""
    values = [v for v in col if not is_null(v)]
    if not values:  # an integer column stays one with no value yet (a table of pretrainings: no labeled size)
        return pd.Series([None] * len(col), index=col.index, dtype="Int64" if integer else "object")
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return col.astype("boolean")
    if all(_is_int(v) for v in values) or (integer and all(
            (_is_int(v) or isinstance(v, (float, np.floating))) and float(v).is_integer() for v in values)):
        return pd.Series([None if is_null(v) else int(v) for v in col], index=col.index, dtype="Int64")
    if all(_is_int(v) or isinstance(v, (float, np.floating)) for v in values):
        return col.astype("float64")
    return col.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                   else (v if isinstance(v, str) else json.dumps(v, default=str))).astype("object")


def records_to_table(records: Iterable[Mapping[str, Any]], grid: str | None = None) -> pd.DataFrame:
    """The tidy table of `records`; `grid` (the grid being reported) overrides each record's own grid name."""
    bases, metric_rows, owner = [], [], []  # one row per record; one per metric row, and the record it is of
    axis_names: set[str] = set()
    for rec in records:
        axes = split_numeric_pairs(rec.get("axes") or {})
        axis_names.update(axes)
        protocol = rec.get("protocol") or {}
        flat = {f"{PROTOCOL_PREFIX}{k}": v for k, v in flatten(protocol).items()}
        for m in rec["metrics"] or [{"metric": None, "value": None}]:  # no metric: one row, so the job is seen
            owner.append(len(bases))
            metric_rows.append({"labeled_size": m.get("labeled_size"), "level": m.get("level"), "metric": m["metric"],
                                "value": np.nan if m["value"] is None else float(m["value"])})
        bases.append({"job_id": rec["job_id"], "stage": rec["stage"],
                      "grid": grid if grid is not None else rec.get("grid"), **axes,
                      "protocol_fingerprint": protocol_fingerprint(protocol), "code_version": rec.get("code_version"),
                      "wall_time_s": rec.get("wall_time_s"), "finished_at": rec.get("finished_at"),
                      "depends_on": "|".join(rec.get("depends_on") or []) or None,
                      "protocol_json": canonical_json(protocol), **flat})
    extra_axes = sorted(axis_names - set(AXES))
    protocol_cols = _protocol_columns(bases)
    columns = ["job_id", "stage", "grid", *AXES, *extra_axes, *METRIC_COLUMNS, *RUN_COLUMNS, *protocol_cols]
    # each column is typed over the records (a record's values are the same on each of its rows), then repeated;
    # read as objects, so that a leaf some records lack keeps the others' integers (pandas would make them floats)
    per_record = _typed(pd.DataFrame(bases, columns=[c for c in columns if c not in METRIC_COLUMNS], dtype=object))
    df = pd.concat([per_record.take(owner).reset_index(drop=True),
                    _typed(pd.DataFrame(metric_rows, columns=list(METRIC_COLUMNS)))], axis=1)[columns]
    # rows keep each record's metric order (e.g. taxonomy levels coarse -> fine); jobs sorted by id; copied into one
    # block (the column-by-column normalising leaves a fragmented frame)
    return df.sort_values("job_id", kind="stable").reset_index(drop=True).copy()


def _protocol_columns(bases: list[dict[str, Any]]) -> list[str]:
    """The `protocol.*` columns of the records' rows `bases`, sorted; but not a key null in every record where
    others hold keys under it (the `random` method's `augmentation: null` beside the others' `augmentation.*`): a
    column of nulls beside its own sub-columns says nothing they do not (the recipe, `protocol_json`, keeps it)."""
    columns = sorted({k for b in bases for k in b if k.startswith(PROTOCOL_PREFIX)})
    parents = {c.rsplit(".", i)[0] for c in columns for i in range(1, c.count("."))}
    empty = {c for c in parents.intersection(columns) if all(is_null(b.get(c)) for b in bases)}
    return [c for c in columns if c not in empty]


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with each column of the tidy table given its one type (`_normalise`; `value` float, ids and names
    object)."""
    for col in df.columns:
        if col == "value":
            df[col] = df[col].astype("float64")
        elif col in ("job_id", "stage", "metric", "protocol_fingerprint"):
            df[col] = df[col].astype("object")
        else:
            df[col] = _normalise(df[col], integer=col in INTEGER_COLUMNS or (
                col.endswith("_size") and not col.startswith(PROTOCOL_PREFIX)))
    return df


def axis_columns(table: pd.DataFrame) -> list[str]:
    """The axis columns of a tidy table (standard ones first)."""
    fixed = {"job_id", "stage", "grid", *METRIC_COLUMNS, *RUN_COLUMNS}
    return [c for c in table.columns if c not in fixed and not c.startswith(PROTOCOL_PREFIX)
            and c not in AGGREGATE_COLUMNS]


def cell_columns(table: pd.DataFrame) -> list[str]:
    """What identifies a cell: stage, grid, every axis but seed, labeled_size, level, metric."""
    return ["grid", "stage", *[c for c in axis_columns(table) if c not in NOT_CELL], "labeled_size", "level",
            "metric"]


def _seed_text(v: Any) -> str:
    return str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v)


def _seed_key(v: Any) -> tuple:
    """Seeds in numeric order (2 before 10), a concatenation's pair ("0|1") by its parts."""
    try:
        return 0, tuple(int(float(p)) for p in str(v).split("|"))
    except (ValueError, OverflowError):
        return 1, str(v)


# what `aggregate` reads besides the axes a table has (`drop_repeated_seeds`: all but `value`)
CELL_NEEDS = ("grid", "stage", "labeled_size", "level", "metric", "protocol_fingerprint", "job_id", "value",
              "finished_at")


def require_columns(table: pd.DataFrame, what: str, needs: Iterable[str] = CELL_NEEDS) -> None:
    """StudyError naming the columns of `needs` that `table` lacks (a narrow `read_table` left them out)."""
    lacking = [c for c in needs if c not in table.columns]
    if lacking:
        raise StudyError(f"{what} needs the table's column(s) {', '.join(map(repr, lacking))}: read them too "
                         f"(read_table(path, columns=[..., {', '.join(map(repr, lacking))}]))")


def job_code_versions(table: pd.DataFrame) -> pd.Series:
    """Each row's code versions, sorted and comma-joined (None where it has none): its record's `code_version`; for a
    training run resumed under other code (study updated mid-run), each session's (`protocol.code_version`, a list
    where they differ), which the record's own, the last session's, leaves out; and for an evaluation, those of the
    pretraining jobs it read (`depends_on`: each of a concatenation's) where `table` holds their results (a probe run
    after an update, of an encoder trained before it, names both). Not read from the evaluation's `protocol.pretrain`:
    the encoder file it copies keeps the recipe and seed alone, no code version (its bytes, the feature cache's key,
    are the same under every version)."""
    ran = _own_versions(table)
    by_job: dict[Any, set[str]] = {}  # a job's rows (one per metric) hold the same versions
    for job, found in zip(_column(table, "job_id"), ran):
        by_job.setdefault(job, set()).update(found)
    read = [{v for dep in _dependencies(deps) for v in by_job.get(dep, ())}
            for deps in _column(table, "depends_on")]
    return pd.Series([",".join(sorted(own | deps)) or None for own, deps in zip(ran, read)], index=table.index,
                     dtype=object)


def own_code_versions(table: pd.DataFrame) -> pd.Series:
    """Each row's code versions as `job_code_versions` gives them, less those of the encoders an evaluation read:
    its record's and each of its sessions'."""
    return pd.Series([",".join(sorted(own)) or None for own in _own_versions(table)], index=table.index,
                     dtype=object)


def _own_versions(table: pd.DataFrame) -> list[set[str]]:
    """Each row's code versions: its record's `code_version` and its protocol's (each session's of a resumed run)."""
    return [{x for value in values for x in _versions_in(value) if isinstance(x, str) and x}
            for values in zip(_column(table, "code_version"), _column(table, f"{PROTOCOL_PREFIX}code_version"))]


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    """`table[name]`, or a column of None where it has none."""
    return table.get(name, pd.Series(None, index=table.index, dtype=object))


def _versions_in(value: Any) -> list[Any]:
    """The code versions a record's value holds: a version, or a list of them (each session's: JSON text in the
    table)."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else [value]


def aggregate(table: pd.DataFrame, code_versions: pd.Series | None = None) -> pd.DataFrame:
    """Seeds -> mean, std (ddof 1; NaN for one seed), count (rows with a value) per cell and protocol fingerprint,
    with the cell's `seeds` (in numeric order, a diverged one too), `job_ids` and `code_versions` (distinct, sorted;
    a run resumed under another version gives each of its sessions', an evaluation its encoders' too:
    `job_code_versions`), all comma-joined, `n_jobs` and `finished_at` (its newest result's). Each row counts: on a
    table with reruns (several jobs of one seed) `count` and the mean count them all; `drop_repeated_seeds` first
    keeps one job per seed (the report does).

    Results of two fingerprints in one cell stay two rows (see `find_conflicts`); never averaged together. A row
    without a metric (a record that has none) is no cell. A table read narrow keeps `CELL_NEEDS` beside its axes (a
    StudyError names those it lacks). `code_versions`: `job_code_versions(table)` where the caller has it already
    (the report, which warns of them too).
    """
    keys = [*cell_columns(table), "protocol_fingerprint"]
    if "code_version" in table:  # before rows are dropped: `code_versions` is of every row
        table = table.assign(code_version=job_code_versions(table) if code_versions is None else code_versions)
    if "metric" in table:
        table = table[table["metric"].notna()]
    if table.empty:
        return pd.DataFrame(columns=[*keys, *AGGREGATE_COLUMNS])
    require_columns(table, "aggregate")
    if "seed_pair" in table:  # a concatenation of two seeds' encoders: its seed is the pair
        table = table.assign(seed=table["seed"].astype(object).where(table["seed"].notna(), table["seed_pair"]))
    grouped = table.groupby(keys, dropna=False, sort=True)
    agg = grouped["value"].agg(["mean", "std", "count"]).reset_index()
    meta = grouped.agg(
        n_jobs=("job_id", "nunique"),
        seeds=("seed", lambda s: ",".join(_seed_text(v) for v in sorted(s.dropna().unique(), key=_seed_key)))
        if "seed" in table else ("job_id", lambda s: ""),
        job_ids=("job_id", lambda s: ",".join(sorted(s.unique()))),
        code_versions=("code_version", lambda s: ",".join(sorted({v for vs in s.dropna() for v in vs.split(",")})))
        if "code_version" in table else ("job_id", lambda s: ""),
        finished_at=("finished_at", lambda s: max((v for v in s if isinstance(v, str)), default=None)),
    ).reset_index(drop=True)
    out = pd.concat([agg, meta], axis=1)
    out["count"] = out["count"].astype("int64")
    return out


def planned_seeds(cells: pd.DataFrame, planned: pd.DataFrame | None) -> pd.Series:
    """For each row of `aggregate`'s output, the number of seeds (or seed pairs) among the planned evaluation jobs
    (`Collection.planned`) with its axes, every axis both frames have but the seed: a job covers every labeled size
    and level of its cell. NaN where the plan has no such job, or there is no plan."""
    out = pd.Series(np.nan, index=cells.index, dtype="float64")
    if planned is None or planned.empty or cells.empty or "stage" not in planned:
        return out
    jobs = planned[planned["stage"] == "evaluate"]
    keys = ["stage", *[c for c in jobs.columns if c in cells.columns and c != "stage" and c not in NOT_CELL]]
    seeds = [c for c in ("seed", "seed_pair") if c in jobs]

    by_cell: dict[tuple, set] = {}
    for key, seed in zip(key_tuples(jobs, keys), key_tuples(jobs, seeds)):
        by_cell.setdefault(key, set()).add(seed)
    return pd.Series([float(len(by_cell[k])) if k in by_cell else np.nan for k in key_tuples(cells, keys)],
                     index=cells.index, dtype="float64")


def drop_repeated_seeds(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, repeats): per (cell, protocol fingerprint, seed) only the newest job's row stays. Two jobs of one
    seed in one cell (a rerun under another job id, a stale result of an earlier grid) are not replicates. `repeats`:
    one row per such group, with `job_ids` (all, oldest first) and `kept`."""
    empty = pd.DataFrame(columns=["job_ids", "kept"])
    if table.empty:
        return table, empty
    require_columns(table, "drop_repeated_seeds", [c for c in CELL_NEEDS if c != "value"])
    keys = [*cell_columns(table), "protocol_fingerprint", *[c for c in ("seed", "seed_pair") if c in table]]
    when = pd.DataFrame({"t": table["finished_at"].fillna(""), "job": table["job_id"]})
    ordered = table.loc[when.sort_values(["t", "job"], kind="stable").index]
    n = ordered.groupby(keys, dropna=False)["job_id"].transform("nunique")
    if not (n > 1).any():
        return table, empty
    kept = ordered.drop_duplicates(keys, keep="last")
    repeats = (ordered[n > 1].groupby(keys, dropna=False, sort=True)
               .agg(job_ids=("job_id", lambda s: ",".join(dict.fromkeys(s))), kept=("job_id", "last"))
               .reset_index().drop_duplicates(["job_ids", "kept"]).reset_index(drop=True))
    return kept.sort_index().reset_index(drop=True), repeats


def _cell_of_aggregate(agg: pd.DataFrame) -> list[str]:
    """The columns of `aggregate`'s output that name a cell: all but the fingerprint and what aggregation adds."""
    return [c for c in agg.columns if c != "protocol_fingerprint" and c not in AGGREGATE_COLUMNS]


def find_conflicts(agg: pd.DataFrame) -> pd.DataFrame:
    """Cells of `aggregate`'s output holding results of more than one protocol fingerprint."""
    keys = _cell_of_aggregate(agg)
    if agg.empty:
        return agg.iloc[0:0]
    n = agg.groupby(keys, dropna=False)["protocol_fingerprint"].transform("nunique")
    return agg[n > 1].reset_index(drop=True)


def resolve_conflicts(agg: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: where fingerprints conflict, the one with the newest result (what a figure draws).

    The report lists every conflict and the fingerprint it drew; the full aggregate keeps them all.
    """
    keys = _cell_of_aggregate(agg)
    if agg.empty:
        return agg
    ordered = agg.assign(_t=agg["finished_at"].fillna("")).sort_values(["_t", "protocol_fingerprint"],
                                                                         kind="stable")
    return (ordered.drop_duplicates(keys, keep="last").drop(columns="_t")
            .sort_values(keys, kind="stable", na_position="first").reset_index(drop=True))


@dataclass
class Collection:
    """What `gather` found: the tidy table, the files skipped, the planned jobs and those still missing."""

    table: pd.DataFrame
    skipped: list[SkippedFile] = field(default_factory=list)
    planned: pd.DataFrame | None = None  # one row per planned job: job_id, stage, axes, depends_on, has_result
    missing: pd.DataFrame | None = None  # planned jobs without a result: + waits_for
    grid: str | None = None
    other_grids: list[str] = field(default_factory=list)  # without a plan, of `grid`: the other grids' names found

    @property
    def conflicts(self) -> pd.DataFrame:
        return find_conflicts(aggregate(self.table))


def _planned_frame(plan: Any) -> pd.DataFrame:
    """One row per planned job: job_id, stage, its axes typed as the results table's (`size` Int64), its
    `labeled_sizes` ("1000,all") and `depends_on` ("id|id", None for none), as the results table writes them; a
    granularity evaluation's `levels` too ("kingdom,species": the levels its figure line is missing at)."""
    rows = []
    for job in plan.jobs:
        axes = split_numeric_pairs((job.config or {}).get("axes") or {})
        section = (job.config or {}).get("evaluate") or {}
        sizes, levels = section.get("labeled_sizes"), section.get("levels")
        rows.append({"job_id": job.id, "stage": job.stage, **axes,
                     "labeled_sizes": ",".join(map(str, sizes)) if sizes else None,
                     "depends_on": "|".join(job.depends_on) or None,
                     **({"levels": ",".join(levels)} if levels else {})})
    frame = pd.DataFrame(rows, dtype=object)
    return _typed(frame) if rows else frame


def _dependencies(cell: Any) -> list[str]:
    """The job ids of a `depends_on` cell ("id|id"; None: none)."""
    return cell.split("|") if isinstance(cell, str) and cell else []


# missing.csv's state of a job a local command left live when it ended (study.launch.state.local_state: missing)
STOPPED = {"running": "stopped before it finished: its `study submit --cluster local` ended (the next submit resumes "
                      "it)",
           "pending": "not started: its `study submit --cluster local` ended (the next submit runs it)"}


def _read_ledger(workdir: Path, grid: str | None) -> dict[str, str]:
    """Last known launcher event per job, in words, from the grid's ledger (and other grids' for shared jobs);
    sacct is not asked (`study status` does)."""
    if not grid:
        return {}
    from study.launch.ledger import Ledger
    from study.launch.state import local_state, set_aside_detail

    states: dict[str, str] = {}
    for job, e in Ledger(workdir, grid).replay_with_shared().latest.items():
        if e.get("event") == "queued":
            states[job] = f"submitted as Slurm job {e.get('slurm_job_id')} (its state now: study status)"
        elif e.get("event") == "local":
            state = local_state(e, workdir)
            if state == "missing" and e.get("state") in STOPPED:  # its command ended before the job did
                state = STOPPED[e["state"]]
            states[job] = state + (f": {e['error']}" if e.get("error") else "")
        elif e.get("event") == "set_aside":
            states[job] = f"missing: {set_aside_detail(e)}"
    return states


def gather(workdir: str | os.PathLike, plan: Any = None, grid: str | None = None) -> Collection:
    """Read `<workdir>/results/` into a `Collection`; with a plan, only its jobs, and what is still missing; without
    one, the records of grid `grid` where given (the grid that ran each first), else all."""
    skipped: list[SkippedFile] = []
    if plan is None:
        records = read_results(workdir, skipped=skipped)
        if grid is None:
            return Collection(records_to_table(records), skipped)
        others = sorted({r["grid"] for r in records if r.get("grid") is not None and r["grid"] != grid})
        return Collection(records_to_table([r for r in records if r.get("grid") == grid]), skipped, grid=grid,
                          other_grids=others)
    planned = _planned_frame(plan)
    ids = set(planned["job_id"]) if not planned.empty else set()
    records = read_results(workdir, ids, skipped=skipped)  # a file is named by its job: another grid's is not read
    done = {r["job_id"] for r in records}
    # a dependency the plan lacks (a plan `--where` reduced to evaluations): done where its result file is there
    done |= {d for deps in planned["depends_on"] for d in _dependencies(deps) if d not in ids
             and result_path(workdir, d).exists()} if not planned.empty else set()
    table = records_to_table(records, grid=plan.name)
    if planned.empty:
        return Collection(table, skipped, planned, planned, plan.name)
    planned["has_result"] = planned["job_id"].isin(done)
    states = _read_ledger(Path(workdir), plan.name)
    missing = planned[~planned["has_result"]].copy()

    def waits_for(row: pd.Series) -> str:
        """The dependencies without a result, with their last known state (the job's own is in `state`)."""
        deps = _dependencies(row["depends_on"])
        waits = [f"{dep} (pretrain, {states.get(dep, 'no result yet')})" for dep in deps if dep not in done]
        return "; ".join(waits) or ("dependencies done" if deps else "no dependency")

    missing["waits_for"] = missing.apply(waits_for, axis=1) if not missing.empty else pd.Series(dtype=object)
    unreadable = {s.path.stem: s for s in skipped}
    missing["state"] = [(f"result file unreadable ({unreadable[j].reason}): " + (
        "`study report` of that version reports it" if unreadable[j].newer else
        "`study submit --retry-failed` reruns it")) if j in unreadable else states.get(j, "no result yet")
        for j in missing["job_id"]]
    # the evaluations, then the pretrainings, each in the plan's order (the grid's axes and entries, not hash order)
    missing = missing.sort_values("stage", kind="stable").reset_index(drop=True)
    return Collection(table, skipped, planned, missing, plan.name)


def collect(workdir: str | os.PathLike, plan: Any = None) -> pd.DataFrame:
    """The tidy table of every result in `workdir` (only the plan's jobs when a plan is given); a StudyError when
    `workdir` is no folder (a mistyped path reads no results, not an empty table)."""
    if not Path(workdir).is_dir():
        raise StudyError(f"workdir {workdir}: no such folder (the folder `study submit --workdir` wrote, whose "
                         "results/ holds the records; default $STUDY_WORKDIR or ./runs)")
    return gather(workdir, plan).table


def write_table(table: pd.DataFrame, path: str | os.PathLike, grid: str | None = None,
                where: dict[str, list[str]] | None = None) -> Path:
    """Atomically write `table` as Parquet, its schema version (and grid, and the `--where` selection of its jobs
    where the table is of part of it) in the file's metadata."""
    path = Path(path)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[TABLE_SCHEMA_KEY] = str(TABLE_SCHEMA_VERSION).encode()
    meta[b"study.record_schema_version"] = str(SCHEMA_VERSION).encode()
    if grid:
        meta[TABLE_GRID_KEY] = grid.encode()
    if where:
        meta[TABLE_WHERE_KEY] = canonical_json(where).encode()
    arrow = arrow.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)
    return path


def read_table(path: str | os.PathLike, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A table written by `write_table`, each column of the type `collect` gives it; a StudyError naming the file if it
    is not one (a folder: a report's, its results.parquet named) or of a newer schema.
    `columns`: only these, in the file's order, each a name or a shell pattern (`"protocol.pretrain.*"`; the full
    table has a column per leaf of the protocol); a StudyError names one that matches none."""
    path = Path(path)
    if path.is_dir():  # a report's folder
        inside = path / "results.parquet"
        raise StudyError(f"{path}: a folder, not a results table" + (f" (read {inside})" if inside.is_file() else ""))
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise StudyError(f"{path}: not a readable Parquet file ({e})") from None
    version = (schema.metadata or {}).get(TABLE_SCHEMA_KEY)
    if version is None:
        raise StudyError(f"{path}: table schema version None: a Parquet file, but not a results table of study (the "
                         "results.parquet of `study report`, or `write_table`'s)")
    if version != str(TABLE_SCHEMA_VERSION).encode():
        raise StudyError(f"{path}: table schema version {version!r}, this study reads {TABLE_SCHEMA_VERSION}"
                         f"{newer_note(version, TABLE_SCHEMA_VERSION)}")
    df = pd.read_parquet(path, columns=None if columns is None else _columns_named(path, schema.names, columns))
    # pandas >= 3 reads strings as `str`: object, as `collect` types them (`_typed`); copied into one block per type,
    # as `records_to_table` is (a table of hundreds of columns read as is warns of a fragmented frame at its first
    # `assign`)
    text = {c: "object" for c in df.columns if isinstance(df[c].dtype, pd.StringDtype)}
    return df.astype(text).copy() if text else df


def _columns_named(path: Path, names: list[str], asked: Iterable[str]) -> list[str]:
    """The columns of `names` that `asked` names or matches (`fnmatch`), in file order; StudyError for a miss."""
    asked = [asked] if isinstance(asked, str) else list(asked)
    for pattern in asked:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise StudyError(f"{path}: no column {pattern!r}{did_you_mean(pattern, names)}")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in asked)]
