"""`python -m dcobench record write|diff|report`: experiment records (dcobench/record/).

  record write --results results/<exp> --out experiments/<name>/record [--config FILE ...]
      copy what the finished run found into a small folder to commit (tables, claims, reduced
      sample grids, manifest: commit, config hash, environment, wall time per rule); refused
      (exit 1, nothing written) over --max-bytes.
  record diff A B [--atol X] [--rtol X] [--fail-on-diff]
      which claim verdicts and which numbers moved from record A to record B; exit 0 either way
      unless --fail-on-diff (then 3 when something moved, e.g. for CI).
  record report --record experiments/<name>/record --out report.html
      the report rebuilt from the record alone.
"""

from __future__ import annotations

from pathlib import Path

EXIT_DIFFERENT = 3  # `record diff --fail-on-diff` when a verdict or number moved


def add_arguments(parser) -> None:
    from dcobench.record.limits import IMAGE_BYTES, MAX_BYTES

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    write = sub.add_parser("write", help="write the record of a finished run")
    write.add_argument("--results", required=True, help="results/<experiment> of a finished run")
    write.add_argument("--out", required=True, help="record folder, e.g. experiments/<name>/record")
    write.add_argument("--config", nargs="+", default=None, metavar="FILE",
                       help="the run's config files (default: results/<exp>/configfiles.json)")
    write.add_argument("--max-bytes", type=int, default=MAX_BYTES,
                       help="refuse a record larger than this (default %(default)s)")
    write.add_argument("--image-bytes", type=int, default=IMAGE_BYTES,
                       help="budget of the downscaled sample grids together (default %(default)s)")
    diff = sub.add_parser("diff", help="verdicts and numbers that moved between two records")
    diff.add_argument("a", help="record folder A (before)")
    diff.add_argument("b", help="record folder B (after)")
    diff.add_argument("--atol", type=float, default=1e-6,
                      help="a number moved when |B - A| > atol + rtol*|A| (default %(default)s)")
    diff.add_argument("--rtol", type=float, default=0.0, help="see --atol (default %(default)s)")
    diff.add_argument("--fail-on-diff", action="store_true",
                      help=f"exit {EXIT_DIFFERENT} when anything moved (default: exit 0)")
    rep = sub.add_parser("report", help="rebuild the html report from a record alone")
    rep.add_argument("--record", required=True, help="record folder")
    rep.add_argument("--out", required=True, help="report.html path")
    rep.add_argument("--title", default=None)


def run(args) -> int:
    """Run one action; returns the exit status (record diff --fail-on-diff: 3 when moved)."""
    if args.action == "write":
        from dcobench.record.write import record_size, write_record

        out = write_record(Path(args.results), Path(args.out),
                           [Path(c) for c in args.config] if args.config else None,
                           limit=args.max_bytes, image_budget=args.image_bytes)
        print(f"record: {out} ({record_size(out):,} bytes)")
    elif args.action == "diff":
        from dcobench.record import diff_records, format_diff, read_manifest

        a, b = Path(args.a), Path(args.b)
        changes = diff_records(a, b, atol=args.atol, rtol=args.rtol)
        print(format_diff(changes, a, b, (read_manifest(a), read_manifest(b))), end="")
        return EXIT_DIFFERENT if args.fail_on_diff and not changes.empty else 0
    else:
        from dcobench.record.report import report_from_record

        print(f"report: {report_from_record(Path(args.record), Path(args.out), args.title)}")
    return 0
