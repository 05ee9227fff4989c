"""study/report/caveats.py: the report's warning lines, on small frames (the whole build is test_report's)."""
import pandas as pd

from study.report import caveats


def test_a_conflict_line_gives_each_recipes_mean_to_four_decimals():
    """Two recipes 0.0001 apart read apart, not as one number twice."""
    conflicts = pd.DataFrame({"grid": "g", "stage": "evaluate", "method": "simclr", "size": 1000,
                              "protocol_fingerprint": ["fa", "fb"], "mean": [0.50001, 0.50012], "std": float("nan"),
                              "count": 1, "n_jobs": 1, "seeds": "0", "job_ids": ["e1", "e2"], "code_versions": "v1",
                              "finished_at": ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]})
    (line,) = caveats.conflict_lines(conflicts)
    assert "[method=simclr, size=1000]" in line and "fa: mean 0.5000 over 1 seed(s) (jobs e1)" in line, line
    assert "fb: mean 0.5001" in line and line.endswith("the figures draw the newest, fb."), line


def test_a_report_of_one_cell_on_a_dirty_tree_names_that_cell():
    """'All of the cells, each on <version>' is for several cells; a report of one cell names it."""
    agg = pd.DataFrame({"grid": ["g"], "stage": ["evaluate"], "method": ["simclr"], "code_versions": ["abc-dirty"]})
    (line,) = caveats.code_version_lines(agg)
    assert line.startswith("1 cell(s) hold results run on a modified") and "[method=simclr]: abc-dirty" in line, line


def test_a_modified_tree_is_told_by_its_dirty_mark_with_or_without_the_source_digest_after_it():
    """A modified checkout's version is `<commit>-dirty.src.<digest>` (study.version.code_version); older records
    end at `-dirty`: both are named as run on a modified tree, a clean commit's and a wheel's are not."""
    agg = pd.DataFrame({"grid": "g", "stage": "evaluate", "method": ["simclr", "moco", "byol", "supervised"],
                        "code_versions": ["0.1.0+git.abc-dirty.src.0123456789ab", "0.1.0+git.abc-dirty",
                                          "0.1.0+git.abc", "0.1.0+src.0123456789ab"]})
    (line,) = caveats.code_version_lines(agg)
    assert line.startswith("2 cell(s) hold results run on a modified"), line
    assert "[method=simclr]: 0.1.0+git.abc-dirty.src.0123456789ab; [method=moco]: 0.1.0+git.abc-dirty." in line, line


def _tidy(job_ids, metrics, values):
    return pd.DataFrame({"job_id": job_ids, "grid": "g", "stage": "evaluate", "method": "simclr",
                         "seed": range(len(values)), "labeled_size": 1000, "level": None, "metric": metrics,
                         "value": values, "protocol_fingerprint": "f"})


def test_valueless_lines_name_jobs_in_order_and_a_cell_with_one_seed_of_two_left_is_a_mean_not_missing():
    lines = caveats.valueless_lines(_tidy(["e2", "e1", "e3"], "top1", [None, None, 0.5]))
    assert lines[:2] == ["job e1: 1 metric(s) recorded without a value (a diverged run)",
                         "job e2: 1 metric(s) recorded without a value (a diverged run)"]
    assert len(lines) == 3 and lines[2].startswith("1 cell(s) are the mean of their seeds with a value only"), lines


def test_a_record_without_metrics_is_not_a_diverged_run():
    assert caveats.valueless_lines(_tidy(["e1", "e2"], [None, "top1"], [None, 0.5])) == []


def test_a_table_of_exactly_three_duplicate_positions_names_each_and_no_more():
    paper = pd.DataFrame({"a": [1]})
    paper.attrs["duplicates"] = [f"[cell={i}]: 0.500, 0.600" for i in range(3)]
    (line,) = caveats.duplicate_lines("quantity", paper)
    assert "3 position(s)" in line and "[cell=2]: 0.500, 0.600); the table" in line and "; and" not in line, line


