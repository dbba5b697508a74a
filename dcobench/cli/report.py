"""`python -m dcobench report`: tables, figures and one self-contained report.html, rendered
from the aggregated tables plus the files named on the command line (sample folders for the
grids, train logs for the loss plots, the analyses); dcobench/report/build.py says what goes in."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PAPER_VALUES = Path(__file__).resolve().parents[2] / "data" / "paper_values.csv"


def add_arguments(parser) -> None:
    parser.add_argument("--exp-dir", required=True,
                        help="results/<experiment>: reads tables/*.csv, writes figures/ and tables/")
    parser.add_argument("--samples", nargs="*", default=[], metavar="INDEX_CSV",
                        help="index.csv of the sample folders shown in grids")
    parser.add_argument("--prepared", nargs="*", default=[], metavar="JSON",
                        help="prepared/<concept>.json records: reference images beside the grids")
    parser.add_argument("--train-logs", nargs="*", default=[], metavar="CSV",
                        help="train_log.csv of the runs shown in loss plots")
    parser.add_argument("--noise-distance", help="analysis csv (Fig 8c); omit when not run")
    parser.add_argument("--lora-cosine", help="analysis csv (Fig 10); omit when not run")
    parser.add_argument("--claims", help="claims table csv (dcobench claims); omit when not tested")
    parser.add_argument("--claims-caveat", help="a sentence printed above the claims table")
    parser.add_argument("--title", default="dcobench report")
    parser.add_argument("--out", required=True, help="report.html path")
    parser.add_argument("--paper-values", default=str(DEFAULT_PAPER_VALUES),
                        help="published numbers (csv); a missing file drops the paper section")
    parser.add_argument("--bench-dir", default=None,
                        help="benchmark JSONs (train.json, sample.json); default <exp-dir>/../bench")
    parser.add_argument("--grids-per-experiment", type=int, default=4,
                        help="concepts with a sample grid per experiment and group")
    parser.add_argument("--grid-prompts", type=int, default=4, help="prompt columns per grid")
    parser.add_argument("--loss-plots-inline", type=int, default=12,
                        help="per-run loss plots embedded in the html (all are written)")


def run(args) -> None:
    from dcobench.io import write_manifest
    from dcobench.layout import Layout, bench_dir
    from dcobench.report.build import ReportOptions, build_report

    exp = Path(args.exp_dir)
    opts = ReportOptions(
        exp_dir=exp, out=Path(args.out), title=args.title,
        sample_indexes=tuple(Path(p) for p in args.samples),
        train_logs=tuple(Path(p) for p in args.train_logs),
        prepared=tuple(Path(p) for p in args.prepared),
        noise_distance=Path(args.noise_distance) if args.noise_distance else None,
        lora_cosine=Path(args.lora_cosine) if args.lora_cosine else None,
        claims=Path(args.claims) if getattr(args, "claims", None) else None,
        claims_caveat=getattr(args, "claims_caveat", None),
        paper_values=Path(args.paper_values) if args.paper_values else None,
        bench_dir=Path(args.bench_dir or bench_dir(str(exp.parent))),
        grids_per_experiment=args.grids_per_experiment, grid_prompts=args.grid_prompts,
        loss_plots_inline=args.loss_plots_inline)
    out = build_report(opts)
    write_manifest(Path(Layout(exp).figures_dir()), "report",
                   {k: str(v) for k, v in vars(args).items() if k != "func"}, report=str(out))
    print(f"report: {out}")
