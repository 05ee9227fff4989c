"""`--where COLUMN=VALUE` (study.grids.where): the jobs of a plan it selects, their own counts, estimate and checks;
`study plan --where` (golden table). submit, status and cancel with --where: tests/launch (test_local.py,
test_status.py, test_params.py)."""
import json

import pytest

from study.errors import StudyError
from study.grids import plan_grid
from study.grids.where import jobs_where, parse_where, plan_of
from tests.grids.conftest import REPO, run_plan_cli
from tests.grids.test_plan import FIXTURE, golden


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="module")
def plan():
    return plan_grid(REPO / FIXTURE)


def where(plan, *conditions):
    return jobs_where(plan, parse_where(conditions))


def test_conditions_on_one_column_are_any_of_on_several_all_of(plan):
    """Values as the plan's table prints them (`1k`) or as they are (`1000`); a pretraining job has no protocol."""
    def expected(**wanted):
        return [j for j in plan.jobs if all((j.stage if c == "stage" else j.axes.get(c)) in vs
                                            for c, vs in wanted.items())]

    assert where(plan, "size=1k") == where(plan, "size=1000") == expected(size={1000})
    chosen = where(plan, "dataset=alpha", "dataset=beta", "protocol=linear", "size=500")
    assert chosen == expected(dataset={"alpha", "beta"}, protocol={"linear"}, size={500}) and len(chosen) == 2
    assert where(plan, "stage=pretrain", "method=supervised") == expected(stage={"pretrain"}, method={"supervised"})
    assert where(plan, "corruption=downsample:factor=2") == expected(corruption={"downsample:factor=2"})
    assert all(j.stage == "evaluate" for j in where(plan, "protocol=finetune"))
    # a concatenation's method is its encoders' pair, as the table prints it: `simclr` alone does not select it
    assert [j.axes["protocol"] for j in where(plan, "method=simclr|supervised")] == ["concat"]
    assert "concat" not in {j.axes["protocol"] for j in where(plan, "method=simclr", "stage=evaluate")}
    assert parse_where([" size = 1k ", "dataset=alpha"]) == {"size": ["1k"], "dataset": ["alpha"]}


@pytest.mark.parametrize("conditions, message", [
    (["sizes=1k"], r"--where sizes=\.\.\.: no column 'sizes' in grid small; the columns --where reads are stage, "
                   r"method, backbone, dataset, size, corruption, seed, protocol, eval_dataset$"),
    (["sizes=1k", "methods=simclr"], r"--where sizes=\.\.\.: no column 'sizes'"),  # the first named
    # columns the table prints that select no job: why not, and what does
    (["labeled=50"], r"^--where labeled=\.\.\.: an evaluation job scores every labeled size its column lists, in one "
                     r"run: its grid entry's `labeled_sizes` choose them; the columns --where reads are stage, "),
    (["id=abc"], r"^--where id=\.\.\.: a job's id is no condition: `study submit --only ID` runs given jobs; "),
    (["size=500", "size=2k", "size=3k"], r"--where size=2k: no job of grid small has size '2k'; it has: 500, 1k, "
                                          r"- \(no value\)$"),  # -: the scratch jobs'
    # every job has a seed: `-` (no value) selects none, and is not listed
    (["seed=-"], r"--where seed=-: no job of grid small has seed '-'; it has: 0$"),
    (["stage=pretrain", "protocol=linear"], r"^--where stage=pretrain --where protocol=linear: no job of grid small "
                                            r"meets all of these \(each alone does\)$"),
    (["method=simclr|supervised", "stage=pretrain"], r"^--where 'method=simclr\|supervised' --where stage=pretrain: no "
                                                     r"job of grid small meets all"),  # quoted: the flags as typed
    (["size"], r"^--where 'size': expected COLUMN=VALUE, e\.g\. --where size=50k"),
    (["=1k"], r"^--where '=1k': expected COLUMN=VALUE"),
    (["size="], r"^--where 'size=': expected COLUMN=VALUE"),
])
def test_a_column_or_value_the_plan_lacks_is_refused_listing_what_it_has(plan, conditions, message):
    with pytest.raises(StudyError, match=message):
        where(plan, *conditions)


