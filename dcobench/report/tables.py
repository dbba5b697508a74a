"""Tables from aggregated scores, written as csv, markdown and booktabs LaTeX with small
self-contained renderers (no tabulate / jinja2 needed)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dcobench.score.metrics import SCORERS

from .aggregate import metric_info, select_cell

DIGITS = 3
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "±": r"$\pm$", "ω": r"$\omega$",
                  "Δ": r"$\Delta$", "−": "--", "≥": r"$\geq$", "≤": r"$\leq$"}


def _cell(value) -> str:
    """Text of one table cell: floats to DIGITS decimals, NaN empty."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{DIGITS}f}"
    return str(value)


def to_markdown(df: pd.DataFrame, caption: str = "") -> str:
    """GitHub-flavoured markdown table (numeric columns right-aligned) with an optional caption."""
    cols = [str(c) for c in df.columns]
    rows = [[_cell(v).replace("|", r"\|") for v in row] for row in df.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(c.replace("|", r"\|") for c in cols) + " |",
             "|" + "|".join("---:" if num else ":---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    return (f"Table: {caption}\n\n" + text) if caption else text


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and map arrows/±/ω to math symbols."""
    out = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))
    return "".join(_LATEX_SYMBOLS.get(ch, ch) for ch in out)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """booktabs table environment (needs \\usepackage{booktabs} in the preamble)."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns)
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [r"\begin{tabular}{" + align + "}", r"\toprule",
              " & ".join(latex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    for row in df.itertuples(index=False):
        lines.append(" & ".join(latex_escape(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, out_stem: Path | str, caption: str) -> list[Path]:
    """Write `df` as `{out_stem}.csv`, `.md` and `.tex` (caption in md and tex); return paths."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_name(out_stem.name + ext) for ext in (".csv", ".md", ".tex")]
    from dcobench.io import write_text_atomic  # whole or absent, even on a kill or full disk

    write_text_atomic(paths[0], df.to_csv(index=False))
    write_text_atomic(paths[1], to_markdown(df, caption))
    write_text_atomic(paths[2], to_latex(df, caption, label=f"tab:{out_stem.name}"))
    return paths


def guide_label(guidance: str, w: float) -> str:
    """Human label of a guidance setting: "cfg (ω=7.5)" (ω_text), "rg (ω=3)" (ω_rg)."""
    return guidance if math.isnan(w) else f"{guidance} (ω={w:g})"


def format_mean_ci(mean: float, low: float, high: float, digits: int = DIGITS) -> str:
    """"0.512 ± 0.013" with the CI half-width (max of both sides, robust to asymmetry)."""
    if pd.isna(mean):
        return ""
    half = max(mean - low, high - mean) if not (pd.isna(low) or pd.isna(high)) else float("nan")
    return f"{mean:.{digits}f}" if pd.isna(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def variant_table(summary: pd.DataFrame, group: str, metrics: list[str] | None = None,
                 experiment: str | None = None, prompt_set: str | None = None,
                 headers: dict[str, str] | None = None) -> pd.DataFrame:
    """Wide table for one (experiment, group, prompt_set) cell: one row per variant × guide (ω),
    one column per metric with "mean ± CI half-width" and ↑/↓ in the header (`headers` renames
    a metric's column). Rows: variants alphabetically, cfg first, then ω ascending; metric
    columns in registry (SCORERS) order unless `metrics` is given."""
    sub = select_cell(summary, group, experiment, prompt_set).copy()
    if sub.empty:
        raise ValueError(f"variant_table: no summary rows for group {group!r}, experiment "
                         f"{experiment!r}, prompt set {prompt_set!r}")
    present = list(dict.fromkeys(sub["metric"]))
    if metrics is None:
        metrics = [m for m in SCORERS if m in present] + sorted(set(present) - set(SCORERS.names()))
    sub["is_rg"] = sub["guidance"] == "rg"
    sub["w"] = sub["w_rg"].where(sub["is_rg"], sub["w_text"])
    rows = []
    for (variant, _is_rg, w, guidance), cell in sub.groupby(["variant", "is_rg", "w", "guidance"],
                                                          sort=True, dropna=False):
        row = {"variant": variant, "guide": guide_label(guidance, w)}
        by_metric = cell.set_index("metric")
        for m in metrics:
            info = metric_info(m)
            label = (headers or {}).get(m, info.label)
            header = f"{label} {'↑' if info.higher_is_better else '↓'}"
            if m in by_metric.index:
                r = by_metric.loc[m]
                row[header] = format_mean_ci(r["mean"], r["ci_low"], r["ci_high"])
            else:
                row[header] = ""
        rows.append(row)
    return pd.DataFrame(rows)


TABLE1_HEADERS = {"dino": "Subject fidelity (DINOv2)", "siglip_image": "Style fidelity (SigLIP)",
                  "siglip_text": "Text fidelity (SigLIP)"}


def merge_table(summary: pd.DataFrame, experiment: str | None = None,
                prompt_set: str | None = None) -> pd.DataFrame:
    """Paper Table 1: rows = merge variants (× guide), columns subject / style / text fidelity
    as "mean ± 95% CI half-width" over (subject, style) pairs."""
    return variant_table(summary, "merge", metrics=list(TABLE1_HEADERS), experiment=experiment,
                        prompt_set=prompt_set, headers=TABLE1_HEADERS)
