"""SDXL text conditioning and textual embeddings (paper §4.3) on both text encoders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

EMBED_KEYS = ("clip_l", "clip_g")  # text_encoder, text_encoder_2 (SDXL's convention)
EMBEDS_NAME = "learned_embeds.safetensors"


def encoders(pipe) -> list[tuple[object, torch.nn.Module]]:
    """[(tokenizer, text_encoder), (tokenizer_2, text_encoder_2)]."""
    return [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)]


def encode_prompts(pipe, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """SDXL prompt embeddings: (B, 77, d1+d2) penultimate states and (B, d_proj) pooled.

    The pooled vector is text_encoder_2's projected final state at the first end-of-text token
    (`eos_pooled`), not transformers' `text_embeds`: SDXL's text-encoder configs carry the legacy
    `eos_token_id: 2`, for which transformers pools at the largest token id — a learned token
    added after the vocabulary (id 49 408 > end-of-text 49 407) would take the EOS's place."""
    states, pooled = [], None
    for tokenizer, encoder in encoders(pipe):
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids.to(encoder.device)
        out = encoder(ids, output_hidden_states=True)
        states.append(out.hidden_states[-2])  # (B, 77, d_i)
        if hasattr(encoder, "text_projection"):  # the projection model (text_encoder_2)
            pooled = eos_pooled(encoder, out.last_hidden_state, ids, tokenizer.eos_token_id)
    return torch.cat(states, dim=-1), pooled


def eos_position(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Index of the first `eos_id` in each row of `ids` (B, L): (B,). A row without one (never
    from the tokenizer, which always appends it) raises."""
    hit = ids == eos_id
    if not bool(hit.any(dim=-1).all()):
        raise ValueError(f"a prompt's token ids carry no end-of-text token (id {eos_id})")
    return hit.int().argmax(dim=-1)


def eos_pooled(encoder, last_hidden_state: torch.Tensor, ids: torch.Tensor,
               eos_id: int) -> torch.Tensor:
    """CLIP's pooled text embedding taken at the end-of-text position, then projected: (B, d)."""
    rows = torch.arange(ids.shape[0], device=last_hidden_state.device)
    picked = last_hidden_state[rows, eos_position(ids, eos_id).to(last_hidden_state.device)]
    return encoder.text_projection(picked)


def empty_conditioning(pipe, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The unconditional embedding: zeros when the pipeline forces them (SDXL), else ""."""
    if pipe.config.get("force_zeros_for_empty_prompt", True):  # no encoder call needed
        (tok, enc1), (_, enc2) = encoders(pipe)
        dim = enc1.config.hidden_size + enc2.config.hidden_size
        embeds = torch.zeros(1, tok.model_max_length, dim, device=enc2.device, dtype=enc2.dtype)
        pooled = torch.zeros(1, enc2.config.projection_dim, device=enc2.device, dtype=enc2.dtype)
        return embeds.expand(batch, -1, -1), pooled.expand(batch, -1)
    embeds, pooled = encode_prompts(pipe, [""])
    return embeds.expand(batch, -1, -1), pooled.expand(batch, -1)


def time_ids(height: int, width: int, batch: int, device=None, dtype=None) -> torch.Tensor:
    """SDXL size/crop conditioning (orig_h, orig_w, crop_top, crop_left, target_h, target_w)."""
    row = torch.tensor([height, width, 0, 0, height, width], device=device, dtype=dtype)
    return row.expand(batch, 6)


@dataclass
class LearnedTokens:
    """A new token row per encoder. Training steps the rows as separate (1, d) parameters
    (`rows`); `write` puts them back into the embedding matrices, whose other rows never change."""

    token: str
    ids: list[int]  # one id per encoder
    init_norms: list[torch.Tensor]

    def tables(self, pipe) -> list[torch.nn.Parameter]:
        """The full embedding matrices, one per encoder."""
        return [enc.get_input_embeddings().weight for _, enc in encoders(pipe)]

    def rows(self, pipe) -> list[torch.nn.Parameter]:
        """Fresh fp32 leaf copies of the learned rows, shape (1, d): what the optimizer steps."""
        return [torch.nn.Parameter(w.detach()[i : i + 1].float().clone())
                for w, i in zip(self.tables(pipe), self.ids, strict=True)]

    @torch.no_grad()
    def write(self, pipe, rows: list[torch.Tensor]) -> None:
        """Rescale each row to its initializer's norm, in place, and copy it into its matrix."""
        for w, i, norm, row in zip(self.tables(pipe), self.ids, self.init_norms, rows, strict=True):
            row.mul_(norm.to(row) / row.norm().clamp_min(1e-12))
            w[i] = row[0].to(w)


def add_learned_token(pipe, token: str, init_phrase: str) -> LearnedTokens:
    """Add `token` to both tokenizers, initialised from the mean embedding of `init_phrase`."""
    ids, norms = [], []
    for tokenizer, encoder in encoders(pipe):
        if tokenizer.add_tokens([token]) != 1:
            raise ValueError(f"token {token!r} already exists in the tokenizer; choose another")
        init_ids = tokenizer(init_phrase, add_special_tokens=False).input_ids
        encoder.resize_token_embeddings(len(tokenizer))
        weight = encoder.get_input_embeddings().weight
        new_id = tokenizer.convert_tokens_to_ids(token)
        with torch.no_grad():
            weight[new_id] = weight[init_ids].mean(dim=0)
        ids.append(new_id)
        norms.append(weight[new_id].detach().norm().clone())
    return LearnedTokens(token, ids, norms)


def save_learned_embeds(path: Path, pipe, tokens: LearnedTokens) -> None:
    """learned_embeds.safetensors: {'clip_l': (1, d1), 'clip_g': (1, d2)} (stock TI format)."""
    state = {}
    for key, (_, enc), idx in zip(EMBED_KEYS, encoders(pipe), tokens.ids, strict=True):
        state[key] = enc.get_input_embeddings().weight[idx : idx + 1].detach().float().cpu().clone()
    save_file(state, str(path), metadata={"token": tokens.token})


def load_learned_embeds(pipe, path: Path, token: str) -> None:
    """Load learned rows into both encoders through diffusers' `load_textual_inversion`."""
    state = load_file(str(path))
    for key, (tokenizer, enc) in zip(EMBED_KEYS, encoders(pipe), strict=True):
        pipe.load_textual_inversion(state[key], token=token, text_encoder=enc, tokenizer=tokenizer)
