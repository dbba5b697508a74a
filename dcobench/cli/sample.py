"""`python -m dcobench sample`: one model over the guidance grid × prompts × seeds.

A long grid is split into chunks (config sample.chunks) so each SLURM job fits its time limit:
`--chunk 2of4` samples the second of four contiguous prompt blocks into the same folders and
touches `--done`; `--join` (after every chunk) checks the images and writes each guide's
index.csv, which is what downstream rules read. Without --chunk/--join: the whole grid at once.

--members samples several models of one concept in one process (config sample.group_size:
concept): a JSON list of {"model": DIR or null (the pretrained model), "out": DIR, "options":
{SampleOptions fields}}; the base pipeline is loaded once (dcobench.sample.group), --subject /
--style / --base-model apply to all, and each member's images land where its own job writes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dcobench.cli import (
    add_options_argument,
    add_threads_argument,
    apply_threads,
    build_options,
    parse_members,
)
from dcobench.errors import UserError
from dcobench.spec.sample import SampleOptions


def add_arguments(parser) -> None:
    parser.add_argument("--model", help="LoRA folder (train or merge output); omit for the base model")
    parser.add_argument("--subject", help="subject concept folder (fills {subject})")
    parser.add_argument("--style", help="style concept folder (fills {style})")
    parser.add_argument("--out", help="output folder; one sub-folder per guide")
    parser.add_argument("--base-model", help="SDXL preset, local folder or hub id")
    parser.add_argument("--chunk", metavar="IofN", help="sample prompt block I of N only (1of4)")
    parser.add_argument("--done", help="with --chunk: file written when the chunk is complete")
    parser.add_argument("--members", metavar="JSON",
                        help="grouped: a JSON list of {model, out, options}, one loaded base")
    parser.add_argument("--join", action="store_true",
                        help="write index.csv per guide once every chunk's images exist")
    add_threads_argument(parser)
    add_options_argument(parser, SampleOptions)


def parse_chunk(text: str) -> tuple[int, int]:
    """'2of4' -> (2, 4)."""
    match = re.fullmatch(r"(\d+)of(\d+)", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UserError(f"--chunk wants IofN with 1 <= I <= N (e.g. 2of4), got {text!r}")
    return int(match[1]), int(match[2])


def member_options(args) -> list[SampleOptions]:
    """SampleOptions of every member of --members (validated, with --subject / --style /
    --base-model)."""
    out = []
    for m in parse_members(args.members, {"out"}, {"model", "options"}):
        out.append(build_options(SampleOptions, json.dumps(m.get("options") or {}),
                                 out_dir=m["out"], model_dir=m.get("model"),
                                 subject_dir=args.subject, style_dir=args.style,
                                 base_model=args.base_model))
    return out


def run(args) -> None:
    apply_threads(args)
    from dcobench.sample.grid import SampleOptions, join_grid, sample_grid

    chunk = parse_chunk(args.chunk) if args.chunk else None
    if args.members:
        if args.model or args.out or args.join or args.options != "{}":
            raise UserError("--members sets each member's model, out and options; drop --model "
                             "/ --out / --options (and --join: join each member's folder)")
        from dcobench.sample.group import sample_group

        sample_group(member_options(args), chunk)
    else:
        if not args.out:
            raise UserError("sample needs --out (or --members)")
        opts = build_options(SampleOptions, args.options, out_dir=args.out, model_dir=args.model,
                             subject_dir=args.subject, style_dir=args.style,
                             base_model=args.base_model)
        if args.join:
            join_grid(opts)
            return
        sample_grid(opts, chunk)
    if args.done:
        from dcobench.io import write_text_atomic

        write_text_atomic(Path(args.done), f"{args.chunk or '1of1'}\n")
