"""The quickstart end to end at the tiny scale, through the CLI: real Fashion-MNIST and MNIST digits -> PNG trees ->
manifests -> the rescaled grid -> `study submit --cluster local` -> `study report`; every figure and table exists
and holds numbers. (About 3 minutes on 2 cores: 56 jobs, each a fresh worker process.)"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

import study.cli
from study.cli import main
from study.errors import StudyError
from study.grids import plan_grid
from study.manifests import load_manifest
from study.quickstart import pipeline
from study.quickstart.scale import SCALES, scale_grid
from study.report.figures import FIGURES

REPO = Path(__file__).resolve().parents[2]

FIGURE_NAMES = [m.NAME for m in FIGURES]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("quickstart")
    argv = ["quickstart", "--scale", "tiny", "--data", str(base / "data"), "--workdir", str(base / "runs"),
            "--out", str(base / "report")]
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_MANIFESTS", str(base / "data" / "manifests"))  # `study quickstart` sets it; undone below
    try:
        code = main(argv)
        yield base, argv, code
    finally:
        mp.undo()


def _numbers(csv) -> pd.Series:
    table = pd.read_csv(csv)
    values = pd.to_numeric(table.select_dtypes("number").stack(), errors="coerce")
    return values[values.map(math.isfinite)]


def test_scaled_grid_keeps_every_job_of_the_full_grid(tmp_path):
    full = plan_grid("grids/quickstart.yaml")
    grid = scale_grid(yaml.safe_load(open("grids/quickstart.yaml")), SCALES["tiny"],
                      {"fmnist": (600, 100), "mnist": (200, 100)})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    tiny = plan_grid(path)

    def shape(plan):
        return sorted(tuple(str(j.axes.get(k)) for k in ("method", "dataset", "corruption", "protocol", "eval_dataset"))
                      + (j.stage,) for j in plan.jobs)

    assert shape(tiny) == shape(full) and len(tiny.jobs) == len(full.jobs) == 56
    assert tiny.name == "quickstart-tiny"
    sizes = {j.axes["size"] for j in tiny.jobs if j.stage == "pretrain"}
    assert sizes == {40, 100, 200, 400, 600}
    pre = next(j for j in tiny.jobs if j.stage == "pretrain")
    assert (pre.config["pretrain"]["steps"], pre.config["pretrain"]["batch_size"]) == (4, 16)
    ft = [j.config["evaluate"] for j in tiny.jobs if j.axes.get("protocol") == "finetune"]
    assert {c["finetune"]["steps"] for c in ft} == {3} and {c["finetune"]["optim"]["lr"] for c in ft} == {0.3}
    assert {n for c in ft for n in c["labeled_sizes"]} == {50, 200}
    # the images each dataset has at this scale (the cost model's), and the pooled set's share of each domain
    assert {k: (grid["datasets"][k]["train_images"], grid["datasets"][k]["test_images"]) for k in ("fmnist", "mnist")} \
        == {"fmnist": (600, 100), "mnist": (200, 100)}
    assert grid["datasets"]["fmnist+mnist"]["pool"] == {"fmnist": 20, "mnist": 20}


@pytest.mark.slow
def test_tiny_quickstart_runs_every_job_and_draws_every_figure(tiny_run, monkeypatch):
    base, _, code = tiny_run
    assert code == 0
    report = base / "report"

    monkeypatch.setenv("STUDY_MANIFESTS", str(base / "data" / "manifests"))
    plan = plan_grid(base / "data" / "quickstart-tiny.yaml")
    plan.check(manifests=True)  # every manifest the grid names exists
    results = sorted((base / "runs" / "results").glob("*.json"))
    assert {p.stem for p in results} == {j.id for j in plan.jobs}
    assert pd.read_csv(report / "missing.csv").empty

    table = pd.read_parquet(report / "results.parquet")
    assert set(table["grid"]) == {"quickstart-tiny"}
    assert set(table["protocol"].dropna()) >= {"linear", "finetune", "scratch", "granularity", "concat"}
    top1 = table[table["metric"] == "top1"]["value"]
    assert len(top1) > 50 and top1.between(0, 1).all()

    for name in FIGURE_NAMES:
        png = report / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name
        assert (report / f"{name}.pdf").is_file(), name
        values = _numbers(report / f"{name}.csv")  # the paper-style table
        assert len(values) > 0, f"{name}.csv holds no number"
        plotted = pd.read_csv(report / f"{name}_data.csv")
        assert plotted["mean"].notna().any(), f"{name}: nothing plotted"
    assert len(_numbers(report / "cells.csv")) > 100
    index = (report / "index.html").read_text()
    assert "figures drawn: " + ", ".join(FIGURE_NAMES) + ", training" in index and "skipped: none" in index
    trained = [j for j in plan_grid("grids/quickstart.yaml").jobs
               if j.stage == "pretrain" and j.axes["method"] != "random"]
    curves = pd.read_csv(report / "training.csv")  # a row per pretraining job that trains (random-init: none)
    assert len(curves) == len(trained) == 19 and (curves["last_loss"] > 0).all()

    # the data behind the figures: quality has every corruption, granularity both levels
    quality = pd.read_csv(report / "quality_data.csv")
    assert {"downsample:factor=2", "downsample:factor=4", "jpeg:quality=10",
            "salt_pepper:fraction=0.1"} <= set(quality["corruption"])
    assert set(pd.read_csv(report / "granularity_data.csv")["level"]) == {"group", "class_name"}

    fm = load_manifest("qs_fmnist_train")
    assert fm.levels == ["group", "class_name"] and fm.num_classes == 10
    assert set(fm.subset(40).path) <= set(fm.subset(100).path)  # nested
    pooled = load_manifest("qs_fmnist+mnist_train")
    assert len(pooled.all()) == 40 and pooled.num_classes == 20
    assert load_manifest("qs_fmnist_train.downsample-factor2").corruption.name == "downsample"


@pytest.mark.slow
def test_rerun_finishes_nothing_twice(tiny_run, capsys):
    base, argv, code = tiny_run
    assert code == 0
    manifests = base / "data" / "manifests"
    before = {p.name: p.stat().st_mtime_ns for p in manifests.iterdir()}
    results = {p.name: p.stat().st_mtime_ns for p in (base / "runs" / "results").iterdir()}
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "no job to run here" in err  # every job skipped: its result exists
    assert {p.name: p.stat().st_mtime_ns for p in manifests.iterdir()} == before
    assert {p.name: p.stat().st_mtime_ns for p in (base / "runs" / "results").iterdir()} == results
    ledger = [json.loads(line) for line in (base / "runs" / "ledgers" / "quickstart-tiny.jsonl").open()]
    assert ledger and all(e.get("state") != "failed" for e in ledger)


def test_the_default_grid_and_profile_are_the_packages_own_whatever_the_current_folder(tmp_path, monkeypatch):
    """An installed wheel has no repository around it: its defaults are the copies it ships (study/shipped_grids,
    a link to grids/ here; tests/test_wheel_contents.py runs them from a built wheel)."""
    monkeypatch.chdir(tmp_path)
    from study.quickstart import GRID, PROFILE

    assert GRID.is_absolute() and GRID.is_file()
    assert GRID.read_text() == (REPO / "grids" / "quickstart.yaml").read_text()
    assert PROFILE.is_file() and PROFILE.read_text() == (REPO / "grids" / "profiles" / "local.yaml").read_text()
    args = study.cli.build_parser().parse_args(["quickstart"])
    assert (args.grid, args.profile) == (GRID, PROFILE)


def test_the_help_names_the_shipped_grid_whatever_characters_its_folder_holds(monkeypatch, capsys):
    """The defaults are the installation's paths, shown in `--help`: a '%' in them (a venv under `100%/`) is text,
    not one of argparse's %-formats (a ValueError, and no help at all)."""
    grid = Path("/opt/100%/site/study/shipped_grids/quickstart.yaml")
    monkeypatch.setattr("study.quickstart.cli.GRID", grid)
    with pytest.raises(SystemExit) as e:
        study.cli.build_parser().parse_args(["quickstart", "--help"])
    assert e.value.code == 0
    assert f"shipped with study, {grid})" in " ".join(capsys.readouterr().out.split())


