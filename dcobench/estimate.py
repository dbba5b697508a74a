"""GPU-hours of a config, per rule, from one per-row cost source.

Every GPU stage is counted in SDXL UNet rows (one latent through the UNet once):
- train: `steps` × batch × (grad rows, each a forward + backward, + DCO's no-grad reference row;
  a class-prior row per step for DB + p.p.);
- priors: count × steps × 2 rows (CFG); sample: images × steps × rows per guide (CFG 2, reward
  guidance 3), split over config sample.chunks jobs; noise_distance_run: timesteps × noises × 2
  rows (ε_θ and ε_φ per draw, dcobench/analysis/noise_distance.py; the reference images only
  cycle through the draws, they do not multiply them).
Scoring, merging and VAE decodes are not UNet-bound and are not counted.

Per-row costs: dcobench/costs.py, i.e. `results/bench/gpu.json` (`python -m dcobench bench gpu`
on your GPU) when it holds `ms_per_unet_row`, otherwise the fallbacks documented there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dcobench.costs import DEFAULT_MS_PER_UNET_ROW, REFERENCE_RESOLUTION, ms_per_unet_row

BENCH_JSON = Path("results/bench/gpu.json")
# The one per-row cost source is dcobench/costs.py (bench gpu's measurement, else its fallback).
MS_PER_UNET_ROW = DEFAULT_MS_PER_UNET_ROW["sample"]
ROWS_PER_GUIDE = {"cfg": 2, "rg": 3}  # UNet rows per image and step: uncond + cond (+ θ)


@dataclass(frozen=True)
class Costs:
    """Milliseconds per UNet row: no-grad forward and training (forward + backward)."""

    unet_row_ms: float
    train_row_ms: float
    source: str


def load_costs(bench_json: Path = BENCH_JSON, resolution: int = REFERENCE_RESOLUTION) -> Costs:
    """Per-row costs at `resolution` from dcobench.costs: `bench gpu`'s measured
    `ms_per_unet_row` (sample and train) when its JSON holds them, else the fallbacks there."""
    fwd, fwd_source = ms_per_unet_row("sample", resolution, bench_json)
    train, train_source = ms_per_unet_row("train", resolution, bench_json)
    source = fwd_source if fwd_source == train_source else f"{fwd_source}; train: {train_source}"
    return Costs(fwd, train, source)


def _guide_rows(guides: list[str]) -> int:
    return sum(ROWS_PER_GUIDE["cfg" if g == "cfg" else "rg"] for g in guides)


def images_per_guide(config: dict, group: str, live: bool) -> int:
    """(prompt, seed) slots of one sample folder of `group` (prompt sets, num_prompts, seeds)."""
    from dcobench.data import prompts

    s = config["sample"]
    names = (s.get("prompt_sets") or {}).get(group) or prompts.DEFAULT_SETS[group]
    total = 0
    for name in names:
        set_name = prompts.resolve_set(group, name, live)
        if set_name not in prompts.PROMPT_SETS:
            raise ValueError(f"prompt set {set_name!r} is drawn per concept (world); "
                             "the estimate counts registered sets only")
        count = len(prompts.select(prompts.PROMPT_SETS[set_name], s.get("num_prompts")))
        total += count * len((s.get("set_seeds") or {}).get(set_name, s["seeds"]))
    return total


def sample_rows(config: dict, group: str, live: bool, guides: list[str]) -> int:
    """UNet rows of one model's sample grid (all chunks)."""
    return images_per_guide(config, group, live) * config["sample"]["steps"] * _guide_rows(guides)


def train_rows(options: dict, objective: str, prior: bool) -> tuple[int, int]:
    """(grad rows, no-grad rows) of one training run."""
    steps, batch = options["steps"], options.get("batch_size", 1)
    grad = steps * batch * (2 if prior else 1)
    ref = steps * batch if objective == "dco" else 0
    return grad, ref


@dataclass
class RuleEstimate:
    rule: str
    jobs: int = 0
    hours: float = 0.0
    max_job_hours: float = 0.0

    def add(self, job_hours: float, count: int = 1) -> None:
        self.jobs += count
        self.hours += job_hours * count
        self.max_job_hours = max(self.max_job_hours, job_hours)


