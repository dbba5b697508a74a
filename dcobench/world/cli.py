"""`python -m dcobench world build|concepts|figure|validity`: the procedural world (dcobench.world).

build: pretrain world-sdxl, world-siglip, world-dinov2 and the oracle phase by phase (resumable)
and write them, gates.json and manifest.json to --out; concepts: write the world's subject and
style concept folders to --out; figure: the pretrained model on held-out compositions with the
oracle's readings, and the concepts' reference sheets; validity: the DB-only testbed check
(pretrained vs DB prompt_acc on novel contexts, DB subject_acc in the references' contexts; with
--kind style, DB style_acc and prompt_acc on the contents the style's references never showed)
from the score tables under --scores, printed and, with --out, written as csv; ceiling: the oracle's
subject_acc / style_acc on VAE reconstructions of each concept's references (the most a
fine-tuned model can reach through the world's codec).
"""

from __future__ import annotations

from pathlib import Path

from dcobench.cli import add_options_argument, build_options
from dcobench.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["build", "concepts", "figure", "validity", "ceiling"])
    parser.add_argument("--out", help="build: preset folder (default resources/world); "
                        "concepts: concept root; figure: png folder")
    parser.add_argument("--work", default="results/world-build",
                        help="build: phase outputs, kept so a rerun resumes")
    parser.add_argument("--phases", default="", help="build: comma-separated subset of phases")
    parser.add_argument("--seed", type=int, default=0, help="concepts/figure: world seed")
    parser.add_argument("--contexts", type=int, default=2,
                        help="concepts: backgrounds per subject's references (1 = narrowest)")
    parser.add_argument("--names", default="",
                        help="concepts: comma-separated concept names to draw (default: all)")
    parser.add_argument("--world", default=None,
                        help="figure: folder with the world presets (default: the committed ones)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest when the cores are shared)")
    parser.add_argument("--scores", default="results/world/scores",
                        help="validity: score root holding <kind>/<concept>/<variant>/cfg.csv")
    parser.add_argument("--kind", choices=["subject", "style"], default="subject",
                        help="validity: check the subjects or the styles")
    parser.add_argument("--concepts", default="results/world/data",
                        help="ceiling: folder of world concept folders")
    parser.add_argument("--finetune-steps", type=int, default=0,
                        help="ceiling: first fine-tune the VAE this many steps on oracle-split renders")
    add_options_argument(parser)


def run(args) -> None:
    import torch

    from dcobench.io import write_text_atomic

    torch.set_num_threads(args.threads)
    if args.action == "build":
        from .build import PHASES, Builder, BuildOptions

        opts = build_options(BuildOptions, args.options)
        phases = [p for p in args.phases.split(",") if p] or list(PHASES)
        unknown = sorted(set(phases) - set(PHASES))
        if unknown:
            raise UserError(f"unknown world build phase(s) {unknown}; known: {', '.join(PHASES)}")
        out = Path(args.out or "resources/world")
        manifest = Builder(opts, Path(args.work), out).run(phases)
        if manifest:
            print(f"world build: presets, gates.json and manifest.json in {out}")
            print(f"gates passed: {manifest['gates']['passed']}")
    elif args.action == "concepts":
        from .concepts import write_world_concepts

        if not args.out:
            raise UserError("world concepts needs --out")
        names = [n for n in args.names.split(",") if n] or None
        try:
            folders = write_world_concepts(Path(args.out), args.seed, args.contexts, names)
        except ValueError as err:
            raise UserError(str(err)) from None
        for folder in folders:
            print(f"wrote {folder}")
    elif args.action == "ceiling":
        from .validity import codec_ceiling

        table = codec_ceiling(args.concepts, finetune_steps=args.finetune_steps, seed=args.seed)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        if args.out:
            write_text_atomic(Path(args.out), table.to_csv(index=False))
    elif args.action == "validity":
        from .validity import read_scores, validity_table

        table = validity_table(read_scores(args.scores, args.kind), kind=args.kind)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        if args.out:
            write_text_atomic(Path(args.out), table.to_csv(index=False))
    else:
        from .figures import write_figures

        if not args.out:
            raise UserError("world figure needs --out")
        for path in write_figures(Path(args.out), args.world, args.seed):
            print(f"wrote {path}")
