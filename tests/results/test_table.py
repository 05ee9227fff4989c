"""The tidy table: one row per (job, metric), axes and protocol as columns, Parquet round-trip, seed aggregation,
fingerprint conflicts kept apart."""
from __future__ import annotations

import math
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from study.errors import StudyError
from study.grids import Job
from study.results import (ResultFileWarning, aggregate, collect, drop_repeated_seeds, find_conflicts, gather,
                           read_table, records_to_table, resolve_conflicts, result_path, write_result, write_table)
from study.results.table import job_code_versions, split_numeric_pairs


def _write(workdir, job_id, seed, values, lr=0.1, finished="2024-01-01T00:00:00+00:00", extra_axes=None,
           code_version=None, depends_on=None):
    write_result(workdir, {
        "job_id": job_id, "stage": "evaluate", "grid": "g", "code_version": code_version,
        **({} if depends_on is None else {"depends_on": depends_on}),
        "axes": {"method": "simclr", "dataset": "a", "size": 50000, "corruption": "none", "seed": seed,
                 "protocol": "linear", "eval_dataset": "a", **(extra_axes or {})},
        "metrics": [{"metric": "top1", "value": v, "labeled_size": ls, "level": None} for ls, v in values.items()]
        + [{"metric": "top5", "value": 0.9, "labeled_size": 1000, "level": None}],
        "protocol": {"lr": lr, "seed": seed, "head": {"layers": [2048, 128]}, "levels": None},
        "wall_time_s": 10.0 + seed, "finished_at": finished})


def test_one_row_per_job_and_metric_with_axes_and_protocol_columns(tmp_path):
    _write(tmp_path, "j0", 0, {1000: 0.5, 10000: 0.6})
    t = collect(tmp_path)
    assert len(t) == 3
    assert {"job_id", "stage", "grid", "method", "dataset", "size", "corruption", "seed", "protocol", "eval_dataset",
            "labeled_size", "level", "metric", "value", "protocol_fingerprint", "code_version", "protocol_json",
            "protocol.lr", "protocol.head.layers"} <= set(t.columns)
    assert t["backbone"].isna().all() and t["backbone"].dtype == object  # an absent axis is null, not a float column
    assert t["protocol.lr"].iloc[0] == 0.1 and t["protocol.head.layers"].iloc[0] == "[2048, 128]"
    assert t["size"].dtype == "Int64" and t["value"].dtype == "float64"


def test_parquet_round_trips_with_pandas_and_pyarrow(tmp_path):
    _write(tmp_path, "j0", 0, {1000: 0.5, 10000: None})
    _write(tmp_path, "j1", 1, {1000: 0.7}, extra_axes={"backbone": "resnet18"})
    t = collect(tmp_path)
    path = write_table(t, tmp_path / "out" / "results.parquet", grid="g")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, t, check_dtype=False)
    assert math.isnan(back.loc[(back["job_id"] == "j0") & (back["labeled_size"] == 10000), "value"].iloc[0])
    meta = pq.read_schema(path).metadata
    assert meta[b"study.table_schema_version"] == b"1" and meta[b"study.grid"] == b"g"
    pd.testing.assert_frame_equal(read_table(path), t)  # the types too: strings as object, not pandas 3's `str`
    (tmp_path / "x.parquet").write_bytes(b"nope")
    with pytest.raises(StudyError, match="x.parquet"):
        read_table(tmp_path / "x.parquet")


def test_a_table_is_read_narrow_by_column_names_and_patterns(tmp_path):
    """The full table has a column per protocol leaf: `columns` keeps those named or matched, in the file's order,
    and names a column that matches none."""
    _write(tmp_path, "j0", 0, {1000: 0.5})
    path = write_table(collect(tmp_path), tmp_path / "results.parquet")
    narrow = read_table(path, columns=["value", "job_id", "protocol.head.*"])
    assert list(narrow.columns) == ["job_id", "value", "protocol.head.layers"] and len(narrow) == 2
    assert list(read_table(path, columns="metric").columns) == ["metric"]
    with pytest.raises(StudyError, match=r"results.parquet: no column 'protocol.hed.\*'"):
        read_table(path, columns=["protocol.hed.*"])
    with pytest.raises(StudyError, match=r"no column 'vlaue' \(did you mean 'value'\?\)"):
        read_table(path, columns=["vlaue"])


def test_a_narrow_table_aggregates_or_is_told_which_columns_to_read(tmp_path):
    """aggregate and drop_repeated_seeds on a table read narrow name the columns it left out, not a bare KeyError;
    read with them, it aggregates as the full table does."""
    _write(tmp_path, "j0", 0, {1000: 0.5})
    _write(tmp_path, "j1", 1, {1000: 0.7})
    path = write_table(collect(tmp_path), tmp_path / "results.parquet")
    narrow = read_table(path, columns=["job_id", "method", "size", "labeled_size", "metric", "value"])
    for fn in (aggregate, drop_repeated_seeds):
        with pytest.raises(StudyError, match=r"needs the table's column\(s\) 'grid', 'stage', 'level', "
                                             r"'protocol_fingerprint', 'finished_at': read them too"):
            fn(narrow)
    enough = read_table(path, columns=["job_id", "stage", "grid", "method", "size", "labeled_size", "level",
                                       "metric", "value", "protocol_fingerprint", "finished_at"])
    assert aggregate(enough).query("metric == 'top1'")["mean"].iloc[0] == pytest.approx(0.6)


def test_collect_of_a_workdir_that_is_no_folder_says_so(tmp_path):
    """A mistyped workdir is an error naming it, not an empty table; a workdir without results yet is empty."""
    with pytest.raises(StudyError, match=r"workdir .*runz: no such folder"):
        collect(tmp_path / "runz")
    assert collect(tmp_path).empty


def test_seeds_aggregate_to_mean_std_count(tmp_path):
    for seed, v in enumerate((0.5, 0.6, 0.7)):
        _write(tmp_path, f"j{seed}", seed, {1000: v})
    agg = aggregate(collect(tmp_path))
    row = agg[agg["metric"] == "top1"].iloc[0]
    assert row["mean"] == pytest.approx(0.6) and row["std"] == pytest.approx(0.1) and row["count"] == 3
    assert row["seeds"] == "0,1,2" and row["job_ids"] == "j0,j1,j2"
    assert "seed" not in agg.columns and len(agg) == 2  # top1 and top5 cells
    assert find_conflicts(agg).empty


