"""`build_report` from a notebook or script: it draws with the report's style and leaves the caller's matplotlib
(backend, rcParams, seaborn theme, open figures) as it found them."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
from report_records import ALL_RECORDS as ALL
from report_records import plan_for, write_all

from study.report import build_report

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_report_keeps_the_callers_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt; "
            "import study.report.build, study.report.style; print(matplotlib.get_backend())")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "svg"


def test_a_build_leaves_the_callers_rcparams_and_figures(tmp_path):
    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    fig, _ = plt.subplots()
    with plt.rc_context({"font.size": 13.0}):
        before = {k: v for k, v in plt.rcParams.items() if k != "backend"}
        s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=io.StringIO())
        after = {k: v for k, v in plt.rcParams.items() if k != "backend"}
    assert s.drawn and not s.failed
    assert {k for k in before if before[k] != after[k]} == set()
    assert plt.get_fignums() == [fig.number]


def test_a_failing_figure_leaves_no_figure_open(tmp_path, monkeypatch):
    from study.report.figures import quality

    def draw(table, expected=None):
        plt.subplots()
        raise RuntimeError("boom")

    monkeypatch.setattr(quality, "draw", draw)
    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=io.StringIO())
    assert s.failed == ["quality"] and plt.get_fignums() == []


def test_a_figure_skipped_for_planned_cells_only_leaves_no_figure_open(tmp_path):
    from study.grids import plan_grid

    plt.close("all")
    (tmp_path / "w").mkdir()
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_grid(str(REPO / "grids" / "data_domain.yaml")),
                     log=None)
    assert "no cell has a value yet" in s.skipped_figures["domain_pooling"] and plt.get_fignums() == []
