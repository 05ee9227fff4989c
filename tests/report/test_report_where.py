"""`study report GRID --where COLUMN=VALUE`: a report of part of a grid (the jobs `--where` selects, as `study plan`,
`status` and `submit` select them), in a folder of its own, said so on the page, its findings checked against the
whole grid's results."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from study.errors import StudyError
from study.grids import plan_grid
from study.report.cli import register, where_folder
from study.results import write_result

REPO = Path(__file__).resolve().parents[2]
GRID = REPO / "grids" / "quickstart.yaml"
SIZE_BUMP = {3000: 0.0, 7500: 0.05, 15000: 0.08, 30000: 0.09, 60000: 0.095}


def _top1(axes: dict) -> float:
    """A known top-1: by method, in-domain (+0.1), pretraining size; a corruption costs 0.05, a downsampling 0.1."""
    base = {"simclr": 0.6, "supervised": 0.75, "random": 0.2}.get(axes.get("method"), 0.3)
    corruption = axes.get("corruption") or "none"
    cost = 0.0 if corruption == "none" else 0.1 if corruption.startswith("downsample") else 0.05
    return base + 0.1 * (axes.get("dataset") == axes.get("eval_dataset")) + SIZE_BUMP.get(axes.get("size"), 0) - cost


def _write_results(workdir: Path) -> None:
    """A result for every job of grids/quickstart.yaml (pretrainings with a loss; evaluations with `_top1`)."""
    plan = plan_grid(GRID)
    for job in plan.jobs:
        axes = dict(job.axes)
        if job.stage == "pretrain":
            metrics = [{"metric": "loss", "value": 1.0}]
        else:
            metrics = [{"metric": "top1", "value": _top1(axes), "labeled_size": n}
                       for n in job.config["evaluate"]["labeled_sizes"]]
        write_result(workdir, {"job_id": job.id, "stage": job.stage, "grid": plan.name, "axes": axes,
                               "metrics": metrics, "protocol": {"epochs": 1}, "code_version": "0.1.0+git.test",
                               "wall_time_s": 1.0, "finished_at": "2024-01-01T00:00:00+00:00",
                               "depends_on": list(job.depends_on)})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("where") / "w"
    _write_results(w)
    return w


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="study")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def _findings(folder: Path) -> dict[str, tuple[str, str]]:
    found = pd.read_csv(folder / "findings.csv")
    return {n: (v, e) for n, v, e in zip(found["name"], found["verdict"], found["evidence"])}


def test_a_report_where_method_is_simclr_is_of_those_jobs_in_its_own_folder(workdir, tmp_path, monkeypatch, capsys):
    """The part's report goes to reports/<grid>--method=simclr (the whole grid's reports/<grid> is not replaced),
    holds the selected jobs' results only, says on its page and in its log which part it is, and a finding that
    needs the supervised encoders the filter leaves out is not tested (the whole grid's report tests it)."""
    monkeypatch.chdir(tmp_path)
    assert _run(["report", str(GRID), "--workdir", str(workdir)]) == 0
    whole = tmp_path / "reports" / "quickstart"
    before = (whole / "results.parquet").read_bytes()
    capsys.readouterr()
    assert _run(["report", str(GRID), "--workdir", str(workdir), "--where", "method=simclr"]) == 0
    err = capsys.readouterr().err
    part = tmp_path / "reports" / "quickstart--method=simclr"
    selected = [j for j in plan_grid(GRID).jobs if j.axes.get("method") == "simclr"]
    assert set(pd.read_parquet(part / "results.parquet")["job_id"]) == {j.id for j in selected}
    assert (whole / "results.parquet").read_bytes() == before  # the whole grid's report is untouched
    html = (part / "index.html").read_text()
    scope = f"only the {len(selected)} of grid quickstart&#x27;s {len(plan_grid(GRID).jobs)} jobs"
    assert "Report: quickstart (part of the grid)" in html and "Filtered:" in html and scope in html
    assert "<title>study report: quickstart (part of the grid)</title>" in html  # its browser tab, too
    assert "<title>study report: quickstart</title>" in (whole / "index.html").read_text()
    assert "--where method=simclr selects" in html and "--where method=simclr selects" in err
    assert "Filtered:" not in (whole / "index.html").read_text()
    assert json.loads((part / ".study-report.json").read_text())["where"] == {"method": ["simclr"]}
    assert _findings(whole)["supervised_beats_simclr"][0] == "holds"
    assert _findings(part)["supervised_beats_simclr"][0] == "not tested"
    assert _findings(part)["quantity_saturation"] == _findings(whole)["quantity_saturation"]  # simclr's own


def test_a_parts_figures_and_table_say_which_part_in_their_own_metadata(workdir, tmp_path):
    """A PNG, PDF or results.parquet copied out of a part's report folder still names the selection (the whole
    grid's name only its grid): the files' bytes alone read as the whole grid's otherwise."""
    import pyarrow.parquet as pq
    from PIL import Image

    argv = ["report", str(GRID), "--workdir", str(workdir), "--out"]
    assert _run([*argv, str(tmp_path / "part"), "--where", "method=simclr"]) == 0
    assert _run([*argv, str(tmp_path / "whole")]) == 0
    said = "study report of grid quickstart (only the jobs --where method=simclr selects)"
    for folder, about in ((tmp_path / "part", said), (tmp_path / "whole", "study report of grid quickstart")):
        png = sorted(folder.glob("*.png"))
        assert png and all(Image.open(p).text["Description"] == about for p in png)
        escaped = about.replace("(", r"\(").replace(")", r"\)")  # as a PDF string writes them
        assert all(f"/Subject ({escaped})".encode() in p.read_bytes() for p in folder.glob("*.pdf"))
    meta = pq.read_schema(tmp_path / "part" / "results.parquet").metadata
    assert json.loads(meta[b"study.where"]) == {"method": ["simclr"]}
    assert b"study.where" not in pq.read_schema(tmp_path / "whole" / "results.parquet").metadata


def test_a_part_is_refused_the_whole_grids_folder_and_the_whole_grid_a_parts(workdir, tmp_path):
    """--out of the whole grid's report with --where (and the reverse, or another selection) is refused, as another
    grid's report folder is: a part never silently replaces the whole grid's report."""
    argv = ["report", str(GRID), "--workdir", str(workdir), "--out"]
    assert _run([*argv, str(tmp_path / "r")]) == 0
    # the whole grid's report says it is of all its jobs: else the grid and its file read alike on both sides
    with pytest.raises(StudyError, match=r"holds the report of grid quickstart \(.*quickstart.yaml\) \(all its jobs\), "
                                         r"not of grid quickstart \(.*\) \(only the jobs --where method=simclr "
                                         r"selects\)"):
        _run([*argv, str(tmp_path / "r"), "--where", "method=simclr"])
    assert _run([*argv, str(tmp_path / "p"), "--where", "method=simclr"]) == 0
    with pytest.raises(StudyError, match=r"holds the report of .*only the jobs --where method=simclr selects\), not "
                                         r"of grid quickstart \(.*quickstart.yaml\) \(all its jobs\): give"):
        _run([*argv, str(tmp_path / "p")])
    with pytest.raises(StudyError, match="only the jobs --where method=supervised selects"):
        _run([*argv, str(tmp_path / "p"), "--where", "method=supervised"])


def test_one_selection_spelled_two_ways_is_one_folder():
    """`size=15000` is `size=15k` (as `study plan` prints it), and the order of the flags does not matter; a
    character a path reads badly (`:`, `|`) is `_` in the folder's name."""
    from study.grids.where import canonical_where

    plan = plan_grid(GRID)
    a = canonical_where(plan, {"size": ["15000"], "method": ["simclr"]})
    b = canonical_where(plan, {"method": ["simclr"], "size": ["15k"]})
    assert a == b == {"method": ["simclr"], "size": ["15k"]}
    assert where_folder("quickstart", a) == "quickstart--method=simclr--size=15k"
    assert where_folder("q", {"corruption": ["jpeg:quality=10", "none"]}) == "q--corruption=jpeg_quality=10+none"
    assert where_folder("q", None) == "q"


def test_a_pooled_set_and_a_concatenation_of_the_same_names_are_two_folders(workdir, tmp_path, monkeypatch):
    """quickstart's pooled `fmnist+mnist` and concatenated `fmnist|mnist` both read `fmnist_mnist` in a path: the
    second report was refused the first one's folder. A value that joins names is told apart by a hash."""
    monkeypatch.chdir(tmp_path)
    pooled, concat = ({"dataset": ["fmnist+mnist"]}, {"dataset": ["fmnist|mnist"]})
    a, b = where_folder("quickstart", pooled), where_folder("quickstart", concat)
    assert a != b and a.startswith("quickstart--dataset=fmnist_mnist--~") and b.startswith(a.split("~")[0])
    assert where_folder("quickstart", {"dataset": ["fmnist", "mnist"]}) == "quickstart--dataset=fmnist+mnist"
    for where, folder in ((pooled, a), (concat, b)):
        assert _run(["report", str(GRID), "--workdir", str(workdir), "--where", f"dataset={where['dataset'][0]}"]) == 0
        listing = json.loads((tmp_path / "reports" / folder / ".study-report.json").read_text())
        assert listing["where"] == where


def test_a_comparison_the_left_out_cells_change_is_not_made(workdir, tmp_path):
    """Two of the four corruptions: the largest drop among those kept is no evidence that downsampling hurts most
    (the whole grid's comparison ranks all four: it holds there, and would here), so that finding is not tested; a
    size step between two sizes kept is not the grid's largest step (60k against 30k), so quantity_saturation is not
    tested either. A comparison the part holds whole (supervised above simclr at 15k) is made as in the whole grid's
    report."""
    argv = ["report", str(GRID), "--workdir", str(workdir)]
    assert _run([*argv, "--out", str(tmp_path / "whole")]) == 0
    assert _run([*argv, "--out", str(tmp_path / "part"), "--where", "corruption=none", "--where",
                 "corruption=jpeg:quality=10", "--where", "corruption=downsample:factor=2"]) == 0
    whole, part = _findings(tmp_path / "whole"), _findings(tmp_path / "part")
    assert whole["downsampling_hurts_most"][0] == "holds"
    verdict, evidence = part["downsampling_hurts_most"]
    assert verdict == "not tested" and "1 comparison(s) left out: the cells --where leaves out change them" in evidence
    assert _run([*argv, "--out", str(tmp_path / "sizes"), "--where", "size=15k", "--where", "size=30k"]) == 0
    sizes = _findings(tmp_path / "sizes")
    assert whole["quantity_saturation"][0] == "holds" and sizes["quantity_saturation"][0] == "not tested"
    assert sizes["supervised_beats_simclr"][0] == "holds"
    said = sizes["supervised_beats_simclr"][1]
    assert "fmnist 15k" in said and "fmnist 3k" not in said


def test_an_evaluation_selected_without_its_pretraining_waits_for_none_that_is_done(workdir, tmp_path):
    """--where protocol=linear leaves the pretrainings out: one evaluation without a result waits for nothing (its
    encoder's result is there), not for a pretraining 'no result yet'."""
    w = tmp_path / "w"
    shutil.copytree(workdir, w)
    job = next(j for j in plan_grid(GRID).jobs if j.stage == "evaluate" and j.depends_on)
    (w / "results" / f"{job.id}.json").unlink()
    assert _run(["report", str(GRID), "--workdir", str(w), "--out", str(tmp_path / "r"), "--where",
                 "protocol=linear"]) == 0
    missing = pd.read_csv(tmp_path / "r" / "missing.csv")
    assert list(missing["job_id"]) == [job.id] and list(missing["waits_for"]) == ["dependencies done"]


def test_where_needs_the_grid_file(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no grids/quickstart.yaml here: `quickstart` is a grid name
    with pytest.raises(StudyError, match="--where selects jobs of a grid's plan: quickstart is no grid file"):
        _run(["report", "quickstart", "--workdir", str(workdir), "--out", str(tmp_path / "r"),
              "--where", "method=simclr"])
    assert not (tmp_path / "r").exists()


def test_a_selection_of_many_values_is_a_folder_name_a_file_system_takes(tmp_path):
    """A file system allows 255 bytes a name: a --where of many values is cut, with a hash of the whole selection
    (two selections that differ past the cut are two folders), and the folder and its lock file beside it can be
    made."""
    from study.report.build import report_lock

    many = {"corruption": [f"jpeg:quality={q}" for q in range(5, 100, 3)], "method": ["simclr"]}
    other = {"corruption": many["corruption"], "method": ["supervised"]}
    a, b = where_folder("data_quantity", many), where_folder("data_quantity", other)
    assert a != b and a.startswith("data_quantity--corruption=jpeg_quality=5+") and len(a.encode()) <= 200
    (tmp_path / a).mkdir()
    report_lock(tmp_path / a).touch()
    assert where_folder("q", {"method": ["simclr"]}) == "q--method=simclr"  # a short one as it was


def test_a_selection_of_every_job_says_all_of_them_not_only():
    """`--where seed=0` of a one-seed grid selects all its jobs: "only the 56 of its 56" read as a cut."""
    from study.grids.cli import plan_where
    from study.report.build import scope_text

    plan = plan_grid(GRID)
    every, some = ({"seed": ["0"]}, {"method": ["simclr"]})
    assert scope_text(plan_where(plan, every), every) == (f"all {len(plan.jobs)} of grid quickstart's jobs, which "
                                                          "--where seed=0 selects")
    assert scope_text(plan_where(plan, some), some).startswith("only the ")


def test_a_report_of_every_job_is_not_titled_a_part_nor_its_findings_said_to_leave_cells_out(workdir, tmp_path):
    """`--where seed=0` of the one-seed quickstart: the page said "(part of the grid)" beside "Filtered: all 56", and
    its findings' caption that cells left out were left out; its findings are the whole grid's, and its folder is
    the whole grid's report folder (either replaces the other)."""
    argv = ["report", str(GRID), "--workdir", str(workdir), "--out"]
    assert _run([*argv, str(tmp_path / "whole")]) == 0
    assert _run([*argv, str(tmp_path / "all"), "--where", "seed=0"]) == 0
    html = (tmp_path / "all" / "index.html").read_text()
    assert "<title>study report: quickstart</title>" in html and "<h1>Report: quickstart</h1>" in html
    assert "Filtered:</strong> all " in html and "cells left out" not in html and "part of the grid" not in html
    findings = [pd.read_csv(tmp_path / out / "findings.csv") for out in ("whole", "all")]
    pd.testing.assert_frame_equal(*findings)
    # the same report: it may replace the whole grid's, and the reverse (a refusal said "only the jobs" of all of them)
    assert _run([*argv, str(tmp_path / "whole"), "--where", "seed=0"]) == 0
    assert _run([*argv, str(tmp_path / "all")]) == 0
    assert _run([*argv, str(tmp_path / "all"), "--where", "seed=0"]) == 0
    listing = json.loads((tmp_path / "all" / ".study-report.json").read_text())
    assert listing["where"] == {"seed": ["0"]} and listing["part"] is False


def test_a_selection_of_every_job_keeps_its_folder_once_the_grid_grows_and_it_selects_a_part(workdir, tmp_path):
    """`--where seed=0` of a one-seed grid wrote the whole grid's report into reports/<grid>--seed=0; a second seed
    added to the grid since makes the same `--where` a part: its own folder still takes it (and a part is still
    refused the whole grid's folder)."""
    grid = tmp_path / "quickstart.yaml"
    grid.write_text(GRID.read_text())
    argv = ["report", "--workdir", str(workdir), "--out"]
    assert _run([*argv, str(tmp_path / "seed0"), str(grid), "--where", "seed=0"]) == 0
    assert _run([*argv, str(tmp_path / "whole"), str(grid)]) == 0
    grid.write_text(GRID.read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    assert "seeds: [0, 1]" in grid.read_text()
    assert _run([*argv, str(tmp_path / "seed0"), str(grid), "--where", "seed=0"]) == 0
    assert json.loads((tmp_path / "seed0" / ".study-report.json").read_text())["part"] is True
    with pytest.raises(StudyError, match=r"holds the report of grid quickstart \(.*\) \(all its jobs\), not of "
                                         r"grid quickstart \(.*\) \(only the jobs --where seed=0 selects\)"):
        _run([*argv, str(tmp_path / "whole"), str(grid), "--where", "seed=0"])
