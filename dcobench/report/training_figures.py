"""Training-loss plots (one per run and an overview per variant), DCO's operating point per
run (rolling σ, β·T·d per timestep band) and the analysis figures:
noise distance per timestep (Fig 8c) and LoRA column cosine per layer (Fig 10). Each writes
png + pdf through figures.save_figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dcobench.train import operating_point as op

from .figures import plt, save_figure, variant_colors

LOSS_COMPONENTS = {  # train_log.csv column -> legend label (plotted where not all NaN)
    "loss_theta": "ℓ(θ) fine-tuned",
    "loss_phi": "ℓ(φ) pretrained (DCO reference)",
    "loss_prior": "prior term (DB+p.p.)",
}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with a shrinking window at the ends."""
    series = pd.Series(np.asarray(values, dtype=float))
    return series.rolling(window, center=True, min_periods=1).mean().to_numpy()


def loss_figure(train_logs: dict[str, Path], out_stem: Path | str) -> list[Path]:
    """Training loss vs step per run (raw, faint, and smoothed over ~2% of the steps)."""
    if not train_logs:
        raise ValueError("loss_figure: no train logs given")
    colors = variant_colors(list(train_logs))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    positive = True
    for label, path in train_logs.items():
        log = pd.read_csv(path).sort_values("step")
        step, loss = log["step"].to_numpy(), log["loss"].to_numpy(dtype=float)
        positive &= bool(np.all(loss > 0))
        window = max(1, len(loss) // 50)
        ax.plot(step, loss, color=colors[label], alpha=0.2, linewidth=0.6)
        ax.plot(step, smooth(loss, window), color=colors[label], linewidth=1.4, label=label)
    return _finish_loss(fig, ax, positive, "loss (smoothed)", 8, out_stem)


def read_train_log(path: Path) -> pd.DataFrame:
    """A train_log.csv sorted by step; clear error when it lacks step / loss."""
    log = pd.read_csv(path)
    missing = [c for c in ("step", "loss") if c not in log.columns]
    if missing:
        raise ValueError(f"{path}: train log lacks columns {missing}")
    return log.sort_values("step")


def run_loss_figure(train_log: Path, out_stem: Path | str, title: str = "") -> list[Path]:
    """One training run: the loss (raw, faint, and smoothed over ~2% of the steps) and, where
    the objective logs them, ℓ(θ), ℓ(φ) and the prior term, smoothed, on a second panel."""
    log = read_train_log(Path(train_log))
    step = log["step"].to_numpy()
    window = max(1, len(log) // 50)
    parts = {c: lab for c, lab in LOSS_COMPONENTS.items()
             if c in log.columns and log[c].notna().any()}
    fig, axes = plt.subplots(1, 2 if parts else 1, figsize=(9.5 if parts else 5.5, 3.4),
                             squeeze=False)
    ax = axes[0, 0]
    loss = log["loss"].to_numpy(dtype=float)
    ax.plot(step, loss, color="C0", alpha=0.25, linewidth=0.6, label="loss")
    ax.plot(step, smooth(loss, window), color="C0", linewidth=1.4, label="loss (smoothed)")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.set_title(title or Path(train_log).parent.name, fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, linewidth=0.5)
    if parts:
        ax2 = axes[0, 1]
        for i, (col, label) in enumerate(parts.items()):
            ax2.plot(step, smooth(log[col].to_numpy(dtype=float), window), color=f"C{i + 1}",
                     linewidth=1.2, label=label)
        ax2.set_xlabel("training step")
        ax2.set_ylabel("per-sample diffusion loss (smoothed)")
        ax2.legend(fontsize=8, frameon=False)
        ax2.grid(alpha=0.3, linewidth=0.5)
    fig.tight_layout()
    return save_figure(fig, out_stem)


def mean_loss_curves(train_logs: dict[tuple[str, str, str], Path]) -> dict[str, pd.DataFrame]:
    """"kind/variant" → DataFrame(step, loss, n_runs): the loss averaged over the concepts
    trained with that kind and variant, on the steps they share."""
    by_label: dict[str, list[pd.DataFrame]] = {}
    for (kind, _concept, variant), path in sorted(train_logs.items()):
        log = read_train_log(Path(path))[["step", "loss"]]
        by_label.setdefault(f"{kind}/{variant}", []).append(log)
    out = {}
    for label, logs in by_label.items():
        both = pd.concat(logs, ignore_index=True)
        stats = both.groupby("step", sort=True)["loss"].agg(loss="mean", n_runs="count")
        out[label] = stats[stats["n_runs"] == len(logs)].reset_index()
    return out


def loss_overview_figure(train_logs: dict[tuple[str, str, str], Path],
                         out_stem: Path | str) -> list[Path]:
    """Training loss vs step per (kind, variant), averaged over concepts and smoothed; the
    per-run curves are run_loss_figure's."""
    if not train_logs:
        raise ValueError("loss_overview_figure: no train logs given")
    curves = mean_loss_curves(train_logs)
    colors = variant_colors(list(curves))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    positive = True
    for label, df in curves.items():
        loss = df["loss"].to_numpy(dtype=float)
        positive &= bool(np.all(loss > 0))
        n = int(df["n_runs"].iloc[0]) if len(df) else 0
        ax.plot(df["step"], smooth(loss, max(1, len(loss) // 50)), color=colors[label],
                linewidth=1.4, label=f"{label} (n={n})")
    return _finish_loss(fig, ax, positive, "loss, mean over concepts (smoothed)", 7, out_stem)


def _finish_loss(fig, ax, log_scale: bool, ylabel: str, fontsize: int, out_stem) -> list[Path]:
    """Axes, legend and grid of a loss plot (log y when every loss is positive); save it."""
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=fontsize, frameon=False)
    ax.grid(alpha=0.3, linewidth=0.5)
    return save_figure(fig, out_stem)


def operating_point_figure(train_log: Path, out_stem: Path | str, title: str = "") -> list[Path]:
    """One DCO run's operating point (train.operating_point): left, the trailing rolling
    mean σ against the step, with the saturation level and the end of the early period; right,
    β·T·d's 10/50/90 % quantiles per timestep band, over the early period and over the rest
    (at batch size 1 each row is one sample's t and β·T·d; logs without t skip the panel)."""
    log = read_train_log(Path(train_log))
    rolled = op.rolling_sigma(log)
    if rolled is None:
        raise ValueError(f"{train_log}: no σ column: not a DCO train log")
    rule = op.saturation(log)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    ax.plot(log["step"], rolled, color="C0", linewidth=1.4,
            label=f"σ, trailing mean of {op.window_size(len(log))} rows")
    ax.axhline(op.SIGMA_SATURATED, color="C3", linewidth=0.8, linestyle="--",
               label=f"saturated: σ > {op.SIGMA_SATURATED}")
    ax.axvline(op.EARLY_FRACTION * log["step"].max(), color="grey", linewidth=0.8, linestyle=":",
               label=f"first {op.EARLY_FRACTION:.0%} of the steps")
    if rule is not None and rule.saturated_at is not None:
        ax.plot([rule.saturated_at], [op.SIGMA_SATURATED], "o", color="C3", markersize=4)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("σ(−β·T·d)")
    ax.set_title(title or Path(train_log).parent.name, fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.grid(alpha=0.3, linewidth=0.5)
    _margin_bands(ax2, log)
    fig.tight_layout()
    return save_figure(fig, out_stem)


def _margin_bands(ax, log: pd.DataFrame) -> None:
    """β·T·d quantiles per timestep band (5 bands of [0, T)), early rows vs the rest."""
    if not {"t", "beta_T_d"} <= set(log.columns) or log["beta_T_d"].isna().all():
        ax.text(0.5, 0.5, "t / β·T·d not logged\n(a log from before they were)",
                ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_axis_off()
        return
    top = 1000.0 if log["t"].max() < 1000 else float(log["t"].max()) + 1
    edges = np.linspace(0.0, top, 6)
    band = np.clip(np.digitize(log["t"].to_numpy(dtype=float), edges) - 1, 0, 4)
    early = log["step"].to_numpy() <= op.EARLY_FRACTION * log["step"].max()
    for k, (rows, label) in enumerate(((early, f"first {op.EARLY_FRACTION:.0%} of steps"),
                                       (~early, "the rest"))):
        for b in range(5):
            values = log["beta_T_d"].to_numpy(dtype=float)[rows & (band == b)]
            if len(values) == 0:
                continue
            lo, mid, hi = np.quantile(values, [0.1, 0.5, 0.9])
            x = (edges[b] + edges[b + 1]) / 2 + (k - 0.5) * 0.15 * (edges[1] - edges[0])
            ax.errorbar([x], [mid], yerr=[[mid - lo], [hi - mid]], fmt="o", color=f"C{k}",
                        markersize=3, capsize=2, label=label)
    ax.axhline(-np.log(op.SIGMA_SATURATED / (1 - op.SIGMA_SATURATED)), color="C3",
               linewidth=0.8, linestyle="--", label=f"σ = {op.SIGMA_SATURATED}")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xticks(edges)
    ax.set_xlabel("timestep t (band)")
    ax.set_ylabel("β·T·d: 10 / 50 / 90 % quantiles")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False)
    ax.grid(alpha=0.3, linewidth=0.5)


def noise_distance_figure(csv: Path, out_stem: Path | str) -> list[Path]:
    """Noise distance vs timestep per variant (Fig 8c): mean over concepts, band = 95% normal CI
    over concepts when there are several. Plots ‖ε_θ − ε_φ‖² summed over the latent elements
    (the quantity §5.4 names) when the table has it, else the per-element mean; the y label
    says which."""
    df = pd.read_csv(csv)
    column = "distance_sum" if "distance_sum" in df.columns else "distance"
    colors = variant_colors(list(df["variant"]))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for variant, mdf in df.groupby("variant", sort=True):
        stats = mdf.groupby("timestep", sort=True)[column].agg(["mean", "std", "count"])
        t = stats.index.to_numpy()
        ax.plot(t, stats["mean"], color=colors[variant], linewidth=1.4, label=variant)
        if (stats["count"] > 1).any():
            half = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
            ax.fill_between(t, stats["mean"] - half, stats["mean"] + half,
                            color=colors[variant], alpha=0.2, linewidth=0)
    ax.set_xlabel("timestep t")
    ax.set_ylabel(NOISE_DISTANCE_LABELS[column])
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, linewidth=0.5)
    return save_figure(fig, out_stem)


NOISE_DISTANCE_LABELS = {
    "distance_sum": r"$\|\epsilon_\theta - \epsilon_\phi\|_2^2$ (sum over latent elements)",
    "distance": r"mean of $(\epsilon_\theta - \epsilon_\phi)^2$ per latent element",
}


def lora_cosine_figure(csv: Path, out_stem: Path | str) -> list[Path]:
    """Per-layer mean |cosine| between subject and style LoRA columns (Fig 10): one bar per
    layer and variant, averaged over (subject, style) pairs; layers in UNet order. The signed
    mean sits near 0 for any pair of LoRAs whose column signs are arbitrary, so the magnitude
    is what tells alignment apart; the signed value stays in the table (lora_cosine_table)."""
    df = pd.read_csv(csv)
    variants = sorted(df["variant"].unique())
    colors = variant_colors(variants)
    stats = df.groupby(["layer", "variant"], sort=False)["mean_abs_cos"].mean().unstack("variant")
    fig, ax = plt.subplots(figsize=(max(5.5, 0.08 * len(stats) * len(variants)), 3.6))
    x, width = np.arange(len(stats)), 0.8 / len(variants)
    for i, variant in enumerate(variants):
        ax.bar(x + i * width, stats[variant].to_numpy(), width, color=colors[variant], label=variant)
    ax.set_xlabel("LoRA layer (down → mid → up)")
    ax.set_ylabel("mean |column cosine| (subject, style)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, linewidth=0.5, axis="y")
    return save_figure(fig, out_stem)


def lora_cosine_table(csv: Path) -> pd.DataFrame:
    """Per variant and UNet block: signed mean cosine and mean |cosine| over layers and
    (subject, style) pairs, and the number of layers."""
    df = pd.read_csv(csv)
    out = (df.groupby(["variant", "block"], sort=True)
           .agg(mean_cos=("mean_cos", "mean"), mean_abs_cos=("mean_abs_cos", "mean"),
                layers=("layer", "nunique")).reset_index())
    return out
