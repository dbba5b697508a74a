"""Protocol 2's inference by hand: Student t, the concept-cluster jackknife (one-way and
crossed), Holm, the composite rule, non-inferiority bounds, and refusal of too few concepts."""

import numpy as np
import pandas as pd
import pytest

from dcobench.analysis import claims as cl
from dcobench.analysis import inference as inf


def test_student_t_quantiles_and_cdf():
    # tables: t(1) 12.706, t(3) 3.182, t(7) 2.365 at 0.975; t(3) 2.353 at 0.95
    for df, q, p in ((1, 12.7062047, 0.975), (3, 3.1824463, 0.975), (7, 2.3646243, 0.975),
                     (3, 2.3533634, 0.95)):
        assert inf.t_quantile(p, df) == pytest.approx(q, abs=1e-6)
        assert inf.t_cdf(q, df) == pytest.approx(p, abs=1e-7)
    assert inf.t_cdf(0.0, 4) == 0.5 and inf.t_cdf(-2.0, 2) == pytest.approx(1 - inf.t_cdf(2.0, 2))
    with pytest.raises(ValueError, match="integer df"):
        inf.t_cdf(1.0, 2.5)


def test_cluster_t_is_the_t_interval_on_concept_means_for_a_mean():
    values = np.array([0.1, 0.3, 0.5, 0.6, 0.2, 0.2, 0.9, 1.1])  # 4 concepts × 2 units
    clusters = np.repeat(["a", "b", "c", "d"], 2)
    est = inf.cluster_t(values[:, None], clusters, lambda m: float(m[0]))
    means = np.array([0.2, 0.55, 0.2, 1.0])
    assert est.effect == pytest.approx(means.mean()) and est.df == 3 and est.clusters == 4
    assert est.se == pytest.approx(means.std(ddof=1) / 2)
    low, high = est.interval(0.95)
    assert low == pytest.approx(means.mean() - 3.1824463 * est.se, abs=1e-6)
    assert high == pytest.approx(means.mean() + 3.1824463 * est.se, abs=1e-6)


def test_cluster_t_jackknife_of_a_nonlinear_effect_by_hand():
    """A product of two column means (as frontier_area is a function of several): the
    delete-one-concept jackknife, (C − 1)/C Σ (θ_(c) − θ̄)²."""
    values = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [2.0, 2.0]])  # one unit per concept
    est = inf.cluster_t(values, np.array(["a", "b", "c", "d"]), lambda m: float(m[0] * m[1]))
    loo = [(7 / 3) * (6 / 3), (6 / 3) * (7 / 3), (5 / 3) * (5 / 3), (6 / 3) * (6 / 3)]
    var = 3 / 4 * sum((x - np.mean(loo)) ** 2 for x in loo)
    assert est.effect == pytest.approx(2.0 * 2.0) and est.se == pytest.approx(np.sqrt(var))


def test_crossed_two_way_variance_by_hand():
    """3 subjects × 2 styles, one unit per pair: V_s + V_t − V_pair, df = min(3, 2) − 1; with
    the styles fixed V_s alone on 3 − 1 df."""
    grid = np.array([[0.1, 0.4], [0.5, 0.6], [0.0, 0.7]])  # subjects × styles
    labels = np.array([f"s{i}__t{j}" for i in range(3) for j in range(2)])
    values = grid.reshape(-1, 1)
    v_s = grid.mean(axis=1).var(ddof=1) / 3
    v_t = grid.mean(axis=0).var(ddof=1) / 2
    v_p = grid.ravel().var(ddof=1) / 6
    est = inf.cluster_t(values, labels, lambda m: float(m[0]), crossed=True)
    assert est.se == pytest.approx(np.sqrt(v_s + v_t - v_p)) and est.df == 1
    fixed = inf.cluster_t(values, labels, lambda m: float(m[0]), crossed=True, fixed_styles=True)
    assert fixed.se == pytest.approx(np.sqrt(v_s)) and fixed.df == 2
    with pytest.raises(ValueError, match="<subject>__<style>"):
        inf.cluster_t(values, np.arange(6).astype(str), lambda m: float(m[0]), crossed=True)


def test_holm_and_the_composite_rule_by_hand():
    adjusted = inf.holm(np.array([0.01, 0.04, 0.03, np.nan]))
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])
    # held: every sub-test (max); not held: Bonferroni on the smallest "below" p
    assert inf.composite_p([0.001, 0.02, 0.01], [0.9, 0.5, 0.004]) == pytest.approx((0.02, 0.012))
    assert inf.decide(0.02, 0.9, 0.025) == inf.HELD
    assert inf.decide(0.5, 0.012, 0.025) == inf.NOT_HELD
    assert inf.decide(0.03, 0.03, 0.025) == inf.INCONCLUSIVE


