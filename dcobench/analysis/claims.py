"""Pre-registered claims (config/world_claims.yaml): paired effects, cluster-bootstrap CIs and
verdicts, read from the ordinary score tables.

A test compares two arms (variants or merges at a guide) on units paired by
(concept, prompt_set, prompt_index, seed) — or (concept, timestep) for the noise distance —
and reduces to a per-unit matrix `values` (N, K) plus a function of its column means, so one
bootstrap serves every kind:

- difference:    K = 1, values = a − b
- log_ratio:     K = 1, values = log a − log b
- slope:         K = 1, values = the unit's least-squares slope of the metric on ω_rg
- frontier_area: K = 4·G, values = (x_a, y_a, x_b, y_b) per guide; effect = hypervolume of a's
                 mean curve − hypervolume of b's

Bootstrap (two-stage, paired): per resample, draw C concepts with replacement
(`rng.integers(0, C, C)`), then for each drawn concept in order draw its n units with
replacement (`rng.integers(0, n, n)`); the effect of the pooled resample; 95% CI = percentiles.
Verdicts: held (CI low > 0), not held (CI high < 0, or the CI inside (−δ, δ)), inconclusive.
A test whose arm (variant, guide, metric or the noise-distance table) is absent from the run is
"not run", and so is its claim: a reduced run (the demo) lists every claim without crashing.
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

from dcobench.yamlio import load_yaml

UNIT = ["concept", "prompt_set", "prompt_index", "seed"]
KINDS = ("difference", "log_ratio", "slope", "frontier_area")
HELD, NOT_HELD, INCONCLUSIVE, NOT_RUN = "held", "not held", "inconclusive", "not run"


class MissingArm(ValueError):
    """An arm of a test is absent from the run's tables (the test is not run, not failed)."""


@dataclass(frozen=True)
class Test:
    """One paired comparison; the claim predicts a positive effect."""

    kind: str
    a: str
    b: str | None = None
    metric: str | None = None
    guide: str = "cfg"
    guides: tuple[str, ...] = ()
    x: str | None = None
    y: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"test kind {self.kind!r} is not one of {', '.join(KINDS)}")
        need = {"difference": ("b", "metric"), "log_ratio": ("b", "metric"),
                "slope": ("metric", "guides"), "frontier_area": ("b", "x", "y", "guides")}
        missing = [k for k in need[self.kind] if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.kind} test needs {', '.join(missing)}")

    @property
    def delta_key(self) -> str:
        return self.kind if self.kind in ("frontier_area", "slope", "log_ratio") else self.metric

    def label(self) -> str:
        if self.kind == "frontier_area":
            return f"area({self.a}) − area({self.b}) in ({self.x}, {self.y}), {'/'.join(self.guides)}"
        if self.kind == "slope":
            return f"slope of {self.metric} on ω_rg, {self.a}, {'/'.join(self.guides)}"
        op = "log " if self.kind == "log_ratio" else ""
        return f"{op}{self.metric}: {self.a} − {self.b}" + ("" if self.kind == "log_ratio" else f" @ {self.guide}")


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    group: str  # subject | style | merge | noise_distance
    tests: tuple[Test, ...]
    prompt_sets: tuple[str, ...] = ()
    experiment: str = ""
    secondary: bool = False
    combine: str = "all_of"
    concepts: tuple[str, ...] = ()  # only these concepts' units (empty: every concept of the group)
    revises: str = ""  # the id of the claim this one revises (a revision never replaces it)
    reason: str = ""  # why the revision (required with `revises`)


@dataclass(frozen=True)
class Protocol:
    claims: tuple[Claim, ...]
    deltas: dict[str, float]
    resamples: int = 10_000
    seed: int = 0
    level: float = 0.95
    source: str = ""


CLAIM_KEYS = {"id", "statement", "group", "tests", "prompt_sets", "experiment", "secondary",
              "combine", "note", "concepts", "revises", "reason"}


def load_protocol(path: str | Path) -> Protocol:
    """Parse and check a claims file; ValueError naming the file and the claim."""
    return parse_protocol(load_yaml(path), str(path))  # strict: a key given twice is refused


