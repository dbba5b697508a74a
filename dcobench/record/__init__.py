"""Experiment records: a small, committed copy of what a finished run found (write.py), the
differences between two records (diff.py) and a report rebuilt from one (report.py).
Names are imported on first use, so `python -m dcobench <stage>` pays nothing for them."""

from __future__ import annotations

import importlib

_EXPORTS = {"diff_records": "diff", "format_diff": "diff", "RecordError": "write",
            "read_manifest": "write", "write_record": "write", "MAX_BYTES": "limits"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
