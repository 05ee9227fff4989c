"""The protocol table (study.evaluate.protocols) is what validation, records, planning and the report read."""
import dataclasses

import pytest
from protocol_rows import NOMEAN, TUNED, add_protocol

from study.errors import StudyError
from study.evaluate.config import EvalConfig
from study.evaluate.protocols import PROTOCOL_TABLE, PROTOCOLS, names_where, protocol
from study.evaluate.recipes import FINETUNE, RECIPES


def _cfg(name: str, **extra) -> EvalConfig:
    return EvalConfig.from_dict({"protocol": name, "train_manifest": "a", "test_manifest": "b", **extra})


def test_every_unused_key_is_an_eval_config_field():
    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    for p in PROTOCOL_TABLE:
        assert set(p.unused) <= fields - {"protocol", "train_manifest", "test_manifest"}, p.name


@pytest.mark.parametrize("name", PROTOCOLS)
def test_a_record_holds_every_key_but_the_unused_ones(name):
    recorded = set(_cfg(name).recorded_dict())
    fields = {f.name for f in dataclasses.fields(EvalConfig)}
    unread = set(protocol(name).unused) | ({"knn"} if protocol(name).fits_probes else set())  # without also_knn
    assert recorded == fields - unread
    if protocol(name).fits_probes:
        assert "knn" in _cfg(name, also_knn=True).recorded_dict()


def test_kinds_partition_the_protocols():
    assert set(names_where(trains=True)) | set(names_where(trains=False)) == set(PROTOCOLS)
    assert names_where(trains=True) == ("finetune", "scratch")
    assert set(names_where(fits_probes=True)) <= set(names_where(trains=False))
    assert [p.name for p in PROTOCOL_TABLE if p.encoders != 1] == ["scratch", "concat"]


def test_an_unknown_protocol_is_refused_with_the_table_s_names():
    with pytest.raises(StudyError, match="evaluate.protocol: unknown 'linaer'; expected one of "
                       + ", ".join(PROTOCOLS)):
        _cfg("linaer")


def test_every_frozen_protocol_that_fits_no_probe_has_a_scorer():
    """A frozen one without probes is scored by its own code (study.evaluate.run.SCORERS), never by a linear probe."""
    from study.evaluate import run

    assert set(run.SCORERS) == set(names_where(trains=False, fits_probes=False))


def test_a_table_row_without_its_scorer_is_refused_before_any_work(manifests, encoder_file, tmp_path, monkeypatch):
    """A row of a frozen protocol that fits no probe, added without the code that scores it, ran a linear probe and
    recorded it under the new protocol's name (top-1 equal to `linear`'s): it is refused before any extraction."""
    from study.evaluate import evaluate

    add_protocol(monkeypatch, NOMEAN)
    with pytest.raises(NotImplementedError, match="protocol 'nomean' fits no probe .* no scorer in "
                                                  r"study.evaluate.run.SCORERS"):
        evaluate(_cfg("nomean", train_manifest="evtrain", test_manifest="evtest", labeled_sizes=[8], image_size=12,
                      num_workers=0, batch_size=16), tmp_path / "run", [encoder_file()], tmp_path / "features")
    assert not (tmp_path / "features").exists()


def test_a_protocol_without_probes_is_scored_by_its_scorer_and_records_no_probe_settings(manifests, encoder_file,
                                                                                         tmp_path, monkeypatch):
    """Its scorer gives each labeled size's rows from that size's features; no probe is fit and the record holds no
    `linear` (nor `knn`) settings, which it never read."""
    from study.evaluate import evaluate, linear
    from study.evaluate import run as run_mod

    add_protocol(monkeypatch, NOMEAN)
    seen = []

    def scorer(cfg, n, raw, y, y_test, num_classes, device, info):
        seen.append((n, tuple(raw[0][0].shape), tuple(raw[0][1].shape), len(y), len(y_test), num_classes))
        info["scored_by"] = "nomean"
        return [{"metric": "top1", "value": 0.5, "labeled_size": n, "level": None}]

    monkeypatch.setitem(run_mod.SCORERS, "nomean", scorer)
    monkeypatch.setattr(linear, "train_probe", lambda *a, **k: pytest.fail("a probe was fit"))
    out = evaluate(_cfg("nomean", train_manifest="evtrain", test_manifest="evtest", labeled_sizes=[8, 20],
                        image_size=12, num_workers=0, batch_size=16), tmp_path / "run", [encoder_file()],
                   tmp_path / "features")
    assert seen == [(8, (8, 32), (20, 32), 8, 20, 4), (20, (20, 32), (20, 32), 20, 20, 4)]
    assert [m["labeled_size"] for m in out["metrics"]] == [8, 20]
    assert out["protocol"]["linear"] is None and out["protocol"]["knn"] is None
    assert out["protocol"]["probes"]["8"]["scored_by"] == "nomean"


