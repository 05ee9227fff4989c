"""Build a report folder: results.parquet, cells.csv, one PNG+PDF and table per figure, missing.csv, index.html."""
from __future__ import annotations

import datetime as _dt
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from study.atomic import atomic_path
from study.report import style
from study.report.figures import FIGURES, NoData
from study.report.html import Page, Section, write_index
from study.report.tables import with_integer_counts, write_tables
from study.errors import StudyError
from study.paths import results_dir
from study.results import (AGGREGATE_COLUMNS, ResultFileWarning, aggregate, cell_columns, code_version,
                           drop_repeated_seeds, find_conflicts, gather, write_table)

MISSING_COLUMNS = ("job_id", "stage", "method", "backbone", "dataset", "size", "corruption", "seed", "protocol",
                   "eval_dataset", "labeled_sizes", "state", "waits_for")  # then any other axis of the grid


class NoResults(StudyError):
    """No plan, and no result names the grid: nothing is written."""


def _keep_a_report_of_results(out: Path, workdir: str | os.PathLike) -> None:
    """Refuse to replace a report drawn from results with one drawn from none (a mistyped workdir)."""
    try:
        n = pq.read_metadata(out / "results.parquet").num_rows
    except (OSError, pa.ArrowException):
        return  # no earlier report, or none to keep
    if n:
        raise StudyError(f"no result of this grid in {results_dir(Path(workdir).resolve())}, but {out} holds a report "
                         f"of {n} result rows: not replaced. Check --workdir (or $STUDY_WORKDIR); delete {out} to "
                         "draw an empty report")


@dataclass
class ReportSummary:
    out: Path
    index: Path
    results: int  # result records read (one without metrics too)
    rows: int  # rows of results.parquet
    missing: int | None  # planned jobs without a result (None: no plan)
    skipped_files: list[str] = field(default_factory=list)
    conflicts: int = 0  # cells holding two protocol fingerprints
    drawn: list[str] = field(default_factory=list)
    skipped_figures: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _save(fig, path: Path, fmt: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata={"CreationDate": None} if fmt == "pdf" else None)


def _cell_keys(agg: pd.DataFrame) -> list[str]:
    """The columns of `aggregate`'s output that name a cell in a warning (not its grid, stage or fingerprint)."""
    return [c for c in agg.columns if c not in (*AGGREGATE_COLUMNS, "protocol_fingerprint", "grid", "stage")]


def _cell_text(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys if not pd.isna(row[k]))


def _conflict_lines(conflicts: pd.DataFrame) -> list[str]:
    lines = []
    keys = _cell_keys(conflicts)
    for _, group in conflicts.groupby(keys, dropna=False, sort=True):
        cell = _cell_text(group.iloc[0], keys)
        newest = group.sort_values("finished_at", na_position="first").iloc[-1]["protocol_fingerprint"]
        parts = "; ".join(f"{r.protocol_fingerprint}: mean {r.mean:.4f} over {r.count} seed(s) (jobs {r.job_ids})"
                          for r in group.itertuples())
        lines.append(f"protocol fingerprint conflict in cell [{cell}]: {parts}. Kept apart in cells.csv; the "
                     f"figures draw the newest, {newest}.")
    return lines


def _code_version_lines(agg: pd.DataFrame, shown: int = 3) -> list[str]:
    """One line naming (the first `shown` of) the cells whose seeds ran on more than one code version or on a
    modified ("-dirty") tree: the code version is no part of the fingerprint, so they are averaged as one recipe."""
    if agg.empty or "code_versions" not in agg:
        return []
    versions = [[v for v in str(vs).split(",") if v] if isinstance(vs, str) else [] for vs in agg["code_versions"]]
    mixed = agg[[len(vs) > 1 or any(v.endswith("-dirty") for v in vs) for vs in versions]]
    if mixed.empty:
        return []
    keys = _cell_keys(mixed)
    listed = "; ".join(f"[{_cell_text(row, keys)}]: {row['code_versions']}" for _, row in mixed.head(shown).iterrows())
    more = f"; and {len(mixed) - shown} more" if len(mixed) > shown else ""
    return [f"{len(mixed)} cell(s) average seeds run by several code versions or by a modified ('-dirty') source "
            f"tree, as one recipe (the code version is no part of the protocol fingerprint): {listed}{more}. "
            "cells.csv gives each cell's code_versions"]


