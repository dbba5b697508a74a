"""Aggregate long score tables into per-concept means, summaries with bootstrap CIs and paired
differences against the DCO reference variant, per experiment and prompt set.

Input: one long csv per sample folder (docs/INTERFACES.md, "Results files") with columns
exp, group, concept, variant, guide, guidance, w_rg, w_text, file, prompt_index, seed, metric,
value and
optionally prompt_set (absent in older files: "all"). Experiment membership (which
(group, concept, variant) cells belong to which experiment) comes from the DAG's plan
(``dcobench.experiments.Plan.membership``); without it every row belongs to its ``exp`` column.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dcobench.score.metrics import SCORERS, Scorer

from .membership import ALL_PROMPTS, assign_experiments, expand_prompt_sets

SCORE_COLUMNS = [
    "exp", "group", "concept", "variant", "guide", "guidance", "w_rg", "w_text",
    "file", "prompt_index", "seed", "metric", "value",
]
N_BOOTSTRAP = 1000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
REFERENCE_VARIANT = "dco"


def metric_info(name: str) -> Scorer:
    """The registered scorer of a metric (label, higher_is_better); unknown names fail."""
    return SCORERS[name]


def select_cell(summary: pd.DataFrame, group: str, experiment: str | None = None,
                prompt_set: str | None = None) -> pd.DataFrame:
    """Rows of one (experiment, group, prompt_set) cell; a None filter (or a table without
    that column, written before experiments / prompt sets existed) keeps every row."""
    keep = summary["group"] == group
    for col, val in (("experiment", experiment), ("prompt_set", prompt_set)):
        if val is not None and col in summary.columns:
            keep &= summary[col].astype(str) == str(val)
    return summary[keep]


def read_scores(score_files: Iterable[Path]) -> pd.DataFrame:
    """Concatenate long score csvs, checking the columns and normalising dtypes; a file
    without a prompt_set column gets prompt_set "all"."""
    from dcobench.io import verify_file

    frames = []
    for path in score_files:
        verify_file(path)  # refuses a score table changed or truncated after it was written
        df = pd.read_csv(path, dtype={"group": str, "concept": str, "variant": str,
                                      "guide": str, "guidance": str, "metric": str, "file": str,
                                      "prompt_set": str, "exp": str})
        missing = [c for c in SCORE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: score table lacks columns {missing}")
        if "prompt_set" not in df.columns:
            df["prompt_set"] = ALL_PROMPTS
        frames.append(df[SCORE_COLUMNS + ["prompt_set"]])
    if not frames:
        raise ValueError("aggregate: no score files given")
    scores = pd.concat(frames, ignore_index=True)
    scores["prompt_set"] = scores["prompt_set"].fillna(ALL_PROMPTS)
    for col in ("w_rg", "w_text"):
        scores[col] = pd.to_numeric(scores[col], errors="coerce").astype(float)
    scores["value"] = pd.to_numeric(scores["value"], errors="coerce").astype(float)
    scores["prompt_index"] = scores["prompt_index"].astype(int)
    scores["seed"] = scores["seed"].astype(int)
    return scores.dropna(subset=["value"])


def bootstrap_ci(values: np.ndarray, n_resamples: int = N_BOOTSTRAP,
                 seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values` (resampling the values themselves).

    With fewer than two values the interval collapses to the mean; the generator is seeded so
    the same input always gives the same interval.
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or np.all(values == values[0]):
        return mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_resamples, len(values)))
    means = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


CELL = ["experiment", "group", "prompt_set"]  # every aggregate is computed within one cell
GUIDE = ["guide", "guidance", "w_rg", "w_text"]  # a guidance setting, as sample index.csv has it


def per_concept_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and count of `value` per (experiment, group, prompt_set, concept, variant, guidance
    setting, metric)."""
    keys = CELL + ["concept", "variant", *GUIDE, "metric"]
    out = (scores.groupby(keys, dropna=False, sort=True)["value"]
           .agg(mean="mean", n="count").reset_index())
    return out[keys + ["mean", "n"]]


def _summarise(df: pd.DataFrame, keys: list[str], col: str, out_col: str) -> pd.DataFrame:
    """Mean over concepts of `col` with a bootstrap CI, per `keys` cell."""
    rows = []
    for key, cell in df.groupby(keys, dropna=False, sort=True):
        vals = cell[col].to_numpy(dtype=float)
        low, high = bootstrap_ci(vals)
        rows.append({**dict(zip(keys, key, strict=True)), out_col: float(vals.mean()),
                     "ci_low": low, "ci_high": high, "n_concepts": int(cell["concept"].nunique())})
    return pd.DataFrame(rows, columns=keys + [out_col, "ci_low", "ci_high", "n_concepts"])


