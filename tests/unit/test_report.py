"""Figures, tables and the HTML report render from small synthetic aggregated tables."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dcobench.report import (
    Section,
    build_html,
    loss_figure,
    loss_overview_figure,
    merge_table,
    noise_distance_figure,
    pareto_figure,
    run_loss_figure,
    sample_grid,
    variant_table,
    write_aggregates,
    write_table,
)
from dcobench.report.build import ReportOptions, build_report
from dcobench.report.figures import column_title
from dcobench.report.training_figures import mean_loss_curves
from dcobench.sample.guides import Guide


@pytest.fixture
def summary() -> pd.DataFrame:
    rows = []
    for m_i, variant in enumerate(["db", "dco"]):
        for guide, omega in [("cfg", 7.5), ("rg2", 2.0), ("rg3", 3.0), ("rg5", 5.0)]:
            for metric, base in [("dino", 0.4 + 0.1 * m_i), ("siglip_text", 0.8 - 0.05 * m_i)]:
                w = 0.0 if guide == "cfg" else omega
                mean = base + (0.02 * w if metric == "dino" else -0.03 * w)
                rows.append(dict(group="subject", variant=variant, **Guide.parse(guide).columns(7.5),
                                 metric=metric, mean=mean, ci_low=mean - 0.01,
                                 ci_high=mean + 0.02, n_concepts=3))
    return pd.DataFrame(rows)


def _not_constant(path):
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"))
    return arr.std() > 0


def test_pareto_figure_renders_deterministically(tmp_path, summary):
    paths = pareto_figure(summary, "subject", "dino", "siglip_text", tmp_path / "fig" / "pareto")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert _not_constant(paths[0])
    again = pareto_figure(summary, "subject", "dino", "siglip_text", tmp_path / "again")
    for a, b in zip(paths, again, strict=True):
        assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError):
        pareto_figure(summary, "style", "dino", "siglip_text", tmp_path / "none")


def test_variant_table_and_write_table(tmp_path, summary):
    table = variant_table(summary, "subject")
    assert list(table.columns) == ["variant", "guide", "Subject fidelity (DINOv2) ↑",
                                   "Prompt fidelity (SigLIP) ↑"]
    assert list(table["guide"][:4]) == ["cfg (ω=7.5)", "rg (ω=2)", "rg (ω=3)", "rg (ω=5)"]
    first = table.iloc[0]
    assert first["variant"] == "db" and first["Subject fidelity (DINOv2) ↑"] == "0.400 ± 0.020"
    paths = write_table(table, tmp_path / "tab" / "subject", "Subject results (mean ± 95% CI)")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    md = paths[1].read_text(encoding="utf-8")
    assert "Subject results" in md and "| db | cfg (ω=7.5) |" in md
    tex = paths[2].read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"$\uparrow$" in tex
    assert r"95\% CI" in tex and "±" not in tex
    assert pd.read_csv(paths[0]).shape == table.shape


def _sample_folder(root, variant, slots, rng):
    root.mkdir(parents=True)
    rows = []
    for p, s in slots:
        name = f"p{p:03d}_s{s}.png"
        pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
        rows.append(dict(file=name, prompt_index=p, seed=s, prompt=f"a <dog> {p}",
                         scoring_prompt=f"a dog number {p} sitting on a very long wall",
                         guide="rg3", guidance="rg", w_rg=3.0, w_text=7.5))
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    return root


def test_sample_grid_uses_shared_slots(tmp_path):
    rng = np.random.default_rng(0)
    all_slots = [(p, s) for p in range(6) for s in (0, 1)]
    dirs = {"db": _sample_folder(tmp_path / "db", "db", all_slots, rng),
            "dco": _sample_folder(tmp_path / "dco", "dco", all_slots[2:], rng)}
    paths = sample_grid(dirs, tmp_path / "grid", max_prompts=4)
    assert all(p.exists() for p in paths)
    with Image.open(paths[0]) as img:
        assert img.width > img.height  # 4 columns, 2 rows
    assert _not_constant(paths[0])
    sample_grid(dirs, tmp_path / "grid_s1", max_prompts=2, seed=1)
    with pytest.raises(ValueError):
        sample_grid(dirs, tmp_path / "none", seed=7)


def test_grid_headers_keep_the_whole_prompt_and_references_get_a_column(tmp_path):
    """A long prompt's last words (the style words) stay in the header; the concept's reference
    images get their own first column."""
    prompt = ("a photo of a split star in the middle of the picture, on a black checked "
              "background, in wavy style")
    title = column_title(prompt, 3, 1)
    assert title.replace("\n", " ").startswith(prompt) and title.endswith("(prompt 3, seed 1)")
    rng = np.random.default_rng(0)
    slots = [(p, 0) for p in range(3)]
    dirs = {"db": _sample_folder(tmp_path / "db", "db", slots, rng)}
    refs = []
    for i in range(2):
        refs.append(tmp_path / f"ref{i}.png")
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(refs[-1])
    plain = sample_grid(dirs, tmp_path / "plain", max_prompts=3)[0]
    with_refs = sample_grid(dirs, tmp_path / "refs", max_prompts=3, references=refs)[0]
    with Image.open(plain) as a, Image.open(with_refs) as b:
        assert b.width > a.width  # one more column


def test_loss_and_noise_distance_figures(tmp_path):
    steps = np.arange(200)
    logs = {}
    for label, scale in [("db", 0.1), ("dco", 0.69)]:
        loss = scale * np.exp(-steps / 300) + 0.01 * np.random.default_rng(1).random(200)
        path = tmp_path / f"{label}.csv"
        pd.DataFrame(dict(step=steps, loss=loss, loss_theta=loss, loss_phi=loss, d=0.0,
                          sigma=0.5, lr=5e-5, time=steps * 0.1)).to_csv(path, index=False)
        logs[label] = path
    paths = loss_figure(logs, tmp_path / "loss")
    assert all(p.exists() for p in paths) and _not_constant(paths[0])
    rows = [dict(concept=c, variant=m, timestep=t, distance=(1 + i) * t / 1000 + 0.01 * j,
                 std=0.01, n=100)
            for i, m in enumerate(["db", "dco"]) for j, c in enumerate("AB")
            for t in range(0, 1000, 100)]
    csv = tmp_path / "noise_distance.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    paths = noise_distance_figure(csv, tmp_path / "noise")
    assert all(p.exists() for p in paths) and _not_constant(paths[0])


def test_html_embeds_every_image(tmp_path, summary):
    figs = [pareto_figure(summary, "subject", "dino", "siglip_text", tmp_path / "a")[0],
            pareto_figure(summary, "subject", "siglip_text", "dino", tmp_path / "b")[1]]
    sections = [
        Section("Subjects", [(figs[0], "Pareto <front>"), (variant_table(summary, "subject"),
                                                           "Subject table")], intro="Intro."),
        {"heading": "More", "items": [(figs[1], "Second figure (pdf path → png)"),
                                      ("Plain paragraph & text.", "")]},
    ]
    out = build_html("dcobench report", sections, tmp_path / "report" / "report.html")
    text = out.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') == 2
    assert 'src="http' not in text and "<script" not in text and "<link" not in text
    assert "url(" not in text and "@import" not in text
    assert "Figure 1." in text and "Figure 2." in text and "Table 1." in text
    assert "Pareto &lt;front&gt;" in text and "Plain paragraph &amp; text." in text
    with pytest.raises(FileNotFoundError):
        build_html("x", [Section("s", [(tmp_path / "missing.png", "m")])], tmp_path / "x.html")


def _offline(text: str) -> bool:
    return re.search(r"""(src|href)\s*=\s*["']?https?://""", text, re.I) is None