def _valueless_lines(table: pd.DataFrame) -> list[str]:
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


def _draw_figure(module, table: pd.DataFrame, expected, out: Path, section: Section) -> None:
    """Draw one figure of FIGURES: its PNG and PDF, its paper table and its plotted data, into `out`."""
    fig, data = module.draw(table, expected)
    if "mean" in data and not data["mean"].notna().any():  # planned cells only: a figure of "missing" bars says nothing
        plt.close(fig)
        raise NoData("no cell has a value yet: each is planned without a result (missing.csv) or diverged")
    try:
        section.caption = data.attrs.get("caption", "")
        _save(fig, out / f"{module.NAME}.png", "png")
        _save(fig, out / f"{module.NAME}.pdf", "pdf")
    finally:
        plt.close(fig)
    paper = with_integer_counts(module.paper_table(data))
    paths = write_tables(paper, out, module.NAME, caption=section.caption)
    write_tables(data, out, f"{module.NAME}_data", caption=f"plotted data of {module.NAME}")
    section.files = {"png": f"{module.NAME}.png", "pdf": f"{module.NAME}.pdf",
                     **{fmt: p.name for fmt, p in paths.items()}, "plotted data": f"{module.NAME}_data.csv"}
    section.table = paper


def _remove_earlier_outputs(out: Path, names: list[str]) -> None:
    """Delete what an earlier build wrote for `names` (figures not drawn now, `missing` without a plan), so that the
    folder never shows a figure or table this build did not make."""
    for name in names:
        for path in [*out.glob(f"{name}.*"), *out.glob(f"{name}_data.*")]:
            path.unlink(missing_ok=True)


