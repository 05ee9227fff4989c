"""`study plan`: golden table and JSON for a fixture grid, the four paper grids, the cost model (the check:
test_checks.py; the manifest commands: test_manifest_commands.py)."""
import json
import os
import re
import textwrap
from pathlib import Path

import pytest

import study.grids.cost as cost_mod
from study.errors import StudyError
from study.grids import load_profile, plan_grid
from study.grids.cost import FEATURE_DIMS, feature_cache_gb, job_hours
from study.grids.profile import CostModel, Profile, Resources, resolve_resources
from study.grids.render import _amount, _hours, job_text, plan_table
from study.train import PretrainConfig
from tests.grids.conftest import HERE, REPO, run_plan_cli

FIXTURE = "tests/grids/fixtures/small.yaml"
GOLDEN = HERE / "golden"


# a grid's head: one dataset, ResNet-18 for one epoch (its axes and stages follow, indented alike)
ALPHA_RESNET18 = """
    name: t
    datasets:
      alpha: {train: a_train, test: a_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1}"""

def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs (UPDATE_GOLDEN=1 rewrites it after review)"


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_golden_table(capsys):
    code, out, err = run_plan_cli([FIXTURE, "--no-check"], capsys)
    assert code == 0 and err == ""
    golden("small_plan.txt", out)


