"""`evaluate` end to end on tiny real manifests (PNG files written by the test): the feature cache, every
frozen-feature protocol, fine-tuning and the recorded protocol."""
from __future__ import annotations

import json
import math
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from device import TEST_DEVICE, device_kind
from largest_tensor import LargestFloat
from study.errors import StudyError
from study.evaluate import EvalConfig, evaluate
from study.evaluate import features as features_mod
from study.evaluate import finetune as finetune_mod
from study.evaluate import granularity, linear, ranking
from study.evaluate import run as run_mod
from study.evaluate.partial import PartialExtraction
from study.hashing import file_sha256
from study.manifests import load_manifest
from study.manifests.corrupt import corrupt_manifest
from study.train.augment import build_augment
from study.train.backbones import load_encoder
from study.train.checkpoint import load_checkpoint


def config(**over):
    d = {"protocol": "linear", "train_manifest": "evtrain", "test_manifest": "evtest", "labeled_sizes": [8, 20, 40],
         "image_size": 12, "augment": {"resize_ratio": 1.0}, "batch_size": 16, "num_workers": 0, "device": TEST_DEVICE,
         "linear": {"weight_decays": [1e-4, 1e-2], "max_iter": 50}}
    d.update(over)
    return EvalConfig.from_dict(d)


@pytest.fixture
def forward_calls(monkeypatch):
    """Counts the encoder forward calls made through study.evaluate.features."""
    calls = {"n": 0}
    real = features_mod.load_encoder

    def counting(path):
        enc = real(path)
        enc.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
        return enc

    monkeypatch.setattr(features_mod, "load_encoder", counting)
    return calls


def test_linear_record_and_feature_cache(manifests, encoder_file, forward_calls, tmp_path, monkeypatch):
    enc = encoder_file()
    cache = tmp_path / "features"
    out = evaluate(config(), tmp_path / "run", [enc], cache)
    rows = {(m["metric"], m["labeled_size"]) for m in out["metrics"]}
    assert rows == {("top1", n) for n in (8, 20, 40)}  # 4 classes: no top-5
    assert all(0 <= m["value"] <= 1 and m["level"] is None for m in out["metrics"])
    assert forward_calls["n"] == 3 + 2  # 40 labeled rows and 20 test rows in batches of 16: one extraction each
    p = out["protocol"]
    assert p["protocol"] == "linear" and p["labeled_sizes"] == [8, 20, 40]
    assert p["train_manifest_content_hash"] and p["test_manifest_content_hash"]
    assert set(p["chosen_weight_decay"]) == {"8", "20", "40"}
    assert all(w in (1e-4, 1e-2) for w in p["chosen_weight_decay"].values())
    assert p["feature_layer"].startswith("pooled") and p["feature_dim"] == 32
    assert p["encoders"][0]["backbone"] == {"name": "resnet18_small", "width": 4}
    assert p["transform"]["preset"] == "eval" and p["transform"]["image_size"] == 12
    assert p["images_per_s"] > 0 and p["wall_time_s"] > 0 and p["device_kind"] == device_kind() and p["seed"] == 0
    assert p["cpu_threads"] == torch.get_num_threads() and "tf32" in p
    assert p["torch_version"] == torch.__version__ and p["pillow_version"] and p["jpeg_decoder"]  # decoders' pixels
    assert [e["cached"] for e in p["extraction"]] == [False, False]
    assert [(e["subset"], e["rows"]) for e in p["extraction"]] == [("labeled(40)", 40), ("all", 20)]

    again = evaluate(config(), tmp_path / "run2", [enc], cache)  # cache hit: the encoder never runs
    assert forward_calls["n"] == 5
    assert [e["cached"] for e in again["protocol"]["extraction"]] == [True, True]
    assert again["protocol"]["images_per_s"] is None  # nothing extracted: no rate, not 0 images/s
    assert again["metrics"] == out["metrics"]  # deterministic on CPU
    smaller = evaluate(config(labeled_sizes=[20], protocol="knn", knn={"k": 5}), tmp_path / "r3", [enc], cache)
    assert forward_calls["n"] == 5  # labeled(20) is read from the labeled(40) file; knn reuses it too
    assert [m["metric"] for m in smaller["metrics"]] == ["knn_top1"]
    assert smaller["protocol"]["linear"] is None and smaller["protocol"]["knn"]["k"] == 5  # no probe: no settings

    torch.manual_seed(99)  # the encoder file changes: its features are extracted again
    from study.train.backbones import build_backbone, encoder_payload

    torch.save(encoder_payload(build_backbone("resnet18_small", 4)), enc)
    evaluate(config(), tmp_path / "run4", [enc], cache)
    assert forward_calls["n"] == 10
    evaluate(config(image_size=8), tmp_path / "run5", [enc], cache)  # another transform: extracted again
    assert forward_calls["n"] == 15
    monkeypatch.setattr(features_mod, "FORMAT", "study-features-next")  # another extraction code: not reused
    evaluate(config(image_size=8), tmp_path / "run6", [enc], cache)
    assert forward_calls["n"] == 20


def test_one_encoder_path_for_the_list_of_encoders_is_named(tmp_path):
    """encoders="runs/.../encoder.pt" was read as a list of its characters ("takes 1 encoder(s), got 23"), a Path as
    a TypeError."""
    for given in ("runs/encoder.pt", Path("runs/encoder.pt")):
        with pytest.raises(StudyError, match=r"^evaluate: encoders is a list of encoder files, got one path, "
                                             r"'runs/encoder.pt': give \['runs/encoder.pt'\]$"):
            evaluate(config(), tmp_path / "run", encoders=given, cache_dir=tmp_path / "features")


def test_a_killed_writers_temporary_file_is_removed_once_stale(manifests, encoder_file, tmp_path):
    import os
    import time

    enc, cache = encoder_file(), tmp_path / "features"
    evaluate(config(labeled_sizes=[8]), tmp_path / "run", [enc], cache)
    folder = next(cache.glob("*/*"))
    old, fresh = folder / ".labeled8.pt.dead_123.tmp", folder / ".all.pt.busy_456.tmp"  # as atomic_path names them
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * features_mod.STALE_TMP_S,) * 2)
    evaluate(config(labeled_sizes=[8]), tmp_path / "run2", [enc], cache)
    assert not old.exists() and fresh.exists()  # a writer at work keeps its file


def test_larger_labeled_size_is_extracted_again(manifests, encoder_file, forward_calls, tmp_path):
    enc = encoder_file()
    evaluate(config(labeled_sizes=[8]), tmp_path / "a", [enc], tmp_path / "f")
    assert forward_calls["n"] == 1 + 2
    evaluate(config(labeled_sizes=[20]), tmp_path / "b", [enc], tmp_path / "f")
    assert forward_calls["n"] == 3 + 2  # labeled(8) does not cover 20; the test features are cached


def _features(cache_dir, manifest_name, enc, n, batch=16, device="cpu", num_workers=0):
    aug = build_augment(config().augment_config())
    cache = features_mod.FeatureCache(cache_dir, aug, "pooled", batch, torch.device(device), num_workers=num_workers)
    return cache.get(enc, load_manifest(manifest_name), n)


def test_an_extractions_progress_lines_tell_the_time_left(manifests, encoder_file, monkeypatch, capfd):
    """Each progress line but the last says when the extraction will end at its rate so far (a clock that moves 11 s
    a reading, past the 10 s between lines: a line per batch)."""
    clock = iter(range(0, 10_000, 11))
    monkeypatch.setattr(features_mod, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    test = load_manifest("evtest")
    aug = build_augment(config().augment_config())
    features_mod.forward_rows(load_encoder(encoder_file()), test, test.all(), aug, 8, torch.device("cpu"))
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("[evaluate]")]
    # readings: start 0, last line 11; 8 rows at 22 (12 more at 22/8 s each: 33 s), 16 at 33 (4 x 33/16: 8 s)
    assert [ln.split(": ", 1)[1] for ln in lines] == ["8/20 images, eta 33 s", "16/20 images, eta 8 s", "20/20 images"]


def test_a_resumed_extractions_time_left_is_at_the_rate_of_its_own_rows(manifests, encoder_file, tmp_path, monkeypatch,
                                                                         capfd):
    """Rows read back from an earlier session took no time here: the rate counts the rows this session computed."""
    test, model = load_manifest("evtest"), load_encoder(encoder_file())
    aug = build_augment(config().augment_config())
    whole, _, _ = features_mod.forward_rows(model, test, test.all(), aug, 8, torch.device("cpu"))
    partial = PartialExtraction(tmp_path / "all.pt", "fmt")
    partial.save(whole[:8], 0)
    clock = iter(range(0, 10_000, 11))
    monkeypatch.setattr(features_mod, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    capfd.readouterr()
    out, _, computed = features_mod.forward_rows(model, test, test.all(), aug, 8, torch.device("cpu"), partial=partial)
    assert computed == 12 and torch.equal(out, whole)
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("[evaluate]")]
    # readings: start 0, last line 11; 16 rows at 22, 8 of them this session (4 more at 22/8 s each: 11 s)
    assert [ln.split(": ", 1)[1] for ln in lines[1:]] == ["16/20 images, eta 11 s", "20/20 images"]


def test_forward_rows_runs_a_model_handed_over_in_training_mode_in_eval_mode(manifests, encoder_file):
    """A fine-tuned model is built anew, in training mode, before its test images are scored: forward_rows puts it in
    eval mode, so that each row gets the features of BatchNorm's running statistics (not its batch's), which stay."""
    test, model = load_manifest("evtest"), load_encoder(encoder_file())
    aug = build_augment(config().augment_config())
    expected, _, _ = features_mod.forward_rows(model, test, test.all(), aug, 8, torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got, _, _ = features_mod.forward_rows(model.train(), test, test.all(), aug, 8, torch.device("cpu"))
    assert torch.equal(got, expected) and not model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_two_folders_of_one_layout_do_not_share_cached_features(manifests, encoder_file, tmp_path):
    """Equal content hashes (relative paths, labels, settings) over other pixels, e.g. two materialized corruptions."""
    from image_trees import write_quadrant_tree

    from study.manifests import load_manifest
    from study.manifests.build import BuildConfig, build_manifest

    write_quadrant_tree(tmp_path / "test_b", 5, seed=7)
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "test_b", split="train", name="evtest_b",
                               sizes=[20], taxonomy=tmp_path / "taxonomy.csv"))
    assert load_manifest("evtest_b").content_hash == load_manifest("evtest").content_hash
    enc, cache = encoder_file(), tmp_path / "f"
    a, b = _features(cache, "evtest", enc, None), _features(cache, "evtest_b", enc, None)
    assert not b.info["cached"] and not torch.equal(a.x, b.x)
    assert _features(cache, "evtest_b", enc, None).info["cached"]


