"""TrainOptions: one training run's settings, each declared once with its spec.

Every field says its type, default, bounds, help, its config key (`train.<name>` unless it says
otherwise; None: the rule fills it in), whether the config may give it per concept kind and
whether a training variant may override it. From these fields come the `train` section of the
config schema (`dcobench.spec.schema`), the variant override keys (`OVERRIDE_KEYS`), the values
rule `train` passes (`dcobench.train.variants.variant_options`), the bounds a library caller
gets checked and `python -m dcobench train --help`. Adding a training option = one field here
plus its use. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dcobench.spec.options import check, option, override_keys
from dcobench.train.objectives import OBJECTIVES

CAPTION_MODES = ("comprehensive", "compact", "rare_token")  # dcobench.data.captions
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # attention projections
PRECISION_NAMES = ("fp32", "bf16", "fp16")  # dcobench.models.finetuned.PRECISIONS

INT1 = {"type": "integer", "minimum": 1}
POSITIVE = {"type": "number", "exclusiveMinimum": 0}
NONNEG = {"type": "number", "minimum": 0}
BOOL = {"type": "boolean"}


@dataclass(frozen=True)
class TrainOptions:
    """One training run. Steps, ranks and learning rates follow the paper unless overridden. The
    defaults serve library callers and are the config's defaults too, unless a field is
    `required` (the config must set it) or says its own `config_default`."""

    SECTION: ClassVar[str] = "train"

    concept_dir: Path = option(help="folder with images + concept.yaml", config=None)
    out_dir: Path = option(help="results/{exp}/models/{kind}/{concept}/{variant}", config=None)
    objective: str = option(help="a name in train.objectives.OBJECTIVES: dco | db (the variant's)",
                            config=None)
    base_model: str = option("tiny-sdxl", help="preset, local dir or hub id (models.base)",
                             config=None)
    steps: int = option(2000, schema=INT1, per_kind=True, variant=True, required=True,
                        help="training steps")
    rank: int = option(32, schema=INT1, per_kind=True, variant=True, required=True,
                       help="LoRA rank")
    alpha: float | None = option(None, schema={"type": ["number", "null"], "exclusiveMinimum": 0},
                                 variant=True, help="lora_alpha; null = rank (scale 1)")
    targets: tuple[str, ...] = option(
        LORA_TARGETS, variant=True, help="UNet modules that get a LoRA (name suffixes)",
        schema={"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                "uniqueItems": True})
    lr: float = option(5e-5, schema=POSITIVE, variant=True, required=True,
                       help="LoRA learning rate (Adam)")
    ti_lr: float = option(5e-4, schema=NONNEG, variant=True, required=True,
                          help="learned-token learning rate; 0 = the token is not trained (the "
                               "official code's effective behaviour, docs/beta.md)")
    weight_decay: float = option(0.0, schema=NONNEG, variant=True, omit_default=True,
                                 help="AdamW weight decay of the LoRA weights (tokens: none)")
    lr_warmup_steps: int = option(0, schema={"type": "integer", "minimum": 0},
                                  help="linear LR warm-up steps; 0 = constant (the paper)")
    textual_inversion: bool = option(True, schema=BOOL, per_kind=True, variant=True,
                                     config_default={"subject": True, "style": False},
                                     help="learn the concept token (paper: subjects only)")
    captions: str = option("comprehensive", schema={"enum": list(CAPTION_MODES)}, variant=True,
                           required=True, help="caption mode (data/captions.py)")
    beta: float = option(1.0, schema=POSITIVE, variant=True, required=True,
                         help="the paper's β (DCO); the loss uses β·T")
    offset_noise: float = option(0.0, schema=NONNEG, per_kind=True, variant=True, required=True,
                                 help="offset noise (0.1 for styles in the paper)")
    snr_gamma: float | None = option(None, variant=True,
                                     schema={"type": ["number", "null"], "exclusiveMinimum": 0},
                                     help="Min-SNR-γ loss weighting; null = off")
    max_grad_norm: float = option(1.0, schema=POSITIVE, variant=True,
                                  help="gradient clipping norm")
    resolution: int = option(1024, schema={"type": "integer", "minimum": 8, "multipleOf": 8},
                             variant=True, required=True, help="training image size (px)")
    batch_size: int = option(1, schema=INT1, variant=True, help="reference images per step")
    random_flip: bool = option(False, schema=BOOL,
                               help="horizontal-flip augmentation (latents cached for both flips)")
    seed: int = option(0, schema={"type": "integer", "minimum": 0}, config="seed", variant=True,
                       help="the run's seed (the config's global seed)")
    prior_dir: Path | None = option(None, config=None, schema={"type": ["string", "null"]},
                                    help="class-prior images: their rows join every step (DB+p.p.)")
    prior_weight: float = option(1.0, schema=NONNEG, config="train.prior.weight", variant=True,
                                 required=True, help="λ_prior: weight of the class-prior loss")
    checkpoints: tuple[int, ...] = option(
        (), schema={"type": "array", "items": INT1}, variant=True,
        help="steps at which a copy of the weights is kept (those below steps)")
    log_every: int = option(1, schema=INT1, config=None, help="steps between train_log.csv rows")
    mixed_precision: str = option("auto", schema={"enum": ["auto", *PRECISION_NAMES]},
                                  help="frozen weights' dtype; auto = the device's (trainables fp32)")
    gradient_checkpointing: bool = option(False, schema=BOOL,
                                          help="recompute activations in the backward pass")
    resume_every: int = option(100, schema=INT1, help="steps between resume states")

    def __post_init__(self) -> None:
        OBJECTIVES[self.objective]  # raises with suggestions
        check(self)  # every field's bounds, from its spec
        if self.captions == "rare_token" and self.textual_inversion:
            raise ValueError("captions rare_token ('a photo of sks {class}') learns no token; "
                             "set textual_inversion: false for this run")
        if any(s > self.steps for s in self.checkpoints):
            raise ValueError(f"checkpoints {self.checkpoints} must lie in [1, steps={self.steps}]")

    @property
    def learns_token(self) -> bool:
        return self.textual_inversion


OVERRIDE_KEYS = override_keys(TrainOptions)  # what a variant in train.variant_defs may set
