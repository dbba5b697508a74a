"""Semantic config checks and per-stage options, used by the Snakefile at DAG-build time.

The JSON schema checks shapes and types; this module checks names against the registries and
the concept folders on disk, so a mistake fails `snakemake -n` with a message naming the key or
file, before any job runs. Importing it must stay cheap (no diffusers / transformers).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dcobench.data.concept import ConceptError, load_concept, validate_concept
from dcobench.data.demo import DEMO_CONCEPTS, demo_names
from dcobench.experiments import Plan, build_plan, concept_name
from dcobench.merge.ids import pair_variants
from dcobench.merge.registry import MERGERS
from dcobench.modelspec import check_models
from dcobench.registry import Registry, unknown_name_message
from dcobench.sample.guides import Guide
from dcobench.score.metrics import SCORERS
from dcobench.spec.merge import MergeOptions
from dcobench.spec.options import from_config
from dcobench.spec.priors import PriorOptions
from dcobench.spec.sample import SampleOptions
from dcobench.spec.schema import SCHEMA, schema_defaults, section  # noqa: F401 (re-exported)
from dcobench.train.variants import Variant, check_checkpoint, parse_variants, variant_options

KINDS = ("subject", "style")


class ConfigError(ValueError):
    """A config mistake; the message names the key and what to change."""


@dataclass(frozen=True)
class ConceptRef:
    name: str
    kind: str
    path: Path  # the folder in the repository / data.root (for a source concept: yaml only)
    class_noun: str  # the class noun (for a demo concept not yet drawn: from its recipe)
    demo: bool = False  # drawn by rule demo_data
    world: bool = False  # drawn by rule world_concepts (data.world)
    source: str | None = None  # dataset name: images fetched by rule fetch_concept
    live: bool = False


@dataclass(frozen=True)
class Setup:
    """Everything the Snakefile needs from a checked config."""

    concepts: dict[str, ConceptRef]
    variants: dict[str, Variant]
    plan: Plan


def _check_names(key: str, names: list[str], registry: Registry, errors: list[str]) -> None:
    for name in names:
        if name not in registry:
            errors.append(f"{key}: {unknown_name_message(registry.axis, name, registry.names())}")


def _check_variant_names(key: str, names: list[str], variants: dict, errors: list[str]) -> None:
    for name in names:
        if name not in variants:
            errors.append(f"{key}: {unknown_name_message('variant', name, list(variants))}")


def check_config(config: dict) -> dict[str, ConceptRef]:
    """Validate names and concept folders; return the concepts by name. Raises ConfigError."""
    return load_setup(config).concepts


def load_setup(config: dict, decode: bool = True) -> Setup:
    """Validate registries, variants, experiments, model specs and concept folders (decoding
    every image of a folder the user owns when `decode`). Raises ConfigError."""
    errors: list[str] = []
    variants = parse_variants(config, errors)
    for kind in KINDS:
        _check_variant_names(f"train.variants.{kind}", config["train"]["variants"][kind], variants,
                             errors)
        _check_names(f"score.metrics.{kind}", config["score"]["metrics"][kind], SCORERS, errors)
    _check_names("score.metrics.merge", config["score"]["metrics"]["merge"], SCORERS, errors)
    merge_sides = [pair_variants(name) for name in config["merge"]["variants"]]
    _check_variant_names("merge.variants", list(dict.fromkeys(v for pair in merge_sides for v in pair)),
                         variants, errors)
    _check_names("merge.mergers", config["merge"]["mergers"], MERGERS, errors)
    _check_variant_names("analysis.noise_distance.variants",
                         config["analysis"]["noise_distance"]["variants"], variants, errors)
    for key in ("sample", "merge"):
        for guide in config[key]["guides"]:
            try:
                Guide.parse(guide)
            except ValueError as exc:
                errors.append(f"{key}.guides: {exc}")
    if not config.get("experiments"):
        for pair in merge_sides:
            for kind, name in zip(KINDS, pair, strict=True):
                if name in variants and name not in config["train"]["variants"][kind]:
                    errors.append(f"merge.variants: {name!r} is not trained for {kind}s "
                                  f"(add it to train.variants.{kind})")
    _check_prompt_sets(config, errors)
    _check_claims(config, errors)
    errors += check_models(config["models"])
    resolution = config["train"]["resolution"] if decode else None
    concepts = _check_concepts(config["data"], errors, resolution)
    plan = build_plan(config, variants, errors)
    _check_concepts_fit(config, concepts, plan, errors)
    for kind, _, v in plan.models:
        if v in variants and not variants[v].trained:
            msg = check_checkpoint(config, variants[v], kind)
            if msg and msg not in errors:
                errors.append(msg)
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    return Setup(concepts, variants, plan)


def _check_prompt_sets(config: dict, errors: list[str]) -> None:
    from dcobench.data.prompts import DEFAULT_SETS, GROUP_SETS, resolve_set

    for group, names in (config["sample"].get("prompt_sets") or {}).items():
        for name in names:
            try:
                resolve_set(group, name, live=False)
            except KeyError as exc:
                errors.append(f"sample.prompt_sets.{group}: {exc.args[0]} "
                              f"(known for {group}: {', '.join(GROUP_SETS.get(group, []))})")
    configured = config["sample"].get("prompt_sets") or DEFAULT_SETS
    sampled = {name for names in configured.values() for name in names}
    for name in config["sample"].get("set_seeds") or {}:
        if name not in sampled:
            errors.append(f"sample.set_seeds: {name!r} is not a prompt set this config samples "
                          f"({', '.join(sorted(sampled))})")


def _world_needs(config: dict, group: str) -> list[str]:
    """The config keys of `group` (subject | style | merge) that only world concepts can serve:
    prompt sets generated from a concept's world truth, and the oracle's metrics."""
    from dcobench.data.prompts import DEFAULT_SETS, GENERATED_SETS

    sets = (config["sample"].get("prompt_sets") or DEFAULT_SETS).get(group) or []
    keys = [f"sample.prompt_sets.{group} ({name})" for name in sets if name in GENERATED_SETS]
    metrics = config["score"]["metrics"][group]
    return keys + [f"score.metrics.{group} ({m})" for m in metrics
                   if m in SCORERS and SCORERS[m].model == "oracle"]


def _photo_needs(config: dict, group: str) -> list[str]:
    """The prompt sets of `group` written for real photos (DreamBooth, Parti, ...): a world
    model cannot draw them."""
    from dcobench.data.prompts import DEFAULT_SETS, GENERATED_SETS

    sets = (config["sample"].get("prompt_sets") or DEFAULT_SETS).get(group) or []
    return [f"sample.prompt_sets.{group} ({name})" for name in sets if name not in GENERATED_SETS]


def _check_concepts_fit(config: dict, concepts: dict[str, ConceptRef], plan: Plan,
                        errors: list[str]) -> None:
    """Refuse, before any job runs, a concept the configured prompt sets or metrics cannot use:
    a photo concept where the world's truth-generated sets or oracle metrics are asked, a world
    concept where sets written for photos are asked."""
    evaluated = {c for _, c, _ in plan.evaluated} | {c for _, c in plan.pretrained}
    merged = {c for s, t, _ in plan.merges for c in (s, t)}
    for name, ref in concepts.items():
        groups = ([ref.kind] if name in evaluated else []) + (["merge"] if name in merged else [])
        for group in groups:
            if not ref.world and (keys := _world_needs(config, group)):
                errors.append(
                    f"data.{ref.kind}s: {name!r} is not a world concept, but {', '.join(keys)} "
                    "need the world's truth file; either add it to a config for photos "
                    "(config/my_concepts.yaml on config/paper.yaml or config/smoke-real.yaml, "
                    "see README 'Your own subjects and styles'), or set those keys to photo "
                    "prompt sets and metrics in your overlay")
            elif ref.world and (keys := _photo_needs(config, group)):
                errors.append(
                    f"data.{ref.kind}s: {name!r} is a world concept, but {', '.join(keys)} "
                    "are written for photos, which the world model cannot draw; either use the "
                    "world's prompt sets (config.yaml's sample.prompt_sets) or a photo concept")


def _check_claims(config: dict, errors: list[str]) -> None:
    """report.claims: the pre-registered claims file exists and parses (null: no claims)."""
    path = (config.get("report") or {}).get("claims")
    if not path:
        return
    if not Path(path).is_file():
        errors.append(f"report.claims: claims file {path} does not exist (a path relative to the "
                      "working directory, e.g. config/world_claims.yaml; null = no claims table)")
        return
    from dcobench.analysis.claims import load_protocol

    try:
        load_protocol(path)
    except (ValueError, OSError) as exc:
        errors.append(f"report.claims: {exc}")


def _check_concepts(data: dict, errors: list[str], resolution: int | None = None
                    ) -> dict[str, ConceptRef]:
    """Concepts by name. With a training `resolution`, every image of a folder the user owns is
    decoded and size-checked here (a bad image fails the DAG, before any job writes anything);
    demo and fetched folders are decoded by their prepare job. An image that passed unchanged
    (same path, size, mtime) is not decoded again (`VALIDATED`): a dry run stays cheap with
    large photos; the prepare job still decodes everything."""
    root, demo = Path(data["root"]), data["demo"]
    world = world_concepts() if data.get("world") else {}
    concepts: dict[str, ConceptRef] = {}
    checked = _read_validated() if resolution is not None else set()
    before = set(checked)
    for kind in KINDS:
        for entry in data[f"{kind}s"]:
            name, path = concept_name(entry), root / entry
            if name in concepts:
                errors.append(f"data.{kind}s: concept {name!r} is listed twice (concept names "
                              "must differ across data.subjects and data.styles); list it once")
                continue
            if demo and name in demo_names():
                recipe = demo_recipe(name)
                if recipe.kind != kind:
                    errors.append(f"data.{kind}s: demo concept {name!r} is a {recipe.kind}")
                concepts[name] = ConceptRef(name, kind, path, recipe.class_noun, demo=True)
                continue
            if name in world:
                if world[name][0] != kind:
                    errors.append(f"data.{kind}s: world concept {name!r} is a {world[name][0]}")
                concepts[name] = ConceptRef(name, kind, path, world[name][1], world=True)
                continue
            if not path.is_dir():
                hint = f"; demo concepts: {', '.join(demo_names())}" if demo else ""
                errors.append(f"data.{kind}s: concept folder {path} does not exist "
                              f"(a concept is a folder of images + concept.yaml); create it or "
                              f"fix the entry{hint}")
                continue
            try:
                concept = load_concept(path)
                if resolution is not None and concept.source is None:
                    validate_concept(path, resolution, checked)
            except ConceptError as exc:
                errors.append(f"data.{kind}s: {exc}")
                continue
            if concept.kind != kind:
                errors.append(f"data.{kind}s: {path}/concept.yaml says kind: {concept.kind}, "
                              f"but it is listed under data.{kind}s; move it to "
                              f"data.{concept.kind}s or fix its kind")
            dataset = concept.source["dataset"] if concept.source else None
            if dataset is not None and dataset not in (data.get("sources") or {}):
                errors.append(f"{path}/concept.yaml: source dataset {dataset!r} is not in "
                              "data.sources (map it to a local dir and/or a download url)")
            concepts[name] = ConceptRef(name, kind, path, concept.class_noun, source=dataset,
                                        live=concept.live)
    if checked != before:
        _write_validated(checked)
    return concepts


VALIDATED = Path(".snakemake") / "dcobench-validated-images.json"  # beside Snakemake's own state


def _read_validated() -> set[str]:
    try:
        return set(json.loads(VALIDATED.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return set()  # none yet, or unreadable: decode again


def _write_validated(keys: set[str]) -> None:
    try:
        VALIDATED.parent.mkdir(parents=True, exist_ok=True)
        tmp = VALIDATED.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(keys)), encoding="utf-8")
        os.replace(tmp, VALIDATED)
    except OSError:
        pass  # a read-only working directory: the next check decodes again


def world_concepts() -> dict[str, tuple[str, str]]:
    """The world's concept names -> (kind, class noun), drawn by rule world_concepts."""
    from dcobench.plugins import CONCEPT_SETS

    return CONCEPT_SETS["world"]()