def test_an_evaluation_of_another_extraction_batch_does_not_read_the_cached_features(manifests, encoder_file,
                                                                                     tmp_path):
    """A row's last bits follow the batch shape: two jobs differing in `batch_size` each extract their own, so that
    neither's result depends on which ran first."""
    enc, cache = encoder_file(), tmp_path / "f"
    assert not _features(cache, "evtest", enc, None, batch=16).info["cached"]
    assert not _features(cache, "evtest", enc, None, batch=8).info["cached"]
    assert _features(cache, "evtest", enc, None, batch=8).info["cached"]


def test_a_rows_features_do_not_depend_on_where_its_extraction_ends(manifests, tmp_path):
    """Row 16 ends a 17-row extraction alone in its batch, and sits in a full batch of a 40-row one: the same bits."""
    from study.train.backbones import build_backbone, encoder_payload

    torch.manual_seed(0)
    enc = tmp_path / "enc8" / "encoder.pt"
    enc.parent.mkdir()
    torch.save(encoder_payload(build_backbone("resnet18_small", 8)), enc)
    alone = _features(tmp_path / "f1", "evtrain", enc, 17)
    _features(tmp_path / "f2", "evtrain", enc, 40)
    within = _features(tmp_path / "f2", "evtrain", enc, 17)
    assert not alone.info["cached"] and within.info["cached"]
    assert torch.equal(alone.x, within.x)


def test_an_evaluation_refuses_test_images_that_are_labeled_images(manifests, encoder_file, tmp_path):
    """Two splits of an image folder that has no split folders are one tree: scoring would count trained images."""
    from study.manifests.build import BuildConfig, build_manifest

    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "train", split="test", name="evtrain_as_test",
                               sizes=[40]))
    with pytest.raises(StudyError, match=r"40 of the 40 test images of manifest evtrain_as_test are labeled images of "
                                         r"evtrain .e.g. .*/train/class\d/.*: it would be scored on images it trained "
                                         r"on; build the test manifest from another split \(an image folder without a "
                                         r"folder per split"):  # the reader's own remedy (its `shared_files`)
        evaluate(config(labeled_sizes=[8, 40], test_manifest="evtrain_as_test"), tmp_path / "run", [encoder_file()],
                 tmp_path / "f")


def test_the_record_names_the_corruption_of_the_labeled_and_of_the_test_images(manifests, encoder_file, tmp_path):
    from study.manifests.corrupt import corrupt_manifest

    corrupt_manifest("evtrain-ds2", "evtrain", "downsample:factor=2")
    out = evaluate(config(labeled_sizes=[8], train_manifest="evtrain-ds2"), tmp_path / "run", [encoder_file()],
                   tmp_path / "f")
    assert (out["protocol"]["train_corruption"], out["protocol"]["eval_corruption"]) == ("downsample:factor=2", "none")


def test_granularity_through_evaluate(manifests, encoder_file, tmp_path, capfd):
    enc = encoder_file()
    out = evaluate(config(protocol="granularity", labeled_sizes=[40]), tmp_path / "g", [enc], tmp_path / "f")
    by_level = {m["level"]: m["value"] for m in out["metrics"] if m["metric"] == "top1"}
    # the progress line gives the last level's top-1, named (not 'scored', nor every level's)
    assert f"(1/1): top1 {by_level['class_name']:.4f} (class_name) in " in capfd.readouterr().err
    assert set(by_level) == {"group", "class_name"}
    assert by_level["group"] >= by_level["class_name"]  # a right class is always a right group
    assert out["protocol"]["levels"] == ["group", "class_name"]
    assert out["protocol"]["probes"]["40"]["levels"] == {"group": {"values": 2}, "class_name": {"values": 4}}
    per = evaluate(config(protocol="granularity", labeled_sizes=[40], per_level=True), tmp_path / "g2", [enc],
                   tmp_path / "f")
    assert {m["level"] for m in per["metrics"]} == {"group", "class_name"}
    assert per["protocol"]["granularity_mode"] == "per_level"
    chosen = per["protocol"]["chosen_weight_decay"]["40"]  # one classifier, so one choice, per level
    assert set(chosen) == {"group", "class_name"} and all(isinstance(w, float) for w in chosen.values())
    # each level's number of values, as the mapped-up mode records it (the report's ticks and chance levels)
    assert {lv: i["values"] for lv, i in per["protocol"]["probes"]["40"]["levels"].items()} == \
        {"group": 2, "class_name": 4}
    with pytest.raises(StudyError, match="no taxonomy column"):
        evaluate(config(protocol="granularity", levels=["genus"]), tmp_path / "g3", [enc], tmp_path / "f")


def test_concat_of_two_encoders(manifests, encoder_file, tmp_path):
    a, b = encoder_file("a", 0), encoder_file("b", 1)
    out = evaluate(config(protocol="concat", labeled_sizes=[40], also_knn=True), tmp_path / "c", [a, b],
                   tmp_path / "f")
    assert out["protocol"]["feature_dim"] == 64 and out["protocol"]["probes"]["40"]["feature_dim"] == 64
    assert {m["metric"] for m in out["metrics"]} == {"top1", "knn_top1"}
    assert out["protocol"]["knn"]["k"] == 200 and out["protocol"]["probes"]["40"]["knn_k"] == 40  # k capped at n
    with pytest.raises(StudyError, match="takes 2 encoder"):
        evaluate(config(protocol="concat"), tmp_path / "c2", [a], tmp_path / "f")


def test_concat_knn_weighs_both_encoders_alike_on_their_raw_features(manifests, encoder_file, tmp_path,
                                                                    monkeypatch):
    """kNN of a concatenation: the cosine of per-encoder unit vectors side by side (the mean of the two cosines),
    not of z-scored features (single-encoder kNN never sees standardisation either)."""
    from study.evaluate import knn

    seen = []
    real = knn.score_blocks
    monkeypatch.setattr(knn, "score_blocks", lambda x, *a, **k: seen.append(x.clone()) or real(x, *a, **k))
    a, b = encoder_file("a", 0), encoder_file("b", 1)
    evaluate(config(protocol="concat", labeled_sizes=[40], also_knn=True), tmp_path / "c", [a, b], tmp_path / "f")
    halves = seen[0].split(32, dim=1)
    assert all(torch.allclose(h.norm(dim=1).cpu(), torch.ones(len(h))) for h in halves)


def test_a_concatenation_of_unit_rows_is_written_into_one_tensor():
    """kNN's side-by-side unit rows of two encoders: one new tensor of all the columns, no unit-length copy of each
    encoder's features before it (at iNat21's scale each is 11 GB); the rows as F.normalize scales them."""
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(50, 6, generator=g) * 3, torch.randn(9, 6, generator=g)),
             (torch.randn(50, 10, generator=g), torch.randn(9, 10, generator=g))]
    pairs[1][0][4] = 0  # a row of norm 0: zeros (its norm clamped at knn.EPS, as F.normalize does), not NaN
    with LargestFloat() as largest:
        x = run_mod._side_by_side(pairs, 0, unit=True)
    assert [n for n in largest.made if n > 50] == [50 * 16]  # beside the output, only per-row norms (50)
    expected = torch.cat([torch.nn.functional.normalize(a, dim=1) for a, _ in pairs], 1)
    assert torch.equal(x, expected)
    assert torch.equal(run_mod._side_by_side(pairs, 1), torch.cat([b for _, b in pairs], 1))
    assert run_mod._side_by_side(pairs[:1], 0, unit=True) is pairs[0][0]  # one encoder: itself, unscaled
    meta = [(a.to("meta"), b.to("meta")) for a, b in pairs]  # on the features' device (e.g. a GPU), as torch.cat
    assert run_mod._side_by_side(meta, 0, unit=True).device.type == "meta"


def test_feature_layer_pools_an_inner_stage(manifests, encoder_file, tmp_path):
    """Also from a cache that holds the same encoder's pooled features: the layer is part of the cache key."""
    enc = encoder_file()
    pooled = evaluate(config(labeled_sizes=[20]), tmp_path / "p", [enc], tmp_path / "f")
    out = evaluate(config(feature_layer="layer3", labeled_sizes=[20]), tmp_path / "l", [enc], tmp_path / "f")
    assert pooled["protocol"]["feature_dim"] == 32
    assert out["protocol"]["feature_dim"] == 16  # layer3 of width 4: 4 x 4 channels
    assert [e["cached"] for e in out["protocol"]["extraction"]] == [False, False]


