""".ci/snakemake_lint.py (make lint): snakemake --lint's text read back as (where, message);
only the justified messages pass."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "snakemake_lint.py"
spec = importlib.util.spec_from_file_location("snakemake_lint", SCRIPT)
lint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lint)

TEXT = """Lints for snakefile /repo/workflow/rules/train.smk:
    * Mixed rules and functions in same snakefile.:
      Small one-liner functions used only once should be defined as lambda

Lints for rule prepare (line 62, /repo/workflow/rules/data.smk):
    * Specify a conda environment or container for each rule.:
      This way, the used software for each specific step is documented, and the
    * Shell command directly uses variable PY from outside of the rule:
      It is recommended to pass all files as input and output, and non-file
"""


def test_lints_are_read_with_their_place():
    assert lint.lints(TEXT) == [
        ("snakefile /repo/workflow/rules/train.smk", "Mixed rules and functions in same snakefile."),
        ("rule prepare (line 62, /repo/workflow/rules/data.smk)",
         "Specify a conda environment or container for each rule."),
        ("rule prepare (line 62, /repo/workflow/rules/data.smk)",
         "Shell command directly uses variable PY from outside of the rule"),
    ]


def test_only_justified_lints_pass():
    found = [m for _, m in lint.lints(TEXT)]
    assert [m for m in found if m not in lint.JUSTIFIED] == ["Mixed rules and functions in same snakefile."]
    assert all(len(why) > 40 for why in lint.JUSTIFIED.values())  # each says why, in words
