"""Expansion semantics: product, zip, include/exclude, seeds; and evaluation entries."""
import pytest

from study.errors import StudyError
from study.grids import plan_grid


def pts(plan):
    """(method, dataset, size, seed) of each pretraining job; an unswept seed is PretrainConfig's, 0."""
    return [(j.axes["method"], j.axes["dataset"], j.axes["size"], j.axes["seed"]) for j in plan.by_stage("pretrain")]


def test_product_in_file_order_first_axis_slowest(write_grid):
    g = write_grid("""
    axes: {method: [simclr, byol], dataset: [alpha, beta], size: [10, 20]}
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g)) == [(m, d, s, 0) for m in ("simclr", "byol") for d in ("alpha", "beta")
                                 for s in (10, 20)]


def test_zip_moves_axes_together_and_sizes_accept_k_and_M(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta], size: [1k, 1M]}
    zip: [[dataset, size]]
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g)) == [("simclr", "alpha", 1000, 0), ("simclr", "beta", 1_000_000, 0)]


def test_exclude_then_include_and_seeds_axis(write_grid):
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha, beta]}
    seeds: [0, 1]
    exclude:
      - {method: supervised, dataset: beta}
    include:
      - {method: byol, dataset: beta, seed: 7}
      - {method: [simclr, byol], dataset: alpha}        # simclr-alpha already there: not duplicated
    stages: {pretrain: {}}
    """)
    got = pts(plan_grid(g))
    assert got == [("simclr", "alpha", None, 0), ("simclr", "alpha", None, 1), ("simclr", "beta", None, 0),
                   ("simclr", "beta", None, 1), ("supervised", "alpha", None, 0), ("supervised", "alpha", None, 1),
                   ("byol", "beta", None, 7), ("byol", "alpha", None, 0), ("byol", "alpha", None, 1)]


def test_include_that_adds_no_job_is_refused_at_its_line(write_grid):
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha, beta]}
    exclude:
      - {method: supervised, dataset: beta}
    include:
      - {method: byol, dataset: beta}
      - {method: simclr, dataset: beta}
    stages: {pretrain: {}}
    """)
    line = g.read_text().splitlines().index("  - {method: simclr, dataset: beta}") + 1
    with pytest.raises(StudyError, match=rf"g.yaml:{line}: include \{{method: simclr, dataset: beta\}} adds no job"):
        plan_grid(g)


def test_an_include_rule_adding_some_of_its_points_is_kept(write_grid):
    """Only a rule none of whose points is new is refused: one whose last point the axes already give adds the
    others."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    include:
      - {method: [byol, simclr], dataset: beta}
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g))[2:] == [("byol", "beta", None, 0)]


def test_include_missing_axes_take_every_declared_value(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [10, 20]}
    include:
      - {method: moco, dataset: beta}
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g))[2:] == [("moco", "beta", 10, 0), ("moco", "beta", 20, 0)]


def test_evaluate_entries_where_same_all_labeled_split(write_grid):
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha, beta]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: all, labeled_sizes: [5, 10], where: {method: simclr}}
        - {protocol: finetune, labeled_sizes: [5, 10], where: {method: simclr, dataset: alpha}}
        - {protocol: knn, eval_datasets: [beta], where: {dataset: alpha}}
    """)
    plan = plan_grid(g)
    ev = plan.by_stage("evaluate")
    lin = [j for j in ev if j.axes["protocol"] == "linear"]
    assert [(j.axes["dataset"], j.axes["eval_dataset"]) for j in lin] == [
        ("alpha", "alpha"), ("alpha", "beta"), ("beta", "alpha"), ("beta", "beta")]
    assert all(j.config["evaluate"]["labeled_sizes"] == [5, 10] for j in lin)  # one job, all sizes
    ft = [j for j in ev if j.axes["protocol"] == "finetune"]
    assert [j.config["evaluate"]["labeled_sizes"] for j in ft] == [[5], [10]]  # one job per size
    assert {j.config["evaluate"]["train_manifest"] for j in ft} == {"alpha_train"}
    assert {j.config["evaluate"]["test_manifest"] for j in ft} == {"alpha_val"}
    knn = [j for j in ev if j.axes["protocol"] == "knn"]
    assert [(j.axes["method"], j.axes["eval_dataset"]) for j in knn] == [("simclr", "beta"), ("supervised", "beta")]
    assert plan.counts == {"pretrain": 4, "evaluate": 8, "total": 12,
                           "evaluate_by_protocol": {"linear": 4, "finetune": 2, "knn": 2}}


def test_scratch_jobs_are_shared_and_have_no_encoder(write_grid):
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha], size: [10, 20]}
    stages:
      evaluate:
        - {protocol: scratch, labeled_sizes: [5]}
    """)
    ev = plan_grid(g).by_stage("evaluate")
    assert len(ev) == 1  # four pretraining jobs, one scratch baseline per (backbone, seed, dataset, size)
    assert ev[0].depends_on == () and ev[0].config["encoders"] == []
    assert ev[0].axes["method"] is None and ev[0].axes["protocol"] == "scratch"