def test_a_missing_grid_is_named_before_any_data_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "m"))
    gone = tmp_path / "site" / "study" / "shipped_grids" / "quickstart.yaml"  # an installation that lacks its copy
    monkeypatch.setattr("study.quickstart.cli.GRID", gone)
    monkeypatch.setattr(pipeline, "GRID", gone)
    assert main(["quickstart", "--scale", "tiny", "--prepare-only"]) == 2
    assert (f"--grid {gone}: no such file: this installation of study lacks the copy it ships"
            in capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
    assert main(["quickstart", "--scale", "tiny", "--prepare-only", "--grid", "mine.yaml"]) == 2  # given, not found:
    assert capsys.readouterr().err == "study: error: --grid mine.yaml: no such file\n"  # no advice to give --grid
    bad = tmp_path / "profile.yaml"
    bad.write_text("name: mine\npartitoin: x\n")  # a typo in a profile of the user's: said before the data
    assert main(["quickstart", "--scale", "tiny", "--prepare-only", "--profile", str(bad),
                 "--grid", str(REPO / "grids" / "quickstart.yaml")]) == 2
    assert f"{bad}:2: unknown key 'partitoin'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.yaml"]
    grid = tmp_path / "grid.yaml"
    grid.write_text((REPO / "grids" / "quickstart.yaml").read_text().replace("\naxes:", "\naxis:", 1))  # a typo
    assert main(["quickstart", "--scale", "tiny", "--prepare-only", "--grid", str(grid),
                 "--profile", str(REPO / "grids" / "profiles" / "local.yaml")]) == 2
    assert f"{grid}:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml", "profile.yaml"]