def test_finetune_and_scratch_reuse_the_training_loop(manifests, encoder_file, tmp_path):
    enc = encoder_file()
    ft = {"batch_size": 8, "steps": 3, "checkpoint_every_minutes": None, "log_every_steps": 3}
    out = evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft), tmp_path / "ft", [enc],
                   tmp_path / "f")
    assert [m["metric"] for m in out["metrics"]] == ["top1"]
    p = out["protocol"]
    assert p["runs"]["20"]["init_encoder"] == str(enc) and p["runs"]["20"]["subset"] == "labeled"
    assert p["steps"] == {"20": 3} and p["backbone"] == "resnet18_small" and p["width"] == 4
    assert p["per_device_batch"] == {"20": 8}
    assert (p["optimizer"], p["base_lr"], p["weight_decay"]) == ("sgd", 0.05, 0.0)  # the recipe trained is recorded
    assert (tmp_path / "ft" / "finetune-20" / "checkpoint.pt").is_file()
    again = evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft), tmp_path / "ft", [enc],
                     tmp_path / "f")  # already trained: resumed at its end, same answer
    assert again["metrics"] == out["metrics"]
    # a resumed job's wall time counts its earlier sessions' training (as a pretraining record's does)
    earlier = again["protocol"]["runs"]["20"]["earlier_sessions_seconds"]  # as of the run's last checkpoint
    assert 0 < earlier <= out["protocol"]["runs"]["20"]["wall_time_s"]
    assert again["protocol"]["wall_time_s"] >= earlier
    no_warmup = {**ft, "optim": {"warmup_epochs": 0}}  # the scratch recipe's 5 warmup epochs would fill 3 steps
    scratch = evaluate(config(protocol="scratch", labeled_sizes=[20], finetune=no_warmup, backbone="resnet18_small",
                              width=4), tmp_path / "sc", [], tmp_path / "f")
    assert scratch["protocol"]["runs"]["20"]["init_encoder"] is None
    assert (scratch["protocol"]["base_lr"], scratch["protocol"]["weight_decay"]) == (0.1, 1e-4)


def test_a_finetune_is_scored_with_its_fine_tuned_encoder(manifests, encoder_file, tmp_path, monkeypatch):
    """The test rows go through the encoder the fine-tune saved, not the one it started from (nor a fresh one)."""
    scored, real = {}, finetune_mod.forward_rows

    def spy(model, *a, **k):
        scored["encoder"] = {k: v.detach().cpu().clone() for k, v in model[0].state_dict().items()}
        return real(model, *a, **k)

    monkeypatch.setattr(finetune_mod, "forward_rows", spy)
    ft = {"batch_size": 8, "steps": 3, "checkpoint_every_minutes": None, "optim": {"lr": 0.5}}
    evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft), tmp_path / "ft", [encoder_file()],
             tmp_path / "f")
    tuned = load_encoder(tmp_path / "ft" / "finetune-20" / "encoder.pt").state_dict()
    start = load_encoder(encoder_file()).state_dict()
    assert scored["encoder"].keys() == tuned.keys()
    assert all(torch.equal(scored["encoder"][k], v.cpu()) for k, v in tuned.items())
    weights = [k for k, _ in load_encoder(encoder_file()).named_parameters()]  # not only BatchNorm's statistics
    assert not all(torch.equal(start[k], tuned[k].cpu()) for k in weights)  # the encoder itself trained


def test_a_finetune_at_the_default_batch_size_trains_on_a_smaller_labeled_subset(manifests, encoder_file, tmp_path):
    """The recipe's batch of 256 is cut to the 8 labeled images (the sampler needs a batch <= the images)."""
    ft = {"steps": 1, "checkpoint_every_minutes": None}
    p = evaluate(config(protocol="finetune", labeled_sizes=[8], finetune=ft), tmp_path / "ft", [encoder_file()],
                 tmp_path / "f")["protocol"]
    assert p["effective_batch"] == {"8": 8}


def test_several_weight_decays_need_a_held_out_fraction():
    with pytest.raises(StudyError, match="linear.val_fraction: must be > 0"):
        config(linear={"weight_decays": [1e-4, 1e-2], "val_fraction": 0})
    assert config(linear={"weight_decays": [1e-4], "val_fraction": 0}).linear.val_fraction == 0


def test_finetune_refuses_to_resume_from_a_regenerated_encoder(manifests, encoder_file, tmp_path):
    ft = {"batch_size": 8, "steps": 2, "checkpoint_every_minutes": None}
    cfg = config(protocol="finetune", labeled_sizes=[8], finetune=ft)
    evaluate(cfg, tmp_path / "ft", [encoder_file(seed=0)], tmp_path / "f")
    enc = encoder_file(seed=5)  # the pretraining job reran: other weights at the same path
    with pytest.raises(StudyError, match="init_encoder_sha256"):
        evaluate(cfg, tmp_path / "ft", [enc], tmp_path / "f")


def test_a_test_manifest_of_as_many_other_classes_or_one_image_too_many_is_refused(manifests, encoder_file,
                                                                                  tmp_path):
    """Four classes against four others: labels would not correspond (a count alone does not tell); a labeled size
    one past the train manifest's 40 images: refused, naming both."""
    import shutil

    from study.manifests.build import BuildConfig, build_manifest

    shutil.copytree(manifests / "test", tmp_path / "other")
    (tmp_path / "other" / "class3").rename(tmp_path / "other" / "class9")
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "other", split="train", name="evother",
                               sizes=[20]))
    other = r"^evaluate: manifests evtrain and evother have different classes \(4 vs 4\)"
    with pytest.raises(StudyError, match=other):
        evaluate(config(test_manifest="evother"), tmp_path / "x", [encoder_file()], tmp_path / "f")
    with pytest.raises(StudyError, match=r"^evaluate\.labeled_sizes: 41 is larger than manifest evtrain \(40 images\)"):
        evaluate(config(labeled_sizes=[8, 41]), tmp_path / "x", [encoder_file()], tmp_path / "f")
    assert not (tmp_path / "x").exists() and not (tmp_path / "f").exists()


