"""Training variants: a named run = an objective (db | dco), the class-prior option and
TrainOptions overrides.

The paper compares more than objectives: DB with the compact caption, DB+CC early-stopped,
DB+p.p. with λ_prior 0.5, DCO at β 0.5 / 2, ... A variant names one such run, e.g.

    db_rare:    {objective: db, captions: rare_token, textual_inversion: false}
    dbpp_l05:   {objective: db, prior: true, prior_weight: 0.5}
    dco_b05:    {objective: dco, beta: 0.5}
    db_es:      {checkpoint_of: db, step: 1000}   # the 1000-step checkpoint of the db run

``train.variant_defs`` in the config adds variants to the built-in ones (BUILTIN: dco, db and
dbpp = DB + prior preservation). Model folders are named by variant:
results/{exp}/models/{kind}/{concept}/{variant}. A checkpoint variant is not retrained: rule
`export_checkpoint` copies the parent run's checkpoint into its own folder
(dcobench.train.checkpoint). Importing this
module must stay cheap (no torch).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dcobench.registry import unknown_name_message
from dcobench.spec.options import from_config
from dcobench.spec.train import OVERRIDE_KEYS, TrainOptions
from dcobench.train.objectives import OBJECTIVES


@dataclass(frozen=True)
class Variant:
    """`objective`: a name in train.objectives.OBJECTIVES; `prior`: class-prior rows join the
    batch; `overrides`: TrainOptions fields; `checkpoint_of` / `step`: a checkpoint variant
    (the parent variant's run at `step`)."""

    name: str
    objective: str
    prior: bool = False
    overrides: dict = field(default_factory=dict)
    checkpoint_of: str | None = None
    step: int | None = None

    @property
    def trained(self) -> bool:
        return self.checkpoint_of is None


BUILTIN = (Variant("dco", "dco"), Variant("db", "db"), Variant("dbpp", "db", prior=True))


def parse_variants(config: dict, errors: list[str]) -> dict[str, Variant]:
    """All variants of a config (BUILTIN + train.variant_defs); problems go to `errors`."""
    found = {v.name: v for v in BUILTIN}
    raw = config["train"].get("variant_defs") or {}
    for name, spec in raw.items():
        key = f"train.variant_defs.{name}"
        if "checkpoint_of" in spec:
            found[name] = Variant(name, "", checkpoint_of=spec["checkpoint_of"], step=spec.get("step"))
            continue
        objective = spec.get("objective")
        if objective not in OBJECTIVES:
            errors.append(f"{key}.objective: "
                          f"{unknown_name_message('objective', str(objective), OBJECTIVES.names())}")
            continue
        bad = sorted(set(spec) - {"objective", "prior", *OVERRIDE_KEYS})
        if bad:
            errors.append(f"{key}: unknown override(s) {', '.join(bad)}; "
                          f"allowed: {', '.join(OVERRIDE_KEYS)}")
        overrides = {k: v for k, v in spec.items() if k not in ("objective", "prior")}
        found[name] = Variant(name, objective, bool(spec.get("prior", False)), overrides)
    for v in list(found.values()):
        if v.trained:
            continue
        parent = found.get(v.checkpoint_of)
        if parent is None or not parent.trained:
            errors.append(f"train.variant_defs.{v.name}.checkpoint_of: {v.checkpoint_of!r} is not a "
                          f"trained variant; known: {', '.join(n for n, p in found.items() if p.trained)}")
            found.pop(v.name)
            continue
        found[v.name] = Variant(v.name, parent.objective, parent.prior, parent.overrides,
                                v.checkpoint_of, v.step)
    return found


def check_checkpoint(config: dict, variant: Variant, kind: str) -> str | None:
    """An error message if the parent run of a checkpoint variant does not keep `step`."""
    opts = variant_options(config, kind, variant)
    if variant.step not in opts["checkpoints"]:
        return (f"train.variant_defs.{variant.name}: step {variant.step} is not a kept checkpoint of "
                f"{variant.checkpoint_of!r} for {kind}s (add it to train.checkpoints, below "
                f"steps = {opts['steps']})")
    return None


def variant_options(config: dict, kind: str, variant: Variant) -> dict:
    """TrainOptions fields (minus paths / objective) for `variant` on a concept of `kind`: every
    option with a config key (its default where the config leaves it out), then the variant's
    overrides; only the checkpoints below `steps` are kept."""
    opts = from_config(TrainOptions, config, kind, variant.overrides)
    opts["checkpoints"] = [c for c in opts["checkpoints"] if c < opts["steps"]]
    return opts


GROUP_SEP = "+"  # group name: its member variants joined (variant names never contain "+")


def train_groups(models, variants: dict[str, Variant], group_size) -> dict[tuple[str, str], list[str]]:
    """Fused-training groups: (kind, concept) -> group names, each the "+"-joined variants it
    trains. `models`: the (kind, concept, variant) the experiments need; a checkpoint variant
    counts as its parent run. `group_size`: an int (1 = one training per job) or "concept" (all
    of a concept's trained variants in one job). Variants are grouped in name order, so adding a
    concept adds only its own groups."""
    trained: dict[tuple[str, str], set[str]] = {}
    for kind, concept, name in models:
        v = variants[name]
        trained.setdefault((kind, concept), set()).add(name if v.trained else v.checkpoint_of)
    groups = {}
    for key, names in sorted(trained.items()):
        ordered = sorted(names)
        size = len(ordered) if group_size == "concept" else int(group_size)
        groups[key] = [GROUP_SEP.join(ordered[i : i + size]) for i in range(0, len(ordered), size)]
    return groups


def group_of(groups: dict[tuple[str, str], list[str]], kind: str, concept: str, variant: str) -> str:
    """The group name that trains `variant` of (kind, concept)."""
    for name in groups.get((kind, concept), []):
        if variant in name.split(GROUP_SEP):
            return name
    raise KeyError(f"no training group holds {kind}/{concept}/{variant}")


def publish_member(staged: Path, out_dir: Path) -> Path:
    """Put a fused group's staged model folder in its place: hard links (a copy where links are
    not possible) into a sibling folder that then replaces `out_dir` whole, with fresh
    modification times (the published files are newer than the group's marker, as a rule's
    outputs must be). Standard library only: the workflow runs it in a fresh interpreter."""
    import os

    staged, out_dir = Path(staged), Path(out_dir)
    if not (staged / "manifest.json").is_file():
        raise FileNotFoundError(f"{staged}: the group job wrote no finished model here")

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    stage, old = out_dir.with_name(f".{out_dir.name}.partial"), out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        shutil.copytree(staged, stage, copy_function=link)
        for path in sorted(stage.rglob("*"), key=lambda p: p.name == "manifest.json"):
            if path.is_file():
                os.utime(path)  # manifest.json last: it marks the folder complete
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out_dir


if __name__ == "__main__":  # python -m dcobench.train.variants STAGED OUT (rule train_member)
    import sys

    publish_member(Path(sys.argv[1]), Path(sys.argv[2]))
