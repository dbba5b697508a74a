"""Expected errors: what a user can fix (a bad config, a missing input, a record too large).

`python -m dcobench` prints an expected error as one log line and exits 1; anything else is a
bug and keeps its traceback. An error is expected when it is a `UserError` or one of the
classes named in `EXPECTED`; those are looked up in `sys.modules` only, so checking an error
imports nothing (a class whose module was never imported cannot have been raised).
"""

from __future__ import annotations

import sys


class UserError(ValueError):
    """A mistake the user can fix; its message says what and how, in one line. A ValueError, so
    callers that caught the ValueError it replaces still catch it."""


# module -> class names whose instances are expected errors (input the user can fix)
EXPECTED = {
    "builtins": ("FileNotFoundError", "FloatingPointError"),  # a missing input, a diverged run
    "dcobench.config": ("ConfigError",),
    "dcobench.data.concept": ("ConceptError",),
    "dcobench.data.images": ("ImageError",),
    "dcobench.precheck": ("PrecheckError",),
    "dcobench.ownership": ("OwnershipError",),
    "dcobench.registry": ("UnknownNameError",),
    "dcobench.analysis.claims_spec": ("MissingArm",),
    "dcobench.gpucheck": ("GPUUnavailable",),  # a GPU job whose torch cannot use its GPU
    "dcobench.io": ("CorruptFileError",),  # an output changed after it was written (checksums)
    "dcobench.yamlio": ("YamlFileError",),  # a YAML file with a duplicate key or not UTF-8
}


def expected_classes() -> tuple[type, ...]:
    """The expected error classes among the modules imported so far."""
    found: list[type] = [UserError]
    for module, names in EXPECTED.items():
        mod = sys.modules.get(module)
        found += [getattr(mod, n) for n in names if mod is not None and hasattr(mod, n)]
    return tuple(found)


def is_expected(exc: BaseException) -> bool:
    """True for an error the user can fix (one line), False for a bug (traceback)."""
    return isinstance(exc, expected_classes())
