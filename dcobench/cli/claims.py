"""`python -m dcobench claims`: evaluate pre-registered claims (config/world_claims.yaml) on a
run's score tables: per test the paired effect, its 95% CI (t on concept means, protocol
version 2: docs/claims.md), its bound (δ or −margin) and verdict ("not run" where an arm is
absent, "refused" on too few concepts), and per claim the adjusted p-values and verdict,
written as csv with, per claim, the commit that first held it (its pre-registration; flagged
when the claim differs now) and the commit that last changed the file. The `claims` rule names
the tables (--scores, --noise-distance); by hand, --results reads every table of a results
folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


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


def _git(path: Path, *args: str) -> str:
    """git's stdout, run in the claims file's folder; CalledProcessError / OSError as raised."""
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                          cwd=path.parent).stdout


def registration_commit(path: Path) -> str:
    """The commit that last changed the claims file, or "uncommitted" (git absent or file new);
    "<hash> (modified since)" when the working copy differs from that commit."""
    try:
        out = _git(path, "log", "-1", "--format=%H", "--", path.name).strip()
    except (OSError, subprocess.CalledProcessError):
        return "uncommitted"
    if not out:
        return "uncommitted"
    try:
        _git(path, "diff", "--quiet", "HEAD", "--", path.name)
    except subprocess.CalledProcessError:  # exit 1: the working copy differs
        return f"{out} (modified since)"
    return out


def claim_registrations(path: Path) -> dict[str, str]:
    """Per claim id of the claims file: the first commit whose version of the file holds the
    claim; "<hash> (changed since)" when the claim now differs from that version (its tests,
    arms, concepts, statement: anything but the `note`); "uncommitted" when no commit holds it
    or git is absent. Versions of the file that no longer parse are skipped."""
    from dcobench.analysis.claims import load_protocol, parse_protocol

    now = load_protocol(path).claims
    first: dict[str, tuple[str, object]] = {}
    try:
        commits = _git(path, "log", "--reverse", "--format=%H", "--", path.name).split()
    except (OSError, subprocess.CalledProcessError):
        commits = []
    for commit in commits:
        try:
            text = _git(path, "show", f"{commit}:./{path.name}")
            # history is read as it was committed (lenient), so registrations never move
            old = parse_protocol(yaml.safe_load(text), f"{commit}:{path.name}").claims
        except (OSError, subprocess.CalledProcessError, ValueError, yaml.YAMLError):
            continue
        for claim in old:
            first.setdefault(claim.id, (commit, claim))
    out = {}
    for claim in now:
        if claim.id not in first:
            out[claim.id] = "uncommitted"
            continue
        commit, registered = first[claim.id]
        out[claim.id] = commit if registered == claim else f"{commit} (changed since)"
    return out


def run(args) -> None:
    from dcobench.analysis.claims import claims_from_tables
    from dcobench.io import write_text_atomic

    scores, noise = getattr(args, "scores", None), getattr(args, "noise_distance", None)
    if scores is None:  # by hand: every table of a results folder
        from dcobench.layout import SCORE_GLOBS_TEXT, Layout

        layout = Layout(args.results)
        scores = layout.score_tables()
        if not scores:
            raise SystemExit(f"{args.results}: no score tables ({SCORE_GLOBS_TEXT})")
        noise_csv = Path(layout.noise_distance())
        noise = noise_csv if noise_csv.is_file() else None
    table = claims_from_tables(args.claims, scores, noise)
    path = Path(args.claims).resolve()
    table.insert(0, "registered", registration_commit(path))
    table.insert(1, "claims_file", str(args.claims))
    table.insert(2, "claim_registered", table["claim"].map(claim_registrations(path)))
    print(table[["claim", "test", "effect", "ci_low", "ci_high", "bound", "verdict", "claim_verdict"]]
          .to_string(index=False, float_format=lambda x: f"{x:+.4f}"))
    if args.out:
        write_text_atomic(Path(args.out), table.to_csv(index=False))
