"""Result records: atomic write, read back, fingerprint semantics, corrupt and foreign files skipped and named."""
from __future__ import annotations

import json
import math
import re
import warnings

import pytest

from study.errors import StudyError
from study.grids import Job
from study.results.record import results_in_subfolders, validate_record
from study.results import (ResultFileWarning, code_version, make_record, protocol_fingerprint, read_results,
                           result_path, write_result)


def _record(job_id="job1", **protocol):
    return {"job_id": job_id, "stage": "evaluate", "grid": "g",
            "axes": {"method": "simclr", "dataset": "a", "seed": 0, "protocol": "linear", "eval_dataset": "a"},
            "metrics": [{"metric": "top1", "value": 0.5, "labeled_size": 100, "level": None}],
            "protocol": {"lr": 0.1, "epochs": 90, **protocol}, "wall_time_s": 3.5}


def test_write_then_read_fills_schema_fingerprint_version_and_date(tmp_path):
    path = write_result(tmp_path, _record())
    assert path == result_path(tmp_path, "job1") == tmp_path / "results" / "job1.json"
    assert [p.name for p in path.parent.iterdir()] == ["job1.json"]  # no temporary file left behind
    (rec,) = read_results(tmp_path)
    assert rec["schema_version"] == 1 and rec["job_id"] == "job1"
    assert rec["protocol_fingerprint"] == protocol_fingerprint({"lr": 0.1, "epochs": 90})
    assert rec["code_version"] == code_version() and rec["code_version"].startswith("0.")
    assert rec["finished_at"][:2] == "20"


def test_fingerprint_ignores_seed_and_run_specific_keys_but_not_the_recipe():
    base = {"lr": 0.1, "batch_size": 256, "optim": {"name": "sgd", "momentum": 0.9}}
    same = {**base, "seed": 3, "data_seed": 7, "wall_time_s": 12.0, "images_per_s": 900.0,
            "finished_at": "2024-01-01", "code_version": "x", "optim": {**base["optim"], "seed": 1},
            "device_kind": "NVIDIA A100-SXM4-80GB", "cpu_threads": 4}  # seeds run on two GPU models are one recipe
    assert protocol_fingerprint(base) == protocol_fingerprint(same)
    rerun = {**base, "config": {"checkpoint_every_minutes": 5, "checkpoint_every_steps": 100, "log_every_steps": 1,
                                "num_workers": 3}}  # how often a run saved and logged: not the recipe
    assert protocol_fingerprint({**base, "config": {}}) == protocol_fingerprint(rerun)
    assert protocol_fingerprint(base) != protocol_fingerprint({**base, "lr": 0.2})
    assert protocol_fingerprint(base) != protocol_fingerprint({**base, "optim": {"name": "sgd", "momentum": 0.8}})