def test_finetune_trains_at_the_size_and_normalisation_it_is_scored_with(manifests, encoder_file, tmp_path):
    ft = {"batch_size": 8, "steps": 1, "checkpoint_every_minutes": None}
    cfg = config(protocol="finetune", labeled_sizes=[8], finetune=ft, image_size=224,
                 augment={"image_size": 12, "resize_ratio": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    p = evaluate(cfg, tmp_path / "ft", [encoder_file()], tmp_path / "f")["protocol"]["runs"]["8"]
    assert p["augmentation"]["image_size"] == 12
    assert p["augmentation"]["mean"] == [0.5, 0.5, 0.5] and p["augmentation"]["std"] == [0.25, 0.25, 0.25]


def test_bad_inputs(manifests, encoder_file, tmp_path):
    with pytest.raises(StudyError, match="larger than manifest evtrain"):
        evaluate(config(labeled_sizes=[400]), tmp_path / "x", [encoder_file()], tmp_path / "f")
    for protocol, given, need in (("concat", 1, 2), ("linear", 2, 1), ("scratch", 1, 0)):  # too few, too many
        with pytest.raises(StudyError, match=rf"protocol '{protocol}' takes {need} encoder\(s\), got {given}"):
            evaluate(config(protocol=protocol), tmp_path / "x", [encoder_file(f"e{i}") for i in range(given)],
                     tmp_path / "f")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(encoder_file().read_bytes()[:200])
    ft = {"finetune": {"batch_size": 8, "steps": 1, "checkpoint_every_minutes": None}}
    for protocol, extra in (("linear", {}), ("finetune", ft)):
        with pytest.raises(StudyError, match="missing.pt: encoder file not found"):
            evaluate(config(protocol=protocol, **extra), tmp_path / "x", [tmp_path / "missing.pt"], tmp_path / "f")
        with pytest.raises(StudyError, match="truncated.pt: not a study encoder file"):
            evaluate(config(protocol=protocol, **extra), tmp_path / "x", [truncated], tmp_path / "f")


def test_fresh_extractions_give_the_same_result(manifests, encoder_file, tmp_path):
    enc = encoder_file()
    cfg = config(protocol="linear", labeled_sizes=[20, 40], also_knn=True, knn={"k": 5})
    a = evaluate(cfg, tmp_path / "a", [enc], tmp_path / "fa")
    b = evaluate(cfg, tmp_path / "b", [enc], tmp_path / "fb")  # another cache: extracted again
    assert [e["cached"] for e in b["protocol"]["extraction"]] == [False, False]
    assert a["metrics"] == b["metrics"]
    assert a["protocol"]["chosen_weight_decay"] == b["protocol"]["chosen_weight_decay"]


@pytest.mark.parametrize("protocol", ["linear", "finetune"])
def test_replicates_share_a_protocol_fingerprint_and_recipes_do_not(protocol, manifests, encoder_file, tmp_path):
    """Seeds of one recipe (other encoders, other run folders and caches, other chosen weight decays and timings)
    aggregate into one cell; a changed recipe does not."""
    from study.results.record import protocol_fingerprint

    ft = {"finetune": {"batch_size": 8, "steps": 2, "checkpoint_every_minutes": None}} if protocol == "finetune" else {}
    prints = []
    for seed in (0, 1):
        out = evaluate(config(protocol=protocol, labeled_sizes=[8, 20], seed=seed, **ft), tmp_path / f"run{seed}",
                       [encoder_file(f"enc{seed}", seed)], tmp_path / f"features{seed}")
        prints.append(protocol_fingerprint(out["protocol"]))
    other = evaluate(config(protocol=protocol, labeled_sizes=[8, 20], image_size=8, **ft), tmp_path / "other",
                     [encoder_file("enc0", 0)], tmp_path / "features0")
    assert prints[0] == prints[1]
    assert protocol_fingerprint(other["protocol"]) != prints[0]


def test_evaluations_of_encoders_of_two_pretraining_recipes_do_not_share_a_fingerprint(manifests, tmp_path):
    """Seeds of one recipe aggregate; an encoder of another recipe (its encoder.pt says which) is another cell."""
    from study.results.record import protocol_fingerprint
    from study.train.backbones import build_backbone, encoder_payload

    prints = {}
    for name, recipe, seed in (("a0", "recipe-a", 0), ("a1", "recipe-a", 1), ("b0", "recipe-b", 0)):
        torch.manual_seed(seed)
        path = tmp_path / name / "encoder.pt"
        path.parent.mkdir()
        torch.save(encoder_payload(build_backbone("resnet18_small", 4), recipe), path)
        out = evaluate(config(labeled_sizes=[8], seed=seed), tmp_path / f"run-{name}", [path], tmp_path / "f")
        assert out["protocol"]["encoder_recipes"] == [recipe]
        prints[name] = protocol_fingerprint(out["protocol"])
    assert prints["a0"] == prints["a1"] != prints["b0"]


def test_keys_a_protocol_never_reads_change_no_fingerprint(manifests, encoder_file, tmp_path):
    """A granularity or fine-tuning key on a linear job changes no number: it is not recorded, nor fingerprinted."""
    from study.results.record import protocol_fingerprint

    enc = encoder_file()
    plain = evaluate(config(labeled_sizes=[8]), tmp_path / "a", [enc], tmp_path / "f")
    extra = evaluate(config(labeled_sizes=[8], per_level=True, levels=["group"], epochs=5, knn={"k": 3}, width=8),
                     tmp_path / "b", [enc], tmp_path / "f")
    assert extra["metrics"] == plain["metrics"]
    assert protocol_fingerprint(extra["protocol"]) == protocol_fingerprint(plain["protocol"])
    assert "per_level" not in extra["protocol"]["config"] and "knn" not in extra["protocol"]["config"]
    with_knn = evaluate(config(labeled_sizes=[8], also_knn=True, knn={"k": 3}), tmp_path / "c", [enc], tmp_path / "f")
    assert with_knn["protocol"]["config"]["knn"]["k"] == 3  # read when kNN runs


def test_an_encoder_giving_non_finite_features_is_named_and_nothing_cached(manifests, tmp_path):
    """A diverged encoder (here one BatchNorm weight set to inf) is refused at extraction, naming the encoder and
    the manifest, rather than giving NaN scores that read like a diverged probe; its features are not cached, nor
    are the rows saved on the way (here after every batch)."""
    from study.train.backbones import build_backbone, encoder_payload

    net = build_backbone("resnet18_small", 4)
    with torch.no_grad():
        net.bn1.weight[0] = float("inf")
    enc = tmp_path / "diverged" / "encoder.pt"
    enc.parent.mkdir()
    torch.save(encoder_payload(net), enc)
    with pytest.raises(StudyError, match=r"diverged/encoder.pt: the features of 40 of 40 images of manifest evtrain "
                                         r"are not finite"):
        evaluate(config(checkpoint_every_minutes=1e-9), tmp_path / "run", [enc], tmp_path / "features")
    assert not list((tmp_path / "features").rglob("*.pt"))


def test_an_encoder_giving_infinite_but_no_nan_features_is_refused_too(manifests, tmp_path):
    """An inf feature (here channel 0 of the last block, its BatchNorm bias inf: no NaN anywhere) is not finite
    either: refused at extraction, not cached."""
    from study.train.backbones import build_backbone, encoder_payload

    net = build_backbone("resnet18_small", 4)
    with torch.no_grad():
        net.layer4[1].bn2.bias[0] = float("inf")
    enc = tmp_path / "inf" / "encoder.pt"
    enc.parent.mkdir()
    torch.save(encoder_payload(net), enc)
    with pytest.raises(StudyError, match=r"inf/encoder.pt: the features of 20 of 20 images of manifest evtest "
                                         r"are not finite"):
        _features(tmp_path / "features", "evtest", enc, None)
    assert not list((tmp_path / "features").rglob("*.pt"))


@pytest.mark.parametrize("failure", ["folder", "full disk"])
def test_a_cache_that_cannot_be_written_warns_and_the_evaluation_goes_on(failure, manifests, encoder_file, tmp_path,
                                                                         monkeypatch, capfd):
    """Features that cannot be cached (a cache path under a file; a full disk, which torch.save reports as a
    RuntimeError of its zip writer: raised here by a stand-in, as no disk can be filled in a test) are used for this
    evaluation with a warning naming the file; no temporary file is left behind."""
    enc = encoder_file()
    cache = tmp_path / "features"
    if failure == "folder":
        cache.write_text("a file where the cache folder should be")
    else:
        def full_disk(*_a, **_k):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2048 vs 1942")

        monkeypatch.setattr(features_mod.torch, "save", full_disk)
    expected = evaluate(config(), tmp_path / "ref", [enc], tmp_path / "ref-features")["metrics"] \
        if failure == "folder" else None
    out = evaluate(config(), tmp_path / "run", [enc], cache)
    err = capfd.readouterr().err
    assert "WARNING: could not cache the features in" in err and "a rerun extracts them again" in err
    if failure == "full disk":  # torch's line names no cause: the warning gives the space left and the likely one
        assert "GB free there now: a full disk or quota fails writes so" in err
    assert [e["cached"] for e in out["protocol"]["extraction"]] == [False, False]
    assert all(e["file"] is None for e in out["protocol"]["extraction"])
    if expected is not None:
        assert out["metrics"] == expected
    else:
        assert not [p for p in cache.rglob("*") if p.is_file()]


def _pretrained_encoder(tmp_path):
    """(encoder.pt of a 2-step SimCLR run on evtrain, that run's protocol)."""
    from study.train import PretrainConfig, pretrain

    cfg = PretrainConfig.from_dict({"manifest": "evtrain", "method": "simclr", "backbone": "resnet18_small", "width": 4,
                                    "steps": 2, "batch_size": 16, "image_size": 12, "augment": {"resize_ratio": 1.0},
                                    "device": TEST_DEVICE, "num_workers": 0, "optim": {"warmup_epochs": 0},
                                    "checkpoint_every_minutes": None})
    return tmp_path / "pre" / "encoder.pt", pretrain(cfg, tmp_path / "pre")["protocol"]


def test_a_record_holds_each_encoders_pretraining_protocol_outside_its_fingerprint(manifests, encoder_file,
                                                                                  tmp_path):
    """An evaluation (what the paper's figures plot) says how its encoder was pretrained, read from encoder.pt; an
    encoder file written without it (older code) still evaluates, recorded None. Not fingerprinted: the encoder's
    recipe fingerprint (`encoder_recipes`) pins it."""
    from study.results.record import protocol_fingerprint

    enc, pre = _pretrained_encoder(tmp_path)
    p = evaluate(config(labeled_sizes=[8]), tmp_path / "run", [enc], tmp_path / "f")["protocol"]
    for key in ("method", "backbone", "epochs", "steps", "effective_batch", "effective_lr", "temperature",
                "augmentation", "corruption", "manifest", "manifest_content_hash", "seed"):
        assert p["pretrain"][key] == pre[key], key
    assert (p["pretrain"]["method"], p["pretrain"]["effective_batch"], p["pretrain"]["temperature"]) == \
        ("simclr", 16, 0.1)
    assert protocol_fingerprint(p) == protocol_fingerprint({k: v for k, v in p.items() if k != "pretrain"})
    # nor its code version (the file's bytes are the same under any): a report finds it by `depends_on`
    assert pre["code_version"] and "code_version" not in p["pretrain"], p["pretrain"]
    concat = evaluate(config(protocol="concat", labeled_sizes=[8]), tmp_path / "c", [enc, encoder_file()],
                      tmp_path / "f")["protocol"]
    assert concat["pretrain"] == [p["pretrain"], None]


def test_a_finetune_in_a_copied_workdir_is_scored_again_from_its_checkpoint(manifests, encoder_file, tmp_path,
                                                                           capsys):
    """The checkpoint pins the encoder it started from by content, not by path: a copied or moved workdir goes on
    (here: finds its run trained, and records it as the first session did)."""
    import shutil

    cfg = config(protocol="finetune", labeled_sizes=[8], finetune={"batch_size": 8, "steps": 2,
                                                                    "checkpoint_every_minutes": None})
    shutil.copytree(encoder_file().parent, tmp_path / "work1" / "pre")
    out = evaluate(cfg, tmp_path / "work1" / "ev", [tmp_path / "work1" / "pre" / "encoder.pt"], tmp_path / "f")
    shutil.copytree(tmp_path / "work1", tmp_path / "work2")
    capsys.readouterr()
    again = evaluate(cfg, tmp_path / "work2" / "ev", [tmp_path / "work2" / "pre" / "encoder.pt"], tmp_path / "f")
    assert "finetune-8: already trained (2/2 steps)" in capsys.readouterr().err
    assert again["metrics"] == out["metrics"]
    assert again["protocol"]["runs"]["8"]["resumed_from_steps"] == out["protocol"]["runs"]["8"]["resumed_from_steps"]


def test_a_finetune_records_the_epochs_of_each_labeled_size(manifests, encoder_file, tmp_path):
    """Under a `steps` budget each labeled size trains its own number of epochs (recorded per size, as its steps
    are); one value where they agree."""
    ft = {"batch_size": 8, "steps": 3, "checkpoint_every_minutes": None}
    enc = encoder_file()
    out = evaluate(config(protocol="finetune", labeled_sizes=[8, 40], finetune=ft), tmp_path / "a", [enc],
                   tmp_path / "f")
    assert out["protocol"]["epochs"] == {"8": 3.0, "40": 0.6} and out["protocol"]["steps"] == {"8": 3, "40": 3}
    same = evaluate(config(protocol="finetune", labeled_sizes=[8, 40], finetune=ft, epochs=1), tmp_path / "b",
                    [enc], tmp_path / "f")
    assert same["protocol"]["epochs"] == 1.0 and same["protocol"]["steps"] == {"8": 1, "40": 5}


def test_a_resumed_finetune_of_several_labeled_sizes_counts_the_earlier_sessions_of_each(manifests, encoder_file,
                                                                                          tmp_path):
    """A rerun of a finished fine-tune resumes each labeled size's run at its end: the record's earlier sessions
    are every run's (their sum), and its wall time counts them all."""
    ft = {"batch_size": 8, "steps": 3, "checkpoint_every_minutes": None}
    cfg, enc = config(protocol="finetune", labeled_sizes=[8, 20], finetune=ft), encoder_file()
    evaluate(cfg, tmp_path / "run", [enc], tmp_path / "f")
    p = evaluate(cfg, tmp_path / "run", [enc], tmp_path / "f")["protocol"]
    each = [r["earlier_sessions_seconds"] for r in p["runs"].values()]
    assert len(each) == 2 and all(s > 0 for s in each)
    assert p["earlier_sessions_seconds"] == pytest.approx(sum(each)) and p["wall_time_s"] >= sum(each)


def test_a_probe_records_and_fingerprints_only_its_optimizers_settings(manifests, encoder_file, tmp_path):
    """L-BFGS reads no epochs, lr or batch size; adam/sgd no iteration caps or tolerance: such a setting is neither
    recorded nor fingerprinted, so two jobs that differ only in one give one cell."""
    from study.results.record import protocol_fingerprint

    enc = encoder_file()

    def run(name, **linear):
        out = evaluate(config(labeled_sizes=[8], linear={"weight_decays": [1e-4, 1e-2], **linear}), tmp_path / name,
                       [enc], tmp_path / "f")
        return out["metrics"], out["protocol"], protocol_fingerprint(out["protocol"])

    lbfgs, lbfgs_other = run("a", max_iter=50), run("b", max_iter=50, epochs=5, lr=0.5, batch_size=4)
    assert lbfgs[0] == lbfgs_other[0] and lbfgs[2] == lbfgs_other[2]
    for recorded in (lbfgs[1]["linear"], lbfgs[1]["config"]["linear"]):
        assert recorded["max_iter"] == 50 and not {"epochs", "lr", "batch_size"} & set(recorded)
    sgd, sgd_other = run("c", optimizer="sgd", epochs=5, batch_size=8), \
        run("d", optimizer="sgd", epochs=5, batch_size=8, max_iter=7, select_iter=3, cold_iter=9, tolerance=0.1)
    assert sgd[0] == sgd_other[0] and sgd[2] == sgd_other[2]
    for recorded in (sgd[1]["linear"], sgd[1]["config"]["linear"]):
        assert recorded["epochs"] == 5 and not {"select_iter", "max_iter", "cold_iter", "tolerance"} & set(recorded)
    assert run("e", optimizer="sgd", epochs=5, batch_size=8, lr=0.5)[2] != sgd[2]  # what it reads does count


def test_granularity_refuses_bad_levels_before_extracting_any_feature(manifests, encoder_file, tmp_path):
    with pytest.raises(StudyError, match=r"evaluate.levels: manifest evtrain has no taxonomy column\(s\) \['genus'\]"):
        evaluate(config(protocol="granularity", levels=["genus"]), tmp_path / "g", [encoder_file()], tmp_path / "f")
    assert not [p for p in (tmp_path / "f").rglob("*") if p.is_file()]


@pytest.mark.parametrize("key, protocol", [("test_manifest", "linear"), ("test_manifest", "knn"),
                                           ("test_manifest", "granularity"), ("test_manifest", "finetune"),
                                           ("train_manifest", "linear")])
def test_an_empty_manifest_is_refused_naming_it_before_any_work(key, protocol, manifests, encoder_file, tmp_path):
    """A hand-made or filtered manifest without rows (`study manifest build` refuses to write one) would give a raw
    tensor error or a silent NaN after the extraction or the training."""
    from study.manifests.store import finalise, load_meta, read_arrow, write_manifest

    name = {"test_manifest": "evtest", "train_manifest": "evtrain"}[key]
    meta = {k: v for k, v in load_meta(name).items() if k not in ("content_hash", "table_hash")}
    write_manifest(f"{name}_empty", *finalise(f"{name}_empty", read_arrow(name).slice(0, 0),
                                              {**meta, "num_images": 0, "sizes": [], "labeled_sizes": []}))
    ft = {"finetune": {"batch_size": 8, "steps": 2, "checkpoint_every_minutes": None}} if protocol == "finetune" else {}
    with pytest.raises(StudyError, match=f"evaluate.{key}: manifest {name}_empty has no images"):
        evaluate(config(protocol=protocol, labeled_sizes=[8], **{key: f"{name}_empty"}, **ft), tmp_path / "run",
                 [encoder_file()], tmp_path / "f")
    assert not (tmp_path / "f").exists() and not (tmp_path / "run").exists()


def test_each_labeled_size_logs_a_progress_line(manifests, encoder_file, tmp_path, capfd):
    """An evaluation on cached features printed nothing until its result: `study status` showed a running job with
    no progress line. Each labeled size now logs one, with its top-1."""
    out = evaluate(config(), tmp_path / "run", [encoder_file()], tmp_path / "features")
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("[evaluate] linear at ")]
    top1 = {m["labeled_size"]: m["value"] for m in out["metrics"]}
    assert [ln.split(" in ")[0] for ln in lines] == [
        f"[evaluate] linear at {n} labeled images ({i}/3): top1 {top1[n]:.4f}" for i, n in enumerate((8, 20, 40), 1)]


def test_frozen_protocols_hold_the_labeled_features_once_more_at_most(manifests, encoder_file, tmp_path, monkeypatch):
    """kNN's copy of the features (torch.cat, even of one encoder) stayed alive while the linear probe ran
    (`also_knn`), and a kNN evaluation moved the features to the device twice, once for a probe it never runs. At
    iNat21's scale each copy is 22 GB of GPU memory. Copies are counted: Tensor.to calls of the labeled features,
    and feature-shaped tensors on the probe's device alive during the probe besides its own input (on a GPU, the
    cache's host tensors are not copies on the device)."""
    import gc
    import warnings

    from study.evaluate import linear
    from study.evaluate import run as run_mod

    moved, alive = [], []
    real_to, real_probe = torch.Tensor.to, linear.train_probe

    def to(self, *a, **k):
        if self.dim() == 2 and self.dtype == torch.float32 and len(self) == 40:
            moved.append(tuple(self.shape))
        return real_to(self, *a, **k)

    def probe(x, y, *a, **k):
        with warnings.catch_warnings():  # isinstance on every object touches torch's deprecated module attributes
            warnings.simplefilter("ignore", FutureWarning)
            alive.append(sum(isinstance(t, torch.Tensor) and t.shape == x.shape and t.device == x.device
                             and t.data_ptr() != x.data_ptr() for t in gc.get_objects()))
        return real_probe(x, y, *a, **k)

    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(run_mod.linear, "train_probe", probe)
    evaluate(config(labeled_sizes=[40], protocol="knn", knn={"k": 5}), tmp_path / "knn", [encoder_file()],
             tmp_path / "features")
    assert moved == [(40, 32)]  # the labeled features, once, for kNN
    moved.clear()
    evaluate(config(labeled_sizes=[40], also_knn=True, knn={"k": 5}), tmp_path / "both", [encoder_file()],
             tmp_path / "features")
    assert moved == [(40, 32), (40, 32)] and alive == [0]  # kNN's, then the probe's: not both at once


def test_the_evaluation_device_is_made_current_and_a_bad_name_is_refused_naming_the_key(monkeypatch):
    """No GPU here: torch.cuda's queries and set_device are mocked (a torch.device is only a name). An evaluation on
    `cuda:1` left GPU 0 current, where pinned memory opened a second context; `cuda:x` reached torch's own error."""
    from study.evaluate.features import resolve_device

    made_current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", made_current.append)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and made_current == [torch.device("cuda", 1)]
    assert resolve_device("auto") == torch.device("cuda", 0)
    with pytest.raises(StudyError, match=r"evaluate\.device: expected 'auto', 'cpu' or 'cuda\[:N\]', got 'cuda:x'"):
        resolve_device("cuda:x")
    assert resolve_device("cpu") == torch.device("cpu") and len(made_current) == 2


def test_the_record_names_each_labeled_size_once_and_the_images_its_probe_was_fit_on(manifests, encoder_file,
                                                                                   tmp_path):
    """"all" is the train manifest's 40 images; a size given twice is evaluated once; sizes in any order extract the
    largest subset, and each probe is fit on its own number of labeled images."""
    out = evaluate(config(labeled_sizes=["all", 8, 40]), tmp_path / "run", [encoder_file()], tmp_path / "f")
    p = out["protocol"]
    assert p["labeled_sizes"] == [40, 8]
    assert [(m["metric"], m["labeled_size"]) for m in out["metrics"]] == [("top1", 40), ("top1", 8)]
    assert {n: probe["images"] for n, probe in p["probes"].items()} == {"40": 40, "8": 8}
    assert [(e["subset"], e["rows"]) for e in p["extraction"]] == [("labeled(40)", 40), ("all", 20)]


def test_concat_records_each_encoder_and_sets_their_features_side_by_side_in_order(manifests, encoder_file, tmp_path,
                                                                                  monkeypatch):
    """The probe of a concatenation sees the first encoder's features, then the second's, each as extracted; the
    record names each encoder file by its own content hash."""
    seen = []
    real = linear.train_probe
    monkeypatch.setattr(linear, "train_probe", lambda x, *a, **k: seen.append(x.cpu().clone()) or real(x, *a, **k))
    a, b = encoder_file("a", 0), encoder_file("b", 1)
    p = evaluate(config(protocol="concat", labeled_sizes=[40]), tmp_path / "c", [a, b], tmp_path / "f")["protocol"]
    assert [(e["path"], e["sha256"]) for e in p["encoders"]] == [(str(a), file_sha256(a)), (str(b), file_sha256(b))]
    assert file_sha256(a) != file_sha256(b)
    labeled = [torch.load(e["file"], weights_only=True)["features"] for e in p["extraction"] if e["subset"] != "all"]
    (x,) = seen
    assert torch.equal(x, torch.cat(labeled, 1)) and not torch.equal(labeled[0], labeled[1])


def test_a_stopped_evaluation_reads_back_the_labeled_sizes_it_scored(manifests, encoder_file, tmp_path, monkeypatch):
    """Each labeled size's scores are saved in the run folder once its probes are done: a rerun after a stop (a
    requeued job) fits only the sizes left and records what an uninterrupted run does; another config in the same
    folder scores every size again."""
    enc = encoder_file()
    cfg = config(labeled_sizes=[8, 20, 40], device="cpu", also_knn=True)
    whole = evaluate(cfg, tmp_path / "whole", [enc], tmp_path / "f")
    fits, real = [], linear.train_probe

    class Stopped(Exception):
        """The stop of a job killed during its third size's probes."""

    def probe(x, *a, **k):
        fits.append(len(x))
        if len(x) == stop_at:
            raise Stopped
        return real(x, *a, **k)

    monkeypatch.setattr(linear, "train_probe", probe)
    stop_at = 40
    with pytest.raises(Stopped):
        evaluate(cfg, tmp_path / "run", [enc], tmp_path / "f")
    assert sorted(p.name for p in (tmp_path / "run" / "scored").iterdir()) == ["20.json", "8.json"]
    fits.clear()
    stop_at = None
    again = evaluate(cfg, tmp_path / "run", [enc], tmp_path / "f")
    assert fits == [40]
    assert again["metrics"] == whole["metrics"]
    untimed = [{n: {k: v for k, v in info.items() if k != "seconds"} for n, info in out["protocol"]["probes"].items()}
               for out in (again, whole)]
    assert json.loads(json.dumps(untimed[0])) == json.loads(json.dumps(untimed[1]))  # as their records hold them
    assert again["protocol"]["earlier_sessions_seconds"] > 0  # the sizes scored before the stop
    fits.clear()
    evaluate(config(labeled_sizes=[8, 20, 40], device="cpu", also_knn=True, seed=1), tmp_path / "run", [enc],
             tmp_path / "f")
    assert fits == [8, 20, 40]


def test_a_rerun_with_other_run_only_settings_or_another_size_reads_back_the_sizes_scored(
        manifests, encoder_file, tmp_path, monkeypatch, capfd):
    """Run-only settings (num_workers, checkpoint_every_minutes: not in the job id) and the other labeled sizes change
    no size's scores: a rerun that changes them fits only the sizes not yet scored. A size scored by another code
    version is read back with a warning."""
    enc = encoder_file()
    evaluate(config(labeled_sizes=[8, 20], device="cpu", num_workers=1), tmp_path / "run", [enc], tmp_path / "f")
    fits, real = [], linear.train_probe
    monkeypatch.setattr(linear, "train_probe", lambda x, *a, **k: fits.append(len(x)) or real(x, *a, **k))
    for n in (8, 20):  # as if each took 1000 s: the record counts them as probe time of earlier sessions
        saved = json.loads((tmp_path / "run" / "scored" / f"{n}.json").read_text())
        version = saved["code_version"] if n == 8 else "0.0.1"
        (tmp_path / "run" / "scored" / f"{n}.json").write_text(json.dumps({**saved, "seconds": 1000.0,
                                                                          "code_version": version}))
    capfd.readouterr()
    out = evaluate(config(labeled_sizes=[8, 20, 40], device="cpu", num_workers=0, checkpoint_every_minutes=None),
                   tmp_path / "run", [enc], tmp_path / "f")
    assert fits == [40]
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "WARNING" in ln]
    assert len(warnings) == 1 and "scored by code version 0.0.1, this session runs" in warnings[0]
    assert out["protocol"]["earlier_sessions_seconds"] == 2000.0 and out["protocol"]["probe_seconds"] > 2000.0
    fits.clear()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 97)  # on a CPU another thread count sums otherwise
    evaluate(config(labeled_sizes=[8, 20], device="cpu"), tmp_path / "run", [enc], tmp_path / "f")
    assert fits == [8, 20]
    fits.clear()
    evaluate(config(labeled_sizes=[8, 20], device="cpu"), tmp_path / "run", [encoder_file("other", seed=1)],
             tmp_path / "f")
    assert fits == [8, 20]  # another encoder's features


