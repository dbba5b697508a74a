"""DCO's operating point read from train_log.csv: early σ saturation, and β calibration.

DCO's loss is −log σ(−β·T·d) with d = ℓ(θ) − ℓ(φ); its gradient with respect to ℓ(θ) is
β·T·(1 − σ). Once θ beats φ by a margin large against 1/(β·T), σ → 1 and the gradient
vanishes: DCO stops learning whatever the steps left. The rule here says when that happened
early in a run while ℓ(θ) stopped falling (the report's warning), and `calibrate` reads a
short sweep over β and recommends the largest β that does not saturate (docs/beta.md).
Pure pandas: no torch, no plotting (the figure is report.training_figures').
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# σ above which DCO counts as saturated: the gradient weight β·T·(1 − σ) is then ≤ 1/5 of its
# value at the start (σ = 1/2), and falling exponentially in the margin (σ = 0.9 at β·T·d =
# −ln 9 ≈ −2.2); issue 38's world runs sat at σ > 0.9 with weights 10⁴–10⁸ times below the start.
SIGMA_SATURATED = 0.9
# "early": within the first 10 % of the run's steps. Saturating there leaves ≥ 90 % of the
# steps with a vanishing gradient; the world's β·T = 1000 runs saturated by step 500 of 7000.
EARLY_FRACTION = 0.10
# σ is averaged over a trailing window of 2 % of the logged rows (the loss plots' smoothing),
# and at least 10 rows: at batch size 1 each row is one sample at one random t, and one row
# with σ > 0.9 says nothing about the run.
WINDOW_FRACTION = 0.02
MIN_WINDOW = 10
# ℓ(θ) "stays flat" when its median over the last stretch of the run is less than 10 % below
# its median over the stretch that ended at the saturation step (both stretches: 10 % of the
# rows, ≥ MIN_WINDOW). Medians, because ℓ(θ) at one random t varies by an order of magnitude
# with t; a fall under 10 % is within the scatter of such medians at the demo's lengths, i.e.
# no learning that the log can show after σ saturated.
FLAT_MAX_DROP = 0.10


def sigma_column(log: pd.DataFrame) -> pd.Series | None:
    """σ per row (the `sigma` column, else 1 − `one_minus_sigma`); None for a DB log."""
    if "sigma" in log.columns and log["sigma"].notna().any():
        return log["sigma"].astype(float)
    if "one_minus_sigma" in log.columns and log["one_minus_sigma"].notna().any():
        return 1.0 - log["one_minus_sigma"].astype(float)
    return None


def window_size(rows: int) -> int:
    """Rows in σ's trailing rolling mean (WINDOW_FRACTION of the rows, ≥ MIN_WINDOW)."""
    return max(MIN_WINDOW, math.ceil(WINDOW_FRACTION * rows))


def rolling_sigma(log: pd.DataFrame) -> pd.Series | None:
    """Trailing rolling mean of σ over `window_size` rows; NaN until the window is full (a
    trailing mean, so the step a value is shown at has seen no later row)."""
    sigma = sigma_column(log)
    if sigma is None:
        return None
    return sigma.rolling(window_size(len(log)), min_periods=window_size(len(log))).mean()


@dataclass(frozen=True)
class Saturation:
    """The rule's reading of one DCO log (steps are train_log.csv's `step`)."""

    saturated_at: int | None  # first step whose rolling mean σ > SIGMA_SATURATED
    early_until: float  # EARLY_FRACTION × the last step
    theta_drop: float | None  # 1 − median ℓ(θ) at the end / median ℓ(θ) at saturation
    max_sigma: float  # the largest rolling mean σ of the run

    @property
    def early(self) -> bool:
        return self.saturated_at is not None and self.saturated_at <= self.early_until

    @property
    def flat(self) -> bool:
        return self.theta_drop is not None and self.theta_drop < FLAT_MAX_DROP

    @property
    def warn(self) -> bool:
        """σ saturated early and ℓ(θ) did not fall by FLAT_MAX_DROP afterwards."""
        return self.early and self.flat

    def message(self, name: str) -> str:
        moved = (f"fell {self.theta_drop:.1%}, < {FLAT_MAX_DROP:.0%}" if self.theta_drop >= 0
                 else f"rose {-self.theta_drop:.1%}")
        return (f"{name}: DCO's σ saturated early (rolling mean σ > {SIGMA_SATURATED} at step "
                f"{self.saturated_at}, within the first {EARLY_FRACTION:.0%} of the steps) and "
                f"ℓ(θ) stayed flat afterwards (its median {moved}): the gradient weight "
                "β·T·(1 − σ) vanished, so the rest of the run learned little; β is too large "
                "for this model and lr (docs/beta.md)")


