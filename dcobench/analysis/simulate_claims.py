"""Monte-Carlo check of the claims' inference (docs/claims.md, "Simulation"): paired unit
differences with a known effect, concepts drawn at random, and the coverage and error rates of
protocol version 2's rule (the t interval on concept means, Holm, the composite rule), beside
protocol version 1's two-stage percentile bootstrap. Vectorized over replicates; seeded.

A unit difference is d = θ + b_concept + e_unit, b with SD `between` (normal, or two-point ±SD:
the world's all-or-nothing subjects), e ~ N(0, within²). For a crossed design (merge pairs)
d = θ + a_subject + c_style + e, a and c each with SD `between`.
"""

from __future__ import annotations

import numpy as np

from .inference import t_cdf, t_quantile


def concept_effects(
    rng: np.random.Generator, shape: tuple[int, ...], sd: float, kind: str = "normal"
) -> np.ndarray:
    """Concept effects with SD `sd`: normal, or two-point (±sd with probability ½ each)."""
    if kind == "normal":
        return rng.normal(0.0, sd, shape)
    if kind == "two_point":
        return sd * rng.choice([-1.0, 1.0], shape)
    raise ValueError(f"unknown between-concept distribution {kind!r}")


def simulate_units(
    rng: np.random.Generator,
    reps: int,
    concepts: int,
    per_concept: int,
    theta: float,
    between: float,
    within: float,
    kind: str = "normal",
) -> np.ndarray:
    """Unit differences (reps, concepts, per_concept) around the true effect theta."""
    b = concept_effects(rng, (reps, concepts, 1), between, kind)
    return theta + b + rng.normal(0.0, within, (reps, concepts, per_concept))


def simulate_crossed(
    rng: np.random.Generator,
    reps: int,
    subjects: int,
    styles: int,
    per_pair: int,
    theta: float,
    between: float,
    within: float,
    fixed_styles: np.ndarray | None = None,
) -> np.ndarray:
    """Pair differences (reps, S, T, n) of a crossed design: θ + a_subject + c_style + e; with
    fixed_styles (T,) the style effects are those constants in every replicate (centred, so
    that θ stays the effect averaged over the named styles)."""
    a = rng.normal(0.0, between, (reps, subjects, 1, 1))
    if fixed_styles is None:
        c = rng.normal(0.0, between, (reps, 1, styles, 1))
    else:
        c = (np.asarray(fixed_styles, float) - np.mean(fixed_styles))[None, None, :, None]
    return theta + a + c + rng.normal(0.0, within, (reps, subjects, styles, per_pair))


