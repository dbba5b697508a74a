"""Figures rendered from aggregated tables: Pareto fronts (Fig 1/5/8/9) and qualitative sample
grids (training and analysis plots: training_figures.py). Every function writes `{out_stem}.png` and `{out_stem}.pdf`
deterministically (no dates or software versions in the files) and returns both paths."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from PIL import Image  # noqa: E402

from .aggregate import GUIDE, metric_info, select_cell  # noqa: E402
from .membership import PRETRAINED  # noqa: E402

DPI = 150
THUMB_PX = 256
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None},
}


def save_figure(fig: plt.Figure, out_stem: Path | str) -> list[Path]:
    """Save `fig` as png and pdf next to `out_stem` without timestamps; close it."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "dcobench", "pdf.compression": 6}):
        for ext in ("png", "pdf"):
            path = out_stem.with_name(out_stem.name + f".{ext}")
            fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=_METADATA[ext])
            paths.append(path)
    plt.close(fig)
    return paths


def variant_colors(variants: list[str]) -> dict[str, tuple]:
    """Stable colour per variant (tab10 over the sorted variant names)."""
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(variants)))}


def _pareto_points(sub: pd.DataFrame, x_metric: str, y_metric: str) -> pd.DataFrame:
    """One row per (variant, guidance setting) with x/y mean and CI bounds; `w` is the ω that
    labels the point (ω_rg for reward guidance, ω_text for cfg)."""
    sub = sub[sub["metric"].isin([x_metric, y_metric])]
    keys = ["variant", *GUIDE]
    wide = sub.pivot_table(index=keys, columns="metric", values=["mean", "ci_low", "ci_high"],
                           aggfunc="first", dropna=False)
    pts = pd.DataFrame({
        f"{stat}_{axis}": wide[(stat, metric)] if (stat, metric) in wide.columns else np.nan
        for axis, metric in (("x", x_metric), ("y", y_metric))
        for stat in ("mean", "ci_low", "ci_high")
    }).reset_index().dropna(subset=["mean_x", "mean_y"])
    pts["w"] = pts["w_rg"].where(pts["guidance"] == "rg", pts["w_text"])
    return pts


def _errorbar(ax, pts: pd.DataFrame, color, **kw) -> None:
    """Points with CI error bars in x and y."""
    xerr = np.vstack([pts["mean_x"] - pts["ci_low_x"], pts["ci_high_x"] - pts["mean_x"]])
    yerr = np.vstack([pts["mean_y"] - pts["ci_low_y"], pts["ci_high_y"] - pts["mean_y"]])
    ax.errorbar(pts["mean_x"], pts["mean_y"], xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr),
                color=color, ecolor=color, elinewidth=0.8, capsize=2, **kw)


def _plot_variant(ax, mpts: pd.DataFrame, variant: str, color) -> None:
    """One variant: the ω_rg curve (annotated), the CFG diamond; `pretrained` as a star."""
    if variant == PRETRAINED:
        _errorbar(ax, mpts, "black", fmt="*", markersize=11, label="pretrained (no fine-tuning)")
        return
    rg = mpts[mpts["guidance"] == "rg"].sort_values("w")
    if not rg.empty:
        _errorbar(ax, rg, color, fmt="-o", markersize=4, linewidth=1.4, label=variant)
        for _, row in rg.iterrows():
            ax.annotate(f"ω={row['w']:g}", (row["mean_x"], row["mean_y"]), fontsize=7,
                        color=color, xytext=(4, 3), textcoords="offset points")
    cfg = mpts[mpts["guidance"] == "cfg"]
    if not cfg.empty:
        _errorbar(ax, cfg, color, fmt="D", markersize=7, markeredgecolor="black",
                  markeredgewidth=0.6, label=None if not rg.empty else variant)


def pareto_figure(summary: pd.DataFrame, group: str, x_metric: str, y_metric: str,
                  out_stem: Path | str, experiment: str | None = None,
                  prompt_set: str | None = None, title: str | None = None) -> list[Path]:
    """Pareto plot of `y_metric` against `x_metric` for one (experiment, group, prompt_set)
    cell of the summary table (filters left None keep every row).

    Each variant is a curve through its reward-guidance points (guide "rg*", ordered by ω and
    annotated with ω); its CFG point is a diamond of the same colour; the `pretrained` variant
    is a single black star; error bars are the 95% bootstrap CIs in both directions.
    Returns [png, pdf].
    """
    sub = select_cell(summary, group, experiment, prompt_set)
    pts = _pareto_points(sub, x_metric, y_metric) if not sub.empty else sub
    if pts.empty:
        raise ValueError(f"pareto_figure: no rows for group {group!r}, experiment {experiment!r}, "
                         f"prompt set {prompt_set!r} with both {x_metric} and {y_metric}")
    colors = variant_colors([m for m in pts["variant"] if m != PRETRAINED])
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for variant, mpts in pts.groupby("variant", sort=True):
        _plot_variant(ax, mpts, variant, colors.get(variant))
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="gray", marker="D", linestyle="", markeredgecolor="black"),
                Line2D([], [], color="gray", marker="o", linestyle="-")]
    labels += ["CFG", "reward guidance (ω)"]
    ax.legend(handles, labels, fontsize=8, loc="best", frameon=False)
    ax.set_xlabel(metric_info(x_metric).label + _arrow(x_metric))
    ax.set_ylabel(metric_info(y_metric).label + _arrow(y_metric))
    default = f"{group}: {metric_info(y_metric).label} vs {metric_info(x_metric).label}"
    ax.set_title(title or default, fontsize=9)
    ax.grid(alpha=0.3, linewidth=0.5)
    return save_figure(fig, out_stem)