def test_a_selection_has_its_own_counts_and_estimate_and_looks_dependencies_up_in_the_grid(plan):
    """The evaluations alone: the whole plan's evaluate stage (a probe's feature width still from its encoder's
    resnet18 pretraining job, which the selection leaves out: counted at resnet50's 2048, its cost would differ)."""
    evaluations = plan_of(plan, where(plan, "stage=evaluate"))
    assert evaluations.counts == {**plan.counts, "pretrain": 0, "total": plan.counts["evaluate"]}
    assert evaluations.estimate["per_stage"] == {"evaluate": plan.estimate["per_stage"]["evaluate"]}
    assert evaluations.estimate["feature_cache_gb"] == plan.estimate["feature_cache_gb"]
    job = evaluations.jobs[0]
    assert evaluations.job(job.depends_on[0]) is plan.job(job.depends_on[0])  # not among its jobs, but found
    assert len(evaluations.whole) == len(plan.jobs)
    again = plan_of(evaluations, where(evaluations, "protocol=linear"))  # a selection of a selection
    assert again.whole is evaluations.whole and {j.axes["protocol"] for j in again.jobs} == {"linear"}
    assert again.estimate == plan_of(plan, where(plan, "stage=evaluate", "protocol=linear")).estimate
    small = plan_of(plan, where(plan, "size=500"))  # of its own jobs, not of the whole grid's
    assert where(small, "stage=pretrain") == where(plan, "size=500", "stage=pretrain") == small.by_stage("pretrain")
    with pytest.raises(StudyError, match=r"--where size=1k: no job of grid small has size '1k'; it has: 500$"):
        where(small, "size=1k")


def test_plan_cli_where_lists_counts_and_estimates_the_selected_jobs(plan, capsys):
    code, out, err = run_plan_cli([FIXTURE, "--no-check", "--where", "dataset=alpha", "--where", "size=1k",
                                   "--where", "protocol=linear"], capsys)
    assert code == 0 and err == ""
    golden("small_plan_where.txt", out)
    code, out, err = run_plan_cli([FIXTURE, "--no-check", "--format", "json", "--where", "stage=pretrain"], capsys)
    data = json.loads(out)
    assert code == 0 and data["grid_jobs"] == len(plan.jobs) and data["counts"]["total"] == len(data["jobs"]) == 8
    assert {j["stage"] for j in data["jobs"]} == {"pretrain"}
    code, out, err = run_plan_cli([FIXTURE, "--no-check", "--where", "method=byol"], capsys)
    assert code == 2 and out == "" and "--where method=byol: no job of grid small has method 'byol'" in err


def test_a_selection_names_the_manifests_its_jobs_read_with_the_commands_of_the_whole_grid(plan, capsys, monkeypatch,
                                                                                           tmp_path):
    """A manifest's sizes are part of its content hash: a command with the selection's sizes alone (`--sizes 500`)
    would build a manifest the rest of the grid rebuilds under the same name, staling the selection's results."""
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path))  # none there: the check lists each with its command
    small = plan_of(plan, where(plan, "size=500"))
    assert small.manifests() == {name: plan.manifests()[name]
                                 for name in ("alpha_train", "beta_train", "alpha_val", "beta_test")}
    code, out, err = run_plan_cli([FIXTURE, "--where", "size=500"], capsys)
    assert code == 2 and out == "" and "--name alpha_train --sizes 500,1k --labeled-sizes 100,200\n" in err, err
    assert "pool_alpha_beta" not in err and "downsample" not in err  # read by jobs it does not select


