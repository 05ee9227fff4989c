"""Stable ids (key order, two grids sharing a job), dependency wiring, topological order."""
from dataclasses import replace

import pytest

from study.errors import StudyError
from study.grids import Job, Profile, load_grid, plan_grid
from study.grids.expand import expand_points
from study.grids.jobs import build_jobs, id_config, job_id
from study.grids.render import plan_json, plan_table
from study.grids.schema import value_line
from study.hashing import config_hash


def test_id_is_hash_of_config_and_ignores_key_order(write_grid):
    a = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [10]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [5]}]}
    """, name="a.yaml")
    b = write_grid("""
    name: other_name
    defaults:
      pretrain: {batch_size: 8, epochs: 1, backbone: resnet18}
    datasets:
      beta: {test: beta_val, train: beta_train}
      alpha: {test: alpha_val, train: alpha_train}
    stages: {evaluate: [{labeled_sizes: [5], protocol: linear}]}
    axes: {size: [10], dataset: [alpha], method: [simclr]}
    """, name="b.yaml", base=False)
    pa, pb = plan_grid(a), plan_grid(b)
    assert [j.id for j in pa.jobs] == [j.id for j in pb.jobs]
    for j in pa.jobs:
        assert j.id == job_id(j.config) == config_hash(id_config(j.config)) and len(j.id) == 12
        assert "t" not in j.config.values() and "grid" not in j.config  # the grid's name is not in the config


def test_another_methods_settings_leave_a_jobs_id_and_its_own_change_it(write_grid):
    """A grid's defaults gaining `pretrain.moco` (MoCo's own settings) is no change to its SimCLR jobs, which neither
    read nor record them; MoCo's jobs are other jobs (another queue)."""
    def ids(pretrain: dict) -> dict:
        grid = write_grid("""
        axes: {method: [simclr, moco], dataset: [alpha]}
        stages: {evaluate: [{protocol: linear}]}
        """, pretrain=pretrain)
        return {(j.stage, j.axes["method"]): j.id for j in plan_grid(grid).jobs}

    before, after = ids({"batch_size": 8}), ids({"batch_size": 8, "moco": {"queue_size": 64}})
    assert after[("pretrain", "simclr")] == before[("pretrain", "simclr")]
    assert after[("evaluate", "simclr")] == before[("evaluate", "simclr")]
    assert after[("pretrain", "moco")] != before[("pretrain", "moco")]
    assert after[("evaluate", "moco")] != before[("evaluate", "moco")]  # its encoder is another job


def test_a_setting_a_method_never_reads_leaves_its_jobs_ids(write_grid):
    """SimCLR's temperature and head changed mid-study: SimCLR's jobs are other jobs; MoCo's (a temperature, no
    `head`) for the temperature alone; supervised, BYOL and random jobs, which read neither (UNREAD_SETTINGS), and
    their evaluations, keep their ids and results; a random job keeps them through a changed schedule too."""
    def ids(**pretrain) -> dict:
        grid = write_grid("""
        axes: {method: [simclr, moco, byol, supervised, random], dataset: [alpha]}
        stages: {evaluate: [{protocol: linear}]}
        """, name="g.yaml", pretrain={"batch_size": 8, **pretrain})
        return {(j.stage, j.axes["method"]): j.id for j in plan_grid(grid).jobs}

    before = ids(temperature=0.2, head=[16, 8])
    head, temperature = ids(temperature=0.2, head=[32, 8]), ids(temperature=0.5, head=[16, 8])
    for stage in ("pretrain", "evaluate"):
        assert head[stage, "simclr"] != before[stage, "simclr"] != temperature[stage, "simclr"]
        assert head[stage, "moco"] == before[stage, "moco"] != temperature[stage, "moco"]
        for method in ("byol", "supervised", "random"):
            assert head[stage, method] == before[stage, method] == temperature[stage, method], (stage, method)
    # the schedule, optimizer and augmentation: read by every method but random (TRAINING_SETTINGS)
    schedule = ids(temperature=0.2, head=[16, 8], steps=7, optim={"lr": 0.3}, augment={"flip_p": 0.0})
    for stage in ("pretrain", "evaluate"):
        assert schedule[stage, "random"] == before[stage, "random"], stage
        assert all(schedule[stage, m] != before[stage, m] for m in ("simclr", "moco", "byol", "supervised")), stage