def estimate(config: dict, costs: Costs) -> dict[str, RuleEstimate]:
    """GPU-hours per rule of the experiments `config` selects (shared models counted once)."""
    from dcobench.config import load_setup, prior_options, train_options

    # what runs does not depend on the models (checked by `doctor` and the DAG build)
    setup = load_setup({**config, "models": {}}, decode=False)
    plan, s = setup.plan, config["sample"]
    fwd_h, train_h = costs.unet_row_ms / 3.6e6, costs.train_row_ms / 3.6e6
    out: dict[str, RuleEstimate] = {}

    def rule(name):
        return out.setdefault(name, RuleEstimate(name))

    for kind, _, v in plan.models:
        var = setup.variants[v]
        if var.trained:
            grad, ref = train_rows(train_options(config, kind, v), var.objective, var.prior)
            rule("train").add(grad * train_h + ref * fwd_h)
    classes = {setup.concepts[c].class_noun for _, c, v in plan.models if setup.variants[v].prior}
    p = prior_options(config)
    for _ in classes:
        rule("priors").add(p["count"] * p["steps"] * 2 * fwd_h)
    chunks = s.get("chunks") or {}
    if s.get("group_size", 1) == "concept":  # one job per (kind, concept, chunk): every model
        for (kind, c), members in plan.sample_groups().items():
            n = int(chunks.get(kind, 1))
            rows = sum(sample_rows(config, kind, setup.concepts[c].live,
                                   ["cfg"] if v == "pretrained" else s["guides"]) for v in members)
            rule("sample_group").add(rows * fwd_h / n, n)
    else:
        for kind, c, _ in plan.evaluated:
            n = int(chunks.get(kind, 1))
            rows = sample_rows(config, kind, setup.concepts[c].live, s["guides"])
            rule("sample").add(rows * fwd_h / n, n)
        for kind, c in plan.pretrained:
            n = int(chunks.get(kind, 1))
            rows = sample_rows(config, kind, setup.concepts[c].live, ["cfg"])
            rule("sample_pretrained").add(rows * fwd_h / n, n)
    for _ in plan.merges:
        n = int(chunks.get("merge", 1))
        rows = sample_rows(config, "merge", False, config["merge"]["guides"])
        rule("sample_merge").add(rows * fwd_h / n, n)
    nd = config["analysis"]["noise_distance"]
    for _ in plan.noise_distance:
        rule("noise_distance_run").add(nd["timesteps"] * nd["noises"] * 2 * fwd_h)
    return out


def profile_limits(profile: Path) -> dict[str, float]:
    """Rule -> its time limit in hours from a Snakemake SLURM profile (runtime, minutes)."""
    from dcobench.launch import profile_resources
    from dcobench.yamlio import load_yaml

    path = Path(profile) / "config.yaml" if Path(profile).is_dir() else Path(profile)
    if not path.is_file():
        return {}
    rules = (load_yaml(path) or {}).get("set-resources") or {}
    return {r: profile_resources(path, r).runtime / 60 for r in rules}


def report_lines(rules: dict[str, RuleEstimate], costs: Costs,
                 limits: dict[str, float] | None = None) -> list[str]:
    """The table `estimate` and `doctor` print: per rule, then the total."""
    limits = limits or {}
    lines = [f"GPU-hour estimate ({costs.source}; {costs.unet_row_ms:g} ms per UNet row, "
             f"{costs.train_row_ms:g} ms per training row)",
             f"  {'rule':<20} {'jobs':>6} {'GPU-h':>9} {'max h/job':>10} {'limit h':>8}"]
    for r in sorted(rules.values(), key=lambda r: -r.hours):
        limit = limits.get(r.rule)
        flag = "  OVER LIMIT" if limit and r.max_job_hours > limit else ""
        lines.append(f"  {r.rule:<20} {r.jobs:>6} {r.hours:>9.1f} {r.max_job_hours:>10.2f} "
                     f"{limit if limit else math.nan:>8.1f}{flag}")
    total = sum(r.hours for r in rules.values())
    lines.append(f"  {'total':<20} {sum(r.jobs for r in rules.values()):>6} {total:>9.1f}")
    return lines


def load_config(configfile: Path, base: Path = Path("config.yaml")) -> dict:
    """The config snakemake builds for `--configfile configfile`: the Snakefile's config.yaml
    updated (nested keys merged) with `configfile`."""
    from dcobench.yamlio import load_yaml

    def update(into: dict, new: dict) -> dict:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                update(into[key], value)
            else:
                into[key] = value
        return into

    config = load_yaml(base) if Path(base).is_file() else {}
    return update(config or {}, load_yaml(configfile) or {})
