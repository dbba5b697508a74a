"""A report rebuilt from a record alone: its tables (a results folder's layout), its claims,
its bench timings and its reduced sample grids, through report/build.py's `build_report`.
Training losses and analyses' figures are not in a record, so their section is absent."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from dcobench.report.build import ReportOptions, build_report

from .write import read_manifest

PAPER_VALUES = Path(__file__).resolve().parents[2] / "data" / "paper_values.csv"


def report_from_record(record: Path, out: Path, title: str | None = None,
                       paper_values: Path | None = PAPER_VALUES) -> Path:
    """Render `record`'s report to `out` (html). The record is read only: the report's own
    figures and tables are written to a scratch copy of its tables, then dropped."""
    record = Path(record)
    manifest = read_manifest(record)
    with tempfile.TemporaryDirectory(prefix="record-report-") as scratch:
        exp = Path(scratch) / manifest.get("experiment", "record")
        shutil.copytree(record / "tables", exp / "tables")
        claims = exp / "tables" / "claims.csv"
        bench = record / "bench"
        opts = ReportOptions(
            exp_dir=exp, out=Path(out),
            title=title or f"dcobench record {record} (commit {manifest['git']['commit'][:12]})",
            claims=claims if claims.exists() else None,
            paper_values=paper_values, bench_dir=bench if bench.is_dir() else None,
            grid_dir=record / "images" if (record / "images").is_dir() else None)
        return build_report(opts)
