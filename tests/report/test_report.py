"""`study report`: a whole report folder from results on disk, a grid with a failed job, bad files, conflicts."""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from report_records import CODE_VERSION, domain_records, eval_axes, plan_for, quantity_records, records, write_all

from study.atomic import STALE_TEMPORARY_S
from study.errors import StudyError
from study.grids import plan_grid
from study.launch.ledger import Ledger
from study.paths import unsubmitted_workdir
from study.report import build_report
from study.report.tables import write_tables
from study.report.cli import register
from study.report.outputs import Outputs, report_names
from study.results import write_result
from study.results.record import protocol_fingerprint

from report_records import ALL_RECORDS as ALL

REPO = Path(__file__).resolve().parents[2]


def test_full_report_writes_every_figure_table_and_parquet(tmp_path):
    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    log = io.StringIO()
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=log)
    out = tmp_path / "r"
    assert s.drawn == ["quantity", "domain_matrix", "domain_pooling", "domain_concat", "quality", "granularity"]
    assert s.missing == 0 and s.skipped_files == [] and s.conflicts == 0
    for name in s.drawn:
        for ext in ("png", "pdf", "csv", "md", "tex"):
            assert (out / f"{name}.{ext}").stat().st_size > 0, (name, ext)
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}_data.csv").stat().st_size > 0  # the plotted data: CSV only (a curve's every point)
    assert not list(out.glob("*_data.md")) and not list(out.glob("*_data.tex"))
    table = pd.read_parquet(out / "results.parquet")
    assert set(table["job_id"]) == {j.id for j in plan.jobs}
    matrix = pd.read_csv(out / "domain_matrix.csv")
    # the written table equals the known values (supervised is planned on a -> a only: no row b, a -> b blank)
    simclr = matrix[matrix["method"] == "simclr"].set_index("dataset")
    assert simclr.loc["a", "a"] == pytest.approx(0.45) and simclr.loc["b", "b"] == pytest.approx(0.55)
    sup = matrix[matrix["method"] == "supervised"].set_index("dataset")
    assert list(sup.index) == ["a"] and pd.isna(sup.loc["a", "b"])  # empty, never 0
    md = (out / "domain_matrix.md").read_text()
    assert "| supervised | a | 0.700 ± 0.014 |  |" in md and "—" not in md  # not planned: blank, not missing
    # two seeds per cell (0.44, 0.46): the mean with its std in Markdown, LaTeX and HTML; the CSV keeps the mean
    assert "| 0.450 ± 0.014 |" in md and r"0.450 $\pm$ 0.014" in (out / "domain_matrix.tex").read_text()
    assert "0.450 ± 0.014" in (out / "index.html").read_text()
    tex = (out / "domain_concat.tex").read_text()
    assert "\\begin{tabular}" in tex and "0.030" in tex
    gran = pd.read_csv(out / "granularity.csv")
    assert list(gran.columns[3:]) == ["kingdom", "order", "species"]
    html = (out / "index.html").read_text()
    assert "Report: g" in html and "code version" in html and 'id="warnings"' not in html
    assert '<a href="quantity.png">png</a> · <a href="quantity.pdf">pdf</a> · <a href="quantity.csv">csv</a>' in html
    assert '<a href="quantity_data.csv">plotted data</a>' in html and '<a href="missing.csv">missing.csv</a>' in html
    assert (out / "quantity.tex").read_text().startswith("% Top-1 against labeled images")  # the figure's caption
    n_jobs = len({j.id for j in plan.jobs})  # a job each, of several metric rows
    assert s.results == n_jobs and f"{n_jobs} job result(s)" in log.getvalue()
    # every file written is one a later build knows as a report's (it removes a killed build's temporaries of each)
    listed = json.loads((out / ".study-report.json").read_text())["files"]
    assert "findings.md" in listed and set(listed) <= report_names() | {"training.csv"}


def test_failed_job_is_missing_and_the_rest_is_drawn(tmp_path):
    plan = plan_for(ALL)
    failed = [r["job_id"] for r in domain_records() if r["axes"]["dataset"] == "b" and r["axes"]["eval_dataset"] == "b"]
    kept = [r for r in ALL if r["job_id"] not in failed]
    write_all(tmp_path / "w", kept, with_pretrain_for=plan)
    Ledger(tmp_path / "w", "g").append([{"event": "local", "job": failed[0], "stage": "evaluate", "state": "failed"}])
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    assert s.missing == 2 and len(s.drawn) == 6
    assert not any("no longer has" in w for w in s.warnings)  # no result of jobs off the plan: no such note
    missing = pd.read_csv(tmp_path / "r" / "missing.csv").set_index("job_id")
    assert sorted(missing.index) == sorted(failed)
    assert missing.loc[failed[0], "state"] == "failed" and missing.loc[failed[0], "waits_for"] == "dependencies done"
    assert missing.loc[failed[1], "state"] == "no result yet"
    data = pd.read_csv(tmp_path / "r" / "domain_matrix_data.csv")
    simclr = data[data["method"] == "simclr"].set_index(["dataset", "eval_dataset"])
    assert pd.isna(simclr.loc[("b", "b"), "mean"]) and simclr.loc[("b", "b"), "count"] == 0  # NaN, never 0
    assert simclr.loc[("a", "b"), "mean"] == pytest.approx(0.35)  # the rest is drawn
    table = pd.read_csv(tmp_path / "r" / "domain_matrix.csv")
    assert pd.isna(table[(table["method"] == "simclr") & (table["dataset"] == "b")]["b"].iloc[0])
    html = (tmp_path / "r" / "index.html").read_text()
    assert "2 planned job(s) have no result yet" in html and failed[0] in html


def test_partial_grid_without_results_for_a_figure_notes_it(tmp_path):
    plan = plan_for(quantity_records())
    write_all(tmp_path / "w", quantity_records()[:3])
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    assert s.drawn == ["quantity"] and s.missing == len(plan.jobs) - 3
    assert "granularity" in s.skipped_figures
    assert "Skipped: no per-level (granularity) results" in (tmp_path / "r" / "index.html").read_text()


def test_bad_files_and_conflicts_are_reported_in_html_and_stderr(tmp_path):
    recs = quantity_records()
    write_all(tmp_path / "w", recs)
    (tmp_path / "w" / "results" / "broken.json").write_text("{not json")
    (tmp_path / "w" / "results" / "foreign.json").write_text("[1, 2, 3]")
    other = records(eval_axes(protocol="linear", size=50_000), {(1000, None): 0.99}, seeds=(7,),
                    protocol={"lr": 9.9}, finished_at="2030-01-01T00:00:00+00:00")
    write_all(tmp_path / "w", other)
    log = io.StringIO()
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=log)
    assert len(s.skipped_files) == 2 and s.conflicts == 1
    err = log.getvalue()
    assert "broken.json" in err and "foreign.json" in err and "protocol fingerprint conflict" in err
    html = (tmp_path / "r" / "index.html").read_text()
    assert 'id="warnings"' in html and "broken.json" in html and "skipped result files: 2" in html
    assert "protocol fingerprint conflicts: 1 cell(s)" in html  # one cell of two recipes
    cells = pd.read_csv(tmp_path / "r" / "cells.csv")
    c = cells[(cells["protocol"] == "linear") & (cells["size"] == 50_000) & (cells["labeled_size"] == 1000)]
    assert sorted(c["mean"]) == pytest.approx([0.30, 0.99])  # kept apart, not averaged


def test_results_of_a_protocol_no_figure_draws_are_named_not_left_out_unsaid(tmp_path):
    """A protocol added to the table without a figure's panel: its cells are in cells.csv, and the report says that
    no figure draws them (they were left out of every figure, unsaid)."""
    recs = quantity_records() + records(eval_axes(protocol="nomean"), {(1000, None): 0.2, (10000, None): 0.3})
    write_all(tmp_path / "w", recs)
    log = io.StringIO()
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=log)
    assert "quantity" in s.drawn
    line = ("no figure draws the results of protocol(s) nomean (2 cell(s)): they are in cells.csv and results.parquet "
            "only")
    assert [w for w in s.warnings if w.startswith(line)] and line in log.getvalue()
    assert line in (tmp_path / "r" / "index.html").read_text()
    cells = pd.read_csv(tmp_path / "r" / "cells.csv")
    assert sorted(cells.loc[cells["protocol"] == "nomean", "mean"]) == pytest.approx([0.2, 0.3])


def test_with_a_plan_only_its_own_unreadable_files_are_counted(tmp_path):
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs[1:])
    (tmp_path / "w" / "results" / f"{recs[0]['job_id']}.json").write_text("{torn")  # one of ours
    (tmp_path / "w" / "results" / "otherjob0000.json").write_text("{torn")  # another grid's
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    assert [p.split(":")[0].rsplit("/", 1)[-1] for p in s.skipped_files] == [f"{recs[0]['job_id']}.json"]
    missing = pd.read_csv(tmp_path / "r" / "missing.csv").set_index("job_id")
    state = missing.loc[recs[0]["job_id"], "state"]  # what to do about it, as `study status` says
    assert state.startswith("result file unreadable (") and "`study submit --retry-failed` reruns it" in state