def test_pareto_filters_cell_and_draws_pretrained(tmp_path, summary):
    both = pd.concat([summary.assign(experiment="fig1", prompt_set=ps) for ps in ("all", "stylization")])
    pre = [dict(experiment="fig1", prompt_set="all", group="subject", variant="pretrained",
                guide="cfg", guidance="cfg", w_rg=None, w_text=7.5, metric=m, mean=v, ci_low=v - 0.01, ci_high=v + 0.01,
                n_concepts=3) for m, v in (("dino", 0.3), ("siglip_text", 0.9))]
    both = pd.concat([both, pd.DataFrame(pre)], ignore_index=True)
    a = pareto_figure(both, "subject", "dino", "siglip_text", tmp_path / "a", experiment="fig1",
                      prompt_set="all", title="Fig 1")
    b = pareto_figure(both, "subject", "dino", "siglip_text", tmp_path / "b", experiment="fig1",
                      prompt_set="stylization", title="Fig 1")
    assert a[0].read_bytes() != b[0].read_bytes()  # the pretrained star is only in "all"
    with pytest.raises(ValueError, match="customization"):
        pareto_figure(both, "subject", "dino", "siglip_text", tmp_path / "c", experiment="fig1",
                      prompt_set="customization")


def test_merge_table_is_table1(summary):
    rows = []
    for variant, vals in {"db-arithmetic": (0.386, 0.672, 0.430),
                         "dco-arithmetic": (0.462, 0.651, 0.773)}.items():
        for metric, v in zip(("dino", "siglip_image", "siglip_text"), vals, strict=True):
            rows.append(dict(experiment="table1", prompt_set="all", group="merge", variant=variant,
                             guide="cfg", guidance="cfg", w_rg=None, w_text=7.5, metric=metric, mean=v, ci_low=v - 0.01,
                             ci_high=v + 0.03, n_concepts=25))
    table = merge_table(pd.DataFrame(rows), experiment="table1", prompt_set="all")
    assert list(table.columns) == ["variant", "guide", "Subject fidelity (DINOv2) ↑",
                                   "Style fidelity (SigLIP) ↑", "Text fidelity (SigLIP) ↑"]
    assert table.set_index("variant").loc["dco-arithmetic", "Text fidelity (SigLIP) ↑"] == "0.773 ± 0.030"
    with pytest.raises(ValueError):
        merge_table(pd.DataFrame(rows), experiment="fig1")