def _jobs_of(versions, sessions=None):
    """A tidy table of one row per job: `versions` each job's record's code_version, `sessions` its protocol's."""
    sessions = sessions or versions
    return pd.DataFrame({"job_id": [f"j{i}" for i in range(len(versions))], "code_version": versions,
                         "protocol.code_version": sessions})


def test_results_of_several_code_versions_are_said_once_with_each_versions_jobs():
    """A study updated midway: cells of one figure may differ by their code, which no cell's own line said (each
    cell ran on one version). A run resumed under the new version counts under both; one version: no line."""
    assert caveats.version_mix_lines(_jobs_of(["v1", "v1"])) == []
    table = _jobs_of(["v1", "v1", "v2", "v2"], ["v1", "v1", '["v1", "v2"]', "v2"])
    (line,) = caveats.version_mix_lines(table)
    assert line.startswith("the results ran on 2 code versions (v1: 3 job(s); v2: 2 job(s); 1 job(s) ran on several "
                           "of them (1 resumed under another)): cells compared in one figure"), line
    (line,) = caveats.version_mix_lines(_jobs_of(["a", "b", "b", "c", "d"]), shown=2)
    assert "(b: 2 job(s); a: 1 job(s); and 2 more)" in line and "resumed" not in line, line


def test_versions_of_one_code_are_one_code_version_in_the_warnings():
    """A docs-only commit mid-study, and a try run `-dirty` then committed as it was: the report counted three code
    versions and named the try's cells as run on a tree no commit reproduces. Versions of one digest
    (study.version.code_digests) are one code: no line where all are one; a line of two codes joins the versions of
    each; a `-dirty` result of a commit's code is not said unreproducible."""
    a, docs, tried, fixed = "0.1+git.a", "0.1+git.b", "0.1+git.b-dirty.src.d2", "0.1+git.c"
    digests = {a: "d1", docs: "d1", tried: "d2", fixed: "d2"}
    assert caveats.version_mix_lines(_jobs_of([a, docs, docs]), digests=digests) == []
    (line,) = caveats.version_mix_lines(_jobs_of([a, docs, tried, fixed, fixed]), digests=digests)
    assert line.startswith(f"the results ran on 2 code versions ({tried} = {fixed} (one code): 3 job(s); {a} = "
                           f"{docs} (one code): 2 job(s)): cells"), line
    assert caveats.version_mix_lines(_jobs_of([a, docs]))  # without digests: versions apart, as before
    agg = pd.DataFrame({"grid": "g", "stage": "evaluate", "method": ["simclr", "moco"],
                        "code_versions": [f"{a},{docs}", f"{tried},{fixed}"]})
    assert caveats.code_version_lines(agg, digests=digests) == []
    assert caveats.code_version_lines(agg, digests={**digests, fixed: "d3"})[1].startswith(
        "1 cell(s) hold results run on a modified")


def test_the_jobs_of_several_code_versions_are_counted_by_how_resumed_or_reading_an_older_encoder():
    """A fix pulled mid-study: pretraining jobs resumed under it, and probes of encoders trained (in part) before it
    ran after it. The line said 'resumed under another, or evaluating an encoder trained under another' of all of
    them, so a report of probes on old encoders read as one of resumed runs. Each way is counted."""
    table = pd.DataFrame({"job_id": ["p1", "p2", "e1", "e2", "e3"],
                          "code_version": ["v2", "v1", "v2", "v2", "v1"],
                          "protocol.code_version": ['["v1", "v2"]', "v1", "v2", "v2", "v1"],
                          "depends_on": [None, None, "p1", "p2", "p2"]})
    (line,) = caveats.version_mix_lines(table)
    assert ("3 job(s) ran on several of them (1 resumed under another, 2 evaluating an encoder trained under "
            "another)): cells") in line, line


