"""study.launch.cli: `study submit` refuses flags that do not go with its --cluster, and a profile error comes before
any other, each before a grid, manifest or cluster is touched; results of manifests since rebuilt stop it."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from launch_helpers import grid_text, run_cli

from study.cli import main
from study.errors import StudyError
from study.grids import Job, plan_grid
from study.launch.cli import _refuse_stale_results
from study.launch.ledger import Ledger
from study.results import write_result


@pytest.mark.parametrize("flags, message", [
    (["--cluster", "local", "--dry-run", "--set-aside-stale"], "study: error: --set-aside-stale moves results; "
                                                               "--dry-run changes nothing: give one of them"),
    (["--cluster", "slurm", "--workers", "2"], "study: error: --workers sets how many jobs a --cluster local submit "
                                                "runs at once; on Slurm the profile's max_parallel_gpus and "
                                                "max_parallel_jobs throttle each array"),
    (["--cluster", "slurm", "--dry-run", "--set-aside-stale"], "study: error: --set-aside-stale moves results; "
                                                               "--dry-run changes nothing: give one of them"),
    (["--cluster", "local", "--dry-run", "--rerun", "--only", "a1"], "study: error: --rerun moves results; --dry-run "
                                                                      "changes nothing: give one of them"),
    (["--cluster", "slurm", "--rerun"], "study: error: --rerun runs again the jobs --only or --where selects: give one "
                                        "of them (to run a whole grid again, submit it to a new --workdir)"),
    (["--cluster", "local", "--only", "a1,", "--only", " , "], "study: error: --only ' , ': names no job: give ids"),
    (["--cluster", "slurm", "--no-check"], "study: error: --no-check goes with --dry-run: the jobs a submit queues "
                                            "read their manifests"),
])
def test_a_flag_of_the_other_cluster_is_refused_before_the_grid_is_read(tmp_path, capsys, flags, message):
    """The grid does not exist: the flag is the first thing to fix, and nothing is written."""
    assert main(["submit", str(tmp_path / "no-such-grid.yaml"), "--workdir", str(tmp_path / "wd"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", [True, False])
def test_a_submit_to_a_workdir_that_is_a_file_names_it_and_whence(env, capsys, monkeypatch, flag):
    """A file where the workdir goes (given with --workdir, or $STUDY_WORKDIR under a file) is named as the user
    gave it, not as the first folder inside it that cannot be made; nothing is written."""
    (env / "g.yaml").write_text(grid_text("g"))
    (env / "f").write_text("not a folder")
    if flag:
        argv, said = ["--workdir", str(env / "f")], f"--workdir {env / 'f'}: exists and is not a folder"
    else:
        wd, argv = env / "f" / "wd", []
        said = f"$STUDY_WORKDIR {wd}: cannot be a folder: {env / 'f'} is a file"
        monkeypatch.setenv("STUDY_WORKDIR", str(wd))
    assert main(["submit", str(env / "g.yaml"), "--cluster", "local", *argv]) == 2
    assert capsys.readouterr().err == f"study: error: {said}\n"
    assert (env / "f").read_text() == "not a folder"
    (env / "link").symlink_to(env / "gone")  # a workdir on a disk not mounted now: named, not a FileExistsError
    assert main(["submit", str(env / "g.yaml"), "--cluster", "local", "--workdir", str(env / "link")]) == 2
    assert capsys.readouterr().err == f"study: error: --workdir {env / 'link'}: a link to {env / 'gone'}, which " \
                                      "does not exist (a folder unmounted?)\n"
    assert not (env / "gone").exists()


def test_a_slurm_submit_names_a_profile_without_partition_before_a_missing_manifest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "no-manifests"))
    grid = tmp_path / "g.yaml"
    grid.write_text(grid_text("nopart"))
    profile = tmp_path / "nopart.yaml"
    profile.write_text("name: nopart\ngpus_per_node: 0\ncpus_per_node: 8\nmem_per_node: 8G\n"
                       "stages: {pretrain: {gpus: 0, cpus: 1, mem: 1G, time: 10m},"
                       " evaluate: {gpus: 0, cpus: 1, mem: 1G, time: 10m}}\n")
    assert main(["submit", str(grid), "--cluster", "slurm", "--profile", str(profile), "--workdir",
                 str(tmp_path / "wd")]) == 2
    err = capsys.readouterr().err
    assert "no 'partition'" in err and "not found" not in err, err
    assert not (tmp_path / "wd").exists()


def test_a_submit_over_results_of_rebuilt_manifests_lists_five_then_dots(env):
    """Each result computed on a manifest since rebuilt is named up to five, then `...`; the way out names the
    workdir."""
    wd = env / "wd"
    jobs = [Job(id=f"p{i}", stage="pretrain", config={"axes": {}}) for i in range(7)]
    for job in jobs[:6]:
        write_result(wd, {"job_id": job.id, "stage": "pretrain", "grid": "g", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}],
                          "protocol": {"manifest": "toy_train", "manifest_content_hash": "0" * 64}})
    with pytest.raises(StudyError) as e:
        _refuse_stale_results(SimpleNamespace(jobs=jobs), wd)
    lines = str(e.value).splitlines()
    assert lines[0] == f"6 result(s) in {wd.resolve()}/results were computed on a manifest since rebuilt under the " \
                       "same name, or an encoder file since replaced:"
    assert [ln.split()[2] for ln in lines[1:6]] == ["p0:", "p1:", "p2:", "p3:", "p4:"] and lines[6] == "  ..."
    assert "or submit to a new --workdir" in lines[7]
    with pytest.raises(StudyError) as e:
        _refuse_stale_results(SimpleNamespace(jobs=jobs[:5]), wd)  # five: each named, no dots
    assert str(e.value).startswith("5 result(s)") and "\n  ...\n" not in str(e.value)
    _refuse_stale_results(SimpleNamespace(jobs=jobs[6:]), wd)  # a job without a result: nothing to refuse


def test_set_aside_stale_moves_the_stale_results_and_job_folders_and_lets_the_submit_go_on(env, capsys):
    """A result of a rebuilt manifest, and an evaluation of an encoder pretrained on one (its own manifests current:
    its encoder is trained again, so its result is stale too), are moved with their job folders to stale/<time>/;
    a result of the current manifest stays; then nothing stops the submit."""
    from study.manifests.store import load_meta

    wd, now = env / "wd", load_meta("toy_train")["content_hash"]
    old = {"manifest": "toy_train", "manifest_content_hash": "0" * 64}
    protocols = {"p0": old, "p1": {"manifest": "toy_train", "manifest_content_hash": now},
                 "e0": {"train_manifest": "toy_train", "train_manifest_content_hash": now, "pretrain": old}}
    jobs = [Job(id=i, stage="evaluate" if i.startswith("e") else "pretrain", config={"axes": {}}) for i in protocols]
    for job in jobs:
        write_result(wd, {"job_id": job.id, "stage": job.stage, "grid": "g", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}], "protocol": protocols[job.id]})
        (wd / "jobs" / job.id).mkdir(parents=True)
        (wd / "jobs" / job.id / "encoder.pt").write_text(job.id)
    with pytest.raises(StudyError) as e:
        _refuse_stale_results(SimpleNamespace(jobs=jobs), wd)
    assert str(e.value).startswith("2 result(s)") and "`study submit --set-aside-stale` moves" in str(e.value)
    assert "evaluate job e0: its encoder was pretrained on manifest toy_train with content 000000000000" in str(e.value)
    plan = SimpleNamespace(jobs=jobs, name="g", path=None)
    _refuse_stale_results(plan, wd, set_aside=True)
    [folder] = (wd / "stale").iterdir()
    assert sorted(p.name for p in (folder / "results").iterdir()) == ["e0.json", "p0.json"]
    assert (folder / "jobs" / "p0" / "encoder.pt").read_text() == "p0"
    assert sorted(p.name for p in (wd / "results").glob("*.json")) == ["p1.json"]
    assert sorted(p.name for p in (wd / "jobs").iterdir()) == ["p1"]
    assert (f"set aside 2 result(s) computed on a manifest since rebuilt or an encoder file since replaced "
            f"(and their job folders) in {folder}") in capsys.readouterr().err
    _refuse_stale_results(SimpleNamespace(jobs=jobs), wd)  # nothing stale is left
    latest = Ledger(wd, "g").replay().latest  # each reads missing, not failed for a result gone: it runs again
    assert {j: (e["event"], e["folder"]) for j, e in latest.items()} == {"p0": ("set_aside", str(folder)),
                                                                         "e0": ("set_aside", str(folder))}
    from study.launch.state import classify

    state = classify(jobs, wd, Ledger(wd, "g").replay())["p0"]
    assert (state.state, state.detail) == ("missing", "its result, computed on a manifest since rebuilt, was set "
                                                      f"aside in {folder}")


def _stale_pretraining_and_its_evaluation(env, eval_protocol=None):
    """p0, a result of a rebuilt manifest, and e0, an evaluation of its encoder (`eval_protocol`: its record's, by
    default one that names no pretraining: an encoder file of an older study), each with a job folder."""
    wd = env / "wd"
    p0 = Job(id="p0", stage="pretrain", config={"axes": {}})
    e0 = Job(id="e0", stage="evaluate", config={"axes": {}}, depends_on=("p0",))
    protocols = {"p0": {"manifest": "toy_train", "manifest_content_hash": "0" * 64}, "e0": eval_protocol or {}}
    for job in (p0, e0):
        write_result(wd, {"job_id": job.id, "stage": job.stage, "grid": "g", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}], "protocol": protocols[job.id]})
        (wd / "jobs" / job.id).mkdir(parents=True)
    return wd, SimpleNamespace(jobs=[p0, e0], name="g", path=None)


def test_an_evaluation_of_a_stale_pretraining_is_stale_though_its_record_names_no_pretraining(env, capsys):
    """Its encoder is trained again: kept, its result would be of the old one, counted done beside the new one.
    With --only, the message says which of them run now."""
    wd, plan = _stale_pretraining_and_its_evaluation(env)
    with pytest.raises(StudyError) as e:
        _refuse_stale_results(plan, wd)
    assert str(e.value).startswith("2 result(s)") and "evaluate job e0: it used the result of job p0" in str(e.value)
    _refuse_stale_results(plan, wd, set_aside=True, only={"p0"})
    assert not list((wd / "results").glob("*.json")) and not list((wd / "jobs").iterdir())
    assert "their jobs run again (those --only or --where selects now, the others at a submit without them)" in \
        capsys.readouterr().err


def _stale_grid(env):
    """(grid file, workdir, its pretraining job, its evaluation) of a tiny grid whose two jobs have a result, the
    pretraining's of a manifest since rebuilt."""
    grid, wd = env / "g.yaml", env / "wd"
    grid.write_text(grid_text("sa"))
    pre, ev = (next(j for j in plan_grid(grid).jobs if j.stage == s) for s in ("pretrain", "evaluate"))
    for job, protocol in ((pre, {"manifest": "toy_train", "manifest_content_hash": "0" * 64}), (ev, {})):
        write_result(wd, {"job_id": job.id, "stage": job.stage, "grid": "sa", "axes": {},
                          "metrics": [{"metric": "loss", "value": 1.0}], "protocol": protocol})
    return grid, wd, pre, ev