def local_source_files(concept_dir: Path, data: dict) -> list[str]:
    """The images of a source concept in its dataset's local copy (data.sources.<d>.local), if
    that copy exists: inputs of its fetch job, so a replaced source image is noticed."""
    import os

    try:
        source = load_concept(concept_dir).source
    except ConceptError:
        return []
    local = ((data.get("sources") or {}).get(source["dataset"]) or {}).get("local") if source else None
    if not local:
        return []
    folder = Path(os.path.expandvars(local)).expanduser() / source["path"]
    return [str(folder / f) for f in source["files"] if (folder / f).is_file()]


def demo_recipe(name: str):
    """A demo concept's recipe (kind, class noun, token), without drawing it."""
    return DEMO_CONCEPTS[name]


def train_options(config: dict, kind: str, variant: str | None = None) -> dict:
    """The TrainOptions fields a rule passes for `variant` (default: dco) on `kind`."""
    errors: list[str] = []
    variants = parse_variants(config, errors)
    name = variant or "dco"
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; known: {', '.join(variants)}")
    return variant_options(config, kind, variants[name])


def prior_key(class_noun: str, settings: dict) -> str:
    """Folder name: class slug + a short hash of the settings that determine the images."""
    slug = re.sub(r"[^a-z0-9]+", "_", class_noun.lower()).strip("_")
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def prior_options(config: dict) -> dict:
    """PriorOptions fields: every option with a config key (their hash names the prior folder)."""
    return from_config(PriorOptions, config)