def test_golden_json(capsys):
    code, out, err = run_plan_cli([FIXTURE, "--no-check", "--format", "json", "--profile",
                                   "grids/profiles/example_gpu.yaml"], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {"grid", "profile", "jobs", "counts", "estimate"}
    assert {"id", "stage", "method", "dataset", "size", "depends_on"} <= set(data["jobs"][0])
    golden("small_plan.json", out)


def test_the_json_gives_each_jobs_estimated_hours_which_add_up_to_the_stages(capsys):
    """The estimate said each stage's total and longest job only: a researcher comparing a job's measured time with
    its estimate had none to compare with. Each job's `estimated_hours` now; a stage's add up to its job-hours."""
    code, out, _ = run_plan_cli([FIXTURE, "--no-check", "--format", "json", "--where", "stage=evaluate"], capsys)
    data = json.loads(out)
    assert code == 0 and data["jobs"] and all(j["estimated_hours"] > 0 for j in data["jobs"])
    st = data["estimate"]["per_stage"]["evaluate"]
    hours = [j["estimated_hours"] for j in data["jobs"]]
    assert max(hours) == st["longest_job_hours"] and sum(hours) == pytest.approx(st["job_hours"], abs=1e-3)


def test_a_stages_own_placement_leaves_the_plan_as_it_was(capsys, tmp_path):
    """Per-stage partition, qos, account, max_time and additional say where jobs go, not what they are or cost:
    the plan's jobs and estimate are the golden ones."""
    text = Path("grids/profiles/example_gpu.yaml").read_text()
    stages = "  pretrain: {gpus: 8, cpus: 64, mem: 480G, time: 48h}\n"
    assert stages in text
    profile = tmp_path / "example_gpu.yaml"
    profile.write_text(text.replace(stages, stages[:-2] + ", partition: gpu-long, qos: long, max_time: 7-00:00:00,"
                                    "\n             account: big, additional: {exclusive: true}}\n"))
    assert load_profile(profile).placement("pretrain").partition == "gpu-long"
    code, out, err = run_plan_cli([FIXTURE, "--no-check", "--format", "json", "--profile", str(profile)], capsys)
    assert code == 0 and err == ""
    golden("small_plan.json", out)


@pytest.mark.parametrize("grid, pretrain, evaluate, by_protocol", [
    ("data_quantity", 40, 136, {"linear": 40, "finetune": 80, "scratch": 16}),
    ("data_domain", 21, 48, {"linear": 45, "concat": 3}),
    ("data_quality", 10, 10, {"linear": 10}),
    ("granularity", 4, 4, {"granularity": 4}),
])
@pytest.mark.parametrize("profile", [None, "grids/profiles/example_gpu.yaml", "grids/profiles/local.yaml",
                                     "grids/profiles/ci.yaml"])
def test_paper_grids_plan(grid, pretrain, evaluate, by_protocol, profile):
    plan = plan_grid(f"grids/{grid}.yaml", profile)
    plan.check(manifests=False)  # methods, corruptions and every section through PretrainConfig
    assert plan.name == grid
    assert plan.counts == {"pretrain": pretrain, "evaluate": evaluate, "total": pretrain + evaluate,
                           "evaluate_by_protocol": by_protocol}
    assert len({j.id for j in plan.jobs}) == len(plan.jobs)
    assert plan.estimate["gpu_hours"] >= 0 and plan.estimate["wall_hours"] > 0


@pytest.mark.parametrize("profile", ["grids/profiles/local.yaml", "grids/profiles/ci.yaml"])
def test_a_cpu_profile_counts_as_many_slots_as_its_node_runs_jobs_at_once(profile):
    """Without GPUs a stage's jobs share the node's CPUs: the wall-time estimate's slots (max_parallel_jobs) are the
    node's CPUs over a job's, not every job of a stage at once."""
    p = load_profile(profile)
    assert p.gpus_per_node == 0
    for stage in ("pretrain", "evaluate"):
        assert p.max_parallel_jobs == p.cpus_per_node // p.stages[stage]["cpus"]


def test_data_quality_grid_pretrains_on_corrupted_manifests_and_probes_clean():
    plan = plan_grid("grids/data_quality.yaml")
    pre = {j.axes["corruption"]: j.config["pretrain"]["manifest"] for j in plan.by_stage("pretrain")}
    assert pre == {"none": "imagenet_train", "downsample:factor=2": "imagenet_train.downsample-factor2",
                   "downsample:factor=4": "imagenet_train.downsample-factor4",
                   "jpeg:quality=10": "imagenet_train.jpeg-quality10",
                   "salt_pepper:fraction=0.1": "imagenet_train.salt_pepper-fraction0.1"}
    assert {j.config["evaluate"]["train_manifest"] for j in plan.by_stage("evaluate")} == {"imagenet_train"}


def test_cost_model_arithmetic(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1}
    axes: {method: [simclr, supervised], dataset: [alpha], size: [3600]}
    stages:
      pretrain: {resources: {gpus: 2}}
      evaluate:
        - {protocol: linear, labeled_sizes: [1000, 2000], where: {method: simclr}}
        - {protocol: finetune, labeled_sizes: [500], params: {epochs: 2}, where: {method: simclr}}
    """, base=False)
    cost = CostModel(throughput={"resnet18": {"pretrain": 10.0, "finetune": 100.0, "extract": 1000.0}},
                     method_factor={"simclr": 1.0, "supervised": 0.5}, job_overhead_min=6.0, probe_min=3.0)
    prof = Profile(max_parallel_gpus=2, cost=cost)
    plan = plan_grid(g, prof)
    e = plan.estimate
    # pretrain: 1 epoch x 3600 images / (10/s x 2 GPUs) = 180 s = 0.05 h (+0.1 h overhead); supervised half of it
    pre = [(0.05 + 0.1) * 2, (0.025 + 0.1) * 2]
    # linear: (2000 + 1000 test) / 1000/s = 3 s, + 2 probes x 3 min, + 6 min; finetune: (2 x 500 + 1000)/100 = 20 s
    ev = [3 / 3600 + 0.1 + 0.1, 20 / 3600 + 0.1]
    assert e["per_stage"]["pretrain"]["gpu_hours"] == pytest.approx(sum(pre), abs=0.01)
    assert e["per_stage"]["evaluate"]["gpu_hours"] == pytest.approx(sum(ev), abs=0.01)
    assert e["gpu_hours"] == pytest.approx(sum(pre) + sum(ev), abs=0.02)
    # wall: per stage max(longest job, GPU-hours / 2 GPUs)
    assert e["wall_hours"] == pytest.approx(max(0.15, sum(pre) / 2) + max(ev[0], sum(ev) / 2), abs=0.02)


def test_cost_model_counts_every_node_and_the_profiles_job_slots(write_grid):
    """A two-node job holds the GPUs of both nodes; a profile's max_parallel_jobs bounds the wall time as its
    max_parallel_gpus does."""
    g = write_grid(ALPHA_RESNET18 + """
    axes: {method: [simclr], dataset: [alpha], size: [36000], seed: [0, 1]}
    stages:
      pretrain: {resources: {gpus: 2, nodes: 2}}
    """, base=False)
    cost = CostModel(throughput={"resnet18": {"pretrain": 20.0}}, method_factor={"simclr": 1.0},
                     job_overhead_min=6.0, probe_min=3.0)
    # 36000 images / (20/s x 2 GPUs x 2 nodes) = 450 s = 0.125 h (+0.1 h overhead), holding 4 GPUs, per seed
    pre = plan_grid(g, Profile(cost=cost)).estimate["per_stage"]["pretrain"]
    assert pre["gpu_hours"] == pytest.approx(2 * 0.225 * 4, abs=0.01)
    one_at_a_time = plan_grid(g, Profile(max_parallel_jobs=1, cost=cost)).estimate
    assert one_at_a_time["per_stage"]["pretrain"]["wall_hours"] == pytest.approx(2 * 0.225, abs=0.01)
    assert one_at_a_time["wall_hours"] == pytest.approx(2 * 0.225, abs=0.01)
    # without GPUs, one task per node: 36000 / (20/s x 2 nodes) = 900 s = 0.25 h (+0.1 h), per seed, no GPU-hours
    g.write_text(g.read_text().replace("{gpus: 2, nodes: 2}", "{gpus: 0, nodes: 2}"))
    pre = plan_grid(g, Profile(cost=cost)).estimate["per_stage"]["pretrain"]
    assert pre["job_hours"] == pytest.approx(2 * 0.35, abs=0.01) and pre["gpu_hours"] == 0


def test_a_method_that_trains_nothing_asks_a_small_job_whatever_its_stage_asks(write_grid):
    """random and pretrained build or read one encoder in seconds: on a stage of whole 8-GPU nodes they ask one GPU,
    2 CPUs, 8 GB, 30 minutes of one node (UNTRAINED_MAX; Slurm puts them in an array of their own), not a node held
    for seconds after a wait for one; a stage asking less keeps its own (no GPU stays none)."""
    g = write_grid(ALPHA_RESNET18 + """
    axes: {method: [simclr, random, pretrained], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {resources: {gpus: 8, cpus: 64, mem: 256G, time: 72h, nodes: 2}}
    """, base=False)
    res = {j.axes["method"]: j.resources for j in plan_grid(g).by_stage("pretrain")}
    assert res["simclr"] == Resources(gpus=8, cpus=64, mem_gb=256.0, time_min=72 * 60, nodes=2)
    assert res["random"] == res["pretrained"] == Resources(gpus=1, cpus=2, mem_gb=8.0, time_min=30, nodes=1)
    g.write_text(g.read_text().replace("{gpus: 8, cpus: 64, mem: 256G, time: 72h, nodes: 2}",
                                       "{gpus: 0, cpus: 1, mem: 2G, time: 10m}"))
    res = {j.axes["method"]: j.resources for j in plan_grid(g).by_stage("pretrain")}
    assert res["random"] == res["simclr"] == Resources(gpus=0, cpus=1, mem_gb=2.0, time_min=10, nodes=1)
    g.write_text(g.read_text().replace("time: 10m", "time: 3h"))  # a cluster whose jobs take 50 min to start
    slow = plan_grid(g, Profile(cost=CostModel(job_overhead_min=50.0)))
    assert {j.axes["method"]: j.resources.time_min for j in slow.by_stage("pretrain")} == {
        "simclr": 180, "random": 100, "pretrained": 100}
    assert not any("need longer than their time limit" in n for n in slow.estimate["notes"])


def test_a_job_of_seconds_is_not_estimated_at_0_s(write_grid):
    """The estimate's hours keep seconds: a CPU grid's jobs of a few seconds (the local profile's) were rounded to
    0.01 h, each shown as `longest job 0 s`, their stage as a multiple of 36 s."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [100]}
    stages: {}
    """, pretrain={"steps": 2})
    cost = CostModel(throughput={"resnet18": {"pretrain": 100.0}}, job_overhead_min=0.1)
    plan = plan_grid(g, Profile(cost=cost))
    # 2 steps x 8 images / 100/s = 0.16 s, + 6 s overhead
    assert plan.estimate["per_stage"]["pretrain"]["longest_job_hours"] == pytest.approx(6.16 / 3600, abs=1e-4)
    table = plan_table(plan)
    assert "pretrain: 1 job, 0.1 GPU-minutes, longest job 6 s, wall 6 s" in table
    assert re.search(r"^grid \S+: 1 pretrain, 0 evaluate, 1 job$", table, re.M)  # one job, not "1 jobs"


def test_a_training_protocol_is_priced_by_its_own_recipe(write_grid, monkeypatch):
    """Where a grid gives no epochs or batch, a training job is priced by what its run takes, its protocol's recipe
    (study.evaluate.recipes): a new training row's own 30 epochs of batches of 128, not fine-tuning's 60 of 256,
    which every training protocol but scratch was priced at by name; planning loads no torch for it."""
    from protocol_rows import TUNED, add_protocol

    from study.evaluate.recipes import FINETUNE

    add_protocol(monkeypatch, TUNED, {**FINETUNE, "epochs": 30, "batch_size": 128})
    _, hours = _evaluation_hours(write_grid, """
        - {protocol: tuned, labeled_sizes: [500]}
        - {protocol: finetune, labeled_sizes: [500]}
    """)
    # 500 labels in whole batches of 128: 384 images an epoch; + 1000 test images, at 100/s
    assert hours["tuned"] == pytest.approx((30 * 384 + 1000) / 100 / 3600)
    assert hours["finetune"] == pytest.approx((60 * 256 + 1000) / 100 / 3600)


@pytest.mark.parametrize("finetune_params, profile_epochs, finetune_epochs, scratch_epochs", [
    ("{finetune: {epochs: 4}}", None, 4, 90),  # finetune.epochs, not 100; scratch: what a job runs without, 90
    ("{epochs: 2, finetune: {epochs: 7}}", 3, 2, 3),  # the entry's epochs win (as study.evaluate.finetune runs
    # them); with neither, the profile's finetune_epochs replace the run's default
    ("{epochs: 2, finetune: {steps: 10}}", 3, 2, 3),  # over a step budget too (finetune.pretrain_dict drops it)
])
def test_cost_model_reads_a_step_budget_without_batch_and_the_fine_tuning_epochs_the_job_runs(
        write_grid, finetune_params, profile_epochs, finetune_epochs, scratch_epochs):
    plan, hours = _evaluation_hours(write_grid, f"""
        - {{protocol: finetune, labeled_sizes: [500], params: {finetune_params}}}
        - {{protocol: scratch, labeled_sizes: [500]}}
    """, pretrain="steps: 10", size=1_000_000, pretrain_rate=4096.0, finetune_epochs=profile_epochs)
    # 10 steps x 4096 (PretrainConfig's batch) / 4096/s = 10 s; not 1000 epochs x 1M images
    assert cost_hours(plan.by_stage("pretrain")[0], plan) == pytest.approx(10 / 3600)
    # 500 labels in whole batches of 256: 256 images an epoch
    assert hours["finetune"] == pytest.approx((finetune_epochs * 256 + 1000) / 100 / 3600)
    assert hours["scratch"] == pytest.approx((scratch_epochs * 256 + 1000) / 100 / 3600)


def cost_hours(job, plan):
    return job_hours(job, plan.grid, plan.profile.cost, set(), {j.id: j for j in plan.by_stage("pretrain")})


def _evaluation_hours(write_grid, entries: str, pretrain: str = "epochs: 1", size: int = 100,
                      pretrain_rate: float = 10.0, **cost):
    """(plan, hours of each evaluation job by protocol) of a grid of one dataset (1000 test images) pretrained with
    `pretrain` at `size`, its evaluate stage the YAML list `entries`; resnet18 at `pretrain_rate` images/s, fine-tuning
    100/s, extraction 1000/s, no per-job overhead, `cost` the CostModel's other fields."""
    g = write_grid(textwrap.dedent(f"""
    name: t
    datasets:
      alpha: {{train: a_train, test: a_val, test_images: 1000}}
    defaults:
      pretrain: {{backbone: resnet18, {pretrain}}}
    axes: {{method: [simclr], dataset: [alpha], size: [{size}]}}
    stages:
      evaluate:
    """) + textwrap.indent(textwrap.dedent(entries).strip("\n"), "  ") + "\n", base=False)
    rates = {"pretrain": pretrain_rate, "finetune": 100.0, "extract": 1000.0}
    plan = plan_grid(g, Profile(cost=CostModel(throughput={"resnet18": rates}, job_overhead_min=0.0, **cost)))
    return plan, {j.axes["protocol"]: cost_hours(j, plan) for j in plan.by_stage("evaluate")}


def test_profiles_load():
    ex = load_profile("grids/profiles/example_gpu.yaml")
    assert (ex.partition, ex.gpus_per_node, ex.max_array_size, ex.max_parallel_gpus) == ("gpu", 8, 1000, 64)
    assert ex.setup and ex.cost.rate("resnet50", "pretrain") == 700
    for name in ("local", "ci"):
        p = load_profile(f"grids/profiles/{name}.yaml")
        assert p.require_partition() == "debug" and p.gpus_per_node == 0
    plan = plan_grid("grids/data_quantity.yaml", "grids/profiles/example_gpu.yaml")
    pre = plan.by_stage("pretrain")[0].resources
    assert (pre.gpus, pre.cpus, pre.mem_gb, pre.time_min) == (8, 64, 480.0, 48 * 60)  # `node` = the profile's node
    ev = plan.by_stage("evaluate")[0].resources
    assert (ev.gpus, ev.cpus, ev.time_min) == (1, 8, 12 * 60)


def test_a_profile_stage_keeps_the_defaults_it_does_not_set(tmp_path):
    """`stages.evaluate: {gpus: 0}` sets only the GPUs: its time stays the evaluate stage's 12 h, not 24 h."""
    p = tmp_path / "p.yaml"
    p.write_text("partition: cpu\nstages:\n  evaluate: {gpus: 0}\n")
    assert resolve_resources(load_profile(p), "evaluate", []) == Resources(gpus=0, cpus=8, mem_gb=32.0, time_min=720)


# (images, time limit, flagged): images / 20/s + 6 min against 21 time limits (a run and 20 requeues)
@pytest.mark.parametrize("size, time_limit, requeue_note", [(36000, "30m", False), (36000, "1m", True),
                                                             (42000, "2m", False), (48000, "2m", True)])
def test_jobs_beyond_the_requeue_budget_are_flagged(write_grid, size, time_limit, requeue_note):
    g = write_grid(f"""
    name: t
    datasets:
      alpha: {{train: a_train, test: a_val}}
    defaults:
      pretrain: {{backbone: resnet18, epochs: 1}}
    axes: {{method: [simclr], dataset: [alpha], size: [{size}]}}
    stages:
      pretrain: {{resources: {{gpus: 1, time: {time_limit}}}}}
    """, base=False)
    cost = CostModel(throughput={"resnet18": {"pretrain": 20.0}}, method_factor={"simclr": 1.0},
                     job_overhead_min=6.0, probe_min=3.0)  # 36000 images / 20/s = 30 min + 6 = 36 min; 42000: 41
    notes = " ".join(plan_grid(g, Profile(max_parallel_gpus=1, cost=cost)).estimate["notes"])
    assert "need longer than their time limit" in notes
    assert ("need more than 21 time limits" in notes) == requeue_note


@pytest.mark.parametrize("max_time, remedy", [(None, "raise `time`"), ("2m", "the profile's max_time")])
def test_the_over_time_notes_do_not_ask_for_more_than_the_partitions_max_time(write_grid, max_time, remedy):
    """Jobs already at the profile's max_time cannot raise their `time`: the notes say what else to change."""
    g = write_grid(ALPHA_RESNET18 + """
    axes: {method: [simclr], dataset: [alpha], size: [48000]}
    stages:
      pretrain: {resources: {gpus: 1, time: 2m}}
    """, base=False)
    cost = CostModel(throughput={"resnet18": {"pretrain": 20.0}}, method_factor={"simclr": 1.0}, job_overhead_min=6.0)
    prof = Profile(max_parallel_gpus=1, cost=cost, max_time_min=None if max_time is None else 2)
    notes = plan_grid(g, prof).estimate["notes"]
    over = [n for n in notes if "need longer than their time limit" in n]
    beyond = [n for n in notes if "need more than 21 time limits" in n]
    assert len(over) == len(beyond) == 1
    assert remedy in over[0] and remedy in beyond[0]
    assert ("raise `time`" in " ".join(over + beyond)) == (max_time is None)


def test_the_over_time_notes_read_a_stages_own_max_time(write_grid):
    """Pretraining at its own partition's MaxTime (stages.pretrain.max_time) cannot raise its `time` either."""
    g = write_grid(ALPHA_RESNET18 + """
    axes: {method: [simclr], dataset: [alpha], size: [48000]}
    stages:
      pretrain: {resources: {gpus: 1, time: 2m}}
    """, base=False)
    cost = CostModel(throughput={"resnet18": {"pretrain": 20.0}}, method_factor={"simclr": 1.0}, job_overhead_min=6.0)
    for own, remedy in [({"max_time": 2}, "the profile's max_time"), ({"max_time": None}, "raise `time`")]:
        prof = Profile(max_parallel_gpus=1, cost=cost, max_time_min=None if own["max_time"] else 2,
                       stage_placement={"pretrain": own})
        over = [n for n in plan_grid(g, prof).estimate["notes"] if "need longer than their time limit" in n]
        assert len(over) == 1 and remedy in over[0], (own, over)


@pytest.mark.parametrize("time_limit, flagged", [("60m", False), ("59m", True)])
def test_a_job_that_needs_exactly_its_time_limit_is_not_flagged(write_grid, time_limit, flagged):
    """At cost factor 0 the job is its 60 min overhead, which fits a 60 min limit."""
    g = write_grid(f"""
    axes: {{method: [simclr], dataset: [alpha], size: [10]}}
    stages:
      pretrain: {{resources: {{time: {time_limit}}}}}
    """)
    cost = CostModel(job_overhead_min=60.0, method_factor={"simclr": 0.0})
    notes = " ".join(plan_grid(g, Profile(cost=cost)).estimate["notes"])
    assert ("need longer than their time limit" in notes) == flagged


@pytest.mark.parametrize("seeds, resources, message", [
    ("[-1]", "{gpus: 1}", "seed in"),
    ("[0]", "{gpu: 1}", "unknown resource 'gpu'"),
    ("[0]", "{ntasks-per-node: 2}", "evaluate resources: ntasks-per-node: a job's tasks are not asked for apart"),
    ("[0]", "{time: .inf}", "expected a duration"),
])
def test_planner_refuses_values_a_job_would_crash_on(write_grid, seeds, resources, message):
    g = write_grid(f"""
    axes: {{method: [simclr], dataset: [alpha]}}
    seeds: {seeds}
    stages:
      evaluate:
        - {{protocol: linear, labeled_sizes: [5], resources: {resources}}}
    """)
    with pytest.raises(StudyError, match=message):
        plan_grid(g)


def test_a_method_without_a_cost_factor_is_noted(write_grid):
    """A method that trains nothing (random) needs none: its job is its overhead."""
    g = write_grid("""
    axes: {method: [simclr, byol, random], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {}
    """)
    cost = CostModel(method_factor={"simclr": 1.0})
    plan = plan_grid(g, Profile(cost=cost))
    notes = plan.estimate["notes"]
    hours = {j.axes["method"]: cost_hours(j, plan) for j in plan.by_stage("pretrain")}
    assert hours["byol"] == pytest.approx(hours["simclr"])  # counted as 1.0, as the note says (not 0)
    assert hours["random"] == pytest.approx(cost.job_overhead_min / 60) and hours["random"] < hours["simclr"]
    assert [n for n in notes if "cost factor" in n] == [
        "method 'byol' has no cost factor (the cost of its step against SimCLR's): counted as 1.0; set "
        "cost.method_factor.byol in the profile"]
    assert not any("cost factor" in n for n in plan_grid(g).estimate["notes"])  # the default profile has both


def test_a_backbone_without_a_throughput_is_noted(write_grid):
    """As a method without a cost factor is: a new backbone (one new file) is estimated at resnet50's rates, and the
    plan says so instead of silently."""
    g = write_grid("""
    axes: {method: [simclr], backbone: [resnet18, resnet18_small], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {}
      evaluate:
        - protocol: linear
          labeled_sizes: [10]
    """)
    notes = plan_grid(g).estimate["notes"]
    assert [n for n in notes if "throughput" in n] == [
        "backbone 'resnet18_small' has no throughput in the profile: counted at resnet50's rates; set "
        "cost.throughput.resnet18_small in the profile"]
    cost = CostModel(throughput={"resnet18": {"pretrain": 1.0}, "resnet18_small": {"pretrain": 2.0}})
    notes = plan_grid(g, Profile(cost=cost)).estimate["notes"]
    assert not any("has no throughput" in n for n in notes)
    # pretraining rates only (a rates.yaml of pretraining jobs): the probes' extraction at resnet50's, said
    assert sorted(n for n in notes if "gives no" in n) == [
        f"cost.throughput.{b} gives no extract rate: its extract work counted at resnet50's; set "
        f"cost.throughput.{b}.extract in the profile (rates.yaml has it once such a job has run)"
        for b in ("resnet18", "resnet18_small")]


def test_the_schema_example_of_grids_readme_plans_as_written(tmp_path):
    text = Path("grids/README.md").read_text().split("## The schema")[1].split("```yaml\n")[1].split("```")[0]
    (tmp_path / "example.yaml").write_text(text)
    plan = plan_grid(tmp_path / "example.yaml")
    assert plan.grid.name == "data_quantity" and len(plan.jobs) > 0


def test_the_own_data_grid_of_the_readme_plans_as_written(tmp_path):
    """README.md's "Your own image folders" grid: 8 + 1 corrupted pretraining jobs, their probes in-domain and the
    bright encoders' on dark, as the README says (20 jobs)."""
    text = (REPO / "README.md").read_text().split("## Your own image folders")[1].split("```yaml\n")[1].split("```")[0]
    (tmp_path / "shapes.yaml").write_text(text)
    plan = plan_grid(tmp_path / "shapes.yaml", load_profile(REPO / "grids" / "profiles" / "local.yaml"))
    assert plan.grid.name == "shapes" and plan.counts["pretrain"] == 9 and plan.counts["total"] == 20
    cross = [j for j in plan.jobs if j.stage == "evaluate" and j.axes["eval_dataset"] != j.axes["dataset"]]
    assert {(j.axes["dataset"], j.axes["eval_dataset"]) for j in cross} == {("bright", "dark")}
    # the report's `training` figure draws a curve, not one point, of each 10-step run (log_every_steps: 50 else)
    runs = [j.config["pretrain"] for j in plan.by_stage("pretrain")]
    assert all(run["log_every_steps"] < run["steps"] for run in runs)


def test_cost_model_counts_a_test_pass_per_labeled_size_of_a_fine_tuning_job(write_grid):
    """run_finetune trains, then scores the test set, once per labeled size of the job; an epoch is the size's whole
    batches (study.train.data.steps_per_epoch drops a partial one)."""
    _, hours = _evaluation_hours(write_grid, """
        - {protocol: finetune, labeled_sizes: [500, 2000], split_labeled_sizes: false, params: {epochs: 2}}
        - {protocol: scratch, labeled_sizes: [500, 2000], split_labeled_sizes: false,
           params: {finetune: {steps: 10, batch_size: 50}}}
    """)
    # 2 epochs x (500 + 2000 in whole batches of 256: 256 + 1792) + the 1000 test images at each of the 2 sizes
    assert hours["finetune"] == pytest.approx((2 * (256 + 1792) + 2 * 1000) / 100 / 3600)
    # a step budget: 10 steps x 50 per size, + the test images per size
    assert hours["scratch"] == pytest.approx((2 * 10 * 50 + 2 * 1000) / 100 / 3600)


def test_a_fine_tuning_epoch_at_one_label_or_none_counts_its_images(write_grid):
    """A batch of 1 (1 label) is one whole batch an epoch, not none; a labeled size of 0 images (`all` without
    train_images, the profile's default_test_images 0) counts 0 images, not a ZeroDivisionError."""
    _, hours = _evaluation_hours(write_grid, """
        - {protocol: finetune, labeled_sizes: [1], params: {epochs: 2}}
        - {protocol: scratch, params: {epochs: 2}}
    """, default_test_images=0)
    assert hours["finetune"] == pytest.approx((2 * 1 + 1000) / 100 / 3600)
    assert hours["scratch"] == pytest.approx(1000 / 100 / 3600)


def test_a_fine_tuning_step_budget_is_counted_as_the_job_runs_it(write_grid):
    """`finetune.steps` replaces `finetune.epochs` (PretrainConfig), and the batch is at most the labeled images
    (study.evaluate.finetune.pretrain_dict): the estimate counted 5 epochs here, and 256 images a step at 100 labels."""
    _, hours = _evaluation_hours(write_grid, """
        - {protocol: finetune, labeled_sizes: [100, 2000], split_labeled_sizes: false,
           params: {finetune: {steps: 10, epochs: 5}}}
    """)
    # 10 steps x 100 images (the batch capped at the 100 labels) + 10 steps x 256, + the 1000 test images per size
    assert hours["finetune"] == pytest.approx((10 * 100 + 10 * 256 + 2 * 1000) / 100 / 3600)
    assert PretrainConfig.from_dict({"manifest": "m", "epochs": 5, "steps": 10}).steps == 10


def test_cost_model_probes_by_labeled_rows_and_classes(write_grid):
    """A linear probe costs labeled rows x classes (the profile's probe_rate): iNat21's 10,000 classes cost ten times
    ImageNet's 1000 at the same sizes. kNN fits no probe; `all` counts the dataset's train_images."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, train_images: 4000, test_images: 1000, classes: 10}
      beta: {train: b_train, test: b_val, test_images: 1000, classes: 10000}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1}
    axes: {method: [simclr], dataset: [alpha, beta], size: [100]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [1000, all]}
        - {protocol: knn, labeled_sizes: [1000, all]}
        - protocol: concat
          pairs: [[{dataset: alpha}, {dataset: beta}]]
          eval_datasets: [alpha]
          labeled_sizes: [1000]
    """, base=False)
    cost = CostModel(throughput={"resnet18": {"pretrain": 10.0, "finetune": 100.0, "extract": 1000.0}},
                     job_overhead_min=0.0, probe_min=1.0, probe_rate=1e6)
    plan = plan_grid(g, Profile(cost=cost))
    hours = {(j.axes["protocol"], j.axes["eval_dataset"]): cost_hours(j, plan) for j in plan.by_stage("evaluate")}
    # linear: (4000 (all) + 1000 test) / 1000/s + 2 probes x 1 min + 10 classes x (1000 + 4000) rows / 1e6/s, the
    # rate's at 2048-d features: resnet18's 512 a quarter of that
    assert hours["linear", "alpha"] == pytest.approx((5 + 120 + 512 / 2048 * 10 * 5000 / 1e6) / 3600)
    # beta: no train_images, so `all` counts the default 50,000; 10,000 classes
    assert hours["linear", "beta"] == pytest.approx(((50_000 + 1000) / 1000 + 120 + 10_000 * 51_000 / 4e6) / 3600)
    # kNN fits no probe: its fixed part only
    assert hours["knn", "beta"] == pytest.approx(((50_000 + 1000) / 1000 + 120) / 3600)
    # concat: two encoders' features (2 x 512 wide), probed on alpha's 10 classes
    assert hours["concat", "alpha"] == pytest.approx((2 * 2000 / 1000 + 60 + 1024 / 2048 * 10 * 1000 / 1e6) / 3600)
    assert not [n for n in plan.estimate["notes"] if "classes" in n]
    g.write_text(g.read_text().replace(", classes: 10000}", "}"))  # unknown classes: the fixed part, and a note
    plan = plan_grid(g, Profile(cost=cost))
    (linear_beta,) = [j for j in plan.by_stage("evaluate") if j.axes["protocol"] == "linear"
                      and j.axes["eval_dataset"] == "beta"]
    assert cost_hours(linear_beta, plan) == pytest.approx(((50_000 + 1000) / 1000 + 120) / 3600)
    assert [n for n in plan.estimate["notes"] if "classes" in n] == [
        "linear probes on 'beta' without datasets.beta.classes: counted at probe_min per labeled size only; give "
        "classes for their cost (labeled rows x classes / probe_rate)"]


def test_the_estimate_notes_that_per_level_granularity_probes_count_the_finest_levels_classes_only(write_grid):
    """per_level fits a probe per taxonomy level: counted at `classes` (the finest level), which the note says (the
    estimate cannot know the coarser levels' counts); the paper's mapped-up granularity fits one probe, no note."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, train_images: 4000, test_images: 1000, classes: 10}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1}
    axes: {method: [simclr], dataset: [alpha], size: [100]}
    stages:
      evaluate:
        - {protocol: granularity, labeled_sizes: [1000], levels: [genus, species]}
    """, base=False)
    assert not [n for n in plan_grid(g).estimate["notes"] if "per_level" in n]
    g.write_text(g.read_text().replace("levels: [genus, species]}", "levels: [genus, species], "
                                                                      "params: {per_level: true}}"))
    assert [n for n in plan_grid(g).estimate["notes"] if "per_level" in n] == [
        "granularity per_level on 'alpha': its probes counted at the finest level's 10 classes only; each coarser "
        "level's probe adds the cost of its own classes (iNat21's seven levels: ~1.6x the species probe)"]


def test_only_granularitys_per_level_is_noted(write_grid):
    """A linear entry's per_level (refused by `study plan --check`, not by the plan) fits one probe: no note."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000, classes: 10}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1}
    axes: {method: [simclr], dataset: [alpha], size: [100]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [10], params: {per_level: true}}
    """, base=False)
    assert not [n for n in plan_grid(g).estimate["notes"] if "per_level" in n]