def test_keys_older_evaluation_records_hold_otherwise_change_no_fingerprint():
    """The table recomputes each record's fingerprint with this code's rule, so an evaluation recorded when every
    probe recorded every optimizer's settings, or when a fine-tune's top-level `epochs` was its first labeled size's
    alone, groups with one recorded now; a key the job did read still counts, and a pretraining keeps every key."""
    def evaluation(optimizer, **linear):
        return {"stage": "evaluate", "linear": {"optimizer": optimizer, **linear},
                "config": {"seed": 0, "linear": {"optimizer": optimizer, **linear}}}

    sgd_only, lbfgs_only = {"epochs": 90, "lr": 0.1, "batch_size": 1024}, {"select_iter": 20, "max_iter": 30,
                                                                           "cold_iter": 100, "tolerance": 1e-6}
    for optimizer, reads, unread in (("lbfgs", lbfgs_only, sgd_only), ("sgd", sgd_only, lbfgs_only),
                                     ("adam", sgd_only, lbfgs_only)):
        now = evaluation(optimizer, **reads)
        assert protocol_fingerprint(evaluation(optimizer, **reads, **unread)) == protocol_fingerprint(now)
        changed = {**reads, next(iter(reads)): 7}
        assert protocol_fingerprint(evaluation(optimizer, **changed)) != protocol_fingerprint(now)
    runs = {"8": {"epochs": 3.0}, "40": {"epochs": 0.6}}
    finetune = {"stage": "evaluate", "epochs": {"8": 3.0, "40": 0.6}, "runs": runs}
    assert protocol_fingerprint({**finetune, "epochs": 3.0}) == protocol_fingerprint(finetune)
    assert protocol_fingerprint({**finetune, "runs": {**runs, "40": {"epochs": 1.2}}}) != \
        protocol_fingerprint(finetune)
    pretraining = {"stage": "pretrain", "epochs": 1.0, "runs": runs, "linear": {"optimizer": "lbfgs", "lr": 0.1}}
    assert protocol_fingerprint(pretraining) != protocol_fingerprint({**pretraining, "epochs": 2.0})
    assert protocol_fingerprint(pretraining) != protocol_fingerprint({**pretraining, "linear": {"optimizer": "lbfgs"}})
    # an evaluation's copy of its encoders' pretraining protocols: encoder_recipes, fingerprinted, pins them
    assert protocol_fingerprint({**finetune, "pretrain": {"method": "simclr"}}) == protocol_fingerprint(finetune)
    probe = {"stage": "evaluate", "protocol": "linear", "epochs": 90}  # no `runs`: its top-level epochs is its own
    assert protocol_fingerprint(probe) != protocol_fingerprint({**probe, "epochs": 100})


def test_lbfgs_settings_recorded_later_group_with_older_records_at_their_old_value():
    """Records written before `tolerance_grad` and `history_size` were settings lack them; a record of those
    settings at the value the older probes used groups with them, another value does not."""
    older = {"optimizer": "lbfgs", "select_iter": 20, "max_iter": 30, "cold_iter": 100, "tolerance": 1e-6}

    def evaluation(**linear):
        return {"stage": "evaluate", "linear": {**older, **linear}, "config": {"linear": {**older, **linear}}}

    now = evaluation(tolerance_grad=1e-7, history_size=20)
    assert protocol_fingerprint(now) == protocol_fingerprint(evaluation())
    for changed in ({"tolerance_grad": 1e-5}, {"history_size": 10}):
        assert protocol_fingerprint(evaluation(**{**now["linear"], **changed})) != protocol_fingerprint(now)
    # `tf32` (TF32 probe matmuls on a GPU) is a precision, as the extraction's `tf32`: no fingerprint of its own
    assert protocol_fingerprint(evaluation(**now["linear"], tf32=True)) == protocol_fingerprint(now)
    # a probe setting that is not a mapping (a hand-edited record) is fingerprinted as it is
    assert isinstance(protocol_fingerprint({"stage": "evaluate", "linear": None, "config": {"linear": "x"}}), str)


def test_other_methods_settings_older_training_records_hold_change_no_fingerprint():
    """A training config once recorded MoCo's and BYOL's settings whatever its method: such a pretraining (and an
    evaluation of its encoder, whose `encoder_recipes` were fingerprinted with them) groups with one recorded now;
    a method's own settings still count."""
    def training(method, **sections):
        return {"stage": "pretrain", "method": method, "seed": 1, "config": {"method": method, "lr": 0.3, **sections}}

    older = {"moco": {"queue_size": 65536}, "byol": {"dim": 256}}
    assert protocol_fingerprint(training("simclr", **older)) == protocol_fingerprint(training("simclr"))
    assert protocol_fingerprint(training("moco", **older)) == protocol_fingerprint(training("moco", moco=older["moco"]))
    assert protocol_fingerprint(training("moco", **older)) != \
        protocol_fingerprint(training("moco", moco={"queue_size": 8}))
    finetune = {"stage": "evaluate", "runs": {"8": {"config": {"method": "supervised", "epochs": 3, **older}}}}
    assert protocol_fingerprint(finetune) == protocol_fingerprint(
        {**finetune, "runs": {"8": {"config": {"method": "supervised", "epochs": 3}}}})

    def evaluation(recipes, *pretrained):
        return {"stage": "evaluate", "protocol": "linear", "encoder_recipes": list(recipes),
                "pretrain": pretrained[0] if len(pretrained) == 1 else list(pretrained)}

    then, now = training("simclr", **older), training("simclr")
    stale = "0f" * 8  # `then` as fingerprinted under the rule of the day it was written
    assert protocol_fingerprint(evaluation([stale], then)) == protocol_fingerprint(
        evaluation([protocol_fingerprint(now)], now))
    assert protocol_fingerprint(evaluation([stale, stale], then, then)) == protocol_fingerprint(
        evaluation([protocol_fingerprint(now)] * 2, now, now))
    moco = training("moco")
    assert protocol_fingerprint(evaluation([protocol_fingerprint(moco)], moco)) != protocol_fingerprint(
        evaluation([protocol_fingerprint(now)], now))
    assert protocol_fingerprint(evaluation([stale], None)) != protocol_fingerprint(evaluation([protocol_fingerprint(
        now)], None))  # an encoder file that kept no protocol: its recipe as recorded
    # recipes and kept protocols that do not pair up (one protocol for two encoders): every recipe as recorded
    assert protocol_fingerprint(evaluation([stale, "aa" * 8], then)) != protocol_fingerprint(
        evaluation([stale, "bb" * 8], then))


