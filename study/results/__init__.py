"""Layer 3, results: one atomic JSON record per job and the tidy Parquet table (docs/architecture.md section 4).
The table half (study.results.table) loads pandas when one of its names is first used, not with a record's:
`study status` reads records only."""
import importlib

from study.results.record import (SCHEMA_VERSION, ResultFileWarning, SkippedFile, code_version, make_record,
                                  protocol_fingerprint, read_result, read_results, result_path, validate_record,
                                  write_result)

_TABLE_NAMES = ("AGGREGATE_COLUMNS", "AXES", "Collection", "aggregate", "axis_columns", "cell_columns", "collect",
                "drop_repeated_seeds", "find_conflicts", "gather", "read_table", "records_to_table",
                "resolve_conflicts", "write_table")

__all__ = ["ResultFileWarning", "SCHEMA_VERSION", "SkippedFile", "code_version", "make_record", "protocol_fingerprint",
           "read_result", "read_results", "result_path", "validate_record", "write_result", *_TABLE_NAMES]


def __getattr__(name: str):
    if name in _TABLE_NAMES:
        value = getattr(importlib.import_module("study.results.table"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too: `dir()`, `help()` and a notebook's tab completion list them before their first use."""
    return sorted({*globals(), *__all__})
