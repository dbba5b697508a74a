"""Semantic config checks and per-stage options, used by the Snakefile at DAG-build time.

The JSON schema checks shapes and types; this module checks names against the registries and
the concept folders on disk, so a mistake fails `snakemake -n` with a message naming the key or
file, before any job runs. Importing it must stay cheap (no diffusers / transformers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dcobench.data.concept import ConceptError, load_concept
from dcobench.data.demo import demo_names
from dcobench.guidance import parse_guide
from dcobench.registry import Registry, unknown_name_message

KINDS = ("subject", "style")


class ConfigError(ValueError):
    """A config mistake; the message names the key and what to change."""


@dataclass(frozen=True)
class ConceptRef:
    name: str
    kind: str
    path: Path
    class_noun: str  # the class noun (for a demo concept not yet drawn: from its recipe)
    demo: bool = False  # drawn by rule demo_data


def _check_names(key: str, names: list[str], registry: Registry, errors: list[str]) -> None:
    for name in names:
        if name not in registry:
            errors.append(f"{key}: {unknown_name_message(registry.axis, name, registry.names())}")


def check_config(config: dict) -> dict[str, ConceptRef]:
    """Validate names and concept folders; return the concepts by name. Raises ConfigError."""
    from dcobench.merge import MERGERS
    from dcobench.methods import METHODS
    from dcobench.scoring import SCORERS

    errors: list[str] = []
    for kind in KINDS:
        _check_names(f"train.methods.{kind}", config["train"]["methods"][kind], METHODS, errors)
        _check_names(f"score.metrics.{kind}", config["score"]["metrics"][kind], SCORERS, errors)
    _check_names("score.metrics.merge", config["score"]["metrics"]["merge"], SCORERS, errors)
    _check_names("merge.methods", config["merge"]["methods"], METHODS, errors)
    _check_names("merge.mergers", config["merge"]["mergers"], MERGERS, errors)
    _check_names("analysis.noise_distance.methods",
                 config["analysis"]["noise_distance"]["methods"], METHODS, errors)
    for key in ("sample", "merge"):
        for guide in config[key]["guides"]:
            try:
                parse_guide(guide)
            except ValueError as exc:
                errors.append(f"{key}.guides: {exc}")
    for name in config["merge"]["methods"]:
        for kind in KINDS:
            if name in METHODS and name not in config["train"]["methods"][kind]:
                errors.append(f"merge.methods: {name!r} is not trained for {kind}s "
                              f"(add it to train.methods.{kind})")
    concepts = _check_concepts(config["data"], errors)
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    return concepts


def _check_concepts(data: dict, errors: list[str]) -> dict[str, ConceptRef]:
    root, demo = Path(data["root"]), data["demo"]
    concepts: dict[str, ConceptRef] = {}
    for kind in KINDS:
        for name in data[f"{kind}s"]:
            path = root / name
            if name in concepts:
                errors.append(f"data: concept {name!r} is listed twice")
                continue
            if demo and name in demo_names():
                recipe = demo_recipe(name)
                if recipe.kind != kind:
                    errors.append(f"data.{kind}s: demo concept {name!r} is a {recipe.kind}")
                concepts[name] = ConceptRef(name, kind, path, recipe.class_noun, demo=True)
                continue
            if not path.is_dir():
                hint = f"; demo concepts: {', '.join(demo_names())}" if demo else ""
                errors.append(f"data.{kind}s: concept folder {path} does not exist "
                              f"(a concept is a folder of images + concept.yaml){hint}")
                continue
            try:
                concept = load_concept(path)
            except ConceptError as exc:
                errors.append(f"data.{kind}s: {exc}")
                continue
            if concept.kind != kind:
                errors.append(f"data.{kind}s: {path}/concept.yaml says kind: {concept.kind}, "
                              f"but it is listed under data.{kind}s")
            concepts[name] = ConceptRef(name, kind, path, concept.class_noun)
    return concepts


def demo_recipe(name: str):
    """A demo concept's recipe (kind, class noun, token), without drawing it."""
    from dcobench.data.demo import DEMO_CONCEPTS

    return DEMO_CONCEPTS[name]


def train_options(config: dict, kind: str) -> dict:
    """The TrainOptions fields a rule passes for concepts of `kind`."""
    t = config["train"]
    return {
        "steps": t["steps"][kind], "rank": t["rank"][kind], "alpha": t.get("alpha"),
        "lr": t["lr"], "ti_lr": t["ti_lr"], "textual_inversion": t.get("textual_inversion", True),
        "captions": t["captions"], "beta": t["beta"], "offset_noise": t["offset_noise"][kind],
        "snr_gamma": t.get("snr_gamma"), "max_grad_norm": t.get("max_grad_norm", 1.0),
        "resolution": t["resolution"], "batch_size": t.get("batch_size", 1),
        "seed": config["seed"], "prior_weight": t["prior"]["weight"],
        "checkpoints": [c for c in t.get("checkpoints", []) if c < t["steps"][kind]],
    }


def prior_options(config: dict) -> dict:
    p, t = config["train"]["prior"], config["train"]
    return {"prompt": p["prompt"], "count": p["count"], "seed": config["seed"],
            "steps": p["steps"], "cfg": p["cfg"], "resolution": t["resolution"],
            "scheduler": config["sample"]["scheduler"], "batch_size": config["sample"]["batch_size"]}


def sample_options(config: dict, guides: list[str]) -> dict:
    s = config["sample"]
    return {"guides": list(guides), "num_prompts": s["num_prompts"], "seeds": s["seeds"],
            "steps": s["steps"], "w_text": s["w_text"], "scheduler": s["scheduler"],
            "resolution": s["resolution"], "batch_size": s["batch_size"],
            "captions": config["train"]["captions"]}
