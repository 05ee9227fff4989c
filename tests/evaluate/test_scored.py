"""ScoredSizes: a labeled size's saved scores are read back only under the key they were saved with."""
from __future__ import annotations

import json
import math

from study.evaluate.scored import ScoredSizes
from study.version import code_version


def test_saved_scores_are_read_back_under_their_key_only(tmp_path):
    rows = [{"metric": "top1", "value": math.nan, "labeled_size": 8, "level": None}]
    ScoredSizes(tmp_path / "scored", "k1").save(8, rows, {"weight_decay": 1e-4}, 2.5)
    saved = ScoredSizes(tmp_path / "scored", "k1").load(8)
    assert saved["info"] == {"weight_decay": 1e-4} and saved["seconds"] == 2.5
    assert saved["code_version"] == code_version()  # a rerun by other code reads it back with a warning
    assert math.isnan(saved["metrics"][0]["value"])  # a diverged probe's missing value stays missing
    assert ScoredSizes(tmp_path / "scored", "k2").load(8) is None  # another config, encoder or device
    assert ScoredSizes(tmp_path / "scored", "k1").load(20) is None  # never scored
    assert [p.name for p in (tmp_path / "scored").iterdir()] == ["8.json"]  # no temporary left beside it


def test_an_unreadable_saved_size_is_scored_again(tmp_path):
    (tmp_path / "8.json").write_text('{"key": "k1", "metr')  # e.g. a file a full disk cut short
    assert ScoredSizes(tmp_path, "k1").load(8) is None
    (tmp_path / "8.json").write_text('["k1"]')
    assert ScoredSizes(tmp_path, "k1").load(8) is None


def test_a_saved_size_without_what_a_rerun_reads_back_is_scored_again(tmp_path):
    """A file under the right key that lacks the metric rows, the probes' info or the seconds (another version of
    study wrote it, or it was edited) is scored again: reading it back failed the job with a KeyError at every retry."""
    rows = [{"metric": "top1", "value": 0.5, "labeled_size": 8, "level": None}]
    full = {"key": "k1", "metrics": rows, "info": {}, "seconds": 1.0}
    for broken in ({k: v for k, v in full.items() if k != "seconds"}, {**full, "metrics": "top1"},
                   {**full, "info": None}, {**full, "metrics": [{"value": 0.5}]}, {**full, "seconds": "1 s"},
                   {**full, "metrics": [*rows, {"value": 0.5}]},  # one bad row among good ones
                   {**full, "metrics": None}, {**full, "metrics": {}}):
        (tmp_path / "8.json").write_text(json.dumps(broken))
        assert ScoredSizes(tmp_path, "k1").load(8) is None, broken
    (tmp_path / "8.json").write_text(json.dumps({**full, "newer_field": 1}))  # a field added since: read back
    assert ScoredSizes(tmp_path, "k1").load(8)["metrics"] == rows
