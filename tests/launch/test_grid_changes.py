"""`study status` on a grid file edited mid-study: besides counting the results (and checkpoints) of jobs its plan no
longer has, it says what changed, against the plan's job of the same axes: which setting and its two values, an
evaluation's encoder's setting, an axis value taken out; and a setting the job's method never used, which reruns the
same computation under a new id."""
from __future__ import annotations

import io
from pathlib import Path

from launch_helpers import write_checkpoint

from study.grids import plan_grid
from study.launch.grid_changes import changed_settings
from study.launch.ledger import Ledger
from study.launch.runner import write_job_file
from study.launch.status import print_status
from study.results import write_result

GRID = """\
name: edited
datasets:
  toy: {reader: imagefolder, train: toy_train, test: toy_test}
defaults:
  pretrain: {backbone: resnet18_small, width: 4, image_size: 12, steps: 6, batch_size: 8, head: [16, 8],
             temperature: TEMPERATURE, optim: {warmup_epochs: 0}}
  evaluate: {image_size: 12}
axes: {method: [METHODS], dataset: [toy], size: [32]}
stages:
  evaluate:
    - {protocol: linear, eval_datasets: same, labeled_sizes: [LABELED]}
"""


def _grid(path, temperature="0.2", methods="simclr, supervised", labeled="16, 32"):
    path.write_text(GRID.replace("TEMPERATURE", temperature).replace("METHODS", methods).replace("LABELED", labeled))
    return plan_grid(path)


def _ran(plan, wd, finished=True) -> None:
    """Every job of `plan` run here from its grid file: its job file and ledger line, and its result (a pretraining
    records its effective temperature as its run does: null for a method without one) or, not `finished`, a
    checkpoint midway."""
    for job in plan.jobs:
        write_job_file(wd, job)
        if not finished:
            write_checkpoint(wd / "jobs" / job.id / "checkpoint.pt", 3, 6)
            continue
        pre = job.config.get("pretrain", {})
        used = None if job.axes["method"] == "supervised" else pre.get("temperature")
        write_result(wd, {"job_id": job.id, "stage": job.stage, "grid": plan.name, "axes": job.axes,
                          "metrics": [{"metric": "loss", "value": 1.0}],
                          "protocol": {"temperature": used, "config": pre} if pre else {"epochs": 1}})
    Ledger(wd, plan.name).append([{"event": "local", "job": j.id, "stage": j.stage,
                                   "state": "done" if finished else "running", "log": None, "pid": 4242,
                                   "host": "another-host.invalid", "grid_file": str(Path(plan.path).resolve())}
                                  for j in plan.jobs])


def _status(plan, wd) -> str:
    out = io.StringIO()
    print_status(plan, wd, out)
    return out.getvalue()


def test_status_says_which_settings_an_edit_changed(tmp_path):
    """A SimCLR temperature changed, then a labeled size added, then a method removed: status named only the ids of
    the results left off the plan ("their settings were changed since"), not which setting, nor that the supervised
    jobs run again for a setting supervised never reads."""
    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    first = _grid(grid)
    _ran(first, wd)
    assert "of no job of its plan now" not in _status(first, wd)

    text = _status(_grid(grid, temperature="0.5"), wd)
    assert "\n4 result(s) of jobs this grid file ran are of no job of its plan now" in text, text
    assert ("  what changed since, against the plan's job of the same axes:\n"
            "  1 (pretrain 1): pretrain.temperature 0.2 -> 0.5\n") in text, text
    assert ("  1 (pretrain 1): pretrain.temperature 0.2 -> 0.5 (unused by method supervised, whose run recorded "
            "temperature null: the same run under a new id)\n") in text, text
    assert "  1 (evaluate 1): encoder: pretrain.temperature 0.2 -> 0.5\n" in text, text

    text = _status(_grid(grid, labeled="16, 24, 32"), wd)
    assert "  2 (evaluate 2): evaluate.labeled_sizes [16, 32] -> [16, 24, 32]\n" in text, text
    assert "pretrain.temperature" not in text, text  # the pretraining jobs are the plan's still

    text = _status(_grid(grid, methods="simclr"), wd)
    assert "  2 (pretrain 1, evaluate 1): no job of the plan has its axes now (method supervised)\n" in text, text


def test_changed_settings_of_checkpoints_and_of_an_older_studys_jobs(tmp_path):
    """The unfinished jobs an edit took out are said so too; a job whose settings are the plan's (an older study's
    id: `renamed`) or without a job file has no change to name."""
    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    first = _grid(grid, methods="simclr")
    _ran(first, wd, finished=False)
    edited = _grid(grid, methods="simclr", temperature="0.3")
    text = _status(edited, wd)
    assert "job(s) this grid file started are of no job of its plan now and did not finish" in text, text
    assert "  1 (pretrain 1): pretrain.temperature 0.2 -> 0.3\n" in text, text
    pre = next(j for j in first.jobs if j.stage == "pretrain")
    assert changed_settings(first, wd, [pre.id, "no-such-job"]) == {}


def test_status_json_gives_what_changed_of_each_job_off_the_plan(tmp_path):
    """`study status --format json` named the results off the plan by id alone."""
    from study.launch.status import status_json

    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    first = _grid(grid, methods="simclr")
    _ran(first, wd)
    got = status_json(_grid(grid, methods="simclr", labeled="16"), wd)
    ev = next(j for j in first.jobs if j.stage == "evaluate")
    assert got["results_off_plan"] == [ev.id]
    assert got["off_plan_changes"] == {ev.id: "evaluate.labeled_sizes [16, 32] -> [16]"}