def test_an_evaluation_row_names_the_pretraining_jobs_it_read_and_seeds_of_other_encoders_aggregate(tmp_path):
    """`depends_on` joins an evaluation to its pretraining rows; each seed read another encoder, yet they are one
    cell. A record written before it was kept has none (null)."""
    _write(tmp_path, "j0", 0, {1000: 0.5}, depends_on=["p0"])
    _write(tmp_path, "j1", 1, {1000: 0.7}, depends_on=["p1", "q1"])
    _write(tmp_path, "j2", 2, {1000: 0.6})
    t = collect(tmp_path)
    deps = dict(zip(t["job_id"], t["depends_on"]))
    assert (deps["j0"], deps["j1"]) == ("p0", "p1|q1") and pd.isna(deps["j2"])
    row = aggregate(t).query("metric == 'top1'").iloc[0]
    assert row["count"] == 3 and "depends_on" not in aggregate(t).columns


def test_two_fingerprints_in_one_cell_are_kept_apart(tmp_path):
    _write(tmp_path, "j0", 0, {1000: 0.5}, lr=0.1, finished="2024-01-01T00:00:00+00:00")
    _write(tmp_path, "j1", 1, {1000: 0.9}, lr=0.5, finished="2024-02-01T00:00:00+00:00")
    agg = aggregate(collect(tmp_path))
    top1 = agg[agg["metric"] == "top1"]
    assert sorted(top1["mean"]) == pytest.approx([0.5, 0.9])  # never averaged to 0.7
    conflicts = find_conflicts(agg)
    assert len(conflicts[conflicts["metric"] == "top1"]) == 2
    drawn = resolve_conflicts(agg)
    assert drawn.loc[drawn["metric"] == "top1", "mean"].to_list() == pytest.approx([0.9])  # the newest