def test_a_new_protocol_makes_the_jobs_of_the_encoders_its_row_reads(write_grid, monkeypatch):
    """Jobs are made by the encoders a protocol's row reads (study.evaluate.protocols), not by its name: a new
    training row of no encoder is scratch's baseline per (backbone, seed) under its own name (it was given one job per
    encoder, each waiting on an encoder it never reads), one of one encoder is finetune's, each job its own id."""
    from protocol_rows import FROMZERO, TUNED, add_protocol

    from study.evaluate.recipes import FINETUNE, SCRATCH

    add_protocol(monkeypatch, FROMZERO, SCRATCH)
    add_protocol(monkeypatch, TUNED, FINETUNE)
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha], size: [10, 20]}
    stages:
      evaluate:
        - {protocol: scratch, labeled_sizes: [5]}
        - {protocol: fromzero, labeled_sizes: [5]}
        - {protocol: finetune, labeled_sizes: [5]}
        - {protocol: tuned, labeled_sizes: [5]}
    """)
    ev = plan_grid(g).by_stage("evaluate")
    by = {p: [j for j in ev if j.axes["protocol"] == p] for p in ("scratch", "fromzero", "finetune", "tuned")}
    assert [len(jobs) for jobs in by.values()] == [1, 1, 4, 4]
    (zero,), (scratch,) = by["fromzero"], by["scratch"]
    assert zero.depends_on == () and zero.config["encoders"] == [] and zero.axes["method"] is None
    assert {k: v for k, v in zero.axes.items() if k != "protocol"} == {
        k: v for k, v in scratch.axes.items() if k != "protocol"}
    assert [j.depends_on for j in by["tuned"]] == [j.depends_on for j in by["finetune"]]
    assert len({j.id for j in ev}) == len(ev) == 10


def test_a_new_protocol_of_two_encoders_needs_pairs(write_grid, monkeypatch):
    """A two-encoder row's entry needs `pairs`, as concat's: without them it made one-encoder jobs that failed when
    they ran (it takes 2 encoders, got 1)."""
    from protocol_rows import add_protocol

    from study.evaluate.protocols import LEVEL_KEYS, TRAINING_KEYS, Protocol

    add_protocol(monkeypatch, Protocol("pairwise", 2, trains=False, fits_probes=True,
                                       unused=(*LEVEL_KEYS, *TRAINING_KEYS)))
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: pairwise, labeled_sizes: [5]}
    """)
    with pytest.raises(StudyError, match=r"stages.evaluate\[0\]: protocol pairwise needs 'pairs'"):
        plan_grid(g)
    g.write_text(g.read_text().replace("labeled_sizes: [5]", "labeled_sizes: [5], pairs: [[{method: simclr}, "
                                                             "{method: supervised}]]"))
    (job,) = plan_grid(g).by_stage("evaluate")
    assert len(job.depends_on) == 2 and job.axes["method"] == "simclr|supervised" and job.axes["protocol"] == "pairwise"


