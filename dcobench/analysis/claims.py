"""Pre-registered claims (config/world_claims.yaml; the file's model and its checks are in
claims_spec.py): paired effects, their t intervals with concepts as clusters, and verdicts
against each test's bound, read from the ordinary score tables. The rule (protocol version 2)
is set out in docs/claims.md.

A test compares two arms (variants or merges at a guide) on units paired by
(concept, prompt_set, prompt_index, seed) — or (concept, timestep) for the noise distance —
and reduces to a per-unit matrix `values` (N, K) plus a function of its column means:

- difference:    K = 1, values = a − b
- log_ratio:     K = 1, values = log a − log b
- slope:         K = 1, values = the unit's least-squares slope of the metric on ω_rg
- frontier_area: K = 4·G, values = (x_a, y_a, x_b, y_b) per guide; effect = hypervolume of a's
                 mean curve − hypervolume of b's

Inference (inference.cluster_t): the effect of the mean over concepts of the concepts' column
means (every concept weighs the same), its delete-one-concept jackknife standard error and
Student t on concepts − 1 df; merge pairs `<subject>__<style>` are crossed: two-way variance,
df = min(subjects, styles) − 1, or the subjects' alone when the claim fixes its styles.
A test's bound is +δ (superiority: the claim predicts an effect of at least δ) or −margin
(non-inferiority: the claim predicts a is not worse than b by more than the margin).
Test verdict: held (95% CI low > bound), not held (CI high < bound), else inconclusive.
Claim verdict: held when every test is (intersection–union, p = max of the tests' one-sided
p-values), not held when k · min of the tests' "below" p-values < α (Bonferroni); across the
primary claims of a run both p-values are Holm-adjusted; α = (1 − level)/2 = 0.025 each way.
A test on fewer concepts (or, crossed, fewer levels of a random factor) than the protocol's
min_concepts is "refused"; a protocol-2 claim that names too few concepts fails to load.
A test whose arm is absent from the run is "not run", and so is its claim.
A concept on which some arm of a test was not run at all (a reduced plan) is left out of
that test and named in its note; a unit missing inside a kept concept is an error.
A claim's `concepts` restricts its units to those concepts (a revision tested on held-out
subjects); `revises` names the earlier claim it revises, which keeps its own verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dcobench.layout import SCORE_GLOBS_TEXT, Layout
from dcobench.sample.guides import Guide

from .claims_spec import (
    CLAIM_KEYS,
    HYPOTHESES,
    KINDS,
    MIN_CONCEPTS,
    Claim,
    MissingArm,
    Protocol,
    Test,
    load_protocol,
    parse_protocol,
    random_levels,
)
from .inference import HELD, INCONCLUSIVE, NOT_HELD, Estimate, cluster_t, composite_p, decide, holm

__all__ = [  # the claims file's model (claims_spec) is re-exported: cl.load_protocol, cl.Claim
    "CLAIM_KEYS", "HYPOTHESES", "KINDS", "MIN_CONCEPTS", "Claim", "MissingArm", "Protocol",
    "Test", "load_protocol", "parse_protocol", "random_levels", "HELD", "INCONCLUSIVE",
    "NOT_HELD", "NOT_RUN", "REFUSED", "UNIT", "ClaimResult", "read_score_tables",
    "read_world_scores", "hypervolume", "omega", "test_matrix", "estimate", "verdict", "combine",
    "evaluate_test", "evaluate", "claims_table", "claims_from_tables",
]


UNIT = ["concept", "prompt_set", "prompt_index", "seed"]
NOT_RUN, REFUSED = "not run", "refused"


# --- tables -------------------------------------------------------------------------------


def read_score_tables(files: list[str | Path]) -> pd.DataFrame:
    """The named score tables (one row per image and metric), one long frame."""
    if not files:
        raise FileNotFoundError("no score tables given")
    frames = [pd.read_csv(f, dtype={"concept": str, "variant": str, "guide": str, "metric": str,
                                    "prompt_set": str, "group": str}) for f in files]
    return pd.concat(frames, ignore_index=True)


def read_world_scores(results: str | Path) -> pd.DataFrame:
    """Every score table of a results folder (samples and merges), one long frame."""
    files = Layout(results).score_tables()
    if not files:
        raise FileNotFoundError(f"{results}: no score tables ({SCORE_GLOBS_TEXT})")
    return read_score_tables(files)


def _arm(scores: pd.DataFrame, claim: Claim, variant: str, guide: str, metric: str) -> pd.Series:
    sel = scores[(scores["group"] == claim.group) & (scores["variant"] == variant)
                 & (scores["guide"] == guide) & (scores["metric"] == metric)]
    if claim.prompt_sets:
        sel = sel[sel["prompt_set"].isin(claim.prompt_sets)]
    if claim.concepts:
        sel = sel[sel["concept"].isin(claim.concepts)]
    if sel.empty:
        raise MissingArm(f"claim {claim.id}: no {metric} scores for {variant} @ {guide} "
                         f"(group {claim.group}, prompt sets {list(claim.prompt_sets) or 'any'}"
                         + (f", concepts {list(claim.concepts)})" if claim.concepts else ")"))
    s = sel.set_index(UNIT)["value"]
    if s.index.duplicated().any():
        raise ValueError(f"claim {claim.id}: duplicated units for {variant} @ {guide} {metric}")
    return s


def _paired(claim: Claim, arms: dict[str, pd.Series]) -> tuple[pd.DataFrame, list[str]]:
    """Arms joined on their units, over the concepts every arm has, and the concepts left out
    (some arm has none of their units: a run that did not train that arm there). Within a kept
    concept, units missing from some arm are an error naming them (a broken run, not a plan)."""
    per_arm = [set(s.index.get_level_values(0)) for s in arms.values()]
    shared = set.intersection(*per_arm)
    left_out = sorted(set.union(*per_arm) - shared)
    if not shared:
        raise MissingArm(f"claim {claim.id}: no concept has every arm ({', '.join(arms)})")
    frame = pd.concat(arms, axis=1)
    frame = frame[frame.index.get_level_values(0).isin(shared)]
    bad = frame[frame.isna().any(axis=1)]
    if len(bad):
        raise ValueError(f"claim {claim.id}: {len(bad)} units are not in every arm, e.g. "
                         f"{bad.index[0]} missing from {[k for k in arms if pd.isna(bad.iloc[0][k])]}")
    return frame.sort_index(), left_out


def hypervolume(x: np.ndarray, y: np.ndarray) -> float:
    """Area of the union of rectangles [0, x_i] × [0, y_i] (2-D hypervolume, reference 0, 0)."""
    order = np.argsort(-np.asarray(x, dtype=float))
    area, best_y = 0.0, 0.0
    xs, ys = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        best_y = max(best_y, yi)
        next_x = xs[i + 1] if i + 1 < len(xs) else 0.0
        area += max(xi - next_x, 0.0) * best_y
    return float(area)


def omega(guide: str) -> float:
    """ω_rg of a guide name (Guide.parse, the one parser of guide names)."""
    w_rg = Guide.parse(guide).w_rg
    if w_rg is None:
        raise ValueError(f"slope tests need rg<ω> guides, got {guide!r}")
    return w_rg


def test_matrix(scores: pd.DataFrame, claim: Claim, test: Test,
                noise: pd.DataFrame | None = None) -> tuple[pd.DataFrame, Callable, list[str]]:
    """Per-unit values (index = units, first level = concept), fn(column means) -> effect, and
    the concepts left out because some arm was not run on them."""
    if claim.group == "noise_distance":
        if noise is None:
            raise MissingArm(f"claim {claim.id}: needs analysis/noise_distance.csv")
        if claim.concepts:
            noise = noise[noise["concept"].isin(claim.concepts)]
        arms = {v: noise[noise["variant"] == v].set_index(["concept", "timestep"])[test.metric]
                for v in (test.a, test.b)}
        absent = [v for v, s in arms.items() if s.empty]
        if absent:
            raise MissingArm(f"claim {claim.id}: no noise distance for {', '.join(absent)}")
        p, left_out = _paired(claim, arms)
        return pd.DataFrame({"v": np.log(p[test.a]) - np.log(p[test.b])}), lambda m: float(m[0]), left_out
    if test.kind in ("difference", "log_ratio"):
        p, left_out = _paired(claim, {v: _arm(scores, claim, v, test.guide, test.metric) for v in (test.a, test.b)})
        f = np.log if test.kind == "log_ratio" else (lambda s: s)
        return pd.DataFrame({"v": f(p[test.a]) - f(p[test.b])}), lambda m: float(m[0]), left_out
    if test.kind == "slope":
        p, left_out = _paired(claim, {g: _arm(scores, claim, test.a, g, test.metric) for g in test.guides})
        w = np.array([omega(g) for g in test.guides])
        wc = (w - w.mean()) / ((w - w.mean()) ** 2).sum()
        slopes = pd.DataFrame({"v": p[list(test.guides)].to_numpy() @ wc}, index=p.index)
        return slopes, lambda m: float(m[0]), left_out
    arms = {f"{v}|{g}|{m}": _arm(scores, claim, v, g, m)
            for v in (test.a, test.b) for g in test.guides for m in (test.x, test.y)}
    p, left_out = _paired(claim, arms)
    n = len(test.guides)

    def area_gap(means: np.ndarray) -> float:  # columns: a (g: x, y)..., then b
        a, b = means[: 2 * n].reshape(n, 2), means[2 * n:].reshape(n, 2)
        return hypervolume(a[:, 0], a[:, 1]) - hypervolume(b[:, 0], b[:, 1])

    return p, area_gap, left_out


# --- inference and verdicts -----------------------------------------------------------------


def estimate(protocol: Protocol, claim: Claim, table: pd.DataFrame, fn: Callable) -> Estimate:
    """The test's effect, standard error and df from its per-unit table (first index level =
    concept): inference.cluster_t, crossed for merge pairs."""
    clusters = np.asarray(table.index.get_level_values(0)).astype(str)
    return cluster_t(table.to_numpy(), clusters, fn, crossed=claim.group == "merge",
                     fixed_styles=claim.fixed_styles)


def verdict(low: float, high: float, bound: float) -> str:
    """A test's verdict from its 95% CI and its bound (+δ, or −margin for non-inferiority):
    held when the CI lies above the bound, not held when below it, else inconclusive."""
    if low > bound:
        return HELD
    if high < bound:
        return NOT_HELD
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """all_of, unadjusted (the tests' own verdicts): not run / refused if any test is; held if
    every test is held, not held if any is not held, else inconclusive. The claim's verdict
    in `evaluate` uses the adjusted p-values instead (claim_verdict)."""
    for status in (NOT_RUN, REFUSED):
        if status in verdicts:
            return status
    if all(v == HELD for v in verdicts):
        return HELD
    return NOT_HELD if NOT_HELD in verdicts else INCONCLUSIVE


@dataclass
class ClaimResult:
    claim: Claim
    rows: list[dict] = field(default_factory=list)  # one per test
    verdict: str = INCONCLUSIVE
    p_held: float = float("nan")  # intersection–union p (max over tests); Holm-adjusted if primary
    p_not_held: float = float("nan")  # k · min over tests; Holm-adjusted if primary


def _not_tested(claim: Claim, test: Test, status: str, note: str, **extra) -> dict:
    return {"claim": claim.id, "test": test.label(), "effect": np.nan, "se": np.nan, "df": np.nan,
            "ci_low": np.nan, "ci_high": np.nan, "bound": np.nan, "p_above": np.nan,
            "p_below": np.nan, "units": 0, "concepts": 0, "verdict": status, "note": note, **extra}


def evaluate_test(protocol: Protocol, claim: Claim, test: Test, scores: pd.DataFrame,
                  noise: pd.DataFrame | None = None) -> dict:
    """One test's row: effect, se, df, 95% CI, bound, one-sided p-values against the bound,
    its verdict (held / not held / inconclusive, or not run / refused) and a note."""
    try:
        table, fn, left_out = test_matrix(scores, claim, test, noise)
    except MissingArm as exc:
        return _not_tested(claim, test, NOT_RUN, str(exc))
    concepts = list(dict.fromkeys(table.index.get_level_values(0).astype(str)))
    note = f"left out (an arm not run there): {', '.join(left_out)}" if left_out else ""
    few = {f: n for f, n in random_levels(claim, concepts).items() if n < protocol.min_concepts}
    if few:
        why = (f"refused: {', '.join(f'{n} {f}s' for f, n in few.items())} < min_concepts "
               f"{protocol.min_concepts} (docs/claims.md)")
        return _not_tested(claim, test, REFUSED, "; ".join(x for x in (why, note) if x),
                           units=len(table), concepts=len(concepts))
    est = estimate(protocol, claim, table, fn)
    low, high = est.interval(protocol.level)
    bound = protocol.bound(test)
    return {"claim": claim.id, "test": test.label(), "effect": est.effect, "se": est.se,
            "df": est.df, "ci_low": low, "ci_high": high, "bound": bound,
            "p_above": est.p_above(bound), "p_below": est.p_below(bound), "units": len(table),
            "concepts": len(concepts), "verdict": verdict(low, high, bound), "note": note}


def evaluate(protocol: Protocol, scores: pd.DataFrame,
             noise: pd.DataFrame | None = None) -> list[ClaimResult]:
    """Every claim's tests and the claim's verdict: composite p-values per claim
    (intersection–union for held, Bonferroni for not held), Holm-adjusted across the primary
    claims that ran; a test whose arms are absent is "not run", one on too few concepts
    "refused" (NaN effect and CI, the reason in `note`), and so is its claim."""
    out = []
    for claim in protocol.claims:
        res = ClaimResult(claim, [evaluate_test(protocol, claim, t, scores, noise)
                                  for t in claim.tests])
        status = combine([r["verdict"] for r in res.rows])
        if status in (NOT_RUN, REFUSED):
            res.verdict = status
        else:
            res.p_held, res.p_not_held = composite_p([r["p_above"] for r in res.rows],
                                                     [r["p_below"] for r in res.rows])
        out.append(res)
    primary = [r for r in out if not r.claim.secondary]
    for key in ("p_held", "p_not_held"):
        adjusted = holm(np.array([getattr(r, key) for r in primary], dtype=float))
        for r, p in zip(primary, adjusted, strict=True):
            setattr(r, key, float(p))
    for r in out:
        if r.verdict not in (NOT_RUN, REFUSED):
            r.verdict = decide(r.p_held, r.p_not_held, protocol.alpha)
    return out


def claims_table(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per test, with its claim's statement, verdict and (adjusted) p-values."""
    rows = [{**r, "statement": res.claim.statement, "secondary": res.claim.secondary,
             "claim_verdict": res.verdict, "claim_p_held": res.p_held,
             "claim_p_not_held": res.p_not_held, "paper_ref": res.claim.paper_ref,
             "revises": res.claim.revises, "reason": res.claim.reason}
            for res in results for r in res.rows]
    return pd.DataFrame(rows)


def claims_from_tables(claims_file: str | Path, score_files: list[str | Path],
                       noise_distance: str | Path | None = None) -> pd.DataFrame:
    """The claims table of a run from the files its DAG declares (the `claims` rule): the
    claims file, the score tables and the noise-distance table (None: not run)."""
    protocol = load_protocol(claims_file)
    noise = pd.read_csv(noise_distance, dtype={"concept": str, "variant": str}) \
        if noise_distance else None
    return claims_table(evaluate(protocol, read_score_tables(score_files), noise))