def test_gather_with_plan_lists_missing_jobs_and_what_they_wait_for(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Plan:
        name: str
        jobs: list

    _write(tmp_path, "e0", 0, {1000: 0.5})
    _write(tmp_path, "other", 0, {1000: 0.1})  # another grid's job: not in this report
    plan = Plan("g2", [Job("p0", "pretrain", {"axes": {"seed": 0}}), Job("p1", "pretrain", {"axes": {"seed": 1}}),
                       Job("e0", "evaluate", {"axes": {"seed": 0}}, ("p0",)),
                       Job("e1", "evaluate", {"axes": {"seed": 1, "protocol": "linear"}}, ("p1",))])
    coll = gather(tmp_path, plan)
    assert set(coll.table["job_id"]) == {"e0"} and (coll.table["grid"] == "g2").all()
    miss = coll.missing.set_index("job_id")
    assert list(miss.index) == ["e1", "p0", "p1"]
    assert miss.loc["e1", "waits_for"] == "p1 (pretrain, no result yet)"


def test_missing_jobs_say_what_the_launcher_last_recorded(tmp_path):
    """The report's missing.csv reads the ledgers as the launcher writes them (study.launch.ledger)."""
    from dataclasses import dataclass

    from study.launch.ledger import Ledger

    @dataclass
    class Plan:
        name: str
        jobs: list

    Ledger(tmp_path, "g3").append([{"event": "queued", "batch": "b", "job": "p1", "slurm_job_id": "42_0"}])
    Ledger(tmp_path, "g3").append([{"event": "local", "job": "e1", "stage": "evaluate", "state": "failed",
                                    "error": "exit code 1: boom"}])
    # a local command killed while one job ran and another waited: neither reads "missing" beside the unstarted ones
    Ledger(tmp_path, "g3").append([{"event": "local", "job": "p2", "stage": "pretrain", "state": "running", "pid": 1,
                                    "host": "gone.invalid"},
                                   {"event": "local", "job": "p3", "stage": "pretrain", "state": "pending", "pid": 1,
                                    "host": "gone.invalid"}])
    plan = Plan("g3", [Job("p1", "pretrain", {"axes": {"seed": 1}}),
                       Job("e1", "evaluate", {"axes": {"seed": 1}}, ("p1",)),
                       Job("p2", "pretrain", {"axes": {"seed": 2}}), Job("p3", "pretrain", {"axes": {"seed": 3}})])
    miss = gather(tmp_path, plan).missing.set_index("job_id")
    assert miss.loc["p2", "state"].startswith("stopped before it finished: its `study submit --cluster local` ended")
    assert miss.loc["p3", "state"].startswith("not started: its `study submit --cluster local` ended")
    assert miss.loc["p1", "state"] == "submitted as Slurm job 42_0 (its state now: study status)"
    assert miss.loc["e1", "state"] == "failed: exit code 1: boom"
    assert miss.loc["e1", "waits_for"] == "p1 (pretrain, submitted as Slurm job 42_0 (its state now: study status))"
    assert miss.loc["p1", "waits_for"] == "no dependency"
    from study.results import write_result

    write_result(tmp_path, {"schema_version": 1, "job_id": "p1", "stage": "pretrain", "axes": {"seed": 1},
                            "metrics": [], "protocol": {"stage": "pretrain"}})
    assert gather(tmp_path, plan).missing.set_index("job_id").loc["e1", "waits_for"] == "dependencies done"


def test_a_missing_job_whose_result_was_set_aside_says_where(tmp_path):
    """A result of a manifest since rebuilt, set aside by study.launch.stale: missing.csv says so, and where."""
    from dataclasses import dataclass

    from study.launch.ledger import Ledger

    @dataclass
    class Plan:
        name: str
        jobs: list

    Ledger(tmp_path, "g4").append([{"event": "set_aside", "job": "p1", "stage": "pretrain", "folder": "stale/t"}])
    miss = gather(tmp_path, Plan("g4", [Job("p1", "pretrain", {"axes": {"seed": 1}})])).missing.set_index("job_id")
    assert miss.loc["p1", "state"] == ("missing: its result, computed on a manifest since rebuilt, was set aside in "
                                       "stale/t")


def test_writing_a_result_removes_the_temporaries_a_killed_writer_left_beside_it(tmp_path):
    """A writer killed mid-write leaves `.<id>.json.<random>.tmp`: the next write of that result removes it once it
    is older than any live writer takes; a fresh one (a writer at work) is kept."""
    import os
    import time

    from study.atomic import STALE_TEMPORARY_S
    from study.results import write_result

    (tmp_path / "results").mkdir()
    stale, fresh = (tmp_path / "results" / f".p1.json.{c * 8}.tmp" for c in "ab")
    for p in (stale, fresh):
        p.write_text("{")
    os.utime(stale, (time.time() - 2 * STALE_TEMPORARY_S,) * 2)
    path = write_result(tmp_path, {"schema_version": 1, "job_id": "p1", "stage": "pretrain", "axes": {},
                                   "metrics": [], "protocol": {"stage": "pretrain"}})
    assert sorted(p.name for p in path.parent.iterdir()) == [fresh.name, "p1.json"]


def test_fingerprint_is_recomputed_so_records_of_an_older_rule_still_aggregate(tmp_path):
    import json

    _write(tmp_path, "j0", 0, {1000: 0.5})
    _write(tmp_path, "j1", 1, {1000: 0.7})
    path = tmp_path / "results" / "j1.json"
    old = json.loads(path.read_text())
    old["protocol_fingerprint"] = "from-an-older-rule"
    path.write_text(json.dumps(old))
    del old["protocol_fingerprint"]  # and a record without one is read too
    old["job_id"] = "j2"
    (tmp_path / "results" / "j2.json").write_text(json.dumps({**old, "axes": {**old["axes"], "seed": 2}}))
    agg = aggregate(collect(tmp_path))
    row = agg[agg["metric"] == "top1"]
    assert len(row) == 1 and row["count"].iloc[0] == 3 and find_conflicts(agg).empty


def test_concatenations_of_two_seed_pairs_are_replicates_not_repeats():
    from study.results import drop_repeated_seeds, records_to_table

    def rec(job, seeds, value):
        return {"schema_version": 1, "job_id": job, "stage": "evaluate", "grid": "g",
                "axes": {"method": "simclr", "dataset": "a|b", "size": 1000, "corruption": "none", "seed": seeds,
                         "protocol": "concat", "eval_dataset": "a"},
                "metrics": [{"metric": "top1", "value": value, "labeled_size": 100, "level": None}],
                "protocol": {"protocol": "concat", "seed": 0}, "finished_at": "2024-01-01"}

    kept, repeats = drop_repeated_seeds(records_to_table([rec("j1", "0|1", 0.5), rec("j2", "2|3", 0.7)]))
    assert len(kept) == 2 and repeats.empty
    row = aggregate(kept).iloc[0]
    assert row["count"] == 2 and row["mean"] == pytest.approx(0.6) and row["seeds"] == "0|1,2|3"


def test_integer_axes_stay_integer_where_some_rows_have_none(tmp_path):
    """A scratch row has no size, a metric no labeled size, a concatenation's seed is its pair: the columns stay Int64
    (in Parquet too), and a cell's seeds read as integers in numeric order, not "0.0,1.0" or "10,2"."""
    from study.results import records_to_table

    def rec(job, seed, size, labeled, extra=None):
        return {"job_id": job, "stage": "evaluate", "grid": "g",
                "axes": {"method": "simclr", "dataset": "a", "size": size, "seed": seed, "protocol": "linear",
                         "eval_dataset": "a", **(extra or {})},
                "metrics": [{"metric": "top1", "value": 0.5, "labeled_size": labeled, "level": None}],
                "protocol": {"seed": 0}, "finished_at": "2024-01-01"}

    t = records_to_table([rec("j10", 10, 50000, 1000, {"pool_size": None}), rec("j2", 2, 50000, 1000),
                          rec("jscratch", 0, None, None, {"pool_size": 4}), rec("jpair", "0|1", 1000, 100)])
    for col in ("size", "seed", "labeled_size", "pool_size"):
        assert t[col].dtype == "Int64", col
    assert t["seed_pair"].dropna().to_list() == ["0|1"]
    back = pd.read_parquet(write_table(t, tmp_path / "results.parquet"))
    assert all(back[c].dtype == "Int64" for c in ("size", "seed", "labeled_size"))
    agg = aggregate(t).set_index("job_ids")
    assert agg.loc["j10,j2", "seeds"] == "2,10" and agg.loc["jpair", "seeds"] == "0|1"
    none = records_to_table([rec("jscratch", 0, None, None)])  # no row has a size or a labeled size yet
    back = pd.read_parquet(write_table(none, tmp_path / "none.parquet"))
    assert all(t[c].dtype == "Int64" for t in (none, back) for c in ("size", "labeled_size")), none.dtypes


def test_a_record_without_metrics_is_one_row_and_no_cell(tmp_path):
    """A `random` pretraining records no metric: the table keeps the job (its protocol too), aggregate makes no cell."""
    write_result(tmp_path, {"job_id": "rand", "stage": "pretrain", "grid": "g", "metrics": [],
                            "axes": {"method": "random", "dataset": "a", "size": 1000, "seed": 0},
                            "protocol": {"method": "random", "seed": 0}})
    _write(tmp_path, "j0", 0, {1000: 0.5})
    t = collect(tmp_path)
    rand = t[t["job_id"] == "rand"]
    assert len(rand) == 1 and rand["metric"].isna().all() and rand["protocol.method"].iloc[0] == "random"
    assert set(aggregate(t)["job_ids"]) == {"j0"}


def test_a_cell_names_the_code_versions_of_its_seeds(tmp_path):
    for seed, version in ((0, "0.1.0+git.aaaaaaa"), (1, "0.1.0+git.bbbbbbb-dirty"), (2, "0.1.0+git.aaaaaaa")):
        _write(tmp_path, f"j{seed}", seed, {1000: 0.5}, code_version=version)
    agg = aggregate(collect(tmp_path))
    assert set(agg["code_versions"]) == {"0.1.0+git.aaaaaaa,0.1.0+git.bbbbbbb-dirty"}
    assert find_conflicts(agg).empty and len(resolve_conflicts(agg)) == 2  # still one cell per metric


def test_planned_seeds_counts_the_plans_seeds_of_each_cell(tmp_path):
    """Three seeds planned for one recipe (two done), one for another, none for a cell the plan lacks; a job covers
    every labeled size of its cell; concatenations count their seed pairs."""
    from dataclasses import dataclass

    from study.results.table import planned_seeds

    @dataclass
    class Plan:
        name: str
        jobs: list

    axes = {"method": "simclr", "dataset": "a", "size": 50000, "corruption": "none", "protocol": "linear",
            "eval_dataset": "a"}
    jobs = [Job(f"j{s}", "evaluate", {"axes": {**axes, "seed": s}}) for s in (0, 1, 2)]
    jobs += [Job("k0", "evaluate", {"axes": {**axes, "size": 1000000, "seed": 0}}),
             Job("p0", "pretrain", {"axes": {**axes, "protocol": None, "eval_dataset": None, "seed": 5}})]
    jobs += [Job(f"c{s}", "evaluate", {"axes": {**axes, "dataset": "a|b", "protocol": "concat", "seed": s}})
             for s in ("0|1", "2|3")]
    for s in (0, 1):
        _write(tmp_path, f"j{s}", s, {1000: 0.5, 10000: 0.6})
    _write(tmp_path, "k0", 0, {1000: 0.5}, extra_axes={"size": 1000000})
    _write(tmp_path, "x0", 0, {1000: 0.5}, extra_axes={"size": 7})  # not planned
    coll = gather(tmp_path, Plan("g", jobs))
    agg = aggregate(collect(tmp_path))
    agg = agg[agg["metric"] == "top1"].reset_index(drop=True)
    got = dict(zip(zip(agg["size"], agg["labeled_size"]), planned_seeds(agg, coll.planned)))
    assert got[(50000, 1000)] == got[(50000, 10000)] == 3 and got[(1000000, 1000)] == 1
    assert math.isnan(got[(7, 1000)])
    assert planned_seeds(agg, None).isna().all() and planned_seeds(agg, pd.DataFrame()).isna().all()  # no jobs
    pairs = coll.planned[coll.planned["protocol"] == "concat"].assign(stage="evaluate")
    conc = pd.DataFrame([{"stage": "evaluate", **axes, "dataset": "a|b", "protocol": "concat"}])
    assert planned_seeds(conc, pairs).to_list() == [2]


@pytest.mark.parametrize("newest_lr", [0.1, 0.5])
def test_the_recipe_drawn_is_the_newest_whatever_the_fingerprints_order(tmp_path, newest_lr):
    """Each order of two recipes' results: the newer one is drawn (not the one whose fingerprint sorts last)."""
    _write(tmp_path, "j0", 0, {1000: 0.2}, lr=0.5 if newest_lr == 0.1 else 0.1, finished="2024-01-01T00:00:00+00:00")
    _write(tmp_path, "j1", 1, {1000: 0.9}, lr=newest_lr, finished="2024-02-01T00:00:00+00:00")
    drawn = resolve_conflicts(aggregate(collect(tmp_path)))
    assert drawn.loc[drawn["metric"] == "top1", "mean"].to_list() == pytest.approx([0.9])


def test_a_recipe_is_as_new_as_its_newest_seed(tmp_path):
    """lr 0.1 has seeds of January and March, lr 0.5 one of February: lr 0.1 holds the newest result and is drawn,
    its mean over both seeds."""
    _write(tmp_path, "a0", 0, {1000: 0.2}, lr=0.1, finished="2024-01-01T00:00:00+00:00")
    _write(tmp_path, "a1", 1, {1000: 0.4}, lr=0.1, finished="2024-03-01T00:00:00+00:00")
    _write(tmp_path, "b2", 2, {1000: 0.9}, lr=0.5, finished="2024-02-01T00:00:00+00:00")
    agg = aggregate(collect(tmp_path))
    top1 = agg[agg["metric"] == "top1"].set_index("job_ids")
    assert top1.loc["a0,a1", "finished_at"] == "2024-03-01T00:00:00+00:00"
    drawn = resolve_conflicts(agg)
    assert drawn.loc[drawn["metric"] == "top1", "mean"].to_list() == pytest.approx([0.3])


def test_missing_jobs_are_listed_by_stage_then_in_the_plans_order(tmp_path):
    """missing.csv (and the report's table of it) lists the evaluations, then the pretrainings, each in the plan's
    order (its axes' and entries' order; job ids are hashes)."""
    from dataclasses import dataclass

    @dataclass
    class Plan:
        name: str
        jobs: list

    plan = Plan("g", [Job("aa", "pretrain", {"axes": {"seed": 0}}), Job("bb", "pretrain", {"axes": {"seed": 1}}),
                      Job("zz", "evaluate", {"axes": {"seed": 0}}, ("aa",)),
                      Job("mm", "evaluate", {"axes": {"seed": 1}}, ("bb",))])
    assert gather(tmp_path, plan).missing["job_id"].to_list() == ["zz", "mm", "aa", "bb"]


def _record(job_id, seed, value, finished, protocol=None):
    return {"job_id": job_id, "stage": "evaluate", "grid": "g",
            "axes": {"method": "simclr", "dataset": "a", "size": 1000, "seed": seed, "protocol": "linear",
                     "eval_dataset": "a"},
            "metrics": [{"metric": "top1", "value": value, "labeled_size": 100, "level": None}],
            "protocol": protocol if protocol is not None else {"seed": 0}, "finished_at": finished}


def test_a_rerun_of_a_seed_keeps_the_newest_result_even_under_a_smaller_job_id():
    """Two jobs of one seed in one cell: the one that finished last stays, whatever the order of their ids (job ids
    break ties of time only); `repeats` lists them oldest first."""
    table = records_to_table([_record("b-old", 0, 0.2, "2024-01-01T00:00:00+00:00"),
                              _record("a-new", 0, 0.8, "2024-02-01T00:00:00+00:00")])
    kept, repeats = drop_repeated_seeds(table)
    assert kept["job_id"].to_list() == ["a-new"] and kept["value"].to_list() == [0.8]
    assert repeats[["job_ids", "kept"]].values.tolist() == [["b-old,a-new", "a-new"]]


def test_only_a_whole_join_of_numbers_is_moved_to_a_pair_column():
    """"0|1" and "1000000|None" are pairs; a value that merely starts like one ("1|2x") is an ordinary axis value."""
    out = split_numeric_pairs({"seed": "0|1", "size": "1000000|None", "dataset": "1|2x", "method": "simclr"})
    assert out == {"seed": None, "seed_pair": "0|1", "size": None, "size_pair": "1000000|None", "dataset": "1|2x",
                   "method": "simclr"}


@pytest.mark.parametrize("version", [None, b"0", b"2", b"x"])
def test_a_table_of_another_schema_version_or_of_none_is_refused(tmp_path, version):
    """read_table reads only its own schema version: an older or newer one (said to be a newer study's), or a
    Parquet file that carries none or not a number, is refused with the file named."""
    arrow = pa.table({"x": [1]})
    if version is not None:
        arrow = arrow.replace_schema_metadata({b"study.table_schema_version": version})
    pq.write_table(arrow, tmp_path / "t.parquet")
    with pytest.raises(StudyError, match="t.parquet: table schema version") as e:
        read_table(tmp_path / "t.parquet")
    assert ("written by a newer version of study" in str(e.value)) == (version == b"2")
    assert ("not a results table of study" in str(e.value)) == (version is None)  # another program's Parquet


def test_a_report_folder_given_for_its_table_names_the_table_in_it(tmp_path):
    """read_table of a folder (the report's, not its results.parquet) says so, naming the table inside it."""
    with pytest.raises(StudyError, match=f"{tmp_path}: a folder, not a results table$"):
        read_table(tmp_path)
    write_table(records_to_table([_record("j0", 0, 0.5, "2024-01-01")]), tmp_path / "results.parquet", grid="g")
    with pytest.raises(StudyError, match=f"a folder, not a results table \\(read {tmp_path}/results.parquet\\)"):
        read_table(tmp_path)


def test_a_table_read_back_takes_a_new_column_without_a_fragmentation_warning(tmp_path):
    """read_table's frame is in one block per type, as collect's: the notebook's first `assign` of a table of many
    protocol columns (reports/README.md, "In a notebook") warns of no fragmented frame."""
    protocol = {f"key{i}": f"text{i}" for i in range(150)}  # text columns, each converted from pandas 3's `str`
    path = write_table(records_to_table([_record("j0", 0, 0.5, "2024-01-01", protocol=protocol)]),
                       tmp_path / "results.parquet", grid="g")
    table = read_table(path)
    assert table["protocol.key7"].dtype == object
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        assert table.assign(extra=1)["extra"].to_list() == [1]


def test_an_empty_mapping_in_a_protocol_is_a_column_of_its_own():
    """A protocol leaf holding an empty mapping is kept as a `protocol.<key>` column ("{}"), not dropped."""
    table = records_to_table([_record("j0", 0, 0.5, "2024-01-01", protocol={"seed": 0, "augment": {}})])
    assert table["protocol.augment"].to_list() == ["{}"]


def test_protocol_flags_are_booleans_and_lists_of_mappings_one_text_whatever_their_key_order():
    """`protocol.<flag>` is a boolean column (not the text "true"); a list of settings reads the same in every record
    that holds it, whichever order its keys were written in."""
    table = records_to_table([
        _record("j0", 0, 0.5, "2024-01-01", protocol={"also_knn": True, "runs": [{"lr": 0.1, "epochs": 3}]}),
        _record("j1", 1, 0.5, "2024-01-01", protocol={"also_knn": False, "runs": [{"epochs": 3, "lr": 0.1}]})])
    assert table["protocol.also_knn"].dtype == "boolean" and table["protocol.also_knn"].to_list() == [True, False]
    assert table["protocol.runs"].to_list() == ['[{"epochs": 3, "lr": 0.1}]'] * 2


def test_a_size_axis_of_fractions_stays_fractional():
    """An integer column is Int64 only where its values are whole numbers: 0.5 is never truncated to 0."""
    def rec(job, crop):
        return {"job_id": job, "stage": "evaluate", "grid": "g", "axes": {"seed": 0, "crop_size": crop},
                "metrics": [{"metric": "top1", "value": 0.5, "labeled_size": 10, "level": None}], "protocol": {}}

    t = records_to_table([rec("j1", 0.5), rec("j2", 1.0)])
    assert t["crop_size"].dtype == "float64" and t["crop_size"].to_list() == [0.5, 1.0]


def test_a_gathered_plan_names_only_its_own_unreadable_result_files(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Plan:
        name: str
        jobs: list

    for job in ("mine", "theirs"):
        path = result_path(tmp_path, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{not json")
    with pytest.warns(ResultFileWarning):
        coll = gather(tmp_path, Plan("g", [Job("mine", "pretrain", {"axes": {"seed": 0}})]))
    assert [s.path.stem for s in coll.skipped] == ["mine"]
    assert coll.missing.loc[0, "state"].startswith("result file unreadable")


def test_seeds_a_float_column_holds_read_as_integers():
    """A table whose seed column became float (a concatenation of tables, one with no seed) names seeds 2,10."""
    def rec(job, seed):
        return {"job_id": job, "stage": "evaluate", "grid": "g", "axes": {"seed": seed},
                "metrics": [{"metric": "top1", "value": 0.5, "labeled_size": 10, "level": None}], "protocol": {}}

    t = records_to_table([rec("j1", 10), rec("j2", 2)])
    assert aggregate(t.assign(seed=t["seed"].astype("float64")))["seeds"].to_list() == ["2,10"]


def test_key_tuples_read_every_null_spelling_and_an_absent_column_as_none():
    """A plan's None, a table's NaN and a nullable column's NA make one key; a column the frame lacks is None."""
    from study.results.table import key_tuples

    df = pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [float("nan"), 2.0], "c": ["x", None]})
    assert key_tuples(df, ["a", "b", "c", "nope"]) == [(1, None, "x", None), (None, 2.0, None, None)]


def test_other_axes_follow_sorted_and_each_records_metrics_keep_their_order():
    """Axes beyond AXES come after them sorted by name; a record's metric rows stay in its order (levels coarse to
    fine), not sorted by name."""
    def rec(job):
        return {"job_id": job, "stage": "evaluate", "grid": "g", "axes": {"seed": 0, "zeta": "z", "alpha": "a"},
                "metrics": [{"metric": m, "value": 0.5, "labeled_size": 10, "level": None} for m in ("top5", "top1")],
                "protocol": {}}

    t = records_to_table([rec("j1"), rec("j0")])
    assert [c for c in t.columns if c in ("alpha", "zeta")] == ["alpha", "zeta"]
    assert t["metric"].to_list() == ["top5", "top1", "top5", "top1"]
    assert t["job_id"].to_list() == ["j0", "j0", "j1", "j1"]


def test_axis_columns_of_an_aggregate_are_its_axes_not_its_statistics(tmp_path):
    from study.results import axis_columns

    _write(tmp_path, "j0", 0, {1000: 0.5})
    cols = axis_columns(aggregate(collect(tmp_path)))
    assert "method" in cols and not set(cols) & {"mean", "std", "count", "n_jobs", "seeds", "job_ids"}


def test_a_diverged_seed_is_not_counted_and_a_rerun_seed_is_named_once():
    """`count` counts the rows with a value; `seeds` names each seed once, a rerun's too; `repeats` has one row per
    rerun, however many cells (metrics) it holds."""
    rows = [_record("a", 0, 0.5, "2024-01-01"), _record("b", 1, None, "2024-01-01"),
            _record("c", 0, 0.7, "2024-02-01")]
    rows[0]["metrics"].append({"metric": "top5", "value": 0.9, "labeled_size": 100, "level": None})
    rows[2]["metrics"].append({"metric": "top5", "value": 0.9, "labeled_size": 100, "level": None})
    table = records_to_table(rows)
    row = aggregate(table).set_index("metric").loc["top1"]
    assert row["count"] == 2 and row["seeds"] == "0,1" and row["mean"] == pytest.approx(0.6)
    _, repeats = drop_repeated_seeds(table)
    assert repeats[["job_ids", "kept"]].values.tolist() == [["a,c", "c"]]


def test_gather_by_grid_name_keeps_that_grids_records_and_names_the_others(tmp_path):
    for job, grid in (("j0", "g"), ("j1", "h"), ("j2", None)):
        write_result(tmp_path, {**_record(job, 0, 0.5, "2024-01-01"), "grid": grid})
    coll = gather(tmp_path, grid="g")
    assert coll.table["job_id"].to_list() == ["j0"] and coll.other_grids == ["h"]


def test_a_plans_labeled_sizes_and_levels_are_listed_for_the_figures(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Plan:
        name: str
        jobs: list

    plan = Plan("g", [Job("e0", "evaluate", {"axes": {"seed": 0}, "evaluate": {"labeled_sizes": [1000, "all"]}}),
                      Job("e1", "evaluate", {"axes": {"seed": 1}, "evaluate": {"levels": ["kingdom", "species"]}})])
    planned = gather(tmp_path, plan).planned
    sizes, levels = planned["labeled_sizes"], planned["levels"]
    assert sizes.iloc[0] == "1000,all" and pd.isna(sizes.iloc[1])
    assert pd.isna(levels.iloc[0]) and levels.iloc[1] == "kingdom,species"


def test_the_package_gives_the_table_names_on_first_use():
    """study.results loads its table half lazily (no pandas for a record's reader): its names are the table module's
    own, `collect` the function (not a submodule of that name), and an unknown name is an AttributeError."""
    import study.results as results
    import study.results.table as table

    assert results.collect is table.collect and callable(results.collect)
    assert results.aggregate is table.aggregate and results.AXES is table.AXES
    assert set(table.__dict__) >= {n for n in results.__all__ if not hasattr(results.record, n)}
    with pytest.raises(AttributeError, match="no_such_name"):
        results.no_such_name


def test_a_single_number_is_no_pair():
    """A pair joins two or more numbers: an axis holding one number as text ("7") stays as it is."""
    assert split_numeric_pairs({"variant": "7", "seed": "-1|2"}) == {"variant": "7", "seed": None, "seed_pair": "-1|2"}


def test_protocol_columns_keep_integers_integer_floats_float_and_flags_apart_from_numbers():
    """An integer protocol leaf is Int64 (not float); a protocol leaf named *_size keeps the floats it was recorded
    as (only axes are made integers); a flag in one record and a number in another are not one value."""
    t = records_to_table([_record(job, 0, 0.5, None, protocol) for job, protocol in (
        ("j0", {"epochs": 90, "crop_size": 1.0, "mixed": True}), ("j1", {"epochs": 100, "crop_size": 2.0, "mixed": 1}),
        ("j2", {"epochs": 90, "crop_size": 3.0}))])
    assert t["protocol.epochs"].dtype == "Int64" and t["protocol.epochs"].to_list() == [90, 100, 90]
    assert t["protocol.crop_size"].dtype == "float64"
    assert t["protocol.mixed"].iloc[0] != t["protocol.mixed"].iloc[1]


def test_an_integer_protocol_leaf_some_records_lack_stays_integer():
    """A leaf one record has not (a setting added to a later run) is null there and Int64 elsewhere, not 90.0."""
    t = records_to_table([_record("j0", 0, 0.5, None, {"epochs": 90, "lr": 0.3}), _record("j1", 0, 0.5, None, {})])
    assert t["protocol.epochs"].dtype == "Int64" and t["protocol.epochs"].to_list() == [90, pd.NA]
    assert t["protocol.lr"].dtype == "float64" and t["protocol.lr"].iloc[0] == 0.3 and pd.isna(t["protocol.lr"].iloc[1])


def test_the_same_records_in_any_order_make_the_same_table():
    """Columns (other axes, protocol leaves) and rows do not depend on the order records are read in."""
    def rec(job, seed, axes, protocol):
        return {"job_id": job, "stage": "evaluate", "grid": "g", "axes": {"seed": seed, **axes},
                "metrics": [{"metric": m, "value": 0.5, "labeled_size": 10, "level": None} for m in ("top5", "top1")],
                "protocol": protocol}

    recs = [rec("j2", 2, {"zeta": "z"}, {"z": 1, "a": {"y": 2}}), rec("j0", 0, {"beta": "b"}, {"m": 3, "b": 4}),
            rec("j1", 1, {"alpha": "a"}, {"c": 5})]
    pd.testing.assert_frame_equal(records_to_table(recs), records_to_table(recs[::-1]))
    cols = list(records_to_table(recs).columns)
    assert [c for c in cols if c.startswith("protocol.")] == sorted(c for c in cols if c.startswith("protocol."))


def test_aggregate_does_not_depend_on_the_tables_row_order():
    """Job ids and code versions are listed sorted, not in the order the rows came."""
    recs = [{**_record(f"j{s}", s, 0.5 + s / 10, "2024-01-01"), "code_version": v}
            for s, v in ((0, "0.2.0"), (1, "0.1.0"), (2, "0.2.0"))]
    t = records_to_table(recs)
    agg = aggregate(t)
    assert agg[["job_ids", "code_versions", "seeds"]].values.tolist() == [["j0,j1,j2", "0.1.0,0.2.0", "0,1,2"]]
    pd.testing.assert_frame_equal(aggregate(t.iloc[::-1].reset_index(drop=True)), agg)


def test_a_rerun_kept_is_the_newest_a_tie_the_larger_job_id_and_rows_keep_the_tables_order():
    """drop_repeated_seeds: of two jobs of one seed finished at one time, the larger job id stays whatever the
    table's order; a job that recorded no finish time is older than any that did; the rows kept stay in the order
    of the table given (not in time order)."""
    tie = records_to_table([_record("a", 0, 0.2, "2024-01-01"), _record("b", 0, 0.8, "2024-01-01")])
    for table in (tie, tie.iloc[::-1].reset_index(drop=True)):
        kept, repeats = drop_repeated_seeds(table)
        assert kept["job_id"].to_list() == ["b"] and repeats["kept"].to_list() == ["b"]
    undated = records_to_table([_record("a", 0, 0.2, None), _record("b", 0, 0.8, "2024-01-01")])
    assert drop_repeated_seeds(undated)[0]["job_id"].to_list() == ["b"]
    table = records_to_table([_record("a", 1, 0.1, "2024-03-01"), _record("b", 2, 0.2, "2024-01-01"),
                              _record("c", 0, 0.3, "2024-02-01"), _record("d", 0, 0.4, "2024-01-15")])
    assert drop_repeated_seeds(table)[0]["job_id"].to_list() == ["a", "b", "c"]


def test_the_recipe_drawn_does_not_depend_on_the_aggregates_row_order():
    """resolve_conflicts: two recipes finished at one time, the larger fingerprint is drawn, rows sorted by cell,
    whatever the order of the rows given; a recipe that recorded no finish time is older than one that did."""
    recs = [{**_record(f"j{lr}", 0, lr, "2024-01-01", protocol={"lr": lr}),
             "metrics": [{"metric": m, "value": lr, "labeled_size": 100, "level": None} for m in ("top1", "top5")]}
            for lr in (0.1, 0.2)]
    agg = aggregate(records_to_table(recs))
    drawn = resolve_conflicts(agg)
    assert drawn["metric"].to_list() == ["top1", "top5"] and drawn["protocol_fingerprint"].nunique() == 1
    assert drawn["protocol_fingerprint"].iloc[0] == max(agg["protocol_fingerprint"])
    pd.testing.assert_frame_equal(resolve_conflicts(agg.iloc[::-1].reset_index(drop=True)), drawn)
    undated = aggregate(records_to_table([_record("a", 0, 0.2, None, protocol={"lr": 0.1}),
                                          _record("b", 1, 0.8, "2024-01-01", protocol={"lr": 0.2})]))
    assert resolve_conflicts(undated)["mean"].to_list() == pytest.approx([0.8])


def test_gather_names_the_other_grids_sorted_and_a_plan_of_no_jobs_reads_no_record(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Plan:
        name: str
        jobs: list

    for job, grid in (("j0", "mm"), ("j1", "zz"), ("j2", "aa"), ("j3", "g")):
        write_result(tmp_path, {**_record(job, 0, 0.5, "2024-01-01"), "grid": grid})
    assert gather(tmp_path, grid="g").other_grids == ["aa", "mm", "zz"]
    coll = gather(tmp_path, Plan("g", []))
    assert coll.table.empty and coll.missing.empty


def test_a_table_is_written_by_renaming_a_complete_temporary_onto_the_earlier_one(tmp_path, monkeypatch):
    """Up to the rename, the file is the earlier table: a reader never sees half a Parquet file."""
    from renames import renames_onto

    path = write_table(records_to_table([_record("j0", 0, 0.5, "2024-01-01")]), tmp_path / "results.parquet")
    seen = renames_onto(monkeypatch, path, lambda f: len(pd.read_parquet(f)))
    write_table(records_to_table([_record("j0", 0, 0.5, "2024-01-01"), _record("j1", 1, 0.5, "2024-01-01")]), path)
    assert seen == [(1, 2)] and len(read_table(path)) == 2


def test_a_filtered_table_is_written_with_its_columns_only(tmp_path):
    """A slice of a table (its index no longer 0..n-1) is written with the table's columns, no index column, and
    reads back numbered from 0; the file names the record schema it was made from."""
    t = records_to_table([_record(f"j{s}", s, 0.5, "2024-01-01") for s in range(3)])
    part = t[t["job_id"] != "j0"]
    path = write_table(part, tmp_path / "part.parquet")
    assert pq.read_schema(path).names == list(t.columns)
    assert pq.read_schema(path).metadata[b"study.record_schema_version"] == b"1"
    pd.testing.assert_frame_equal(read_table(path), part.reset_index(drop=True), check_dtype=False)


def test_two_recipes_of_one_seed_are_no_rerun_and_a_collection_names_its_conflicts(tmp_path):
    """drop_repeated_seeds keeps one job per seed of one recipe: a seed run under two recipes keeps both (a conflict,
    which `Collection.conflicts` lists), never the newer recipe alone."""
    _write(tmp_path, "j0", 0, {1000: 0.5}, lr=0.1, finished="2024-01-01T00:00:00+00:00")
    _write(tmp_path, "j1", 0, {1000: 0.9}, lr=0.5, finished="2024-02-01T00:00:00+00:00")
    coll = gather(tmp_path)
    kept, repeats = drop_repeated_seeds(coll.table)
    assert sorted(kept["job_id"].unique()) == ["j0", "j1"] and repeats.empty
    conflicts = coll.conflicts
    assert sorted(conflicts.loc[conflicts["metric"] == "top1", "mean"]) == pytest.approx([0.5, 0.9])


def test_a_result_of_a_newer_study_is_missing_for_that_version_to_report_not_to_rerun_here(tmp_path):
    """A colleague's newer study wrote the result (schema 2) on a shared workdir: missing.csv sends the reader to that
    version's report, not to `study submit --retry-failed` (which would replace it with this older code's); a
    damaged file still says --retry-failed."""
    import json
    from dataclasses import dataclass

    @dataclass
    class Plan:
        name: str
        jobs: list

    _write(tmp_path, "new", 0, {1000: 0.5})
    path = result_path(tmp_path, "new")
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 2}))
    result_path(tmp_path, "torn").write_text("{not json")
    with pytest.warns(ResultFileWarning):
        coll = gather(tmp_path, Plan("g", [Job("new", "evaluate", {"axes": {"seed": 0}}),
                                           Job("torn", "evaluate", {"axes": {"seed": 1}})]))
    assert {s.path.stem: s.newer for s in coll.skipped} == {"new": True, "torn": False}
    state = coll.missing.set_index("job_id")["state"]
    assert "written by a newer version of study" in state["new"] and "--retry-failed" not in state["new"]
    assert state["new"].endswith("`study report` of that version reports it"), state["new"]
    assert state["torn"].endswith("`study submit --retry-failed` reruns it")


def test_a_run_resumed_under_another_code_version_names_both_in_its_cell():
    """A pretraining stopped under one version and resumed under the next records the last session's as its
    code_version and each session's in its protocol: the cell names both (it named the last one alone)."""
    resumed = {**_record("p", 0, 0.5, "2024-01-02T00:00:00+00:00", protocol={"code_version": ["0.1.0", "0.2.0"]}),
               "code_version": "0.2.0"}
    plain = {**_record("q", 1, 0.6, "2024-01-02T00:00:00+00:00", protocol={"code_version": "0.2.0"}),
             "code_version": "0.2.0"}
    agg = aggregate(records_to_table([resumed]))
    assert agg["code_versions"].to_list() == ["0.1.0,0.2.0"]
    assert aggregate(records_to_table([plain]))["code_versions"].to_list() == ["0.2.0"]
    assert aggregate(records_to_table([resumed, plain]))["code_versions"].to_list() == ["0.1.0,0.2.0"]


def test_an_evaluation_of_an_encoder_trained_under_another_code_version_names_both_in_its_cell():
    """A probe run after study was updated, of an encoder pretrained before: its cell named the probe's version
    alone, so two seeds whose encoders were trained under two versions read as one version. The versions of the
    pretraining jobs it read (`depends_on`, each of a concatenation's; a resumed one's every session's) count too;
    its `protocol.pretrain`, copied from the encoder file, names none (as evaluate writes it: recipe and seed)."""
    def pretraining(job, seed, versions):
        return {**_record(job, seed, 0.5, "2024-01-01T00:00:00+00:00", protocol={"code_version": versions}),
                "stage": "pretrain", "metrics": [], "code_version": versions[-1] if isinstance(versions, list)
                else versions}

    def probe(job, seed, deps):
        recipe = {"method": "simclr", "seed": seed}  # the encoder file's protocol: no code version
        return {**_record(job, seed, 0.5, "2024-01-02T00:00:00+00:00",
                          protocol={"code_version": "0.2.0", "pretrain": recipe if len(deps) == 1 else [recipe] * 2}),
                "code_version": "0.2.0", "depends_on": deps}

    pre = [pretraining("p0", 0, "0.1.0"), pretraining("p1", 1, "0.2.0"), pretraining("p2", 2, ["0.1.0", "0.1.5"])]
    old, new, resumed = probe("e0", 0, ["p0"]), probe("e1", 1, ["p1"]), probe("e2", 2, ["p2"])
    pair, alone = probe("e3", 3, ["p1", "p2"]), probe("e4", 4, ["p9"])  # p9: no result in the table

    def versions(*records):
        agg = aggregate(records_to_table([*pre, *records]))
        return agg.loc[agg["stage"] == "evaluate", "code_versions"].to_list()

    assert versions(new) == versions(alone) == ["0.2.0"]
    assert versions(old, new) == ["0.1.0,0.2.0"]
    assert versions(resumed) == versions(pair) == ["0.1.0,0.1.5,0.2.0"]
    assert job_code_versions(records_to_table([old])).to_list() == ["0.2.0"]  # its encoder's job not in the table


def test_a_key_null_in_every_record_beside_its_own_sub_keys_is_no_column(tmp_path):
    """The `random` method records `augmentation: null`, the others `augmentation: {...}`: the table had an always
    null `protocol.augmentation` column beside `protocol.augmentation.*`. It has the sub-columns only (the random
    job's null there), its protocol_json and fingerprint unchanged; a key null in one record and a value in another,
    or null where no record has keys under it, keeps its column."""
    from study.results import protocol_fingerprint

    random_protocol = {"method": "random", "augmentation": None, "levels": None}
    write_result(tmp_path, {"job_id": "rand", "stage": "pretrain", "grid": "g", "metrics": [],
                            "axes": {"method": "random", "dataset": "a", "size": 1000, "seed": 0},
                            "protocol": random_protocol})
    write_result(tmp_path, {"job_id": "sim", "stage": "pretrain", "grid": "g", "metrics": [],
                            "axes": {"method": "simclr", "dataset": "a", "size": 1000, "seed": 0},
                            "protocol": {"method": "simclr", "augmentation": {"crop": 0.2, "blur": {"p": 0.5}},
                                         "levels": None}})
    t = collect(tmp_path)
    assert "protocol.augmentation" not in t.columns
    assert {"protocol.augmentation.crop", "protocol.augmentation.blur.p", "protocol.levels"} <= set(t.columns)
    rand = t[t["job_id"] == "rand"].iloc[0]
    assert pd.isna(rand["protocol.augmentation.crop"]) and '"augmentation":null' in rand["protocol_json"]
    assert rand["protocol_fingerprint"] == protocol_fingerprint(random_protocol)
    mixed = records_to_table([{"job_id": "x", "stage": "pretrain", "metrics": [], "protocol": {"a": "text"}},
                              {"job_id": "y", "stage": "pretrain", "metrics": [], "protocol": {"a": {"b": 1}}}])
    assert mixed["protocol.a"].iloc[0] == "text" and pd.isna(mixed["protocol.a"].iloc[1])
    assert mixed["protocol.a.b"].to_list()[1] == 1


def test_the_reports_computations_are_the_same_on_the_table_read_back_from_parquet(tmp_path):
    """pandas 3 reads results.parquet's text columns back as its string dtype, where `collect` gives objects: the
    report's cells, conflicts, seeds dropped, findings, warnings and each figure's plotted data are the same on
    either (a notebook's `pd.read_parquet` of a report's results.parquet draws what the report drew; `read_table`
    gives the types `collect` gives)."""
    import sys
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
    from report_records import ALL_RECORDS, eval_axes, records, table_of

    from study.report import caveats
    from study.report.figures import FIGURES
    from study.report.findings import findings_table

    fresh = table_of(ALL_RECORDS + records(eval_axes(size=50_000), {(1000, None): 0.5}, seeds=(3,),
                                           protocol={"lr": 0.5}))  # a conflict and a third seed besides
    back = pd.read_parquet(write_table(fresh, tmp_path / "results.parquet"))
    assert any(isinstance(back[c].dtype, pd.StringDtype) for c in back) == (pd.__version__ >= "3")
    pd.testing.assert_frame_equal(fresh, back, check_dtype=False)
    for got in (lambda t: drop_repeated_seeds(t)[0], aggregate, lambda t: find_conflicts(aggregate(t)),
                lambda t: findings_table(t)[0]):
        pd.testing.assert_frame_equal(got(fresh), got(back), check_dtype=False)
    for lines in (lambda t: caveats.conflict_lines(find_conflicts(aggregate(t)), t), caveats.version_mix_lines,
                  caveats.valueless_lines, lambda t: caveats.code_version_lines(aggregate(t))):
        assert lines(fresh) == lines(back)
    assert caveats.conflict_lines(find_conflicts(aggregate(back)), back)  # there is one to compare
    for figure in FIGURES:
        pd.testing.assert_frame_equal(figure.draw(fresh, None)[1], figure.draw(back, None)[1], obj=figure.NAME)


def test_the_planned_and_missing_frames_type_their_columns_as_the_results_table(tmp_path):
    """A notebook joins `missing` to `table` on the axes: `size` and `seed` are Int64 in both (not float where a
    scratch job has no size), `depends_on` the table's "id|id" text (not a tuple)."""
    from dataclasses import dataclass

    from study.results import write_result

    @dataclass
    class Plan:
        name: str
        jobs: list

    jobs = [Job("p1", "pretrain", {"axes": {"method": "simclr", "size": 500, "seed": 0}}),
            Job("p2", "pretrain", {"axes": {"method": "simclr", "size": 1000, "seed": 0}}),
            Job("e1", "evaluate", {"axes": {"method": "simclr", "size": 500, "seed": 0}}, ("p1",)),
            Job("e2", "evaluate", {"axes": {"method": "simclr", "size": 1000, "seed": 0}}, ("p2", "p1")),
            Job("s1", "evaluate", {"axes": {"method": "scratch", "size": None, "seed": 0}})]
    for job in jobs[:2]:
        write_result(tmp_path, {"schema_version": 1, "job_id": job.id, "stage": "pretrain", "axes": job.config["axes"],
                                "metrics": [], "protocol": {"stage": "pretrain"}})
    coll = gather(tmp_path, Plan("g5", jobs))
    for frame in (coll.table, coll.planned, coll.missing):
        assert str(frame["size"].dtype) == "Int64" and str(frame["seed"].dtype) == "Int64", frame.dtypes
    miss = coll.missing.set_index("job_id")
    assert miss.loc["e2", "depends_on"] == "p2|p1" and miss.loc["e1", "depends_on"] == "p1"
    assert pd.isna(miss.loc["s1", "depends_on"]) and pd.isna(miss.loc["s1", "size"])
    assert miss.loc["e2", "waits_for"] == "dependencies done" and miss.loc["s1", "waits_for"] == "no dependency"
    assert coll.table.set_index("job_id").loc["p1", "size"] == 500