def test_every_training_protocol_has_a_trainer_and_a_recipe():
    """A training one is run by its own code (study.evaluate.run.TRAINERS) from its own default recipe
    (study.evaluate.recipes.RECIPES, which the planner prices), never by another's; a trainer takes one encoder file
    or none, so a training row of two would train on its first alone."""
    from study.evaluate import run

    assert set(run.TRAINERS) == set(RECIPES) == set(names_where(trains=True))
    assert all(protocol(name).encoders <= 1 for name in names_where(trains=True))


def test_a_training_row_without_its_recipe_is_refused_when_a_config_of_it_is_read():
    """It took fine-tuning's recipe (every training protocol but scratch did, by name), and `study plan` priced it
    so."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        add_protocol(monkeypatch, TUNED)
        with pytest.raises(NotImplementedError, match="protocol 'tuned' trains .* no default recipe in "
                                                      r"study.evaluate.recipes.RECIPES"):
            _cfg("tuned")


def test_a_training_row_without_its_trainer_is_refused_before_any_work(manifests, encoder_file, tmp_path,
                                                                        monkeypatch):
    """A row of a training protocol, added without the code that trains it, ran finetune's code and recorded it under
    the new protocol's name (top-1 equal to finetune's): it is refused before any training."""
    from study.evaluate import evaluate

    add_protocol(monkeypatch, TUNED, FINETUNE)
    with pytest.raises(NotImplementedError, match=r"protocol 'tuned' trains .* no trainer in "
                                                  r"study.evaluate.run.TRAINERS"):
        evaluate(_cfg("tuned", train_manifest="evtrain", test_manifest="evtest", labeled_sizes=[8], image_size=12,
                      num_workers=0, batch_size=16, finetune={"batch_size": 8, "steps": 1}), tmp_path / "run",
                 [encoder_file()], tmp_path / "features")
    assert not (tmp_path / "run").exists()


def test_a_training_protocol_is_run_by_its_trainer_in_folders_of_its_own(manifests, encoder_file, tmp_path,
                                                                        monkeypatch):
    """Its trainer (here fine-tuning's run, called by the new protocol's own code, as a protocol that prepares the run
    would) trains each labeled size in `<protocol>-<n>`, and the record is the new protocol's, from its recipe."""
    from study.evaluate import evaluate
    from study.evaluate import finetune as finetune_mod
    from study.evaluate import run as run_mod

    add_protocol(monkeypatch, TUNED, {**FINETUNE, "optim": {**FINETUNE["optim"], "lr": 0.02}})
    seen = []

    def trainer(cfg, run_dir, encoder, n, rows, test_manifest, aug, device, workers):
        seen.append((cfg.protocol, encoder, n, rows, test_manifest.name))
        return finetune_mod.run_finetune(cfg, run_dir, encoder, n, rows, test_manifest, aug, device, workers)

    monkeypatch.setitem(run_mod.TRAINERS, "tuned", trainer)
    enc = encoder_file()
    out = evaluate(_cfg("tuned", train_manifest="evtrain", test_manifest="evtest", labeled_sizes=[8, "all"],
                        image_size=12, num_workers=0, batch_size=16,
                        finetune={"batch_size": 8, "steps": 1, "checkpoint_every_minutes": None}),
                   tmp_path / "run", [enc], tmp_path / "features")
    assert seen == [("tuned", enc, 8, 8, "evtest"), ("tuned", enc, None, 40, "evtest")]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["tuned-8", "tuned-all"]
    p = out["protocol"]
    assert p["protocol"] == "tuned" and p["config"]["protocol"] == "tuned" and "linear" not in p["config"]
    assert p["base_lr"] == 0.02 and p["steps"] == {"8": 1, "40": 1}
    assert [(m["metric"], m["labeled_size"]) for m in out["metrics"]] == [("top1", 8), ("top1", 40)]