def test_a_selection_of_pretraining_does_not_check_defaults_evaluate_alone(write_grid, capsys):
    """The grid's evaluations read defaults.evaluate merged with their entries' params (valid here: one weight
    decay); checked alone, as for a grid without evaluations, it would be refused (several, with no validation
    split), and its message that no entry uses it would be false."""
    grid = write_grid("""\
        axes: {method: [simclr], dataset: [alpha], size: [500]}
        seeds: [0]
        stages:
          evaluate:
            - {protocol: linear, eval_datasets: same, labeled_sizes: [100], params: {linear: {weight_decays: [0.1]}}}
        """)
    text = grid.read_text().replace("defaults:\n", "defaults:\n  evaluate: {linear: {val_fraction: 0}}\n")
    grid.write_text(text)
    code, out, err = run_plan_cli([str(grid), "--no-check"], capsys)
    assert code == 0, err
    code, out, err = run_plan_cli([str(grid), "--no-check", "--where", "stage=pretrain"], capsys)
    assert code == 0 and err == "", err
    assert "grid t: 1 pretrain, 0 evaluate, 1 job (those --where selects of its 2)" in out


def test_a_whole_datasets_size_is_asked_for_as_the_grid_file_writes_it(write_grid):
    """`size: all` (`-` in the table): `size=all` selects its pretraining and its evaluations (not a scratch
    evaluation: no pretraining, no size), and an error lists it; `size=-` selects what the table prints `-`, both,
    and keeps its spelling in a report folder's name.
    A column no job selected has a value in (of the pretraining jobs alone: `protocol`) is said to be so, and `-`
    there selects the jobs without one."""
    grid = plan_grid(write_grid("""\
        axes: {method: [simclr], dataset: [alpha], size: [500, all]}
        seeds: [0]
        stages:
          evaluate:
            - {protocol: linear, eval_datasets: same, labeled_sizes: [100]}
            - {protocol: scratch, eval_datasets: same, labeled_sizes: [100]}
        """))
    assert [(j.stage, j.axes["size"]) for j in where(grid, "size=all")] == [("pretrain", None), ("evaluate", None)]
    with pytest.raises(StudyError, match=r"--where size=2k: no job of grid t has size '2k'; it has: 500, all, "
                                         r"- \(no value\)$"):
        where(grid, "size=2k")
    assert [(j.axes["protocol"], j.axes["size"]) for j in where(grid, "size=-", "stage=evaluate")] == [
        ("linear", None), ("scratch", None)]
    assert where(grid, "protocol=-") == where(grid, "stage=pretrain")
    # the canonical form (a report folder's name) keeps `size=-` (one job more) apart from `size=all`
    from study.grids.where import canonical_where

    assert len(where(grid, "size=-")) == len(where(grid, "size=all")) + 1
    assert canonical_where(grid, {"size": ["-"]}) == {"size": ["-"]}
    assert canonical_where(grid, {"size": ["all"], "protocol": ["-"]}) == {"protocol": ["-"], "size": ["all"]}
    pretraining = plan_of(grid, where(grid, "stage=pretrain"))
    with pytest.raises(StudyError, match=r"--where protocol=linear: no job of grid t has protocol 'linear'; it has: "
                                         r"- \(no value\)$"):
        where(pretraining, "protocol=linear")


def test_the_entry_without_a_variant_is_selected_as_the_table_prints_it(tmp_path):
    """granularity.yaml with its per-level entry uncommented: `variant=-` selects what the table prints `-` for, the
    pretraining and the paper's mapped-up evaluations; `variant=per_level` the others."""
    text = (REPO / "grids/granularity.yaml").read_text()
    both = tmp_path / "both.yaml"
    both.write_text(text.replace("    # - protocol: granularity", "    - protocol: granularity")
                    .replace("    #   ", "      "))
    grid = plan_grid(both)
    paper, per_level = where(grid, "variant=-", "stage=evaluate"), where(grid, "variant=per_level")
    assert len(paper) == len(per_level) == 4 and not set(paper) & set(per_level)
    assert [j.axes.get("variant") for j in paper] == [None] * 4
    assert where(grid, "variant=-") == where(grid, "stage=pretrain") + paper
