"""Names that become folder and file names (concepts, datasets, images): the rule, in words.

A concept name ends up in paths such as results/{exp}/merges/{subject}__{style}/…, in staging
names (".{name}.partial") and in SLURM job names, so it must be path-safe everywhere and short
enough that every derived name stays under the 255-byte limit of common file systems.
"""

from __future__ import annotations

import re

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME_BYTES = 100  # two names + "__" + staging affixes stay well under 255 bytes
RULE = ("letters, digits, '_', '.' and '-' only, starting with a letter or digit, "
        f"at most {MAX_NAME_BYTES} bytes")


def suggest_name(name: str) -> str:
    """A valid name close to `name`: runs of other characters become '_'."""
    fixed = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-")
    return fixed.encode()[:MAX_NAME_BYTES].decode(errors="ignore").rstrip("_.-") or "concept"


def name_problem(name: str) -> str | None:
    """What is wrong with `name` as a path-safe name, in words (with a suggestion); None if ok."""
    if len(name.encode()) > MAX_NAME_BYTES:
        return (f"name {name[:40]!r}… is {len(name.encode())} bytes long; use {RULE} "
                f"(e.g. {suggest_name(name)!r})")
    if not SAFE_NAME.match(name):
        return f"name {name!r} is not path-safe; use {RULE} (e.g. {suggest_name(name)!r})"
    return None
