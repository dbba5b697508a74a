"""The report of one results folder: the pre-registered claims (when tested) first, then paper
vs ours, then per experiment its Pareto figures, per-variant tables (Table 1 for merges), paired
differences against DCO and sample grids, then training losses (one plot per run) and the
analyses. Rendered only from the aggregated tables (tables/summary.csv, paired.csv,
per_concept.csv, claims.csv), plus sample folders for the grids and train logs for the loss
plots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dcobench.layout import Layout
from dcobench.sample.guides import Guide

from .claims import claims_section
from .figures import pareto_figure, sample_grid
from .html import Section, build_html
from .membership import PRETRAINED
from .operating import operating_point_items
from .paper import paper_vs_ours, read_paper_values
from .specs import (
    GROUP_ORDER,
    GROUP_TITLES,
    PARETO_AXES,
    experiment_order,
    figure_stem,
    paired_stem,
    prompt_set_order,
    table_stem,
)
from .tables import merge_table, variant_table, write_table
from .training_figures import (
    lora_cosine_figure,
    lora_cosine_table,
    loss_overview_figure,
    noise_distance_figure,
    run_loss_figure,
)

CI_NOTE = "error bars / ± : 95% percentile bootstrap CI over concepts (1000 resamples, seed 0)"


@dataclass(frozen=True)
class ReportOptions:
    """Inputs of one report, all declared by the DAG: exp_dir: results/<exp> (its tables/ are
    read; written, each a declared output of rule `report`: figures/, tables/<experiment>/ per
    experiment of the summary, tables/paper_vs_ours.{csv,md,tex} with paper values,
    tables/lora_cosine.{csv,md,tex} with lora_cosine); sample_indexes: index.csv of the sample
    folders of the grids; train_logs: train_log.csv per run; the analyses' csv files (None: not
    run); claims: the claims table (None: no claims); paper_values: csv (None or missing: no
    paper section); bench_dir: results/bench (timing rows); limits on what is embedded. Nothing
    else in exp_dir is read or written. The limits' defaults serve library callers; pipeline
    runs pass report.* from the config, whose defaults are the schema's (a unit test keeps both
    equal)."""

    exp_dir: Path
    out: Path
    sample_indexes: tuple[Path, ...] = ()
    train_logs: tuple[Path, ...] = ()
    noise_distance: Path | None = None
    lora_cosine: Path | None = None
    claims: Path | None = None  # tables/claims.csv (dcobench claims); None: no claims section
    claims_caveat: str | None = None  # report.claims_caveat: printed above the claims table
    title: str = "dcobench report"
    paper_values: Path | None = None
    bench_dir: Path | None = None
    prepared: tuple[Path, ...] = ()  # prepared/<concept>.json: reference images beside the grids
    grids_per_experiment: int = 4  # concepts with a sample grid per experiment and group
    grid_prompts: int = 4  # prompt columns per grid
    loss_plots_inline: int = 12  # per-run loss plots embedded in the html (all are written)
    grid_dir: Path | None = None  # pre-rendered grids <experiment>/grid_<group>_<concept>.png
    #   (a record's images/), shown where no sample folder of the grid is given

    def __post_init__(self):
        for name in ("grids_per_experiment", "grid_prompts", "loss_plots_inline"):
            if getattr(self, name) < 0:
                raise ValueError(f"report: {name} must be >= 0")


def _figures(opts: ReportOptions) -> Path:
    return Path(Layout(opts.exp_dir).figures_dir())


def _tables(opts: ReportOptions) -> Path:
    return Path(Layout(opts.exp_dir).tables_dir())


def _grid_guide(guides) -> str:
    """The middle reward-guidance ω of the folder set, or cfg when there is none."""
    rg = sorted((Guide.parse(g) for g in guides if Guide.parse(g).kind == "rg"),
                key=lambda g: g.w_rg)
    return rg[len(rg) // 2].name if rg else "cfg"


def sample_sets(indexes) -> dict[tuple[str, str], dict[str, dict[str, Path]]]:
    """(group, concept) -> variant -> guide -> sample folder, from index.csv paths laid out as
    samples/{kind}/{concept}/{variant}/{guide}/ or merges/{pair}/{merge}/samples/{guide}/."""
    found: dict = {}
    for index in sorted(Path(p) for p in indexes):
        folder = index.parent
        if folder.parent.name == "samples" and folder.parents[3].name == "merges":
            guide, merge, pair = folder.name, folder.parents[1].name, folder.parents[2].name
            found.setdefault(("merge", pair), {}).setdefault(merge, {})[guide] = folder
        else:
            guide, variant, concept, kind = folder.parts[-1:-5:-1]
            found.setdefault((kind, concept), {}).setdefault(variant, {})[guide] = folder
    return found


def _grid_rows(by_variant: dict[str, dict[str, Path]], variants: list[str]) -> dict[str, Path]:
    """Row label "variant (guide)" -> folder: pretrained first, every variant at the middle ω_rg
    (cfg when a variant has no reward-guidance folder)."""
    guide = _grid_guide({g for m in variants if m in by_variant for g in by_variant[m]})
    order = sorted(variants, key=lambda m: (m != PRETRAINED, m))
    rows = {}
    for m in order:
        folders = by_variant.get(m, {})
        g = guide if guide in folders else "cfg"
        if g in folders:
            rows[f"{m} ({g})"] = folders[g]
    return rows


def reference_images(prepared) -> dict[str, list[Path]]:
    """Concept name -> its reference images, from the prepared/<concept>.json records (each names
    the validated concept folder)."""
    from dcobench.data import load_concept

    refs: dict[str, list[Path]] = {}
    for record in prepared:
        for name, info in json.loads(Path(record).read_text())["concepts"].items():
            refs[name] = list(load_concept(Path(info["path"])).images)
    return refs


def _grid_references(refs: dict[str, list[Path]], group: str, concept: str) -> list[Path]:
    """The references of a grid: the concept's; a merge pair's subject and style alternating."""
    if group != "merge":
        return refs.get(concept, [])
    subject, _, style = concept.partition("__")
    a, b = refs.get(subject, []), refs.get(style, [])
    return [p for pair in zip(a, b, strict=False) for p in pair] or a or b


def _stored_grid(opts: ReportOptions, experiment: str, group: str, concept: str) -> list:
    """The grid of opts.grid_dir (a record's images/) as an item, [] when there is none."""
    png = opts.grid_dir / experiment / f"grid_{group}_{concept}.png" if opts.grid_dir else None
    if png is None or not png.exists():
        return []
    return [(png, f"{experiment} / {concept}: the sample grid as the run's report drew it "
             "(reduced size, from the record); rows = variants, columns = prompts, the same "
             "prompt and seed in every row.")]


def _grids(opts: ReportOptions, experiment: str, group: str, per_concept: pd.DataFrame,
           samples: dict, refs: dict[str, list[Path]]) -> list[tuple[Path, str]]:
    """Sample grids for the first `grids_per_experiment` concepts of the cell."""
    cell = per_concept[(per_concept["experiment"] == experiment) & (per_concept["group"] == group)]
    variants = sorted(set(cell["variant"]))
    items = []
    for concept in sorted(set(cell["concept"]))[:opts.grids_per_experiment]:
        rows = _grid_rows(samples.get((group, concept), {}), variants)
        if len(rows) < 1:
            items += _stored_grid(opts, experiment, group, concept)
            continue
        stem = _figures(opts) / experiment / f"grid_{group}_{concept}"
        references = _grid_references(refs, group, concept)
        png = sample_grid(rows, stem, max_prompts=opts.grid_prompts, references=references)[0]
        lead = "first column = the concept's reference images; " if references else ""
        items.append((png, f"{experiment} / {concept}: {lead}rows = variants (guidance in "
                      "brackets), columns = prompts; every row shows the same prompt and seed, "
                      "i.e. the same initial noise (paper Fig 3/4/6/13 layout)."))
    return items


def _coverage_note(cell: pd.DataFrame) -> str:
    """A warning for metrics that scored fewer concepts than the cell has: their means are over
    the concepts they could read, not over all of them."""
    n = cell.groupby("metric")["n_concepts"].max()
    short = n[n < n.max()]
    return "".join(f" Warning: {metric} scored only {k} of {n.max()} concepts; its mean is over "
                   "those." for metric, k in short.items())


def _cell_items(opts: ReportOptions, summary: pd.DataFrame, paired: pd.DataFrame,
                experiment: str, group: str, prompt_set: str) -> list:
    """Pareto figure, variant table and paired table of one (experiment, group, prompt set)."""
    items = []
    figs, tabs = _figures(opts) / experiment, _tables(opts) / experiment
    cell = summary[(summary["experiment"] == experiment) & (summary["group"] == group)
                   & (summary["prompt_set"] == prompt_set)]
    x, y = PARETO_AXES[group]
    if {x, y} <= set(cell["metric"]):
        stem, title = figure_stem(experiment, group, prompt_set)
        png = pareto_figure(cell, group, x, y, figs / stem, title=title)[0]
        items.append((png, f"{title}. x: {x}, y: {y}; one curve per variant through its "
                      "reward-guidance points ω_rg, CFG of the fine-tuned model as a diamond, "
                      f"the pretrained model as a star; {CI_NOTE}."))
    stem, title = table_stem(experiment, group, prompt_set)
    table = merge_table(cell) if group == "merge" else variant_table(cell, group)
    write_table(table, tabs / stem, f"{title} (mean ± 95% CI half-width over concepts)")
    items.append((table, f"{title}: mean ± 95% CI half-width over concepts "
                  f"(n = {int(cell['n_concepts'].max())} concepts).{_coverage_note(cell)}"))
    diffs = paired[(paired["experiment"] == experiment) & (paired["group"] == group)
                   & (paired["prompt_set"] == prompt_set)]
    if not diffs.empty:
        shown = diffs.drop(columns=["experiment", "group", "prompt_set"])
        write_table(shown, tabs / paired_stem(group, prompt_set),
                    f"{experiment}: paired differences vs the reference ({group}, {prompt_set})")
        items.append((shown.round(4), f"{experiment}, {group}, prompt set {prompt_set}: variant "
                      "minus the reference variant on the same (concept, prompt, seed) slots; "
                      f"mean over concepts, {CI_NOTE}."))
    return items


def experiment_section(opts: ReportOptions, experiment: str, data: dict, samples: dict,
                       refs: dict[str, list[Path]] | None = None) -> Section:
    """Everything one experiment draws, group by group."""
    summary = data["summary"]
    exp_rows = summary[summary["experiment"] == experiment]
    items = []
    for group in [g for g in GROUP_ORDER if g in set(exp_rows["group"])]:
        sets = prompt_set_order(exp_rows.loc[exp_rows["group"] == group, "prompt_set"])
        for prompt_set in sets:
            items += _cell_items(opts, summary, data["paired"], experiment, group, prompt_set)
        items += _grids(opts, experiment, group, data["per_concept"], samples, refs or {})
    groups = ", ".join(GROUP_TITLES[g] for g in GROUP_ORDER if g in set(exp_rows["group"]))
    return Section(f"Experiment {experiment}", items,
                   intro=f"{groups}; variants: {', '.join(sorted(set(exp_rows['variant'])))}.")


def paper_section(opts: ReportOptions, summary: pd.DataFrame) -> Section | None:
    """Paper vs ours, written to tables/paper_vs_ours.{csv,md,tex}; None without the file."""
    if opts.paper_values is None or not Path(opts.paper_values).exists():
        return None
    table = paper_vs_ours(read_paper_values(opts.paper_values), summary, opts.bench_dir)
    caption = ("Paper vs ours: every published number of data/paper_values.csv with our value of "
               "the same cell (variant, group, guide, prompt set, metric), delta = ours − paper "
               "and our 95% bootstrap CI over concepts; 'not in this run' where this run has no "
               "such cell or benchmark.")
    write_table(table, _tables(opts) / "paper_vs_ours", caption)
    return Section("Paper vs ours", [(table.round(4), caption)],
                   intro="Unless models.base is SDXL, this run's models are not the paper's "
                   "(the demo: the procedural world's small pretrained models; config/tiny.yaml: "
                   "RANDOM weights), so its numbers are not expected to match the published SDXL "
                   "numbers; the rows show where each of our values comes from (column ours_from).")


def training_section(opts: ReportOptions) -> Section | None:
    """Loss overview (mean per kind/variant), one loss plot per run, DCO's operating point
    (report.operating); the analyses."""
    figs = _figures(opts)
    logs = {tuple(p.parts[-4:-1]): p for p in sorted(Path(p) for p in opts.train_logs)}
    items = []
    if logs:
        png = loss_overview_figure(logs, figs / "train_loss")[0]
        items.append((png, "Training loss per (kind, variant), mean over concepts, smoothed."))
        runs = [(key, run_loss_figure(p, figs / "loss" / "_".join(key), "/".join(key))[0])
                for key, p in logs.items()]
        for key, png in runs[:opts.loss_plots_inline]:
            items.append((png, f"Training run {'/'.join(key)}: loss (raw and smoothed) and, "
                          "where logged, ℓ(θ), ℓ(φ) and the prior term."))
        if len(runs) > opts.loss_plots_inline:
            items.append((f"{len(runs) - opts.loss_plots_inline} more per-run loss plots are in "
                          "figures/loss/ (report.loss_plots_inline limits how many are embedded).",
                          ""))
        items += operating_point_items(logs, figs, opts.loss_plots_inline)
    nd, cos = opts.noise_distance, opts.lora_cosine
    if nd is not None:
        png = noise_distance_figure(nd, figs / "noise_distance")[0]
        items.append((png, "Noise distance per timestep on the reference images (paper Fig "
                      "8c): ‖ε_θ − ε_φ‖² summed over the latent elements, as §5.4 writes it "
                      "(the y label says so; tables without the sum show the per-element mean), "
                      "mean over concepts; band: 95% normal CI over concepts."))
    if cos is not None:
        png = lora_cosine_figure(cos, figs / "lora_cosine")[0]
        items.append((png, "Mean |cosine| between the columns of the subject and style LoRAs "
                      "per layer (paper Fig 10), averaged over (subject, style) pairs. The "
                      "paper's text says 'average cosine similarity' without saying whether "
                      "the sign is dropped; the signed mean is near 0 whenever column signs are "
                      "arbitrary, so the bars show the magnitude and the table keeps both."))
        table = lora_cosine_table(cos)
        caption = ("LoRA column cosine per variant and UNet block: signed mean and mean |cos| "
                   "over layers and (subject, style) pairs.")
        write_table(table, _tables(opts) / "lora_cosine", caption)
        items.append((table.round(4), caption))
    return Section("Training and analyses", items) if items else None


def build_report(opts: ReportOptions) -> Path:
    """Render every figure and table of `opts.exp_dir` and write the self-contained html."""
    tables = _tables(opts)
    data = {name: pd.read_csv(tables / f"{name}.csv", dtype={"experiment": str})
            for name in ("summary", "paired", "per_concept")}
    for name, df in data.items():
        if "experiment" not in df.columns or "prompt_set" not in df.columns:
            raise ValueError(f"{tables / (name + '.csv')}: no experiment / prompt_set column; "
                             "re-run `dcobench aggregate`")
    samples = sample_sets(opts.sample_indexes)
    sections = [claims_section(opts.claims, opts.claims_caveat), paper_section(opts, data["summary"])]
    refs = reference_images(opts.prepared)
    sections += [experiment_section(opts, e, data, samples, refs)
                 for e in experiment_order(data["summary"]["experiment"])]
    sections.append(training_section(opts))
    return build_html(opts.title, [s for s in sections if s is not None], opts.out)
