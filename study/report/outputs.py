"""The files of a report folder that builds wrote: `Outputs`, listed in LISTING beside them, so that a build deletes
only what an earlier build of the same grid wrote; `figure_files` and `report_names`, the names a build writes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from study.atomic import write_text
from study.errors import StudyError
from study.report import curves, rates
from study.report.figures import FIGURES
from study.report.tables import table_paths
from study.results.table import TABLE_SCHEMA_KEY

LISTING = ".study-report.json"  # the files builds wrote into the report folder


def is_a_report(out: Path) -> bool:
    """Whether `out` holds a report's results.parquet (one an earlier build wrote without a listing)."""
    try:
        return TABLE_SCHEMA_KEY in (pq.read_schema(out / "results.parquet").metadata or {})
    except (OSError, pa.ArrowException):
        return False


class Outputs:
    """The files of a report folder that builds wrote, listed in LISTING with the grid they report (`owner`: its
    name, grid file, `--where` selection (None without) and `part`: whether that selection leaves jobs out; a
    selection of every job reports the whole grid): rewritten (atomically) at each file added, so
    that a build stopped half-way still lists every file it wrote. `finish` deletes the files an earlier build
    listed that this one did not write; no other file is ever deleted. A folder listed as another grid's report is
    refused (two grid files of one name share the default reports/<name>)."""

    def __init__(self, out: Path, owner: dict[str, Any]):
        self.out, self.owner, self.written = out, owner, []
        try:
            listing = json.loads((out / LISTING).read_text())
            listed = listing["files"]
        except (OSError, ValueError, TypeError, KeyError):
            listing, listed = {}, None  # none (or not ours)
        other = _other_owner(listing, owner)
        if other:
            ours = _owner_text(owner, versus_part=_parts(listing))
            copy = (listing.get("grid") == owner["grid"] and listing.get("grid_file") != owner["grid_file"]
                    and None not in (listing.get("grid_file"), owner["grid_file"]))
            raise StudyError(f"--out {out} holds the report of {other}, not of {ours}: give this report another "
                             "--out, or delete that folder" + (
                                 " (two grid files of one `name:` share its default, reports/<name>: give the copy "
                                 "a `name:` of its own (no job runs again: a job's id does not hold it), or "
                                 "report it with --out)" if copy else ""))
        if owner["grid_file"] is None and isinstance(listing, dict) and listing.get("grid") == owner["grid"]:
            self.owner = {**owner, "grid_file": listing.get("grid_file")}  # a build by grid name keeps the file
        if listed is None and out.is_dir():
            names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # not temporaries, .DS_Store
            if is_a_report(out):  # written before builds kept a listing: the files a build names so are its
                listed = [n for n in names if n in report_names()]
            elif names:
                raise StudyError(f"--out {out} holds files that no report wrote ({', '.join(names[:5])}"
                                 f"{', …' if len(names) > 5 else ''}): a report writes index.html, results.parquet "
                                 "and a file per figure and table there. Give a new or empty folder, or an earlier "
                                 "report's")
        self.earlier = {n for n in listed if isinstance(n, str) and n == Path(n).name
                        and n not in ("", "..", LISTING)} if isinstance(listed, list) else set()

    def about(self) -> str:
        """What the folder's files are of, for a file's own metadata: the grid, and the `--where` selection where the
        report is of part of it (not its grid file: a figure's bytes are the same wherever the grid lies)."""
        return "study report of " + _owner_text({**self.owner, "grid_file": None, "where": self.owner["where"]
                                                  if _parts(self.owner) else None})

    def add(self, *paths: Path) -> None:
        """List `paths` (before they are written: a write that fails half-way leaves no file unlisted)."""
        self.written += [Path(p).name for p in paths]
        self._list(self.earlier | set(self.written))

    def discard(self, since: int) -> None:
        """Delete the files added after the first `since` (a figure that failed half-way)."""
        for name in self.written[since:]:
            (self.out / name).unlink(missing_ok=True)
        del self.written[since:]

    def finish(self) -> None:
        for name in sorted(self.earlier - set(self.written)):
            (self.out / name).unlink(missing_ok=True)
        self._list(set(self.written))

    def _list(self, names: set[str]) -> None:
        write_text(self.out / LISTING, json.dumps({**self.owner, "files": sorted(names)}, indent=1) + "\n")


def _other_owner(listing: Any, owner: dict[str, Any]) -> str | None:
    """How the grid a report folder's listing names reads when it is not `owner`'s (another grid name, another
    `--where` selection of its jobs, or another grid file where both are known and the listed one is still there: a
    grid file that is gone was moved, with its project or quickstart data folder, or renamed); None when it is the
    same, or the listing names none (an older build's)."""
    if not isinstance(listing, dict) or not isinstance(listing.get("grid"), str):
        return None
    theirs = {"grid": listing["grid"], "grid_file": listing.get("grid_file"), "where": listing.get("where"),
              "part": listing.get("part")}
    same_file = None in (theirs["grid_file"], owner["grid_file"]) or theirs["grid_file"] == owner["grid_file"] \
        or isinstance(theirs["grid_file"], str) and not Path(theirs["grid_file"]).exists()
    # a report of part of the grid is not the whole grid's; two of every job are one (a `--where` that selected all
    # of them then may select part of a grid grown since: its own folder still takes it)
    same_jobs = theirs["where"] == owner.get("where") or not _parts(theirs) and not _parts(owner)
    if theirs["grid"] == owner["grid"] and same_file and same_jobs:
        return None
    return _owner_text(theirs, versus_part=_parts(owner))


def _parts(owner: dict[str, Any]) -> bool:
    """Whether `owner` (a listing's, or a build's) reports part of its grid: it has a `--where`, and its `part` says
    that selection leaves jobs out (an older build's listing, without `part`, has a `--where` only where it does); a
    listing's `part` without a `--where` (edited by hand) is not a part, which no `--where` could name."""
    return isinstance(owner, dict) and isinstance(owner.get("where"), dict) and owner.get("part") is not False


def _owner_text(owner: dict[str, Any], versus_part: bool = False) -> str:
    """How the grid a report is of reads in a refusal: its name, file and `--where` selection; `versus_part`: the
    other side is of part of a grid, so a report of the whole grid says so (else the two may read alike)."""
    from study.grids.where import where_text

    where = owner.get("where")
    return (f"grid {owner['grid']}" + (f" ({owner['grid_file']})" if owner.get("grid_file") else "")
            + (f" (only the jobs {where_text(where)} selects)" if _parts(owner)
               else f" (all its jobs, which {where_text(where)} selects)" if isinstance(where, dict)
               else " (all its jobs)" if versus_part else ""))


# a figure's plotted data: every point of every line (a training curve's thousands of rows per job), for a program
DATA_FORMATS = ("csv",)


def figure_files(out: Path, name: str) -> list[Path]:
    """The files a build writes for figure `name`: its PNG and PDF, its paper table and its plotted data (CSV)."""
    return [out / f"{name}.png", out / f"{name}.pdf", *table_paths(out, name).values(),
            *table_paths(out, f"{name}_data", DATA_FORMATS).values()]


def report_names() -> set[str]:
    """Every file name a build writes into its folder."""
    here = Path(".")
    tables = [p for t in ("cells", "missing", "findings", rates.NAME) for p in table_paths(here, t).values()]
    return {"index.html", "results.parquet", rates.SNIPPET, *(p.name for p in tables),
            *(p.name for name in (*(m.NAME for m in FIGURES), curves.NAME) for p in figure_files(here, name))}
