"""study.launch.take_over: after an update of study that gives an unchanged grid file's jobs other ids, a submit
takes over the results the older study's jobs left (the same runs) instead of running them again."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from launch_helpers import grid_text, run_cli, status

from study.grids import jobs as grid_jobs
from study.grids import plan_grid
from study.launch import take_over
from study.launch.ledger import Ledger
from study.paths import result_path
from study.report.build import build_report
from study.results import read_result


def test_a_submit_after_an_update_of_study_takes_over_the_older_studys_results_and_runs_none_again(env, monkeypatch):
    """A grid of SimCLR and supervised jobs with a temperature and head, run to the end by a study whose job ids
    hashed those settings for every method; then study updated (a supervised job's id leaves them out): the
    supervised pretraining and its probe are jobs of other ids now. Status says a submit takes their results over
    (and runs neither); a dry run says it would, lists neither to run and moves nothing; the report says so; the
    submit moves each result and job folder to its new id and runs no job; their metrics are the older runs'."""
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
    assert "2 job(s) missing (not run yet, or stopped): `study submit` (the grid, --cluster and --workdir as before) " \
           "takes over 2 of them (the older study's results above) and runs none of them" in said, said
    assert json.loads(run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])[1])[
        "to_take_over"] == moved
    code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and "study: would take over 2 result(s) of jobs an older version of study ran" in err, err
    assert out == "" and "would run 0 job(s) here; skipped: 4 done" in err, (out, err)  # none listed to run
    assert all(result_path(wd, old).exists() and not result_path(wd, new).exists() for old, new in moved.items())
    said = build_report(wd, env / "report", plan=plan, log=None).warnings  # not "would run their cells again"
    assert [w for w in said if "that its plan no longer has" in w] == [] and [
        w for w in said if w.startswith("2 result(s) ") and "until `study submit` takes them over" in w], said

    events = len(Ledger(wd, plan.name).events())
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "study: took over 2 result(s) of jobs an older version of study ran" in err, err
    added = Ledger(wd, plan.name).events()[events:]
    assert {(e["job"], e["state"], e.get("taken_over_from")) for e in added if e["event"] == "local"} == {
        (new, "done", old) for old, new in moved.items()}, added  # no job ran
    assert {(e["job"], e["event"], e.get("taken_over_by")) for e in added if e["event"] != "local"} == {
        (old, "set_aside", new) for old, new in moved.items()}, added  # the old ids' last lines
    for old, new in moved.items():
        record = read_result(result_path(wd, new))
        assert record["metrics"] == metrics[old] and record["taken_over_from"] == old
        assert record["depends_on"] == list(next(j for j in plan.jobs if j.id == new).depends_on)
        assert not result_path(wd, old).exists() and not (wd / "jobs" / old).exists()
        assert json.loads((wd / "jobs" / new / "job.json").read_text())["id"] == new
    assert (wd / "jobs" / new_ids["pretrain", "supervised"] / "encoder.pt").is_file()
    said = status(grid, wd)
    assert "older version of study" not in said, said
    assert json.loads(run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])[1])["to_take_over"] == {}
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
    part = run_cli(["status", str(second), "--workdir", str(wd), "--where", "stage=evaluate"])[1]
    assert "takes them over" in part and "of no job of its plan now" not in part, part  # its encoder: not the part's
    events = len(Ledger(wd, "second").events())
    code, _, err = run_cli(["submit", str(second), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 1 result(s)" in err, err
    assert all(result_path(wd, j.id).exists() for j in plan_grid(second).jobs)
    assert [e["state"] for e in Ledger(wd, "second").events()[events:] if e["event"] == "local"] == ["done"]


def _shared(env, *names: str) -> list:
    """Grid files `names` (each <name>.yaml in `env`) sharing one supervised pretraining, each with a probe of its own
    labeled sizes."""
    text = (grid_text("first").replace("method: [simclr]", "method: [supervised]")
            .replace("head: [16, 8],", "head: [16, 8], temperature: 0.5,"))
    sizes = ("[16, 32]", "[16]", "[32]")
    grids = [env / f"{name}.yaml" for name in names]
    for grid, name, size in zip(grids, names, sizes):
        grid.write_text(text.replace("name: first", f"name: {name}").replace("labeled_sizes: [16, 32]",
                                                                             f"labeled_sizes: {size}"))
    return grids


def _older_study_runs(monkeypatch, wd, *grids) -> None:
    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        for grid in grids:
            code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
            assert code == 0, err


def test_a_grid_that_did_not_run_the_shared_pretraining_takes_it_over_with_its_evaluation(env, monkeypatch):
    """As above, the second grid file submitted first after the update: the pretraining its probe read (the first's
    run) is taken over with the probe, not trained again under its new id; the first then takes over its own probe."""
    first, second = _shared(env, "first", "second")
    wd = env / "wd"
    _older_study_runs(monkeypatch, wd, first, second)
    events = len(Ledger(wd, "second").events())
    code, _, err = run_cli(["submit", str(second), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err, err
    assert [e["state"] for e in Ledger(wd, "second").events()[events:] if e["event"] == "local"] == ["done"] * 2
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 1 result(s)" in err and "started" not in err, err
    assert all(result_path(wd, j.id).exists() for grid in (first, second) for j in plan_grid(grid).jobs)


def test_a_grid_whose_every_job_another_grid_ran_takes_them_over_not_runs_them_again(env, monkeypatch):
    """Two grid files of one workdir with the same pretraining and probe (a random-init baseline two studies keep,
    say): the older study ran them for the first, and the second's submit found them done (its ledger has no line of
    them). After the update, the second submitted first: its status, dry run and submit take both over (the first's
    runs), none trains or probes again; the first then finds both done under the new ids."""
    first, second = _shared(env, "first", "second")
    second.write_text(second.read_text().replace("labeled_sizes: [16]", "labeled_sizes: [16, 32]"))
    wd = env / "wd"
    _older_study_runs(monkeypatch, wd, first, second)
    said = status(second, wd)
    assert "takes over 2 of them (the older study's results above) and runs none of them" in said, said
    code, out, err = run_cli(["submit", str(second), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and "would take over 2 result(s)" in err and "would run 0 job(s)" in err, (out, err)
    code, _, err = run_cli(["submit", str(second), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err and "started" not in err, err
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err and "started" not in err and "no job to run here" in err, err
    assert "older version of study" not in status(first, wd)
    assert all(result_path(wd, j.id).exists() for grid in (first, second) for j in plan_grid(grid).jobs)


def test_a_record_a_kill_left_beside_its_taken_over_copy_is_removed_by_the_next_submit(env, monkeypatch):
    """A kill between writing the taken-over record and removing the older one leaves both: the next submit removes
    the older (a second record of one run would count twice in a report of the workdir's results) and runs nothing."""
    (first,) = _shared(env, "first")
    wd = env / "wd"
    _older_study_runs(monkeypatch, wd, first)
    olds = {p.name: p.read_bytes() for p in (wd / "results").glob("*.json")}
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err, err
    for name, data in olds.items():  # as a kill after `_move`'s record and before its unlink leaves them
        (wd / "results" / name).write_bytes(data)
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err and "no job to run here" in err, err
    assert {p.name for p in (wd / "results").glob("*.json")} == {f"{j.id}.json" for j in plan_grid(first).jobs}


def test_a_pretraining_whose_encoder_file_is_gone_is_trained_again_not_taken_over(env, monkeypatch):
    """The older pretraining's job folder was removed to free space, its result kept: taken over, its evaluations
    would find no encoder. It trains again under its new id (and so its probe runs again on that encoder)."""
    (first,) = _shared(env, "first")
    wd = env / "wd"
    _older_study_runs(monkeypatch, wd, first)
    pre = next(j for j in plan_grid(first).jobs if j.stage == "pretrain")
    for folder in (wd / "jobs").iterdir():
        if (folder / "encoder.pt").exists():
            (folder / "encoder.pt").unlink()
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err and f"done pretrain {pre.id}" in err, err
    assert (wd / "jobs" / pre.id / "encoder.pt").is_file()


def test_an_evaluation_of_an_encoder_since_trained_again_under_its_new_id_is_not_taken_over(env, monkeypatch):
    """A grid file added after the update shares the first's pretraining and trains it again under its new id (its
    submit by a study that took over no run another grid's ledger names: `_ran_elsewhere` came later): the first's
    older probe scored the older encoder, not this one, so the first's submit takes neither over (status says so) and
    runs its probe again on the new encoder."""
    first, third = _shared(env, "first", "third")
    wd = env / "wd"
    _older_study_runs(monkeypatch, wd, first)
    with monkeypatch.context() as before_ran_elsewhere:
        before_ran_elsewhere.setattr(take_over, "_ran_elsewhere", lambda *args: {})
        code, _, err = run_cli(["submit", str(third), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err, err
    pre, probe = (next(j for j in plan_grid(first).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    assert result_path(wd, pre.id).exists() and not result_path(wd, probe.id).exists()
    said = status(first, wd)
    assert "takes them over" not in said and "\n2 result(s) of jobs an older version of study ran (" in said, said
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err and f"done evaluate {probe.id}" in err, err
    assert "taken_over_from" not in read_result(result_path(wd, probe.id))


def test_the_slurm_jobs_of_results_taken_over_are_not_asked_of_slurm_nor_said_live(env, slurm, monkeypatch):
    """The older study queued the jobs on Slurm, which no longer knows them (its accounting purged): once their
    results are taken over, their `queued` lines name no live job (each old id's latest line sets it aside, taken
    over), where they would read UNKNOWN, live, to status and `study cancel`. Read as a job again (the older study
    back), an old id reads missing, naming the id its result went to."""
    from types import SimpleNamespace

    from study.launch.state import classify

    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("upgraded").replace("method: [simclr]", "method: [supervised]")
                    .replace("head: [16, 8],", "head: [16, 8], temperature: 0.5,"))
    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        old_ids = [j.id for j in plan_grid(grid).jobs]
    _older_study_runs(monkeypatch, wd, grid)
    Ledger(wd, "upgraded").append([{"event": "queued", "batch": "b", "job": old, "stage": "pretrain",
                                    "slurm_job_id": str(101 + i), "folder": None} for i, old in enumerate(old_ids)])
    for i, old in enumerate(old_ids):  # their Slurm logs (submitit's `%j` folder: a line that records none)
        if i:  # the first keeps the log of its local run before the Slurm one, which is not the latest run's
            (wd / "logs" / f"{old}.log").unlink()
        slurm_log = wd / "submitit" / str(101 + i) / f"{101 + i}_0_log.err"
        slurm_log.parent.mkdir(parents=True)
        slurm_log.write_text(f"the Slurm log of {old}\n")
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err, err
    said = status(grid, wd)
    assert "live" not in said and "older version of study" not in said, said
    # each new id's log is its older Slurm run's, where it is (its array's folder, which other tasks share)
    logs = {j["id"]: j["log"] for j in json.loads(run_cli(["status", str(grid), "--workdir", str(wd), "--format",
                                                           "json"])[1])["jobs"]}
    assert [Path(logs[j.id]).read_text() for j in plan_grid(grid).jobs] == [f"the Slurm log of {old}\n"
                                                                           for old in old_ids], logs
    replay = Ledger(wd, "upgraded").replay()
    assert [(replay.latest[old]["event"], replay.latest[old]["reason"]) for old in old_ids] == [
        ("set_aside", "taken over")] * 2
    states = classify([SimpleNamespace(id=old, stage="pretrain") for old in old_ids], wd, replay)
    assert [(states[old].state, states[old].detail) for old in old_ids] == [
        ("missing", f"its result and job folder were taken over as job {new}'s, the id another version of study "
                    "gives its settings") for new in (j.id for j in plan_grid(grid).jobs)]


def test_a_taken_over_jobs_log_moves_to_its_new_id_and_a_newer_log_there_is_kept(env, monkeypatch):
    """The older study's local runs wrote logs/<old id>.log: the take-over renames each to the new id's name, and the
    `done` ledger line names it (status gives it); where the new id has a log already, that one is kept as it is
    (never overwritten) and the older one stays under its id."""
    (first,) = _shared(env, "first")
    wd = env / "wd"
    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        old_ids = [j.id for j in plan_grid(first).jobs]  # the plan's order: the grid file is the same
    _older_study_runs(monkeypatch, wd, first)
    plan = plan_grid(first)
    moved = dict(zip(old_ids, (j.id for j in plan.jobs)))
    logs = {old: (wd / "logs" / f"{old}.log").read_bytes() for old in moved}
    kept = next(j.id for j in plan.jobs if j.stage == "evaluate")
    (wd / "logs" / f"{kept}.log").write_text("a newer log\n")
    said = status(first, wd)  # as the dry run and the submit say it
    assert "takes them over (moves each result, job folder and log to its new id; none runs again)" in said, said
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err, err
    said = {j["id"]: j["log"] for j in json.loads(
        run_cli(["status", str(first), "--workdir", str(wd), "--format", "json"])[1])["jobs"]}
    for old, new in moved.items():
        assert said[new] == str((wd / "logs" / f"{new}.log").resolve()), said
        if new == kept:
            assert (wd / "logs" / f"{new}.log").read_text() == "a newer log\n"
            assert (wd / "logs" / f"{old}.log").read_bytes() == logs[old]
        else:
            assert (wd / "logs" / f"{new}.log").read_bytes() == logs[old] and not (wd / "logs" / f"{old}.log").exists()


def test_two_older_runs_of_one_job_written_0_and_0_0_are_one_taken_over_the_other_said_a_second_run(env, monkeypatch):
    """An older study that hashed `0` and `0.0` apart ran the grid file twice, its `warmup_epochs: 0` edited to
    `0.0` between: two runs of each job, which this version gives one id. The first of each by id is taken over
    (the probe with the pretraining it read); the other is said, by status and the report, a second run of those
    settings, which no submit takes over or runs again (not "queued or run again"), before and after the
    take-over. A dry run finds what it would take over once, and counts those jobs done."""
    from study.launch import take_over as take_over_module

    (grid,) = _shared(env, "second")
    wd = env / "wd"
    runs = []
    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        older_study.setattr(grid_jobs, "whole_numbers_as_ints", lambda obj: obj)
        for text in (grid.read_text(), grid.read_text().replace("warmup_epochs: 0}", "warmup_epochs: 0.0}")):
            grid.write_text(text)
            runs.append([j.id for j in plan_grid(grid).jobs])
            code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
            assert code == 0, err
    plan = plan_grid(grid)
    first, second = (runs[0], runs[1]) if runs[0][0] < runs[1][0] else (runs[1], runs[0])  # by the pretraining's id
    news = [j.id for j in plan.jobs]
    assert len({*runs[0], *runs[1], *news}) == 6, (runs, news)  # four older ids, two of now
    said = status(grid, wd)
    assert "takes over 2 of them (the older study's results above) and runs none of them" in said, said
    assert all(f"{o} (now {n}, as {f})" in said for o, n, f in zip(second, news, first)) \
        and "each a second run of the settings of the older job named after `as`" in said, said
    assert "queued or run again" not in said, said
    got = json.loads(run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])[1])
    assert got["to_take_over"] == dict(zip(first, news)) and got["second_runs"] == dict(zip(second, first)), got
    warned = build_report(wd, env / "report", plan=plan, log=None).warnings
    assert [w for w in warned if "would run their cells again" in w] == [] and [
        w for w in warned if w.startswith("2 result(s) ") and "are second runs" in w], warned

    calls, counted = [], take_over_module.to_take_over
    with monkeypatch.context() as counting:
        counting.setattr(take_over_module, "to_take_over", lambda *a: calls.append(a) or counted(*a))
        code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and out == "" and "would take over 2 result(s)" in err and "would run 0 job(s) here" in err, err
    assert len(calls) == 1, calls  # take_over's, passed on to the dry run's states

    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err and "started" not in err, err
    assert [read_result(result_path(wd, n))["taken_over_from"] for n in news] == first
    assert all(result_path(wd, o).exists() for o in second)  # left where they are, off the plan
    said = status(grid, wd)
    assert re.search(r"^pretrain +1 +0 +0 +0 +0 +0 +0$", said, re.M) and "queued or run again" not in said, said
    assert f"{second[0]} (now {news[0]}, as {first[0]})" in said and "takes them over" not in said, said
    got = json.loads(run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])[1])
    assert got["to_take_over"] == {} and got["second_runs"] == dict(zip(second, first)), got  # taken before
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err and "no job to run here" in err, err


def test_an_unfinished_older_pretraining_is_taken_over_and_resumes_from_its_checkpoint(env, monkeypatch):
    """The older study's supervised pretraining stopped at step 3 of 6 (its command killed: a checkpoint, no result,
    not live) and its probe never ran. Status says a submit takes it over and resumes it; a dry run moves nothing;
    the submit moves its folder and log to the new id (a `set_aside` line of the old), where the run resumes from
    step 3 (not 0) and ends with the encoder the older study's whole run wrote, byte for byte."""
    from study.hashing import file_sha256

    (grid,) = _shared(env, "first")
    wd = env / "wd"
    old_pre, _, whole_run = _unfinished_shared_pretraining(monkeypatch, wd, grid)
    plan = plan_grid(grid)
    pre, probe = (next(j for j in plan.jobs if j.stage == s) for s in ("pretrain", "evaluate"))

    said = status(grid, wd)
    assert (f"\n1 job(s) an older version of study started did not finish ({old_pre} (now {pre.id}): checkpoint at "
            f"step 3/6): the same settings as jobs of this grid file, which this version of study gives other ids: "
            f"`study submit` takes them over") in said, said
    assert json.loads(run_cli(["status", str(grid), "--workdir", str(wd), "--format", "json"])[1])["to_resume"] == {
        old_pre: pre.id}
    code, out, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and "study: would take over 1 job(s) an older version of study started" in err, err
    assert (wd / "jobs" / old_pre / "checkpoint.pt").is_file() and not (wd / "jobs" / pre.id).exists()

    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "study: took over 1 job(s) an older version of study started" in err, err
    assert not (wd / "jobs" / old_pre).exists() and not (wd / "logs" / f"{old_pre}.log").exists()
    assert read_result(result_path(wd, pre.id))["protocol"]["resumed_from_steps"] == [3]
    assert file_sha256(wd / "jobs" / pre.id / "encoder.pt") == whole_run
    assert result_path(wd, probe.id).exists()
    latest = Ledger(wd, plan.name).replay().latest
    assert (latest[old_pre]["event"], latest[old_pre]["taken_over_by"]) == ("set_aside", pre.id)
    assert "older version of study" not in status(grid, wd)


def test_of_two_older_runs_of_a_random_encoder_the_one_its_evaluations_read_is_taken_over(env, monkeypatch):
    """A random-init encoder's job ran twice under an older study that hashed its learning rate: the grid's lr was
    edited after the first run's pretraining and before its probe (`--where stage=pretrain`), so only the second
    run's probe ran. This version gives both runs one id: the run taken over is the one whose probe goes with it
    (whatever the ids' order), so nothing runs again, and the other is named a second run, not "run again"."""
    from study.launch.take_over import to_take_over

    grid, wd = env / "g.yaml", env / "wd"
    text = grid_text("twice_random").replace("method: [simclr]", "method: [random]")
    texts = [text, text.replace("optim: {warmup_epochs: 0}", "optim: {warmup_epochs: 0, lr: 0.5}")]
    with monkeypatch.context() as older_study:  # the older study hashed every setting of a random job
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        ids = []
        for t in texts:
            grid.write_text(t)
            ids.append([j.id for j in plan_grid(grid).jobs])
        # the run without its probe: the first by id, which a choice by id alone would take
        partial, full = sorted(range(2), key=lambda i: ids[i][0])
        for i, where in ((partial, ["--where", "stage=pretrain"]), (full, [])):
            grid.write_text(texts[i])
            code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd), *where])
            assert code == 0, err
    plan = plan_grid(grid)
    news = [j.id for j in plan.jobs]
    assert not result_path(wd, ids[partial][1]).exists() and result_path(wd, ids[full][1]).exists()
    assert to_take_over(plan, wd) == dict(zip(ids[full], news))
    said = status(grid, wd)
    assert f"{ids[partial][0]} (now {news[0]}, as {ids[full][0]})" in said and "queued or run again" not in said, said
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over 2 result(s)" in err and "started" not in err, err
    assert [read_result(result_path(wd, n))["taken_over_from"] for n in news] == ids[full]


def test_a_local_dry_run_checks_the_images_of_no_job_it_would_take_over(env, monkeypatch):
    """The dataset moved after the older study ran every job: a local submit takes each result over and runs
    nothing, so it reads no image and is not refused for them; its dry run says the same (the jobs it would take
    over count done, also for the files and roots it checks), not an error the submit never gives."""
    import shutil

    from launch_helpers import build_manifests

    monkeypatch.setenv("STUDY_MANIFESTS", str(env / "data" / "manifests"))
    build_manifests(env / "data", ("gone",))
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("gone_images", datasets=("gone",)).replace("method: [simclr]", "method: [supervised]")
                    .replace("head: [16, 8],", "head: [16, 8], temperature: 0.5,"))
    _older_study_runs(monkeypatch, wd, grid)
    shutil.rmtree(env / "data" / "images" / "gone" / "train")
    cmd = ["submit", str(grid), "--cluster", "local", "--workdir", str(wd)]
    code, out, err = run_cli(cmd + ["--dry-run"])
    assert code == 0 and "would take over 2 result(s)" in err and "would run 0 job(s) here" in err, err
    code, _, err = run_cli(cmd)
    assert code == 0 and "took over 2 result(s)" in err and "started" not in err, err


def _unfinished_shared_pretraining(monkeypatch, wd, *grids) -> tuple[str, str, str]:
    """The grids' older study runs (`_older_study_runs`), then, as a kill at step 3 of their shared pretraining leaves
    them: its checkpoint at step 3, no result, no encoder, and no probe run. Returns (its older id, its id now, the
    sha256 of the encoder its whole run wrote)."""
    from study.hashing import file_sha256
    from study.launch.runner import read_job_file
    from study.train import PretrainConfig, StopRequested, pretrain

    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        olds = {grid: [j.id for j in plan_grid(grid).jobs] for grid in grids}
    _older_study_runs(monkeypatch, wd, *grids)
    old_pre = olds[grids[0]][0]
    whole_run = file_sha256(wd / "jobs" / old_pre / "encoder.pt")
    for old in {o for ids in olds.values() for o in ids}:
        result_path(wd, old).unlink()
    for name in ("encoder.pt", "checkpoint.pt"):
        (wd / "jobs" / old_pre / name).unlink()
    config = PretrainConfig.from_dict(read_job_file(wd / "jobs" / old_pre / "job.json").config["pretrain"])
    with pytest.raises(StopRequested):
        pretrain(config, wd / "jobs" / old_pre, stop_at=3)
    return old_pre, next(j.id for j in plan_grid(grids[0]).jobs if j.stage == "pretrain"), whole_run


def test_of_two_unfinished_older_runs_of_one_job_the_one_furthest_on_resumes(env):
    """Two older ids of the plan's pretraining (`0` and `0.0`, which an older study hashed apart), each stopped with
    a checkpoint: the one whose checkpoint holds the more steps is taken over to resume, not the first by id (which
    would train again the steps the other had done)."""
    import torch

    from study.train.run_files import CHECKPOINT, CHECKPOINT_FORMAT

    (grid,) = _shared(env, "second")
    wd = env / "wd"
    plan = plan_grid(grid)
    new = next(j.id for j in plan.jobs if j.stage == "pretrain")
    for old, step in (("0000older000", 2), ("ffffolder000", 5)):
        (wd / "jobs" / old).mkdir(parents=True)
        torch.save({"format": CHECKPOINT_FORMAT, "step": step, "total_steps": 6}, wd / "jobs" / old / CHECKPOINT)
    assert take_over.resumable(plan, wd, {"0000older000": new, "ffffolder000": new}, {}) == {"ffffolder000": new}
    assert take_over.resumable(plan, wd, {"0000older000": new}, {}) == {"0000older000": new}


def test_an_unfinished_older_pretraining_another_grid_runs_still_is_not_taken_over_locally(env, monkeypatch):
    """Two grid files share the older study's unfinished pretraining; the second's `study submit --cluster local`
    (of the older study, still alive) runs it again, its worker writing to jobs/<older id>/: only the second's ledger
    says so. The first's status and submit take it for live: neither says it is taken over, and the submit leaves
    its folder where that worker writes (it trains the pretraining under its new id from the start)."""
    import os
    import socket

    from study.launch.locks import try_lock

    first, second = _shared(env, "first", "second")
    wd = env / "wd"
    old_pre, pre, _ = _unfinished_shared_pretraining(monkeypatch, wd, first, second)
    held = try_lock(wd / "locks" / f"{old_pre}.lock")  # the second's worker, alive
    try:
        Ledger(wd, "second").append([{"event": "local", "job": old_pre, "stage": "pretrain", "state": "running",
                                      "pid": os.getpid(), "host": socket.gethostname(),
                                      "grid_file": str(second.resolve())}])
        got = json.loads(run_cli(["status", str(first), "--workdir", str(wd), "--format", "json"])[1])
        assert got["to_resume"] == {} and old_pre not in got["checkpoints_off_plan"], got
        assert got["checkpoints_running_elsewhere"] == {old_pre: {".": [3, 6]}}, got
        said = status(first, wd)
        assert "takes them over" not in said
        assert (f"1 job(s) off this grid file's plan did not finish and may still run elsewhere ({old_pre}: "
                in said), said
        code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd),
                                "--where", "stage=pretrain"])
        assert code == 0 and "took over" not in err, err
        assert (wd / "jobs" / old_pre / "checkpoint.pt").is_file()
        assert "taken_over_from" not in read_result(result_path(wd, pre))
    finally:
        os.close(held)


