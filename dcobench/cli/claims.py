"""`python -m dcobench claims`: evaluate pre-registered claims (config/world_claims.yaml) on a
run's score tables: per test the paired effect, its bootstrap CI and the verdict ("not run"
where an arm is absent), written as csv with the commit that last changed the claims file (the
pre-registration). The `claims` rule names the tables (--scores, --noise-distance); by hand,
--results reads every table of a results folder."""

from __future__ import annotations

import subprocess
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--claims", default="config/world_claims.yaml", help="pre-registered claims file")
    parser.add_argument("--scores", nargs="*", default=None, metavar="CSV",
                        help="score tables to test the claims on (the DAG's); default: every "
                        "table under --results")
    parser.add_argument("--noise-distance", default=None, metavar="CSV",
                        help="analysis/noise_distance.csv (with --scores; omit when not run)")
    parser.add_argument("--results", default="results/world",
                        help="results folder (scores/, merges/, analysis/noise_distance.csv), "
                        "read when --scores is not given")
    parser.add_argument("--out", help="claims table csv (default: print only)")


def registration_commit(path: Path) -> str:
    """The commit that last changed the claims file, or "uncommitted" (git absent or file new);
    "<hash> (modified since)" when the working copy differs from that commit."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(path)], capture_output=True,
                             text=True, check=True, cwd=path.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"
    if not out:
        return "uncommitted"
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", str(path)], capture_output=True,
                           cwd=path.parent).returncode
    return f"{out} (modified since)" if dirty else out


def run(args) -> None:
    from dcobench.analysis.claims import claims_from_tables
    from dcobench.io import write_text_atomic

    scores, noise = getattr(args, "scores", None), getattr(args, "noise_distance", None)
    if scores is None:  # by hand: every table of a results folder
        results = Path(args.results)
        scores = sorted(results.glob("scores/*/*/*/*.csv")) + sorted(results.glob("merges/*/*/scores/*.csv"))
        if not scores:
            raise SystemExit(f"{results}: no score tables (scores/<group>/<concept>/<variant>/"
                             "<guide>.csv or merges/<pair>/<merge>/scores/<guide>.csv)")
        noise_csv = results / "analysis" / "noise_distance.csv"
        noise = noise_csv if noise_csv.is_file() else None
    table = claims_from_tables(args.claims, scores, noise)
    table.insert(0, "registered", registration_commit(Path(args.claims).resolve()))
    table.insert(1, "claims_file", str(args.claims))
    print(table[["claim", "test", "effect", "ci_low", "ci_high", "verdict", "claim_verdict"]]
          .to_string(index=False, float_format=lambda x: f"{x:+.4f}"))
    if args.out:
        write_text_atomic(Path(args.out), table.to_csv(index=False))
