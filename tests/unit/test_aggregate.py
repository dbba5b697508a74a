"""Aggregation, bootstrap CIs and paired differences on small tables with known answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dcobench.report import (
    aggregate,
    bootstrap_ci,
    load_membership,
    prompt_family,
    reference_variant,
    write_aggregates,
)
from dcobench.sample.guides import Guide

# (concept, variant) -> values for prompt_index 0 and 1 (seed 0)
VALUES = {
    ("A", "dco"): (0.5, 0.75),
    ("B", "dco"): (0.25, 0.5),
    ("A", "db"): (0.25, 1.0),
    ("B", "db"): (0.125, 0.375),
}


def _scores(values=VALUES, group="subject", guide="cfg", metric="dino"):
    rows = []
    for (concept, variant), vals in values.items():
        for p, v in enumerate(vals):
            rows.append(dict(exp="e", group=group, concept=concept, variant=variant, **Guide.parse(guide).columns(7.5), file=f"{p:04d}.png", prompt_index=p, seed=0,
                             metric=metric, value=v))
    return pd.DataFrame(rows)


def _write(tmp_path, df, name="scores.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_per_concept_and_summary_means(tmp_path):
    res = aggregate([_write(tmp_path, _scores())])
    pc = res["per_concept"].set_index(["concept", "variant"])
    assert pc.loc[("A", "dco"), "mean"] == pytest.approx(0.625)
    assert pc.loc[("B", "dco"), "mean"] == pytest.approx(0.375)
    assert pc.loc[("A", "db"), "mean"] == pytest.approx(0.625)
    assert pc.loc[("B", "db"), "mean"] == pytest.approx(0.25)
    assert (pc["n"] == 2).all()
    assert list(res["per_concept"].columns) == [
        "experiment", "group", "prompt_set", "concept", "variant", "guide", "guidance", "w_rg",
        "w_text", "metric", "mean", "n", "higher_is_better"]
    assert res["summary"]["higher_is_better"].all()  # dino's registration
    assert set(res["summary"]["experiment"]) == {"e"} and set(res["summary"]["prompt_set"]) == {"all"}
    s = res["summary"].set_index("variant")
    assert s.loc["dco", "mean"] == pytest.approx(0.5)
    assert s.loc["db", "mean"] == pytest.approx(0.4375)
    assert (s["n_concepts"] == 2).all()
    assert (s["ci_low"] <= s["mean"]).all() and (s["mean"] <= s["ci_high"]).all()


def test_bootstrap_ci_known_cases():
    assert bootstrap_ci(np.array([0.3, 0.3, 0.3])) == (pytest.approx(0.3), pytest.approx(0.3))
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)
    # two values: resample means are 0, 0.5 or 1 -> 2.5%/97.5% percentiles are 0 and 1
    assert bootstrap_ci(np.array([0.0, 1.0])) == (0.0, 1.0)
    vals = np.random.default_rng(1).normal(size=20)
    first = bootstrap_ci(vals)
    assert first == bootstrap_ci(vals)  # fixed seed: deterministic
    assert first[0] < vals.mean() < first[1]


def test_single_concept_ci_is_mean(tmp_path):
    one = {k: v for k, v in VALUES.items() if k[0] == "A"}
    s = aggregate([_write(tmp_path, _scores(one))])["summary"]
    assert (s["ci_low"] == s["mean"]).all() and (s["ci_high"] == s["mean"]).all()
    assert (s["n_concepts"] == 1).all()


def test_paired_difference_against_dco(tmp_path):
    paired = aggregate([_write(tmp_path, _scores())])["paired"]
    assert len(paired) == 1
    row = paired.iloc[0]
    assert row["variant"] == "db" and row["reference"] == "dco"
    # A: (0.25-0.5, 1.0-0.75) -> 0.0 ; B: (0.125-0.25, 0.375-0.5) -> -0.125
    assert row["mean_diff"] == pytest.approx(-0.0625)
    assert row["n_concepts"] == 2 and row["n_pairs"] == 4
    assert row["ci_low"] == pytest.approx(-0.125) and row["ci_high"] == pytest.approx(0.0)


def test_paired_identical_concept_diffs_give_point_ci(tmp_path):
    values = {("A", "dco"): (0.5, 0.5), ("B", "dco"): (0.25, 0.75),
              ("A", "db"): (0.25, 0.25), ("B", "db"): (0.0, 0.5)}
    row = aggregate([_write(tmp_path, _scores(values))])["paired"].iloc[0]
    assert row["mean_diff"] == pytest.approx(-0.25)
    assert row["ci_low"] == pytest.approx(-0.25) and row["ci_high"] == pytest.approx(-0.25)


def test_paired_only_matches_same_slots(tmp_path):
    df = _scores()
    extra = df[(df["variant"] == "db") & (df["prompt_index"] == 0)].assign(seed=1, value=9.0)
    paired = aggregate([_write(tmp_path, pd.concat([df, extra]))])["paired"]
    assert paired.iloc[0]["n_pairs"] == 4  # the seed-1 rows have no dco partner
    assert paired.iloc[0]["mean_diff"] == pytest.approx(-0.0625)


def test_merge_group_reference_contains_dco(tmp_path):
    values = {("s__t", "db_merge"): (0.25, 0.5), ("s__t", "db_ziplora"): (0.5, 0.5),
              ("s__t", "dco_merge"): (0.75, 0.75)}
    paired = aggregate([_write(tmp_path, _scores(values, group="merge"))])["paired"]
    assert set(paired["reference"]) == {"dco_merge"}
    diffs = paired.set_index("variant")["mean_diff"]
    assert diffs["db_merge"] == pytest.approx(-0.375)
    assert diffs["db_ziplora"] == pytest.approx(-0.25)
    assert reference_variant("subject", ["db", "dco_x"]) is None
    assert reference_variant("merge", ["db_merge", "dco_ziplora", "dco_merge"]) == "dco_merge"


def test_multiple_files_guides_and_write(tmp_path):
    files = [_write(tmp_path, _scores(guide="cfg"), "a.csv"),
             _write(tmp_path, _scores(guide="rg3"), "b.csv"),
             _write(tmp_path, _scores(metric="siglip_text"), "c.csv")]
    paths = write_aggregates(files, tmp_path / "agg")
    assert sorted(p.name for p in paths.values()) == ["paired.csv", "per_concept.csv", "summary.csv"]
    summary = pd.read_csv(paths["summary"])
    assert len(summary) == 2 * 3  # variants x (cfg dino, rg3 dino, cfg siglip_text)
    assert set(summary["guide"]) == {"cfg", "rg3"}
    assert len(pd.read_csv(paths["paired"])) == 3


def test_missing_columns_and_registry(tmp_path):
    bad = _write(tmp_path, _scores().drop(columns=["seed"]))
    with pytest.raises(ValueError, match="seed"):
        aggregate([bad])
    with pytest.raises(ValueError):
        aggregate([])
    from dcobench.report import metric_info
    from dcobench.score.metrics import SCORERS

    assert set(SCORERS) == {"dino", "siglip_text", "siglip_image", "clip_i", "clip_t",
                            "prompt_acc", "subject_acc", "style_acc"}  # + the world's oracle
    assert SCORERS["siglip_text"].image_or_text == "text"
    assert all(SCORERS[m].higher_is_better for m in SCORERS)
    assert metric_info("dino").label == "Subject fidelity (DINOv2)"
    with pytest.raises(KeyError, match="did you mean 'dino'"):
        metric_info("dinov")


# ---- prompt sets and experiments -------------------------------------------------------------

def _rows(cells, group="subject", guide="cfg", metric="dino"):
    """cells: (concept, variant, prompt_index, prompt_set, value) -> long score rows (seed 0)."""
    return pd.DataFrame([dict(exp="paper", group=group, concept=c, variant=m, **Guide.parse(guide).columns(7.5), file=f"p{p:03d}_s0.png", prompt_index=p, seed=0,
                              metric=metric, value=v, prompt_set=ps)
                         for c, m, p, ps, v in cells])


def test_prompt_sets_are_pooled_and_kept_apart(tmp_path):
    # A is an object (object_* sets), B a live subject (live_* sets): same families
    cells = [("A", "dco", 0, "object_customization", 0.2), ("A", "dco", 1, "object_stylization", 0.6),
             ("B", "dco", 0, "live_customization", 0.4), ("B", "dco", 1, "live_stylization", 1.0)]
    res = aggregate([_write(tmp_path, _rows(cells))])
    s = res["summary"].set_index("prompt_set")["mean"]
    assert sorted(s.index) == ["all", "customization", "stylization"]
    assert s["customization"] == pytest.approx(0.3)  # (0.2 + 0.4) / 2, never mixed with 0.6/1.0
    assert s["stylization"] == pytest.approx(0.8)
    assert s["all"] == pytest.approx(0.55)  # A: 0.4, B: 0.7
    assert (res["summary"]["n_concepts"] == 2).all()
    pc = res["per_concept"].set_index(["prompt_set", "concept"])["n"]
    assert pc[("all", "A")] == 2 and pc[("customization", "A")] == 1


def test_single_prompt_set_and_old_files_give_only_all(tmp_path):
    one = _rows([("A", "dco", 0, "object_customization", 0.5), ("B", "dco", 0, "live_customization", 0.3)])
    old = _scores()  # written before the prompt_set column existed
    assert "prompt_set" not in old.columns
    for df in (one, old):
        summary = aggregate([_write(tmp_path, df)])["summary"]
        assert set(summary["prompt_set"]) == {"all"}
    assert prompt_family("live") == "dreambooth" and prompt_family("object") == "dreambooth"
    assert prompt_family("parti190") == "parti190" and prompt_family(float("nan")) == "all"
    assert prompt_family("live_stylization") == "stylization"


def _membership():
    return {"fig1": {"evaluated": [["subject", "A", "dco"], ["subject", "A", "db"]],
                     "pretrained": [["subject", "A"]], "merges": []},
            "fig8b": {"evaluated": [["subject", "A", "dco"], ["subject", "A", "dco_b2"]],
                      "merges": []}}


def test_experiment_membership_shares_models_and_drops_strays(tmp_path, capsys):
    cells = [("A", "dco", 0, "", 0.5), ("A", "dco", 1, "", 0.7),
             ("A", "db", 0, "", 0.25), ("A", "db", 1, "", 0.45),
             ("A", "dco_b2", 0, "", 0.75), ("A", "dco_b2", 1, "", 0.95),
             ("A", "pretrained", 0, "", 0.125), ("A", "pretrained", 1, "", 0.125),
             ("A", "stray", 0, "", 9.0)]
    res = aggregate([_write(tmp_path, _rows(cells))], membership=_membership())
    assert "1 score rows belong to no experiment" in capsys.readouterr().err
    s = res["summary"].set_index(["experiment", "variant"])["mean"]
    assert sorted(s.index) == [("fig1", "db"), ("fig1", "dco"), ("fig1", "pretrained"),
                               ("fig8b", "dco"), ("fig8b", "dco_b2")]
    assert s[("fig1", "dco")] == s[("fig8b", "dco")] == pytest.approx(0.6)  # shared model
    assert s[("fig1", "pretrained")] == pytest.approx(0.125)
    d = res["paired"].set_index(["experiment", "variant"])["mean_diff"]
    assert d[("fig1", "db")] == pytest.approx(-0.25)
    assert d[("fig1", "pretrained")] == pytest.approx(-0.475)
    assert d[("fig8b", "dco_b2")] == pytest.approx(0.25)
    assert len(d) == 3
    assert list(res["paired"].columns[:4]) == ["experiment", "group", "prompt_set", "variant"]


def test_merge_membership_lists_weighted_ids_and_json_inputs(tmp_path):
    cells = [("s__t", "dco-arithmetic", 0, "merge", 0.5), ("s__t", "dco-arithmetic_w0p5_1", 0, "merge", 0.25),
             ("s__t", "db-ziplora", 0, "merge", 0.75)]
    membership = {"table1": {"evaluated": [], "merges": [["s", "t", "dco-arithmetic"],
                                                         ["s", "t", "dco-arithmetic_w0p5_1"]]}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(membership))
    for spec in (json.dumps(membership), str(path)):
        summary = aggregate([_write(tmp_path, _rows(cells, group="merge"))],
                            membership=load_membership(spec))["summary"]
        assert sorted(summary["variant"]) == ["dco-arithmetic", "dco-arithmetic_w0p5_1"]
        assert set(summary["experiment"]) == {"table1"}
    with pytest.raises(ValueError, match="not valid JSON"):
        load_membership("{nope")
    with pytest.raises(FileNotFoundError):
        load_membership(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="no score row belongs"):
        aggregate([_write(tmp_path, _rows(cells, group="merge"))],
                  membership={"x": {"evaluated": [["subject", "Z", "dco"]]}})
    assert load_membership(None) is None


def test_membership_from_plan_keeps_scored_experiments():
    from dcobench.experiments import Plan

    plan = Plan(experiments={
        "fig1": {"models": [("subject", "A", "dco")], "evaluated": [("subject", "A", "dco")],
                 "pretrained": [("subject", "A")], "merges": [], "noise_distance": []},
        "fig8c": {"models": [("subject", "A", "dco")], "evaluated": [], "merges": [],
                  "noise_distance": [("A", "dco")]}})
    out = plan.membership()
    assert out == {"fig1": {"evaluated": [["subject", "A", "dco"]],
                            "pretrained": [["subject", "A"]], "merges": []}}
    assert json.loads(json.dumps(out)) == out