def _run_cli(argv):
    """`study report ...` through this package's `register`, as the front (study.cli) wires it."""
    parser = argparse.ArgumentParser(prog="study")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_a_report_by_grid_name_says_results_shared_with_another_grid_may_be_left_out(tmp_path):
    """A result records the grid that ran it first: without the grid file, a grid's jobs that another grid ran
    first are not found, and the report says so rather than drawing an incomplete grid in silence."""
    recs = quantity_records()
    shared = recs[:2]
    for r in shared:
        r["grid"] = "other"
    write_all(tmp_path / "w", recs)
    summary = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    assert summary.results == len(recs) - len(shared)
    assert any("only results recorded under grid g are drawn" in w and "shares with other" in w
               for w in summary.warnings), summary.warnings
    alone = build_report(tmp_path / "w", tmp_path / "r2", grid="other", log=None)
    assert any("shares with g" in w for w in alone.warnings)


def test_a_report_by_grid_name_tables_only_that_grids_records(tmp_path):
    """Another grid's records in the workdir add none of their protocol's columns to this grid's results.parquet
    (they were tabled, all null here, then filtered out)."""
    recs = quantity_records()
    theirs = dict(recs[0], job_id="theirs", grid="other", protocol={**recs[0]["protocol"], "their_own_key": 1})
    write_all(tmp_path / "w", recs + [theirs])
    summary = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    table = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert summary.results == len(recs) and "theirs" not in set(table["job_id"])
    assert not [c for c in table.columns if "their_own_key" in c]
    assert any("shares with other" in w for w in summary.warnings)
    assert 'href="missing.csv"' not in (tmp_path / "r" / "index.html").read_text()  # no plan: no file to link


def test_cli_report_by_grid_name(tmp_path, capsys, monkeypatch):
    write_all(tmp_path / "w", quantity_records())
    monkeypatch.chdir(tmp_path)
    assert _run_cli(["report", "g", "--workdir", str(tmp_path / "w")]) == 0
    assert (tmp_path / "reports" / "g" / "index.html").exists()
    assert "study report: g:" in capsys.readouterr().err
    assert _run_cli(["report", "g", "--workdir", str(tmp_path / "w"), "--out", "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / "results.parquet").exists()
    with pytest.raises(StudyError, match="^nosuch: no such grid file, and "):
        _run_cli(["report", "nosuch", "--workdir", str(tmp_path / "w")])
    assert not (tmp_path / "reports" / "nosuch").exists()  # a mistyped name writes no empty report
    with pytest.raises(StudyError, match=f"^nosuch: no such grid file, and no results folder in {tmp_path / 'empty'}$"):
        _run_cli(["report", "nosuch", "--workdir", str(tmp_path / "empty")])
    (tmp_path / "empty" / "results").mkdir(parents=True)
    with pytest.raises(StudyError, match="^nosuch: no such grid file, and "):  # nor with no readable result at all
        _run_cli(["report", "nosuch", "--workdir", str(tmp_path / "empty")])
    assert not (tmp_path / "reports" / "nosuch").exists()


def test_a_grid_is_found_as_given_or_as_grids_name_yaml_or_yml_and_only_as_a_file(tmp_path, monkeypatch):
    """`study report g` reads grids/g.yaml or grids/g.yml; a folder named `g` (a report's, say) is not the grid."""
    from study.report.cli import _find_grid_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "g.yml").write_text("")
    (tmp_path / "g").mkdir()
    assert _find_grid_file("g") == Path("grids") / "g.yml"
    (tmp_path / "grids" / "g.yaml").write_text("")
    assert _find_grid_file("g") == Path("grids") / "g.yaml" and _find_grid_file("grids/g.yml") == Path("grids/g.yml")
    assert _find_grid_file("h") is None


def test_a_report_of_a_workdir_that_is_a_file_names_it_and_writes_nothing(tmp_path, monkeypatch):
    """A file where the workdir goes is not a workdir of no results (an empty report): named as given."""
    (tmp_path / "f").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudyError, match=rf"^--workdir {tmp_path / 'f'}: exists and is not a folder$"):
        _run_cli(["report", "grids/quickstart.yaml", "--workdir", str(tmp_path / "f")])
    monkeypatch.setenv("STUDY_WORKDIR", str(tmp_path / "f" / "w"))
    with pytest.raises(StudyError, match=rf"^\$STUDY_WORKDIR {tmp_path / 'f' / 'w'}: cannot be a folder: "):
        _run_cli(["report", "g"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_rerun_of_one_seed_is_not_averaged_as_a_replicate(tmp_path):
    first = records(eval_axes(size=50_000), {(1000, None): 0.5}, seeds=(0,), finished_at="2024-01-01T00:00:00+00:00")
    rerun = records(eval_axes(size=50_000), {(1000, None): 0.3}, seeds=(0,), finished_at="2024-02-01T00:00:00+00:00")
    rerun[0]["job_id"] = "rerun0000000"
    write_all(tmp_path / "w", first + rerun)
    log = io.StringIO()
    summary = build_report(tmp_path / "w", tmp_path / "out", grid="g", log=log)
    cells = pd.read_csv(tmp_path / "out" / "cells.csv")
    top1 = cells[cells["metric"] == "top1"].iloc[0]
    assert top1["mean"] == pytest.approx(0.3) and top1["count"] == 1
    assert "rerun0000000" in log.getvalue() and "not a replicate" in log.getvalue()
    assert any("not a replicate" in w for w in summary.warnings)
    assert summary.results == 1 == pd.read_parquet(tmp_path / "out" / "results.parquet")["job_id"].nunique()


def test_a_diverged_result_is_named_in_the_warnings(tmp_path):
    recs = records(eval_axes(size=50_000), {(1000, None): 0.0}, seeds=(0,))
    recs[0]["metrics"][0]["value"] = None
    write_all(tmp_path / "w", recs)
    summary = build_report(tmp_path / "w", tmp_path / "out", grid="g", log=io.StringIO())
    assert any(recs[0]["job_id"] in w and "diverged" in w for w in summary.warnings)
    assert "1 cell(s) have no value in any seed: shown as missing" in summary.warnings


def test_a_cell_with_one_diverged_seed_of_three_says_its_mean_leaves_it_out(tmp_path):
    """The mean of the seeds with a value is drawn (count 2 of 3): the warning says so, not "shown as missing"."""
    recs = records(eval_axes(size=50_000), {(1000, None): 0.5}, seeds=(0, 1, 2))
    recs[0]["metrics"][0]["value"] = None
    write_all(tmp_path / "w", recs)
    summary = build_report(tmp_path / "w", tmp_path / "out", grid="g", log=io.StringIO())
    assert any("1 cell(s) are the mean of their seeds with a value only" in w for w in summary.warnings)
    assert not any("missing" in w for w in summary.warnings), summary.warnings
    cells = pd.read_csv(tmp_path / "out" / "cells.csv")
    assert cells["count"].to_list() == [2]


def test_a_cell_whose_every_planned_seed_diverged_is_named_missing_only(tmp_path):
    """Both planned seeds of a cell diverged: it is "shown as missing", not a mean of the seeds with a value (there is
    none) nor a cell with a value in fewer seeds than planned (it has a value in none)."""
    recs = records(eval_axes(size=50_000), {(1000, None): 0.5, (10000, None): 0.6})
    for r in recs:
        r["metrics"][0]["value"] = None  # both seeds at 1000 labels
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    summary = build_report(tmp_path / "w", tmp_path / "out", plan=plan, log=io.StringIO())
    assert "1 cell(s) have no value in any seed: shown as missing" in summary.warnings
    assert not any("mean of their seeds" in w or "fewer seeds" in w for w in summary.warnings), summary.warnings


def test_a_rebuild_replaces_each_file_whole_not_in_place(tmp_path):
    """A rebuild renames each new file onto its name (study.atomic): a reader that opened the earlier figure, page or
    table (here a hard link to it) keeps reading it whole, never a file truncated and half rewritten under it."""
    write_all(tmp_path / "w", quantity_records())
    build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    names = ("quantity.png", "quantity.pdf", "quantity.csv", "index.html", "results.parquet", "cells.csv")
    kept = {name: tmp_path / f"kept-{name}" for name in names}
    for name, link in kept.items():
        os.link(tmp_path / "r" / name, link)
    before = {name: link.read_bytes() for name, link in kept.items()}
    build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    for name, link in kept.items():
        assert link.read_bytes() == before[name], name
        assert not os.path.samefile(link, tmp_path / "r" / name), name


def test_report_of_a_real_grid_file_lists_every_planned_job_missing(tmp_path, monkeypatch, capsys):
    """Through the real front and the real planner: a grid with no result yet reports all its jobs missing."""
    from study.cli import main

    plan = plan_grid("grids/granularity.yaml")
    out = tmp_path / "report"
    assert main(["report", "grids/granularity.yaml", "--workdir", str(tmp_path / "w"), "--out", str(out)]) == 2
    err = capsys.readouterr().err  # as `study status` says it (one sentence for both)
    assert f"workdir {tmp_path / 'w'}: no such folder: nothing was submitted with" in err
    assert f"workdir {tmp_path / 'w'}: {unsubmitted_workdir(tmp_path / 'w')}" in err
    assert not out.exists()  # a mistyped workdir draws no report of every job missing
    (tmp_path / "w").mkdir()  # a workdir whose jobs wrote nothing yet
    assert main(["report", "grids/granularity.yaml", "--workdir", str(tmp_path / "w"), "--out", str(out)]) == 0
    assert "no result of this grid in" in capsys.readouterr().err  # a wrong workdir or nothing run yet: said
    missing = pd.read_csv(out / "missing.csv")
    id_column = next(c for c in missing.columns if "id" in c)
    assert set(missing[id_column]) == {j.id for j in plan.jobs}
    assert "Missing cells" in (out / "index.html").read_text()


def test_a_figure_this_build_does_not_draw_leaves_no_file_of_an_earlier_build(tmp_path):
    write_all(tmp_path / "w", ALL)
    build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(ALL), log=None)
    assert (tmp_path / "r" / "quality.png").is_file() and (tmp_path / "r" / "missing.csv").is_file()
    for f in (tmp_path / "w" / "results").iterdir():
        f.unlink()
    write_all(tmp_path / "w", quantity_records())
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    assert s.drawn == ["quantity"]
    left = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert not [n for n in left if n.split(".")[0].split("_data")[0] in ("quality", "granularity", "missing")]
    assert "quantity.png" in left


def test_one_failing_figure_is_reported_and_the_rest_is_drawn(tmp_path, monkeypatch):
    from study.report.figures import quality

    def broken(table, expected=None):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(quality, "draw", broken)
    write_all(tmp_path / "w", ALL)
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(ALL), log=None)
    assert "quality" not in s.drawn and "quantity" in s.drawn and "granularity" in s.drawn
    assert s.skipped_figures["quality"] == "failed: TypeError: unsupported operand"
    assert any(w.startswith("figure quality failed (TypeError") for w in s.warnings)
    assert (tmp_path / "r" / "index.html").is_file()


