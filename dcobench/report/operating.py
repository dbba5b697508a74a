"""The report's DCO operating-point part: per DCO run a figure (rolling σ, β·T·d per timestep
band), one table of the saturation rule's reading of every DCO run, and a warning (in the
report and the log) for each run whose σ saturated early while ℓ(θ) stayed flat."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dcobench.train import operating_point as op

from .training_figures import operating_point_figure, read_train_log

log = logging.getLogger("dcobench")


def rule_table(logs: dict[tuple[str, str, str], pd.DataFrame]) -> pd.DataFrame:
    """One row per DCO run: where σ saturated, the early limit, ℓ(θ)'s fall, the warning."""
    rows = []
    for key, frame in logs.items():
        rule = op.saturation(frame)
        if rule is None:
            continue
        rows.append({"run": "/".join(key), "steps": int(frame["step"].max()),
                     "max rolling σ": rule.max_sigma, "saturated at step": rule.saturated_at,
                     "early until step": rule.early_until, "ℓ(θ) fall after": rule.theta_drop,
                     "warning": "σ saturated early, ℓ(θ) flat" if rule.warn else ""})
    return pd.DataFrame(rows)


def operating_point_items(train_logs: dict[tuple[str, str, str], Path], figs: Path,
                          inline: int) -> list:
    """Warnings first, then the rule's table, then the figures (all written to
    figures/operating_point/, the first `inline` embedded)."""
    frames = {key: read_train_log(p) for key, p in train_logs.items()}
    dco = {key: f for key, f in frames.items() if op.sigma_column(f) is not None}
    if not dco:
        return []
    items = []
    for key, frame in dco.items():
        rule = op.saturation(frame)
        if rule is not None and rule.warn:
            message = rule.message("/".join(key))
            log.warning("%s", message)
            items.append((f"Warning: {message}.", ""))
    items.append((rule_table(dco), _table_caption()))
    pngs = [(key, operating_point_figure(train_logs[key], figs / "operating_point" / "_".join(key),
                                         "/".join(key))[0]) for key in dco]
    for key, png in pngs[:inline]:
        items.append((png, f"DCO operating point of {'/'.join(key)}: left, σ = σ(−β·T·d) as a "
                      "trailing rolling mean (dashed: saturation; dotted: the end of the early "
                      "period); right, β·T·d per timestep band, median and 10–90 % range, over "
                      "the early period and the rest (dashed: β·T·d where σ = "
                      f"{op.SIGMA_SATURATED}). The gradient weight is β·T·(1 − σ)."))
    if len(pngs) > inline:
        items.append((f"{len(pngs) - inline} more operating-point figures are in "
                      "figures/operating_point/ (report.loss_plots_inline limits how many are "
                      "embedded).", ""))
    return items


def _table_caption() -> str:
    return (f"DCO operating point per run (dcobench/train/operating_point.py): the first step "
            f"whose trailing rolling mean σ exceeds {op.SIGMA_SATURATED} (window: "
            f"{op.WINDOW_FRACTION:.0%} of the logged rows, ≥ {op.MIN_WINDOW}); early = within the "
            f"first {op.EARLY_FRACTION:.0%} of the steps; ℓ(θ)'s fall = 1 − its median over the "
            "last 10 % of the rows / its median over the 10 % ending at saturation. Warning when "
            f"σ saturated early and ℓ(θ) fell less than {op.FLAT_MAX_DROP:.0%}.")