def test_an_unfinished_older_pretraining_another_grid_queued_on_slurm_is_not_taken_over(env, slurm, monkeypatch):
    """As above, the second grid's older study queued the shared pretraining on Slurm, which runs it (RUNNING), or
    cannot say (sacct knows no such job: UNKNOWN): the first's dry run and status say no take-over, and its submit
    moves nothing. Once Slurm says it ended (FAILED), the first's submit takes it over and resumes it."""
    first, second = _shared(env, "first", "second")
    wd = env / "wd"
    old_pre, pre, _ = _unfinished_shared_pretraining(monkeypatch, wd, first, second)
    Ledger(wd, "second").append([{"event": "queued", "batch": "b", "job": old_pre, "stage": "pretrain",
                                  "slurm_job_id": "101", "folder": None, "grid_file": str(second.resolve())}])
    for sacct in ("101|RUNNING|node1|Unknown\n", ""):
        (slurm / "sacct").write_text(sacct)
        got = json.loads(run_cli(["status", str(first), "--workdir", str(wd), "--format", "json"])[1])
        assert got["to_resume"] == {}, (sacct, got)
        code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
        assert code == 0 and "would take over" not in err, (sacct, err)
    (slurm / "sacct").write_text("101|FAILED|node1|2026-01-01T00:00:00\n")
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd),
                            "--where", "stage=pretrain"])
    assert code == 0 and "took over 1 job(s)" in err, err
    assert read_result(result_path(wd, pre))["protocol"]["resumed_from_steps"] == [3]


