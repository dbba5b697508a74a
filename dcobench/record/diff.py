"""`record diff A B`: what moved between two records, so a code change that shifts a published
figure shows in review. Three kinds of row, each naming what moved and its value in A and B:

- verdict: a test's verdict or a claim's adjusted verdict (claims.csv) differs;
- number: a summary mean (tables/summary.csv, keyed by experiment, group, prompt set, variant,
  guide, metric) or a claim test's effect moved by more than atol + rtol·|A|;
- only in A / only in B: a test or summary cell one record has and the other lacks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .write import read_manifest

SUMMARY_KEY = ["experiment", "group", "prompt_set", "variant", "guide", "metric"]
COLUMNS = ["kind", "what", "A", "B", "delta"]


def _read(record: Path, name: str) -> pd.DataFrame | None:
    path = Path(record) / "tables" / f"{name}.csv"
    return pd.read_csv(path, dtype={"experiment": str}) if path.exists() else None


def _indexed(table: pd.DataFrame | None, key: list[str], value: str) -> pd.Series:
    """value by "k1 / k2 / ..." label (an empty Series for a missing table)."""
    if table is None or table.empty:
        return pd.Series(dtype=object)
    cols = [k for k in key if k in table.columns]
    labels = table[cols].astype(str).agg(" / ".join, axis=1)
    return pd.Series(table[value].to_numpy(), index=labels).groupby(level=0).first()


def _presence(a: pd.Series, b: pd.Series, what: str) -> list[dict]:
    rows = [{"kind": "only in A", "what": f"{what}: {k}", "A": a[k], "B": None, "delta": None}
            for k in a.index.difference(b.index)]
    rows += [{"kind": "only in B", "what": f"{what}: {k}", "A": None, "B": b[k], "delta": None}
             for k in b.index.difference(a.index)]
    return rows


def _moved_text(a: pd.Series, b: pd.Series, what: str) -> list[dict]:
    both = a.index.intersection(b.index, sort=False)
    return [{"kind": "verdict", "what": f"{what}: {k}", "A": a[k], "B": b[k], "delta": None}
            for k in both if str(a[k]) != str(b[k])]


def _moved_numbers(a: pd.Series, b: pd.Series, what: str, atol: float, rtol: float) -> list[dict]:
    rows = []
    for k in a.index.intersection(b.index, sort=False):
        x, y = float(a[k]), float(b[k])
        if pd.isna(x) and pd.isna(y):
            continue
        if pd.isna(x) or pd.isna(y) or abs(y - x) > atol + rtol * abs(x):
            rows.append({"kind": "number", "what": f"{what}: {k}", "A": x, "B": y,
                         "delta": y - x})
    return rows


def claims_changes(a: pd.DataFrame | None, b: pd.DataFrame | None, atol: float,
                   rtol: float) -> list[dict]:
    """Verdicts per test and per claim, and effects, that differ between two claims tables."""
    rows = []
    va, vb = _indexed(a, ["claim", "test"], "verdict"), _indexed(b, ["claim", "test"], "verdict")
    rows += _moved_text(va, vb, "test verdict") + _presence(va, vb, "claim test")
    ca = _indexed(a, ["claim"], "claim_verdict") if a is not None and "claim_verdict" in a else None
    cb = _indexed(b, ["claim"], "claim_verdict") if b is not None and "claim_verdict" in b else None
    if ca is not None and cb is not None:
        rows += _moved_text(ca, cb, "claim verdict")
    ea, eb = _indexed(a, ["claim", "test"], "effect"), _indexed(b, ["claim", "test"], "effect")
    return rows + _moved_numbers(ea, eb, "effect", atol, rtol)


def diff_records(a: Path, b: Path, atol: float = 1e-6, rtol: float = 0.0) -> pd.DataFrame:
    """Every verdict and number that moved from record `a` to record `b` (COLUMNS)."""
    read_manifest(a), read_manifest(b)  # both must be records
    rows = claims_changes(_read(a, "claims"), _read(b, "claims"), atol, rtol)
    sa = _indexed(_read(a, "summary"), SUMMARY_KEY, "mean")
    sb = _indexed(_read(b, "summary"), SUMMARY_KEY, "mean")
    rows += _moved_numbers(sa, sb, "mean", atol, rtol) + _presence(sa, sb, "summary")
    return pd.DataFrame(rows, columns=COLUMNS)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{value:+.6g}" if isinstance(value, float) else str(value)


def format_diff(changes: pd.DataFrame, a: Path, b: Path, manifests: tuple[dict, dict]) -> str:
    """A readable report: the two records' commits and config hashes, then one line per change."""
    head = [f"A: {a}  commit {manifests[0]['git']['commit'][:12]}  "
            f"config {manifests[0]['config_hash'][:12]}",
            f"B: {b}  commit {manifests[1]['git']['commit'][:12]}  "
            f"config {manifests[1]['config_hash'][:12]}"]
    if changes.empty:
        return "\n".join(head + ["no verdict or number moved"]) + "\n"
    counts = changes["kind"].value_counts()
    head.append(", ".join(f"{n} {kind}" for kind, n in counts.items()) + " changed")
    shown = changes.copy()
    for c in ("A", "B", "delta"):
        shown[c] = shown[c].map(_fmt)
    left = {c: _left(shown[c], c) for c in ("kind", "what")}  # text reads left-aligned
    body = shown.to_string(index=False, formatters=left, justify="left")
    return "\n".join(head) + "\n\n" + body + "\n"


def _left(column: pd.Series, name: str):
    """A formatter padding every value of `column` (and its header) to one left-aligned width."""
    width = max([len(name), *column.astype(str).map(len)])
    return lambda value: f"{value!s:<{width}}"
