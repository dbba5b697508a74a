"""Aggregation of score tables and rendering of figures, tables and the HTML report."""

from .aggregate import (
    METRICS,
    MetricInfo,
    aggregate,
    bootstrap_ci,
    metric_info,
    read_scores,
    reference_method,
    write_aggregates,
)
from .figures import (
    lora_cosine_figure,
    loss_figure,
    noise_distance_figure,
    pareto_figure,
    sample_grid,
)
from .html import Section, build_html, render_html
from .tables import method_table, to_latex, to_markdown, write_table

__all__ = [
    "METRICS", "MetricInfo", "Section", "aggregate", "bootstrap_ci", "build_html",
    "lora_cosine_figure", "loss_figure", "method_table", "metric_info", "noise_distance_figure", "pareto_figure",
    "read_scores", "reference_method", "render_html", "sample_grid", "to_latex", "to_markdown",
    "write_aggregates", "write_table",
]
