"""`python -m dcobench train`: one LoRA for one concept, objective and (optional) class priors;
or, with `--members`, several trainings of one concept fused into one process (dcobench.train.group).

--members takes a JSON list, one object per training: {"objective": "dco", "out": DIR,
"prior": DIR or null, "options": {TrainOptions fields}}; --concept and --base-model apply to all.
"""

from __future__ import annotations

import json
from pathlib import Path

from dcobench.cli import (
    add_options_argument,
    add_threads_argument,
    apply_threads,
    build_options,
    parse_members,
)
from dcobench.errors import UserError
from dcobench.spec.train import TrainOptions


def add_arguments(parser) -> None:
    parser.add_argument("--concept", required=True, help="concept folder (images + concept.yaml)")
    parser.add_argument("--objective", help="dco | db (dcobench.train.objectives)")
    parser.add_argument("--out", help="output folder for the LoRA and logs")
    parser.add_argument("--base-model", help="SDXL preset, local folder or hub id")
    parser.add_argument("--prior", help="class-prior folder: its rows join every step (DB + p.p.)")
    parser.add_argument("--members", metavar="JSON",
                        help="fused group: a JSON list of {objective, out, prior, options}")
    parser.add_argument("--done", metavar="FILE",
                        help="with --members: a JSON record written once every member finished")
    add_threads_argument(parser)
    add_options_argument(parser, TrainOptions)


def member_options(args) -> list:
    """TrainOptions of every member of --members (validated, with --concept / --base-model)."""
    out = []
    for m in parse_members(args.members, {"objective", "out"}, {"prior", "options"}):
        out.append(build_options(TrainOptions, json.dumps(m.get("options") or {}),
                                 concept_dir=args.concept, out_dir=m["out"],
                                 objective=m["objective"], base_model=args.base_model,
                                 prior_dir=m.get("prior")))
    return out


def run(args) -> None:
    apply_threads(args)
    if args.members:
        from dcobench.train.group import train_group

        if args.objective or args.out or args.prior:
            raise UserError("--members sets each member's objective, out and prior; "
                             "drop --objective / --out / --prior")
        outs = train_group(member_options(args))
        if args.done:
            from dcobench.io import write_text_atomic

            write_text_atomic(Path(args.done), json.dumps({"models": [str(o) for o in outs]},
                                                          indent=1) + "\n")
        return
    if not (args.objective and args.out):
        raise UserError("train needs --objective and --out (or --members)")
    from dcobench.train.trainer import train

    opts = build_options(TrainOptions, args.options, concept_dir=args.concept, out_dir=args.out,
                         objective=args.objective, base_model=args.base_model, prior_dir=args.prior)
    train(opts)
