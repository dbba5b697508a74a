"""Experiment records: a small, committed copy of what a finished run found (write.py), the
differences between two records (diff.py) and a report rebuilt from one (report.py)."""

from .diff import diff_records, format_diff
from .write import MAX_BYTES, RecordError, read_manifest, write_record

__all__ = ["MAX_BYTES", "RecordError", "diff_records", "format_diff", "read_manifest",
           "write_record"]
