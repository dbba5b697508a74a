"""Stage command lines. Each module: `add_arguments(parser)` (cheap imports only) and `run(args)`.

Rules pass a stage's config section as `--options '<json>'`, so Snakemake reruns a job when its
options change; the JSON is parsed into the stage's frozen options dataclass, which validates it.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path


def add_options_argument(parser, cls=None) -> None:
    """--options; with an options dataclass declared by `spec.options.option`, the help lists
    its fields (name, default, bounds, help) from their spec."""
    parser.add_argument("--options", default="{}", metavar="JSON",
                        help="stage options as a JSON object (the config section; see config.yaml)")
    if cls is not None:
        from dcobench.spec.options import help_text

        parser.epilog = f"--options fields ({cls.__name__}):\n{help_text(cls)}"


def add_threads_argument(parser) -> None:
    """--threads: torch's CPU threads for this process. A run's bits depend on the thread count
    (a reduction split over more threads sums in another order, docs/reproducibility.md), so a
    command run by hand can match a workflow job, whose snakemake sets OMP_NUM_THREADS to the
    job's threads (1)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: OMP_NUM_THREADS, else every core; "
                             "workflow jobs run with 1)")


def apply_threads(args) -> None:
    """Set torch's CPU threads from --threads (nothing when it is not given)."""
    if getattr(args, "threads", None) is None:
        return
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)


def build_options(cls, options_json: str, **fixed):
    """Instantiate dataclass `cls` from JSON options plus fixed fields, coercing types."""
    try:
        raw = json.loads(options_json or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"--options is not valid JSON: {exc}") from exc
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    values = {**raw, **{k: v for k, v in fixed.items() if v is not None}}
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(hints[k], v) for k, v in values.items()})


def _coerce(hint, value):
    if value is None:
        return None
    text = str(hint)
    if "Path" in text:
        return Path(value)
    if "tuple" in text and isinstance(value, list | tuple):
        return tuple(value)
    return value


def parse_members(text: str, required: set[str], optional: set[str]) -> list[dict]:
    """A grouped command's --members JSON (train, sample, score): a non-empty list of objects,
    each with every `required` key and no key outside `required | optional`. A mistake in it is
    the caller's to fix: a UserError, one line naming the member."""
    from dcobench.errors import UserError

    try:
        members = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--members is not valid JSON: {exc}") from exc
    if not isinstance(members, list) or not members:
        raise UserError("--members must be a non-empty JSON list")
    for i, m in enumerate(members):
        if not isinstance(m, dict) or set(m) - required - optional or required - set(m):
            may = f" (and may set {', '.join(sorted(optional))})" if optional else ""
            raise UserError(f"--members[{i}] needs {' and '.join(sorted(required))}{may}; "
                            f"got {m!r}")
    return members