def test_make_record_from_job_and_run_output(tmp_path):
    job = Job("abc", "evaluate", {"stage": "evaluate", "axes": {"method": "byol", "seed": 1}})
    rec = make_record(job, {"metrics": [{"metric": "top1", "value": 0.25, "labeled_size": None, "level": None}],
                            "protocol": {"lr": 1.0}}, grid="q", wall_time_s=2.0)
    write_result(tmp_path, rec)
    (back,) = read_results(tmp_path)
    assert back["axes"] == {"method": "byol", "seed": 1} and back["grid"] == "q" and back["wall_time_s"] == 2.0
    assert back["depends_on"] == []
    evaluation = Job("def", "evaluate", {"stage": "evaluate", "axes": {}}, depends_on=("p1", "p2"))
    assert make_record(evaluation, {"metrics": [], "protocol": {}})["depends_on"] == ["p1", "p2"]


@pytest.mark.parametrize("deps", ["p1", [""], [3]])
def test_a_record_whose_depends_on_is_not_a_list_of_job_ids_is_refused(tmp_path, deps):
    with pytest.raises(StudyError, match="depends_on must be a list of job ids"):
        write_result(tmp_path, {**_record(), "depends_on": deps})


def test_write_rejects_a_bad_record_naming_the_key(tmp_path):
    bad = _record()
    bad["metrics"] = [{"metric": "top1", "value": "high"}]
    with pytest.raises(StudyError, match=r"metrics\[0\]\.value"):
        write_result(tmp_path, bad)
    with pytest.raises(StudyError, match="stage 'train' is not pretrain or evaluate"):
        write_result(tmp_path, {**_record(), "stage": "train"})
    assert not (tmp_path / "results" / "job1.json").exists()


def test_corrupt_foreign_and_mismatched_files_are_named_skipped_and_counted(tmp_path):
    write_result(tmp_path, _record("good"))
    folder = tmp_path / "results"
    (folder / "truncated.json").write_text('{"schema_version": 1, "job_')
    (folder / "foreign.json").write_text(json.dumps({"name": "a package.json"}))
    (folder / "future.json").write_text(json.dumps({**_record("future"), "schema_version": 99,
                                                     "protocol_fingerprint": "x"}))
    (folder / "copied.json").write_text((folder / "good.json").read_text())
    (folder / ".good.json.abc.tmp").write_text("{")  # a writer at work: never read
    skipped = []
    with pytest.warns(ResultFileWarning) as caught:
        recs = read_results(tmp_path, skipped=skipped)
    assert [r["job_id"] for r in recs] == ["good"]
    assert sorted(s.path.name for s in skipped) == ["copied.json", "foreign.json", "future.json", "truncated.json"]
    assert len(caught) == 4 and all(str(folder) in str(w.message) for w in caught)
    reasons = {s.path.name: s.reason for s in skipped}
    assert "missing key" in reasons["foreign.json"] and "schema_version 99" in reasons["future.json"]
    assert "written by a newer version of study" in reasons["future.json"]
    assert reasons["copied.json"].startswith("holds job 'good'")  # the path is the SkippedFile's, not repeated


