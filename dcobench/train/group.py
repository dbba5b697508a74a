"""Run (or resume) a fused group of trainings: every member's outputs as its separate run's.

Each member keeps its separate run's files: its resume folder `{out}.resume/` (state.pt with its
own fingerprint, checkpoints/), and, once its last step is done, its model folder (LoRA, learned
embeddings, train_log.csv, manifest.json) swapped in whole. A finished member's final state stays
in its resume folder until the whole group is done, so a rerun of an interrupted or partly failed
group skips it (and the other members' batches stay as in an uninterrupted run). Members may be at different steps
(a group resumed from states saved at different times, or with different step counts): each
step advances every member that has steps left.

A member whose loss turns non-finite stops there (no model folder, its resume folder kept as a
separate run leaves it); the others finish and are written; then `GroupFailed` names the failed
members (the CLI exits non-zero, so a workflow job fails and reports them).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from tqdm import tqdm

from dcobench.signals import Interrupted, StopSignals
from dcobench.train import resume
from dcobench.train.fused import FusedTrainer, Member
from dcobench.train.options import TrainOptions
from dcobench.train.trainer import _finish, _options_json

log = logging.getLogger("dcobench")


class GroupFailed(FloatingPointError):
    """Some members stopped on a non-finite loss; the others' outputs were written."""


def _start(member: Member) -> tuple[list[dict], float]:
    """Load the member's resume state if it has one for these options; its log rows, elapsed."""
    opts = member.opts
    work = resume.resume_dir(opts.out_dir)
    member.fingerprint = resume.fingerprint(_options_json(opts))
    state = resume.load_state(work, member.fingerprint)
    if state is None:
        shutil.rmtree(work, ignore_errors=True)
        return [], 0.0
    member.load_state_dict(state)
    member.resumed_across = state.get("resumed_across")
    log.info("resuming %s from step %d/%d (%s)", opts.out_dir, member.step_count, opts.steps, work)
    return list(state["log"]), state["elapsed"]


def _save_state(member: Member, rows: list[dict], elapsed: float) -> None:
    resume.save_state(resume.resume_dir(member.opts.out_dir),
                      {**member.state_dict(), "log": rows, "elapsed": elapsed,
                       "fingerprint": member.fingerprint})


def train_group(members: list[TrainOptions]) -> list[Path]:
    """Train `members` fused; returns their model folders. SIGTERM / SIGUSR1 save every unfinished
    member's resume state after the current step and raise `Interrupted`."""
    fused = FusedTrainer(members)
    logs, begin = {}, {}
    for m in fused.members:
        rows, elapsed = _start(m)
        logs[m.index], begin[m.index] = rows, time.time() - elapsed
        if not m.active and not (Path(m.opts.out_dir) / "manifest.json").exists():
            _finish(m, m.opts, resume.resume_dir(m.opts.out_dir), rows, elapsed, keep_work=True)
    total = max(m.opts.steps for m in fused.members)
    with StopSignals() as stop:
        bar = tqdm(total=sum(m.opts.steps for m in fused.members),
                   initial=sum(m.step_count for m in fused.members), desc=f"train {len(members)} fused",
                   unit="step", mininterval=2.0, dynamic_ncols=True)
        while any(m.active for m in fused.members):
            rows = fused.step()
            bar.update(len(rows))
            stopping = stop.requested  # read once: every member saves at the same step
            for m in fused.members:
                if m.index in rows:
                    _after_step(m, rows[m.index], logs[m.index], begin[m.index], stopping)
            if stopping and any(m.active for m in fused.members):
                raise Interrupted(f"{stop.name()} during a fused group of {len(members)} (longest "
                                  f"{total} steps): resume states saved next to each model; rerun "
                                  "the same command to continue")
    failed = [m for m in fused.members if m.failed]
    for m in failed:
        log.error("%s", m.failed)
    if not failed:  # a rerun after a failure skips the finished members (their final states)
        for m in fused.members:
            shutil.rmtree(resume.resume_dir(m.opts.out_dir), ignore_errors=True)
    if failed:
        raise GroupFailed(f"{len(failed)} of {len(members)} fused trainings stopped on a "
                          f"non-finite loss (the others were written): "
                          + "; ".join(m.failed for m in failed))
    return [Path(m.opts.out_dir) for m in fused.members]


def _after_step(m: Member, row: dict, rows: list[dict], begin: float, stopping: bool) -> None:
    """Log, checkpoint, resume state and (at its last step) the model folder of one member."""
    opts, step = m.opts, m.step_count
    work = resume.resume_dir(opts.out_dir)
    row.update(step=step, time=round(time.time() - begin, 3))
    if step % opts.log_every == 0 or step == opts.steps:
        rows.append(row)
    if step in opts.checkpoints:
        resume.save_dir_atomic(work / "checkpoints" / f"step-{step}", m.save)
    if step < opts.steps and (stopping or step % opts.resume_every == 0):
        _save_state(m, rows, time.time() - begin)
    if step == opts.steps:  # written now; its final state stays until the whole group is done
        _finish(m, opts, work, rows, time.time() - begin, keep_work=True)
        _save_state(m, rows, time.time() - begin)
