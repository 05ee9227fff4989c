"""Build a report folder: results.parquet, the cells, findings and missing tables (CSV, Markdown, LaTeX; missing
with a plan), one PNG+PDF, paper table and plotted data (`<figure>_data.csv`) per figure, index.html, and
`.study-report.json`, the list of the files it wrote there: a later build deletes those it does not write again, and
never another file."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from study.atomic import STALE_TEMPORARY_S, atomic_path, remove_temporaries, write_text
from study.report import caveats, curves, rates, style
from study.report.figures import DRAWN_PROTOCOLS, FIGURES, NoData
from study.report.figures.common import seed_range
from study.report.findings import findings_table, tally
from study.report.html import Page, Section, write_index
from study.report.outputs import DATA_FORMATS, LISTING, Outputs, figure_files, report_names
from study.report.tables import table_paths, with_integer_counts, write_tables
from study.errors import StudyError, os_reason, user_name
from study.flock import locked
from study.paths import results_dir, unsubmitted_workdir
from study.results import (AXES, ResultFileWarning, aggregate, code_version, drop_repeated_seeds, find_conflicts,
                           gather, read_results, write_table)
from study.results.record import results_in_subfolders, subfolder_results_text
from study.results.table import job_code_versions
from study.version import code_digests

MISSING_COLUMNS = ("job_id", "stage", *AXES, "labeled_sizes", "state", "waits_for")  # then any other axis of the grid


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
    """What `build_report` wrote (`out`, its `index.html`) and found: the warnings it would print, the figures drawn,
    skipped or failed, and each of the paper's findings' verdict."""

    out: Path
    index: Path
    results: int  # jobs in results.parquet (one without metrics too; of a rerun seed, the newest job only)
    rows: int  # rows of results.parquet
    missing: int | None  # planned jobs without a result (None: no plan)
    skipped_files: list[str] = field(default_factory=list)
    conflicts: int = 0  # cells holding two protocol fingerprints
    drawn: list[str] = field(default_factory=list)
    skipped_figures: dict[str, str] = field(default_factory=dict)  # NoData notes and failures
    failed: list[str] = field(default_factory=list)  # figures that raised an error (not a lack of data)
    warnings: list[str] = field(default_factory=list)
    findings: dict[str, str] = field(default_factory=dict)  # each of the paper's findings (by name) -> its verdict


def _save(fig, path: Path, fmt: str, about: str) -> None:
    """Write `fig` to `path` as `fmt` (png, pdf), `about` (the report's grid and selection) in the file's metadata:
    a figure copied out of its report of part of a grid still says so."""
    meta = {"CreationDate": None, "Subject": about} if fmt == "pdf" else {"Description": about}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, metadata=meta)


def _pretraining_jobs(plan: Any, table: pd.DataFrame) -> tuple[tuple[str, dict], ...]:
    """(job id, axes) of each pretraining job: the plan's, else those with a result in `table`."""
    if plan is not None:
        return tuple((j.id, dict(j.axes)) for j in plan.jobs if j.stage == "pretrain")
    if table.empty:
        return ()
    rows = table[table["stage"] == "pretrain"].drop_duplicates("job_id")
    return tuple((r["job_id"], {k: r.get(k) for k in curves.AXES}) for _, r in rows.iterrows())


def _draw_figure(module, table: pd.DataFrame, expected, out: Path, section: Section, outputs: Outputs) -> None:
    """Draw one figure of FIGURES: its PNG and PDF, its paper table and its plotted data, into `out`."""
    fig, data = module.draw(table, expected)
    if "mean" in data and not data["mean"].notna().any():  # planned cells only: a figure of "missing" bars says nothing
        plt.close(fig)
        raise NoData("no cell has a value yet: each is planned without a result (missing.csv) or diverged")
    outputs.add(*figure_files(out, module.NAME))
    try:
        section.caption = data.attrs.get("caption", "")
        for fmt in ("png", "pdf"):
            _save(fig, out / f"{module.NAME}.{fmt}", fmt, outputs.about())
    finally:
        plt.close(fig)
    paper = with_integer_counts(module.paper_table(data))
    paths = write_tables(paper, out, module.NAME, caption=section.caption)
    write_tables(data, out, f"{module.NAME}_data", formats=DATA_FORMATS)
    section.files = {"png": f"{module.NAME}.png", "pdf": f"{module.NAME}.pdf",
                     **{fmt: p.name for fmt, p in paths.items()}, "plotted data": f"{module.NAME}_data.csv"}
    section.table = paper


def _scope_notes(coll: Any, plan: Any, grid: str | None, workdir: str | os.PathLike) -> list[str]:
    """The notes on what the report covers: by grid name, where other grids share its jobs (their results may be
    recorded under the other grid); with a plan and jobs missing, results of their cells under ids its grid file ran
    that the plan no longer has (`_results_off_plan`). NoResults where no result names grid `grid`; a StudyError
    where, with neither a plan nor a grid, the results are of several grids."""
    table, notes = coll.table, []
    if plan is None and grid is not None:
        if coll.other_grids and not table.empty:
            notes.append(
                f"without the grid file only results recorded under grid {grid} are drawn; a result records the "
                f"grid that ran it first, so jobs {grid} shares with {', '.join(coll.other_grids)} may be missing "
                f"here: give the grid's file to report every job of it")
        if table.empty:
            there = (f" (those there name grid{'s' if len(coll.other_grids) > 1 else ''} "
                     f"{', '.join(coll.other_grids)})" if coll.other_grids else "")
            raise NoResults(f"no result in {results_dir(workdir)} names grid {grid!r}{there}")
    if plan is None and grid is None and table["grid"].nunique(dropna=False) > 1:
        grids = sorted(table["grid"].dropna().unique()) + (["(none)"] if table["grid"].isna().any() else [])
        raise StudyError(f"results of several grids in {results_dir(workdir)} ({', '.join(grids)}): name the grid to "
                         "report (its grid file, or its name)")
    if plan is not None and coll.missing is not None and not coll.missing.empty:
        notes += _results_off_plan(plan, workdir, set(coll.missing["job_id"]))
        nested = results_in_subfolders(workdir, coll.missing["job_id"])
        if nested:
            notes.append(subfolder_results_text(nested, workdir, then="they are not drawn"))
    return notes


def _results_off_plan(plan: Any, workdir: str | os.PathLike, missing: set[str]) -> list[str]:
    """The notes of a report with planned jobs missing where the grid file ran jobs its plan no longer has, whose
    results are there (study.launch.grid_states.results_off_plan): "no result yet" is not "nothing ran". Only the
    results of a missing job's cell (its stage and axes) are counted: those of cells done under their new ids (an
    evaluation setting changed, then run), beside a new cell not run yet, are not what is missing. Those an older
    study left under other ids that `study submit` takes over (study.launch.take_over) are said apart, and so are
    second runs of their settings (`second_runs`), which no submit takes over or runs again."""
    from study.launch.grid_states import results_off_plan
    from study.launch.take_over import older_results, second_runs, takeable

    def cell(stage: Any, axes: Any) -> str:
        return json.dumps([stage, axes or {}], sort_keys=True, default=str)

    cells = {cell(j.stage, j.axes) for j in plan.jobs if j.id in missing}
    off_plan = results_off_plan(plan, workdir)
    older = older_results(plan, workdir, off_plan)
    taken = takeable(plan, workdir, older)
    twice = second_runs(workdir, older, taken)
    with warnings.catch_warnings():  # an unreadable one has no cell to count: left out, not warned of here
        warnings.simplefilter("ignore", ResultFileWarning)
        earlier = read_results(workdir, list(dict.fromkeys([*off_plan, *taken, *twice])))
    ids = [r["job_id"] for r in earlier if cell(r.get("stage"), r.get("axes")) in cells]
    rest = [job_id for job_id in ids if job_id not in taken and job_id not in twice]
    notes = []
    n_taken, n_twice = sum(job_id in taken for job_id in ids), sum(job_id in twice for job_id in ids)
    if n_taken:
        notes.append(f"{n_taken} result(s) in {results_dir(workdir)} are of jobs an older version of study ran "
                     f"under other ids, the same runs as the plan's jobs of their settings, which have no result "
                     f"yet: not drawn until `study submit` takes them over (moves each to its new id; none runs "
                     f"again)")
    if n_twice:
        notes.append(f"{n_twice} result(s) in {results_dir(workdir)} are second runs, by an older version of study, "
                     f"of the settings of results `study submit` takes over, or took over (settings that study told "
                     f"apart and this one does not: a whole number written `0`, then `0.0`, or a setting the job "
                     f"never reads changed between the two): not drawn, not taken over, and none runs again (`study "
                     f"status` names them)")
    if rest:
        notes.append(f"{len(rest)} result(s) in {results_dir(workdir)} are of jobs this grid file ran that its plan "
                     f"no longer has, in the cells of its jobs without a result yet (a job's id hashes its settings: "
                     f"the grid file's were changed since they ran, or another version of study resolves them "
                     f"otherwise); they are not drawn, and `study submit` would run their cells again under the new "
                     f"ids (`study status` says which settings changed)")
    return notes


STALE_LISTED = 4  # stale results of one cause warned of one by one; more are one warning, naming the first few


def _stale_warnings(stale: dict[str, str]) -> list[str]:
    """The report's warnings of the stale results drawn (`stale`: job id -> `stale_results`' line, "<stage> job
    <id>: <why>"): one per result, but one per cause shared by more than STALE_LISTED results (a test manifest
    rebuilt under a grid's hundred evaluations: a hundred warnings said one thing)."""
    by_why: dict[str, list[str]] = {}
    for line in stale.values():
        by_why.setdefault(line.partition(": ")[2], []).append(line)
    out = []
    for why, lines in by_why.items():
        then = (f"moved away (`study submit --set-aside-stale`) or the old "
                f"{'encoder file' if ' used encoder file ' in why else 'manifest'} restored")
        if len(lines) <= STALE_LISTED:
            out += [f"{line}: shown, but `study submit` refuses to go on until it is {then}" for line in lines]
            continue
        jobs = ", ".join(line.partition(": ")[0] for line in lines[:STALE_LISTED])
        out.append(f"{len(lines)} results ({jobs} and {len(lines) - STALE_LISTED} more: `study status --format json` "
                   f"names each): {why}: shown, but `study submit` refuses to go on until they are {then}")
    return out


def _draw_figures(figures: list, table: pd.DataFrame, expected, out: Path, outputs: Outputs,
                  warn_lines: list[str]) -> tuple[list[Section], list[str], dict[str, str], list[str]]:
    """(sections, drawn, skipped {name: why}, failed) of drawing each figure into `out`. A figure without data is
    skipped; one that raises is listed as failed, with a line added to `warn_lines`, and the others are drawn; the
    files of either are discarded (the folder shows no figure this build did not finish)."""
    with plt.rc_context():  # the report's style, then the caller's back (a notebook's own figures keep theirs)
        style.apply()
        return _draw_styled(figures, table, expected, out, outputs, warn_lines)


def _draw_styled(figures: list, table: pd.DataFrame, expected, out: Path, outputs: Outputs,
                 warn_lines: list[str]) -> tuple[list[Section], list[str], dict[str, str], list[str]]:
    """`_draw_figures`' work, the report's style set."""
    sections, drawn, skipped, failed = [], [], {}, []
    for module in figures:
        section = Section(module.NAME, module.TITLE)
        before, open_figures = len(outputs.written), set(plt.get_fignums())
        try:
            _draw_figure(module, table, expected, out, section, outputs)
        except NoData as e:
            outputs.discard(before)
            section.note = skipped[module.NAME] = str(e)
        except Exception as e:  # one figure's failure is reported; the others and the tables are still written
            outputs.discard(before)
            for number in set(plt.get_fignums()) - open_figures:  # its half-drawn figure (a notebook would show it)
                plt.close(number)
            section.note = skipped[module.NAME] = f"failed: {type(e).__name__}: {e}"
            warn_lines.append(f"figure {module.NAME} failed ({type(e).__name__}: {e}); the other figures are drawn")
            failed.append(module.NAME)
        else:
            drawn.append(module.NAME)
            warn_lines += caveats.duplicate_lines(module.NAME, section.table)
        sections.append(section)
    return sections, drawn, skipped, failed


def so_far(missing: int) -> str:
    """What the findings' verdicts are while `missing` planned jobs have no result: "" when none."""
    return f" (of the results so far: {missing} planned job(s) without a result)" if missing else ""


def _findings_section(table: pd.DataFrame, expected, out: Path, outputs: Outputs, warn_lines: list[str],
                      missing: int = 0, scope: str = "", whole: tuple | None = None,
                      agg: pd.DataFrame | None = None) -> Section:
    """The paper's findings checked on `table` (study.report.findings), written as `findings.csv/.md/.tex`; with
    `missing` planned jobs without a result, the caption says a verdict may change once they are in; of part of a
    grid (`scope`, `scope_text`), that a finding the other jobs would test reads 'not tested'; `whole`: then, the
    whole grid's (results table, planned jobs), against which each comparison is checked (`findings_table`); `agg`
    (the report's cells): how many seeds the compared cells have (`_seeds_note`)."""
    if whole is None:
        found, failed = findings_table(table, expected)
    else:
        found, failed = findings_table(table, whole[1], whole=whole[0])
    warn_lines += failed
    caption = ("Each finding of the paper and whether it holds on these results: like-for-like comparisons of top-1 "
               "means over seeds (reports/README.md, \"The paper's findings\"); 'not tested': the results lack the "
               "cells it compares")
    caption += _seeds_note(agg)
    if scope:  # the cells a finding compares may all be of jobs --where leaves out
        caption += (f". This report covers {scope}: a comparison that the cells left out would change is left out, "
                    "and a finding whose cells are of the other jobs reads 'not tested' here")
    if missing:  # a verdict of the cells there so far: the missing ones may add comparisons, or a finding's pair
        caption += (f". {missing} planned job(s) have no result yet (Missing cells): each verdict is of the results "
                    "so far, and may change once they are in")
    outputs.add(*table_paths(out, "findings").values())
    paths = write_tables(found, out, "findings", caption=caption)
    return Section("findings", "The paper's findings, checked on these results", caption=caption,
                   files={fmt: p.name for fmt, p in paths.items()}, table=found)


def _seeds_note(agg: pd.DataFrame | None) -> str:
    """The findings caption's count of seeds behind the top-1 cells they compare: with one seed a cell has no spread,
    so a gap of a point or two is no evidence either way; "" without cells."""
    if agg is None or agg.empty or not {"stage", "metric", "count"} <= set(agg):
        return ""
    seeds = seed_range(agg.loc[(agg["stage"] == "evaluate") & (agg["metric"] == "top1"), "count"])
    if not seeds:
        return ""
    if seeds == "1":
        return ("; every cell here is one seed: no spread to judge a gap by, and a gap of a point or two may be "
                "one seed's noise")
    return f"; cells of {seeds} seeds (their spread: cells.csv)"


def _rates_section(table: pd.DataFrame, name: str, out: Path, outputs: Outputs) -> Section:
    """The throughput the finished jobs measured (study.report.rates), written as `rates.csv/.md/.tex` and, as a
    profile's cost section would hold it, `rates.yaml`; a note where no job recorded a rate."""
    section = Section(rates.NAME, rates.TITLE)
    found = rates.measured_rates(table)
    if found.empty:
        section.note = "no finished job recorded a rate yet"
        return section
    snippet = rates.profile_snippet(found, name)
    outputs.add(*table_paths(out, rates.NAME).values(), out / rates.SNIPPET)
    section.caption = ("Images per second per device (GPU; a CPU job: per job) that the finished jobs measured, "
                       "median over jobs (lowest, highest), by backbone, width, image size and device; below, a "
                       f"profile's `cost` section from them ({rates.SNIPPET}): put it in your profile for `study plan` "
                       "to estimate the rest of a study from this cluster's rates (grids/README.md, \"Cost model\")")
    paths = write_tables(found, out, rates.NAME, caption=section.caption)
    write_text(out / rates.SNIPPET, snippet)
    section.files = {**{fmt: p.name for fmt, p in paths.items()}, "yaml": rates.SNIPPET}
    section.table, section.code = found, snippet
    return section


def report_lock(out: Path) -> Path:
    """The lock file of report folder `out`, beside it (`.<name>.report.lock`): one build at a time writes a folder."""
    return out.parent / f".{out.name}.report.lock"


def _refuse_unwritable(out: Path) -> None:
    """StudyError, before any work, where this user cannot write report folder `out` (or, not made yet, the
    nearest folder above it that is there), naming that folder, its owner and mode; or where it is a file."""
    there = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if there.is_dir() and os.access(there, os.W_OK | os.X_OK):
        return
    import stat

    st = there.stat()
    owner = user_name(st.st_uid)
    what = "is a file, not a folder" if not there.is_dir() else \
        f"is {owner}'s ({stat.filemode(st.st_mode)}), not writable by you"
    raise StudyError(f"--out {out}: cannot make the report folder: {there} {what}; give another --out (a folder of "
                     "yours)"
                     + (f", or ask {owner} to `chmod g+w {there}` for a folder your group shares" if there.is_dir()
                        else ""))


def build_report(workdir: str | os.PathLike, out: str | os.PathLike, plan: Any = None, grid: str | None = None,
                 log: TextIO | None = None, where: dict[str, list[str]] | None = None) -> ReportSummary:
    """Collect `<workdir>/results/` (the plan's jobs, or records of grid `grid` without a plan; with neither, every
    record, which must all be of one grid: the report is that grid's, as with `grid`) into `out`.

    `where`: the `--where` conditions (study.grids.where.canonical_where) that reduced `plan` to part of its grid
    (study.grids.cli.plan_where): the page, the log and the folder's listing say so, and a folder holding the report
    of another selection (or of the whole grid) is refused, as another grid's is.

    Warnings (skipped files, repeated seeds, fingerprint conflicts, cells of several code versions, cells with
    fewer seeds than planned, figures that failed) and a summary line go to `log` (the CLI passes stderr). Without a
    plan, a grid name that no result carries raises NoResults before anything is written; with neither a plan nor a
    grid, results recorded under more than one grid raise a StudyError asking for the grid's name (one cell of two
    grids would be two cells of one figure). So does an `out` holding files that no report wrote (`Outputs`), and a
    `workdir` that is no folder (nothing was submitted with it: a mistyped one), before anything is written. A
    figure that raises an error is listed in `failed`; the other figures are still drawn.

    The build holds `report_lock(out)`: a second build into the same folder (two `study report`s, a cron job's and
    yours) waits for the first, rather than deleting the files it lists and the other wrote.
    """
    unsubmitted = unsubmitted_workdir(workdir)  # a mistyped one: a report of every job missing tells nothing
    if unsubmitted:
        raise StudyError(f"workdir {workdir}: {unsubmitted}")
    out = Path(out)
    _refuse_unwritable(out)
    lock = report_lock(out.absolute())
    with locked(lock, f"study report: waiting for another build of {out} to end ({lock})"):
        return _build(workdir, out, plan, grid, log, where)


def _cells_and_warnings(coll: Any, unplanned_note: list[str], workdir: str | os.PathLike) -> tuple:
    """(results table with one job per seed, its cells (`aggregate`), the report's warning lines, those of them on
    protocol fingerprint conflicts): skipped files, no results yet, reruns of one seed, results without a value,
    conflicts, modified code versions, cells of several devices, cells short of their planned seeds and cells of a
    protocol no figure draws."""
    table = coll.table
    warn_lines = [f"skipped result file {s}" for s in coll.skipped] + unplanned_note
    if table.empty:  # results of the grid file's earlier jobs (unplanned_note) are in this workdir: not another one
        warn_lines.append(f"no result of this grid in {results_dir(Path(workdir).resolve())} yet: run `study submit`"
                          + ("" if unplanned_note else
                             ", or give the workdir the jobs wrote to (--workdir, $STUDY_WORKDIR)"))
    table, repeats = drop_repeated_seeds(table)
    warn_lines += [f"one seed of one cell has results of several jobs ({r.job_ids}, oldest first): a rerun or a "
                   f"stale result, not a replicate; the newest ({r.kept}) is used" for r in repeats.itertuples()]
    warn_lines += caveats.valueless_lines(table)
    versions = job_code_versions(table) if "code_version" in table else None  # once, for the cells and the warning
    agg = aggregate(table, versions)
    conflicts = find_conflicts(agg)
    conflict_lines = caveats.conflict_lines(conflicts, table) if not conflicts.empty else []
    warn_lines += conflict_lines
    digests = code_digests(_all_versions(versions)) if versions is not None else None  # which versions are one code
    warn_lines += caveats.version_mix_lines(table, code_versions=versions, digests=digests)
    warn_lines += caveats.code_version_lines(agg, digests=digests)
    warn_lines += caveats.device_mix_lines(table)
    warn_lines += caveats.partial_seed_lines(agg, coll.planned)
    warn_lines += caveats.undrawn_lines(agg, DRAWN_PROTOCOLS)
    return table, agg, warn_lines, conflict_lines


def _all_versions(versions: pd.Series) -> set[str]:
    """The code versions of `job_code_versions`' comma-joined values."""
    return {v for vs in versions.dropna() for v in vs.split(",") if v}


def _missing_table(coll: Any, out: Path, outputs: Outputs) -> pd.DataFrame | None:
    """The planned jobs without a result (MISSING_COLUMNS first, then the grid's other axes), written as the
    `missing` tables; None without a plan."""
    if coll.missing is None:
        return None
    extra = [c for c in coll.missing.columns if c not in MISSING_COLUMNS + ("depends_on", "has_result")]
    columns = [c for c in MISSING_COLUMNS if c in coll.missing.columns] + extra
    missing = with_integer_counts(coll.missing[columns])
    outputs.add(*table_paths(out, "missing").values())
    write_tables(missing, out, "missing", caption="planned jobs without a result and what they wait for")
    return missing


def leaves_jobs_out(plan: Any, where: dict[str, list[str]] | None) -> bool:
    """Whether `--where` (`where`) selects fewer than all of the grid's jobs: a report of part of its grid, titled so,
    its findings checked against the whole grid's results. False without `--where` or a plan, and for a selection of
    every job."""
    return where is not None and plan is not None and len(plan.jobs) < len(getattr(plan, "grid_jobs", plan.jobs))


def scope_text(plan: Any, where: dict[str, list[str]] | None) -> str:
    """Which of its grid's jobs a report covers: "" without `--where` (or a plan), else the `--where` flags and how
    many of the grid's jobs they select ("all" where they select every one: `leaves_jobs_out` false)."""
    if where is None or plan is None:
        return ""
    from study.grids.where import where_text

    whole = len(getattr(plan, "grid_jobs", plan.jobs))
    if not leaves_jobs_out(plan, where):  # a selection of every job (`--where seed=0` of a one-seed grid)
        return f"all {whole} of grid {plan.name}'s jobs, which {where_text(where)} selects"
    return (f"only the {len(plan.jobs)} of grid {plan.name}'s {whole} jobs that {where_text(where)} selects: every "
            "figure, table and finding is of their results alone")


def _whole_grid(plan: Any, workdir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
    """(results table, planned jobs) of the whole grid of a plan `--where` reduced (one job per seed, as the
    report's), for the findings to check the part's comparisons against; None for a whole plan."""
    if getattr(plan, "whole", None) is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultFileWarning)  # the part's are warned of; the others' are not its
        coll = gather(workdir, dataclasses.replace(plan, jobs=plan.whole, whole=None))
    planned = coll.planned if coll.planned is not None and not coll.planned.empty else None
    return drop_repeated_seeds(coll.table)[0], planned


def _recorded_grid(table: pd.DataFrame) -> str | None:
    """The grid every result of `table` records (a build given neither a plan nor a grid's name, of one grid's
    results: its report is that grid's, as `grid=` names it); None for no results or none recording a grid."""
    grids = table["grid"].dropna().unique() if "grid" in table else []
    return str(grids[0]) if len(grids) == 1 else None


def _build(workdir: str | os.PathLike, out: Path, plan: Any, grid: str | None, log: TextIO | None,
           where: dict[str, list[str]] | None = None) -> ReportSummary:
    """`build_report`'s work, its lock held."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResultFileWarning)  # listed below, once each
        coll = gather(workdir, plan, grid=grid if plan is None else None)
    table = coll.table
    unplanned_note = _scope_notes(coll, plan, grid, workdir)  # refuses results of several grids without a name
    name = plan.name if plan is not None else (grid or _recorded_grid(table) or "results")
    if table.empty:
        _keep_a_report_of_results(out, workdir)
    from study.launch.grid_states import grid_file

    part = leaves_jobs_out(plan, where)  # a selection of every job is the whole grid's report, in either's folder
    outputs = Outputs(out, {"grid": name, "grid_file": grid_file(plan), "where": where, "part": part})
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StudyError(f"--out {out}: cannot make the report folder: {os_reason(e)}") from None
    for file_name in sorted(report_names() | {LISTING}):  # a killed build's (no lock here: not a live build's)
        remove_temporaries(out / file_name, older_than_s=STALE_TEMPORARY_S)
    table, agg, warn_lines, conflict_lines = _cells_and_warnings(coll, unplanned_note, workdir)

    outputs.add(out / "results.parquet", *table_paths(out, "cells").values())
    write_table(table, out / "results.parquet", grid=name, where=where if part else None)
    write_tables(agg, out, "cells", caption="every cell: mean, std and count over seeds, per protocol fingerprint")
    expected = coll.planned if coll.planned is not None and not coll.planned.empty else None

    if plan is not None:
        from study.launch.grid_states import with_dependencies
        from study.launch.stale import stale_results

        # with their dependencies: a selected evaluation is stale through its pretraining also where --where leaves
        # that out (as `study status` counts it)
        own = {j.id for j in plan.jobs}
        stale = stale_results(with_dependencies(plan) or plan.jobs, workdir)
        warn_lines += _stale_warnings({job_id: line for job_id, line in stale.items() if job_id in own})

    n_missing = len(coll.missing) if coll.missing is not None else 0
    scope = scope_text(plan, where)
    findings = _findings_section(table, expected, out, outputs, warn_lines, n_missing, scope if part else "",
                                 _whole_grid(plan, workdir) if part else None, agg)
    figures = [*FIGURES, curves.Figure(workdir, _pretraining_jobs(plan, table))]
    sections, drawn, skipped_figs, failed = _draw_figures(figures, table, expected, out, outputs, warn_lines)
    sections.insert(0, findings)
    sections.append(_rates_section(table, name, out, outputs))

    missing = _missing_table(coll, out, outputs)
    n_records = table["job_id"].nunique() if not table.empty else 0
    summary = [f"{n_records} job result(s), {int(table['metric'].notna().sum())} metric row(s)",
               "missing: " + ("unknown (no plan)" if missing is None
                              else f"{len(missing)} planned job(s) without a result"),
               f"skipped result files: {len(coll.skipped)}",
               f"protocol fingerprint conflicts: {len(conflict_lines)} cell(s)",
               f"figures drawn: {', '.join(drawn) or 'none'}; skipped: {', '.join(skipped_figs) or 'none'}"
               + (f"; failed: {', '.join(failed)}" if failed else ""),
               f"the paper's findings: {tally(findings.table['verdict'])}{so_far(n_missing)}"]
    page = Page(grid=name, scope=scope, part=part,
                description=getattr(getattr(plan, "grid", None), "description", "") or "",
                date=_dt.datetime.now().astimezone().isoformat(timespec="seconds"), code_version=code_version(),
                summary=summary, warnings=warn_lines, sections=sections,
                missing=missing, downloads={"results.parquet": "results.parquet", "cells.csv": "cells.csv",
                                            **({"missing.csv": "missing.csv"} if missing is not None else {})})
    outputs.add(out / "index.html")
    index = write_index(out, page)
    outputs.finish()
    if log is not None:
        for line in warn_lines:
            print(f"study report: warning: {line}", file=log)
        if scope:
            print(f"study report: {name}: {scope}", file=log)
        print(f"study report: {name}: {summary[0]}; {summary[1]}; {summary[2]} -> {index}", file=log)
        print(f"study report: {name}: {summary[-1]}", file=log)
    return ReportSummary(out=out, index=index, results=n_records, rows=len(table),
                         missing=None if missing is None else len(missing),
                         skipped_files=[str(s) for s in coll.skipped],
                         conflicts=len(conflict_lines), drawn=drawn,
                         skipped_figures=skipped_figs, failed=failed, warnings=warn_lines,
                         findings=dict(zip(findings.table["name"], findings.table["verdict"])))
