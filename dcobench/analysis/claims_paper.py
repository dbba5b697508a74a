"""Do the claims say what the paper says? Each `difference` test of a claim predicts a direction
(superiority: a − b > 0; non-inferiority: a − b > −margin); where data/paper_values.csv has
the paper's number for both arms in one cell (same experiment, group, guide, prompt set and
metric: data/paper_values.csv holds one number per such cell and variant), the paper's own
difference is compared with that prediction.

A claim's arms are world variants; `paper_arms` maps them to the paper's variants (default: the
same name), and the oracle's metrics map to the proxies the paper reports (subject_acc → DINOv2,
style_acc → SigLIP image, prompt_acc → SigLIP text).
"""

from __future__ import annotations

import pandas as pd

from .claims import Protocol

PAPER_METRIC = {"subject_acc": "dino", "style_acc": "siglip_image", "prompt_acc": "siglip_text"}
COLUMNS = ["claim", "test", "hypothesis", "source", "prompt_set", "paper_metric", "paper_a",
           "paper_b", "paper_diff", "predicted_above", "agrees"]


def paper_directions(protocol: Protocol, paper: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim test, paper cell holding both its arms): the paper's a − b, the bound
    the claim predicts it is above (0, or −margin of the paper's metric, else of the claim's),
    and whether it is. Tests with no paper numbers have no rows."""
    rows = []
    for claim in protocol.claims:
        arms = dict(claim.paper_arms)
        for test in claim.tests:
            if test.kind != "difference":
                continue
            metric = PAPER_METRIC.get(test.metric, test.metric)
            pa, pb = arms.get(test.a, test.a), arms.get(test.b, test.b)
            cell = paper[(paper["metric"] == metric) & (paper["guide"] == test.guide)
                         & (paper["group"] == claim.group)]
            a = cell[cell["variant"] == pa].set_index(["experiment", "prompt_set"])
            b = cell[cell["variant"] == pb].set_index(["experiment", "prompt_set"])
            if test.hypothesis == "non_inferiority":
                bound = -protocol.margins.get(metric, protocol.margins[test.delta_key])
            else:
                bound = 0.0
            for key in a.index.intersection(b.index):
                va, vb = float(a.loc[key, "value"]), float(b.loc[key, "value"])
                sources = dict.fromkeys([a.loc[key, "source"], b.loc[key, "source"]])
                rows.append({"claim": claim.id, "test": test.label(),
                             "hypothesis": test.hypothesis, "source": "; ".join(sources),
                             "prompt_set": key[1], "paper_metric": metric,
                             "paper_a": va, "paper_b": vb, "paper_diff": va - vb,
                             "predicted_above": bound, "agrees": va - vb > bound})
    return pd.DataFrame(rows, columns=COLUMNS)
