#!/usr/bin/env python3
"""`snakemake --lint`, each remaining warning justified: exit 1 on any lint not listed in
JUSTIFIED (print it), else print the justified ones counted. Run from the repo root
(`make lint`); extra arguments go to snakemake (e.g. --configfile config/paper.yaml)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

# lint message (as snakemake prints it, without the trailing ':') -> why the workflow keeps it
JUSTIFIED = {
    "Specify a conda environment or container for each rule.":
        "every job runs in the project's one environment (.venv from requirements/lock.txt, the "
        "interpreter running snakemake); a conda env per rule would duplicate the lock",
    "Shell command directly uses variable PY from outside of the rule":
        "PY is the interpreter running snakemake (the project venv) with HF_HUB_OFFLINE=1: not "
        "a parameter of any result; as a param, moving the venv would rerun every job",
    "Shell command directly uses variable PY_ONLINE from outside of the rule":
        "the same interpreter, online, for prepare_model's one download",
    "Shell command directly uses variable SCORE_CACHE from outside of the rule":
        "the embedding cache's folder (score.cache_dir): content-addressed, it never changes a "
        "score; as a param, moving the cache would rerun every scoring job",
    "Shell command directly uses variable config from outside of the rule":
        "score.batch_size only: how many images an embedder call takes, deliberately no rerun "
        "trigger (as score.cache_dir)",
    "Shell command directly uses variable R from outside of the rule":
        "report's --exp-dir: results/<exp> (dcobench.layout), the prefix of every input and "
        "output of the job, fixed by `experiment`",
    "Shell command directly uses variable DATA from outside of the rule":
        "world_concepts' --out: data.root, the prefix of every output of the job",
    "No log directive defined":
        "train_member, sample_member, score_member(_pretrained) (local) only write a member's "
        "marker or hard-link a group job's finished member folder into place; the member's log "
        "is the group job's, and snakemake's own log records the step",
}
LINT = re.compile(r"^ {4}\* (.+?):?$")


def lints(text: str) -> list[tuple[str, str]]:
    """(where, message) per lint of `snakemake --lint` text output."""
    out, where = [], ""
    for line in text.splitlines():
        if line.startswith("Lints for "):
            where = line.removeprefix("Lints for ").rstrip(":")
        elif m := LINT.match(line):
            out.append((where, m[1].rstrip(":")))
    return out


def main(argv: list[str]) -> int:
    snakemake = Path(sys.executable).with_name("snakemake")
    run = subprocess.run([str(snakemake), "--lint", *argv], capture_output=True, text=True)
    found = lints(run.stdout + run.stderr)
    if run.returncode not in (0, 1) or (run.returncode == 1 and not found):
        sys.stderr.write(run.stdout + run.stderr)
        return run.returncode or 1
    unjustified = [(w, m) for w, m in found if m not in JUSTIFIED]
    for message, n in sorted(Counter(m for _, m in found if m in JUSTIFIED).items()):
        print(f"justified ×{n}: {message} — {JUSTIFIED[message]}")
    for where, message in unjustified:
        print(f"LINT {where}: {message}")
    return 1 if unjustified else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