def test_a_hidden_file_in_results_is_no_record_and_no_skipped_file(tmp_path):
    """A hidden file (the `._<name>.json` macOS writes beside each file it copies) is not read, warned of or counted
    as a skipped result file."""
    write_result(tmp_path, _record("good"))
    (tmp_path / "results" / "._good.json").write_bytes(b"\x00\x05\x16\x07")
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResultFileWarning)
        recs = read_results(tmp_path, skipped=skipped)
    assert [r["job_id"] for r in recs] == ["good"] and skipped == []


def test_read_results_for_given_job_ids(tmp_path):
    for j in ("a", "b", "c"):
        write_result(tmp_path, _record(j))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResultFileWarning)  # a job without a record yet is no bad file
        assert [r["job_id"] for r in read_results(tmp_path, job_ids=["c", "a", "zz"])] == ["a", "c"]


@pytest.mark.parametrize("axes, message", [
    ({"size": "1M"}, "axes.size '1M' is not an integer, null or two joined by '|'"),
    ({"size": "50000"}, "axes.size '50000' is not an integer, null or two joined by '|'"),  # a number as text
    ({"seed": True}, "axes.seed True is not an integer"),
    ({"method": 3}, "axes.method 3 is not a string or null"),
    ({"variant": 2}, "axes.variant 2 is not a string or null"),
])
def test_an_axis_of_the_wrong_type_is_refused_naming_it(axes, message):
    rec = {"schema_version": 1, "job_id": "j", "stage": "evaluate", "axes": {"method": "simclr", **axes},
           "metrics": [], "protocol": {}, "protocol_fingerprint": "f", "code_version": "c", "grid": None,
           "wall_time_s": None, "finished_at": "2024-01-01T00:00:00+00:00"}
    with pytest.raises(StudyError, match=re.escape(message)):
        validate_record(rec, where="x.json")
    ok = {**rec, "axes": {"method": "simclr", "size": "50000|None", "seed": 0, "extra": 1.5}}
    assert validate_record(ok)["axes"]["size"] == "50000|None"


@pytest.mark.parametrize("metric, message", [
    ({"value": True}, "metrics[0].value True is not a number"),
    ({"labeled_size": True}, "metrics[0].labeled_size True is not an integer"),
    ({"labeled_size": 1000.0}, "metrics[0].labeled_size 1000.0 is not an integer"),
])
def test_a_metric_of_the_wrong_type_is_refused_naming_it(tmp_path, metric, message):
    """A boolean is no number to average (True would count as 1.0), a labeled size is an integer."""
    def record(**over):
        rec = _record()
        return {**rec, "metrics": [{**rec["metrics"][0], **over}]}

    with pytest.raises(StudyError, match=re.escape(message)):
        write_result(tmp_path, record(**metric))
    assert not (tmp_path / "results" / "job1.json").exists()
    write_result(tmp_path, record(value=1, labeled_size=1000))  # an int value is a number: kept


def test_fingerprint_ignores_where_files_and_folders_are_and_how_long_things_took():
    """A fine-tune of the same encoder copied to another folder, a run in another workdir, a resumed run (its earlier
    sessions' seconds): one recipe, one fingerprint."""
    def protocol(root, earlier):
        return {"stage": "pretrain", "lr": 0.1, "init_encoder": f"{root}/ssl/encoder.pt",
                "earlier_sessions_seconds": earlier, "extraction_seconds": earlier,
                "config": {"init_encoder": f"{root}/ssl/encoder.pt", "run_dir": f"{root}/job", "workdir": root,
                           "cache_dir": f"{root}/.cache", "checkpoint": f"{root}/job/checkpoint.pt"}}

    assert protocol_fingerprint(protocol("/scratch/a", 0.0)) == protocol_fingerprint(protocol("/home/b/runs", 81.5))
    # an evaluation's encoders (each seed's own file and hash): its seeds are one recipe
    seed0, seed1 = ({"stage": "evaluate", "lr": 0.1, "encoders": [{"path": f"/w/ssl{s}/encoder.pt", "sha256": h,
                                                                    "backbone": "resnet18"}]}
                    for s, h in ((0, "ab" * 32), (1, "cd" * 32)))
    assert protocol_fingerprint(seed0) == protocol_fingerprint(seed1)
    assert protocol_fingerprint(protocol("/a", 0.0)) != protocol_fingerprint({**protocol("/a", 0.0), "lr": 0.2})