def _interrupted_retry_of_unfinished_pretraining(env, monkeypatch) -> tuple:
    """(grid file, workdir, older id, id now) of a grid whose older study left its pretraining unfinished at step 3
    (`_unfinished_shared_pretraining`), then wrote the `intent` of a Slurm submit of it, killed before its `queued`
    lines."""
    (first,) = _shared(env, "first")
    wd = env / "wd"
    old_pre, pre, _ = _unfinished_shared_pretraining(monkeypatch, wd, first)
    Ledger(wd, "first").append([{"event": "intent", "batch": "b2", "name": "study-first-pretrain-b2",
                                 "cluster": "slurm", "stage": "pretrain", "jobs": [old_pre],
                                 "folder": str(wd / "submitit" / "study-first-pretrain-b2"),
                                 "grid_file": str(first.resolve())}])
    return first, wd, old_pre, pre


def test_an_unfinished_older_pretraining_an_interrupted_submit_may_have_queued_is_not_taken_over(env, slurm,
                                                                                             monkeypatch):
    """The older study's `study submit --retry-failed` of the grid was killed after sbatch queued the unfinished
    pretraining again and before it wrote the `queued` lines: only its `intent` says so, and Slurm runs it. A dry
    run, which settles nothing, must not count on moving the folder of a job such an intent names; the submit (the
    update's) settles the intent first, finds the array Slurm runs, and moves nothing either."""
    first, wd, old_pre, _ = _interrupted_retry_of_unfinished_pretraining(env, monkeypatch)
    (slurm / "squeue_name").write_text("105\n")
    (slurm / "sacct").write_text("105|RUNNING|node1|Unknown\n")
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd), "--dry-run"])
    assert code == 0 and "would take over" not in err, err
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd),
                            "--where", "stage=pretrain"])
    assert code == 0 and "took over" not in err, err
    assert (wd / "jobs" / old_pre / "checkpoint.pt").is_file()