def summarise(per_concept: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, group, prompt_set, variant, guide, guidance, w_rg, w_text, metric): mean of per-concept
    means, 95% bootstrap CI over concepts."""
    keys = CELL + ["variant", *GUIDE, "metric"]
    return _summarise(per_concept, keys, "mean", "mean")


def reference_variant(group: str, variants: Iterable[str], reference: str = REFERENCE_VARIANT) -> str | None:
    """The variant every other is compared to: `reference` itself, or for the merge group the
    merge variant whose name contains it (shortest name, then alphabetical); None if absent."""
    variants = sorted(set(variants))
    if reference in variants:
        return reference
    if group != "merge":
        return None
    candidates = sorted((m for m in variants if reference in m.lower()), key=lambda m: (len(m), m))
    return candidates[0] if candidates else None


def paired_differences(scores: pd.DataFrame, reference: str = REFERENCE_VARIANT) -> pd.DataFrame:
    """Variant minus reference on identical (experiment, group, prompt_set, concept, guide,
    metric, prompt_index, seed) slots; mean over slots per concept, then mean and bootstrap CI
    over concepts."""
    slot = CELL + ["concept", "guide", "metric", "prompt_index", "seed"]
    cell = (scores.groupby(slot + ["variant"], sort=True)
            .agg(value=("value", "mean"), guidance=("guidance", "first"), w_rg=("w_rg", "first"),
                 w_text=("w_text", "first")).reset_index())
    diffs = []
    for (_exp, group, _ps), gdf in cell.groupby(CELL, sort=True):
        ref = reference_variant(group, gdf["variant"], reference)
        if ref is None:
            continue
        ref_rows = gdf[gdf["variant"] == ref][slot + ["value"]].rename(columns={"value": "ref_value"})
        merged = gdf[gdf["variant"] != ref].merge(ref_rows, on=slot, how="inner")
        merged["diff"] = merged["value"] - merged["ref_value"]
        merged["reference"] = ref
        diffs.append(merged)
    keys = CELL + ["variant", "reference", *GUIDE, "metric"]
    cols = keys + ["mean_diff", "ci_low", "ci_high", "n_concepts", "n_pairs"]
    if not diffs:
        return pd.DataFrame(columns=cols)
    pairs = pd.concat(diffs, ignore_index=True)
    per_concept = (pairs.groupby(keys + ["concept"], dropna=False, sort=True)["diff"]
                   .agg(diff="mean", n_pairs="count").reset_index())
    out = _summarise(per_concept, keys, "diff", "mean_diff")
    n_pairs = per_concept.groupby(keys, dropna=False, sort=True)["n_pairs"].sum().to_numpy()
    out["n_pairs"] = n_pairs.astype(int)
    return out[cols]


def aggregate(score_files: list[Path], reference: str = REFERENCE_VARIANT,
              membership: Mapping[str, Mapping] | None = None) -> dict[str, pd.DataFrame]:
    """Read score tables and return {"per_concept", "summary", "paired"} DataFrames.

    per_concept: experiment, group, prompt_set, concept, variant, guide, guidance, w_rg,
                 w_text, metric, mean, n, higher_is_better
    summary:     experiment, group, prompt_set, variant, guide, guidance, w_rg, w_text, metric,
                 mean, ci_low, ci_high, n_concepts, higher_is_better
    paired:      experiment, group, prompt_set, variant, reference, guide, guidance, w_rg,
                 w_text, metric, mean_diff, ci_low, ci_high, n_concepts, n_pairs,
                 higher_is_better (variant − reference on the same prompt/seed slots)
    `membership` (experiment → {evaluated, pretrained, merges}; membership.py) assigns rows to
    experiments; None: the `exp` column. Rows in no experiment are left out. A metric's
    direction comes from its scorer's registration (dcobench.score.metrics).
    """
    scores, dropped = assign_experiments(read_scores(score_files), membership)
    if dropped:
        print(f"aggregate: {dropped} score rows belong to no experiment; left out",
              file=sys.stderr)
    if scores.empty:
        raise ValueError("aggregate: no score row belongs to any experiment of the membership")
    scores = expand_prompt_sets(scores)
    per_concept = per_concept_means(scores)
    tables = {"per_concept": per_concept, "summary": summarise(per_concept),
              "paired": paired_differences(scores, reference)}
    return {name: df.assign(higher_is_better=[SCORERS[m].higher_is_better for m in df["metric"]])
            for name, df in tables.items()}


def write_aggregates(score_files: list[Path], out_dir: Path, reference: str = REFERENCE_VARIANT,
                     membership: Mapping[str, Mapping] | None = None) -> dict[str, Path]:
    """Aggregate and write summary.csv, per_concept.csv, paired.csv into `out_dir`
    (each written atomically)."""
    from dcobench.io import write_text_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in aggregate(score_files, reference, membership).items():
        path = out_dir / f"{name}.csv"
        write_text_atomic(path, df.to_csv(index=False))
        paths[name] = path
    return paths
