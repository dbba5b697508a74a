"""Stage command lines. Each module: `add_arguments(parser)` (cheap imports only) and `run(args)`.

Rules pass a stage's config section as `--options '<json>'`, so Snakemake reruns a job when its
options change; the JSON is parsed into the stage's frozen options dataclass, which validates it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

# stage -> (module implementing add_arguments(parser) and run(args), one-line help);
# `python -m dcobench STAGE`. A plug-in adds its own with register_stage (dcobench.plugins).
STAGES = {
    "prepare": ("dcobench.cli.prepare", "draw demo concepts, validate concept folders, build model presets"),
    "priors": ("dcobench.cli.priors", "generate class-prior images for DreamBooth + prior preservation"),
    "train": ("dcobench.cli.train", "train a LoRA (+ learned token) with an objective: dco | db (+ class priors)"),
    "sample": ("dcobench.cli.sample", "sample a model over the guidance grid (CFG, reward guidance)"),
    "score": ("dcobench.cli.score", "score sample folders (DINOv2, SigLIP, CLIP) into long tables"),
    "merge": ("dcobench.cli.merge", "merge a subject LoRA and a style LoRA"),
    "analyze": ("dcobench.cli.analyze", "analyses: noise distance per timestep (Fig 8c), LoRA column cosine (Fig 10)"),
    "aggregate": ("dcobench.cli.aggregate", "aggregate long score tables: means, bootstrap CIs, paired diffs"),
    "claims": ("dcobench.cli.claims", "evaluate pre-registered claims: paired bootstrap CIs and verdicts"),
    "report": ("dcobench.cli.report", "render tables, figures and the HTML report"),
    "bench": ("dcobench.cli.bench", "benchmarks written to results/bench/*.json"),
    "launch": ("dcobench.cli.launch", "submit a stage (or a sweep) to SLURM via submitit, or run it locally"),
    "new-concept": ("dcobench.cli.new_concept", "write a concept.yaml for a folder of your own photos"),
    "estimate": ("dcobench.cli.estimate", "GPU-hours per rule of a config (bench gpu's per-row costs)"),
    "doctor": ("dcobench.cli.doctor", "check models, CUDA, SLURM partitions, disk and estimates before submitting"),
    "record": ("dcobench.cli.record", "experiment records: write one from a results folder, diff two, rebuild a report"),
}


def register_stage(name: str, module: str, help_text: str) -> None:
    """Add a stage `python -m dcobench NAME` implemented by `module`."""
    if name in STAGES:
        raise ValueError(f"stage {name!r} is registered twice")
    STAGES[name] = (module, help_text)


def add_options_argument(parser) -> None:
    parser.add_argument("--options", default="{}", metavar="JSON",
                        help="stage options as a JSON object (the config section; see config.yaml)")


def build_options(cls, options_json: str, **fixed):
    """Instantiate dataclass `cls` from JSON options plus fixed fields, coercing types."""
    try:
        raw = json.loads(options_json or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"--options is not valid JSON: {exc}") from exc
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    values = {**raw, **{k: v for k, v in fixed.items() if v is not None}}
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(hints[k], v) for k, v in values.items()})


def _coerce(hint, value):
    if value is None:
        return None
    text = str(hint)
    if "Path" in text:
        return Path(value)
    if "tuple" in text and isinstance(value, list | tuple):
        return tuple(value)
    return value