def _arrow(metric: str) -> str:
    """ " ↑" or " ↓" for the metric's better direction."""
    return " ↑" if metric_info(metric).higher_is_better else " ↓"


def _grid_slots(indexes: dict[str, pd.DataFrame], max_prompts: int,
                seed: int | None) -> list[tuple[int, int]]:
    """(prompt_index, seed) slots present in every folder: one per prompt (the given sample
    seed, or the smallest common one), up to `max_prompts` prompts evenly spread."""
    common = None
    for idx in indexes.values():
        slots = set(zip(idx["prompt_index"].astype(int), idx["seed"].astype(int), strict=True))
        common = slots if common is None else common & slots
    if seed is not None:
        common = {s for s in common if s[1] == seed}
    first_seed: dict[int, int] = {}
    for p, s in sorted(common):
        first_seed.setdefault(p, s)
    prompts = sorted(first_seed)
    if not prompts:
        raise ValueError("sample_grid: no (prompt_index, seed) shared by all sample folders")
    if len(prompts) > max_prompts:
        picks = np.linspace(0, len(prompts) - 1, max_prompts).round().astype(int)
        prompts = [prompts[i] for i in picks]
    return [(p, first_seed[p]) for p in prompts]


def _thumbnail(path: Path) -> np.ndarray:
    """RGB array of the image at `path`, shrunk to at most THUMB_PX on its long side."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        return np.asarray(img)


def column_title(prompt: str, prompt_index: int, seed: int, width: int = 30) -> str:
    """A grid column's header: the whole scoring prompt, wrapped (never cut), then its index and
    seed."""
    return "\n".join(textwrap.wrap(str(prompt), width)) + f"\n(prompt {prompt_index}, seed {seed})"


def sample_grid(sample_dirs: dict[str, Path], out_stem: Path | str, max_prompts: int = 4,
                seed: int | None = None, references: list[Path] | None = None) -> list[Path]:
    """Grid of generated samples: rows = variants (dict order), columns = prompts.

    Each value of `sample_dirs` is one guide folder with index.csv (file, prompt_index, seed,
    prompt, scoring_prompt, guide, guidance, w_rg, w_text). Every row shows the same (prompt_index, seed);
    `seed` picks the sample seed shown (None: the smallest shared one). Column titles are the
    whole scoring prompts, wrapped, with the prompt index and seed. `references`: the concept's
    reference images, shown one per row in a first column (what the subject / style should
    look like). Returns [png, pdf].
    """
    if not sample_dirs:
        raise ValueError("sample_grid: no sample folders given")
    indexes = {m: pd.read_csv(Path(d) / "index.csv") for m, d in sample_dirs.items()}
    slots = _grid_slots(indexes, max_prompts, seed)
    cells = {}
    for variant, idx in indexes.items():
        lookup = idx.set_index([idx["prompt_index"].astype(int), idx["seed"].astype(int)])
        for slot in slots:
            row = lookup.loc[slot]
            row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
            cells[variant, slot] = (row, _thumbnail(Path(sample_dirs[variant]) / row["file"]))
    first = next(iter(cells.values()))[1]
    cell_h = 2.0 * first.shape[0] / first.shape[1]
    refs = list(references or [])
    lead = 1 if refs else 0
    titles = [column_title(cells[next(iter(indexes)), s][0]["scoring_prompt"], *s) for s in slots]
    title_h = 0.13 * max(t.count("\n") + 1 for t in titles)  # inches of 7-pt header lines
    nrow, ncol = len(indexes), len(slots) + lead
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.0 * ncol + 0.6, cell_h * nrow + title_h + 0.4),
                             squeeze=False)
    for r, variant in enumerate(indexes):
        if refs:
            ax = axes[r, 0]
            ax.imshow(_thumbnail(refs[r % len(refs)]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("reference", fontsize=7)
        for c, slot in enumerate(slots):
            row, thumb = cells[variant, slot]
            ax = axes[r, c + lead]
            ax.imshow(thumb)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=7)
            if c == 0 and not refs:
                ax.set_ylabel(variant, fontsize=9)
        if refs:
            axes[r, 0].set_ylabel(variant, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_stem)
