"""Layer 3, report: `study report GRID` -> results.parquet, the paper's figures (PNG, PDF) and tables (Markdown,
CSV, LaTeX), and index.html. `build_report(workdir, out, plan)` is the library entry point."""
from study.report.build import ReportSummary, build_report

__all__ = ["ReportSummary", "build_report"]
