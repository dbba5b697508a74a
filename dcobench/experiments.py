"""Experiments: named subsets of concepts × variants (+ merges, analyses) selected by config.

``experiments: [fig1, table1]`` selects entries of ``experiment_defs``; the plan is their union,
so a model shared by several experiments (e.g. subject/dog/dco in fig1, fig8a and fig8b) is one
job. Without ``experiments`` the config is one implicit experiment: every listed concept × its
kind's ``train.variants``, all subject × style pairs × ``merge.variants`` × ``merge.mergers``, and
the noise distance over every subject (the demo). Importing this module must stay cheap.

An experiment definition::

    fig8b:
      subjects: [dog, cat]      # names, a group (the parent folder in data.subjects, e.g.
      styles: []                #   "dreambooth"), or "all"
      variants: [dco_b05, dco, dco_b2]   # trained (and, with evaluate, sampled + scored)
      merges: [dco-arithmetic]  # "<variant>-<merger>" for every subject × style pair and every
                                #   λ pair of merge.weights; "<subject variant>+<style variant>-
                                #   <merger>" takes each side's LoRA from its own variant
                                #   (dcobench.merge.ids)
      analyses: [noise_distance]  # noise_distance (subjects × analysis.noise_distance.variants),
                                  # lora_cosine (pairs × variants)
      evaluate: true            # sample + score the models (false: train only, for analyses)
      pretrained: false         # also sample (CFG only) + score the pretrained model on every
                                #   subject and style's prompts: variant "pretrained" (Fig 1 point)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dcobench.merge.ids import merge_id, pair_variants, parse_merge_id, weight_grid, with_weights
from dcobench.merge.registry import MERGERS
from dcobench.registry import unknown_name_message

ANALYSES = ("noise_distance", "lora_cosine")
PRETRAINED = "pretrained"  # the base model's samples in score tables; reserved (not a trained variant)
PARTS = ("models", "evaluated", "pretrained", "merges", "noise_distance", "lora_cosine")


@dataclass
class Plan:
    """What the selected experiments need, in a stable order, without duplicates."""

    models: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, concept, variant)
    evaluated: list[tuple[str, str, str]] = field(default_factory=list)  # sampled + scored
    pretrained: list[tuple[str, str]] = field(default_factory=list)  # (kind, concept): base model, CFG
    merges: list[tuple[str, str, str]] = field(default_factory=list)  # (subject, style, merge)
    noise_distance: list[tuple[str, str]] = field(default_factory=list)  # (subject, variant)
    lora_cosine: list[tuple[str, str, str]] = field(default_factory=list)  # (subject, style, variant)
    experiments: dict[str, dict] = field(default_factory=dict)  # name -> its own part (counts)

    def add(self, attr: str, item: tuple) -> None:
        items = getattr(self, attr)
        if item not in items:
            items.append(item)

    def sample_groups(self) -> dict[tuple[str, str], list[str]]:
        """(kind, concept) -> the model folders sampled and scored for it, as variant names in
        name order ("pretrained" among them when the plan samples the pretrained model): the
        members of its grouped sample and score jobs (config sample.group_size / score.group_size:
        concept). A group depends on its own concept only, so adding a concept adds its own."""
        groups: dict[tuple[str, str], set[str]] = {}
        for kind, concept, variant in self.evaluated:
            groups.setdefault((kind, concept), set()).add(variant)
        for kind, concept in self.pretrained:
            groups.setdefault((kind, concept), set()).add(PRETRAINED)
        return {key: sorted(names) for key, names in sorted(groups.items())}

    def membership(self) -> dict[str, dict[str, list]]:
        """Which scored cells belong to which experiment, JSON-able for `dcobench aggregate`:
        name -> {evaluated, pretrained, merges}; experiments that score nothing are left out."""
        out = {}
        for name, part in self.experiments.items():
            lists = {k: [list(t) for t in part.get(k, [])] for k in ("evaluated", "pretrained", "merges")}
            if any(lists.values()):
                out[name] = lists
        return out


def concept_name(entry: str) -> str:
    """data.subjects / data.styles entries are folders relative to data.root; the name is the last part."""
    return entry.rstrip("/").rsplit("/", 1)[-1]


def _select(spec, entries: list[str], key: str, errors: list[str]) -> list[str]:
    names = [concept_name(e) for e in entries]
    if spec in (None, []):
        return []
    if spec == "all":
        return names
    if isinstance(spec, str):
        group = [concept_name(e) for e in entries if e.rstrip("/").rsplit("/", 1)[:-1] == [spec]]
        if not group:
            errors.append(f"{key}: no concept folder under group {spec!r} in data")
        return group
    for name in spec:
        if name not in names:
            errors.append(f"{key}: {unknown_name_message('concept', name, names)} "
                          "(list it under data.subjects / data.styles)")
    return [n for n in spec if n in names]


def _default(config: dict, subjects: list[str], styles: list[str]) -> dict:
    merges = [merge_id(v, g) for v in config["merge"]["variants"] for g in config["merge"]["mergers"]]  # × λ grid below
    return {"subjects": subjects, "styles": styles, "merges": merges,
            "analyses": ["noise_distance", "lora_cosine"], "per_kind": config["train"]["variants"], "evaluate": True,
            "pretrained": True}


def build_plan(config: dict, variants: dict, errors: list[str]) -> Plan:
    """The union of the selected experiments; problems are appended to `errors`."""
    data = config["data"]
    subjects = [concept_name(e) for e in data["subjects"]]
    styles = [concept_name(e) for e in data["styles"]]
    selected = config.get("experiments") or []
    defs = config.get("experiment_defs") or {}
    plan = Plan()
    if PRETRAINED in variants:
        errors.append(f"train.variant_defs: {PRETRAINED!r} is reserved for the pretrained model's "
                      "samples (experiment key `pretrained: true`); rename the variant")
    if not selected:
        _add_experiment(plan, config["experiment"], _default(config, subjects, styles),
                        config, variants, errors)
        return plan
    for name in selected:
        if name not in defs:
            errors.append(f"experiments: {unknown_name_message('experiment', name, list(defs))}")
            continue
        d, key = defs[name], f"experiment_defs.{name}"
        spec = {"subjects": _select(d.get("subjects"), data["subjects"], f"{key}.subjects", errors),
                "styles": _select(d.get("styles"), data["styles"], f"{key}.styles", errors),
                "merges": d.get("merges", []), "analyses": d.get("analyses", []),
                "evaluate": d.get("evaluate", True), "pretrained": d.get("pretrained", False)}
        spec["per_kind"] = {"subject": d.get("variants", []), "style": d.get("variants", [])}
        _add_experiment(plan, name, spec, config, variants, errors)
    return plan


def _add_experiment(plan: Plan, name: str, spec: dict, config: dict, variants: dict,
                    errors: list[str]) -> None:
    own = Plan()
    key = f"experiment_defs.{name}" if config.get("experiments") else "train.variants"
    for kind, names in (("subject", spec["subjects"]), ("style", spec["styles"])):
        for v in spec["per_kind"][kind]:
            if v not in variants:
                errors.append(f"{key}: {unknown_name_message('variant', v, list(variants))}")
                continue
            for c in names:
                own.add("models", (kind, c, v))
                if spec["evaluate"]:
                    own.add("evaluated", (kind, c, v))
    if spec["pretrained"]:
        for kind, names in (("subject", spec["subjects"]), ("style", spec["styles"])):
            for c in names:
                own.add("pretrained", (kind, c))
    grid = weight_grid(config["merge"]["weights"])
    for merge in spec["merges"]:
        try:
            variant, merger, _ = parse_merge_id(merge)
        except ValueError:
            variant = merger = ""
        sides = pair_variants(variant)
        if any(v not in variants for v in sides) or merger not in MERGERS:
            where = f"{key}.merges" if config.get("experiments") else "merge.variants × merge.mergers"
            errors.append(f"{where}: {merge!r} must be <variant>[+<style variant>]-<merger> "
                          f"(variants: {', '.join(variants)}; mergers: {', '.join(MERGERS.names())})")
            continue
        for s in spec["subjects"]:
            for t in spec["styles"]:
                own.add("models", ("subject", s, sides[0]))
                own.add("models", ("style", t, sides[1]))
                for weighted in with_weights(merge, grid):  # merge.weights: one merge per λ pair
                    own.add("merges", (s, t, weighted))
    for analysis in spec["analyses"]:
        if analysis not in ANALYSES:
            errors.append(f"{key}.analyses: {unknown_name_message('analysis', analysis, list(ANALYSES))}")
        elif analysis == "noise_distance":
            for v in config["analysis"]["noise_distance"]["variants"]:
                for s in spec["subjects"]:
                    own.add("models", ("subject", s, v))
                    own.add("noise_distance", (s, v))
        else:  # variants trained for both kinds (a subject-only variant such as dbpp has no style LoRA)
            both = [v for v in spec["per_kind"]["subject"] if v in spec["per_kind"]["style"]]
            for v in both:
                for s in spec["subjects"]:
                    for t in spec["styles"]:
                        own.add("models", ("subject", s, v))
                        own.add("models", ("style", t, v))
                        own.add("lora_cosine", (s, t, v))
    plan.experiments[name] = {k: list(getattr(own, k)) for k in PARTS}
    for attr, items in plan.experiments[name].items():
        for item in items:
            plan.add(attr, item)