def test_a_result_on_a_since_rebuilt_manifest_is_named(tmp_path, monkeypatch):
    import study.manifests.store as store

    recs = records(eval_axes(), {(10000, None): 0.5}, protocol={"train_manifest": "a_train",
                                                                  "train_manifest_content_hash": "OLDHASH00000"})
    write_all(tmp_path / "w", recs)
    monkeypatch.setattr(store, "load_meta", lambda name: {"content_hash": "NEWHASH11111"})
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(recs), log=None)
    stale = [w for w in s.warnings if "OLDHASH00000" in w]
    assert len(stale) == 2 and all(w.endswith("shown, but `study submit` refuses to go on until it is moved away "
                                              "(`study submit --set-aside-stale`) or the old manifest restored")
                                   for w in stale)


def test_missing_sizes_print_as_integers_in_the_html(tmp_path):
    recs = quantity_records()
    write_all(tmp_path / "w", recs[:3])
    build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(recs), log=None)
    html = (tmp_path / "r" / "index.html").read_text()
    assert ">50000<" in html and "50000.0" not in html


def test_the_scratch_label_does_not_change_while_a_planned_line_is_still_to_run(tmp_path):
    from study.grids import Job

    recs = []
    for size in (50_000, 1_000_000):
        recs += records(eval_axes(size=size, backbone="resnet50"), {(1000, None): .3, (10000, None): .4}, seeds=(0,))
    recs += records({"backbone": "resnet50", "protocol": "scratch", "eval_dataset": "a", "corruption": "none"},
                    {(1000, None): .1, (10000, None): .2}, seeds=(0,))
    todo = Job("todo", "evaluate", {"stage": "evaluate", "axes": eval_axes(size=250_000, backbone="resnet50", seed=0)})
    labels = []
    for name, extra in (("done", ()), ("running", (todo,))):
        write_all(tmp_path / name, recs)
        build_report(tmp_path / name, tmp_path / f"r{name}", plan=plan_for(recs, extra_jobs=extra), log=None)
        labels.append([line.split("|")[3].strip() for line in (tmp_path / f"r{name}" / "quantity.md").open()
                       if "scratch" in line])
    assert labels[0] == labels[1] == ["scratch (supervised, random init)"]


def test_a_workdir_without_results_does_not_replace_a_report_drawn_from_results(tmp_path):
    """A mistyped --workdir used to redraw the report empty (every figure deleted) and exit 0: one that is no folder
    is refused (nothing was submitted with it), as `study report` refuses it; a folder without results does not
    replace a report drawn from results, and draws a fresh one, every cell missing."""
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs)
    build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    assert "quantity.png" in before
    with pytest.raises(StudyError, match=r"workdir .*/typo: no such folder: nothing was submitted with this workdir"):
        build_report(tmp_path / "typo", tmp_path / "r", plan=plan, log=None)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudyError, match=r"no result of this grid in .*/empty/results, but .*/r holds a report of "
                                         r"\d+ result rows: not replaced"):
        build_report(tmp_path / "empty", tmp_path / "r", plan=plan, log=None)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before
    build_report(tmp_path / "empty", tmp_path / "fresh", plan=plan, log=None)  # nothing to keep: drawn, all missing
    assert (tmp_path / "fresh" / "missing.csv").exists()
    one = records(eval_axes(), {(1000, None): 0.5}, seeds=(0,))  # a report of a single result row is kept too
    write_all(tmp_path / "w1", one)
    build_report(tmp_path / "w1", tmp_path / "r1", plan=plan_for(one), log=None)
    with pytest.raises(StudyError, match=r"holds a report of 1 result rows: not replaced"):
        build_report(tmp_path / "empty", tmp_path / "r1", plan=plan_for(one), log=None)
    (tmp_path / "afile").write_text("")
    with pytest.raises(StudyError, match=r"--out .*afile: cannot make the report folder"):
        build_report(tmp_path / "w", tmp_path / "afile", plan=plan, log=None)


def test_a_result_without_metrics_is_a_job_result(tmp_path):
    """A `random` pretraining records no metric: counted in the summary, not "no result of this grid yet", its row in
    results.parquet, and not missing."""
    recs = records(eval_axes(method="random"), {(10000, None): 0.1}, seeds=(0,))
    plan = plan_for(recs)
    pre = next(j for j in plan.jobs if j.stage == "pretrain")
    write_result(tmp_path / "w", {"job_id": pre.id, "stage": "pretrain", "grid": "g", "axes": pre.config["axes"],
                                  "metrics": [], "protocol": {"method": "random"}, "code_version": CODE_VERSION})
    log = io.StringIO()
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=log)
    assert s.results == 1 and s.missing == 1  # the evaluation still to run
    assert not any("no result of this grid" in w for w in s.warnings), s.warnings
    assert not any("without a value" in w for w in s.warnings), s.warnings  # no metric is not a diverged one
    assert "1 job result(s), 0 metric row(s)" in log.getvalue()
    assert pd.read_parquet(tmp_path / "r" / "results.parquet")["job_id"].to_list() == [pre.id]
    assert pre.id not in set(pd.read_csv(tmp_path / "r" / "missing.csv")["job_id"])


def test_cells_of_several_code_versions_or_of_a_dirty_tree_are_named(tmp_path):
    recs = records(eval_axes(size=50_000), {(1000, None): 0.5, (10000, None): 0.6})
    recs[1]["code_version"] = "0.1.0+git.bbbbbbb"
    recs += records(eval_axes(size=1_000_000), {(1000, None): 0.5}, seeds=(0,))
    recs[-1]["code_version"] = "0.1.0+git.ccccccc-dirty"
    recs += records(eval_axes(size=250_000), {(1000, None): 0.5})  # one clean version: not named
    write_all(tmp_path / "w", recs)
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    lines = [w for w in s.warnings if "code_versions" in w]
    assert len(lines) == 2 and lines[0].startswith("2 cell(s) average seeds run by several code versions"), lines
    assert f"0.1.0+git.bbbbbbb,{CODE_VERSION}" in lines[0] and "dirty" not in lines[0]
    # a one-seed cell of a modified tree averages nothing: named for the tree, not for several versions
    assert lines[1].startswith("1 cell(s) hold results run on a modified ('-dirty') source tree"), lines
    assert "0.1.0+git.ccccccc-dirty" in lines[1] and "size=1000000" in lines[1]
    assert not any("size=250000" in line for line in lines)
    cells = pd.read_csv(tmp_path / "r" / "cells.csv").set_index(["size", "labeled_size"])
    assert cells.loc[(50_000, 1000), "code_versions"] == f"0.1.0+git.bbbbbbb,{CODE_VERSION}"
    assert cells.loc[(250_000, 1000), "code_versions"] == CODE_VERSION