@pytest.mark.parametrize("inner, raised, outer", [(130, KeyboardInterrupt, 130), (141, BrokenPipeError, 141),
                                                  (1, StudyError, 2)])
def test_a_step_ended_by_ctrl_c_ends_the_quickstart_as_ctrl_c(monkeypatch, capfd, inner, raised, outer):
    """Each step runs `study ...` in this process. Ctrl-C there (its exit code 130) ends the quickstart as Ctrl-C
    (130, as the README says), a closed output pipe (141: `study quickstart 2>&1 | head`) as one; only a failed step
    is exit 2. The step's own exit code is faked; the quickstart's
    front and study.cli.main, which turns errors into exit codes, are real."""
    def one_step(_opts):
        monkeypatch.setattr(study.cli, "main", lambda argv: inner)
        try:
            pipeline._study("plan", "x.yaml")
        finally:
            monkeypatch.setattr(study.cli, "main", main)

    with pytest.raises(raised):
        one_step(None)
    monkeypatch.setattr(pipeline, "run", one_step)  # the command imports it when it runs
    capfd.readouterr()
    assert main(["quickstart", "--scale", "tiny", "--prepare-only"]) == outer
    # the step's own `study: interrupted` (faked away here) is the only one: the quickstart does not say it again
    assert "study: interrupted" not in capfd.readouterr().err


def test_its_manifests_go_where_manifests_says_for_every_step_and_worker(tmp_path, monkeypatch, capsys):
    """`--manifests DIR` over a STUDY_MANIFESTS the shell set elsewhere: the manifests are frozen in DIR, and the
    steps after (plan, the local workers of submit, report) find them there (STUDY_MANIFESTS set to DIR); the log
    says so, for a user who reruns its `$ study ...` lines by hand (without it they find no manifest)."""
    import os

    monkeypatch.chdir(tmp_path)  # --manifests relative to it: the workers get it whole, whatever their folder
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "elsewhere"))
    real, steps = pipeline._study, []

    def step(*argv):  # submit and report only recorded: --prepare-only must not reach them
        steps.append(argv[0])
        if argv[0] not in ("submit", "report"):
            real(*argv)

    monkeypatch.setattr(pipeline, "_study", step)
    here = tmp_path / "frozen"
    assert main(["quickstart", "--scale", "tiny", "--prepare-only", "--data", "data", "--manifests", "frozen",
                 "--grid", str(REPO / "grids" / "quickstart.yaml"),
                 "--profile", str(REPO / "grids" / "profiles" / "local.yaml")]) == 0
    assert steps[-1] == "plan" and "submit" not in steps and "report" not in steps
    assert os.environ["STUDY_MANIFESTS"] == str(here.resolve())
    assert sorted(p.name for p in here.glob("*.json")) and not (tmp_path / "elsewhere").exists()
    from study.manifests import load_manifest
    train = load_manifest("qs_fmnist_train")  # at the tiny scale: its nested and labeled sizes, mapped
    assert train.meta["sizes"] == [40, 100, 200, 400, 600] and train.labeled_sizes == [20, 50, 100, 200, 400]
    err = capsys.readouterr().err
    said = f"[quickstart] manifests in {here.resolve()}: to run the `study` commands below by hand, first `export "
    assert said in err and err.index(said) < err.index("[quickstart] $ study plan"), err


def test_the_command_hands_its_flags_and_the_scales_default_folders_to_the_pipeline(monkeypatch):
    """A smaller scale writes apart from the README's run (data/, runs/, reports/ quickstart-tiny), and every flag
    reaches the pipeline: --workers, --prepare-only, --data (its manifests beside it), --out."""
    got = []
    monkeypatch.setattr(pipeline, "run", got.append)  # the command imports it when it runs: nothing is written
    assert main(["quickstart", "--scale", "tiny", "--workers", "3", "--prepare-only"]) == 0
    assert main(["quickstart", "--data", "d", "--out", "o", "--fashion-mnist", "idx"]) == 0
    tiny, full = got
    assert (tiny.data, tiny.manifests, tiny.workdir, tiny.report) == (
        Path("data/quickstart-tiny"), Path("data/quickstart-tiny/manifests"), Path("runs/quickstart-tiny"),
        Path("reports/quickstart-tiny"))
    assert tiny.scale is SCALES["tiny"] and tiny.workers == 3 and tiny.prepare_only
    assert (full.data, full.manifests, full.workdir, full.report) == (
        Path("d"), Path("d/manifests"), Path("runs/quickstart"), Path("o"))
    assert full.scale is SCALES["full"] and full.workers is None and not full.prepare_only
    assert (tiny.fashion_mnist, full.fashion_mnist) == (None, "idx")
    with pytest.raises(SystemExit) as usage:  # no worker at all is a usage error, not a run that never starts a job
        main(["quickstart", "--workers", "0"])
    assert usage.value.code == 2 and len(got) == 2