def test_fingerprint_is_one_for_a_whole_number_written_as_int_or_float():
    """`warmup_epochs: 0` and `0.0` in a grid (or `epochs: 1000` against the code default 1000.0) run one recipe,
    bit for bit: one fingerprint, so their seeds aggregate and the report sees no conflict. Other values still count."""
    def protocol(warmup, epochs, lrs):
        return {"stage": "pretrain", "epochs": epochs, "steps": 6, "effective_lr": 0.009375,
                "config": {"epochs": epochs, "optim": {"lr": 0.3, "warmup_epochs": warmup, "final_lr_fraction": 0.0}},
                "runs": [{"lr": lr} for lr in lrs], "flag": True}

    one = protocol_fingerprint(protocol(0, 1000, [1, 2]))
    assert one == protocol_fingerprint(protocol(0.0, 1000.0, [1.0, 2.0]))
    assert one != protocol_fingerprint(protocol(0.5, 1000, [1, 2]))
    assert one != protocol_fingerprint(protocol(0, 1000, [1, 2.5]))
    assert one != protocol_fingerprint({**protocol(0, 1000, [1, 2]), "flag": 1})  # a bool is no number here


def test_fingerprint_strips_run_keys_inside_lists_too():
    """`at any depth`: a list of per-run settings (as a concatenation's two encoders) keeps its recipe values only."""
    one = {"runs": [{"lr": 0.1, "seed": 0, "wall_time_s": 3.0}, {"lr": 0.2, "seed": 0, "device_kind": "cpu"}]}
    other = {"runs": [{"lr": 0.1, "seed": 5, "wall_time_s": 9.0}, {"lr": 0.2, "seed": 5, "device_kind": "H100"}]}
    assert protocol_fingerprint(one) == protocol_fingerprint(other)
    assert protocol_fingerprint(one) != protocol_fingerprint({"runs": [{"lr": 0.1}, {"lr": 0.3}]})


def test_write_recomputes_a_stale_fingerprint_and_keeps_a_given_code_version(tmp_path):
    """The stored fingerprint is always this code's (a record copied from another protocol must not keep its old
    one); a code version the caller recorded (the code that ran the job) is kept, not replaced by this process's."""
    write_result(tmp_path, {**_record(), "protocol_fingerprint": "stale", "code_version": "0.0.9+git.abcdef1"})
    (rec,) = read_results(tmp_path)
    assert rec["protocol_fingerprint"] == protocol_fingerprint({"lr": 0.1, "epochs": 90}) != "stale"
    assert rec["code_version"] == "0.0.9+git.abcdef1"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_metric_is_written_as_null_in_strict_json(tmp_path, bad):
    """JSON has no NaN or Infinity: a diverged run's metric is written as null, and the file is strict JSON."""
    rec = _record()
    rec["metrics"] = [{**rec["metrics"][0], "value": bad}]
    path = write_result(tmp_path, rec)

    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    strict = json.loads(path.read_text(), parse_constant=refuse)
    assert strict["metrics"][0]["value"] is None
    assert read_results(tmp_path)[0]["metrics"][0]["value"] is None
    assert math.isnan(rec["metrics"][0]["value"]) or rec["metrics"][0]["value"] == bad  # the caller's left as it was