def test_a_submit_where_sets_aside_the_evaluation_of_a_stale_pretraining_it_selects(env, slurm, capsys):
    """`--where stage=pretrain --set-aside-stale`: the stale pretraining runs again, so its evaluation's result
    (not selected) is set aside too: kept, it would count done on the old encoder. (slurm: stand-ins, no cluster)"""
    grid, wd, pre, ev = _stale_grid(env)
    assert main(["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"), "--workdir",
                 str(wd), "--where", "stage=pretrain", "--set-aside-stale"]) == 0
    err = capsys.readouterr().err
    assert "set aside 2 result(s)" in err and "queued 1 job(s)" in err, err
    assert not list((wd / "results").glob("*.json"))


def test_a_rerun_that_stale_results_stop_moves_nothing(env, slurm, capsys):
    """The stale results are refused before --rerun sets any result aside: it set the chosen evaluation's aside, then
    stopped at its stale pretraining, a submit half done. With --set-aside-stale they go, and the pretraining chosen
    is queued (slurm: stand-ins)."""
    grid, wd, pre, ev = _stale_grid(env)
    argv = ["submit", str(grid), "--cluster", "slurm", "--profile", str(env / "profile.yaml"), "--workdir", str(wd),
            "--rerun"]
    assert main(argv + ["--only", ev.id]) == 2
    assert "2 result(s) in" in capsys.readouterr().err
    assert (wd / "results" / f"{ev.id}.json").is_file() and not (wd / "stale").exists()
    assert main(argv + ["--where", "stage=pretrain", "--set-aside-stale"]) == 0
    err = capsys.readouterr().err
    assert "set aside 2 result(s) computed on a manifest since rebuilt" in err and "queued 1 job(s)" in err, err
    assert not list((wd / "results").glob("*.json"))