def test_a_probe_holds_out_the_rows_the_evaluation_seed_draws(manifests, encoder_file, tmp_path):
    """`seed` chooses the held-out split the weight decay is chosen on: the probe of a seed-1 evaluation is the
    probe `linear.train_probe` fits with seed 1 on the same features (on the CPU, where fits are deterministic)."""
    cfg = config(labeled_sizes=[40], seed=1, device="cpu")
    p = evaluate(cfg, tmp_path / "run", [encoder_file()], tmp_path / "f")["protocol"]
    cached = torch.load(p["extraction"][0]["file"], weights_only=True)
    _, info = linear.train_probe(cached["features"], cached["labels"], 4, cfg.linear, seed=1)
    _, other = linear.train_probe(cached["features"], cached["labels"], 4, cfg.linear, seed=0)
    assert other["validation_loss"] != info["validation_loss"]  # the seeds hold out other rows
    assert p["probes"]["40"]["validation_loss"] == info["validation_loss"]
    assert p["chosen_weight_decay"]["40"] == info["weight_decay"]


def test_per_level_granularity_scores_each_level_against_the_test_images_values(manifests, encoder_file, tmp_path,
                                                                                monkeypatch):
    """Per level, the level's classifier is scored on whether its prediction is the test image's value at that level
    (the manifest's taxonomy columns)."""
    scores = {}
    real = linear.Probe.blocks

    def recording(probe, xt):  # each level's classifier's scores of the test images, by its number of values
        scores[len(probe.bias)] = probe(xt)
        return real(probe, xt)

    monkeypatch.setattr(linear.Probe, "blocks", recording)
    out = evaluate(config(protocol="granularity", labeled_sizes=[40], per_level=True), tmp_path / "g",
                   [encoder_file()], tmp_path / "f")
    test = load_manifest("evtest").all()
    top1 = {m["level"]: m["value"] for m in out["metrics"] if m["metric"] == "top1"}
    for level, num_values in (("group", 2), ("class_name", 4)):
        path = granularity.level_path(["group", "class_name"], level)
        truth = ["/".join(row) for row in test[path].itertuples(index=False)]
        # a coarser level's classifier numbers its values by their paths; the finest one (one value per class) is
        # the paper's classifier, numbered by class label
        values = sorted(set(truth)) if level == "group" else dict(zip(test["label"], truth))
        predicted = [values[i] for i in scores[num_values].argmax(1).tolist()]
        assert top1[level] == pytest.approx(sum(p == t for p, t in zip(predicted, truth)) / len(truth)), level
    assert top1["group"] > 0.5  # the group probe does better than chance: the check above is not vacuous


