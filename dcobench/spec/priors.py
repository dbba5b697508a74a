"""PriorOptions: the class-prior images' settings (DB + prior preservation), each declared once
with its spec (see `dcobench.spec.train`). Its own keys live in `train.prior`; the resolution,
scheduler, batch size and precision are the training's and the sampling stage's (priors are
plain base-model samples at the training resolution). From these fields come the `train.prior`
keys of the schema (`weight` is TrainOptions.prior_weight), the values rule `priors` passes and
whose hash names the prior folder (`dcobench.config.prior_options`), and the CLI help. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dcobench.spec.options import check, option
from dcobench.spec.sample import SCHEDULERS
from dcobench.spec.train import PRECISION_NAMES

INT1 = {"type": "integer", "minimum": 1}


@dataclass(frozen=True)
class PriorOptions:
    """Class-prior generation (paper: 100 images of "a photo of a {class}")."""

    SECTION: ClassVar[str] = "train.prior"

    class_noun: str = option(config=None, help="the concept's class noun")
    out_dir: Path = option(config=None, help="results/{exp}/priors/{class slug}-{settings hash}")
    base_model: str = option("tiny-sdxl", config=None, help="preset, local dir or hub id "
                                                            "(models.base)")
    prompt: str = option("a photo of a {class}", required=True,
                         schema={"type": "string", "pattern": "\\{class\\}"},
                         help="prompt; {class} is replaced by the class noun")
    count: int = option(100, schema=INT1, required=True, help="prior images per class")
    seed: int = option(0, schema={"type": "integer", "minimum": 0}, config="seed",
                       help="the config's global seed")
    steps: int = option(50, schema=INT1, required=True, help="denoising steps")
    cfg: float = option(7.5, schema={"type": "number", "minimum": 0}, required=True,
                        help="ω_text of the base model's CFG")
    resolution: int = option(1024, schema={"type": "integer", "minimum": 8, "multipleOf": 8},
                             config="train.resolution", help="image size: the training's")
    batch_size: int = option(4, schema=INT1, config="sample.batch_size",
                             help="images per UNet batch: the sampling stage's")
    scheduler: str = option("ddim", schema={"enum": list(SCHEDULERS)}, config="sample.scheduler",
                            help="inference scheduler: the sampling stage's")
    # Weights and sampling dtype: auto = bf16 (fp16 where bf16 is missing) on a GPU, fp32 on a
    # CPU. Priors are plain base-model samples, made as the sampling stage makes images; fp32
    # on a GPU is 2–4× slower and holds ≈ 2× the memory for no visible gain (docs/gpu.md).
    precision: str = option("auto", schema={"enum": ["auto", *PRECISION_NAMES]},
                            config="sample.mixed_precision",
                            help="weights' and sampling dtype: the sampling stage's")

    def __post_init__(self) -> None:
        if "{class}" not in self.prompt:
            raise ValueError(f"prior prompt {self.prompt!r} must contain {{class}}")
        check(self)  # every field's bounds, from its spec

    @property
    def text(self) -> str:
        return self.prompt.replace("{class}", self.class_noun)
