"""Sample every model of one concept in one process (config `sample.group_size: concept`).

A per-model sampling job spends much of its time loading the base pipeline (43% of a demo
sample job's wall time). A group job loads it once, then for each member: puts the member's
LoRA (adapter "theta") and learned tokens on it by the calls `load_finetuned` makes
(`attach_model`), samples the member's grid into its own folders (`sample_loaded`, the
per-model code), and takes the LoRA and tokens off again, so the next member starts from the
unchanged base. `BaseState` records the base once and checks, after each member, that it is
back exactly: the same weight tensors, unwritten, and the text encoders' embedding tables and
tokenizers as loaded. A member without a model folder samples the pretrained model (CFG).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch

from dcobench.models import text
from dcobench.models.finetuned import attach_model
from dcobench.sample.grid import load_model, sample_loaded
from dcobench.signals import Interrupted, StopSignals
from dcobench.spec.options import check_shared
from dcobench.spec.sample import SampleOptions

SHARED = ("base_model", "mixed_precision", "channels_last")  # what the one loaded base fixes


class BaseRestoreError(RuntimeError):
    """A member left the base pipeline changed: the next member would not sample the base."""


def _weights(pipe) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of the pipeline's models except the token-embedding tables
    (loading a token replaces those; `BaseState` keeps them by value)."""
    tables = {id(enc.get_input_embeddings().weight) for _, enc in text.encoders(pipe)}
    out = {}
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, part)
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if id(t) not in tables:
                out[f"{part}.{name}"] = t
    return out


class BaseState:
    """The base pipeline as loaded, for restoring and checking it between members.

    The weights are not copied: a LoRA is a separate peft layer around the base one (never
    merged into it), so the base is back exactly when every tensor is the same object at the
    same storage and version counter (no in-place write since the snapshot) and no tensor was
    added or dropped. Loading a learned token grows the embedding tables and the tokenizers,
    so those are kept by value (the tables cloned, the tokenizers deep-copied) and put back.
    """

    def __init__(self, pipe) -> None:
        self.weights = {name: _signature(t) for name, t in _weights(pipe).items()}
        self.tokenizers = [copy.deepcopy(tok) for tok, _ in text.encoders(pipe)]
        self.tables = [enc.get_input_embeddings().weight.detach().clone()
                       for _, enc in text.encoders(pipe)]

    def restore(self, pipe) -> None:
        """Take a member's LoRA and learned tokens off `pipe`, then `check` it."""
        if getattr(pipe.unet, "peft_config", None):
            pipe.unload_lora_weights()
        names = ("tokenizer", "tokenizer_2")
        for name, (_, enc), tok, table in zip(names, text.encoders(pipe), self.tokenizers,
                                              self.tables, strict=True):
            setattr(pipe, name, copy.deepcopy(tok))
            if enc.get_input_embeddings().weight.shape != table.shape:
                enc.resize_token_embeddings(table.shape[0])  # drops the learned rows
            with torch.no_grad():
                enc.get_input_embeddings().weight.copy_(table)
        self.check(pipe)

    def check(self, pipe) -> None:
        """Raise `BaseRestoreError` naming what differs from the base as loaded."""
        now = {name: _signature(t) for name, t in _weights(pipe).items()}
        extra, lost = sorted(set(now) - set(self.weights)), sorted(set(self.weights) - set(now))
        if extra or lost:
            raise BaseRestoreError(f"the base pipeline's tensors changed: added {extra[:3]}, "
                                   f"dropped {lost[:3]}")
        changed = [name for name, sig in now.items() if sig != self.weights[name]]
        if changed:
            raise BaseRestoreError(f"{len(changed)} base tensor(s) were replaced or written "
                                   f"in place, first {changed[0]}")
        for (tok, enc), base_tok, table in zip(text.encoders(pipe), self.tokenizers, self.tables,
                                               strict=True):
            if len(tok) != len(base_tok):
                raise BaseRestoreError(f"a tokenizer holds {len(tok)} tokens, the base {len(base_tok)}")
            if not torch.equal(enc.get_input_embeddings().weight, table):
                raise BaseRestoreError("a text encoder's token-embedding table differs from the base's")


def _signature(t: torch.Tensor) -> tuple:
    """A tensor's identity and write count: equal signatures mean equal contents."""
    return (t.data_ptr(), t._version, tuple(t.shape), t.dtype, t.device)


def check_members(members: list[SampleOptions]) -> None:
    """Members share one loaded base: the fields that fix it must agree."""
    check_shared(members, SHARED, "a sampling group")


def sample_group(members: list[SampleOptions], chunk: tuple[int, int] | None = None) -> list[Path]:
    """Sample each member's grid (or its `chunk`) with one loaded base; returns the guide
    folders. Written images are skipped (resumable), as in `sample_grid`; SIGTERM / SIGUSR1
    stop after the current batch (or before the next member) with `Interrupted`, and a rerun
    resumes."""
    check_members(members)
    folders = []
    with StopSignals() as stop:  # between members; `sample_loaded` polls its own while sampling
        pipe = load_model(replace(members[0], model_dir=None, guides=("cfg",)))  # the base alone
        base = BaseState(pipe)
        for opts in members:
            if stop.requested:
                raise Interrupted(f"sampling group stopped by {stop.name()} before "
                                  f"{opts.out_dir}; rerun to resume")
            if opts.model_dir is not None:
                attach_model(pipe, opts.model_dir)
            try:
                folders += sample_loaded(pipe, opts, chunk)
            finally:
                base.restore(pipe)
    return folders