@pytest.mark.parametrize("protocol", [{"protocol": "linear"}, {"protocol": "granularity", "per_level": True}])
def test_the_test_images_are_scored_a_chunk_of_rows_at_a_time(manifests, encoder_file, tmp_path, monkeypatch,
                                                              protocol):
    """Beyond linear.CHUNK_LOGITS values the test images are scored in row chunks (iNat21's 100k x 10,000 scores
    would be 4 GB): the probe never scores more rows at once, and the metrics are those of one piece."""
    enc = encoder_file()
    whole = evaluate(config(labeled_sizes=[40], **protocol), tmp_path / "whole", [enc], tmp_path / "f")
    rows = []
    real = linear.Probe.__call__
    monkeypatch.setattr(linear.Probe, "__call__", lambda p, x: rows.append(len(x)) or real(p, x))
    monkeypatch.setattr(linear, "CHUNK_LOGITS", 32 * 6)  # 6 rows of 32 feature columns a chunk
    chunked = evaluate(config(labeled_sizes=[40], **protocol), tmp_path / "chunked", [enc], tmp_path / "f")
    assert max(rows) == 6 and rows.count(6) >= 3  # the 20 test images: 6, 6, 6, 2
    assert [(m["metric"], m["level"], m["value"]) for m in chunked["metrics"]] == \
        [(m["metric"], m["level"], m["value"]) for m in whole["metrics"]]


@pytest.mark.parametrize("per_level", [False, True])
def test_a_levels_top5_is_scored_only_with_more_than_5_values(per_level):
    """As at the finest level (top-5 where > 5 classes): a level of 5 values would score a top-5 of 1 always, of the
    finest classifier mapped up and of a level's own classifier alike."""
    g = torch.Generator().manual_seed(0)
    y, y_test = torch.arange(12).repeat(4), torch.arange(12).repeat(2)
    centres = torch.randn(12, 8, generator=g) * 3
    x, xt = centres[y] + torch.randn(48, 8, generator=g), centres[y_test] + torch.randn(24, 8, generator=g)
    table = pd.DataFrame({"label": range(12), "five": [f"v{c % 5}" for c in range(12)],
                          "six": [f"v{c % 6}" for c in range(12)]})
    level_maps = {lv: granularity.level_map([table], [lv], 12, "t") for lv in ("five", "six")}
    cfg = config(protocol="granularity", per_level=per_level, linear={"weight_decays": [1e-3]})
    rows = run_mod._granularity(cfg, x, y, xt, y_test, 48, level_maps, 12, {})
    assert sorted((r["metric"], r["level"]) for r in rows) == [("top1", "five"), ("top1", "six"), ("top5", "six")]


def test_per_level_finest_classifier_is_the_papers_classifier():
    """A level's values are numbered by their path names (iNat21: "Animalia/.../Pica pica"), not by class label; at
    the finest level (one value per class) per_level trains on the labels as numbered, so its classifier is the
    paper's bit for bit: a fit on renumbered classes differs in float sums, which on a small held-out set can flip
    the weight decay chosen (seen on a 12-class image folder: 4 points of top-1 apart)."""
    g = torch.Generator().manual_seed(0)
    y, y_test = torch.arange(12).repeat(6), torch.arange(12).repeat(3)
    centres = torch.randn(12, 8, generator=g) * 1.5
    x, xt = centres[y] + torch.randn(72, 8, generator=g), centres[y_test] + torch.randn(36, 8, generator=g)
    table = pd.DataFrame({"label": range(12), "group": [f"g{c % 3}" for c in range(12)],
                          "species": [f"s{(7 * c) % 12:02d}" for c in range(12)]})  # name order != label order
    level_maps = {lv: granularity.level_map([table], granularity.level_path(["group", "species"], lv), 12, "t")
                  for lv in ("group", "species")}
    mapped_info, per_info = {}, {}
    lin = {"weight_decays": [1e-4, 1e-2, 1.0]}
    mapped = run_mod._granularity(config(protocol="granularity", linear=lin), x, y, xt, y_test, 72, level_maps, 12,
                                  mapped_info)
    per = run_mod._granularity(config(protocol="granularity", linear=lin, per_level=True), x, y, xt, y_test, 72,
                               level_maps, 12, per_info)
    species = per_info["levels"]["species"]
    assert species["held_out"] == mapped_info["held_out"] == 12
    assert species["validation_loss"] == mapped_info["validation_loss"]  # the same fits, not alike ones
    assert species["weight_decay"] == mapped_info["weight_decay"]
    finest = {(r["level"], r["metric"]): r["value"] for r in mapped if r["level"] == "species"}
    assert {(r["level"], r["metric"]): r["value"] for r in per if r["level"] == "species"} == finest
    assert set(finest) == {("species", "top1"), ("species", "top5")}


