"""`python -m dcobench report`: tables, figures and one self-contained report.html, rendered
only from aggregated tables (plus sample folders for the qualitative grids)."""

from __future__ import annotations

from pathlib import Path

# group -> (x metric, y metric) of its Pareto figure
PARETO_AXES = {
    "subject": ("dino", "siglip_text"),
    "style": ("siglip_image", "siglip_text"),
    "merge": ("dino", "siglip_image"),
}
GROUP_TITLES = {
    "subject": "Subject personalization (paper Fig 1 / 9)",
    "style": "Style personalization (paper Fig 5)",
    "merge": "My subject in my style: merged LoRAs (paper Table 1)",
}


def add_arguments(parser) -> None:
    parser.add_argument("--exp-dir", required=True, help="results/<experiment>")
    parser.add_argument("--title", default="dcobench report")
    parser.add_argument("--out", required=True, help="report.html path")


def _grid_guide(guides: list[str]) -> str:
    rg = sorted((g for g in guides if g.startswith("rg")), key=lambda g: float(g[2:]))
    return rg[len(rg) // 2] if rg else "cfg"


def _sample_sets(exp: Path) -> dict[tuple[str, str], dict[str, dict[str, Path]]]:
    """(group, concept) -> guide -> method -> sample folder."""
    found: dict = {}
    for index in sorted(exp.glob("samples/*/*/*/*/index.csv")):
        guide, method, concept, kind = index.parent.parts[-1:-5:-1]
        found.setdefault((kind, concept), {}).setdefault(guide, {})[method] = index.parent
    for index in sorted(exp.glob("merges/*/*/samples/*/index.csv")):
        guide, merge, pair = index.parent.name, index.parents[2].name, index.parents[3].name
        found.setdefault(("merge", pair), {}).setdefault(guide, {})[merge] = index.parent
    return found


def run(args) -> None:
    import pandas as pd

    from dcobench.io import write_manifest
    from dcobench.report import (
        Section,
        build_html,
        lora_cosine_figure,
        loss_figure,
        method_table,
        noise_distance_figure,
        pareto_figure,
        sample_grid,
        write_table,
    )

    exp = Path(args.exp_dir)
    figures, tables = exp / "figures", exp / "tables"
    summary = pd.read_csv(tables / "summary.csv")
    paired = pd.read_csv(tables / "paired.csv")
    samples = _sample_sets(exp)
    sections = []
    for group in [g for g in PARETO_AXES if g in set(summary["group"])]:
        items = []
        x, y = PARETO_AXES[group]
        metrics = set(summary.loc[summary["group"] == group, "metric"])
        if {x, y} <= metrics:
            png = pareto_figure(summary, group, x, y, figures / f"pareto_{group}")[0]
            items.append((png, f"{GROUP_TITLES[group]}: {y} vs {x}; one curve per method over "
                          "ω_rg (reward guidance), CFG of the fine-tuned model as a diamond; "
                          "error bars: 95% bootstrap CI over concepts."))
        table = method_table(summary, group)
        write_table(table, tables / f"methods_{group}", GROUP_TITLES[group])
        items.append((table, f"{GROUP_TITLES[group]}: mean ± 95% CI half-width over concepts."))
        diffs = paired[paired["group"] == group]
        if not diffs.empty:
            write_table(diffs, tables / f"paired_{group}", f"Paired differences vs DCO ({group})")
            items.append((diffs.round(4), "Paired differences against DCO on the same "
                          "(concept, prompt, seed) slots; 95% bootstrap CI over concepts."))
        for (kind, concept), by_guide in sorted(samples.items()):
            if kind != group:
                continue
            guide = _grid_guide(list(by_guide))
            png = sample_grid(by_guide[guide], figures / f"grid_{group}_{concept}_{guide}")[0]
            items.append((png, f"{concept}, {guide}: rows = methods, columns = prompts; the same "
                          "seed and initial noise in every row."))
        sections.append(Section(GROUP_TITLES[group], items))
    logs = {f"{p.parts[-4]}/{p.parts[-3]}/{p.parts[-2]}": p
            for p in sorted(exp.glob("models/*/*/*/train_log.csv"))}
    analysis = []
    if logs:
        png = loss_figure(logs, figures / "train_loss")[0]
        analysis.append((png, "Training loss per run (smoothed)."))
    nd = exp / "analysis" / "noise_distance.csv"
    if nd.exists():
        png = noise_distance_figure(nd, figures / "noise_distance")[0]
        analysis.append((png, "Noise distance ‖ε_θ − ε_φ‖² per timestep on the reference "
                         "images (paper Fig 8c), mean over concepts."))
    cos = exp / "analysis" / "lora_cosine.csv"
    if cos.exists():
        png = lora_cosine_figure(cos, figures / "lora_cosine")[0]
        analysis.append((png, "Mean cosine between the columns of the subject and style LoRAs "
                         "per layer (paper Fig 10), averaged over (subject, style) pairs."))
    if analysis:
        sections.append(Section("Training and analyses", analysis))
    build_html(args.title, sections, args.out)
    write_manifest(figures, "report", {"title": args.title}, report=str(args.out))
    print(f"report: {args.out}")
