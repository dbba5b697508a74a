"""Paper vs ours: each published number against exactly one cell of ours (variant, group, guide,
prompt set, metric), timing rows from benchmark JSON (CPU- and CUDA-shaped), rows we did not
run kept (empty), and the repository's paper-values file parses."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dcobench.report import paper_vs_ours, read_paper_values

REPO = Path(__file__).resolve().parents[2]


def _paper(tmp_path, rows):
    """rows: (experiment, label, variant, group, guide, prompt_set, metric, value)."""
    df = pd.DataFrame([dict(experiment=e, source="src", method_label=lab, variant=m, group=g,
                            guide=gd, prompt_set=ps, metric=k, value=v, unit="u", note="")
                       for e, lab, m, g, gd, ps, k, v in rows])
    path = tmp_path / "paper_values.csv"
    df.to_csv(path, index=False)
    return read_paper_values(path)


def _summary(rows):
    """rows: (experiment, group, prompt_set, variant, guide, metric, mean)."""
    return pd.DataFrame([dict(experiment=e, group=g, prompt_set=ps, variant=m, guide=gd,
                              guidance="cfg" if gd == "cfg" else "rg", w_rg=None, w_text=7.5,
                              metric=k, mean=v, ci_low=v - 0.02, ci_high=v + 0.01, n_concepts=27)
                         for e, g, ps, m, gd, k, v in rows])


# Our cells around the published ones: other guides, prompt sets, groups and experiments that
# must not be picked.
DISTRACTORS = [
    ("fig1", "subject", "all", "db", "rg3", "dino", 0.1),  # same variant, RG
    ("fig1", "subject", "stylization", "db", "cfg", "dino", 0.2),  # other prompt set
    ("fig1", "subject", "all", "db", "cfg", "dino", 0.3),  # pooled prompt set
    ("fig5", "style", "all", "db", "cfg", "dino", 0.4),  # a style run of the same variant
    ("fig8a", "subject", "customization", "db", "cfg", "dino", 0.5),  # the cell, other experiment
]


def test_each_paper_value_pairs_with_exactly_one_cell(tmp_path):
    paper = _paper(tmp_path, [
        ("fig1", "DB+CC", "db", "subject", "cfg", "customization", "dino", 0.754),
        ("table1", "DCO Merge", "dco-arithmetic", "merge", "cfg", "all", "dino", 0.462)])
    summary = _summary([("fig1", "subject", "customization", "db", "cfg", "dino", 0.7),
                        *DISTRACTORS,
                        ("demo", "merge", "all", "dco-arithmetic", "cfg", "dino", 0.5),
                        ("demo", "merge", "all", "dco-arithmetic", "rg3", "dino", 0.9)])
    out = paper_vs_ours(paper, summary)
    assert len(out) == 2
    db = out.iloc[0]
    assert db["ours"] == pytest.approx(0.7) and db["delta"] == pytest.approx(0.7 - 0.754)
    assert db["ci_low"] == pytest.approx(0.68) and db["ci_high"] == pytest.approx(0.71)
    assert (db["guide"], db["prompt_set"], db["group"]) == ("cfg", "customization", "subject")
    assert db["n_concepts"] == 27 and "experiment fig1" in db["ours_from"]
    merged = out.iloc[1]  # table1 not run: the demo's CFG cell, never its RG one
    assert merged["ours"] == pytest.approx(0.5) and merged["delta"] == pytest.approx(0.038)
    assert "experiment demo" in merged["ours_from"]


def test_fig1_app_b1_rows_es_and_prior_05_from_the_repository_file():
    """App. B.1's DB+CC+ES and DB+CC+p.p.(0.5) numbers: customization and stylization, image
    and image-text similarity, each against its own cell of fig1."""
    table = read_paper_values(REPO / "data" / "paper_values.csv")
    b1 = table[table["source"].str.startswith("App. B.1")]
    assert len(b1) == 16
    cells = [("fig1", "subject", ps, m, "cfg", k, 0.1 * i)
             for i, (m, ps, k) in enumerate((m, ps, k) for m in ("db_es", "db", "dbpp_l05", "dbpp")
                                            for ps in ("customization", "stylization")
                                            for k in ("dino", "siglip_text"))]
    out = paper_vs_ours(table, _summary(cells + [("fig1", "subject", "all", "dbpp_l05", "cfg",
                                                  "dino", 9.0)]))
    rows = out[out["source"].str.startswith("App. B.1")].set_index(
        ["variant", "prompt_set", "metric"])
    assert len(rows) == 16 and rows["ours"].notna().all()
    assert rows.loc[("dbpp_l05", "customization", "dino"), "paper"] == pytest.approx(0.547)
    assert rows.loc[("dbpp_l05", "customization", "dino"), "ours"] == pytest.approx(0.8)
    assert rows.loc[("db_es", "stylization", "siglip_text"), "paper"] == pytest.approx(0.645)
    assert rows.loc[("db_es", "stylization", "siglip_text"), "ours"] == pytest.approx(0.3)
    assert set(out.loc[out["experiment"] == "fig1", "method_label"]) >= {
        "DB+CC+ES", "DB+CC+p.p. (0.5)", "DB", "Pretrained"}


def test_timing_rows_from_cpu_and_cuda_shaped_benchmarks(tmp_path):
    table = read_paper_values(REPO / "data" / "paper_values.csv")
    timing = table[table["experiment"] == "timing"]
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "train.json").write_text(json.dumps(  # CPU: no memory figure
        {"device": "cpu", "base_model": "tiny-sdxl", "dco_over_db": 1.5, "peak_memory_gib": None}))
    out = paper_vs_ours(timing, _summary([]), bench).set_index("metric")
    assert out.loc["train_step_time_ratio", "ours"] == pytest.approx(1.5)
    assert out.loc["train_step_time_ratio", "delta"] == pytest.approx(0.2)
    assert "device cpu" in out.loc["train_step_time_ratio", "ours_from"]
    assert pd.isna(out.loc["sample_time_ratio", "ours"])
    assert "sample.json" in out.loc["sample_time_ratio", "ours_from"]
    assert "not measured" in out.loc["max_memory_allocated", "ours_from"]
    assert pd.isna(out.loc["train_step_time_ratio", "ci_low"])  # one measurement, no CI

    (bench / "train.json").write_text(json.dumps(  # CUDA: GiB per objective
        {"device": "cuda", "base_model": "sdxl", "dco_over_db": 1.3,
         "peak_memory_gib": {"db": 14.0, "dco": 15.5}}))
    (bench / "sample.json").write_text(json.dumps(
        {"device": "cuda", "model": "sdxl", "rg_over_cfg": 1.5, "official_rg_over_cfg": 2.1,
         "peak_memory_gib": {"cfg": 9.0, "rg": 11.0}}))
    out = paper_vs_ours(timing, _summary([]), bench).set_index("metric")
    mem = out.loc["max_memory_allocated"]
    assert mem["paper"] == pytest.approx(15933.40) and mem["unit"] == "MiB"
    assert mem["ours"] == pytest.approx(15.5 * 1024)  # 15872 MiB
    assert mem["delta"] == pytest.approx(15872 - 15933.40)
    ratio = out.loc["sample_time_ratio"]
    assert ratio["ours"] == pytest.approx(2.1) and "rg_over_cfg): 1.50" in ratio["ours_from"]


def test_bad_paper_values_are_rejected(tmp_path):
    path = tmp_path / "p.csv"
    row = dict(experiment="fig1", source="Fig 1", method_label="x", variant="x", group="subject",
               guide="cfg", prompt_set="all", metric="dino", value=0.3, unit="u", note="")
    pd.DataFrame([{**row, "source": ""}]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="source"):
        read_paper_values(path)
    pd.DataFrame([{**row, "guide": ""}]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="need a guide"):
        read_paper_values(path)
    pd.DataFrame([row, {**row, "value": 0.4}]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="same cell twice"):
        read_paper_values(path)
    pd.DataFrame([dict(experiment="fig1", source="Fig 1")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="lack columns"):
        read_paper_values(path)


def test_repository_paper_values_parse_with_sources():
    table = read_paper_values(REPO / "data" / "paper_values.csv")
    # Fig 1 (4), App. B.1 (16), Table 1 (9), timing (3)
    assert len(table) == 4 + 16 + 9 + 3 and (table["source"].str.len() > 3).all()
    scores = table[table["experiment"] != "timing"]
    assert set(scores["guide"]) == {"cfg"}  # Table 1: no RG (§5.3); Fig 1 / App. B.1: CFG points
    out = paper_vs_ours(table, _summary([]))
    assert len(out) == len(table)  # every published number listed, ours empty when not run
