"""The stages of `python -m dcobench STAGE`: name -> (module, one-line help).

Each module (dcobench/cli/ for the core's) implements `add_arguments(parser)` (cheap imports
only) and `run(args)`; every Snakemake rule calls one. A plug-in adds its own stages with
`register_stage` (dcobench.plugins). Standard library only.
"""

from __future__ import annotations

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
    "calibrate-beta": ("dcobench.cli.calibrate_beta", "choose DCO's β for a base model from a short β sweep's train logs"),
}


def register_stage(name: str, module: str, help_text: str) -> None:
    """Add a stage `python -m dcobench NAME` implemented by `module`."""
    if name in STAGES:
        raise ValueError(f"stage {name!r} is registered twice")
    STAGES[name] = (module, help_text)