def test_scratch_takes_the_width_of_the_encoders_it_is_compared_with(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: scratch, labeled_sizes: [5]}
        - {protocol: scratch, labeled_sizes: [6], params: {width: 16}}
    """, pretrain={"backbone": "resnet18_small", "width": 8})
    widths = [j.config["evaluate"]["width"] for j in plan_grid(g).by_stage("evaluate")]
    assert widths == [8, 16]  # the pretraining width, unless the entry names its own


def test_a_scratch_entrys_own_backbone_and_seed_are_its_axes(write_grid):
    """params naming a backbone or seed of its own: the job's axes say what it trains (the report files the baseline
    under them), not the encoders' it would otherwise take."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], seed: [0]}
    stages:
      evaluate:
        - {protocol: scratch, labeled_sizes: [5]}
        - {protocol: scratch, labeled_sizes: [5], params: {backbone: resnet18_small, seed: 7}}
    """, pretrain={"backbone": "resnet18"})
    taken, own = plan_grid(g).by_stage("evaluate")
    assert (taken.axes["backbone"], taken.axes["seed"]) == ("resnet18", 0)
    assert (own.axes["backbone"], own.axes["seed"]) == ("resnet18_small", 7)
    assert (own.config["evaluate"]["backbone"], own.config["evaluate"]["seed"]) == ("resnet18_small", 7)


def test_a_scratch_baseline_keeps_one_job_per_pretraining_seed_under_an_evaluation_seed(write_grid):
    """defaults.evaluate's seed (the probes' held-out split and order) is not the baseline's training seed: with it,
    every pretraining seed's baseline made one job of that seed, and the report drew it as one seed."""
    g = write_grid("""
    name: t
    datasets: {alpha: {train: alpha_train, test: alpha_val}}
    defaults: {pretrain: {backbone: resnet18, epochs: 1, batch_size: 8}, evaluate: {seed: 3}}
    axes: {method: [simclr], dataset: [alpha], seed: [0, 1]}
    stages:
      evaluate:
        - {protocol: linear, labeled_sizes: [5]}
        - {protocol: scratch, labeled_sizes: [5]}
    """, base=False)
    ev = plan_grid(g).by_stage("evaluate")
    assert [j.config["evaluate"]["seed"] for j in ev if j.axes["protocol"] == "linear"] == [3, 3]
    scratch = [j for j in ev if j.axes["protocol"] == "scratch"]
    assert [(j.axes["seed"], j.config["evaluate"]["seed"]) for j in scratch] == [(0, 0), (1, 1)]


def test_pooled_same_means_each_source_and_corruption_manifest(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
      beta: {train: beta_train, test: beta_val}
      alpha+beta: {train: pool_ab, pool: {alpha: 5, beta: 5}}
    axes:
      method: [simclr]
      dataset: [alpha, alpha+beta]
      corruption: [none, "jpeg:quality=20"]
    exclude: [{dataset: alpha+beta, corruption: "jpeg:quality=20"}]
    stages:
      evaluate: [{protocol: linear}]
    """, base=False)
    plan = plan_grid(g)
    pre = plan.by_stage("pretrain")
    assert [j.config["pretrain"]["manifest"] for j in pre] == ["alpha_train", "alpha_train.jpeg-quality20", "pool_ab"]
    assert "corruption" not in pre[1].config["pretrain"]
    ev = [(j.axes["dataset"], j.axes["eval_dataset"]) for j in plan.by_stage("evaluate")]
    assert ev == [("alpha", "alpha"), ("alpha", "alpha"), ("alpha+beta", "alpha"), ("alpha+beta", "beta")]
    assert plan.manifests()["pool_ab"] == "study manifest pool pool_ab --from alpha_train:5 --from beta_train:5"
    assert plan.manifests()["alpha_train.jpeg-quality20"] == (
        "study manifest corrupt alpha_train.jpeg-quality20 --base alpha_train --corruption jpeg:quality=20")


def test_a_corruption_in_the_defaults_applies_to_every_point(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
    defaults:
      pretrain: {backbone: resnet18, epochs: 1, batch_size: 8, corruption: "downsample:factor=2"}
    axes: {method: [simclr, byol], dataset: [alpha]}
    stages: {}
    """, base=False)
    pre = plan_grid(g).by_stage("pretrain")
    assert [j.axes["corruption"] for j in pre] == ["downsample:factor=2"] * 2
    assert {j.config["pretrain"]["manifest"] for j in pre} == {"alpha_train.downsample-factor2"}


