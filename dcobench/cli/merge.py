"""`python -m dcobench merge`: subject LoRA + style LoRA -> one standard LoRA (+ both tokens)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--subject-model", required=True, help="trained subject LoRA folder")
    parser.add_argument("--style-model", required=True, help="trained style LoRA folder")
    parser.add_argument("--merger", required=True, help="merge method, e.g. arithmetic")
    parser.add_argument("--weights", default="1,1", help="λ_subject,λ_style (default 1,1)")
    parser.add_argument("--out", required=True, help="output folder")


def run(args) -> None:
    from dcobench.io import staging_dir, write_manifest
    from dcobench.merge import MERGERS, read_lora, write_lora
    from dcobench.text import EMBEDS_NAME

    merger = MERGERS[args.merger]
    weights = [float(w) for w in args.weights.split(",")]
    loras = [read_lora(args.subject_model), read_lora(args.style_model)]
    merged = merger(loras, weights)
    with staging_dir(Path(args.out)) as stage:
        write_lora(stage, merged)
        for role, folder in (("subject", args.subject_model), ("style", args.style_model)):
            embeds = Path(folder) / EMBEDS_NAME
            if embeds.exists():  # learned tokens travel with the merged LoRA
                shutil.copyfile(embeds, stage / f"learned_embeds.{role}.safetensors")
        write_manifest(stage, "merge", {"merger": args.merger, "weights": weights},
                       subject_model=args.subject_model, style_model=args.style_model,
                       rank=merged.rank)
    print(json.dumps({"out": args.out, "rank": merged.rank}))