def test_a_report_run_wholly_on_one_dirty_tree_names_its_version_once_not_each_cell(tmp_path):
    """The tiny quickstart from a modified checkout printed a 1 kB line: 3 cells spelled out, each with the same
    version, `and 253 more`."""
    recs = records(eval_axes(size=50_000), {(1000, None): 0.5, (10000, None): 0.6})
    recs += records(eval_axes(size=1_000_000), {(1000, None): 0.5})
    for r in recs:
        r["code_version"] = "0.1.0+git.ccccccc-dirty"
    write_all(tmp_path / "w", recs)
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    (line,) = [w for w in s.warnings if "dirty" in w]
    assert line.startswith("all 3 of the report's cells hold results") and line.endswith(
        "cells hold results run on a modified ('-dirty') source tree, which no commit reproduces, each on "
        "0.1.0+git.ccccccc-dirty"), line
    assert "size=" not in line and line.count("ccccccc") == 1
    for r in recs[:2]:  # two dirty trees: each cell named with its own, not the first cell's for all
        r["code_version"] = "0.1.0+git.ddddddd-dirty"
    write_all(tmp_path / "w2", recs)
    s = build_report(tmp_path / "w2", tmp_path / "r2", grid="g", log=None)
    mix, line = [w for w in s.warnings if "dirty" in w]  # the report's two versions, then the cells' trees
    assert mix.startswith("the results ran on 2 code versions (0.1.0+git.ccccccc-dirty: 2 job(s); 0.1.0+git.dddd"), mix
    assert line.startswith("3 cell(s) hold results run on a modified") and "ddddddd" in line and "ccccccc" in line


def test_without_a_plan_or_a_grid_results_of_two_grids_ask_for_the_grid(tmp_path):
    """One cell recorded under grids g and h would be two cells of one figure: the report asks which grid."""
    recs = domain_records()
    write_all(tmp_path / "w", recs + [{**r, "grid": "h", "job_id": "h" + r["job_id"]} for r in recs])
    with pytest.raises(StudyError, match=r"results of several grids .*\(g, h\): name the grid"):
        build_report(tmp_path / "w", tmp_path / "r", log=None)
    assert not (tmp_path / "r").exists()
    s = build_report(tmp_path / "w", tmp_path / "r", grid="h", log=None)
    assert {"domain_matrix", "domain_pooling", "domain_concat"} <= set(s.drawn) and not s.skipped_figures.get(
        "domain_matrix", "").startswith("failed")
    write_all(tmp_path / "one", recs)
    assert "domain_matrix" in build_report(tmp_path / "one", tmp_path / "r1", log=None).drawn  # one grid: no need
    write_all(tmp_path / "one", [{**recs[0], "grid": None, "job_id": "nogrid"}])  # a record of no grid: another
    with pytest.raises(StudyError, match=r"results of several grids .*\(g, \(none\)\): name the grid"):
        build_report(tmp_path / "one", tmp_path / "r2", log=None)


def test_a_grid_without_results_draws_no_figure_of_missing_bars_only(tmp_path):
    """The domain grid before any result: its pooling and concatenation figures were drawn as bars all "missing"
    (an empty axis from -0.04 to 0.04) while the other figures were skipped; now every figure is skipped alike."""
    (tmp_path / "w").mkdir()
    summary = build_report(tmp_path / "w", tmp_path / "r", plan=plan_grid("grids/data_domain.yaml"), log=None)
    assert summary.drawn == []
    for name in ("domain_pooling", "domain_concat"):
        assert "no cell has a value yet" in summary.skipped_figures[name]
        assert not list((tmp_path / "r").glob(f"{name}*"))
    assert (tmp_path / "r" / "missing.csv").is_file()


def test_a_rebuild_deletes_only_files_an_earlier_build_wrote(tmp_path):
    """Files of the user's beside a report, named like the report's (quality.py, missing_data.txt, granularity.tex
    where no build wrote one), survive a build that does not draw those figures; the earlier build's own files of
    them are deleted."""
    write_all(tmp_path / "w", ALL)
    out = tmp_path / "r"
    build_report(tmp_path / "w", out, plan=plan_for(ALL), log=None)
    mine = {"quality.py": "my plot\n", "domain_matrix.ipynb": "{}\n", "missing_data.txt": "my list\n",
            "notes.md": "notes\n"}
    for name, text in mine.items():
        (out / name).write_text(text)
    for f in (tmp_path / "w" / "results").iterdir():
        f.unlink()
    write_all(tmp_path / "w", quantity_records())
    assert build_report(tmp_path / "w", out, grid="g", log=None).drawn == ["quantity"]
    assert {name: (out / name).read_text() for name in mine} == mine
    assert not (out / "quality.png").exists() and not (out / "granularity.md").exists()
    assert not (out / "missing.csv").exists()  # no plan this time
    (out / "granularity.tex").write_text("my section\n")  # where this report wrote none
    build_report(tmp_path / "w", out, grid="g", log=None)
    assert (out / "granularity.tex").read_text() == "my section\n"
    assert {name: (out / name).read_text() for name in mine} == mine
    listed = json.loads((out / ".study-report.json").read_text())["files"]
    assert "quantity.png" in listed and "index.html" in listed and not {*mine, "granularity.tex"} & set(listed)


def test_a_rebuild_removes_the_temporaries_of_a_killed_build_and_no_others(tmp_path):
    """A build SIGKILLed while it writes a figure leaves that file's temporary (`.quantity.pdf.<random>.tmp`), which
    nothing else removes: each killed build added one. A later build removes those older than a build takes to
    write a file (no lock keeps a second build out: a live one's are kept), and no other hidden file."""
    write_all(tmp_path / "w", ALL)
    out = tmp_path / "r"
    build_report(tmp_path / "w", out, plan=plan_for(ALL), log=None)
    killed, live = out / ".quantity.pdf.k1lled_0.tmp", out / ".index.html.l1ve_000.tmp"
    for path in (killed, live, out / ".DS_Store", out / ".notes.md.abcdefgh.tmp"):
        path.write_bytes(b"half")
    old = time.time() - STALE_TEMPORARY_S - 60
    for path in (killed, out / ".DS_Store", out / ".notes.md.abcdefgh.tmp"):
        os.utime(path, (old, old))
    build_report(tmp_path / "w", out, plan=plan_for(ALL), log=None)
    left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert left == [".DS_Store", ".index.html.l1ve_000.tmp", ".notes.md.abcdefgh.tmp", ".study-report.json"]


def test_an_out_folder_of_other_files_is_refused_untouched(tmp_path):
    """--out pointing at a folder of the user's (a paper's figures): refused before anything is written there. A
    report folder of before the listing (results.parquet, no .study-report.json) is still a report's."""
    write_all(tmp_path / "w", quantity_records())
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "granularity.tex").write_text("mine\n")
    with pytest.raises(StudyError, match=r"--out .*paper holds files that no report wrote \(granularity.tex\)"):
        build_report(tmp_path / "w", paper, grid="g", log=None)
    assert [p.name for p in paper.iterdir()] == ["granularity.tex"]
    build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    (tmp_path / "r" / ".study-report.json").unlink()
    assert build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None).drawn == ["quantity"]


def test_an_out_folder_this_user_cannot_write_is_refused_before_any_work(tmp_path, monkeypatch):
    """A labmate's report folder (or a file named as --out): refused at once, naming the folder, its owner and
    mode, not after the collection and figures. The tests run as root, whom no mode stops: the denial of write access
    to that one folder is simulated (os.access); a file as --out is real."""
    write_all(tmp_path / "w", quantity_records())
    (tmp_path / "afile").write_text("x\n")
    with pytest.raises(StudyError, match=r"--out .*afile/r: cannot make the report folder: .*afile is a file, not a "
                                         r"folder; give another --out"):
        build_report(tmp_path / "w", tmp_path / "afile" / "r", grid="g", log=None)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != theirs and real(p, mode, **kw))
    with pytest.raises(StudyError, match=r"--out .*theirs/q: cannot make the report folder: .*theirs is root's "
                                         r"\(drwx.*\), not writable by you; .*ask root to `chmod g\+w .*theirs`"):
        build_report(tmp_path / "w", theirs / "q", grid="g", log=None)
    assert list(theirs.iterdir()) == []
    build_report(tmp_path / "w", tmp_path / "mine", grid="g", log=None)  # a folder of one's own builds


