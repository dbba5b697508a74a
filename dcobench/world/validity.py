"""The world testbed's validity check, measured with the pretrained model and DB runs alone.

The world is a valid testbed for the paper's claims only if DB learns the subject
(`subject_acc` ≥ 0.8 on prompts in the references' contexts, set `world_context`) and DB's
`prompt_acc` on novel contexts (set `world_novel`) is at least 0.15 below the pretrained
model's on the same prompts and seeds: the trade-off the paper is about exists. Both are read
from the ordinary long score tables (CFG folder), pooled over every subject scored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

MIN_SUBJECT_ACC = 0.8  # DB's subject_acc in the references' contexts
MIN_PROMPT_DROP = 0.15  # pretrained − DB prompt_acc on novel contexts
CONTEXT_SET, NOVEL_SET = "world_context", "world_novel"
PRETRAINED = "pretrained"


def read_subject_scores(score_root: str | Path, guide: str = "cfg") -> pd.DataFrame:
    """Every subject score table `<root>/subject/<concept>/<variant>/<guide>.csv`, concatenated."""
    files = sorted(Path(score_root).glob(f"subject/*/*/{guide}.csv"))
    if not files:
        raise FileNotFoundError(f"{score_root}: no subject/<concept>/<variant>/{guide}.csv score tables")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def _mean(scores: pd.DataFrame, variant: str, prompt_set: str, metric: str,
          concepts: list[str]) -> float:
    sel = scores[(scores["variant"] == variant) & (scores["prompt_set"] == prompt_set)
                 & (scores["metric"] == metric) & scores["concept"].isin(concepts)]
    return float(sel["value"].mean()) if len(sel) else float("nan")


def validity_table(scores: pd.DataFrame, variants: list[str] | None = None) -> pd.DataFrame:
    """One row per DB variant: the subjects it and the pretrained model were both scored on,
    pretrained and DB prompt_acc on novel contexts, their drop, DB subject_acc in the
    references' contexts, and whether both gates pass."""
    pre = set(scores.loc[scores["variant"] == PRETRAINED, "concept"])
    variants = variants or sorted(set(scores["variant"]) - {PRETRAINED})
    rows = []
    for v in variants:
        concepts = sorted(pre & set(scores.loc[scores["variant"] == v, "concept"]))
        if not concepts:
            continue
        p_pre = _mean(scores, PRETRAINED, NOVEL_SET, "prompt_acc", concepts)
        p_db = _mean(scores, v, NOVEL_SET, "prompt_acc", concepts)
        s_ctx = _mean(scores, v, CONTEXT_SET, "subject_acc", concepts)
        rows.append({"variant": v, "subjects": len(concepts),
                     "pretrained_prompt_acc_novel": p_pre, "db_prompt_acc_novel": p_db,
                     "prompt_acc_drop": p_pre - p_db, "db_subject_acc_context": s_ctx,
                     "pretrained_subject_acc_context": _mean(scores, PRETRAINED, CONTEXT_SET,
                                                             "subject_acc", concepts),
                     "db_subject_acc_novel": _mean(scores, v, NOVEL_SET, "subject_acc", concepts),
                     "valid": bool(s_ctx >= MIN_SUBJECT_ACC and p_pre - p_db >= MIN_PROMPT_DROP)})
    return pd.DataFrame(rows)