def test_an_include_rule_on_zipped_axes_pairs_their_lists_it_does_not_cross_them(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha], size: [10]}
    zip: [[dataset, size]]
    include:
      - {method: byol, dataset: [alpha, beta], size: [10, 20]}
    stages: {pretrain: {}}
    """)
    got = [(j.axes["method"], j.axes["dataset"], j.axes["size"]) for j in plan_grid(g).by_stage("pretrain")]
    assert got == [("simclr", "alpha", 10), ("byol", "alpha", 10), ("byol", "beta", 20)]


def test_eval_datasets_all_leaves_out_a_dataset_without_a_train_manifest(write_grid):
    """`all` means every dataset that can be an evaluation dataset (labeled subsets from `train`, scores on `test`):
    a test-only dataset would make jobs without a train manifest."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: all}
    """)
    g.write_text(g.read_text().replace("datasets:\n", "datasets:\n  extra: {test: extra_test}\n", 1))
    evals = plan_grid(g).by_stage("evaluate")
    assert sorted(j.axes["eval_dataset"] for j in evals) == ["alpha", "beta"]
    assert all(j.config["evaluate"]["train_manifest"] for j in evals)


def test_concat_joins_only_encoders_that_agree_on_every_axis_its_pair_does_not_name(write_grid):
    """Pairing alpha with beta: seed 0 with seed 0 and seed 1 with seed 1, never seed 0 with seed 1."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    seeds: [0, 1]
    stages:
      evaluate:
        - protocol: concat
          pairs:
            - [{dataset: alpha}, {dataset: beta}]
          eval_datasets: [alpha]
    """)
    plan = plan_grid(g)
    seed_of = {j.id: j.axes["seed"] for j in plan.by_stage("pretrain")}
    joined = [(j.axes["seed"], [seed_of[d] for d in j.depends_on]) for j in plan.by_stage("evaluate")]
    assert joined == [(0, [0, 0]), (1, [1, 1])]


def test_an_entrys_params_override_defaults_evaluate(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: [alpha], params: {batch_size: 32}}
        - {protocol: linear, eval_datasets: [beta]}
    """)
    g.write_text(g.read_text().replace("defaults:\n", "defaults:\n  evaluate: {batch_size: 64}\n", 1))
    got = {j.axes["eval_dataset"]: j.config["evaluate"]["batch_size"] for j in plan_grid(g).by_stage("evaluate")}
    assert got == {"alpha": 32, "beta": 64}


def test_a_corruption_in_the_defaults_makes_the_same_job_as_on_the_axis(write_grid):
    """Where the corruption is written does not change the job: its config names the corrupted manifest and holds
    no `corruption` setting, so the ids agree."""
    on_axis = write_grid("""
    axes: {method: [simclr], dataset: [alpha], corruption: ["downsample:factor=2"]}
    stages: {}
    """, name="axis.yaml")
    in_defaults = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """, name="defaults.yaml", pretrain={"corruption": '"downsample:factor=2"'})
    (a,), (d,) = plan_grid(on_axis).by_stage("pretrain"), plan_grid(in_defaults).by_stage("pretrain")
    assert d.config["pretrain"]["manifest"] == "alpha_train.downsample-factor2"
    assert "corruption" not in d.config["pretrain"]
    assert d.id == a.id and d.config == a.config


def test_an_axis_left_out_makes_the_same_jobs_as_its_default_written(write_grid):
    """A grid without `seeds:` (or a backbone) trains with PretrainConfig's value: writing that value later
    (`seeds: [0]`, before adding seeds 1 and 2) keeps the jobs' ids, so nothing done is run again."""
    head = """
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}"""
    bare = write_grid(head + """
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate: [{protocol: linear}]
    """, name="bare.yaml", base=False)
    written = write_grid(head + """
    axes: {method: [simclr], backbone: [resnet50], dataset: [alpha]}
    seeds: [0, 1]
    stages:
      evaluate: [{protocol: linear}]
    """, name="written.yaml", base=False)
    b, w = plan_grid(bare), plan_grid(written)
    assert len(b.jobs) == 2 and len(w.jobs) == 4
    assert {j.id for j in b.jobs} < {j.id for j in w.jobs}
    (pre,) = b.by_stage("pretrain")
    assert (pre.axes["backbone"], pre.axes["seed"]) == ("resnet50", 0)