def test_the_whole_run_hands_workers_workdir_and_report_folder_to_its_steps(tmp_path, monkeypatch):
    """Past the plan, `study submit` gets --workers and --workdir, and --retry-failed (a rerun after a job failed
    reruns it, where a plain submit would skip it and the quickstart say every job done, exit 0, with no result of it),
    `study report` the workdir and --out. The data, manifests and plan steps are real; submit and report are only
    recorded (they would run 56 jobs)."""
    from study.quickstart import PROFILE  # the package's own copy: an absolute path, from any folder

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "m"))  # `study quickstart` sets it; undone after
    real, recorded, hints = pipeline._study, [], []
    monkeypatch.setattr(pipeline, "_study", lambda *argv, **kw: hints.append(kw.get("jobs_failed")) or (
        recorded.append(argv) if argv[0] in ("submit", "report") else real(*argv, **kw)))
    data, runs, out = tmp_path / "data", tmp_path / "runs", tmp_path / "report"
    assert main(["quickstart", "--scale", "tiny", "--data", str(data), "--workdir", str(runs), "--out", str(out),
                 "--workers", "3"]) == 0
    grid = str(data / "quickstart-tiny.yaml")
    written = yaml.safe_load(Path(grid).read_text())["datasets"]  # the images each tree holds, for the cost model
    assert {k: (written[k]["train_images"], written[k]["test_images"]) for k in ("fmnist", "mnist")} == {
        "fmnist": (600, 100), "mnist": (200, 100)}
    assert recorded == [
        ("submit", grid, "--cluster", "local", "--profile", str(PROFILE), "--workdir", str(runs),
         "--retry-failed", "--workers", "3"),
        ("report", grid, "--workdir", str(runs), "--out", str(out)),
    ]
    # a failed job's hint: the status command of this grid, profile and workdir (a bare `study status` finds nothing)
    assert f"`study status {grid} --profile {PROFILE} --workdir {runs}`" in hints[-2], hints


def test_a_step_whose_jobs_failed_adds_its_hint_and_a_step_refused_does_not(monkeypatch):
    """Exit code 1 (a job failed) gets the hint `run` gives (the status command with the quickstart's paths); exit
    code 2 (bad input, nothing run) does not."""
    for code, said in ((1, "failed with exit code 1: see `study status x`"), (2, "failed with exit code 2")):
        monkeypatch.setattr(study.cli, "main", lambda argv: code)
        with pytest.raises(StudyError) as e:
            pipeline._study("submit", "g.yaml", jobs_failed="see `study status x`")
        assert str(e.value).endswith(said), e.value


def test_its_logged_commands_paste_into_a_shell_as_they_ran(tmp_path, monkeypatch, capsys):
    """The log invites running its `$ study ...` lines and its `export STUDY_MANIFESTS=...` by hand: a folder with a
    space, `#` or a non-ASCII letter is quoted, so that a shell reads back the arguments the step ran with."""
    import shlex

    odd = tmp_path / "d ä #1"
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "m"))  # `study quickstart` sets it; undone after
    monkeypatch.setattr(study.cli, "main", lambda argv: 0)
    argv = ("plan", str(odd / "quickstart-tiny.yaml"), "--profile", "grids/profiles/local.yaml")
    pipeline._study(*argv)
    line = capsys.readouterr().err.strip()
    assert line.startswith("[quickstart] $ ") and shlex.split(line[len("[quickstart] $ "):]) == ["study", *argv]

    located = []

    def stop(folder):  # --fashion-mnist DIR reaches the search for the IDX files
        located.append(folder)
        raise StudyError("stop after the log line")

    monkeypatch.setattr(pipeline.fashion_mnist, "locate", stop)
    opts = pipeline.Options(grid=REPO / "grids" / "quickstart.yaml", profile=REPO / "grids" / "profiles" / "local.yaml",
                            data=odd, manifests=odd / "manifests", workdir=odd / "runs", report=odd / "report",
                            scale=SCALES["tiny"], fashion_mnist=str(odd / "idx"))
    with pytest.raises(StudyError, match="stop after"):
        pipeline.run(opts)
    assert located == [str(odd / "idx")]
    said = capsys.readouterr().err
    export = said[said.index("`export ") + len("`export "):].split("`")[0]
    assert shlex.split(export) == [f"STUDY_MANIFESTS={(odd / 'manifests').resolve()}"]