def test_a_setting_a_protocol_never_reads_leaves_its_jobs_ids(write_grid):
    """`defaults.evaluate` gaining fine-tuning settings (`finetune`, `epochs`, `width`) changes the fine-tuning jobs
    and leaves the linear probes' ids, which read none; kNN settings enter a probe's id with `also_knn` alone."""
    def ids(evaluate: str, entry: str = "") -> dict:
        grid = write_grid(f"""
        axes: {{method: [simclr], dataset: [alpha]}}
        stages: {{evaluate: [{{protocol: linear{entry}}}, {{protocol: finetune, labeled_sizes: [5]}}]}}
        """, name="g.yaml")
        grid.write_text(grid.read_text().replace("  pretrain:", f"  evaluate: {evaluate}\n  pretrain:", 1))
        return {j.axes["protocol"]: j.id for j in plan_grid(grid).jobs if j.stage == "evaluate"}

    before = ids("{image_size: 12}")
    tuned = ids("{image_size: 12, epochs: 3, width: 8, finetune: {batch_size: 4}}")
    assert tuned["linear"] == before["linear"] and tuned["finetune"] != before["finetune"]
    knn = "{image_size: 12, knn: {k: 3}}"
    assert ids(knn)["linear"] == before["linear"]
    also = ", params: {also_knn: true}"
    assert ids(knn, also)["linear"] != ids("{image_size: 12}", also)["linear"]


def test_same_job_in_two_grids_is_one_job(write_grid):
    a = write_grid("""
    axes: {method: [simclr, byol], dataset: [alpha]}
    stages: {evaluate: [{protocol: linear}]}
    """, name="a.yaml")
    b = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages: {evaluate: [{protocol: linear}, {protocol: knn}]}
    """, name="b.yaml")
    ids_a = {(j.stage, j.axes["method"], j.axes["dataset"], j.axes["protocol"]): j.id for j in plan_grid(a).jobs}
    ids_b = {(j.stage, j.axes["method"], j.axes["dataset"], j.axes["protocol"]): j.id for j in plan_grid(b).jobs}
    shared = set(ids_a) & set(ids_b)
    assert shared == {("pretrain", "simclr", "alpha", None), ("evaluate", "simclr", "alpha", "linear")}
    assert all(ids_a[k] == ids_b[k] for k in shared)
    assert ids_a[("pretrain", "byol", "alpha", None)] != ids_b[("pretrain", "simclr", "beta", None)]


def test_labeled_sizes_in_another_order_are_one_job(write_grid):
    """One set of labeled sizes is one probe job, whatever their order in the file: ascending, `all` last."""
    a = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [5, all, 2]}]}
    """, name="a.yaml")
    b = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {evaluate: [{protocol: linear, labeled_sizes: [2, 5, all]}]}
    """, name="b.yaml")
    ja, jb = ([j for j in plan_grid(g).jobs if j.stage == "evaluate"] for g in (a, b))
    assert [j.id for j in ja] == [j.id for j in jb] and len(ja) == 1
    assert ja[0].config["evaluate"]["labeled_sizes"] == [2, 5, "all"]


def test_a_changed_setting_changes_the_id(write_grid):
    g1 = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", name="a.yaml")
    g2 = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", name="b.yaml")
    g2.write_text(g2.read_text().replace("epochs: 1,", "epochs: 2,"))
    assert plan_grid(g1).jobs[0].id != plan_grid(g2).jobs[0].id


def test_a_whole_number_written_as_a_float_is_the_same_job(write_grid):
    """`warmup_epochs: 0` in one grid and `0.0` in another (or `epochs: 1.0` after an edit) run the same job, as
    their results' fingerprints say: one id; `0.5` is another job."""
    def ids(pretrain: dict) -> list[str]:
        grid = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", pretrain=pretrain)
        return [j.id for j in plan_grid(grid).jobs]

    assert ids({"epochs": 1, "optim": "{warmup_epochs: 0}"}) == ids({"epochs": 1.0, "optim": "{warmup_epochs: 0.0}"})
    assert ids({"epochs": 1}) != ids({"epochs": 0.5})