def test_a_conflict_line_names_the_recipe_keys_that_differ_and_not_the_run_specific_ones():
    """Two recipes of one cell: the line says what changed (the probe's max_iter, the encoder's learning rate under
    `pretrain.`), not the seeds or timings that differ too and are no part of the fingerprint."""
    from study.hashing import canonical_json

    def protocol(max_iter, lr, seed):
        return canonical_json({"stage": "evaluate", "seed": seed, "wall_time_s": 10.0 + seed,
                               "linear": {"optimizer": "lbfgs", "max_iter": max_iter, "tolerance": 1e-6},
                               "pretrain": {"stage": "pretrain", "seed": seed, "effective_lr": lr, "epochs": 10}})

    conflicts = pd.DataFrame({"grid": "g", "stage": "evaluate", "method": "simclr",
                              "protocol_fingerprint": ["fa", "fb"], "mean": [0.5, 0.6], "std": float("nan"),
                              "count": 1, "n_jobs": 1, "seeds": "0",
                              "job_ids": ["e1,e3", "e2"], "code_versions": "v1",
                              "finished_at": ["2024-01-01T00:00:00", "2024-01-02T00:00:00"]})
    table = pd.DataFrame({"job_id": ["e1", "e2", "e3"],
                          "protocol_json": [protocol(30, 0.3, 0), protocol(50, 0.3, 1), protocol(30, 0.3, 2)]})
    (line,) = caveats.conflict_lines(conflicts, table)
    assert "(their recipes differ in linear.max_iter (30, 50))." in line, line
    table.loc[1, "protocol_json"] = protocol(30, 0.6, 1)  # the encoders' recipes differ instead (10 and 10.0 agree)
    table.loc[1, "protocol_json"] = table.loc[1, "protocol_json"].replace('"epochs":10', '"epochs":10.0')
    (line,) = caveats.conflict_lines(conflicts, table)
    assert "(their recipes differ in pretrain.effective_lr (0.3, 0.6))." in line, line
    assert "differ" not in caveats.conflict_lines(conflicts)[0]  # no table: the line as before


def test_the_results_table_is_indexed_once_for_every_conflict_not_once_per_conflict(monkeypatch):
    """Each cell's fingerprints differ from the next's (an evaluation's hold its encoders'): indexing the whole table
    (10,000 jobs, a row per metric and size) per conflict took seconds per hundred conflicts."""
    calls = []
    protocols = caveats._protocols
    monkeypatch.setattr(caveats, "_protocols", lambda table: calls.append(1) or protocols(table))
    conflicts = pd.DataFrame({"grid": "g", "stage": "evaluate", "dataset": ["a", "a", "b", "b"],
                              "protocol_fingerprint": ["fa", "fb", "fc", "fd"], "mean": 0.5, "std": float("nan"),
                              "count": 1, "n_jobs": 1, "seeds": "0", "job_ids": ["e1", "e2", "e3", "e4"],
                              "code_versions": "v1", "finished_at": "2024-01-01T00:00:00"})
    table = pd.DataFrame({"job_id": ["e1", "e2", "e3", "e4"],
                          "protocol_json": [f'{{"linear": {{"max_iter": {n}}}}}' for n in (30, 50, 30, 70)]})
    lines = caveats.conflict_lines(conflicts, table)
    assert calls == [1] and [line.count("linear.max_iter") for line in lines] == [1, 1], lines
    assert "(30, 70)" in lines[1], lines