def t_on_concept_means(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Protocol 2's estimate for a mean effect: (effect (reps,), se (reps,), df) from unit
    differences (reps, C, n): the mean of concept means and their SD / √C, df = C − 1 (what
    inference.cluster_t gives for a mean; a unit test checks the two agree)."""
    m = d.mean(axis=2)
    c = m.shape[1]
    return m.mean(axis=1), m.std(axis=1, ddof=1) / np.sqrt(c), c - 1


def crossed_t(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Protocol 2's two-way estimate on a balanced grid of pair differences (reps, S, T, n):
    V_subject + V_style − V_pair (delete-one jackknife of a mean: var(level means)/levels),
    V_subject + V_style where the difference is not positive; df = min(S, T) − 1."""
    m = d.mean(axis=3)
    reps, s, t = m.shape
    v_s = m.mean(axis=2).var(axis=1, ddof=1) / s
    v_t = m.mean(axis=1).var(axis=1, ddof=1) / t
    v_p = m.reshape(reps, -1).var(axis=1, ddof=1) / (s * t)
    v = v_s + v_t - v_p
    v = np.where(v > 0, v, v_s + v_t)
    return m.mean(axis=(1, 2)), np.sqrt(v), min(s, t) - 1


def subject_t(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Protocol 2's estimate with the styles fixed, from (reps, S, T, n): the t interval on the
    subjects' means over their pairs, df = S − 1."""
    m = d.mean(axis=(2, 3))
    s = m.shape[1]
    return m.mean(axis=1), m.std(axis=1, ddof=1) / np.sqrt(s), s - 1


def p_above(effect: np.ndarray, se: np.ndarray, df: int, bound: float) -> np.ndarray:
    """One-sided p of H0: θ ≤ bound, elementwise."""
    return 1.0 - t_cdf((effect - bound) / se, df)


def p_below(effect: np.ndarray, se: np.ndarray, df: int, bound: float) -> np.ndarray:
    """One-sided p of H0: θ ≥ bound, elementwise."""
    return t_cdf((effect - bound) / se, df)


def coverage(
    effect: np.ndarray, se: np.ndarray, df: int, theta: float, level: float = 0.95
) -> float:
    """Share of replicates whose t interval holds the true effect."""
    half = t_quantile(0.5 + level / 2.0, df) * se
    return float(np.mean((effect - half < theta) & (theta < effect + half)))


def bootstrap_v1_coverage(
    rng: np.random.Generator, d: np.ndarray, theta: float, resamples: int, level: float = 0.95
) -> float:
    """Protocol 1's two-stage percentile bootstrap (concepts, then units within), its
    coverage over the replicates of d (reps, C, n); for comparison only."""
    reps, c, n = d.shape
    hits = 0
    alpha = (1.0 - level) / 2.0
    for r in range(reps):  # vectorized over resamples; one replicate at a time bounds memory
        pick = rng.integers(0, c, (resamples, c))
        units = rng.integers(0, n, (resamples, c, n))
        means = d[r][pick[:, :, None], units].mean(axis=(1, 2))
        low, high = np.quantile(means, [alpha, 1.0 - alpha])
        hits += low < theta < high
    return hits / reps


def composite_rates(
    rng: np.random.Generator,
    reps: int,
    concepts: int,
    per_concept: int,
    between: float,
    within: float,
    k: int,
    delta: float,
    alpha: float = 0.025,
    kind: str = "normal",
) -> dict[str, float]:
    """A claim of k independent sub-tests, each held at p_above < alpha, the claim held when
    every sub-test is (intersection–union) and not held when k · min p_below < alpha:
    false not held with every sub-test at its bound θ = δ (the worst case: a true claim at
    its boundary), false held with one sub-test at θ = δ and the others far above it."""
    out = {}
    for case, thetas in (
        ("all_at_bound", [delta] * k),
        ("one_at_bound", [delta] + [delta + 10 * between + 1.0] * (k - 1)),
    ):
        pa, pb = [], []
        for theta in thetas:
            e, s, df = t_on_concept_means(
                simulate_units(rng, reps, concepts, per_concept, theta, between, within, kind)
            )
            pa.append(p_above(e, s, df, delta))
            pb.append(p_below(e, s, df, delta))
        pa, pb = np.stack(pa), np.stack(pb)
        held = (pa.max(axis=0) < alpha).mean()
        not_held = (np.minimum(1.0, k * pb.min(axis=0)) < alpha).mean()
        out[case] = {"held": float(held), "not_held": float(not_held)}
    return {
        "false_not_held": out["all_at_bound"]["not_held"],
        "false_held": max(out["all_at_bound"]["held"], out["one_at_bound"]["held"]),
    }


def holm_family_rate(
    rng: np.random.Generator,
    reps: int,
    claims: int,
    concepts: int,
    per_concept: int,
    between: float,
    within: float,
    delta: float,
    alpha: float = 0.025,
) -> float:
    """Across `claims` primary claims all at their bound: the rate of one or more false
    "held" after Holm's adjustment (familywise error)."""
    p = []
    for _ in range(claims):
        e, s, df = t_on_concept_means(
            simulate_units(rng, reps, concepts, per_concept, delta, between, within)
        )
        p.append(p_above(e, s, df, delta))
    p = np.sort(np.stack(p), axis=0)  # (claims, reps)
    factors = (claims - np.arange(claims))[:, None]
    adjusted = np.maximum.accumulate(factors * p, axis=0)
    return float((adjusted < alpha).any(axis=0).mean())


def mc_error(rate: float, reps: int) -> float:
    """The Monte-Carlo standard error of a simulated rate."""
    return float(np.sqrt(rate * (1.0 - rate) / reps))


def figures(reps: int = 20_000, seed: int = 0) -> list[dict]:
    """The table of docs/claims.md ("Simulation"): coverage and error rates of protocol 2 at
    the world's figures (between SD 0.3, within 0.1, 26 images per concept) and in the
    homogeneous and all-or-nothing cases; each rate with its Monte-Carlo standard error."""
    rng, rows, delta = np.random.default_rng(seed), [], 0.02
    for kind, between in (("normal", 0.3), ("homogeneous", 0.0), ("two_point", 0.3)):
        for c in (2, 3, 4, 5, 6, 8):
            dist = "normal" if kind == "homogeneous" else kind
            e, s, df = t_on_concept_means(
                simulate_units(rng, reps, c, 26, delta, between, 0.1, dist)
            )
            rows.append(
                {
                    "design": f"{kind}, {c} concepts",
                    "coverage": coverage(e, s, df, delta),
                    "false_held": float(np.mean(p_above(e, s, df, delta) < 0.025)),
                    "false_not_held": float(np.mean(p_below(e, s, df, delta) < 0.025)),
                }
            )
    for label, subj, sty, fixed in (
        ("crossed 4×2, styles fixed", 4, 2, np.array([0.3, -0.3])),
        ("crossed 4×4, two-way", 4, 4, None),
        ("crossed 8×4, two-way", 8, 4, None),
    ):
        d = simulate_crossed(rng, reps, subj, sty, 26, delta, 0.3, 0.1, fixed)
        e, s, df = subject_t(d) if fixed is not None else crossed_t(d)
        rows.append(
            {
                "design": label,
                "coverage": coverage(e, s, df, delta),
                "false_held": float(np.mean(p_above(e, s, df, delta) < 0.025)),
                "false_not_held": float(np.mean(p_below(e, s, df, delta) < 0.025)),
            }
        )
    for row in rows:
        row["mc_se"] = mc_error(0.95, reps)
    return rows


if __name__ == "__main__":  # python -m dcobench.analysis.simulate_claims: the docs' table
    for r in figures():
        print(
            f"| {r['design']} | {r['coverage']:.3f} | {r['false_held']:.3f} | "
            f"{r['false_not_held']:.3f} |"
        )
