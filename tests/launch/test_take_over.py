"""study.launch.take_over: after an update of study that gives an unchanged grid file's jobs other ids, a submit
takes over the results the older study's jobs left (the same runs) instead of running them again."""
from __future__ import annotations

import json
import re

from launch_helpers import grid_text, run_cli, status

from study.grids import jobs as grid_jobs
from study.grids import plan_grid
from study.launch.ledger import Ledger
from study.paths import result_path
from study.results import read_result


def test_a_submit_after_an_update_of_study_takes_over_the_older_studys_results_and_runs_none_again(env, monkeypatch):
    """A grid of SimCLR and supervised jobs with a temperature and head, run to the end by a study whose job ids
    hashed those settings for every method; then study updated (a supervised job's id leaves them out): the
    supervised pretraining and its probe are jobs of other ids now. Status says a submit takes their results over; a
    dry run says it would and moves nothing; the submit moves each result and job folder to its new id and runs no
    job; their metrics are the older runs'."""
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("upgraded").replace("method: [simclr]", "method: [simclr, supervised]")
                    .replace("head: [16, 8],", "head: [16, 8], temperature: 0.5,"))
    with monkeypatch.context() as older_study:  # ids of every method's jobs hashed `temperature` and `head`
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        old_ids = {(j.stage, j.axes["method"]): j.id for j in plan_grid(grid).jobs}
        code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
        assert code == 0, err
    plan = plan_grid(grid)
    new_ids = {(j.stage, j.axes["method"]): j.id for j in plan.jobs}
    moved = {old_ids[k]: new_ids[k] for k in new_ids if old_ids[k] != new_ids[k]}
    assert sorted(k[1] for k in new_ids if old_ids[k] != new_ids[k]) == ["supervised", "supervised"]
    metrics = {old: read_result(result_path(wd, old))["metrics"] for old in moved}

    said = status(grid, wd)
    assert ("\n2 result(s) of jobs an older version of study ran (" in said
            and "the same runs, not counted above until `study submit` takes them over" in said), said
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and "study: would take over 2 result(s) of jobs an older version of study ran" in err, err
    assert all(result_path(wd, old).exists() and not result_path(wd, new).exists() for old, new in moved.items())

    events = len(Ledger(wd, plan.name).events())
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "study: took over 2 result(s) of jobs an older version of study ran" in err, err
    added = Ledger(wd, plan.name).events()[events:]
    assert {(e["job"], e["state"], e.get("taken_over_from")) for e in added} == {
        (new, "done", old) for old, new in moved.items()}, added  # no job ran
    for old, new in moved.items():
        record = read_result(result_path(wd, new))
        assert record["metrics"] == metrics[old] and record["taken_over_from"] == old
        assert record["depends_on"] == list(next(j for j in plan.jobs if j.id == new).depends_on)
        assert not result_path(wd, old).exists() and not (wd / "jobs" / old).exists()
        assert json.loads((wd / "jobs" / new / "job.json").read_text())["id"] == new
    assert (wd / "jobs" / new_ids["pretrain", "supervised"] / "encoder.pt").is_file()
    said = status(grid, wd)
    assert "older version of study" not in said, said
    for stage in ("pretrain", "evaluate"):
        assert re.search(rf"^{stage} +2 +0 +0 +0 +0 +0 +0$", said, re.M), said  # every job done


def test_another_grid_takes_over_its_evaluations_of_an_encoder_the_first_grid_took_over(env, monkeypatch):
    """Two grid files share the supervised pretraining (one job), each with a probe of its own. After the update,
    the first's submit takes the pretraining over (its job file moves to the new id); the second's probe of that
    encoder is still known as the same run (its encoder's id of now read from the taken-over result), and the second's
    submit takes it over too."""
    first, second, wd = env / "a.yaml", env / "b.yaml", env / "wd"
    text = (grid_text("first").replace("method: [simclr]", "method: [supervised]")
            .replace("head: [16, 8],", "head: [16, 8], temperature: 0.5,"))
    first.write_text(text)
    second.write_text(text.replace("name: first", "name: second").replace("labeled_sizes: [16, 32]",
                                                                          "labeled_sizes: [16]"))
    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        for grid in (first, second):
            code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
            assert code == 0, err
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err, err
    assert "the same runs, not counted above until `study submit` takes them over" in status(second, wd)
    events = len(Ledger(wd, "second").events())
    code, _, err = run_cli(["submit", str(second), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 1 result(s)" in err, err
    assert all(result_path(wd, j.id).exists() for j in plan_grid(second).jobs)
    assert [e["state"] for e in Ledger(wd, "second").events()[events:]] == ["done"]  # taken over; none ran