def merge_options(config: dict) -> dict:
    """MergeOptions fields rule `merge` passes: every option with a config key that the config
    sets (merge.rank, merge.density, merge.ziplora: no schema default, so one left out is not
    passed and the library's default applies) and the global seed."""
    return from_config(MergeOptions, config)


def sample_options(config: dict, guides: list[str], group: str | None = None) -> dict:
    """SampleOptions fields: every option with a config key (`prompt_sets`, `set_seeds` and
    `channels_last` only when set: their defaults leave a rule's params as they were) and the
    job's `guides`. With a `group` (subject | style | merge: the job's), only that group's
    prompt sets and their set_seeds: a rule's params then change, and its jobs rerun, only when
    its own sets do."""
    opts = {"guides": list(guides), **from_config(SampleOptions, config)}
    return _only_group(opts, group) if group else opts


def _only_group(opts: dict, group: str) -> dict:
    """`opts` with the prompt sets and set_seeds of one group only."""
    from dcobench.data.prompts import DEFAULT_SETS

    names = (opts.get("prompt_sets") or DEFAULT_SETS).get(group) or DEFAULT_SETS[group]
    if "prompt_sets" in opts:
        opts["prompt_sets"] = {group: opts["prompt_sets"].get(group) or DEFAULT_SETS[group]}
    if "set_seeds" in opts:
        kept = {k: v for k, v in opts["set_seeds"].items() if k in names}
        if kept:
            opts["set_seeds"] = kept
        else:
            del opts["set_seeds"]
    return opts