def test_a_conflict_at_several_labeled_sizes_and_metrics_is_one_line_naming_them():
    """One recipe change conflicts at each labeled size and metric of a cell: one line for the cell (it was a line
    each, the same recipes and jobs repeated), naming the sizes and metrics it covers, each recipe's range of means
    and jobs once; another cell's conflict is a line of its own."""
    rows = [{"grid": "g", "stage": "evaluate", "method": "simclr", "size": size, "labeled_size": labels,
             "level": None, "metric": metric, "protocol_fingerprint": fp, "mean": mean, "std": float("nan"),
             "count": 1, "n_jobs": 1, "seeds": "0", "job_ids": job, "code_versions": "v1", "finished_at": at}
            for size in (1000, 5000)
            for labels, metric in ((100, "top1"), (1000, "top1"), (1000, "top5"))
            for fp, mean, job, at in (("fa", 0.3 + labels / 1e4, f"e{size}a", "2024-01-01T00:00:00"),
                                      ("fb", 0.4, f"e{size}b", "2024-01-02T00:00:00"))]
    lines = caveats.conflict_lines(pd.DataFrame(rows))
    assert len(lines) == 2, lines
    first = lines[0]
    assert first.startswith("protocol fingerprint conflict in cell [method=simclr, size=1000] at each of its 3 "
                            "labeled sizes and metrics (top1 at 100 labels, top1 at 1000 labels, top5 at 1000 "
                            "labels): "), first
    assert "fa: mean 0.3100 to 0.4000 over 1 seed(s) (jobs e1000a)" in first and "fb: mean 0.4000" in first, first
    assert first.count("e1000b") == 1 and first.endswith("the figures draw the newest, fb."), first
    one = caveats.conflict_lines(pd.DataFrame(rows[:2]))  # one labeled size and metric: named in the cell
    assert one[0].startswith("protocol fingerprint conflict in cell [method=simclr, size=1000, labeled_size=100, "
                             "metric=top1]: fa: mean 0.3100 over"), one


def _on(device, threads):
    return {"device_kind": device, "cpu_threads": threads, "devices": 1}


def test_a_cell_whose_seeds_ran_on_two_devices_or_thread_counts_is_named_and_one_device_is_not(tmp_path):
    """Two workdirs' results brought into one (one cluster's GPUs, another's CPUs; or other core counts): the
    device is no part of the fingerprint, so their seeds average as one recipe, and the report says which cells."""
    from report_records import eval_axes, records, write_all

    from study.report.build import build_report

    gpu, cpu = records(eval_axes(size=50_000), {(1000, None): 0.5}, protocol=_on("NVIDIA H100 80GB HBM3", 16))
    cpu["protocol"].update(_on("cpu", 2))
    one, two = records(eval_axes(size=250_000), {(1000, None): 0.6}, protocol=_on("cpu", 2))
    threads, _ = records(eval_axes(size=1_000_000), {(1000, None): 0.7}, protocol=_on("cpu", 4), seeds=(0, 1))
    _, other = records(eval_axes(size=1_000_000), {(1000, None): 0.7}, protocol=_on("cpu", 1), seeds=(0, 1))
    write_all(tmp_path / "w", [gpu, cpu, one, two, threads, other])
    summary = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    (line,) = [w for w in summary.warnings if "different devices" in w]
    assert line.startswith("2 cell(s) average seeds run on different devices"), line
    assert "size=50000, corruption=none, protocol=linear, eval_dataset=a]: NVIDIA H100 80GB HBM3; cpu, 2 " \
           "threads;" in line, line
    assert "size=1000000, corruption=none, protocol=linear, eval_dataset=a]: cpu, 1 thread; cpu, 4 threads" in line
    assert "size=250000" not in line, line  # both seeds on one CPU of 2 threads


def test_a_device_line_needs_two_known_devices_in_one_cell():
    """Records of before the device was recorded (no column, or a null beside a known one) say nothing."""
    table = pd.DataFrame({"job_id": ["e1", "e2"], "grid": "g", "stage": "evaluate", "method": "simclr",
                          "seed": [0, 1], "labeled_size": 1000, "level": None, "metric": "top1", "value": 0.5,
                          "protocol_fingerprint": "f"})
    assert caveats.device_mix_lines(table) == []
    assert caveats.device_mix_lines(table.assign(**{"protocol.device_kind": ["cpu", None]})) == []
    (line,) = caveats.device_mix_lines(table.assign(**{"protocol.device_kind": ["cpu", "NVIDIA A100"]}))
    assert "[stage=evaluate, method=simclr]: NVIDIA A100; cpu." in line, line


