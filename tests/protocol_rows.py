"""`add_protocol(monkeypatch, row)`: a protocol row added to study.evaluate.protocols' table for one test (monkeypatch
takes it out again), also where a module copied the table's names when it was imported; `NOMEAN`, `TUNED` and
`FROMZERO`, such rows: a newcomer's row before its code."""
from __future__ import annotations

from study.evaluate.protocols import FROZEN_KEYS, LEVEL_KEYS, TRAINING_KEYS, Protocol

# a frozen-feature protocol that fits no probe
NOMEAN = Protocol("nomean", 1, trains=False, fits_probes=False,
                  unused=(*LEVEL_KEYS, "linear", "knn", "also_knn", *TRAINING_KEYS))
# training protocols: one that trains from an encoder (as finetune), one from random init (as scratch)
TUNED = Protocol("tuned", 1, trains=True, fits_probes=False, unused=(*LEVEL_KEYS, "backbone", "width", *FROZEN_KEYS))
FROMZERO = Protocol("fromzero", 0, trains=True, fits_probes=False, unused=(*LEVEL_KEYS, *FROZEN_KEYS))


def add_protocol(monkeypatch, row, recipe: dict | None = None) -> None:
    """Add `row` (a `Protocol`) to PROTOCOL_TABLE, and so to what validation, planning and the report read of it;
    `recipe`: a training row's default recipe (study.evaluate.recipes.RECIPES), without which it has none."""
    from study.evaluate import config, protocols, recipes
    from study.grids import cost, schema
    from study.report import rates

    table = (*protocols.PROTOCOL_TABLE, row)
    monkeypatch.setattr(protocols, "PROTOCOL_TABLE", table)
    monkeypatch.setattr(protocols, "PROTOCOLS", tuple(p.name for p in table))
    monkeypatch.setitem(protocols._BY_NAME, row.name, row)
    for module in (config, schema):  # `from study.evaluate.protocols import PROTOCOLS`
        monkeypatch.setattr(module, "PROTOCOLS", protocols.PROTOCOLS)
    for module, name, kind in ((cost, "PROBE_PROTOCOLS", {"fits_probes": True}),
                               (cost, "FROZEN_PROTOCOLS", {"trains": False}),
                               (cost, "TRAINING_PROTOCOLS", {"trains": True}),
                               (rates, "FINETUNE_PROTOCOLS", {"trains": True}),
                               (rates, "EXTRACT_PROTOCOLS", {"trains": False, "encoders": 1})):
        monkeypatch.setattr(module, name, protocols.names_where(**kind))
    if recipe is not None:
        monkeypatch.setitem(recipes.RECIPES, row.name, recipe)
