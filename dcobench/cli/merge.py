"""`python -m dcobench merge`: subject LoRA + style LoRA -> one standard LoRA (+ both tokens)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dcobench.cli import add_options_argument, build_options
from dcobench.spec.merge import MergeOptions, ZipLoraOptions
from dcobench.spec.options import help_text


def add_arguments(parser) -> None:
    parser.add_argument("--subject-model", required=True, help="trained subject LoRA folder")
    parser.add_argument("--style-model", required=True, help="trained style LoRA folder")
    parser.add_argument("--merger", required=True,
                        help="arithmetic | cat | svd | ties_svd | dare | ziplora")
    parser.add_argument("--weights", help="λ_subject,λ_style (overrides options.weights)")
    parser.add_argument("--subject", help="subject concept folder (ziplora: images, captions)")
    parser.add_argument("--style", help="style concept folder (ziplora: images, captions)")
    parser.add_argument("--base-model", help="SDXL preset, local folder or hub id (ziplora)")
    parser.add_argument("--out", required=True, help="output folder")
    add_options_argument(parser, MergeOptions)
    parser.epilog += f"\n\noptions.ziplora fields (ZipLoraOptions):\n{help_text(ZipLoraOptions)}"


def run(args) -> None:
    from dcobench.io import staging_dir, write_manifest
    from dcobench.merge.lora import read_lora, write_lora
    from dcobench.merge.registry import MERGERS
    from dcobench.merge.ziplora import write_extras
    from dcobench.models.text import EMBEDS_NAME

    merger = MERGERS[args.merger]
    weights = tuple(float(w) for w in args.weights.split(",")) if args.weights else None
    opts = build_options(MergeOptions, args.options, weights=weights,
                         subject_dir=args.subject, style_dir=args.style,
                         subject_model=args.subject_model, style_model=args.style_model,
                         base_model=args.base_model)
    loras = [read_lora(args.subject_model), read_lora(args.style_model)]
    merged = merger(loras, opts)
    with staging_dir(Path(args.out)) as stage:
        write_lora(stage, merged)
        write_extras(stage, merged)
        for role, folder in (("subject", args.subject_model), ("style", args.style_model)):
            embeds = Path(folder) / EMBEDS_NAME
            if embeds.exists():  # learned tokens travel with the merged LoRA
                shutil.copyfile(embeds, stage / f"learned_embeds.{role}.safetensors")
        options = json.loads(json.dumps(vars(opts), default=str))
        write_manifest(stage, "merge", {"merger": args.merger, **options},
                       subject_model=args.subject_model, style_model=args.style_model,
                       rank=merged.rank, subject_rank=loras[0].rank, style_rank=loras[1].rank)
    print(json.dumps({"out": args.out, "rank": merged.rank}))
