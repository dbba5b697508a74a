"""Aggregation of score tables and rendering of figures, tables and the HTML report."""

from .aggregate import (
    aggregate,
    bootstrap_ci,
    metric_info,
    read_scores,
    reference_variant,
    select_cell,
    write_aggregates,
)
from .figures import pareto_figure, sample_grid
from .html import Section, build_html, render_html
from .membership import (
    ALL_PROMPTS,
    PRETRAINED,
    assign_experiments,
    expand_prompt_sets,
    load_membership,
    prompt_family,
)
from .paper import paper_vs_ours, read_paper_values
from .tables import merge_table, to_latex, to_markdown, variant_table, write_table
from .training_figures import (
    lora_cosine_figure,
    loss_figure,
    loss_overview_figure,
    noise_distance_figure,
    run_loss_figure,
)

__all__ = [
    "ALL_PROMPTS", "PRETRAINED", "Section", "aggregate",
    "assign_experiments", "bootstrap_ci", "build_html", "expand_prompt_sets", "load_membership",
    "lora_cosine_figure", "loss_figure", "loss_overview_figure",
    "merge_table", "variant_table", "metric_info", "noise_distance_figure", "paper_vs_ours",
    "pareto_figure", "prompt_family", "read_paper_values", "read_scores", "reference_variant",
    "render_html", "run_loss_figure", "sample_grid", "select_cell", "to_latex", "to_markdown",
    "write_aggregates", "write_table",
]
