"""MergeOptions and ZipLoraOptions: one merge job's settings, each declared once with its spec
(see `dcobench.spec.train` for the field spec). From these fields come the `merge.rank`,
`merge.density` and `merge.ziplora.*` keys of the config schema (variants, mergers, weights and
guides, the plan's grid rather than one job's options, stay in the schema file), the values rule
`merge` passes (`dcobench.config.merge_options`), the bounds a library caller gets checked and
`python -m dcobench merge --help`. No torch: `dcobench.merge.lora` and `dcobench.merge.ziplora`
re-export them.

The config keys have no schema default (`UNSET`): a config that leaves one out passes nothing
for it and the library's default applies, so a rule's params are what the config says.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dcobench.spec.options import UNSET, check, option

SIMILARITIES = ("mean_abs", "dot", "cosine")  # ZipLoRA's merger-similarity penalties
INT1 = {"type": "integer", "minimum": 1}


@dataclass(frozen=True)
class ZipLoraOptions:
    """Merger training; the `merge.ziplora:` config section."""

    SECTION: ClassVar[str] = "merge.ziplora"

    steps: int = option(100, schema=INT1, config_default=UNSET,
                        help="merger training steps (paper: <= 100)")
    lr: float = option(1e-3, schema={"type": "number", "exclusiveMinimum": 0},
                       config_default=UNSET,
                       help="Adam lr of the mergers (config/paper.yaml: why; the public 5e-5 "
                            "barely moves them)")
    penalty: float = option(0.01, schema={"type": "number", "minimum": 0}, config_default=UNSET,
                            help="λ of the merger-similarity penalty (public code's default)")
    similarity: str = option("mean_abs", schema={"enum": list(SIMILARITIES)},
                             config_default=UNSET,
                             help="mean_abs (public code) | dot (|m_s · m_t|) | cosine")
    resolution: int = option(1024, schema={"type": "integer", "minimum": 8, "multipleOf": 8},
                             config_default=UNSET, help="training images' resolution (px)")
    batch_size: int = option(1, schema=INT1, config_default=UNSET,
                             help="images per concept per step")
    seed: int = option(0, schema={"type": "integer", "minimum": 0}, config=None,
                       help="the noise's seed: MergeOptions.seed (the config's global seed)")

    def __post_init__(self) -> None:
        check(self)  # every field's bounds, from its spec


@dataclass(frozen=True)
class MergeOptions:
    """How to merge: the `merge:` config section's job options plus the concept and model
    folders the rule fills in."""

    SECTION: ClassVar[str] = "merge"

    weights: tuple[float, float] = option(
        (1.0, 1.0), config=None,
        schema={"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        help="(λ_subject, λ_style): --weights, one point of merge.weights (ignored by ziplora)")
    rank: int | None = option(None, schema={"type": ["integer", "null"], "minimum": 1},
                              config_default=UNSET,
                              help="svd / ties_svd / dare output rank; null = r1 + r2 "
                                   "(svd: exact)")
    density: float = option(0.5, schema={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                            config_default=UNSET,
                            help="ties_svd / dare: fraction of ΔW entries kept")
    seed: int = option(0, schema={"type": "integer", "minimum": 0}, config="seed",
                       help="the config's global seed: dare's drop mask, ziplora's noise")
    ziplora: dict | None = option(
        None, schema={"type": "object", "additionalProperties": False}, config_default=UNSET,
        help="ZipLoraOptions fields (steps, lr, penalty, ...); unset = their defaults")
    subject_dir: Path | None = option(None, config=None,
                                      help="subject concept folder: ziplora's images, captions")
    style_dir: Path | None = option(None, config=None,
                                    help="style concept folder: ziplora's images, captions")
    subject_model: Path | None = option(None, config=None,
                                        help="trained subject LoRA folder (ziplora loads its "
                                             "tokens)")
    style_model: Path | None = option(None, config=None,
                                      help="trained style LoRA folder (ziplora loads its tokens)")
    base_model: str = option("tiny-sdxl", config=None, help="preset, local dir or hub id "
                                                            "(models.base; ziplora)")

    def __post_init__(self) -> None:
        check(self)  # every field's bounds, from its spec
        if self.ziplora:  # its fields' bounds, from ZipLoraOptions' specs
            known = {f.name for f in dataclasses.fields(ZipLoraOptions)}
            if unknown := sorted(set(self.ziplora) - known):
                raise ValueError(f"unknown ziplora option(s): {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known))}")
            try:
                ZipLoraOptions(**self.ziplora)
            except ValueError as exc:
                raise ValueError(f"ziplora.{exc}") from None