def test_fingerprint_rules_reach_every_place_the_docstring_names_and_no_further():
    """A bare `seconds` is a timing; another method's settings go from a training config inside a list too; a config
    without a `method` keeps them, and a protocol that does not say it is an evaluation keeps its `epochs`."""
    assert protocol_fingerprint({"runs": {"8": {"lr": 0.1, "seconds": 3.0}}}) == protocol_fingerprint(
        {"runs": {"8": {"lr": 0.1, "seconds": 9.5}}})
    older = {"moco": {"queue_size": 65536}, "byol": {"dim": 256}}
    assert protocol_fingerprint({"runs": [{"config": {"method": "simclr", "lr": 0.3, **older}}]}) == \
        protocol_fingerprint({"runs": [{"config": {"method": "simclr", "lr": 0.3}}]})
    assert protocol_fingerprint({"config": {"lr": 0.3, **older}}) != protocol_fingerprint({"config": {"lr": 0.3}})
    runs = {"8": {"epochs": 3.0}}
    assert protocol_fingerprint({"epochs": 1.0, "runs": runs}) != protocol_fingerprint({"epochs": 2.0, "runs": runs})


def test_a_setting_a_method_never_reads_leaves_the_fingerprint_of_its_older_records():
    """Older records hold `temperature` and `head` in the config of every method's run; newer ones only where the
    method reads them (UNREAD_SETTINGS): a supervised run's older and newer records are one recipe, a SimCLR run's
    head is its recipe still."""
    def fingerprint(method, **settings):
        return protocol_fingerprint({"stage": "pretrain", "config": {"method": method, "lr": 0.3, **settings}})

    older = {"temperature": None, "head": [2048, 128], "head_output_bn": False}
    assert fingerprint("supervised", **older) == fingerprint("supervised")
    assert fingerprint("moco", **older) == fingerprint("moco", temperature=None)
    assert fingerprint("simclr", **older) != fingerprint("simclr", **{**older, "head": [512, 128]})
    def fine_tune(**settings):  # its runs' configs, method supervised
        return protocol_fingerprint({"runs": [{"config": {"method": "supervised", "lr": 0.1, **settings}}]})

    assert fine_tune(**older) == fine_tune()


def test_an_encoder_that_kept_no_protocol_keeps_its_recipe_as_recorded_beside_one_that_did():
    """A concatenation of an encoder file that carries its pretraining protocol and one that does not: the first's
    recipe is recomputed, the second's stays as recorded (two recorded recipes, two fingerprints)."""
    kept = {"stage": "pretrain", "method": "simclr", "config": {"method": "simclr", "lr": 0.3}}

    def evaluation(second):
        return {"stage": "evaluate", "protocol": "concat", "encoder_recipes": ["0f" * 8, second],
                "pretrain": [kept, None]}

    assert protocol_fingerprint(evaluation("aa" * 8)) != protocol_fingerprint(evaluation("bb" * 8))


def test_make_record_keeps_a_given_finish_time_and_write_fills_a_null_one_and_code_version(tmp_path):
    """make_record passes `finished_at` through; write_result fills it (now, UTC) and `code_version` where the
    record holds null, as make_record's record does when none was given."""
    job = Job("abc", "evaluate", {"stage": "evaluate", "axes": {"method": "byol", "seed": 1}})
    out = {"metrics": [{"metric": "top1", "value": 0.25}], "protocol": {"lr": 1.0}}
    assert make_record(job, out, finished_at="2024-05-01T00:00:00+00:00")["finished_at"] == "2024-05-01T00:00:00+00:00"
    rec = make_record(job, out)
    assert rec["finished_at"] is None
    write_result(tmp_path, {**rec, "code_version": None})
    (back,) = read_results(tmp_path)
    assert back["code_version"] == code_version()
    assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", back["finished_at"])  # UTC: comparable as text


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 0}, "schema_version 0, this study reads 1"),
    ({"job_id": ""}, "job_id must be a non-empty string"),
    ({"protocol": None}, "protocol must be an object"),
    ({"protocol": ...}, "missing key(s) protocol"),
    ({"metrics": None}, "metrics must be a list"),
    ({"metrics": [{"metric": "top1"}]}, "metrics[0] needs 'metric' and 'value'"),
])
def test_a_malformed_record_is_refused_naming_what_is_wrong(change, message):
    """Every required key and its type is checked, not only some: an older schema, an empty id, a protocol or metric
    list of the wrong type or missing, a metric row without a value are a StudyError naming the file (no KeyError)."""
    rec = {**_record(), "schema_version": 1}
    rec.update(change)
    rec = {k: v for k, v in rec.items() if v is not ...}
    with pytest.raises(StudyError, match=re.escape(f"x.json: {message}")):
        validate_record(rec, where="x.json")


