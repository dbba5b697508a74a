"""What the report draws for each experiment: Pareto axes per group, the paper's figure and
table ids with their titles, and file stems under results/{exp}/figures|tables/{experiment}/.

Fig 9 split (our choice; the paper's App. D.2 prompt sets, see config/paper.yaml): the fig1 experiment samples the
customization and stylization prompt sets (50 + 50 × 2 seeds); Fig 1 pools both, Fig 9a is the
customization set alone and Fig 9b the stylization set alone.
"""

from __future__ import annotations

from .membership import ALL_PROMPTS

# group -> (x metric, y metric) of its Pareto figure (x = image similarity, y = image-text)
PARETO_AXES = {
    "subject": ("dino", "siglip_text"),
    "style": ("siglip_image", "siglip_text"),
    "merge": ("dino", "siglip_image"),
}
GROUP_TITLES = {
    "subject": "subject personalization",
    "style": "style personalization",
    "merge": "my subject in my style (merged LoRAs)",
}
# (experiment, group, prompt set) -> (paper figure id, title)
PAPER_FIGURES = {
    ("fig1", "subject", ALL_PROMPTS): (
        "fig1", "Paper Fig 1: subject personalization, customization + stylization prompts"),
    ("fig1", "subject", "customization"): (
        "fig9a", "Paper Fig 9a: subject personalization, customization prompts"),
    ("fig1", "subject", "stylization"): (
        "fig9b", "Paper Fig 9b: subject personalization, stylization prompts"),
    ("fig5", "style", ALL_PROMPTS): ("fig5", "Paper Fig 5: style personalization (Parti prompts)"),
    ("fig8a", "subject", ALL_PROMPTS): (
        "fig8a", "Paper Fig 8a: comprehensive vs compact captions (DB and DCO)"),
    ("fig8b", "subject", ALL_PROMPTS): ("fig8b", "Paper Fig 8b: DCO with β ∈ {0.5, 1, 2}"),
}
PAPER_TABLES = {
    ("table1", "merge", ALL_PROMPTS): ("table1", "Paper Table 1: my subject in my style"),
}
PAPER_ORDER = ["fig1", "fig5", "table1", "fig8a", "fig8b", "oneshot"]
GROUP_ORDER = ["subject", "style", "merge"]


def experiment_order(names) -> list[str]:
    """Paper experiments in paper order, then any other experiment alphabetically."""
    names = set(names)
    return [n for n in PAPER_ORDER if n in names] + sorted(names - set(PAPER_ORDER))


def prompt_set_order(names) -> list[str]:
    """"all" first, then the families alphabetically."""
    names = set(names)
    return ([ALL_PROMPTS] if ALL_PROMPTS in names else []) + sorted(names - {ALL_PROMPTS})


def _suffix(prompt_set: str) -> str:
    return "" if prompt_set == ALL_PROMPTS else f"_{prompt_set}"


def _stem(prefix: str, paper: dict, experiment: str, group: str,
          prompt_set: str) -> tuple[str, str]:
    key = (experiment, group, prompt_set)
    if key in paper:
        return paper[key]
    title = f"{experiment}: {GROUP_TITLES[group]}, prompt set {prompt_set}"
    return f"{prefix}_{group}{_suffix(prompt_set)}", title


def figure_stem(experiment: str, group: str, prompt_set: str) -> tuple[str, str]:
    """(file stem, title) of a Pareto figure: the paper id when it is one, else
    pareto_{group}[_{prompt set}]."""
    return _stem("pareto", PAPER_FIGURES, experiment, group, prompt_set)


def table_stem(experiment: str, group: str, prompt_set: str) -> tuple[str, str]:
    """(file stem, title) of a per-variant table: Table 1 for the table1 merges, else
    variants_{group}[_{prompt set}]."""
    return _stem("variants", PAPER_TABLES, experiment, group, prompt_set)


def paired_stem(group: str, prompt_set: str) -> str:
    return f"paired_{group}{_suffix(prompt_set)}"