def test_a_report_folder_of_another_grid_or_grid_file_is_refused_untouched(tmp_path):
    """Two grid files of one grid name (a copy with other settings) both default to reports/<name>: the second
    report replaced the first one's figures. The listing names the grid and its file; a build for another is refused
    before it writes anything, the same file (or its name alone, without a file) builds again."""
    import dataclasses

    write_all(tmp_path / "w", quantity_records())
    out = tmp_path / "r"
    original = plan_for(quantity_records())
    original.path = str(tmp_path / "original.yaml")
    build_report(tmp_path / "w", out, plan=original, log=None)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    copy = dataclasses.replace(original)
    copy.path = str(tmp_path / "copy.yaml")
    for name in ("original.yaml", "copy.yaml"):  # both still there: a copy (a grid file that is gone was moved)
        (tmp_path / name).write_text("name: g\n")
    with pytest.raises(StudyError, match=rf"--out {out} holds the report of grid g \({tmp_path}/original.yaml\), "
                                         rf"not of grid g \({tmp_path}/copy.yaml\)"):
        build_report(tmp_path / "w", out, plan=copy, log=None)
    with pytest.raises(StudyError, match="holds the report of grid g .*, not of grid h: give"):
        build_report(tmp_path / "w", out, plan=plan_for(quantity_records(), name="h"), log=None)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert build_report(tmp_path / "w", out, plan=original, log=None).drawn == ["quantity"]
    assert build_report(tmp_path / "w", out, grid="g", log=None).drawn == ["quantity"]
    with pytest.raises(StudyError, match="holds the report of grid g"):  # the build by name kept the file's name
        build_report(tmp_path / "w", out, plan=copy, log=None)


def test_a_report_folder_of_before_the_listing_loses_its_stale_figures_only(tmp_path):
    """A report folder written before builds kept a listing: the files a build names so (quality.png of a figure not
    drawn now) are the earlier build's and go; a file of the user's and a hidden temporary stay, and block nothing."""
    write_all(tmp_path / "w", ALL)
    out = tmp_path / "r"
    build_report(tmp_path / "w", out, plan=plan_for(ALL), log=None)
    (out / ".study-report.json").unlink()
    (out / "notes.txt").write_text("mine\n")
    for f in (tmp_path / "w" / "results").iterdir():
        f.unlink()
    write_all(tmp_path / "w", quantity_records())
    assert build_report(tmp_path / "w", out, grid="g", log=None).drawn == ["quantity"]
    assert not (out / "quality.png").exists() and not (out / "granularity_data.csv").exists()
    assert not (out / "missing.md").exists() and (out / "notes.txt").read_text() == "mine\n"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".results.parquet.x1y2.tmp").write_bytes(b"a build killed while writing")
    (fresh / ".DS_Store").write_bytes(b"")
    assert build_report(tmp_path / "w", fresh, grid="g", log=None).drawn == ["quantity"]


def test_a_figure_that_fails_while_writing_its_tables_leaves_none_of_its_files(tmp_path, monkeypatch):
    from study.report import build

    def csv_then_fail(df, out, name, caption="", **formats):
        if name != "quality":
            return write_tables(df, out, name, caption, **formats)
        (out / f"{name}.csv").write_text("half\n")
        raise OSError("disk full")

    monkeypatch.setattr(build, "write_tables", csv_then_fail)
    write_all(tmp_path / "w", ALL)
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(ALL), log=None)
    assert s.failed == ["quality"] and "quantity" in s.drawn
    assert not list((tmp_path / "r").glob("quality*"))
    monkeypatch.undo()
    build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(ALL), log=None)
    assert (tmp_path / "r" / "quality.csv").read_text() != "half\n"