def test_a_corrupted_variant_is_not_served_the_clean_manifests_cached_features(manifests, encoder_file, tmp_path):
    """A corruption variant lists the same files under the same root as its base (only its content hash differs):
    its features are extracted through the corruption, not read back from the clean manifest's cache file."""
    corrupt_manifest("evtrain-ds2", "evtrain", "downsample:factor=2")
    enc, cache = encoder_file(), tmp_path / "f"
    clean = _features(cache, "evtrain", enc, 8)
    corrupted = _features(cache, "evtrain-ds2", enc, 8)
    assert not corrupted.info["cached"] and not torch.equal(clean.x, corrupted.x)
    assert _features(cache, "evtrain-ds2", enc, 8).info["cached"]


def test_a_manifest_rebuilt_under_its_name_from_other_images_is_not_served_its_old_features(manifests, encoder_file,
                                                                                            tmp_path):
    """The cache is keyed by the manifest's content hash, not its name: a manifest deleted and built again under its
    name and root (here over other pixels, with another size, so another content hash) is extracted again."""
    from image_trees import write_quadrant_tree

    from study.manifests.build import BuildConfig, build_manifest

    enc, hash_before = encoder_file(), load_manifest("evtest").content_hash
    before = _features(tmp_path / "f", "evtest", enc, None)
    for p in (tmp_path / "manifests").glob("evtest.*"):
        p.unlink()
    write_quadrant_tree(tmp_path / "test", 5, seed=7)  # the same files, other pixels
    build_manifest(BuildConfig(dataset="imagefolder", root=tmp_path / "test", split="train", name="evtest",
                               sizes=[12], taxonomy=tmp_path / "taxonomy.csv"))
    assert load_manifest("evtest").content_hash != hash_before
    after = _features(tmp_path / "f", "evtest", enc, None)
    assert not after.info["cached"] and not torch.equal(before.x, after.x)


def test_a_labeled_subsets_features_are_those_of_its_own_images(manifests, encoder_file, tmp_path):
    """labeled(n) is the manifest's class-balanced labeled subset, not its first n rows: its labels are that subset's
    and each row's features are those its image gets in an extraction of every row."""
    enc, manifest = encoder_file(), load_manifest("evtrain")
    everything = _features(tmp_path / "f", "evtrain", enc, None)
    labeled = _features(tmp_path / "f", "evtrain", enc, 8)
    rows = manifest.labeled(8)
    position = {path: i for i, path in enumerate(manifest.all()["path"])}
    assert labeled.y.tolist() == rows["label"].tolist() and sorted(labeled.y.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.allclose(labeled.x, everything.x[[position[path] for path in rows["path"]]], atol=1e-5)


def test_features_extracted_on_another_device_type_are_not_read_back(manifests, encoder_file, tmp_path, monkeypatch):
    """A GPU's kernels give other low bits than a CPU's: features cached by a CPU evaluation do not serve a GPU one.
    No GPU here: the `cuda` cache's extraction is a stand-in (zeros), which runs only when nothing cached was found."""
    enc = encoder_file()
    assert not _features(tmp_path / "f", "evtrain", enc, 8).info["cached"]
    monkeypatch.setattr(features_mod, "LayerFeatures", lambda encoder, layer: torch.nn.Identity())
    monkeypatch.setattr(features_mod, "forward_rows",
                        lambda model, manifest, rows, *a, **k: (torch.zeros(len(rows), 32), 1.0, len(rows)))
    got = _features(tmp_path / "f", "evtrain", enc, 8, device="cuda")
    assert not got.info["cached"] and torch.equal(got.x, torch.zeros(8, 32))


def test_features_extracted_under_another_torch_version_are_not_read_back(manifests, encoder_file, tmp_path,
                                                                          monkeypatch):
    """Another torch's kernels may give other low bits: its evaluation extracts its own features."""
    enc = encoder_file()
    assert not _features(tmp_path / "f", "evtest", enc, None).info["cached"]
    monkeypatch.setattr(torch, "__version__", f"{torch.__version__}.next")
    assert not _features(tmp_path / "f", "evtest", enc, None).info["cached"]
    assert _features(tmp_path / "f", "evtest", enc, None).info["cached"]


def test_a_cached_file_of_another_format_is_extracted_again_not_read(manifests, encoder_file, tmp_path):
    """A file in the cache folder written by other extraction code (its `format` another, e.g. copied in) serves
    nothing: the features are extracted again and the file replaced."""
    enc = encoder_file()
    first = _features(tmp_path / "f", "evtest", enc, None)
    payload = torch.load(first.info["file"], weights_only=True)
    torch.save({**payload, "format": "study-features-0", "features": payload["features"] + 1}, first.info["file"])
    again = _features(tmp_path / "f", "evtest", enc, None)
    assert not again.info["cached"] and torch.equal(again.x, first.x)
    assert torch.load(first.info["file"], weights_only=True)["format"] == features_mod.FORMAT


def test_pools_of_one_layout_under_other_roots_do_not_share_cached_features(manifests, encoder_file, tmp_path,
                                                                            monkeypatch):
    """A pool's images lie under its sources' roots (`roots`), which its content hash leaves out: the pool of two
    sources of one layout, built in another manifest folder with the sources' roots swapped, is extracted again."""
    from image_trees import write_quadrant_tree

    from study.manifests.build import BuildConfig, build_manifest
    from study.manifests.pool import pool_manifests

    def build(name, root):
        build_manifest(BuildConfig(dataset="imagefolder", root=root, split="train", name=name, sizes=[20],
                                   taxonomy=tmp_path / "taxonomy.csv"))

    write_quadrant_tree(tmp_path / "test_b", 5, seed=7)
    build("evtest_b", tmp_path / "test_b")
    pool_manifests("evpool", [("evtest", 20), ("evtest_b", 20)], [], [])
    enc, cache, first = encoder_file(), tmp_path / "f", load_manifest("evpool")
    a = _features(cache, "evpool", enc, None)
    monkeypatch.setenv("STUDY_MANIFESTS", str(tmp_path / "manifests_b"))
    build("evtest", tmp_path / "test_b")
    build("evtest_b", tmp_path / "test")
    pool_manifests("evpool", [("evtest", 20), ("evtest_b", 20)], [], [])
    pool = load_manifest("evpool")
    assert pool.content_hash == first.content_hash and pool.meta["roots"] != first.meta["roots"]
    b = _features(cache, "evpool", enc, None)
    assert not b.info["cached"] and not torch.equal(a.x, b.x)
    assert _features(cache, "evpool", enc, None).info["cached"]


def test_an_inner_stages_features_are_its_global_average_pool(encoder_file):
    """`feature_layer: layerN` gives the mean over the stage's output's spatial positions, per channel."""
    encoder = load_encoder(encoder_file()).eval()
    outputs = []
    encoder.layer3.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = features_mod.LayerFeatures(encoder, "layer3")(x)
    assert features.shape == (3, 16) and torch.allclose(features, outputs[0].mean(dim=(2, 3)))


def test_a_stage_the_backbone_lacks_is_refused_naming_the_backbone(encoder_file):
    """`feature_layer: layerN` of an encoder without that module: a StudyError naming the backbone and the stage."""
    encoder = load_encoder(encoder_file())
    del encoder.layer3
    with pytest.raises(StudyError, match="evaluate.feature_layer: backbone 'resnet18_small' has no stage 'layer3'"):
        features_mod.LayerFeatures(encoder, "layer3")


def test_an_extraction_reads_its_images_with_the_workers_it_is_given(manifests, encoder_file, tmp_path, monkeypatch):
    """`evaluate.num_workers` loader processes read the images (the same features as read in this process)."""
    enc = encoder_file()
    workers, real = [], torch.utils.data.DataLoader
    monkeypatch.setattr(torch.utils.data, "DataLoader",
                        lambda *a, **k: workers.append(k.get("num_workers")) or real(*a, **k))
    got = _features(tmp_path / "f", "evtest", enc, None, num_workers=2)
    assert workers == [2]
    assert torch.equal(got.x, _features(tmp_path / "g", "evtest", enc, None).x)


def test_a_labeled_size_is_read_from_the_smallest_cached_file_that_covers_it(manifests, encoder_file, tmp_path):
    """With labeled20.pt and labeled40.pt cached, labeled(8) reads the smaller file (at iNat21's scale a file is
    gigabytes)."""
    enc = encoder_file()
    _features(tmp_path / "f", "evtrain", enc, 20)
    _features(tmp_path / "f", "evtrain", enc, 40)
    got = _features(tmp_path / "f", "evtrain", enc, 8)
    assert got.info["cached"] and got.info["file"].endswith("/labeled20.pt") and len(got.x) == 8
    assert got.x.untyped_storage().nbytes() == 8 * 32 * 4  # its own 8 rows, not a view that holds all 20
    whole = _features(tmp_path / "f", "evtrain", enc, 20)
    assert torch.equal(got.x, whole.x[:8]) and len(whole.x) == 20
    assert _mapped_file(whole.x) == got.info["file"]  # the exact size: the file's rows mapped, not read whole
    before = whole.x.clone()
    whole.x.add_(1)  # mapped copy-on-write: a write into the features changes no cached file
    assert torch.equal(_features(tmp_path / "f", "evtrain", enc, 20).x, before)


def test_a_cached_file_of_other_labels_is_extracted_again_not_read(manifests, encoder_file, tmp_path):
    """A cached file whose labels are not those of the rows asked for (a file copied in from elsewhere) serves
    nothing: the features are extracted again."""
    enc = encoder_file()
    first = _features(tmp_path / "f", "evtrain", enc, 20)
    payload = torch.load(first.info["file"], weights_only=True)
    payload["labels"] = (payload["labels"] + 1) % 4
    torch.save(payload, first.info["file"])
    again = _features(tmp_path / "f", "evtrain", enc, 20)
    assert not again.info["cached"] and torch.equal(again.y, first.y) and torch.equal(again.x, first.x)


def test_a_stray_file_named_with_other_digits_in_the_cache_folder_is_passed_over(manifests, encoder_file, tmp_path):
    """Only `labeled<ASCII digits>.pt` names a cached size: a file named `labeled²0.pt` (a digit to str.isdigit, not
    to int) is passed over, not a ValueError of every evaluation that looks in the folder."""
    enc = encoder_file()
    first = _features(tmp_path / "f", "evtrain", enc, 8)
    (Path(first.info["file"]).parent / "labeled²0.pt").write_bytes(b"x")
    again = _features(tmp_path / "f", "evtrain", enc, 8)
    assert again.info["cached"] and again.info["file"] == first.info["file"]


def _mapped_file(t: torch.Tensor) -> str | None:
    """The file whose mapping holds t's storage (Linux: /proc/self/maps), None where t is in anonymous memory."""
    ptr = t.untyped_storage().data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        low, high = (int(v, 16) for v in fields[0].split("-"))
        if low <= ptr < high:
            return fields[5] if len(fields) > 5 and fields[5].startswith("/") else None
    return None


def test_a_finetune_is_scored_with_its_trained_classifier_in_batches_of_the_evaluation(manifests, encoder_file,
                                                                                       tmp_path, monkeypatch):
    """The test rows go through the classifier the fine-tune trained (not a freshly initialised one), in forwards of
    `evaluate.batch_size` rows (20 test images in batches of 16: two forwards, the last padded), read by the
    evaluation's loader workers (the training run's are its `finetune` section's, here none)."""
    scored, forwards, workers, real = {}, [], [], finetune_mod.forward_rows

    def spy(model, manifest, rows, aug, batch_size, device, num_workers, **k):
        scored.update({k: v.detach().cpu().clone() for k, v in model[1].state_dict().items()})
        model.register_forward_hook(lambda _module, inputs, _output: forwards.append(len(inputs[0])))
        workers.append(num_workers)
        return real(model, manifest, rows, aug, batch_size, device, 0, **k)

    monkeypatch.setattr(finetune_mod, "forward_rows", spy)
    ft = {"batch_size": 8, "steps": 3, "checkpoint_every_minutes": None, "num_workers": 0}
    evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft, num_workers=2), tmp_path / "ft",
             [encoder_file()], tmp_path / "f")
    assert workers == [2]
    state = load_checkpoint(tmp_path / "ft" / "finetune-20" / "checkpoint.pt")["method"]
    assert torch.equal(scored["weight"], state["classifier.weight"].cpu())
    assert torch.equal(scored["bias"], state["classifier.bias"].cpu())
    assert forwards == [16, 16]