def parse_protocol(raw: dict, source: str) -> Protocol:
    """A claims file's parsed yaml as a Protocol; `source` names it in errors. A revision
    (`revises: <id>`) must name an earlier claim and say why (`reason`)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: not a mapping of bootstrap, delta and claims")
    boot, deltas, claims = raw.get("bootstrap") or {}, raw.get("delta") or {}, []
    for i, c in enumerate(raw.get("claims") or []):
        where = f"{source}: claims[{i}] ({c.get('id', '?') if isinstance(c, dict) else '?'})"
        if not isinstance(c, dict):
            raise ValueError(f"{where}: a claim is a mapping, got {c!r}")
        unknown = sorted(set(c) - CLAIM_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (known: {', '.join(sorted(CLAIM_KEYS))})")
        try:
            tests = tuple(Test(**{k: tuple(v) if k == "guides" else v for k, v in t.items()})
                          for t in c["tests"])
            claim = Claim(c["id"], c["statement"], c["group"], tests,
                          tuple(c.get("prompt_sets") or ()), c.get("experiment", ""),
                          bool(c.get("secondary", False)), c.get("combine", "all_of"),
                          tuple(c.get("concepts") or ()), c.get("revises") or "",
                          str(c.get("reason") or "").strip())
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from exc
        if claim.combine != "all_of":
            raise ValueError(f"{where}: combine must be all_of, got {claim.combine!r}")
        if any(claim.id == earlier.id for earlier in claims):
            raise ValueError(f"{where}: the id {claim.id!r} is used twice")
        if claim.revises and not any(claim.revises == earlier.id for earlier in claims):
            raise ValueError(f"{where}: revises {claim.revises!r}, which is not an earlier claim id")
        if claim.revises and not claim.reason:
            raise ValueError(f"{where}: a revision needs a `reason`")
        for t in tests:
            if t.delta_key not in deltas:
                raise ValueError(f"{where}: no delta for {t.delta_key!r} in {source} (key delta)")
        claims.append(claim)
    if not claims:
        raise ValueError(f"{source}: no claims")
    return Protocol(tuple(claims), dict(deltas), int(boot.get("resamples", 10_000)),
                    int(boot.get("seed", 0)), float(boot.get("level", 0.95)), source)


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
    results = Path(results)
    files = sorted(results.glob("scores/*/*/*/*.csv")) + sorted(results.glob("merges/*/*/scores/*.csv"))
    if not files:
        raise FileNotFoundError(f"{results}: no score tables (scores/<group>/<concept>/<variant>/"
                                "<guide>.csv or merges/<pair>/<merge>/scores/<guide>.csv)")
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
    if not guide.startswith("rg"):
        raise ValueError(f"slope tests need rg<ω> guides, got {guide!r}")
    return float(guide[2:])


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


# --- bootstrap and verdicts -----------------------------------------------------------------


def cluster_bootstrap(values: np.ndarray, clusters: np.ndarray, fn: Callable, resamples: int,
                      seed: int, level: float) -> tuple[float, float, float]:
    """(effect, CI low, CI high): two-stage paired bootstrap (clusters, then units within)."""
    values = np.asarray(values, dtype=float).reshape(len(clusters), -1)
    labels = list(dict.fromkeys(clusters))
    members = [np.flatnonzero(clusters == c) for c in labels]
    rng = np.random.default_rng(seed)
    effects = np.empty(resamples)
    for r in range(resamples):
        picks = rng.integers(0, len(members), len(members))
        idx = np.concatenate([m[rng.integers(0, len(m), len(m))] for m in (members[i] for i in picks)])
        effects[r] = fn(values[idx].mean(axis=0))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(effects, [alpha, 1.0 - alpha])
    return fn(values.mean(axis=0)), float(low), float(high)


def verdict(low: float, high: float, delta: float) -> str:
    """held: CI above 0; not held: CI below 0 or inside (−δ, δ); else inconclusive."""
    if low > 0:
        return HELD
    if high < 0 or (-delta < low and high < delta):
        return NOT_HELD
    return INCONCLUSIVE


def combine(verdicts: list[str]) -> str:
    """all_of: not run if any test is not run; held if every test is held, not held if any is
    not held, else inconclusive."""
    if NOT_RUN in verdicts:
        return NOT_RUN
    if all(v == HELD for v in verdicts):
        return HELD
    return NOT_HELD if NOT_HELD in verdicts else INCONCLUSIVE


@dataclass
class ClaimResult:
    claim: Claim
    rows: list[dict] = field(default_factory=list)  # one per test
    verdict: str = INCONCLUSIVE


def evaluate(protocol: Protocol, scores: pd.DataFrame,
             noise: pd.DataFrame | None = None) -> list[ClaimResult]:
    """Every claim's tests (effect, CI, verdict) and the claim's verdict; a test whose arms
    are absent is "not run" (NaN effect and CI, the reason in `note`)."""
    out = []
    for claim in protocol.claims:
        res = ClaimResult(claim)
        for test in claim.tests:
            try:
                table, fn, left_out = test_matrix(scores, claim, test, noise)
            except MissingArm as exc:
                res.rows.append({"claim": claim.id, "test": test.label(), "effect": np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan, "units": 0, "concepts": 0,
                                 "verdict": NOT_RUN, "note": str(exc)})
                continue
            clusters = np.asarray(table.index.get_level_values(0))
            effect, low, high = cluster_bootstrap(table.to_numpy(), clusters, fn,
                                                  protocol.resamples, protocol.seed, protocol.level)
            res.rows.append({"claim": claim.id, "test": test.label(), "effect": effect,
                             "ci_low": low, "ci_high": high, "units": len(table),
                             "concepts": len(set(clusters)),
                             "verdict": verdict(low, high, protocol.deltas[test.delta_key]),
                             "note": (f"left out (an arm not run there): {', '.join(left_out)}"
                                      if left_out else "")})
        res.verdict = combine([r["verdict"] for r in res.rows])
        out.append(res)
    return out


def claims_table(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per test, with its claim's statement and overall verdict."""
    rows = [{**r, "statement": res.claim.statement, "secondary": res.claim.secondary,
             "claim_verdict": res.verdict, "revises": res.claim.revises, "reason": res.claim.reason}
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
