"""Figures, tables and the HTML report render from small synthetic aggregated tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dcobench.report import (
    Section,
    build_html,
    loss_figure,
    method_table,
    noise_distance_figure,
    pareto_figure,
    sample_grid,
    write_table,
)


@pytest.fixture
def summary() -> pd.DataFrame:
    rows = []
    for m_i, method in enumerate(["db", "dco"]):
        for guide, omega in [("cfg", 7.5), ("rg2", 2.0), ("rg3", 3.0), ("rg5", 5.0)]:
            for metric, base in [("dino", 0.4 + 0.1 * m_i), ("siglip_text", 0.8 - 0.05 * m_i)]:
                w = 0.0 if guide == "cfg" else omega
                mean = base + (0.02 * w if metric == "dino" else -0.03 * w)
                rows.append(dict(group="subject", method=method, guide=guide, omega=omega,
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


def test_method_table_and_write_table(tmp_path, summary):
    table = method_table(summary, "subject")
    assert list(table.columns) == ["method", "guide", "Subject fidelity (DINOv2) ↑",
                                   "Prompt fidelity (SigLIP) ↑"]
    assert list(table["guide"][:4]) == ["cfg (ω=7.5)", "rg (ω=2)", "rg (ω=3)", "rg (ω=5)"]
    first = table.iloc[0]
    assert first["method"] == "db" and first["Subject fidelity (DINOv2) ↑"] == "0.400 ± 0.020"
    paths = write_table(table, tmp_path / "tab" / "subject", "Subject results (mean ± 95% CI)")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    md = paths[1].read_text(encoding="utf-8")
    assert "Subject results" in md and "| db | cfg (ω=7.5) |" in md
    tex = paths[2].read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"$\uparrow$" in tex
    assert r"95\% CI" in tex and "±" not in tex
    assert pd.read_csv(paths[0]).shape == table.shape


def _sample_folder(root, method, slots, rng):
    root.mkdir(parents=True)
    rows = []
    for p, s in slots:
        name = f"p{p:03d}_s{s}.png"
        pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
        rows.append(dict(file=name, prompt_index=p, seed=s, prompt=f"a <dog> {p}",
                         scoring_prompt=f"a dog number {p} sitting on a very long wall",
                         guide="rg3", omega=3.0))
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
    rows = [dict(concept=c, method=m, timestep=t, distance=(1 + i) * t / 1000 + 0.01 * j,
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
        Section("Subjects", [(figs[0], "Pareto <front>"), (method_table(summary, "subject"),
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
