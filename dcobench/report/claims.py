"""The report's claims section: the pre-registered claims (tables/claims.csv, written by
`dcobench claims`), one row per test, with each claim's registration commit, the paper's
section and number it comes from, each test's bound (δ or −margin) and the claim's adjusted
p-values; a revision is shown beside the claim it revises, with its reason, and both verdicts
stand. The verdict rule is protocol version 2's (docs/claims.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .html import Section


def _ci(low: float, high: float) -> str:
    return "" if pd.isna(low) or pd.isna(high) else f"[{low:+.3f}, {high:+.3f}]"


def _not_run_rows(table: pd.DataFrame) -> pd.DataFrame:
    """A claim none of whose tests ran: one row naming how many tests and the first missing arm."""
    out = []
    for _, tests in table.groupby("claim", sort=False):
        if (tests["verdict"] == "not run").all() and len(tests) > 1:
            row = tests.iloc[[0]].copy()
            note = str(row["note"].iloc[0]) if "note" in row else ""
            row["test"] = f"{len(tests)} tests; " + note.split(": ", 1)[-1]
            out.append(row)
        else:
            out.append(tests)
    return pd.concat(out, ignore_index=True) if out else table


def _text(row, column: str) -> str:
    value = getattr(row, column, "")
    return "" if pd.isna(value) else str(value)


def _statement(row) -> str:
    revises = _text(row, "revises")
    return f"{row.statement} (revises {revises}: {_text(row, 'reason')})" if revises else row.statement


def _test(row) -> str:
    """The test's label; a test that ran on fewer concepts than the run has names those left out."""
    note = _text(row, "note")
    return f"{row.test} [{note}]" if note.startswith("left out") else row.test


def _short(commit: str) -> str:
    """A commit as the report prints it: 7 hex digits, any flag kept ("abc1234 (changed since)")."""
    head, _, flag = commit.partition(" ")
    return (head[:7] if len(head) == 40 else head) + (f" {flag}" if flag else "")


def _number(row, column: str, fmt: str) -> str:
    value = getattr(row, column, float("nan"))
    return "" if value is None or pd.isna(value) else format(float(value), fmt)


def _p(row) -> str:
    """The claim's p-values of held / not held (Holm-adjusted for a primary claim)."""
    held, not_held = _number(row, "claim_p_held", ".3f"), _number(row, "claim_p_not_held", ".3f")
    return f"{held} / {not_held}" if held else ""


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    """tables/claims.csv as the report shows it: claim, statement (a revision names the claim it
    revises and why), primary/secondary, registration commit, the paper's section, test,
    effect, 95% CI, the test's bound, test verdict, claim verdict and its p-values (held /
    not held; the claim's columns only on its first row; a claim that did not run at all on
    one row). Columns a table of protocol version 1 lacks are left empty."""
    rows, seen = [], set()
    for r in _not_run_rows(table).itertuples(index=False):
        first = r.claim not in seen
        seen.add(r.claim)
        rows.append({
            "claim": r.claim if first else "",
            "statement": _statement(r) if first else "",
            "role": ("secondary" if bool(r.secondary) else "primary") if first else "",
            "registered": _short(_text(r, "claim_registered")) if first else "",
            "paper": _text(r, "paper_ref") if first else "",
            "test": _test(r),
            "effect": "" if pd.isna(r.effect) else f"{r.effect:+.4f}",
            "95% CI": _ci(r.ci_low, r.ci_high),
            "bound": _number(r, "bound", "+.3f"),
            "verdict": r.verdict,
            "claim verdict": r.claim_verdict if first else "",
            "p held / not held": _p(r) if first else "",
        })
    return pd.DataFrame(rows)


def claims_section(path: Path | None, caveat: str | None = None) -> Section | None:
    """The claims table and its registration commit; None when the run tests no claims.
    `caveat` (report.claims_caveat) is printed first, e.g. that the testbed is not yet valid."""
    if path is None:
        return None
    table = pd.read_csv(path, dtype={"registered": str, "claims_file": str, "claim_registered": str,
                                     "revises": str, "reason": str}, keep_default_na=True)
    commit = str(table["registered"].iloc[0]) if len(table) else "uncommitted"
    source = str(table["claims_file"].iloc[0]) if "claims_file" in table and len(table) else "?"
    claims = table.drop_duplicates("claim")
    counts = ", ".join(f"{n} {v}" for v, n in claims["claim_verdict"].value_counts().items())
    if "claim_registered" in claims:  # per claim: the commit that first registered it
        by_commit = claims.groupby(claims["claim_registered"].fillna("uncommitted"), sort=False)["claim"]
        registered = "; ".join(f"{len(ids)} at commit {c} ({', '.join(ids)})" if len(by_commit) > 1
                               else f"at commit {c}" for c, ids in by_commit)
        where = (f"Pre-registered in {source}: {registered}; the file last changed at {commit}. "
                 "A revision is a new claim beside the one it revises; both verdicts stand.")
    else:
        where = f"Pre-registered in {source} at commit {commit} (the commit that last changed the file)."
    intro = (f"{where} Claims: {counts}. Protocol version 2 (docs/claims.md): each effect is "
             "oriented so that the paper's claim predicts a large value; 95% CI: t interval "
             "on the concepts' mean effects (concepts as clusters, delete-one-concept "
             "jackknife, concepts − 1 df; merge pairs crossed subjects × styles, or over "
             "subjects with the styles fixed). A test's bound is +δ (superiority) or −margin "
             "(non-inferiority): held = CI above the bound; not held = CI below it; "
             "inconclusive = the CI contains it. A claim is held when every test is "
             "(intersection–union), not held when a test is after Bonferroni, both "
             "Holm-adjusted across the primary claims (p held / not held < 0.025); refused = "
             "fewer concepts than the protocol's minimum; not run = an arm (variant, guide, "
             "metric or analysis) is absent from this run.")
    if caveat:
        intro = f"Caveat: {caveat.strip()} {intro}"
    caption = ("One row per test; a claim is held only if every test is held, after the "
               "adjustment. registered: the commit that first registered the claim (flagged if the "
               "claim has changed since); paper: the section and number the claim comes from.")
    return Section("Our pre-registered claims (not a table of the paper)",
                   [(claims_display(table), caption)], intro=intro)