def test_run_only_settings_do_not_change_ids_and_device_does(write_grid):
    body = """
    axes: {method: [simclr], dataset: [alpha]}
    stages: {evaluate: [{protocol: linear}, {protocol: finetune, labeled_sizes: [5]}]}
    """
    base = plan_grid(write_grid(body, name="a.yaml"))
    tuned = write_grid(body, name="b.yaml")  # the loader, checkpoints and logging changed mid-study
    tuned.write_text(tuned.read_text().replace(
        "batch_size: 8}", "batch_size: 8, num_workers: 12, checkpoint_every_minutes: 5, log_every_steps: 10}\n"
        "  evaluate: {num_workers: 3, checkpoint_every_minutes: 2, finetune: {num_workers: 2, "
        "checkpoint_every_steps: 100}}"))
    tuned_jobs = plan_grid(tuned).jobs
    assert tuned_jobs[0].config["pretrain"]["num_workers"] == 12  # kept in the config the job runs with
    assert [j.id for j in tuned_jobs] == [j.id for j in base.jobs]
    on_cpu = write_grid(body, name="c.yaml")
    on_cpu.write_text(on_cpu.read_text().replace("batch_size: 8}", "batch_size: 8, device: cpu}"))
    assert plan_grid(on_cpu).jobs[0].id != base.jobs[0].id  # fp32 on a CPU is not bf16 on a GPU


def test_dependencies_and_topological_order(write_grid):
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha, beta]}
    stages:
      evaluate:
        - {protocol: linear}
        - protocol: concat
          pairs: [[{method: simclr, dataset: alpha}, {method: supervised, dataset: beta}]]
          eval_datasets: [alpha]
    """)
    plan = plan_grid(g)
    seen: set[str] = set()
    by_id = {j.id: j for j in plan.jobs}
    for j in plan.jobs:
        assert set(j.depends_on) <= seen  # every dependency comes first
        seen.add(j.id)
        if j.stage == "evaluate":
            assert list(j.depends_on) == j.config["encoders"]
    for j in plan.by_stage("evaluate"):
        if j.axes["protocol"] == "linear":
            (dep,) = j.depends_on
            assert by_id[dep].axes["dataset"] == j.axes["dataset"] == j.axes["eval_dataset"]
            assert by_id[dep].axes["method"] == j.axes["method"]
    (concat,) = [j for j in plan.jobs if j.axes["protocol"] == "concat"]
    a, b = (by_id[d] for d in concat.depends_on)
    assert (a.axes["method"], a.axes["dataset"], b.axes["method"], b.axes["dataset"]) == (
        "simclr", "alpha", "supervised", "beta")
    assert concat.axes["dataset"] == "alpha|beta" and concat.axes["method"] == "simclr|supervised"


def test_job_contract_fields_and_resources_outside_the_id(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {pretrain: {resources: {gpus: 2, time: 90m}}}
    """)
    (job,) = plan_grid(g).jobs
    assert isinstance(job, Job) and job.stage == "pretrain" and job.depends_on == ()
    assert set(job.config) == {"stage", "axes", "pretrain"}
    assert set(job.axes) == {"method", "backbone", "dataset", "size", "corruption", "seed", "protocol", "eval_dataset"}
    assert job.config["pretrain"] == {"backbone": "resnet18", "epochs": 1, "batch_size": 8, "manifest": "alpha_train",
                                      "method": "simclr", "seed": 0}  # seed: unswept, PretrainConfig's
    assert (job.resources.gpus, job.resources.time_min) == (2, 90)
    g.write_text(g.read_text().replace("gpus: 2", "gpus: 4"))
    (job4,) = plan_grid(g).jobs
    assert job4.id == job.id and job4 == job and hash(job4) == hash(job)


