"""Paper vs ours: every number in data/paper_values.csv next to our value, the delta and our
95% CI. Score metrics come from the aggregated summary (prompt set "all"); timing keys from
the benchmark JSON files (results/bench/*.json) when they exist."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .membership import ALL_PROMPTS

PAPER_COLUMNS = ["experiment", "source", "method_label", "variant", "metric", "value", "unit",
                 "note"]  # + optional "guide" (cfg | rg3 ...; empty or absent: every guide we ran)
# paper_values metric -> (benchmark file under results/bench, JSON key)
TIMING_KEYS = {
    "train_step_time_ratio": ("train.json", "dco_over_db"),
    "sample_time_ratio": ("sample.json", "rg_over_cfg"),
    "max_memory_allocated": ("train.json", "peak_memory_gib"),
}
OUT_COLUMNS = ["experiment", "source", "method_label", "variant", "metric", "guide", "paper",
               "ours", "delta", "ci_low", "ci_high", "n_concepts", "unit", "ours_from", "note"]
NOT_RUN = "not in this run"


def read_paper_values(path: Path | str) -> pd.DataFrame:
    """The paper-values table, checked: the columns, a numeric value and a source per row."""
    path = Path(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PAPER_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: paper values lack columns {missing}")
    if "guide" not in df.columns:
        df["guide"] = ""
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = df.index[values.isna() | (df["source"].str.strip() == "")].tolist()
    if bad:
        raise ValueError(f"{path}: rows {[i + 2 for i in bad]} need a numeric value and a source")
    return df.assign(value=values.astype(float))[PAPER_COLUMNS + ["guide"]]


def _summary_matches(summary: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """Summary rows for the paper row's variant / metric / guide on prompt set "all": from the
    paper row's experiment when we ran it, else from the first experiment that has them."""
    if summary.empty:
        return summary
    sub = summary[(summary["variant"] == row["variant"]) & (summary["metric"] == row["metric"])]
    if "prompt_set" in sub.columns:
        sub = sub[sub["prompt_set"] == ALL_PROMPTS]
    if row["guide"]:
        sub = sub[sub["guide"] == row["guide"]]
    if sub.empty or "experiment" not in sub.columns:
        return sub
    exps = sorted(set(sub["experiment"]))
    chosen = row["experiment"] if row["experiment"] in exps else exps[0]
    return sub[sub["experiment"] == chosen]


def _score_rows(row: pd.Series, summary: pd.DataFrame) -> list[dict]:
    """One output row per matching summary row (one per guide), or one "not run" row."""
    base = {c: row[c] for c in ("experiment", "source", "method_label", "variant", "metric",
                                "unit", "note")}
    base["paper"] = row["value"]
    matches = _summary_matches(summary, row)
    if matches.empty:
        return [{**base, "guide": row["guide"], "ours_from": NOT_RUN}]
    out = []
    for _, m in matches.sort_values("guide").iterrows():
        exp = m.get("experiment", "")
        out.append({**base, "guide": m["guide"], "ours": float(m["mean"]),
                    "delta": float(m["mean"]) - row["value"], "ci_low": float(m["ci_low"]),
                    "ci_high": float(m["ci_high"]), "n_concepts": int(m["n_concepts"]),
                    "ours_from": f"summary.csv, experiment {exp}, prompt set {ALL_PROMPTS}"})
    return out


def _timing_row(row: pd.Series, bench_dir: Path | None) -> dict:
    """Our value of a timing key from its benchmark JSON (no CI: one measurement)."""
    fname, key = TIMING_KEYS[row["metric"]]
    base = {c: row[c] for c in ("experiment", "source", "method_label", "variant", "metric",
                                "guide", "unit", "note")}
    base["paper"] = row["value"]
    path = Path(bench_dir) / fname if bench_dir is not None else None
    if path is None or not path.exists():
        return {**base, "ours_from": NOT_RUN + " (no results/bench/" + fname + ")"}
    bench = json.loads(path.read_text(encoding="utf-8"))
    value = bench.get(key)
    where = (f"{path.parent.name}/{fname}: {key} (device {bench.get('device')}, "
             f"model {bench.get('base_model') or bench.get('model')})")
    if value is None:
        return {**base, "ours_from": f"{where}: not measured"}
    return {**base, "ours": float(value), "delta": float(value) - row["value"],
            "ours_from": where}


def paper_vs_ours(paper: pd.DataFrame, summary: pd.DataFrame,
                  bench_dir: Path | str | None = None) -> pd.DataFrame:
    """Every paper value with our value, delta = ours − paper, our 95% CI over concepts and
    where our number comes from; rows we have no value for keep ours empty ("not in this
    run"). Score metrics with an empty guide list every guide we ran."""
    rows = []
    for _, row in paper.iterrows():
        if row["metric"] in TIMING_KEYS:
            rows.append(_timing_row(row, Path(bench_dir) if bench_dir else None))
        else:
            rows.extend(_score_rows(row, summary))
    out = pd.DataFrame(rows)
    for col in OUT_COLUMNS:
        if col not in out.columns:
            out[col] = float("nan")
    out["n_concepts"] = out["n_concepts"].astype("Int64")
    return out[OUT_COLUMNS]
