"""Inference for pre-registered claims (protocol version 2, docs/claims.md): pure functions of
arrays.

- `cluster_t`: a paired effect's estimate, standard error and degrees of freedom with concepts
  as clusters: the delete-one-concept jackknife of the effect computed from concept means, with
  Student t on (concepts − 1) degrees of freedom. For an effect that is a mean (difference,
  log ratio, slope) this is exactly the t interval on the concepts' mean differences.
- Crossed designs (merge pairs `<subject>__<style>`): the two-way (subjects × styles) variance
  V_subject + V_style − V_pair (Cameron, Gelbach & Miller 2011), each a delete-one-level
  jackknife, on min(levels) − 1 degrees of freedom; with the styles fixed (a claim about the
  styles it names) the variance is the subjects' alone.
- `decide`: held / not held / inconclusive of one test against its bound (δ for superiority,
  −margin for non-inferiority) from one-sided p-values; `holm` adjusts a family of p-values.

Student t's CDF and quantile for integer degrees of freedom are computed here (the closed-form
series of Abramowitz & Stegun 26.7.3–4), so no SciPy is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"


# --- Student t -----------------------------------------------------------------------------


def t_cdf(t: np.ndarray | float, df: int) -> np.ndarray:
    """P(T ≤ t) for Student t with integer df ≥ 1 (exact finite series), elementwise."""
    if int(df) != df or df < 1:
        raise ValueError(f"t_cdf needs an integer df ≥ 1, got {df}")
    t = np.asarray(t, dtype=float)
    theta = np.arctan(np.abs(t) / np.sqrt(df))
    c2, s = np.cos(theta) ** 2, np.sin(theta)
    if df % 2:  # odd: (2/π)(θ + sinθ cosθ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + ...))
        term, total = np.ones_like(theta), np.ones_like(theta)
        for k in range(1, (df - 1) // 2):
            term = term * c2 * (2 * k) / (2 * k + 1)
            total = total + term
        inner = s * np.cos(theta) * total if df > 1 else 0.0
        a = 2.0 / np.pi * (theta + inner)
    else:  # even: sinθ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + ...)
        term, total = np.ones_like(theta), np.ones_like(theta)
        for k in range(1, df // 2):
            term = term * c2 * (2 * k - 1) / (2 * k)
            total = total + term
        a = s * total
    out = 0.5 + 0.5 * np.sign(t) * a  # a = P(|T| < |t|)
    return np.where(np.isnan(t), np.nan, np.where(np.isinf(t), (t > 0).astype(float), out))


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student t with integer df (bisection on t_cdf to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p}")
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


# --- the effect's standard error with concepts as clusters ----------------------------------


def _jackknife_var(
    groups: np.ndarray, means: np.ndarray, weights: np.ndarray, fn: Callable
) -> float:
    """Delete-one-level jackknife variance of fn(weighted mean of rows of `means`) over the
    levels of `groups` (one label per row): (G − 1)/G · Σ (θ_(g) − mean θ_(·))²."""
    levels = np.unique(groups)
    if len(levels) < 2:
        return float("nan")
    loo = []
    for g in levels:
        keep = groups != g
        w = weights[keep] / weights[keep].sum()
        loo.append(fn(w @ means[keep]))
    loo = np.asarray(loo, dtype=float)
    return float((len(levels) - 1) / len(levels) * ((loo - loo.mean()) ** 2).sum())


@dataclass(frozen=True)
class Estimate:
    """A test's effect, its standard error and the t degrees of freedom; clusters: the
    number of independent levels the df comes from (concepts, or the smaller crossed factor)."""

    effect: float
    se: float
    df: int
    clusters: int

    def interval(self, level: float) -> tuple[float, float]:
        """The two-sided `level` t interval effect ± t_{df, (1+level)/2}·se."""
        if self.df < 1 or not np.isfinite(self.se):
            return float("nan"), float("nan")
        half = t_quantile(0.5 + level / 2.0, self.df) * self.se
        return self.effect - half, self.effect + half

    def p_above(self, bound: float) -> float:
        """One-sided p-value of H0: effect ≤ bound (small: the effect is above the bound)."""
        return _p(self, bound, upper=True)

    def p_below(self, bound: float) -> float:
        """One-sided p-value of H0: effect ≥ bound (small: the effect is below the bound)."""
        return _p(self, bound, upper=False)


def _p(est: Estimate, bound: float, upper: bool) -> float:
    if est.df < 1 or not np.isfinite(est.se):
        return float("nan")
    if est.se == 0.0:
        above = est.effect > bound if upper else est.effect < bound
        return 0.0 if above else 1.0
    t = (est.effect - bound) / est.se
    return float(1.0 - t_cdf(t, est.df)) if upper else float(t_cdf(t, est.df))


def concept_means(values: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels (C,), per-concept column means (C, K)) of unit values (N, K), in first-seen order."""
    values = np.asarray(values, dtype=float).reshape(len(clusters), -1)
    labels = np.asarray(list(dict.fromkeys(clusters)))
    means = np.stack([values[clusters == c].mean(axis=0) for c in labels])
    return labels, means