def build_report(workdir: str | os.PathLike, out: str | os.PathLike, plan: Any = None, grid: str | None = None,
                 log: TextIO | None = None) -> ReportSummary:
    """Collect `<workdir>/results/` (the plan's jobs, or records of grid `grid` without a plan) into `out`.

    Warnings (skipped files, repeated seeds, fingerprint conflicts, cells of several code versions) and a summary
    line go to `log` (the CLI passes stderr). Without a plan, a grid name that no result carries raises NoResults
    before anything is written; with neither a plan nor a grid, results recorded under more than one grid raise a
    StudyError asking for the grid's name (one cell of two grids would be two cells of one figure).
    """
    out = Path(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultFileWarning)  # listed below, once each
        coll = gather(workdir, plan)
    table = coll.table
    name = plan.name if plan is not None else (grid or "results")
    unplanned_note = []
    if plan is None and grid is not None:
        if not table.empty:
            others = sorted(set(table.loc[table["grid"] != grid, "grid"].dropna()))
            table = table[table["grid"] == grid].reset_index(drop=True)
            if others and not table.empty:
                unplanned_note.append(
                    f"without the grid file only results recorded under grid {grid} are drawn; a result records the "
                    f"grid that ran it first, so jobs {grid} shares with {', '.join(others)} may be missing here: "
                    f"give the grid's file to report every job of it")
        if table.empty:
            raise NoResults(f"no result in {results_dir(workdir)} names grid {grid!r}")
    if plan is None and grid is None and table["grid"].nunique(dropna=False) > 1:
        grids = sorted(table["grid"].dropna().unique()) + (["(none)"] if table["grid"].isna().any() else [])
        raise StudyError(f"results of several grids in {results_dir(workdir)} ({', '.join(grids)}): name the grid to "
                         "report (its grid file, or its name)")
    if table.empty:
        _keep_a_report_of_results(out, workdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StudyError(f"--out {out}: cannot make the report folder: {e.strerror or e}") from None
    warn_lines = [f"skipped result file {s}" for s in coll.skipped] + unplanned_note
    if table.empty:
        warn_lines.append(f"no result of this grid in {results_dir(Path(workdir).resolve())} yet: run `study submit`, "
                          "or give the workdir the jobs wrote to (--workdir, $STUDY_WORKDIR)")
    table, repeats = drop_repeated_seeds(table)
    warn_lines += [f"one seed of one cell has results of several jobs ({r.job_ids}, oldest first): a rerun or a "
                   f"stale result, not a replicate; the newest ({r.kept}) is used" for r in repeats.itertuples()]
    warn_lines += _valueless_lines(table)
    agg = aggregate(table)
    conflicts = find_conflicts(agg)
    conflict_lines = _conflict_lines(conflicts) if not conflicts.empty else []
    warn_lines += conflict_lines
    warn_lines += _code_version_lines(agg)

    write_table(table, out / "results.parquet", grid=name)
    write_tables(agg, out, "cells", caption="every cell: mean, std and count over seeds, per protocol fingerprint")
    expected = coll.planned if coll.planned is not None and not coll.planned.empty else None

    if plan is not None:
        from study.launch.state import stale_results

        warn_lines += [f"{line}: shown, but `study submit` would rerun it"
                       for line in stale_results(plan.jobs, workdir)]

    style.apply()
    sections, drawn, skipped_figs = [], [], {}
    for module in FIGURES:
        section = Section(module.NAME, module.TITLE)
        try:
            _draw_figure(module, table, expected, out, section)
        except NoData as e:
            section.note = skipped_figs[module.NAME] = str(e)
        except Exception as e:  # one figure's failure is reported; the others and the tables are still written
            section.note = skipped_figs[module.NAME] = f"failed: {type(e).__name__}: {e}"
            warn_lines.append(f"figure {module.NAME} failed ({type(e).__name__}: {e}); the other figures are drawn")
        else:
            drawn.append(module.NAME)
        sections.append(section)

    missing = None
    if coll.missing is not None:
        extra = [c for c in coll.missing.columns if c not in MISSING_COLUMNS + ("depends_on", "has_result")]
        columns = [c for c in MISSING_COLUMNS if c in coll.missing.columns] + extra
        missing = with_integer_counts(coll.missing[columns])
        write_tables(missing, out, "missing", caption="planned jobs without a result and what they wait for")
    _remove_earlier_outputs(out, [m.NAME for m in FIGURES if m.NAME not in drawn] + ([] if missing is not None
                                                                                      else ["missing"]))
    n_records = table["job_id"].nunique() if not table.empty else 0
    summary = [f"{n_records} job result(s), {int(table['metric'].notna().sum())} metric row(s)",
               f"missing: {'unknown (no plan)' if missing is None else f'{len(missing)} planned job(s) without a result'}",
               f"skipped result files: {len(coll.skipped)}",
               f"protocol fingerprint conflicts: {len(conflict_lines)} cell(s)",
               f"figures drawn: {', '.join(drawn) or 'none'}; skipped: {', '.join(skipped_figs) or 'none'}"]
    page = Page(grid=name, date=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                code_version=code_version(), summary=summary, warnings=warn_lines, sections=sections,
                missing=missing, downloads={"results.parquet": "results.parquet", "cells.csv": "cells.csv",
                                            **({"missing.csv": "missing.csv"} if missing is not None else {})})
    index = write_index(out, page)
    if log is not None:
        for line in warn_lines:
            print(f"study report: warning: {line}", file=log)
        print(f"study report: {name}: {summary[0]}; {summary[1]}; {summary[2]} -> {index}", file=log)
    return ReportSummary(out=out, index=index, results=n_records, rows=len(table),
                         missing=None if missing is None else len(missing),
                         skipped_files=[str(s) for s in coll.skipped],
                         conflicts=len(conflict_lines), drawn=drawn,
                         skipped_figures=skipped_figs, warnings=warn_lines)
