"""Paper vs ours: known deltas from a synthetic summary, timing rows from benchmark JSON, rows
we did not run kept (empty), and the repository's paper-values file parses."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dcobench.report import paper_vs_ours, read_paper_values

REPO = Path(__file__).resolve().parents[2]


def _paper(tmp_path, rows, guide=None):
    df = pd.DataFrame([dict(experiment=e, source=s, method_label=lab, variant=m, metric=k,
                            value=v, unit="u", note="") for e, s, lab, m, k, v in rows])
    if guide is not None:
        df["guide"] = guide
    path = tmp_path / "paper_values.csv"
    df.to_csv(path, index=False)
    return read_paper_values(path)


def _summary(rows):
    return pd.DataFrame([dict(experiment=e, group="subject", prompt_set=ps, variant=m, guide=g,
                              guidance="cfg", w_rg=None, w_text=7.5, metric=k, mean=v, ci_low=v - 0.02, ci_high=v + 0.01,
                              n_concepts=27) for e, ps, m, g, k, v in rows])


def test_deltas_and_ci_from_summary(tmp_path):
    paper = _paper(tmp_path, [("fig1", "Fig. 1", "Pretrained", "pretrained", "dino", 0.308),
                              ("fig1", "Fig. 1", "DB", "db_compact", "siglip_text", 0.724)],
                   guide=["cfg", "cfg"])
    summary = _summary([("fig1", "all", "pretrained", "cfg", "dino", 0.358),
                        ("fig1", "customization", "pretrained", "cfg", "dino", 0.9),  # not "all"
                        ("fig1", "all", "db_compact", "cfg", "siglip_text", 0.7),
                        ("fig1", "all", "db_compact", "rg3", "siglip_text", 0.8)])  # other guide
    out = paper_vs_ours(paper, summary)
    assert len(out) == 2
    pre = out.iloc[0]
    assert pre["ours"] == pytest.approx(0.358) and pre["delta"] == pytest.approx(0.05)
    assert pre["ci_low"] == pytest.approx(0.338) and pre["ci_high"] == pytest.approx(0.368)
    assert pre["n_concepts"] == 27 and pre["source"] == "Fig. 1"
    db = out.iloc[1]
    assert db["guide"] == "cfg" and db["delta"] == pytest.approx(-0.024)


def test_empty_guide_lists_every_guide_and_falls_back_to_another_experiment(tmp_path):
    paper = _paper(tmp_path, [("table1", "Table 1", "DCO Merge", "dco-arithmetic", "dino", 0.462),
                              ("table1", "Table 1", "DB ZipLoRA", "db-ziplora", "dino", 0.406)])
    summary = _summary([("demo", "all", "dco-arithmetic", "cfg", "dino", 0.5),
                        ("demo", "all", "dco-arithmetic", "rg3", "dino", 0.4)])
    out = paper_vs_ours(paper, summary)
    dco = out[out["variant"] == "dco-arithmetic"].set_index("guide")
    assert sorted(dco.index) == ["cfg", "rg3"]
    assert dco.loc["cfg", "delta"] == pytest.approx(0.038)
    assert dco.loc["rg3", "delta"] == pytest.approx(-0.062)
    assert "experiment demo" in dco.loc["cfg", "ours_from"]
    zip_row = out[out["variant"] == "db-ziplora"].iloc[0]
    assert pd.isna(zip_row["ours"]) and zip_row["ours_from"] == "not in this run"


def test_timing_rows_from_benchmark_json(tmp_path):
    paper = _paper(tmp_path, [
        ("timing", "App. D.5", "DCO / DB", "dco", "train_step_time_ratio", 1.3),
        ("timing", "App. D.5", "RG / CFG", "rg", "sample_time_ratio", 2.0),
        ("timing", "rebuttal", "DCO", "dco", "max_memory_allocated", 16.0)])
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "train.json").write_text(json.dumps(
        {"device": "cuda", "base_model": "sdxl", "dco_over_db": 1.5, "peak_memory_gib": None}))
    out = paper_vs_ours(paper, _summary([]), bench).set_index("metric")
    assert out.loc["train_step_time_ratio", "ours"] == pytest.approx(1.5)
    assert out.loc["train_step_time_ratio", "delta"] == pytest.approx(0.2)
    assert "device cuda" in out.loc["train_step_time_ratio", "ours_from"]
    assert pd.isna(out.loc["sample_time_ratio", "ours"])
    assert "sample.json" in out.loc["sample_time_ratio", "ours_from"]
    assert "not measured" in out.loc["max_memory_allocated", "ours_from"]
    assert pd.isna(out.loc["train_step_time_ratio", "ci_low"])  # one measurement, no CI


def test_bad_paper_values_are_rejected(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame([dict(experiment="fig1", source="", method_label="x", variant="x",
                       metric="dino", value=0.3, unit="u", note="")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="source"):
        read_paper_values(path)
    pd.DataFrame([dict(experiment="fig1", source="Fig 1")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="lack columns"):
        read_paper_values(path)


def test_repository_paper_values_parse_with_sources():
    table = read_paper_values(REPO / "data" / "paper_values.csv")
    assert len(table) >= 16 and (table["source"].str.len() > 3).all()
    out = paper_vs_ours(table, _summary([]))
    assert len(out) == len(table)  # every published number listed, ours empty when not run