def test_write_refuses_a_record_of_another_schema_version_rather_than_relabel_it(tmp_path):
    with pytest.raises(StudyError, match="schema_version 2, this study reads 1"):
        write_result(tmp_path, {**_record(), "schema_version": 2})
    assert not (tmp_path / "results" / "job1.json").exists()


def test_a_rewritten_record_is_seen_whole_the_old_one_until_the_new_one_is_renamed_onto_it(tmp_path, monkeypatch):
    """write_result writes a temporary and renames it: up to the rename, the file holds the earlier record."""
    from renames import renames_onto

    path = write_result(tmp_path, _record(lr=0.1))
    seen = renames_onto(monkeypatch, path, lambda f: json.loads(f.read_text())["protocol"]["lr"])
    write_result(tmp_path, _record(lr=0.2))
    assert seen == [(0.1, 0.2)] and read_results(tmp_path)[0]["protocol"]["lr"] == 0.2


def test_a_result_file_that_is_not_utf8_is_skipped_and_named(tmp_path):
    write_result(tmp_path, _record("good"))
    (tmp_path / "results" / "binary.json").write_bytes(b"\xff\xfe\x00{")
    skipped = []
    with pytest.warns(ResultFileWarning, match="binary.json"):
        assert [r["job_id"] for r in read_results(tmp_path, skipped=skipped)] == ["good"]
    assert [s.path.name for s in skipped] == ["binary.json"] and "unreadable result file" in skipped[0].reason


def test_read_results_of_no_job_ids_is_none_and_of_all_is_sorted_by_job_id(tmp_path):
    """An empty list of job ids (a plan of no jobs) reads no record, not every one; without ids, every record in job
    id order whatever order they were written in."""
    for j in ("m", "b", "z", "a", "q", "c"):
        write_result(tmp_path, _record(j))
    assert read_results(tmp_path, job_ids=[]) == []
    assert [r["job_id"] for r in read_results(tmp_path)] == ["a", "b", "c", "m", "q", "z"]


def test_null_axes_and_a_null_depends_on_are_a_valid_record():
    """An axis a job does not have is null (a scratch run's size), and a record whose `depends_on` is null recorded
    none: both valid."""
    rec = {**_record(), "schema_version": 1, "depends_on": None,
           "axes": {"method": None, "size": None, "seed": None, "variant": None}}
    assert validate_record(rec, where="x.json")["axes"]["size"] is None


@pytest.mark.parametrize("protocol", ["linear", [1], 3])
def test_write_refuses_a_protocol_that_is_not_an_object_naming_it(tmp_path, protocol):
    """A protocol of the wrong type is a StudyError naming the key, before anything reads it (no AttributeError)."""
    with pytest.raises(StudyError, match="result of job 'job1': protocol must be an object"):
        write_result(tmp_path, {**_record(), "protocol": protocol})
    assert not (tmp_path / "results" / "job1.json").exists()


def test_result_files_in_folders_inside_results_are_found_for_the_jobs_without_one_in_results_itself(tmp_path):
    """Of the jobs asked, those without results/<id>.json whose file lies in a folder inside results/ (a copy of
    another workdir's results/ made inside this one's, at any depth), the first by path; not one in a hidden folder
    (a sync tool's), nor one whose job has its result in place, nor a job not asked."""
    results = tmp_path / "results"
    for rel in ("results/a.json", "old/runs/results/b.json", "results/c.json", "c.json", ".sync/d.json",
                "results/e.json", "results/f.txt"):
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_text("{}")
    found = results_in_subfolders(tmp_path, ["a", "b", "c", "d", "f"])
    assert found == {"a": results / "results" / "a.json", "b": results / "old" / "runs" / "results" / "b.json"}
    assert results_in_subfolders(tmp_path, []) == {} and results_in_subfolders(tmp_path / "none", ["a"]) == {}