def test_a_point_of_every_image_trains_on_every_image_whatever_the_default_size(write_grid):
    """`size: all` (or null) in an include rule is every image: defaults.pretrain's `size` is not left in its config
    (the job's axis said every image while it trained on the default's); and `size: all` or null written in
    defaults.pretrain is the job of no size written."""
    plan = plan_grid(write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    include: [{method: byol, dataset: alpha, size: null}, {method: moco, dataset: alpha, size: all}]
    stages: {}
    """, pretrain={"size": 50}))
    plan.check(manifests=False)
    sizes = [(j.axes["size"], j.config["pretrain"].get("size")) for j in plan.jobs]
    assert sizes == [(50, 50), (None, None), (None, None)]
    bare = plan_grid(write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", name="bare.yaml"))
    for written in ("all", "null"):
        g = write_grid("axes: {method: [simclr], dataset: [alpha]}\nstages: {}\n", name=f"{written}.yaml",
                       pretrain={"size": written})
        assert [j.id for j in plan_grid(g).jobs] == [j.id for j in bare.jobs]


def test_two_spellings_of_one_corruption_make_one_job_on_one_manifest(write_grid):
    short = write_grid("""
    axes: {method: [simclr], dataset: [alpha], corruption: [jpeg]}
    stages: {}
    """, name="short.yaml")
    full = write_grid("""
    axes: {method: [simclr], dataset: [alpha], corruption: ["jpeg:quality=10"]}
    stages: {}
    """, name="full.yaml")
    (s,), (f,) = plan_grid(short).by_stage("pretrain"), plan_grid(full).by_stage("pretrain")
    assert s.axes["corruption"] == f.axes["corruption"] == "jpeg:quality=10"
    assert s.config["pretrain"]["manifest"] == "alpha_train.jpeg-quality10" and s.id == f.id


def test_corruption_false_is_the_clean_manifest(write_grid):
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages: {}
    """, pretrain={"corruption": "false"})
    (job,) = plan_grid(g).by_stage("pretrain")
    assert job.axes["corruption"] == "none" and job.config["pretrain"]["manifest"] == "alpha_train"


def test_an_entrys_nested_params_merge_into_the_defaults_nested_settings(write_grid):
    """`params: {finetune: {epochs: 7}}` over `defaults.evaluate: {finetune: {epochs: 3, batch_size: 32}}` changes
    the epochs and keeps the defaults' batch size: the nested mapping is merged, not replaced."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: finetune, labeled_sizes: [5], params: {finetune: {epochs: 7}}}
        - {protocol: scratch, labeled_sizes: [5]}
    """)
    nested = "defaults:\n  evaluate: {finetune: {epochs: 3, batch_size: 32}}\n"
    g.write_text(g.read_text().replace("defaults:\n", nested, 1))
    got = {j.axes["protocol"]: j.config["evaluate"]["finetune"] for j in plan_grid(g).by_stage("evaluate")}
    assert got == {"finetune": {"epochs": 7, "batch_size": 32}, "scratch": {"epochs": 3, "batch_size": 32}}


def test_a_zip_group_not_written_last_is_one_unit_at_its_first_axis_place(write_grid):
    """A zip group is expanded once, at the place of its first axis in the file (slowest here), its pairs in order."""
    g = write_grid("""
    axes: {dataset: [alpha, beta], method: [simclr, byol], size: [10, 20]}
    zip: [[dataset, size]]
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g)) == [("simclr", "alpha", 10, 0), ("byol", "alpha", 10, 0),
                                 ("simclr", "beta", 20, 0), ("byol", "beta", 20, 0)]


def test_each_exclude_rule_counts_as_used_when_any_combination_matched_it(write_grid):
    """Two exclude rules matching different combinations both remove theirs; neither is reported as matching
    nothing because the last combination excluded was the other rule's."""
    g = write_grid("""
    axes: {method: [simclr, supervised, byol], dataset: [alpha, beta]}
    exclude:
      - {method: supervised, dataset: beta}
      - {method: byol, dataset: alpha}
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g)) == [("simclr", "alpha", None, 0), ("simclr", "beta", None, 0),
                                 ("supervised", "alpha", None, 0), ("byol", "beta", None, 0)]


def test_an_exclude_rule_may_name_an_unswept_axis_at_its_default_value(write_grid):
    """An axis the grid does not sweep takes its defaults.pretrain value: an exclude rule naming that value matches
    every point, and is not refused as a value its axis never takes."""
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha, beta]}
    exclude:
      - {method: supervised, dataset: beta, backbone: resnet18}
    stages: {pretrain: {}}
    """)
    assert pts(plan_grid(g)) == [("simclr", "alpha", None, 0), ("simclr", "beta", None, 0),
                                 ("supervised", "alpha", None, 0)]


def test_an_x_key_holds_anchors_that_entries_use_and_merge(write_grid):
    """The README's example: a top-level `x-` key is read by nothing but holds an anchor; an alias repeats the entry,
    a merge (`<<`) repeats it with a key of its own; any other unknown top-level key is still refused."""
    plan = plan_grid(write_grid("""
    x-probe: &probe {protocol: linear, labeled_sizes: [10, 20]}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate: [*probe, {<<: *probe, eval_datasets: all}]
    """))
    evals = [(j.axes["eval_dataset"], j.config["evaluate"]["labeled_sizes"]) for j in plan.by_stage("evaluate")]
    assert evals == [("alpha", [10, 20]), ("beta", [10, 20])]  # alpha|same and alpha|all are one job
    with pytest.raises(StudyError, match=r"g2.yaml:\d+: unknown key 'common'"):
        plan_grid(write_grid("common: &c {protocol: linear}\naxes: {method: [simclr], dataset: [alpha]}\n"
                             "stages: {evaluate: [*c]}\n", name="g2.yaml"))


def test_a_seed_in_defaults_pretrain_is_the_seed_of_every_job(write_grid):
    """An unswept seed given in defaults.pretrain is each point's axis value and its config's, not PretrainConfig's."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha, beta]}
    stages: {}
    """, pretrain={"seed": 3})
    plan = plan_grid(g)
    assert pts(plan) == [("simclr", "alpha", None, 3), ("simclr", "beta", None, 3)]
    assert {j.config["pretrain"]["seed"] for j in plan.by_stage("pretrain")} == {3}