# --- evaluate: bounds, Holm across claims, refusal ------------------------------------------


def scores(offsets: dict[str, float], metric: str = "prompt_acc", group: str = "subject",
           units: int = 3) -> pd.DataFrame:
    """db at 0.5, dco at 0.5 + offset per concept (no noise within a concept)."""
    rows = []
    for concept, off in offsets.items():
        for i in range(units):
            for variant, value in (("db", 0.5), ("dco", 0.5 + off)):
                rows.append({"group": group, "variant": variant, "guide": "cfg", "metric": metric,
                             "prompt_set": "world_novel", "concept": concept, "prompt_index": i,
                             "seed": 0, "value": value})
    return pd.DataFrame(rows)


def claim(cid: str, secondary: bool = False, **test) -> dict:
    t = {"kind": "difference", "a": "dco", "b": "db", "metric": "prompt_acc", **test}
    return {"id": cid, "statement": cid, "group": "subject", "secondary": secondary, "tests": [t]}


def proto(*claims: dict) -> cl.Protocol:
    return cl.parse_protocol({"version": 2, "delta": {"prompt_acc": 0.02},
                              "margin": {"prompt_acc": 0.05}, "claims": list(claims)}, "t.yaml")


# t = 3.87 on 3 df: one-sided p ≈ 0.015, held alone, not after Holm over two claims
NEAR = {"a": 0.12, "b": 0.17, "c": 0.22, "d": 0.07}


def test_holm_across_primary_claims_but_not_secondary():
    alone = cl.evaluate(proto(claim("p1")), scores(NEAR))[0]
    assert alone.verdict == cl.HELD and alone.p_held == pytest.approx(0.0153, abs=5e-4)
    p1, p2, s = cl.evaluate(proto(claim("p1"), claim("p2"), claim("s", secondary=True)),
                            scores(NEAR))
    assert p1.rows[0]["verdict"] == cl.HELD  # the test's own 95% CI is above δ ...
    assert p1.verdict == p2.verdict == cl.INCONCLUSIVE  # ... but not after Holm over 2 claims
    assert p1.p_held == pytest.approx(2 * alone.p_held)
    assert s.verdict == cl.HELD  # secondary claims are not in the primary family


def test_non_inferiority_bound_is_minus_the_margin():
    ni = claim("ni", hypothesis="non_inferiority")
    small_loss = {c: v - 0.15 for c, v in NEAR.items()}  # mean −0.005: no superiority
    row = cl.evaluate(proto(ni), scores({c: -0.01 + v / 100 for c, v in NEAR.items()}))[0]
    assert row.rows[0]["bound"] == -0.05 and row.verdict == cl.HELD
    worse = cl.evaluate(proto(ni), scores({c: -0.2 + v / 100 for c, v in NEAR.items()}))[0]
    assert worse.verdict == cl.NOT_HELD
    sup = cl.evaluate(proto(claim("sup")), scores(small_loss))[0]
    assert sup.rows[0]["bound"] == 0.02 and sup.verdict != cl.HELD
    with pytest.raises(ValueError, match=r"\(x\): a non-inferiority test needs a margin"):
        cl.parse_protocol({"delta": {"subject_acc": 0.02}, "claims": [
            claim("x", metric="subject_acc", hypothesis="non_inferiority")]}, "t.yaml")


def test_too_few_concepts_refused_at_load_naming_the_claim():
    few = {**claim("thin"), "protocol": 2, "concepts": ["a", "b", "c"]}
    with pytest.raises(ValueError, match=r"\(thin\): refused: 3 concepts < min_concepts 4"):
        proto(few)
    pairs = [f"s{i}__t{j}" for i in range(4) for j in range(2)]
    merge = {**claim("merge"), "group": "merge", "protocol": 2, "concepts": pairs}
    with pytest.raises(ValueError, match=r"\(merge\): refused: 2 styles .*fixed_styles"):
        proto(merge)
    assert proto({**merge, "fixed_styles": True}).claims[0].fixed_styles
    assert proto({**few, "protocol": 1}).claims[0].concepts  # registered before version 2


def test_too_few_concepts_in_the_run_is_refused_at_evaluation():
    res = cl.evaluate(proto(claim("c")), scores({"a": 0.3, "b": 0.3, "c": 0.3}))[0]
    assert res.verdict == cl.REFUSED and "refused: 3 concepts < min_concepts 4" in res.rows[0]["note"]
    assert np.isnan(res.rows[0]["effect"]) and res.rows[0]["concepts"] == 3


def test_version_2_names_its_inference_method():
    raw = {"version": 2, "inference": {"method": "percentile"}, "delta": {"prompt_acc": 0.02},
           "claims": [claim("c")]}
    with pytest.raises(ValueError, match="t.yaml: inference method 'percentile' is not cluster_t"):
        cl.parse_protocol(raw, "t.yaml")