def _train_log(path, scale, steps=40, prior=False, dco=True):
    step = np.arange(1, steps + 1)
    loss = scale / step
    dco_only = 1.0 if dco else np.nan  # a DB log has no ℓ(φ), d or σ (NaN), as the trainer's
    df = pd.DataFrame(dict(step=step, loss=loss, loss_theta=loss * 2, loss_phi=loss * 2.1 * dco_only,
                           d=-0.1 * dco_only, sigma=0.5 * dco_only,
                           loss_prior=loss if prior else np.nan, lr=1e-4, time=step * 0.1))
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def test_run_loss_and_overview(tmp_path):
    logs = {("subject", c, m): _train_log(tmp_path / c / m / "train_log.csv", s)
            for c, m, s in [("A", "dco", 1.0), ("B", "dco", 3.0), ("A", "db", 0.5)]}
    curves = mean_loss_curves(logs)
    assert sorted(curves) == ["subject/db", "subject/dco"]
    dco = curves["subject/dco"]
    assert dco["loss"].iloc[0] == pytest.approx(2.0) and (dco["n_runs"] == 2).all()
    paths = loss_overview_figure(logs, tmp_path / "overview")
    assert all(p.exists() for p in paths) and _not_constant(paths[0])
    one = run_loss_figure(logs[("subject", "A", "dco")], tmp_path / "loss" / "subject_A_dco")
    assert one[0].name == "subject_A_dco.png" and _not_constant(one[0])
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"step": [1]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="loss"):
        run_loss_figure(bad, tmp_path / "bad")