def cluster_t(
    values: np.ndarray,
    clusters: np.ndarray,
    fn: Callable,
    crossed: bool = False,
    fixed_styles: bool = False,
) -> Estimate:
    """A paired effect with concepts as clusters: fn(mean over concepts of the concepts' column
    means) — every concept weighs the same — with its delete-one jackknife standard error.

    crossed: concepts are `<subject>__<style>` pairs; the variance is two-way (subjects and
    styles both random, df = min(subjects, styles) − 1), or with fixed_styles the subjects'
    alone (each subject's pairs resampled together, df = subjects − 1)."""
    labels, means = concept_means(values, clusters)
    weights = np.ones(len(labels))
    effect = fn(means.mean(axis=0))
    if not crossed:
        return Estimate(
            effect,
            float(np.sqrt(_jackknife_var(labels, means, weights, fn))),
            len(labels) - 1,
            len(labels),
        )
    parts = [str(x).split("__") for x in labels]
    if any(len(p) != 2 for p in parts):
        raise ValueError(f"a crossed design needs <subject>__<style> concepts, got {list(labels)}")
    subjects, styles = np.array([p[0] for p in parts]), np.array([p[1] for p in parts])
    v_subject = _jackknife_var(subjects, means, weights, fn)
    n_subjects, n_styles = len(set(subjects)), len(set(styles))
    if fixed_styles:
        return Estimate(effect, float(np.sqrt(v_subject)), n_subjects - 1, n_subjects)
    v_style = _jackknife_var(styles, means, weights, fn)
    v_pair = _jackknife_var(labels, means, weights, fn)
    var = v_subject + v_style - v_pair
    if not var > 0:  # the difference can be negative in small samples: drop the correction
        var = v_subject + v_style
    smaller = min(n_subjects, n_styles)
    return Estimate(effect, float(np.sqrt(var)), smaller - 1, smaller)


# --- verdicts and multiplicity ---------------------------------------------------------------


def decide(p_above: float, p_below: float, alpha: float) -> str:
    """held when H0 "effect ≤ bound" is rejected at alpha, not held when H0 "effect ≥ bound"
    is, else inconclusive (alpha = 0.025 with the 95% CI: held ⇔ CI low > bound, not held ⇔
    CI high < bound)."""
    if p_above < alpha:
        return HELD
    if p_below < alpha:
        return NOT_HELD
    return INCONCLUSIVE


def composite_p(p_above: np.ndarray, p_below: np.ndarray) -> tuple[float, float]:
    """A claim of k sub-tests (all must hold): p of "held" = max of the sub-tests' (the
    intersection–union test, level α without adjustment), p of "not held" = k · min of the
    sub-tests' (Bonferroni; Holm's first step), capped at 1."""
    p_above, p_below = np.asarray(p_above, float), np.asarray(p_below, float)
    return float(np.max(p_above)), float(min(1.0, len(p_below) * np.min(p_below)))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (step-down, monotone, capped at 1); NaN stays NaN and is not
    counted in the family."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out