def test_cli_exits_1_naming_a_figure_that_failed_and_draws_the_others(tmp_path, capsys, monkeypatch):
    from study.report.figures import quality

    def broken(table, expected=None):
        raise ValueError("boom")

    monkeypatch.setattr(quality, "draw", broken)
    write_all(tmp_path / "w", ALL)
    assert _run_cli(["report", "g", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "figure quality failed (ValueError: boom)" in err and "figure(s) quality failed" in err
    assert (tmp_path / "r" / "quantity.png").is_file() and not (tmp_path / "r" / "quality.png").exists()
    assert "failed: quality" in (tmp_path / "r" / "index.html").read_text()


def test_cells_with_fewer_seeds_than_planned_are_marked_and_named_once(tmp_path):
    """Three seeds planned; at 1M only seed 0 has finished: the table prints '0.390 (1/3)', not a final-looking
    number, and one warning names the cell."""
    full = []
    for size, v in ((50_000, 0.3), (1_000_000, 0.4)):
        full += records(eval_axes(size=size), {(1000, None): v, (10000, None): v + 0.1}, seeds=(0, 1, 2))
    plan = plan_for(full)
    done = [r for r in full if not (r["axes"]["size"] == 1_000_000 and r["axes"]["seed"] != 0)]
    write_all(tmp_path / "w", done, with_pretrain_for=plan)
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    md = (tmp_path / "r" / "quantity.md").read_text()
    assert "| a | linear | 1M | 0.390 (1/3) | 0.490 (1/3) |" in md
    assert "| a | linear | 50k | 0.303 ± 0.012 | 0.403 ± 0.012 |" in md
    assert "0.390 (1/3)" in (tmp_path / "r" / "quantity.tex").read_text()
    lines = [w for w in s.warnings if "fewer seeds than the grid plans" in w]
    assert len(lines) == 1 and lines[0].startswith("1 cell(s)") and "size=1000000" in lines[0] and "1/3" in lines[0]


def test_two_cells_on_one_table_position_are_named(tmp_path):
    """Two recipes that differ in an axis the quantity figure does not lay out fall on one table cell: the table
    keeps one, and a warning names the cell and both values instead of dropping one in silence."""
    recs = records(eval_axes(size=50_000, temperature=0.1), {(1000, None): 0.30}, seeds=(0,))
    recs += records(eval_axes(size=50_000, temperature=0.5), {(1000, None): 0.50}, seeds=(0,))
    write_all(tmp_path / "w", recs)
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    lines = [w for w in s.warnings if w.startswith("table quantity:")]
    assert len(lines) == 1 and "[eval_dataset=a, protocol=linear, line=50k, labeled=1k]: 0.300, 0.500" in lines[0]
    assert len(pd.read_csv(tmp_path / "r" / "quantity_data.csv")) == 2


def test_a_fingerprint_conflict_names_the_newest_recipe_as_the_one_drawn(tmp_path):
    """One cell under two recipes (lr 0.1 in January, lr 0.5 in February): the warning names February's
    fingerprint as the one the figures draw, and the table shows its value."""
    old = records(eval_axes(size=50_000), {(1000, None): 0.30}, seeds=(0,), protocol={"lr": 0.1},
                  finished_at="2024-01-01T00:00:00+00:00")
    new = records(eval_axes(size=50_000), {(1000, None): 0.50}, seeds=(1,), protocol={"lr": 0.5},
                  finished_at="2024-02-01T00:00:00+00:00")
    write_all(tmp_path / "w", old + new)
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    lines = [w for w in s.warnings if "protocol fingerprint conflict" in w]
    assert len(lines) == 1 and f"the figures draw the newest, {protocol_fingerprint(new[0]['protocol'])}." in lines[0]
    assert "| a | linear | 50k | 0.500 |" in (tmp_path / "r" / "quantity.md").read_text()


def test_a_conflict_of_two_recipes_finished_at_one_time_names_the_one_the_figures_draw(tmp_path):
    """Equal `finished_at`: the warning's "newest" is the recipe the figure draws (the warning asks
    resolve_conflicts, the figures' rule, ties included)."""
    at = "2024-01-01T00:00:00+00:00"
    recs = [r for k, lr in enumerate((0.1, 0.5, 0.3, 0.7)) for r in records(
        eval_axes(size=50_000), {(1000, None): lr}, seeds=(k,), protocol={"lr": lr}, finished_at=at)]
    write_all(tmp_path / "w", recs)
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    (line,) = [w for w in s.warnings if "protocol fingerprint conflict" in w]
    drawn = pd.read_csv(tmp_path / "r" / "quantity_data.csv")["mean"].iloc[0]
    (named,) = [r for r in recs if f"the figures draw the newest, {protocol_fingerprint(r['protocol'])}." in line]
    assert named["metrics"][0]["value"] == pytest.approx(drawn)


def test_cli_report_finds_grids_name_yaml_and_names_the_folder_after_the_grid(tmp_path, monkeypatch):
    """`study report mine` plans grids/mine.yaml (a grid named granularity; no job has run: all missing) and writes
    reports/granularity, the grid's name, not reports/mine."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grids").mkdir()
    shutil.copy(REPO / "grids" / "granularity.yaml", tmp_path / "grids" / "mine.yaml")
    (tmp_path / "w").mkdir()
    assert _run_cli(["report", "mine", "--workdir", str(tmp_path / "w")]) == 0
    missing = pd.read_csv(tmp_path / "reports" / "granularity" / "missing.csv")
    assert set(missing["job_id"]) == {j.id for j in plan_grid(tmp_path / "grids" / "mine.yaml").jobs}
    assert not (tmp_path / "reports" / "mine").exists()


def test_cli_report_plans_the_grid_with_the_profile_given(tmp_path):
    """--profile is read as `study plan` and `study submit` read it: a profile with a typo is refused before any
    report is written, a valid one reports."""
    bad = tmp_path / "profile.yaml"
    bad.write_text("name: mine\npartitoin: x\n")
    argv = ["report", str(REPO / "grids" / "granularity.yaml"), "--workdir", str(tmp_path / "w")]
    with pytest.raises(StudyError, match=f"{bad}:2: unknown key 'partitoin'"):
        _run_cli([*argv, "--profile", str(bad), "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
    (tmp_path / "w").mkdir()
    good = str(REPO / "grids" / "profiles" / "local.yaml")
    assert _run_cli([*argv, "--profile", good, "--out", str(tmp_path / "r")]) == 0


def test_the_reports_readme_documents_every_column_of_results_parquet(tmp_path):
    """reports/README.md names each column results.parquet has (the protocol's as `protocol.<dotted.key>`), and the
    table layout of every figure the report draws."""
    from study.report.figures import FIGURES
    from study.results.table import AXES, METRIC_COLUMNS, PROTOCOL_PREFIX, RUN_COLUMNS

    readme = (REPO / "reports" / "README.md").read_text()
    columns = readme.split("## `results.parquet` columns", 1)[1]
    table = pd.read_parquet(_report_of_everything(tmp_path) / "results.parquet")
    fixed = [c for c in table.columns if not c.startswith(PROTOCOL_PREFIX)]
    assert set(fixed) >= {"job_id", "stage", "grid", *AXES, *METRIC_COLUMNS, *RUN_COLUMNS}
    assert [c for c in fixed if f"`{c}`" not in columns] == []
    assert "`protocol.<dotted.key>`" in columns
    layouts = readme.split("## The paper's tables", 1)[1].split("##", 1)[0]
    assert [m.NAME for m in FIGURES if f"| `{m.NAME}` |" not in layouts] == []


def _report_of_everything(tmp_path) -> Path:
    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    return tmp_path / "r"


def test_a_second_build_into_one_folder_waits_for_the_first(tmp_path, capsys):
    """Two builds into one --out (a cron job's and yours): the second waits on the folder's lock, beside it, then
    writes; neither deletes what the other listed half-way. The lock file is gone after."""
    import fcntl
    import threading

    from study.report.build import report_lock

    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    out = tmp_path / "r"
    lock = report_lock(out)
    assert lock.parent == tmp_path and lock.name.startswith(".")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the first build, still at work
    done: list = []
    second = threading.Thread(target=lambda: done.append(build_report(tmp_path / "w", out, plan=plan)))
    second.start()
    second.join(timeout=3)
    assert second.is_alive() and not (out / "index.html").exists()
    os.close(fd)  # the first build ends
    second.join(timeout=300)
    assert done and done[0].drawn and (out / "index.html").is_file()
    assert "waiting for another build of" in capsys.readouterr().err
    assert not lock.exists()


def test_results_of_the_grid_under_job_ids_the_plan_no_longer_has_are_named(tmp_path):
    """After the grid file's settings change (or another version of study resolves them otherwise), every job has a
    new id: the results its earlier jobs wrote, recorded under the same grid name, are not drawn, and the report said
    only "no result of this grid yet". It now counts them; another grid's results are not counted."""
    from study.launch.ledger import Ledger

    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    Ledger(tmp_path / "w", "g").append([{"event": "local", "job": j.id, "state": "done"} for j in plan.jobs])
    moved = plan_for([{**r, "job_id": "new-" + r["job_id"]} for r in ALL])  # the same cells under other ids
    write_result(tmp_path / "w", {**ALL[0], "job_id": "other-grid", "grid": "another"})  # not this grid's
    s = build_report(tmp_path / "w", tmp_path / "r", plan=moved, log=None)
    (line,) = [w for w in s.warnings if "that its plan no longer has" in w]
    assert line.startswith(f"{len({r['job_id'] for r in ALL})} result(s) in ")  # the evaluations (pretrainings kept)
    assert not [w for w in build_report(tmp_path / "w", tmp_path / "r2", plan=plan, log=None).warnings
                if "that its plan no longer has" in w]  # every planned job has its result: nothing to say
    write_all(tmp_path / "w", [{**r, "job_id": "new-" + r["job_id"]} for r in ALL])  # the moved plan's jobs ran too
    s = build_report(tmp_path / "w", tmp_path / "r3", plan=moved, log=None)
    assert s.missing == 0 and not [w for w in s.warnings if "that its plan no longer has" in w]


def test_results_off_plan_are_named_only_for_the_cells_still_missing(tmp_path):
    """An evaluation setting changed, its cells run again under their new ids, then a new cell added: the results
    of the earlier ids are not what is missing (the note said `study submit` would run their cells again, done
    already). With one moved cell's result gone, the note counts that cell's earlier result alone."""
    from study.grids import Job

    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL, with_pretrain_for=plan)
    Ledger(tmp_path / "w", "g").append([{"event": "local", "job": j.id, "state": "done"} for j in plan.jobs])
    moved_records = [{**r, "job_id": "new-" + r["job_id"]} for r in ALL]
    write_all(tmp_path / "w", moved_records)
    knn = Job("knn-new", "evaluate", {"stage": "evaluate", "axes": {**eval_axes(protocol="knn"), "seed": 0}})
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(moved_records, extra_jobs=(knn,)), log=None)
    assert s.missing == 1 and not [w for w in s.warnings if "that its plan no longer has" in w], s.warnings
    (tmp_path / "w" / "results" / f"{moved_records[0]['job_id']}.json").unlink()
    s = build_report(tmp_path / "w", tmp_path / "r2", plan=plan_for(moved_records, extra_jobs=(knn,)), log=None)
    (line,) = [w for w in s.warnings if "that its plan no longer has" in w]
    assert s.missing == 2 and line.startswith("1 result(s) in "), line


def test_no_result_under_the_new_ids_does_not_point_to_another_workdir(tmp_path):
    """Every result of the grid file is under ids its edited plan no longer has: the workdir is the right one, so
    the "no result yet" line does not suggest giving another (the line before it says where the results are)."""
    from study.launch.ledger import Ledger

    plan = plan_for(ALL)
    write_all(tmp_path / "w", ALL)
    Ledger(tmp_path / "w", "g").append([{"event": "local", "job": j.id, "state": "done"} for j in plan.jobs])
    moved = plan_for([{**r, "job_id": "new-" + r["job_id"]} for r in ALL])
    warnings = build_report(tmp_path / "w", tmp_path / "r", plan=moved, log=None).warnings
    assert [w for w in warnings if "that its plan no longer has" in w]
    (empty,) = [w for w in warnings if w.startswith("no result of this grid in ")]
    assert empty.endswith("yet: run `study submit`"), empty


def test_a_report_folder_builds_again_after_its_grid_file_moved(tmp_path):
    """The listing records the grid file's absolute path: a project or quickstart data folder moved elsewhere (or a
    renamed grid file) was refused its own report folder as another grid's. A listed grid file that is gone was
    moved; one still there is a copy's, and still refused."""
    import dataclasses

    write_all(tmp_path / "w", quantity_records())
    out = tmp_path / "r"
    (tmp_path / "old").mkdir()
    original = plan_for(quantity_records())
    original.path = str(tmp_path / "old" / "g.yaml")
    (tmp_path / "old" / "g.yaml").write_text("name: g\n")
    build_report(tmp_path / "w", out, plan=original, log=None)
    (tmp_path / "old").rename(tmp_path / "new")
    moved = dataclasses.replace(original)
    moved.path = str(tmp_path / "new" / "g.yaml")
    assert build_report(tmp_path / "w", out, plan=moved, log=None).drawn == ["quantity"]
    assert json.loads((out / ".study-report.json").read_text())["grid_file"] == moved.path
    (tmp_path / "copy.yaml").write_text("name: g\n")
    copy = dataclasses.replace(original)
    copy.path = str(tmp_path / "copy.yaml")
    with pytest.raises(StudyError, match="holds the report of grid g"):
        build_report(tmp_path / "w", out, plan=copy, log=None)


def test_a_code_version_warning_names_three_cells_with_their_axes_and_counts_the_rest(tmp_path):
    """Five of six cells average seeds of two code versions: the warning spells out three, each by the axes it has (no
    `level=` of a cell without one), and says how many more there are."""
    recs = [r for s in (50_000, 100_000, 250_000, 500_000, 1_000_000)
            for r in records(eval_axes(size=s), {(1000, None): 0.5})]
    for r in recs[1::2]:
        r["code_version"] = "0.1.0+git.bbbbbbb"
    recs += records(eval_axes(size=10_000), {(1000, None): 0.5})  # of one version: not named
    write_all(tmp_path / "w", recs)
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    (line,) = [w for w in s.warnings if "several code versions" in w]
    assert line.startswith("5 cell(s) average seeds") and "; and 2 more. cells.csv" in line, line
    assert line.count("[") == 3 and "[method=simclr, dataset=a, size=50000," in line
    assert "level=" not in line and "nan" not in line.lower() and "None" not in line


def test_a_fewer_seeds_warning_names_three_cells_each_at_its_fewest_seeds(tmp_path):
    """Four cells have seed 0 of the three planned, and seed 1 at 10k labels only in the first (its 1k value
    diverged): the first reads 1/3 (its fewest, at 1k labels), not 2/3; three are named and one more counted."""
    full = [r for s in (50_000, 100_000, 250_000, 1_000_000)
            for r in records(eval_axes(size=s), {(1000, None): 0.4, (10000, None): 0.5}, seeds=(0, 1, 2))]
    plan = plan_for(full)
    done = [r for r in full if r["axes"]["seed"] == 0 or (r["axes"]["seed"] == 1 and r["axes"]["size"] == 50_000)]
    next(r for r in done if r["axes"]["seed"] == 1)["metrics"][0]["value"] = None  # at 1000 labels
    write_all(tmp_path / "w", done, with_pretrain_for=plan)
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    (line,) = [w for w in s.warnings if "fewer seeds than the grid plans" in w]
    assert line.startswith("4 cell(s)") and line.count(" seeds; ") + line.count(" seeds. ") == 3, line
    assert "size=50000, corruption=none, protocol=linear, eval_dataset=a]: 1/3 seeds" in line
    assert "; and 1 more. The tables" in line


def test_a_listing_naming_a_path_outside_the_report_folder_deletes_nothing_there(tmp_path):
    """A `.study-report.json` edited (or corrupted) to list "../notes.txt" and "sub/keep.txt": a build deletes files
    of its own folder only, by name, never a path out of it."""
    write_all(tmp_path / "w", quantity_records())
    out = tmp_path / "r"
    build_report(tmp_path / "w", out, grid="g", log=None)
    (tmp_path / "notes.txt").write_text("mine\n")
    (out / "sub").mkdir()
    (out / "sub" / "keep.txt").write_text("mine\n")
    listing = json.loads((out / ".study-report.json").read_text())
    listing["files"] += ["../notes.txt", "sub/keep.txt"]
    (out / ".study-report.json").write_text(json.dumps(listing))
    build_report(tmp_path / "w", out, grid="g", log=None)
    assert (tmp_path / "notes.txt").read_text() == "mine\n" and (out / "sub" / "keep.txt").read_text() == "mine\n"
    assert not {"../notes.txt", "sub/keep.txt"} & set(json.loads((out / ".study-report.json").read_text())["files"])


def test_a_build_stopped_half_way_lists_the_earlier_builds_files_and_not_those_it_discarded(tmp_path):
    """The listing is rewritten at each file added: a build killed before `finish` still lists the earlier build's
    files (the next build deletes those it does not write again); a figure's files discarded half-way are not
    listed."""
    out, owner = tmp_path / "r", {"grid": "g", "grid_file": None}
    out.mkdir()

    def listed():
        return json.loads((out / ".study-report.json").read_text())["files"]

    first = Outputs(out, owner)
    first.add(out / "quality.png", out / "quantity.png")
    for name in ("quality.png", "quantity.png"):
        (out / name).write_text("first\n")
    first.finish()
    second = Outputs(out, owner)
    second.add(out / "quantity.png")
    assert listed() == ["quality.png", "quantity.png"]  # killed here: quality.png is listed, to be deleted
    before = len(second.written)
    second.add(out / "granularity.png")
    (out / "granularity.png").write_text("half\n")
    second.discard(before)
    assert not (out / "granularity.png").exists()
    second.finish()
    assert listed() == ["quantity.png"] and sorted(p.name for p in out.iterdir()) == [".study-report.json",
                                                                                        "quantity.png"]


def test_a_rebuild_of_the_same_results_writes_the_same_figure_files(tmp_path):
    """Figures are saved without a creation date: rebuilding unchanged results rewrites identical PNG and PDF bytes."""
    write_all(tmp_path / "w", quantity_records())
    for out in ("r1", "r2"):
        build_report(tmp_path / "w", tmp_path / out, grid="g", log=None)
    for name in ("quantity.png", "quantity.pdf", "quantity.md", "cells.csv"):
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name


def test_cell_warnings_name_three_cells_and_count_only_those_left():
    """Exactly three cells: each named, no "and 0 more"; a table of four duplicate positions names three."""
    from study.report import caveats

    agg = pd.DataFrame({"method": ["simclr"] * 4, "size": [1, 2, 3, 4], "code_versions": ["v1,v2"] * 3 + ["v1"],
                        "grid": "g", "stage": "evaluate"})
    (line,) = caveats.code_version_lines(agg)
    assert line.startswith("3 cell(s) average") and line.count("[") == 3 and "more" not in line, line
    paper = pd.DataFrame({"a": [1]})
    paper.attrs["duplicates"] = [f"[cell={i}]: 0.500, 0.600" for i in range(4)]
    (line,) = caveats.duplicate_lines("quantity", paper)
    assert "4 position(s)" in line and "[cell=2]" in line and "[cell=3]" not in line and "; and 1 more)" in line


def test_missing_csv_leaves_out_the_plans_bookkeeping_and_index_html_opens_with_the_findings(tmp_path):
    """missing.csv: the job, its stage and axes, what it waits for; not the plan's `depends_on` and `has_result`
    (False on every row). The findings section comes before the figures'."""
    recs = quantity_records()
    plan = plan_for(recs)
    write_all(tmp_path / "w", recs[1:], with_pretrain_for=plan)
    build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    columns = list(pd.read_csv(tmp_path / "r" / "missing.csv").columns)
    assert columns[:2] == ["job_id", "stage"] and not {"has_result", "depends_on"} & set(columns), columns
    html = (tmp_path / "r" / "index.html").read_text()
    assert html.index('<section id="findings">') < html.index('<section id="quantity">')


def test_a_listing_of_part_of_a_grid_without_a_where_is_refused_by_name_not_by_a_crash(tmp_path):
    """A listing (edited by hand, or cut short) that says `part` but names no `--where` reads as the whole grid's:
    a report of part of it is refused that folder with both named, not an AttributeError on the missing selection;
    an older build's listing, without `part`, is of part of its grid where it has a `--where`."""
    out = tmp_path / "r"
    out.mkdir()
    (out / ".study-report.json").write_text(json.dumps({"grid": "g", "grid_file": None, "where": None, "part": True,
                                                        "files": []}))
    part = {"grid": "g", "grid_file": None, "where": {"seed": ["0"]}, "part": True}
    with pytest.raises(StudyError, match=r"holds the report of grid g \(all its jobs\), not of grid g \(only the "
                                         r"jobs --where seed=0 selects\)"):
        Outputs(out, part)
    Outputs(out, {"grid": "g", "grid_file": None, "where": None, "part": False})  # the whole grid's: the same
    (out / ".study-report.json").write_text(json.dumps({"grid": "g", "grid_file": None, "where": {"seed": ["0"]},
                                                        "files": []}))
    with pytest.raises(StudyError, match=r"holds the report of grid g \(only the jobs --where seed=0 selects\)"):
        Outputs(out, {"grid": "g", "grid_file": None, "where": None, "part": False})
    assert Outputs(out, part).about() == "study report of grid g (only the jobs --where seed=0 selects)"


def test_a_folder_of_exactly_five_other_files_names_each_without_an_ellipsis(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    for i in range(5):
        (out / f"f{i}.txt").write_text("mine\n")
    with pytest.raises(StudyError) as e:
        Outputs(out, {"grid": "g", "grid_file": None})
    assert "(f0.txt, f1.txt, f2.txt, f3.txt, f4.txt)" in str(e.value), e.value


def test_a_finding_whose_check_fails_is_warned_of_and_a_report_without_a_plan_counts_no_missing(tmp_path, monkeypatch):
    from study.report import findings as F

    def broken(c):
        raise KeyError("no such column")

    monkeypatch.setattr(F, "FINDINGS", [F.Finding("broken", "quantity", "a claim", "cells", broken)])
    write_all(tmp_path / "w", quantity_records())
    log = io.StringIO()
    s = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=log)
    line = "finding broken could not be checked (KeyError: 'no such column')"
    assert line in s.warnings and f"study report: warning: {line}\n" in log.getvalue()
    assert s.findings == {"broken": "not tested"}
    assert s.missing is None and "; missing: unknown (no plan); " in log.getvalue()  # no plan: no missing count


def test_the_cells_and_their_warnings_read_each_rows_code_versions_once(tmp_path, monkeypatch):
    """`job_code_versions` (a Python pass over every row) was run by `aggregate` and again by the code version
    warning, on the same table: now once, its result given to both; the cells' code_versions are the same."""
    from study.report import build, caveats
    from study.results import gather
    from study.results import table as results_table

    recs = quantity_records()
    recs[0] = {**recs[0], "code_version": "0.2.0"}  # two code versions: the warning has something to say
    write_all(tmp_path / "w", recs)
    coll = gather(tmp_path / "w", plan_for(recs))
    calls = []
    real = results_table.job_code_versions

    def counted(table):
        calls.append(len(table))
        return real(table)

    for module in (results_table, caveats, build):
        monkeypatch.setattr(module, "job_code_versions", counted, raising=False)
    _, agg, lines, _ = build._cells_and_warnings(coll, [], tmp_path / "w")
    assert calls == [len(coll.table)], calls
    assert any("the results ran on 2 code versions" in line for line in lines), lines
    assert set(agg["code_versions"]) == {CODE_VERSION, f"{CODE_VERSION},0.2.0"}


def test_index_html_shows_the_grid_files_description_and_the_findings_caption_counts_the_seeds(tmp_path):
    """A report of a grid file says what the grid is (its `description:`, the quickstart's "in miniature"), and the
    findings' caption says when every cell compared is one seed (no spread: a small gap may be noise)."""
    recs = quantity_records()
    plan = plan_for(recs)
    plan.grid = argparse.Namespace(description="the paper's four axes in miniature")  # as a Plan's Grid has it
    write_all(tmp_path / "w", recs, with_pretrain_for=plan)
    build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    html = (tmp_path / "r" / "index.html").read_text()
    assert '<p class="description" id="description">the paper&#x27;s four axes in miniature</p>' in html
    assert "cells of 2 seeds (their spread: cells.csv)" in html and "is one seed" not in html  # seeds 0 and 1
    one = [r for r in recs if r["axes"]["seed"] == 0]
    write_all(tmp_path / "w1", one, with_pretrain_for=plan_for(one))
    build_report(tmp_path / "w1", tmp_path / "r1", plan=plan_for(one), log=None)
    html = (tmp_path / "r1" / "index.html").read_text()
    assert "every cell here is one seed: no spread to judge a gap by" in html
    assert 'id="description"' not in html  # a plan without a grid file's description: no empty line


def test_many_results_on_one_rebuilt_manifest_are_one_warning(tmp_path, monkeypatch):
    """A test manifest rebuilt under a grid's evaluations made the report warn once per result (a hundred lines
    that said one thing, in the terminal and atop index.html; `study status` lists 8): now one warning names the
    cause, how many results, the first few, and where the rest are listed."""
    import study.manifests.store as store

    from study.report.build import STALE_LISTED

    recs = []
    for size in (1000, 2000, 4000):
        recs += records(eval_axes(size=size), {(10000, None): 0.5}, protocol={
            "train_manifest": "a_train", "train_manifest_content_hash": "OLDHASH00000"})
    assert len(recs) == 6 > STALE_LISTED
    write_all(tmp_path / "w", recs)
    monkeypatch.setattr(store, "load_meta", lambda name: {"content_hash": "NEWHASH11111"})
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(recs), log=None)
    (stale,) = [w for w in s.warnings if "OLDHASH00000" in w]
    listed = ", ".join(f"evaluate job {r['job_id']}" for r in recs[:STALE_LISTED])
    assert stale == (f"6 results ({listed} and 2 more: `study status --format json` names each): its result used "
                     "manifest a_train "
                     "with content OLDHASH00000, which now holds NEWHASH11111: shown, but `study submit` refuses to "
                     "go on until they are moved away (`study submit --set-aside-stale`) or the old manifest "
                     "restored"), stale



def test_a_result_of_an_encoder_file_since_replaced_says_to_restore_that_file(tmp_path):
    """A `pretrained` encoder file imported again with other weights: the warning said to restore "the old manifest"
    (and, for many, that `study status` lists them: it names 8)."""
    encoder = tmp_path / "encoder.pt"
    encoder.write_bytes(b"other weights")
    recs = []
    for size in (1000, 2000, 4000):
        recs += records(eval_axes(size=size), {(10000, None): 0.5}, protocol={
            "init_encoder_file": str(encoder), "init_encoder_sha256": "0" * 64})
    write_all(tmp_path / "w", recs[:2])
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan_for(recs[:2]), log=None)
    stale = [w for w in s.warnings if f"encoder file {encoder}" in w]
    assert len(stale) == 2 and all(w.endswith("until it is moved away (`study submit --set-aside-stale`) or the old "
                                              "encoder file restored") for w in stale), s.warnings
    write_all(tmp_path / "w6", recs)
    s = build_report(tmp_path / "w6", tmp_path / "r6", plan=plan_for(recs), log=None)
    (stale,) = [w for w in s.warnings if f"encoder file {encoder}" in w]
    assert stale.startswith("6 results (") and "`study status --format json` names each" in stale, stale
    assert stale.endswith("until they are moved away (`study submit --set-aside-stale`) or the old encoder file "
                          "restored"), stale