def _demo_results(root: Path) -> Path:
    """A synthetic results/<exp> folder: fig1 (customization + stylization, pretrained) and
    table1 merges, scored, aggregated; sample folders; train logs."""
    rng = np.random.default_rng(0)
    exp = root / "results" / "paper"
    rows, sets = [], {0: "object_customization", 1: "object_customization",
                      2: "object_stylization", 3: "object_stylization"}
    variants = {"dco": ["cfg", "rg2", "rg3"], "db": ["cfg", "rg2", "rg3"], "pretrained": ["cfg"]}
    for concept in ("A", "B"):
        for variant, guides in variants.items():
            for guide in guides:
                folder = exp / "samples" / "subject" / concept / variant / guide
                slots = [(p, s) for p in sets for s in (0, 1)]
                _sample_folder(folder, variant, slots, rng)
                for p, s in slots:
                    for metric in ("dino", "siglip_text"):
                        rows.append(dict(exp="paper", group="subject", concept=concept,
                                         variant=variant, **Guide.parse(guide).columns(7.5),
                                         file=f"p{p:03d}_s{s}.png", prompt_index=p, seed=s,
                                         metric=metric, value=rng.random(), prompt_set=sets[p]))
    for merge in ("db-arithmetic", "dco-arithmetic"):
        for metric in ("dino", "siglip_image", "siglip_text"):
            for p in range(2):
                rows.append(dict(exp="paper", group="merge", concept="A__S", variant=merge,
                                 **Guide("cfg").columns(7.5), file=f"p{p:03d}_s0.png", prompt_index=p,
                                 seed=0, metric=metric, value=rng.random(), prompt_set="merge"))
    scores = exp / "scores.csv"
    scores.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(scores, index=False)
    membership = {"fig1": {"evaluated": [["subject", c, m] for c in "AB" for m in ("dco", "db")],
                           "pretrained": [["subject", c] for c in "AB"], "merges": []},
                  "table1": {"evaluated": [], "merges": [["A", "S", "db-arithmetic"],
                                                         ["A", "S", "dco-arithmetic"]]}}
    write_aggregates([scores], exp / "tables", membership=membership)
    for c, m in (("A", "dco"), ("A", "db"), ("B", "dco")):
        _train_log(exp / "models" / "subject" / c / m / "train_log.csv", 1.0, prior=m == "db",
                   dco=m == "dco")
    return exp