def test_status_says_why_an_unfinished_older_evaluation_of_an_encoder_trained_again_runs_from_the_start(env,
                                                                                                  monkeypatch):
    """The older study's fine-tuning evaluation stopped midway (a checkpoint of its run at 16 labels, no result);
    a grid file added since trained the shared pretraining again under its new id. The evaluation's new id never
    ran, and no other older run of it is taken over: status says it runs from the start because the encoder it read
    is not the plan's job's, not for reasons that do not hold."""
    import shutil

    first, third = _shared(env, "first", "third")
    wd = env / "wd"
    with monkeypatch.context() as older_study:
        older_study.setattr(grid_jobs, "unread_settings", lambda method: ())
        old_pre, old_probe = (j.id for j in plan_grid(first).jobs)
    _older_study_runs(monkeypatch, wd, first)
    result_path(wd, old_probe).unlink()
    (wd / "jobs" / old_probe / "finetune-16").mkdir()
    shutil.copy(wd / "jobs" / old_pre / "checkpoint.pt", wd / "jobs" / old_probe / "finetune-16" / "checkpoint.pt")
    with monkeypatch.context() as before_ran_elsewhere:  # the third's submit by a study that retrained it
        before_ran_elsewhere.setattr(take_over, "_ran_elsewhere", lambda *args: {})
        code, _, err = run_cli(["submit", str(third), "--cluster", "local", "--workdir", str(wd)])
    assert code == 0 and "took over" not in err, err
    probe = next(j.id for j in plan_grid(first).jobs if j.stage == "evaluate")
    said = status(first, wd)
    assert f"({old_probe} (now {probe}): checkpoints: finetune-16 at step 6/6)" in said, said
    assert "an encoder it read is not the plan's job's: trained again under its new id" in said, said


def test_an_unfinished_older_pretraining_an_interrupted_submit_queued_nothing_of_is_taken_over(env, slurm,
                                                                                               monkeypatch):
    """As above, but the killed submit's sbatch had queued nothing (Slurm knows no array of its name): the intent
    is lost, and no run of the job may be in flight. The update's submit settles that intent before it decides what
    to take over (it settled it only after, so the job read as maybe running: its pretraining trained again under its
    new id from the start beside the checkpoint at step 3), and resumes the job from its checkpoint."""
    first, wd, old_pre, pre = _interrupted_retry_of_unfinished_pretraining(env, monkeypatch)
    code, _, err = run_cli(["submit", str(first), "--cluster", "local", "--workdir", str(wd),
                            "--where", "stage=pretrain"])
    assert code == 0 and "took over 1 job(s)" in err, err
    assert not (wd / "jobs" / old_pre).exists()
    assert read_result(result_path(wd, pre))["protocol"]["resumed_from_steps"] == [3]
    assert "b2" in {e["batch"] for e in Ledger(wd, "first").events() if e["event"] == "lost"}