def test_labeled_sizes_from_defaults_are_split_like_an_entrys_own(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}
      evaluate: {labeled_sizes: [100, 200, 300]}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: finetune}
        - {protocol: linear}
    """, base=False)
    sizes = {(j.axes["protocol"], tuple(j.config["evaluate"]["labeled_sizes"])) for j in plan_grid(g).jobs
             if j.stage == "evaluate"}
    assert sizes == {("finetune", (100,)), ("finetune", (200,)), ("finetune", (300,)), ("linear", (100, 200, 300))}


def test_entries_scoring_the_same_cells_need_a_variant(write_grid):
    """Two granularity entries that differ only in params would write results to the same report cells, the newer
    hiding the other: refused at the later entry; a `variant` on one makes it an axis of that entry's jobs only."""
    body = """
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - protocol: granularity
        - protocol: granularity
          params: {per_level: true}{variant}
    """
    clash = write_grid(body.replace("{variant}", ""), name="clash.yaml")
    with pytest.raises(StudyError) as e:
        plan_grid(clash)
    first, later = [i for i, ln in enumerate(clash.read_text().splitlines(), 1) if ln.strip().startswith("- protocol")]
    msg = str(e.value)
    assert msg.startswith(f"{clash}:{later}: stages.evaluate[1] makes job ")
    assert f"of stages.evaluate[0] (line {first})" in msg and "variant: <word>" in msg

    plan = plan_grid(write_grid(body.replace("{variant}", "\n          variant: per_level"), name="ok.yaml"))
    mapped, per_level = [j for j in plan.jobs if j.stage == "evaluate"]
    assert "variant" not in mapped.axes and per_level.axes["variant"] == "per_level"
    alone = plan_grid(write_grid(body.split("        - protocol: granularity\n          params")[0], name="one.yaml"))
    assert [j.id for j in alone.jobs] == [j.id for j in plan.jobs][:2]  # the entry without a variant: same ids
    assert plan_table(plan).splitlines()[0].split()[-3:] == ["variant", "labeled", "deps"]
    assert [j.get("variant") for j in plan_json(plan)["jobs"]] == [None, None, "per_level"]
    assert "variant" not in plan_table(alone).splitlines()[0]


def test_entries_on_disjoint_labeled_sizes_share_no_cell(write_grid):
    plan = plan_grid(write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [10], params: {knn_k: 5}}
        - {protocol: linear, labeled_sizes: [20], params: {knn_k: 7}}
    """))
    assert len([j for j in plan.jobs if j.stage == "evaluate"]) == 2


@pytest.mark.parametrize("first, second", [("", "labeled_sizes: [10], "), ("labeled_sizes: [10], ", "")])
def test_an_entry_without_labeled_sizes_shares_cells_with_one_that_lists_some(write_grid, first, second):
    """No sizes given: every labeled size, so also the other entry's 10."""
    g = write_grid(f"""
    axes: {{method: [simclr], dataset: [alpha]}}
    stages:
      evaluate:
        - {{protocol: linear, {first}params: {{knn_k: 5}}}}
        - {{protocol: linear, {second}params: {{knn_k: 7}}}}
    """)
    with pytest.raises(StudyError, match="same labeled sizes"):
        plan_grid(g)


def test_concat_with_symmetric_matchers_joins_each_pair_of_encoders_once(write_grid):
    """`[{dataset: [alpha, beta]}, {dataset: [alpha, beta]}]` matches alpha with beta both ways round: one job (the
    first way), not alpha|beta and beta|alpha; a later pair of the entry naming the same two encoders adds none."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta, gamma]}
    stages:
      evaluate:
        - protocol: concat
          pairs:
            - [{dataset: [alpha, beta]}, {dataset: [alpha, beta]}]
            - [{dataset: beta}, {dataset: alpha}]
            - [{dataset: gamma}, {dataset: alpha}]
          eval_datasets: [alpha]
    """)
    g.write_text(g.read_text().replace("datasets:\n", "datasets:\n  gamma: {train: gamma_train, test: gamma_val}\n"))
    plan = plan_grid(g)
    by_id = {j.id: j.axes["dataset"] for j in plan.by_stage("pretrain")}
    joined = [(j.axes["dataset"], [by_id[d] for d in j.depends_on]) for j in plan.by_stage("evaluate")]
    assert joined == [("alpha|beta", ["alpha", "beta"]), ("gamma|alpha", ["gamma", "alpha"])]


