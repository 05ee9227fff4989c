"""Layer 3, results: one atomic JSON record per job and the tidy Parquet table (docs/architecture.md section 4)."""
from study.results.collect import (AGGREGATE_COLUMNS, AXES, Collection, aggregate, axis_columns, cell_columns, collect,
                                   drop_repeated_seeds, find_conflicts, gather, read_table, records_to_table,
                                   resolve_conflicts, write_table)
from study.results.record import (SCHEMA_VERSION, ResultFileWarning, SkippedFile, code_version, make_record,
                                  protocol_fingerprint, read_result, read_results, result_path, validate_record,
                                  write_result)

__all__ = [
    "AGGREGATE_COLUMNS", "AXES", "Collection", "ResultFileWarning", "SCHEMA_VERSION", "SkippedFile", "aggregate",
    "axis_columns", "cell_columns", "code_version", "collect", "drop_repeated_seeds", "find_conflicts", "gather",
    "make_record", "protocol_fingerprint", "read_result", "read_results", "read_table", "records_to_table",
    "resolve_conflicts", "result_path", "validate_record", "write_result", "write_table",
]