@pytest.mark.slow
def test_report_builds_offline_per_experiment(tmp_path):
    exp = _demo_results(tmp_path)
    declared_samples = tuple(exp.glob("samples/*/*/*/*/index.csv"))
    declared_logs = tuple(exp.glob("models/*/*/*/train_log.csv"))
    _train_log(exp / "models" / "subject" / "A" / "stale" / "train_log.csv", 1.0)  # an old run
    stale = exp / "samples" / "subject" / "A" / "stale" / "cfg"
    shutil.copytree(declared_samples[0].parent, stale)
    paper = Path(__file__).resolve().parents[2] / "data" / "paper_values.csv"
    bench = tmp_path / "bench"  # as bench train / bench sample write them on a CUDA device
    bench.mkdir()
    (bench / "train.json").write_text(json.dumps(
        {"device": "cuda", "base_model": "sdxl", "dco_over_db": 1.31,
         "peak_memory_gib": {"db": 14.25, "dco": 15.5}}))
    (bench / "sample.json").write_text(json.dumps(
        {"device": "cuda", "model": "sdxl", "rg_over_cfg": 1.45, "official_rg_over_cfg": 1.9,
         "peak_memory_gib": {"cfg": 9.0, "rg": 11.0, "rg_official": 10.0}}))
    claims = exp / "tables" / "claims.csv"  # as `dcobench claims` writes it
    pd.DataFrame([{"registered": "abc123", "claims_file": "c.yaml", "claim": "dco_prompt",
                   "test": "prompt_acc: dco − db @ cfg", "effect": 0.05, "ci_low": 0.01,
                   "ci_high": 0.09, "units": 8, "concepts": 2, "verdict": "held", "note": "",
                   "statement": "DCO beats DB", "secondary": False, "claim_verdict": "held"}]
                 ).to_csv(claims, index=False)
    inputs = {p.name for p in (exp / "tables").iterdir()}
    out = build_report(ReportOptions(exp_dir=exp, out=exp / "report.html", title="t",
                                     sample_indexes=declared_samples, train_logs=declared_logs,
                                     claims=claims, paper_values=paper, bench_dir=bench,
                                     grids_per_experiment=1, grid_prompts=3, loss_plots_inline=1))
    figs = exp / "figures"
    for name in ("fig1/fig1", "fig1/fig9a", "fig1/fig9b", "table1/pareto_merge",
                 "fig1/grid_subject_A", "loss/subject_A_dco", "train_loss"):
        assert (figs / f"{name}.png").exists() and (figs / f"{name}.pdf").exists(), name
    assert not (figs / "fig1" / "grid_subject_B.png").exists()  # grids_per_experiment=1
    for name in ("fig1/variants_subject", "fig1/variants_subject_customization",
                 "fig1/paired_subject_stylization", "table1/table1", "paper_vs_ours"):
        for ext in (".csv", ".md", ".tex"):
            assert (exp / "tables" / f"{name}{ext}").exists(), name + ext
    written = {p.name for p in (exp / "tables").iterdir()} - inputs  # what rule report declares
    assert written == {"fig1", "table1", "paper_vs_ours.csv", "paper_vs_ours.md", "paper_vs_ours.tex"}
    vs = pd.read_csv(exp / "tables" / "paper_vs_ours.csv")
    assert len(vs) == len(pd.read_csv(paper))  # one row per published number
    assert vs.loc[0, "ours"] == pytest.approx(pd.read_csv(exp / "tables" / "summary.csv").query(
        "experiment == 'fig1' and prompt_set == 'all' and variant == 'pretrained' and "
        "metric == 'dino' and guide == 'cfg'")["mean"].item())
    timing = vs.set_index("metric")
    assert timing.loc["max_memory_allocated", "ours"] == pytest.approx(15.5 * 1024)  # MiB
    assert timing.loc["sample_time_ratio", "ours"] == pytest.approx(1.9)
    assert "rg_over_cfg): 1.45" in timing.loc["sample_time_ratio", "ours_from"]
    text = out.read_text(encoding="utf-8")
    assert _offline(text) and "<script" not in text and "<link" not in text
    n_img = text.count('src="data:image/png;base64,')
    # 3 Pareto fig1, merge, grid, 2 loss, 1 DCO operating point (loss_plots_inline=1)
    assert n_img == text.count("<figcaption>") == 8
    assert {p.name for p in (figs / "operating_point").glob("*.png")} == {
        "subject_A_dco.png", "subject_B_dco.png"}  # DCO runs only; the stale run is not read
    assert "1 more operating-point figures" in text and "DCO operating point per run" in text
    assert text.count("<caption>") >= 6
    assert text.index("Our pre-registered claims") < text.index("Paper vs ours") \
        < text.index("Experiment fig1") < text.index("Experiment table1")
    assert text.index("<h2>Paper vs ours</h2>") < text.index("rows = variants")  # numbers, then grids
    assert "at commit abc123" in text and "[+0.010, +0.090]" in text
    assert "Paper Fig 9a" in text and "Paper Table 1" in text
    assert "2 more per-run loss plots" in text
    assert "A/stale" not in text and not (figs / "loss" / "subject_A_stale.png").exists()


def test_offline_check_catches_remote_links():
    assert not _offline('<img src="https://example.org/a.png">')
    assert not _offline("<a href='http://x'>")
    assert _offline('<img src="data:image/png;base64,AAAA">')


def test_a_metric_that_scored_fewer_concepts_is_named():
    from dcobench.report.build import _coverage_note

    cell = pd.DataFrame({"metric": ["dino", "prompt_acc", "dino"], "n_concepts": [3, 2, 3]})
    assert _coverage_note(cell) == (" Warning: prompt_acc scored only 2 of 3 concepts; its mean "
                                    "is over those.")
    assert _coverage_note(cell[cell["metric"] == "dino"]) == ""
