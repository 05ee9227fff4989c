"""A copy of a grid file (same `name:`) reported into the original's default folder, reports/<name>: the refusal
said only `--out reports/<name> holds the report of ...`, though the user gave no --out."""
from __future__ import annotations

import dataclasses

import pytest
from report_records import plan_for, quantity_records, write_all

from study.errors import StudyError
from study.report import build_report


def test_a_copy_of_the_grid_file_is_told_how_to_report_apart(tmp_path):
    write_all(tmp_path / "w", quantity_records())
    out = tmp_path / "r"
    original = plan_for(quantity_records())
    original.path = str(tmp_path / "original.yaml")
    build_report(tmp_path / "w", out, plan=original, log=None)
    copy = dataclasses.replace(original)
    copy.path = str(tmp_path / "copy.yaml")
    for name in ("original.yaml", "copy.yaml"):
        (tmp_path / name).write_text("name: g\n")
    with pytest.raises(StudyError, match=r"\(two grid files of one `name:` share its default, reports/<name>: give "
                                         r"the copy a `name:` of its own \(no job runs again: a job's id does not "
                                         r"hold it\), or report it with --out\)$"):
        build_report(tmp_path / "w", out, plan=copy, log=None)
    with pytest.raises(StudyError, match="not of grid h: give this report another --out, or delete that folder$"):
        build_report(tmp_path / "w", out, plan=plan_for(quantity_records(), name="h"), log=None)  # not a copy
