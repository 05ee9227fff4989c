"""The protocol table (study.evaluate.protocols) is what validation, records, planning and the report read."""
import dataclasses

import pytest

from study.errors import StudyError
from study.evaluate.config import EvalConfig
from study.evaluate.protocols import PROTOCOL_TABLE, PROTOCOLS, names_where, protocol


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
    with pytest.raises(StudyError, match="evaluate.protocol: unknown 'linaer'; expected one of " + ", ".join(PROTOCOLS)):
        _cfg("linaer")