def test_a_copy_of_the_grid_file_is_told_how_to_report_apart(tmp_path):
    """A copy of a grid file (same `name:`) reported into the original's default folder, reports/<name>: the refusal
    said only `--out reports/<name> holds the report of ...`, though the user gave no --out."""
    import dataclasses

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


def test_a_report_given_neither_plan_nor_grid_is_of_the_grid_its_results_record(tmp_path):
    """A notebook's `build_report(workdir, out)` of one grid's results: the report is that grid's (its page,
    results.parquet's metadata, the folder's listing), not of a grid named "results", so that a later build naming
    the grid writes the same folder rather than being refused as another grid's."""
    write_all(tmp_path / "w", quantity_records())
    build_report(tmp_path / "w", tmp_path / "r", log=None)
    assert "study report: g" in (tmp_path / "r" / "index.html").read_text()
    assert read_table_grid(tmp_path / "r" / "results.parquet") == "g"
    assert json.loads((tmp_path / "r" / ".study-report.json").read_text())["grid"] == "g"
    assert build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None).drawn  # the same grid's folder


def read_table_grid(path: Path) -> str:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).metadata[b"study.grid"].decode()


def test_a_report_by_a_grid_name_no_result_records_names_the_grids_the_results_record(tmp_path, monkeypatch):
    """A mistyped grid name (`quickstart` for `quickstart-tiny`) is refused naming the grids the workdir's results
    record, from Python and from `study report NAME` alike."""
    write_all(tmp_path / "w", quantity_records())
    with pytest.raises(StudyError, match=r"names grid 'gg' \(those there name grid g\)"):
        build_report(tmp_path / "w", tmp_path / "r", grid="gg", log=None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StudyError, match=r"gg: no such grid file, and no result in .* \(those there name grid g\)"):
        _run_cli(["report", "gg", "--workdir", str(tmp_path / "w")])
    assert not (tmp_path / "r").exists()