def test_an_exclude_rule_matching_nothing_is_refused_beside_one_that_matches(write_grid):
    """Another rule removing combinations does not count for one that removes none."""
    g = write_grid("""
    axes: {method: [simclr, supervised], dataset: [alpha, beta], seed: [0, 1]}
    zip: [[method, seed]]
    exclude:
      - {method: simclr, dataset: beta}
      - {method: supervised, seed: 0}
    stages: {}
    """)
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "supervised, seed: 0" in t)
    with pytest.raises(StudyError) as e:
        plan_grid(g)
    assert str(e.value) == (f"{g}:{line}: exclude {{method: supervised, seed: 0}} matches no combination of the "
                            "axes: it removes nothing (check its values against the axes)")


def test_a_concat_pair_whose_sides_name_different_axes_joins_on_the_axes_neither_names(write_grid):
    """[{dataset: alpha}, {method: byol}]: any method on alpha with byol on any dataset; only the axes neither side
    names (backbone, size, corruption, seed) must agree."""
    g = write_grid("""
    axes: {method: [simclr, byol], dataset: [alpha, beta]}
    stages:
      evaluate:
        - protocol: concat
          eval_datasets: [alpha]
          pairs:
            - [{dataset: alpha}, {method: byol}]
    """)
    ev = plan_grid(g).by_stage("evaluate")
    assert [(j.axes["method"], j.axes["dataset"]) for j in ev] == [
        ("simclr|byol", "alpha"), ("simclr|byol", "alpha|beta"), ("byol", "alpha|beta")]


def test_eval_datasets_same_on_a_dataset_without_a_test_manifest_is_refused_at_its_entry(write_grid):
    g = write_grid("""
    name: t
    datasets:
      alpha: {train: alpha_train, test: alpha_val}
      gamma: {train: gamma_train}
    axes: {method: [simclr], dataset: [alpha, gamma]}
    stages:
      evaluate:
        - protocol: linear
          where: {dataset: gamma}
    """, base=False)
    line = next(i for i, t in enumerate(g.read_text().splitlines(), 1) if "protocol: linear" in t)
    with pytest.raises(StudyError) as e:
        plan_grid(g)
    assert str(e.value) == (f"{g}:{line}: stages.evaluate[0] eval_datasets same: dataset(s) 'gamma' have no test "
                            "manifest; list eval_datasets")


def test_eval_datasets_all_is_in_the_order_of_datasets(write_grid):
    """The file's order, as every other list of the plan (job order is part of the plan's determinism)."""
    g = write_grid("""
    name: t
    datasets:
      beta: {train: beta_train, test: beta_val}
      alpha: {train: alpha_train, test: alpha_val}
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: linear, eval_datasets: all}
    """, base=False)
    assert [j.axes["eval_dataset"] for j in plan_grid(g).by_stage("evaluate")] == ["beta", "alpha"]


def test_granularity_levels_all_leaves_the_levels_to_the_evaluation(write_grid):
    """`levels: all` is EvalConfig's default: no `levels` in the section (a list is passed as written)."""
    g = write_grid("""
    axes: {method: [simclr], dataset: [alpha]}
    stages:
      evaluate:
        - {protocol: granularity, levels: all}
        - {protocol: granularity, levels: [genus], variant: genus}
    """)
    a, b = plan_grid(g).by_stage("evaluate")
    assert "levels" not in a.config["evaluate"] and b.config["evaluate"]["levels"] == ["genus"]