def test_granularity_entries_on_disjoint_levels_share_no_cell(write_grid):
    """Two entries with the same axes scoring other taxonomy levels write other report cells: both plan; on a level
    in common they are refused (one would hide the other)."""
    body = """
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: granularity, levels: [genus]}
        - {protocol: granularity, levels: [%s]}
    """
    plan = plan_grid(write_grid(body % "species", name="disjoint.yaml"))
    assert [j.config["evaluate"]["levels"] for j in plan.by_stage("evaluate")] == [["genus"], ["species"]]
    with pytest.raises(StudyError, match="same labeled sizes"):
        plan_grid(write_grid(body % "species, genus", name="shared.yaml"))


def test_a_value_an_include_rule_takes_from_the_axes_is_named_at_the_axis(write_grid):
    """An include rule not naming an axis takes that axis's values: a check naming one of a job the rule made points
    at the axis's line; the values the rule names, at the rule's line."""
    g = write_grid("""
    axes:
      method: [simclr]
      dataset: [alpha]
      size: [10, 20]
    include:
      - {method: byol}
    stages: {pretrain: {}}
    """)
    plan = plan_grid(g)
    text = g.read_text().splitlines()
    size_line, rule_line = (next(i for i, t in enumerate(text, 1) if s in t) for s in ("size: [10", "{method: byol}"))
    job = next(j for j in plan.by_stage("pretrain") if j.axes["method"] == "byol" and j.axes["size"] == 20)
    assert value_line(plan.grid, "size", 20, job.axes) == size_line
    assert value_line(plan.grid, "method", "byol", job.axes) == rule_line


def test_a_value_only_an_include_rule_names_is_at_the_rule_else_at_the_defaults(write_grid):
    """Without a job's axes: a value off the axes is at the include rule naming it, else at defaults.pretrain's key."""
    g = write_grid("""
    axes:
      method: [simclr]
      dataset: [alpha]
      size: [10]
    include:
      - {method: byol, size: 20}
    stages: {pretrain: {}}
    """)
    grid = plan_grid(g).grid
    text = g.read_text().splitlines()
    rule_line, pre_line = (next(i for i, t in enumerate(text, 1) if s in t) for s in ("size: 20", "pretrain: {"))
    assert value_line(grid, "size", 20) == rule_line
    assert value_line(grid, "backbone", "resnet18") == pre_line


def test_a_grid_made_otherwise_gets_its_errors_at_the_lines_of_the_values(write_grid):
    """A Grid not checked by load_grid (here changed after it) with a bad default or corruption: the error names the
    line of the default's key and of the corruption's value, as load_grid's would."""
    g = write_grid("axes: {method: [simclr], dataset: [alpha], corruption: [none]}\nstages: {}\n", pretrain={"seed": 1})
    lines = g.read_text().splitlines()
    pre_line = next(i for i, t in enumerate(lines, 1) if "pretrain: {" in t)
    axes_line = next(i for i, t in enumerate(lines, 1) if t.startswith("axes:"))
    grid = load_grid(g)
    with pytest.raises(StudyError) as e:
        expand_points(replace(grid, defaults_pretrain={**grid.defaults_pretrain, "seed": -1}))
    assert str(e.value).startswith(f"{g}:{pre_line}: defaults.pretrain.seed: expected an integer seed")
    bad = replace(grid, axes={**grid.axes, "corruption": ("nosuch",)})
    with pytest.raises(StudyError) as e:
        build_jobs(bad, [{**expand_points(grid)[0], "corruption": "nosuch"}], Profile())
    assert str(e.value).startswith(f"{g}:{axes_line}: ") and "nosuch" in str(e.value)