def test_results_copied_into_a_folder_inside_results_are_named_not_drawn_as_missing_unsaid(tmp_path):
    """`cp -r other/results w/results` where w/results exists puts the other workdir's results in
    w/results/results/, which no command reads: the report said only that their jobs have no result yet. It now
    names that folder and how to move them up; once moved, they are drawn."""
    plan = plan_for(quantity_records())
    write_all(tmp_path / "other", quantity_records(), with_pretrain_for=plan)
    copied = [r["job_id"] for r in quantity_records()]
    (tmp_path / "w" / "results").mkdir(parents=True)
    shutil.copytree(tmp_path / "other" / "results", tmp_path / "w" / "results" / "results")
    for job in plan.jobs:  # the pretrainings' results in place: only the evaluations' copy went astray
        if job.stage == "pretrain":
            (tmp_path / "w" / "results" / "results" / f"{job.id}.json").rename(
                tmp_path / "w" / "results" / f"{job.id}.json")
    s = build_report(tmp_path / "w", tmp_path / "r", plan=plan, log=None)
    nested = tmp_path / "w" / "results" / "results"
    (line,) = [w for w in s.warnings if "in a folder inside it" in w]
    assert line.startswith(f"{len(set(copied))} job(s) of the plan without a result in {tmp_path / 'w' / 'results'} "
                           f"have a result file in a folder inside it ({nested}), which no command reads")
    assert f"`mv -n {nested}/*.json {tmp_path / 'w' / 'results'}/`" in line and line.endswith("they are not drawn")
    assert s.missing == len(set(copied))
    for path in nested.iterdir():
        path.rename(tmp_path / "w" / "results" / path.name)
    s = build_report(tmp_path / "w", tmp_path / "r2", plan=plan, log=None)
    assert s.missing == 0 and not [w for w in s.warnings if "in a folder inside it" in w]