def test_a_finetune_is_scored_by_as_many_loader_workers_as_the_evaluation_resolved(manifests, encoder_file,
                                                                                    tmp_path, monkeypatch):
    """`evaluate.num_workers: null` (auto) scores the test rows with the worker count the evaluation resolved and
    records (`default_workers()`), not in this process alone."""
    import study.train.data as data_mod

    workers, real = [], finetune_mod.forward_rows

    def spy(model, manifest, rows, aug, batch_size, device, num_workers, **k):
        workers.append(num_workers)
        return real(model, manifest, rows, aug, batch_size, device, 0, **k)

    monkeypatch.setattr(finetune_mod, "forward_rows", spy)
    monkeypatch.setattr(data_mod, "default_workers", lambda: 3)
    ft = {"batch_size": 8, "steps": 1, "checkpoint_every_minutes": None, "num_workers": 0}
    out = evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft, num_workers=None), tmp_path / "ft",
                   [encoder_file()], tmp_path / "f")
    assert workers == [3] and out["protocol"]["num_workers"] == 3


def test_a_finetune_keeps_each_test_images_best_classes_not_its_scores(manifests, encoder_file, tmp_path,
                                                                      monkeypatch):
    """The scoring pass returns each test image's best classes (20 x 4: the test manifest's 4 classes), never the
    20 x classes scores (iNat21: 100k x 10,000 floats, 4 GB); top-1 is that of the whole scores. A classifier whose
    scores are not finite scores NaN, not chance."""
    seen, real = {}, finetune_mod.forward_rows

    def spy(model, *a, **k):
        seen["scores"] = real(model, *a, **{**k, "keep": None})[0]
        seen["kept"] = real(model, *a, **k)[0]
        return seen["kept"]

    monkeypatch.setattr(finetune_mod, "forward_rows", lambda *a, **k: (spy(*a, **k), 0.0, 20))
    ft = {"batch_size": 8, "steps": 2, "checkpoint_every_minutes": None}
    out = evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft), tmp_path / "ft", [encoder_file()],
                   tmp_path / "f")
    assert seen["scores"].shape == (20, 4) and seen["kept"].dtype == torch.long
    assert torch.equal(seen["kept"], seen["scores"].topk(4, dim=1).indices)
    y = torch.tensor(load_manifest("evtest").all()["label"].to_numpy())
    (top1,) = out["metrics"]
    assert top1["value"] == pytest.approx(float((seen["scores"].argmax(1) == y).float().mean()))

    class NotFinite(torch.nn.Module):
        def forward(self, x):
            return x.index_fill(0, torch.tensor([5], device=x.device), float("nan"))  # row 5 of each batch of 16: of
            # the first batch only (the last, 4 test images, is padded to 16 rows and cut back to 4)

    monkeypatch.setattr(finetune_mod, "forward_rows", lambda model, *a, **k: real(
        torch.nn.Sequential(model, NotFinite()), *a, **k))
    out = evaluate(config(protocol="finetune", labeled_sizes=[20], finetune=ft), tmp_path / "ft", [encoder_file()],
                   tmp_path / "f")
    assert math.isnan(out["metrics"][0]["value"])


def test_a_scoring_pass_keeps_each_batchs_own_rows_not_its_padding(manifests, encoder_file):
    """forward_rows' `keep` sees a batch's rows after its padding is cut: 20 test images in batches of 8 (the last, 4,
    padded to 8), NaN scores in that padding only: the scoring stays finite, the ranks those of the whole scores."""
    test, encoder = load_manifest("evtest"), load_encoder(encoder_file())
    aug = build_augment(config().augment_config())
    forwards = []

    class NaNPadding(torch.nn.Module):
        def forward(self, x):
            forwards.append(len(x))
            return x if len(forwards) < 3 else x.index_fill(0, torch.tensor([6]), float("nan"))  # a padded row

    top = ranking.TopClasses(5)
    ranks, _, computed = features_mod.forward_rows(torch.nn.Sequential(encoder, NaNPadding()), test, test.all(), aug,
                                                   8, torch.device("cpu"), keep=top)
    whole, _, _ = features_mod.forward_rows(encoder, test, test.all(), aug, 8, torch.device("cpu"))
    assert forwards == [8, 8, 8] and computed == 20 and top.finite
    assert ranks.dtype == torch.long and torch.equal(ranks, whole.topk(5, dim=1).indices)


def test_a_finetunes_classifier_of_other_classes_than_the_test_manifest_is_refused_before_scoring(
        manifests, encoder_file, tmp_path, monkeypatch):
    """A classifier of 4 outputs against a test manifest of 3 classes: a StudyError, and no test image scored."""
    monkeypatch.setattr(finetune_mod, "forward_rows", lambda *a, **k: pytest.fail("scored"))
    cfg = config(protocol="finetune", labeled_sizes=[20], finetune={"batch_size": 8, "steps": 1,
                                                                    "checkpoint_every_minutes": None})
    other = types.SimpleNamespace(name="evtest3", num_classes=3)
    with pytest.raises(StudyError, match="the classifier has 4 outputs, test manifest evtest3 3 classes"):
        finetune_mod.run_finetune(cfg, tmp_path / "ft", encoder_file(), 20, 20, other,
                                  build_augment(cfg.augment_config()), torch.device("cpu"), 0)


def test_a_finetune_trains_with_its_own_image_size_optimizer_and_normalisation(manifests, encoder_file, tmp_path):
    """What the `finetune` section sets itself (image size, lr, mean) wins over what the eval transform and the
    recipe would give; the recipe and the eval transform fill only what it leaves out (here std)."""
    ft = {"batch_size": 8, "steps": 1, "checkpoint_every_minutes": None, "image_size": 8, "optim": {"lr": 0.4},
          "augment": {"mean": [0.4, 0.4, 0.4]}}
    cfg = config(protocol="finetune", labeled_sizes=[8], finetune=ft,
                 augment={"resize_ratio": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    run = evaluate(cfg, tmp_path / "ft", [encoder_file()], tmp_path / "f")["protocol"]["runs"]["8"]
    assert run["augmentation"]["image_size"] == 8
    assert run["augmentation"]["mean"] == [0.4, 0.4, 0.4] and run["augmentation"]["std"] == [0.25, 0.25, 0.25]
    assert run["base_lr"] == 0.4 and run["weight_decay"] == 0.0  # the fine-tuning recipe's weight decay
    assert run["scoring_seconds"] >= 0 and run["run_dir"] == str(tmp_path / "ft" / "finetune-8")


def test_a_scratch_run_trains_the_configured_network_with_the_evaluations_seed_and_workers(manifests, tmp_path):
    """From random init the network is `backbone` x `width` of the evaluation config, and the run takes the
    evaluation's seed and loader workers (replicates differ by seed)."""
    ft = {"batch_size": 8, "steps": 1, "checkpoint_every_minutes": None, "optim": {"warmup_epochs": 0}}
    p = evaluate(config(protocol="scratch", labeled_sizes=[8], finetune=ft, backbone="resnet18_small", width=8,
                        seed=3), tmp_path / "sc", [], tmp_path / "f")["protocol"]
    assert (p["backbone"], p["width"]) == ("resnet18_small", 8)
    run = p["runs"]["8"]
    assert run["seed"] == 3 and run["config"]["num_workers"] == 0 and run["feature_dim"] == 64
