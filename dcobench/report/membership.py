"""Which score rows belong to which experiment, and which prompt set each row counts in.

Membership comes from the DAG's plan (``dcobench.experiments.Plan.experiments``): an experiment
owns the (kind, concept, variant) cells it evaluates, the (kind, concept) cells whose pretrained
model it samples (variant ``pretrained``, CFG only) and the (subject, style, merge) cells it
merges. A cell shared by several experiments (subject/dog/dco in fig1, fig8a and fig8b) counts
in each.

Prompt sets: rows are pooled into ``all`` and, where a group of an experiment holds more than
one prompt-set family, also kept per family (Fig 9a customization vs 9b stylization must not
be averaged together). A family is the set name without its object_/live_ prefix
(object_customization and live_customization are both "customization").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from dcobench.experiments import PRETRAINED

ALL_PROMPTS = "all"  # pooled prompt set; also the prompt_set of files written before the column
_FAMILY_OF = {"object": "dreambooth", "live": "dreambooth"}


def prompt_family(name) -> str:
    """Family of a prompt-set name: object_/live_ prefix dropped, object|live → dreambooth,
    empty / missing → "all"."""
    if name is None or pd.isna(name) or str(name).strip() == "":
        return ALL_PROMPTS
    name = str(name).strip()
    if name in _FAMILY_OF:
        return _FAMILY_OF[name]
    return re.sub(r"^(object|live)_", "", name)


def load_membership(spec: str | Path | None) -> dict | None:
    """Membership from a JSON string or a .json file path; None stays None."""
    if spec is None:
        return None
    text = str(spec)
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.exists():
            raise FileNotFoundError(f"--experiments: {path} is neither JSON nor an existing file")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--experiments: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError("--experiments: expected an object {experiment: {evaluated, pretrained, merges}}")
    return data


def membership_table(membership: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per (experiment, group, concept, variant) cell of the membership."""
    rows = []
    for name, part in membership.items():
        for item in part.get("evaluated", []):
            if len(item) != 3:
                raise ValueError(f"experiment {name!r}: evaluated entry {item!r} is not "
                                 "[kind, concept, variant]")
            rows.append((name, item[0], item[1], item[2]))
        for item in part.get("pretrained", []):
            if len(item) != 2:
                raise ValueError(f"experiment {name!r}: pretrained entry {item!r} is not "
                                 "[kind, concept]")
            rows.append((name, item[0], item[1], PRETRAINED))
        for item in part.get("merges", []):
            if len(item) != 3:
                raise ValueError(f"experiment {name!r}: merge entry {item!r} is not "
                                 "[subject, style, merge]")
            rows.append((name, "merge", f"{item[0]}__{item[1]}", item[2]))
    cols = ["experiment", "group", "concept", "variant"]
    return pd.DataFrame(rows, columns=cols).drop_duplicates(ignore_index=True)


def assign_experiments(scores: pd.DataFrame,
                       membership: Mapping[str, Mapping] | None) -> tuple[pd.DataFrame, int]:
    """Scores with an `experiment` column, each row repeated for every experiment it belongs
    to, and the number of rows that belong to none (dropped). Without membership the
    experiment is the row's `exp` column."""
    if membership is None:
        return scores.assign(experiment=scores["exp"].astype(str)), 0
    cells = membership_table(membership)
    out = scores.merge(cells, on=["group", "concept", "variant"], how="inner")
    assigned = scores.merge(out[["group", "concept", "variant"]].drop_duplicates(),
                            on=["group", "concept", "variant"], how="left", indicator=True)
    return out, int((assigned["_merge"] == "left_only").sum())


def expand_prompt_sets(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows pooled as prompt_set "all", plus per-family copies in every (experiment, group)
    holding more than one family. Expects columns experiment, group, prompt_set."""
    fam = scores.assign(prompt_set=[prompt_family(p) for p in scores["prompt_set"]])
    pooled = fam.assign(prompt_set=ALL_PROMPTS)
    n_fam = fam.groupby(["experiment", "group"])["prompt_set"].transform("nunique")
    split = fam[(n_fam > 1) & (fam["prompt_set"] != ALL_PROMPTS)]
    return pd.concat([pooled, split], ignore_index=True)
