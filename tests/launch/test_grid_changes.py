"""`study status` on a grid file edited mid-study: besides counting the results (and checkpoints) of jobs its plan no
longer has, it says what changed, against the plan's job of the same axes: which setting and its two values, an
evaluation's encoder's setting, an axis value taken out. A setting a job's method never reads is no setting of its
id: such jobs stay the plan's."""
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
    - {protocol: linear, eval_datasets: same, labeled_sizes: [LABELED]EXTRA}
"""


def _grid(path, temperature="0.2", methods="simclr, supervised", labeled="16, 32", extra="", entries=""):
    """The grid GRID with these values, `extra` added to its entry, `entries` (lines) after it."""
    path.write_text(GRID.replace("TEMPERATURE", temperature).replace("METHODS", methods).replace("LABELED", labeled)
                    .replace("EXTRA", extra) + entries)
    return plan_grid(path)


def _ran(plan, wd, finished=True) -> None:
    """Every job of `plan` run here from its grid file: its job file and ledger line, and its result or, not
    `finished`, a checkpoint midway."""
    for job in plan.jobs:
        write_job_file(wd, job)
        if not finished:
            write_checkpoint(wd / "jobs" / job.id / "checkpoint.pt", 3, 6)
            continue
        pre = job.config.get("pretrain", {})
        write_result(wd, {"job_id": job.id, "stage": job.stage, "grid": plan.name, "axes": job.axes,
                          "metrics": [{"metric": "loss", "value": 1.0}],
                          "protocol": {"config": pre} if pre else {"epochs": 1}})
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
    the results left off the plan ("their settings were changed since"), not which setting; the supervised jobs,
    whose method reads no temperature, stay the plan's."""
    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    first = _grid(grid)
    _ran(first, wd)
    assert "of no job of its plan now" not in _status(first, wd)

    text = _status(_grid(grid, temperature="0.5"), wd)
    assert "\n2 result(s) of jobs this grid file ran are of no job of its plan now" in text, text
    assert (f"are named here until the grid file gives those settings again (they count then) or their "
            f"results/<id>.json are moved out of {wd.resolve()}\n") in text, text  # how the note goes away
    assert ("  what changed since, against the plan's job of the same axes:\n"
            "  1 (pretrain 1): pretrain.temperature 0.2 -> 0.5\n"
            "  1 (evaluate 1): encoder: pretrain.temperature 0.2 -> 0.5\n") in text, text

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


def _off(first, edited) -> list[str]:
    """The ids of the jobs of `first` that `edited` no longer has, in the plan's order."""
    kept = {j.id for j in edited.jobs}
    return [j.id for j in first.jobs if j.id not in kept]


def test_several_jobs_of_one_axes_are_each_compared(tmp_path):
    """An entry's labeled sizes split into a job each (one axes cell, two jobs): 32 changed to 24 was said `[32] ->
    [16]`, against the first job of the cell, which the edit left as it was; two entries of one cell alike: the
    other entry's levels named as changed where this one's sizes were."""
    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    split = ", split_labeled_sizes: true"
    first = _grid(grid, methods="simclr", extra=split)
    _ran(first, wd)
    edited = _grid(grid, methods="simclr", labeled="16, 24", extra=split)
    (off,) = _off(first, edited)
    assert changed_settings(edited, wd, [off]) == {off: ("evaluate", "evaluate.labeled_sizes [32] -> [16] or [24]")}

    other = "    - {protocol: linear, eval_datasets: same, labeled_sizes: [64], params: {image_size: IMAGE}}\n"
    first = _grid(grid, methods="simclr", labeled="16", entries=other.replace("IMAGE", "12"))
    _ran(first, wd)
    edited = _grid(grid, methods="simclr", labeled="16", entries=other.replace("IMAGE", "16"))
    (off,) = _off(first, edited)
    assert changed_settings(edited, wd, [off]) == {off: (
        "evaluate", "(evaluate.labeled_sizes [64] -> [16]) or (evaluate.image_size 12 -> 16)")}


def test_a_variant_given_is_said_once(tmp_path):
    """A `variant` given to an entry: every evaluation of it was `no job of the plan has its axes now (<its whole
    axes>)`, a line each in status, though every axis value is the plan's."""
    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    first = _grid(grid)
    _ran(first, wd)
    text = _status(_grid(grid, extra=", variant: b"), wd)
    assert '  2 (evaluate 2): variant (not given) -> "b"\n' in text, text
    assert "no job of the plan has its axes" not in text, text


def test_a_concat_of_two_retrained_encoders_says_the_change_once(tmp_path):
    """Both encoders of a concat evaluation changed alike: `encoder: pretrain.steps 6 -> 7` was said twice."""
    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    concat = ("    - {protocol: concat, eval_datasets: same, labeled_sizes: [16], pairs: [[{method: simclr}, "
              "{method: supervised}]]}\n")
    first = _grid(grid, entries=concat)
    _ran(first, wd)
    grid.write_text(grid.read_text().replace("steps: 6", "steps: 7"))
    edited = plan_grid(grid)
    (ev,) = [j for j in first.jobs if j.axes["protocol"] == "concat"]
    assert changed_settings(edited, wd, [ev.id]) == {ev.id: ("evaluate", "encoder: pretrain.steps 6 -> 7")}


def test_an_older_studys_encoder_id_is_no_change_and_an_odd_job_file_is_left_out(tmp_path):
    """An evaluation whose labeled sizes were changed, of an encoder an older study gave another id (its settings
    the plan's): `encoder <old id> -> <new id>` was said beside the change, though the encoder is the same. A job
    file without axes (not this study's) stopped `study status` with a KeyError."""
    import json

    from study.grids.jobs import Job

    grid, wd = tmp_path / "g.yaml", tmp_path / "wd"
    plan = _grid(grid, methods="simclr", labeled="16, 32")
    pre, ev = plan.jobs
    write_job_file(wd, Job("0ld0e0c0de00", "pretrain", pre.config))
    old = {**ev.config, "encoders": ["0ld0e0c0de00"], "evaluate": {**ev.config["evaluate"], "labeled_sizes": [16]}}
    write_job_file(wd, Job("0ldeva100000", "evaluate", old, ("0ld0e0c0de00",)))
    assert changed_settings(plan, wd, ["0ldeva100000"]) == {
        "0ldeva100000": ("evaluate", "evaluate.labeled_sizes [16] -> [16, 32]")}

    odd = write_job_file(wd, Job("0dd000000000", "pretrain", {"stage": "pretrain", "pretrain": {}}))
    assert json.loads(odd.read_text())["config"] == {"stage": "pretrain", "pretrain": {}}
    assert changed_settings(plan, wd, ["0dd000000000"]) == {}
