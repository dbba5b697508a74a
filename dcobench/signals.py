"""Graceful stop on SLURM's warning signal / SIGTERM / Ctrl-C: finish the unit of work, save,
exit 143.

SLURM sends SIGTERM at preemption and at the time limit; the profile adds `--signal=TERM@300`
so it also arrives 300 s before the limit. (Use TERM without `B:`: every process of the step —
snakemake, the rule's shell, which `exec`s python, and python — handles TERM sensibly, whereas
USR1 would kill the inner snakemake.) SIGUSR1 is caught too, for schedulers configured to send
it. Long loops run inside `StopSignals()` and poll `.requested` between units of work (a
training step, a batch of images); when set they persist their progress and raise
`Interrupted`, which `python -m dcobench` turns into exit status 143 so the rerun (or a
`--requeue`) resumes from what was saved.
"""

from __future__ import annotations

import logging
import signal
import threading

EXIT_INTERRUPTED = 143  # 128 + SIGTERM, whatever signal arrived
# SIGINT: Ctrl-C in a terminal reaches snakemake and its jobs alike; a training then saves its
# resume state as it does for SLURM's SIGTERM (a second Ctrl-C aborts at once, saving nothing).
SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None),
                            getattr(signal, "SIGINT", None)) if s)

log = logging.getLogger("dcobench")


class Interrupted(Exception):
    """Work stopped on a signal after saving its progress; rerun to resume."""


class StopSignals:
    """Context manager: catch SIGTERM/SIGUSR1/SIGINT (main thread only) and record the first one."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now
        if self.signum is None:
            log.warning("received %s: stopping after the current unit of work",
                        signal.Signals(signum).name)
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "none"