def test_a_profile_sets_the_probe_rate_and_refuses_zero(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("name: mine\ncost:\n  probe_rate: 2.5e5\n")
    assert load_profile(p).cost.probe_rate == 2.5e5
    p.write_text("name: mine\ncost:\n  probe_rate: 0\n")
    with pytest.raises(StudyError, match=f"{p}:3: cost.probe_rate: expected a number > 0, got 0"):
        load_profile(p)


def test_a_profiles_cost_keeps_the_rates_it_does_not_set_and_refuses_an_unknown_key(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("name: mine\ncost:\n  throughput: {resnet18: {pretrain: 50}}\n  default_test_images: 2000.0\n")
    cost = load_profile(p).cost
    assert (cost.rate("resnet18", "pretrain"), cost.rate("resnet18", "finetune")) == (50.0, 3500.0)  # not resnet50's
    assert repr(cost.default_test_images) == "2000"  # a count: notes write it as 2,000
    p.write_text("name: mine\ncost:\n  probe_rat: 2.5e5\n")
    with pytest.raises(StudyError, match="probe_rat"):
        load_profile(p)
    p.write_text("name: mine\ncost:\n  throughput: {resnet18: {pretrian: 50}}\n")
    with pytest.raises(StudyError, match="pretrian"):
        load_profile(p)


MEASURED_PROFILE = """\
name: measured
cost:
  throughput:
    resnet18:
      pretrain: 100
      width: 8
      image_size: 28
      device: cpu
      method_factor: {supervised: 5.0}
"""


def test_rates_measured_on_one_backbone_price_its_jobs_only_and_others_are_noted(write_grid, tmp_path):
    """rates.yaml's way of writing a backbone's rates: its measured method factors price that backbone's jobs (not
    resnet50's, which keep the profile's `method_factor`), a job run at another width, image size or device than the
    rates were measured at is noted (counted unscaled), and a backbone the profile gives no rates is noted as at the
    built-in defaults."""
    prof = tmp_path / "measured.yaml"
    prof.write_text(MEASURED_PROFILE)
    profile = load_profile(prof)
    g = write_grid("""
    axes: {method: [simclr, supervised], backbone: [resnet18, resnet50], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {}
    """)
    plan = plan_grid(g, profile)
    hours = {(j.axes["method"], j.axes["backbone"]): cost_hours(j, plan) - profile.cost.job_overhead_min / 60
             for j in plan.by_stage("pretrain")}
    assert hours[("supervised", "resnet18")] == pytest.approx(5.0 * hours[("simclr", "resnet18")])
    assert hours[("supervised", "resnet50")] == pytest.approx(0.5 * hours[("simclr", "resnet50")])  # the default
    assert hours[("simclr", "resnet18")] == pytest.approx(1000 / 100 / 3600)
    notes = plan.estimate["notes"]
    assert [n for n in notes if "unscaled" in n] == [
        "pretrain jobs of resnet18 with width 64 (measured at 8), image size 224 (measured at 28), GPUs (measured on "
        "cpu): counted at cost.throughput.resnet18's rates (profile line 4) unscaled, which hold only where they were "
        "measured: measure them at the jobs' own settings (`study report` writes rates.yaml)"]
    assert [n for n in notes if "built-in defaults" in n] == [
        "backbone 'resnet50': the profile's cost.throughput gives it no rates: counted at the built-in defaults (ours, "
        "rough A100 rates at 224 px); set cost.throughput.resnet50 in the profile"]
    alike = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {resources: {gpus: 0}}
    """, name="alike.yaml", pretrain={"width": 8, "image_size": 28})
    assert not any("unscaled" in n or "built-in" in n for n in plan_grid(alike, profile).estimate["notes"])
    assert not any("built-in" in n for n in plan_grid(g).estimate["notes"])  # no profile: the defaults, as documented


def test_rates_measured_on_another_kind_of_gpu_than_a_stage_asks_for_are_noted(write_grid, tmp_path):
    """rates.yaml writes the GPU's name as `device` (`NVIDIA A100-SXM4-80GB`); a profile whose stage asks for
    `gpu_type: h100` was estimated at those rates, unsaid (only a CPU against a GPU was noted)."""
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ngpu_type: h100\nstages:\n  evaluate: {gpu_type: a100}\ncost:\n  throughput:\n"
                       "    resnet18: {pretrain: 100, finetune: 100, extract: 100, device: NVIDIA A100-SXM4-80GB}\n")
    g = write_grid(ALPHA_RESNET18 + """
    axes: {method: [simclr], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {}
      evaluate:
        - protocol: linear
          eval_datasets: same
    """, base=False)
    said = [n for n in plan_grid(g, profile).estimate["notes"] if "gpu_type" in n]
    assert said == ["pretrain jobs of resnet18 ask for h100 GPUs (the profile's gpu_type): counted at "
                    "cost.throughput.resnet18's rates, measured on NVIDIA A100-SXM4-80GB, unscaled: measure them on "
                    "h100 (`study report` writes rates.yaml)"], said  # the evaluations' a100 is the device's
    profile.write_text(profile.read_text().replace("gpu_type: h100", "gpu_type: A100"))
    assert not [n for n in plan_grid(g, profile).estimate["notes"] if "gpu_type" in n]


def test_local_profiles_measured_rates_say_where_they_were_measured(write_grid):
    """local.yaml's resnet18_small rates are the quickstart's (width 8, 28 px, a CPU) but did not say so: a grid at
    56 px was counted at them unscaled, unnoted. The quickstart's own jobs are not noted."""
    profile = load_profile(REPO / "grids" / "profiles" / "local.yaml")
    assert profile.cost.measured_at["resnet18_small"] == {"width": 8, "image_size": 28, "device": "cpu"}
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {resources: {gpus: 0}}
    """, pretrain={"backbone": "resnet18_small", "width": 8, "image_size": 56})
    said = [n for n in plan_grid(g, profile).estimate["notes"] if "unscaled" in n]
    assert len(said) == 1 and said[0].startswith("pretrain jobs of resnet18_small with image size 56 (measured at "
                                                  "28): counted at cost.throughput.resnet18_small's rates"), said
    quickstart = plan_grid(REPO / "grids" / "quickstart.yaml", profile)
    assert not [n for n in quickstart.estimate["notes"] if "unscaled" in n]


def test_the_cost_models_rates_entry_of_grids_readme_loads_as_written(tmp_path):
    text = Path("grids/README.md").read_text().split("## Cost model")[1].split("```yaml\n")[1].split("```")[0]
    (tmp_path / "p.yaml").write_text(text)
    cost = load_profile(tmp_path / "p.yaml").cost
    assert cost.measured_at == {"resnet18_small": {"width": 8, "image_size": 28, "device": "cpu"}}
    assert cost.factor("resnet18_small", "supervised") == 5.13 and cost.factor("resnet50", "supervised") == 0.5


@pytest.mark.parametrize("entry, line, message", [
    ("width: 0", 6, "cost.throughput.resnet18.width: expected the width the rates were measured at, an integer >= 1, "
                    "got 0"),
    ("image_size: 28px", 6, "cost.throughput.resnet18.image_size: expected the image_size the rates were measured "
                            "at, an integer >= 1, got '28px'"),
    ("device: 3", 6, "cost.throughput.resnet18.device: expected the device the rates were measured on"),
    ("method_factor: {supervised: fast}", 6, "cost.throughput.resnet18.method_factor.supervised: expected a number "
                                             ">= 0, got 'fast'"),
    ("imagesize: 28", 6, "unknown throughput key 'imagesize' (did you mean 'image_size'?)"),
])
def test_a_malformed_rates_entry_names_the_file_line_and_key(tmp_path, entry, line, message):
    p = tmp_path / "p.yaml"
    p.write_text(f"name: mine\ncost:\n  throughput:\n    resnet18:\n      pretrain: 100\n      {entry}\n")
    with pytest.raises(StudyError) as e:
        load_profile(p)
    assert str(e.value).startswith(f"{p}:{line}: {message}"), str(e.value)


def test_a_concatenation_of_two_backbones_is_not_noted_as_an_unknown_backbone(write_grid):
    g = write_grid("""
    axes: {method: [simclr], backbone: [resnet18, resnet50], dataset: [alpha], size: [1000]}
    stages:
      pretrain: {}
      evaluate:
        - protocol: concat
          pairs: [[{backbone: resnet18}, {backbone: resnet50}]]
          eval_datasets: [alpha]
    """)
    plan = plan_grid(g)
    assert [j.axes["backbone"] for j in plan.by_stage("evaluate")] == ["resnet18|resnet50"]
    assert not [n for n in plan.estimate["notes"] if "throughput" in n]


def test_an_estimate_under_a_tenth_of_an_hour_reads_in_minutes():
    """A small CPU grid's job-hours read '0.0' before: minutes say how long; none at all stays 0.0 hours."""
    assert _amount(0.05, "job") == "3.0 job-minutes"
    assert _amount(0.0, "GPU") == "0.0 GPU-hours" and _amount(2.74, "GPU") == "2.7 GPU-hours"
    assert _amount(0.1, "GPU") == "0.1 GPU-hours" and _amount(0.09, "GPU") == "5.4 GPU-minutes"
    assert _hours(1.0) == "1.0 h" and _hours(0.99) == "59 min"


def test_a_job_under_half_a_minute_reads_in_seconds_not_0_min():
    """The tiny quickstart's plan read `longest job 0 min` for jobs of 8-15 s."""
    assert _hours(8 / 3600) == "8 s" and _hours(89 / 3600) == "89 s" and _hours(0.0) == "0 s"
    assert _hours(90 / 3600) == "2 min" and _hours(0.5) == "30 min"


@pytest.mark.parametrize("grid", sorted(p.name for p in (REPO / "grids").glob("*.yaml")))
def test_every_shipped_grid_plans_and_passes_the_check(grid):
    """Every grid under grids/ (the quickstart's too, and any added later), not only the paper's four."""
    plan = plan_grid(REPO / "grids" / grid)
    plan.check(manifests=False)
    assert plan.by_stage("pretrain") and plan.by_stage("evaluate")
    assert len({j.id for j in plan.jobs}) == len(plan.jobs)


def test_cost_model_reads_the_pretraining_batch_and_a_datasets_train_images(write_grid):
    """A step budget counts the grid's batch size (not PretrainConfig's); without a size axis, an epoch is the
    dataset's `train_images`."""
    head = """
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, train_images: 3600}
    defaults:
      pretrain: {backbone: resnet18, %s}
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """
    cost = CostModel(throughput={"resnet18": {"pretrain": 10.0}}, method_factor={"simclr": 1.0},
                     job_overhead_min=0.0)
    plan = plan_grid(write_grid(head % "steps: 10, batch_size: 64", name="steps.yaml", base=False), Profile(cost=cost))
    assert cost_hours(plan.jobs[0], plan) == pytest.approx(10 * 64 / 10 / 3600)  # not 10 x 4096
    plan = plan_grid(write_grid(head % "epochs: 2", name="epochs.yaml", base=False), Profile(cost=cost))
    assert cost_hours(plan.jobs[0], plan) == pytest.approx(2 * 3600 / 10 / 3600)
    assert not [n for n in plan.estimate["notes"] if "without a size" in n]
    # a size axis wins over the dataset's train_images
    sized = head.replace("[alpha]}", "[alpha], size: [1200]}")
    plan = plan_grid(write_grid(sized % "epochs: 2", name="sized.yaml", base=False), Profile(cost=cost))
    assert cost_hours(plan.jobs[0], plan) == pytest.approx(2 * 1200 / 10 / 3600)
    # a pooled set without a size axis: the images it takes of its sources (not 0)
    pooled = head.replace("train_images: 3600}", "train_images: 3600}\n      beta: {train: b_train, test: b_val}\n"
                          "      alpha+beta: {train: ab_train, pool: {alpha: 1000, beta: 600}}")
    pooled = pooled.replace("[alpha]", "[alpha+beta]")
    plan = plan_grid(write_grid(pooled % "epochs: 2", name="pooled.yaml", base=False), Profile(cost=cost))
    assert cost_hours(plan.jobs[0], plan) == pytest.approx(2 * 1600 / 10 / 3600)
    assert not [n for n in plan.estimate["notes"] if "without a size" in n]


def test_the_feature_cache_estimate_counts_each_file_the_cache_writes_once(write_grid):
    """rows x width x 4 bytes per file of (encoder, manifest, feature layer, transform): kNN jobs on the encoder a
    linear job probes share its test features and its labeled extraction of as many rows, but a larger one is a file
    of its own (the linear job, listed first, may well run first); an inner layer is narrower; another image size is
    another file; fine-tuning caches nothing."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000}
      beta: {train: b_train, test: b_val, test_images: 500}
    defaults:
      pretrain: {backbone: resnet18, width: 32, epochs: 1}
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [1000, 2000]}
        - {protocol: knn, labeled_sizes: [3000, 2000]}
        - {protocol: knn, labeled_sizes: [2000], variant: again}
        - {protocol: linear, labeled_sizes: [1500], params: {feature_layer: layer3}, variant: inner}
        - {protocol: linear, labeled_sizes: [100], eval_datasets: [beta]}
        - {protocol: linear, labeled_sizes: [100], params: {image_size: 160}, variant: small, eval_datasets: [beta]}
        - {protocol: finetune, labeled_sizes: [4000]}
    """, base=False)
    plan = plan_grid(g, Profile())
    notes = set()
    gb = feature_cache_gb(plan.jobs, plan.grid, Profile().cost, notes)
    pooled, layer3 = 256 * 4, 128 * 4  # resnet18 at width 32: 512 x 32 / 64 features, layer3 half of them
    assert gb * 1e9 == pytest.approx(pooled * (2000 + 3000 + 1000) + layer3 * (1500 + 1000)
                                     + 2 * pooled * (100 + 500))
    assert notes == set() and plan.estimate["feature_cache_gb"] == round(gb, 1)


def test_the_feature_cache_knows_every_backbones_width(write_grid):
    """Each registered backbone has its width in FEATURE_DIMS (else the estimate notes it and counts resnet50's): the
    note is asked of a name no backbone takes (`vit_tiny` was one, until someone registers a tiny ViT so)."""
    from study.train.backbones import BACKBONES

    assert sorted(BACKBONES.names()) == sorted(FEATURE_DIMS)
    assert "no_such_backbone" not in BACKBONES
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000}
    axes: {method: [simclr], dataset: [alpha], backbone: [resnet50_small, no_such_backbone], size: [5000]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [1000]}
    """, base=False)
    plan = plan_grid(g, Profile())
    notes = set()
    assert feature_cache_gb(plan.jobs, plan.grid, Profile().cost, notes) * 1e9 == pytest.approx(2 * 2048 * 4 * 2000)
    assert [n for n in notes if "feature cache" in n] == [
        "backbone 'no_such_backbone': feature cache and probes counted at resnet50's 2048 features per image (add it "
        "to study.grids.cost.FEATURE_DIMS)"]


def test_an_evaluation_holding_more_features_than_its_mem_is_noted(write_grid):
    """About the memory a frozen-feature evaluation holds: features (labeled + test rows x width x 4 bytes), and the
    larger phase: kNN's two similarity blocks (no copy of the features: knn.score_blocks), or a probe's L-BFGS state
    (56 x classes x (width + 1)); 1 GB besides; beyond the job's `mem`, a note names the largest and where its `mem`
    was set."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000, classes: 10}
    defaults:
      pretrain: {backbone: resnet18, width: 32, epochs: 1}
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [100k], resources: {mem: 1G}}
        - {protocol: knn, labeled_sizes: [200k],
           resources: {mem: 1G}}
        - {protocol: linear, labeled_sizes: [1000], resources: {mem: 2G}, variant: small}
        - {protocol: linear, labeled_sizes: [1000], params: {also_knn: true}, variant: both}
    """, base=False)
    plan = plan_grid(g, Profile())
    pretrain = {j.id: j for j in plan.jobs if j.stage == "pretrain"}
    linear, knn, small, both = (j for j in plan.jobs if j.stage == "evaluate")
    gb = [cost_mod.evaluation_memory_gb(j, plan.grid, Profile().cost, pretrain, set())
          for j in (linear, knn, small, both)]
    width, probe = 256, 56 * 10 * 257  # resnet18 at width 32
    assert gb[0] == pytest.approx((101_000 * width + probe) * 4 / 1e9 + 1.0)  # 1.1 GB
    assert gb[1] == pytest.approx(201_000 * width * 4 / 1e9 + 2 * 2 ** 30 / 1e9 + 1.0)  # the test rows too
    assert gb[2] == pytest.approx((2_000 * width + probe) * 4 / 1e9 + 1.0)  # under its 2 GB
    knn_phase = 2 * 2048 * 1000 * 4  # blocks of 2048 test rows x 1000 labeled ones
    assert gb[3] == pytest.approx((2_000 * width * 4 + max(knn_phase, probe * 4)) / 1e9 + 1.0)  # a phase at a time
    assert (f"2 evaluation job(s) would hold more than their `mem` (the most: job {knn.id}, about 3.4 GB of features "
            f"and probe state, 1 GB of it the process's own, against 1 GB): raise `mem` at {g}:12 (its "
            f"stages.evaluate entry's `resources`)") in plan.estimate["notes"]
    # a tiny evaluation just over its 1 GB reads so, not "about 1.0 GB against 1 GB" (the tiny Slurm walk's, whose
    # 100 test and 100 labeled images of 64 features came to 1.0002 GB)
    assert [cost_mod._above(gb, limit) for gb, limit in ((1.0002, 1), (1.04, 1), (3.44, 1), (2.5, 0.5))] == \
        ["1.0002", "1.04", "3.4", "2.5"]
    assert cost_mod.evaluation_memory_gb(pretrain[knn.config["encoders"][0]], plan.grid, Profile().cost, pretrain,
                                         set()) == 0.0  # a pretraining job holds no features


def test_a_frozen_protocol_without_probes_holds_no_probe_state(write_grid, monkeypatch):
    """The memory of a frozen-feature protocol that fits no probe (a table row other than kNN's) is its features and
    the 1 GB besides: the probe's L-BFGS state (56 x classes x (width + 1)) was counted for every protocol but kNN,
    where a probe's time is counted for those that fit probes only."""
    from protocol_rows import NOMEAN, add_protocol

    add_protocol(monkeypatch, NOMEAN)
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000, classes: 10000}
    defaults:
      pretrain: {backbone: resnet18, width: 32, epochs: 1}
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: nomean, labeled_sizes: [100k]}
    """, base=False)
    plan = plan_grid(g, Profile())
    pretrain = {j.id: j for j in plan.jobs if j.stage == "pretrain"}
    (job,) = [j for j in plan.jobs if j.stage == "evaluate"]
    assert cost_mod.evaluation_memory_gb(job, plan.grid, Profile().cost, pretrain, set()) == pytest.approx(
        101_000 * 256 * 4 / 1e9 + 1.0)  # resnet18 at width 32: 256 features


def _knn_mem_note(write_grid, tmp_path, labeled: str, node: str = "") -> tuple[str, Path]:
    """(`mem` note, profile file) of a grid of one kNN evaluation at `labeled` labeled images, under a profile that
    gives evaluations 2 GB (and, with `node`, a mem_per_node)."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, test_images: 1000, classes: 10}
    axes: {method: [simclr], dataset: [alpha], size: [5000]}
    stages:
      evaluate:
        - {protocol: knn, labeled_sizes: [LABELED]}
    """.replace("LABELED", labeled), base=False)
    prof = tmp_path / "small.yaml"
    prof.write_text("name: small\n" + (f"mem_per_node: {node}\n" if node else "")
                    + "stages:\n  pretrain: {mem: 4G}\n  evaluate: {mem: 2G}\n")
    (note,) = [n for n in plan_grid(g, prof).estimate["notes"] if "`mem`" in n]
    return note, prof


def test_an_evaluations_mem_from_the_profile_is_raised_there(write_grid, tmp_path):
    """A job whose `mem` is the profile's: the note names the profile's stages.evaluate line, and the grid entry."""
    note, prof = _knn_mem_note(write_grid, tmp_path, "200k")
    assert note.endswith(f"against 2 GB): raise `mem` in the profile's stages.evaluate ({prof}:4), or in the grid's "
                         "evaluate entry's `resources`"), note


def test_an_evaluation_beyond_a_nodes_memory_is_not_told_to_raise_its_mem(write_grid, tmp_path):
    """Where no node holds the features (more than the profile's mem_per_node), the note names other remedies."""
    note, _ = _knn_mem_note(write_grid, tmp_path, "2M", node="8G")
    assert note.endswith("against 2 GB): more than a node's 8 GB (the profile's mem_per_node): give it fewer labeled "
                         "images, an inner feature_layer (narrower features) or a profile for nodes with more "
                         "memory"), note
    note, prof = _knn_mem_note(write_grid, tmp_path, "2M", node="32G")
    assert f"raise `mem` in the profile's stages.evaluate ({prof}:5)" in note  # 2M x 2048 floats: 16 GB, a node 32


def test_counts_a_dataset_does_not_give_are_noted(write_grid):
    """Labeled size `all` without `train_images`, a test set without `test_images`: each counted as
    default_test_images, and a note says so (the estimate's time, disk and memory rest on them)."""
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: a_train, test: a_val, classes: 10}
      beta: {train: b_train, test: b_val, train_images: 7000, test_images: 700, classes: 10}
    axes: {method: [simclr], dataset: [alpha, beta], size: [5000]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [1000, all]}
    """, base=False)
    plan = plan_grid(g, Profile())
    assert [n for n in plan.estimate["notes"] if "default_test_images" in n] == [
        "evaluations on 'alpha' at labeled size `all` without datasets.alpha.train_images: counted as "
        "default_test_images (50,000) images; give train_images for their estimate",
        "evaluations on 'alpha' without datasets.alpha.test_images: their test sets counted as default_test_images "
        "(50,000); give test_images for their estimate"]
    alpha, beta = (j for j in plan.jobs if j.stage == "evaluate")
    assert cost_mod._eval_rows(beta, plan.grid, Profile().cost, set()) == ([1000, 7000], 700)
    assert cost_mod._eval_rows(alpha, plan.grid, Profile().cost, set()) == ([1000, 50_000], 50_000)
    g.write_text(g.read_text().replace("train_images: 7000, test_images: 700, ", ""))
    notes = [n for n in plan_grid(g, Profile()).estimate["notes"] if "default_test_images" in n]
    assert notes == [  # one note per thing said, naming each dataset it holds for
        "evaluations on 'alpha', 'beta' at labeled size `all` without datasets.<key>.train_images: counted as "
        "default_test_images (50,000) images; give train_images for their estimate",
        "evaluations on 'alpha', 'beta' without datasets.<key>.test_images: their test sets counted as "
        "default_test_images (50,000); give test_images for their estimate"]


def test_the_knn_block_the_memory_estimate_counts_is_knns():
    """cost.py keeps kNN's similarity block size and rows (so that the estimate imports no torch): knn.py's."""
    from study.evaluate.knn import BLOCK_BYTES, rows_per_block

    assert cost_mod.KNN_BLOCK_BYTES == BLOCK_BYTES
    assert rows_per_block(1) == cost_mod.KNN_BLOCK_ROWS  # the most rows a block, where they fit


def test_a_concatenations_memory_counts_its_side_by_side_copy():
    """Two encoders' features (resnet18: 512 each), then their columns side by side once more; the probe's state
    over the 1024 columns (the fixture's concat: 200 labeled images of alpha and its 1000 test images)."""
    plan = plan_grid(FIXTURE)
    pretrain = {j.id: j for j in plan.jobs if j.stage == "pretrain"}
    (concat,) = [j for j in plan.jobs if j.axes.get("protocol") == "concat"]
    rows = 200 + 1000
    assert cost_mod.evaluation_memory_gb(concat, plan.grid, Profile().cost, pretrain, set()) == pytest.approx(
        (rows * 1024 * 2 + 56 * 10 * 1025) * 4 / 1e9 + 1.0)


@pytest.mark.parametrize("backbone", sorted(FEATURE_DIMS))
def test_the_feature_cache_widths_are_the_backbones(backbone):
    """FEATURE_DIMS (kept in cost.py so that the estimate needs no model) against the built backbones' features; the
    stages `layer1`..`layer4` where a backbone has them (docs/contributing.md: one without them reads `pooled` only,
    and evaluating another layer of it is refused naming the stage)."""
    import torch

    from study.errors import StudyError
    from study.evaluate.features import LayerFeatures
    from study.train.backbones import build_backbone

    for width in (16, 64):
        encoder = build_backbone(backbone, width).eval()
        assert encoder.feature_dim == FEATURE_DIMS[backbone] * width // 64
        with torch.no_grad():
            for n in (1, 2, 3, 4):
                if getattr(encoder, f"layer{n}", None) is None:
                    with pytest.raises(StudyError, match=f"backbone '{backbone}' has no stage 'layer{n}'"):
                        LayerFeatures(encoder, f"layer{n}")
                    continue
                out = LayerFeatures(encoder, f"layer{n}")(torch.zeros(1, 3, 64, 64))
                assert out.shape == (1, FEATURE_DIMS[backbone] * width // 64 // 2 ** (4 - n)), (width, n)


def test_a_jobs_text_names_its_axes_for_progress_lines():
    """What a local run's progress lines say a job is: its pretraining axes, a corruption where there is one, and
    an evaluation's protocol and dataset."""
    texts = {job_text(j) for j in plan_grid(FIXTURE).jobs}
    assert "simclr resnet18 alpha 1k seed 0" in texts
    assert "simclr resnet18 alpha 1k downsample:factor=2 seed 0" in texts
    assert "supervised resnet18 beta 1k seed 0: linear on beta" in texts
    assert not any("none" in t or "None" in t for t in texts)


def test_a_jobs_text_tells_apart_the_jobs_of_one_labeled_size_each():
    """The fine-tuning jobs of one encoder, a job per labeled size, read apart in the progress lines (they read the
    same, `finetune on alpha`, before), as do the scratch jobs; a job of several sizes names none."""
    jobs = plan_grid(FIXTURE).jobs
    texts = [job_text(j) for j in jobs]
    assert "simclr resnet18 alpha 1k seed 0: finetune on alpha at 100 labels" in texts
    assert "simclr resnet18 alpha 1k seed 0: finetune on alpha at 200 labels" in texts
    assert "resnet18 seed 0: scratch on beta at 100 labels" in texts, texts
    assert len(set(texts)) == len(jobs)  # every job of the fixture reads apart from the others
    assert "simclr resnet18 alpha 1k seed 0: linear on alpha" in texts  # [100, 200]: no size said


def test_a_jobs_text_names_an_evaluations_variant(write_grid):
    """Two evaluations apart only by their variant read apart in the progress lines."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: knn, labeled_sizes: [10]}
        - {protocol: knn, labeled_sizes: [10], variant: again}
    """)
    texts = sorted(job_text(j) for j in plan_grid(g).jobs if j.stage == "evaluate")
    assert len(texts) == 2 and texts[0] + " (again)" == texts[1], texts
    assert plan_table(plan_grid(g)).splitlines()[0].split()[-3:] == ["variant", "labeled", "deps"]  # a column


def test_a_plan_finds_each_job_by_id_and_refuses_an_unknown_one():
    plan = plan_grid(FIXTURE)
    assert all(plan.job(j.id) is j for j in plan.jobs)
    with pytest.raises(KeyError, match="^'nope'$"):
        plan.job("nope")
    plan = plan_grid(FIXTURE)  # the index follows the jobs: one added after a lookup is found
    first, rest = plan.jobs[0], plan.jobs[1:]
    plan.jobs = [first]
    assert plan.job(first.id) is first
    plan.jobs = [first, *rest]
    assert plan.job(rest[-1].id) is rest[-1]


def test_plan_repr_is_one_short_line():
    """A notebook shows a plan as its name, file, job counts and profile, not every job's config (96k characters for
    data_quantity's 176 jobs)."""
    plan = plan_grid("grids/data_quantity.yaml", profile="grids/profiles/example_gpu.yaml")
    text = repr(plan)
    assert text == ("Plan('data_quantity', 'grids/data_quantity.yaml', 176 jobs: 40 pretrain, 136 evaluate; "
                    "profile 'example_gpu')")


def test_table_summary_of_a_pretrain_only_grid_and_a_job_limit_alone(write_grid):
    """No evaluation: no empty `()` of protocols; a profile limiting jobs but not GPUs says so."""
    plan = plan_grid(write_grid("axes: {method: [simclr], dataset: [alpha, beta]}\nstages: {pretrain: {}}\n"))
    assert "grid t: 2 pretrain, 0 evaluate, 2 jobs\n" in plan_table(plan)
    assert "disk:" not in plan_table(plan)  # no frozen-feature evaluation: no feature cache line
    plan.estimate.update(max_parallel_gpus=None, max_parallel_jobs=3)
    assert " with 3 jobs at once\n" in plan_table(plan)


def test_the_table_prints_sizes_as_counts_and_a_seed_as_it_is(write_grid):
    """A size (pretraining or labeled) reads as a count (`20k`, `10k`); a seed is no count: 1000 stays `1000`."""
    plan = plan_grid(write_grid("axes: {method: [simclr], dataset: [alpha], size: [20000]}\nseeds: [1000]\n"
                                "stages: {evaluate: [{protocol: linear, labeled_sizes: [100, 10000]}]}\n"))
    header, *rows = plan_table(plan).split("\n\n")[0].splitlines()
    columns = header.split()
    probe = dict(zip(columns, next(r for r in rows if " evaluate " in r).split()))
    assert (probe["size"], probe["seed"], probe["labeled"]) == ("20k", "1000", "100,10k")
