"""`python -m dcobench <stage> ...`: every Snakemake rule calls one of these stages."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from dcobench.stages import STAGES  # stage -> (module, help); plug-ins add theirs

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# how libraries that wrap the OS error (safetensors, torch.save, PIL) word it
DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded",
                  "os error 28", "os error 27", "os error 122")


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc` (or an exception it was raised from) is a full disk or a file-size limit."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) in DISK_FULL_ERRNOS or any(t in str(exc)
                                                                  for t in DISK_FULL_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_message(args, exc: BaseException) -> str:
    """What a full disk during a stage means for its outputs, and what to do."""
    out = getattr(args, "out", None) or getattr(args, "out_dir", None) or "its output folder"
    return (f"{args.stage}: the disk is full (or a file-size limit was reached) while writing "
            f"to {out}: {exc}. Nothing was left under a final file name (outputs are written to "
            "a temp file or folder and renamed when whole); free space there and rerun the job")


def check_models_at_start(args) -> None:
    """The model folders a stage names, checked again as the job starts (the workflow checked
    them when it built the DAG, but a scratch file system may have been purged since): a
    UserError naming the folder and the fix instead of a loader's traceback."""
    import json

    from dcobench.modelspec import spec_problem

    specs = {"base": getattr(args, "base_model", None)}
    if isinstance(getattr(args, "models", None), str) and args.models.startswith("{"):
        specs.update(json.loads(args.models))
    problems = [p for key, spec in specs.items() if spec and (p := spec_problem(key, spec))]
    if problems:
        from dcobench.errors import UserError

        raise UserError(f"{args.stage}: at the job's start, " + "; ".join(problems))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dcobench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, (module, help_text) in STAGES.items():
        mod = importlib.import_module(module)
        stage = sub.add_parser(name, help=help_text, description=mod.__doc__ or help_text,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        stage.set_defaults(_module=module)
        mod.add_arguments(stage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from dcobench.signals import EXIT_INTERRUPTED, Interrupted

    try:
        check_models_at_start(args)
        status = importlib.import_module(args._module).run(args)  # None, or an exit status
    except Interrupted as exc:
        logging.getLogger("dcobench").warning("%s", exc)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error ends here, as one line or a traceback
        return _report_error(args, exc)
    return status if isinstance(status, int) else 0


def _report_error(args, exc: Exception) -> int:
    """An expected error (dcobench.errors), a full disk or an unreadable file as one log line;
    anything else, a bug, with its traceback. Exit status 1 either way."""
    from dcobench.errors import is_expected

    log = logging.getLogger("dcobench")
    if is_expected(exc):
        log.error("%s", exc)
    elif disk_full(exc):
        log.error("%s", disk_full_message(args, exc))
    elif isinstance(exc, OSError) and not args.verbose:
        log.error("%s: %s; a file or folder it needs is missing or unreadable (rerun with -v for "
                  "the traceback)", args.stage, exc)
    else:
        log.error("unexpected %s (a bug? please report it with this traceback): %s",
                  type(exc).__name__, exc, exc_info=exc)
    return 1


if __name__ == "__main__":
    sys.exit(main())