def test_a_resumed_runs_thread_counts_beside_one_thread_read_as_counts(tmp_path):
    """A run resumed on another thread count records each session's (`cpu_threads: [2, 1]`), which makes the table's
    column JSON text ("1", "[2, 1]"): the line still says "1 thread", not "1 threads"."""
    from report_records import eval_axes, records, write_all

    from study.report.build import build_report

    resumed, one = records(eval_axes(size=50_000), {(1000, None): 0.5}, protocol=_on("cpu", [2, 1]))
    one["protocol"].update(_on("cpu", 1))
    write_all(tmp_path / "w", [resumed, one])
    summary = build_report(tmp_path / "w", tmp_path / "r", grid="g", log=None)
    (line,) = [w for w in summary.warnings if "different devices" in w]
    assert "eval_dataset=a]: cpu, 1 thread; cpu, [2, 1] threads." in line, line


def test_a_cell_of_one_run_resumed_on_another_thread_count_or_gpu_is_named():
    """One seed whose training was stopped and resumed with another thread count (`--workers`), or on another GPU
    model: its sessions' list (JSON text in the table) differs within the one job, so its weights are those of no
    one device; the cell is named as a cell of seeds on two devices is. A list of one value, or one count, is not."""
    table = pd.DataFrame({"job_id": ["p1"], "grid": "g", "stage": "pretrain", "method": "simclr", "seed": [0],
                          "labeled_size": None, "level": None, "metric": "loss", "value": 2.0,
                          "protocol_fingerprint": "f", "protocol.device_kind": "cpu", "protocol.cpu_threads": "1"})
    assert caveats.device_mix_lines(table) == []
    assert caveats.device_mix_lines(table.assign(**{"protocol.cpu_threads": "[2, 2]"})) == []
    (line,) = caveats.device_mix_lines(table.assign(**{"protocol.cpu_threads": "[1, 2, 1]"}))
    assert line.startswith("1 cell(s) average seeds run on different devices or CPU thread counts (or hold a run "
                           "resumed on another)") and "[stage=pretrain, method=simclr]: cpu, [1, 2, 1] threads." in line
    gpus = table.assign(**{"protocol.device_kind": '["NVIDIA A100", "NVIDIA H100"]', "protocol.cpu_threads": "8"})
    (line,) = caveats.device_mix_lines(gpus)
    assert '[stage=pretrain, method=simclr]: ["NVIDIA A100", "NVIDIA H100"].' in line, line


def test_cells_of_a_protocol_no_figure_draws_are_named_with_their_count():
    """A protocol of the table that no figure lists in DRAWS: its cells are in the tables only, said once; pretraining
    rows (no protocol) and the protocols drawn are not named."""
    agg = pd.DataFrame({"stage": ["pretrain", "evaluate", "evaluate", "evaluate", "evaluate"],
                        "protocol": [None, "linear", "nomean", "nomean", "other"]})
    (line,) = caveats.undrawn_lines(agg, frozenset({"linear"}))
    assert line.startswith("no figure draws the results of protocol(s) nomean (2 cell(s)), other (1 cell(s)): they "
                           "are in cells.csv and results.parquet only"), line
    assert caveats.undrawn_lines(agg, frozenset({"linear", "nomean", "other"})) == []


def test_every_protocol_of_the_table_is_drawn_by_a_figure():
    """The figures' DRAWS name only protocols of the table, and each of them (a new one: its panel, or this line)."""
    from study.evaluate.protocols import PROTOCOLS
    from study.report.figures import DRAWN_PROTOCOLS

    assert sorted(DRAWN_PROTOCOLS) == sorted(PROTOCOLS)