def saturation(log: pd.DataFrame) -> Saturation | None:
    """The saturation rule on one train log; None for a DB log or one shorter than a window."""
    log = log.sort_values("step").reset_index(drop=True)
    rolled = rolling_sigma(log)
    if rolled is None or rolled.notna().sum() == 0:
        return None
    steps = log["step"].to_numpy()
    over = np.flatnonzero(rolled.to_numpy() > SIGMA_SATURATED)
    first = int(over[0]) if len(over) else None
    drop = None
    if first is not None and "loss_theta" in log.columns:
        k = max(MIN_WINDOW, math.ceil(EARLY_FRACTION * len(log)))
        theta = log["loss_theta"].astype(float)
        at = theta.iloc[max(0, first - k + 1):first + 1].median()
        end = theta.iloc[-k:].median()
        drop = float(1.0 - end / at) if at > 0 else None
    return Saturation(saturated_at=None if first is None else int(steps[first]),
                      early_until=EARLY_FRACTION * float(steps[-1]), theta_drop=drop,
                      max_sigma=float(rolled.max()))


def beta_t_of(log: pd.DataFrame) -> float:
    """β·T of the run, read back from its own log: β·T·d / d on rows with d ≠ 0 (both are the
    batch means of the same d); NaN when the log lacks β·T·d or every d is 0."""
    if "beta_T_d" not in log.columns or "d" not in log.columns:
        return math.nan
    rows = log[(log["d"].abs() > 0) & log["beta_T_d"].notna()]
    return float((rows["beta_T_d"] / rows["d"]).median()) if len(rows) else math.nan


def _beta_of(path: Path) -> float:
    """β from the manifest.json beside a train log (the trainer writes both); NaN without."""
    manifest = path.parent / "manifest.json"
    if not manifest.exists():
        return math.nan
    return float(json.loads(manifest.read_text()).get("options", {}).get("beta", math.nan))


def read_sweep(paths, until: float | None = None) -> pd.DataFrame:
    """One row per train log of a β sweep: its β (manifest) and β·T (the log itself), its first
    saturation step and largest rolling mean σ up to step `until` (None: the whole log), and
    the median β·T·d there. A log that ends before `until` is refused: too short to say."""
    rows = []
    for path in (Path(p) for p in paths):
        log = pd.read_csv(path).sort_values("step")
        if until is not None:
            if log["step"].max() < until:
                raise ValueError(f"{path}: ends at step {log['step'].max()}, before the "
                                 f"calibration span's {until:g}; run it longer")
            log = log[log["step"] <= until]
        if sigma_column(log) is None:
            raise ValueError(f"{path}: no σ column: not a DCO train log")
        rolled = rolling_sigma(log)
        over = log["step"].to_numpy()[np.flatnonzero(rolled.to_numpy() > SIGMA_SATURATED)]
        rows.append({"log": str(path), "beta": _beta_of(path), "beta_T": beta_t_of(log),
                     "steps": int(log["step"].max()), "max_rolling_sigma": float(rolled.max()),
                     "saturated_at": int(over[0]) if len(over) else None,
                     "median_beta_T_d": float(log["beta_T_d"].median())
                     if "beta_T_d" in log.columns else math.nan})
    return pd.DataFrame(rows)


def calibrate(sweep: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """Per β·T of `read_sweep`'s rows (several logs each: concepts, seeds): logs, how many
    saturated, the largest rolling mean σ and the median of the logs' median β·T·d; and the
    recommended β·T: the largest β·T that — with every smaller β·T of the sweep — saturated in
    none of its logs (a saturated β·T below an unsaturated one is noise the sweep cannot
    outvote, so it stops the walk); None when the smallest β·T saturates already."""
    if sweep["beta_T"].isna().any():
        raise ValueError("some logs have no β·T (no beta_T_d column, or d = 0 throughout): "
                         "calibrate from logs of this version's trainer")
    key = sweep["beta_T"].round(6)
    table = (sweep.assign(beta_T=key, saturated=sweep["saturated_at"].notna())
             .groupby("beta_T", sort=True)
             .agg(beta=("beta", "first"), logs=("log", "count"), saturated=("saturated", "sum"),
                  first_saturation=("saturated_at", "min"),
                  max_rolling_sigma=("max_rolling_sigma", "max"),
                  median_beta_T_d=("median_beta_T_d", "median"))
             .reset_index())
    best = None
    for row in table.itertuples():
        if row.saturated:
            break
        best = float(row.beta_T)
    table["recommended"] = table["beta_T"] == best
    return table, best
