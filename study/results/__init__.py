"""Layer 3, results: one atomic JSON record per job and the tidy Parquet table (docs/architecture.md section 4).
A notebook takes the report's steps one by one (reports/README.md, "In a notebook"):

    from study.results import collect, drop_repeated_seeds, aggregate
    table = collect("runs")                      # every result of the workdir: a row per (job, metric)
    kept, repeats = drop_repeated_seeds(table)   # the newest job per seed, as the report keeps
    cells = aggregate(kept)                      # mean, std, count and seeds per cell and protocol fingerprint

The table half (study.results.table) loads pandas when one of its names is first used, not with a record's:
`study status` reads records only."""
from study.lazy import lazy_names
from study.results.record import (SCHEMA_VERSION, ResultFileWarning, SkippedFile, code_version, make_record,
                                  protocol_fingerprint, read_result, read_results, result_path, validate_record,
                                  write_result)

_TABLE_NAMES = ("AGGREGATE_COLUMNS", "AXES", "Collection", "aggregate", "axis_columns", "cell_columns", "collect",
                "drop_repeated_seeds", "find_conflicts", "gather", "read_table", "records_to_table",
                "resolve_conflicts", "write_table")

__all__ = ["ResultFileWarning", "SCHEMA_VERSION", "SkippedFile", "code_version", "make_record", "protocol_fingerprint",
           "read_result", "read_results", "result_path", "validate_record", "write_result", *_TABLE_NAMES]

__getattr__, __dir__ = lazy_names(__name__, "study.results.table", _TABLE_NAMES, __all__)