def test_rerun_sets_aside_the_chosen_done_jobs_and_the_done_jobs_that_used_them_and_says_so(env, monkeypatch):
    """`rerun_results`: the chosen jobs with a result or a job folder, and (transitively) the jobs with a result that
    depend on one; not a chosen job without either. Their `set_aside` lines carry the reason, which status says; a
    dependent, or a chosen job, that runs or waits to run stops it, naming --rerun."""
    import os
    import socket

    from study.launch.stale import refuse_live_dependents, rerun_results, set_aside
    from study.launch.state import classify

    wd, plan = _stale_pretraining_and_its_evaluation(env)
    assert rerun_results(plan.jobs, wd, {"e0"}) == {"e0": "evaluate job e0"}
    both = {"p0": "pretrain job p0", "e0": "evaluate job e0: it used the result of job p0, which runs again"}
    assert rerun_results(plan.jobs, wd, {"p0"}) == both
    # its result removed by hand: read failed (its ledger says done), it ran nowhere, and --retry-failed resumed its
    # checkpoint at its end; its folder is set aside, so that it reads missing and trains from step 0
    (wd / "results" / "p0.json").unlink()
    assert rerun_results(plan.jobs, wd, {"p0"}) == both
    (wd / "jobs" / "p0").rmdir()  # no trace of it here: it runs as any missing job; its evaluation used it
    assert rerun_results(plan.jobs, wd, {"p0"}) == {"e0": both["e0"]}
    (wd / "results" / "e0.json").unlink()  # now queued again by a command
    Ledger(wd, "g").append([{"event": "local", "job": "e0", "stage": "evaluate", "state": "pending",
                             "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    with pytest.raises(StudyError, match=r"^--rerun: 1 job\(s\) to set aside, or that use a result to set aside, run "
                                         r"or wait to run: evaluate e0 \(pending\)"):
        refuse_live_dependents(plan, wd, {"p0"}, flag="--rerun")
    # a chosen job of a folder and no result that runs or waits to run: its folder is not taken from under it
    with pytest.raises(StudyError, match=r"^--rerun: 1 job\(s\) to set aside, .*: evaluate e0 \(pending\);"):
        refuse_live_dependents(plan, wd, rerun_results(plan.jobs, wd, {"e0"}), flag="--rerun")
    monkeypatch.chdir(wd.parent)  # a workdir given relative: the ledger names the folder whatever the reader's cwd
    folder = set_aside(plan, wd.name, ["e0"], reason="rerun")
    assert folder.is_absolute() and (folder / "jobs" / "e0").is_dir()
    state = classify(plan.jobs, wd, Ledger(wd, "g").replay())["e0"]
    assert (state.state, state.detail) == ("missing", f"its result, to run again, was set aside in {folder}")


def test_set_aside_stale_refuses_while_a_dependent_runs_and_moves_nothing(env):
    """An evaluation another command runs (or has queued) reads the encoder in jobs/<pretraining>/: moved, it fails
    or scores the old encoder; nothing is moved, the ledger untouched."""
    import os
    import socket

    wd, plan = _stale_pretraining_and_its_evaluation(env)
    (wd / "results" / "e0.json").unlink()
    Ledger(wd, "g").append([{"event": "local", "job": "e0", "stage": "evaluate", "state": "pending",
                             "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    with pytest.raises(StudyError, match=r"--set-aside-stale: 1 job\(s\) to set aside, or that use a result to set "
                                         r"aside, run or wait to run: evaluate e0 \(pending\); nothing was moved"):
        _refuse_stale_results(plan, wd, set_aside=True)
    assert (wd / "results" / "p0.json").exists() and (wd / "jobs" / "p0").is_dir() and not (wd / "stale").exists()
    assert Ledger(wd, "g").replay().latest["e0"]["event"] == "local"


def test_a_set_aside_cut_short_leaves_no_result_without_its_line_nor_a_checkpoint_without_its_result(env, monkeypatch):
    """A move that fails (or a kill) midway: each job whose result moved reads missing (its `set_aside` line is
    written first; without it a local `done` or a COMPLETED Slurm job reads failed), and a job folder is moved before
    its result, so that a result is never gone while a checkpoint stays for the rerun to resume."""
    import os

    import study.launch.stale as stale_mod
    from study.launch.state import classify

    wd, plan = _stale_pretraining_and_its_evaluation(env)
    Ledger(wd, "g").append([{"event": "local", "job": j, "stage": "pretrain", "state": "done", "log": None}
                            for j in ("p0", "e0")])
    real = os.replace

    def replace(src, dest):
        if os.path.basename(src) == "e0":
            raise OSError(18, "Invalid cross-device link")
        real(src, dest)

    monkeypatch.setattr(stale_mod.os, "replace", replace)
    with pytest.raises(StudyError, match="cannot move .*e0 to"):
        _refuse_stale_results(plan, wd, set_aside=True)
    states = classify(plan.jobs, wd, Ledger(wd, "g").replay())
    assert (states["p0"].state, states["e0"].state) == ("missing", "done")
    assert (wd / "jobs" / "e0").is_dir() and (wd / "results" / "e0.json").exists()


def test_a_set_aside_found_done_by_another_command_meanwhile_moves_and_says_nothing(env, monkeypatch, capsys):
    """Read again under the submit lock, nothing is stale any more: no empty stale/<time>/ folder, no message."""
    import study.launch.stale as stale_mod

    wd, plan = _stale_pretraining_and_its_evaluation(env)
    real, calls = stale_mod.stale_results, []
    monkeypatch.setattr(stale_mod, "stale_results", lambda jobs, w: calls.append(1) or (real(jobs, w) if len(calls) == 1
                                                                                         else {}))
    _refuse_stale_results(plan, wd, set_aside=True)
    assert len(calls) == 2 and not (wd / "stale").exists() and "set aside" not in capsys.readouterr().err


def test_set_aside_moves_a_result_whose_job_has_no_folder_here(env):
    """A result copied in from another workdir comes without its jobs/<id>/: it is set aside all the same."""
    import shutil

    wd, plan = _stale_pretraining_and_its_evaluation(env)
    shutil.rmtree(wd / "jobs" / "p0")
    _refuse_stale_results(plan, wd, set_aside=True)
    [folder] = (wd / "stale").iterdir()
    assert sorted(p.name for p in (folder / "results").iterdir()) == ["e0.json", "p0.json"]
    assert [p.name for p in (folder / "jobs").iterdir()] == ["e0"] and not list((wd / "results").glob("*.json"))


def test_set_aside_stale_refuses_while_a_transitive_dependent_waits_to_run(env):
    """A job waiting on a job that waits on a stale one (here: an evaluation without a result yet, the dependent
    waiting for it) would run on what the rerun writes in its place; refused as a direct dependent is."""
    import os
    import socket

    wd, plan = _stale_pretraining_and_its_evaluation(env)
    (wd / "results" / "e0.json").unlink()
    f0 = Job(id="f0", stage="evaluate", config={"axes": {}}, depends_on=("e0",))
    plan = SimpleNamespace(jobs=[*plan.jobs, f0], name="g", path=None)
    Ledger(wd, "g").append([{"event": "local", "job": "f0", "stage": "evaluate", "state": "pending",
                             "pid": os.getpid(), "host": socket.gethostname(), "log": None}])
    with pytest.raises(StudyError, match=r"--set-aside-stale: 1 job\(s\) .* evaluate f0 \(pending\)"):
        _refuse_stale_results(plan, wd, set_aside=True)
    assert (wd / "results" / "p0.json").exists() and not (wd / "stale").exists()


def test_only_within_where_runs_the_jobs_only_names_not_all_that_where_selects(env, capsys):
    """`--where stage=pretrain --only <one of them>`: that one job (a dry run says what it would queue), not every
    pretraining job --where selects."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("onlywhere", seeds=(0, 1)))
    first = next(j for j in plan_grid(grid).jobs if j.stage == "pretrain")
    argv = ["submit", str(grid), "--cluster", "slurm", "--dry-run", "--workdir", str(env / "wd"), "--profile",
            str(env / "profile.yaml"), "--where", "stage=pretrain"]
    assert main(argv + ["--only", first.id]) == 0
    out, err = capsys.readouterr()
    assert "would queue 1 job(s) in 1 array(s)" in err and f"1 job(s): {first.id}\n" in out, err
    assert main(argv) == 0 and "would queue 2 job(s)" in capsys.readouterr().err


def test_a_slurm_dry_run_estimates_the_jobs_it_would_queue_not_the_done_ones(env, capsys):
    """`study plan` has no workdir: its estimate counts every job of the grid, those done too. A Slurm dry run said
    only how many jobs it would queue, so a half-done grid's remaining cost was nowhere; it now gives the estimate of
    those jobs alone (a local dry run did already)."""
    from study.grids.cost import estimate
    from study.grids.render import estimate_said

    grid = env / "g.yaml"
    grid.write_text(grid_text("left", seeds=(0, 1)))
    plan = plan_grid(grid, env / "profile.yaml")
    done = [j for j in plan.jobs if j.axes.get("seed") == 0]  # seed 0's pretraining and its probe
    for job in done:
        write_result(env / "wd", {"job_id": job.id, "stage": job.stage, "grid": "left", "axes": job.axes,
                                  "metrics": [], "protocol": {}})
    left = [j for j in plan.jobs if j not in done]
    argv = ["submit", str(grid), "--cluster", "slurm", "--dry-run", "--no-check", "--workdir", str(env / "wd"),
            "--profile", str(env / "profile.yaml")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    alone = estimate_said(estimate(left, plan.grid, plan.profile))
    whole = estimate_said(plan.estimate)
    assert alone != whole, (alone, whole)
    assert f"estimate of the {len(left)} job(s) it would queue alone (profile test; " in err, err
    assert alone in err and whole not in err, err


def test_results_copied_into_a_folder_inside_results_are_named_and_no_submit_runs_them_again(env):
    """`cp -r other/results wd/results` where wd/results exists copies the other workdir's results into
    wd/results/results/, which no command reads: status counted their jobs missing, unsaid, and a submit ran them
    all again. Status now names that folder and how to move them up, a dry run warns, and a submit refuses before
    it runs or writes anything; moved up, they are done."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("g"))
    plan = plan_grid(grid, env / "profile.yaml")
    wd, nested = env / "wd", env / "wd" / "results" / "results"
    for job in plan.jobs:
        write_result(env / "other", {"job_id": job.id, "stage": job.stage, "grid": "g", "axes": {}, "metrics": [],
                                     "protocol": {}})
    (wd / "results").mkdir(parents=True)
    shutil.copytree(env / "other" / "results", nested)
    flags = ["--profile", str(env / "profile.yaml"), "--workdir", str(wd)]
    said = (f"{len(plan.jobs)} job(s) of the plan without a result in {wd / 'results'} have a result file in a "
            f"folder inside it ({nested}), which no command reads")
    code, out, _ = run_cli(["status", str(grid), *flags])
    assert code == 0 and said in out and f"`mv -n {nested}/*.json {wd / 'results'}/`" in out, out
    code, out, _ = run_cli(["status", str(grid), *flags, "--format", "json"])
    assert json.loads(out)["results_in_subfolders"] == {j.id: str(nested / f"{j.id}.json") for j in plan.jobs}, out
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--dry-run", *flags])
    assert code == 0 and f"study: warning: {said}" in err and err.count(said) == 1, err
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", *flags])
    assert code == 2 and said in err and "this submit refuses to run them again until then" in err, err
    assert [p.name for p in (wd / "results").iterdir()] == ["results"] and not (wd / "jobs").exists()
    for path in nested.iterdir():
        path.rename(wd / "results" / path.name)
    code, out, _ = run_cli(["status", str(grid), *flags])
    assert code == 0 and "folder inside it" not in out and "missing (not run yet" not in out, out
    code, _, err = run_cli(["submit", str(grid), "--cluster", "local", "--dry-run", *flags])
    assert code == 0 and f"would run 0 job(s) here; skipped: {len(plan.jobs)} done" in err, err


def test_evaluations_copied_without_their_pretraining_are_named_before_a_submit_trains_it_anew(env):
    """Evaluation results copied in from another workdir without their pretraining job's: status counted the
    pretraining missing, unsaid, and a submit trains it from step 0 (no checkpoint here), an encoder the copied
    results, done, never scored. Status now names it with those evaluations and says what to copy; once its
    result is here too, nothing is said."""
    grid = env / "g.yaml"
    grid.write_text(grid_text("g"))
    plan = plan_grid(grid, env / "profile.yaml")
    (pre,), (ev,) = ([j for j in plan.jobs if j.stage == stage] for stage in ("pretrain", "evaluate"))
    wd = env / "wd"
    write_result(wd, {"job_id": ev.id, "stage": "evaluate", "grid": "g", "axes": {}, "metrics": [], "protocol": {}})
    flags = ["--profile", str(env / "profile.yaml"), "--workdir", str(wd)]
    code, out, _ = run_cli(["status", str(grid), *flags])
    assert code == 0 and ("\n1 pretraining job(s) without a result or a checkpoint here have evaluations done (their "
                          "results copied in from another workdir without the pretraining's?): `study submit` trains "
                          "each from step 0") in out and f"\n  {pre.id}: {ev.id}\n" in out, out
    code, out, _ = run_cli(["status", str(grid), *flags, "--format", "json"])
    assert json.loads(out)["pretraining_scored_elsewhere"] == {pre.id: [ev.id]}, out
    write_result(wd, {"job_id": pre.id, "stage": "pretrain", "grid": "g", "axes": {}, "metrics": [], "protocol": {}})
    code, out, _ = run_cli(["status", str(grid), *flags])
    assert code == 0 and "have evaluations done" not in out, out
    code, out, _ = run_cli(["status", str(grid), *flags, "--format", "json"])
    got = json.loads(out)
    assert got["pretraining_scored_elsewhere"] == {} and got["results_in_subfolders"] == {}, out
