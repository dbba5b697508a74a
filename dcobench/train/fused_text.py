"""Learned-token rows of a fused group: one embedding row per member, gradients per member.

Every member that learns the concept token gets its own row in both embedding matrices, all
initialised as `text.add_learned_token` initialises the separate run's row. The tokenizers know
one token string (the first member's id); a member's prompts are tokenized as usual and the
token id swapped for the member's own id, so the encoders see exactly the separate run's ids
except for that one id.

The separate trainer clips by a norm that counts the gradient of every embedding-matrix row its
prompts used (the prompt's other tokens too). In a fused step those rows are shared by the
members, so the matrices take no gradient here: a hook makes each encoder's embedding output a
leaf, and a member's matrix gradient is the scatter-add of its own rows' output gradients over
their token ids (the rows it touched; the others are zero, as in the separate run).

A member that does not train its token (`ti_lr: 0`, `batches.trains_token`) gets its row too,
left at its initial value: it is never encoded here (its captions are cached) nor stepped.
"""

from __future__ import annotations

import torch

from dcobench.models import text


class TokenRows:
    """Learned rows of `members` (fused.Member, each `tokens` set here) and their gradients."""

    def __init__(self, pipe, concept, members) -> None:
        self.pipe, self._outs, self._ids, self._slices = pipe, [], [], {}
        self._capturing = False
        self._members = {m.index: m for m in members}  # the members that learn the token
        if not members:
            return
        base = text.add_learned_token(pipe, concept.token, concept.class_noun)
        self.base_ids = list(base.ids)
        members[0].tokens = base
        for m in members[1:]:
            ids = []
            for (_, enc), src in zip(text.encoders(pipe), base.ids, strict=True):
                new = enc.get_input_embeddings().weight.shape[0]  # one more row, past the vocab
                enc.resize_token_embeddings(new + 1, mean_resizing=False)
                with torch.no_grad():
                    weight = enc.get_input_embeddings().weight
                    weight[new] = weight[src]
                ids.append(new)
            m.tokens = text.LearnedTokens(base.token, ids, [n.clone() for n in base.init_norms])

    def capture(self) -> None:
        """Hook the embedding modules (call after every resize and precision change)."""
        for _, enc in text.encoders(self.pipe):
            enc.get_input_embeddings().register_forward_hook(self._hook, prepend=True)

    def _hook(self, module, args, out):
        if not (self._capturing and torch.is_grad_enabled()):
            return None
        out = out.detach().requires_grad_(True)  # (N, 77, d) leaf: per-row gradients
        self._outs.append(out)
        return out

    def encode(self, prompts: dict[int, list[str]]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """member index -> (embeds (n, 77, D), pooled (n, P)) of its prompts, in one encoder
        call per encoder, each member's rows reading its own token row (`text.encode_prompts`
        with the ids swapped)."""
        if not prompts:
            return {}
        members = self._members
        flat, start = [], 0
        for k, rows in prompts.items():
            self._slices[k] = slice(start, start + len(rows))
            flat += rows
            start += len(rows)
        states, pooled = [], None
        self._outs, self._ids, self._capturing = [], [], True
        try:
            for e, (tokenizer, encoder) in enumerate(text.encoders(self.pipe)):
                ids = tokenizer(flat, padding="max_length", max_length=tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids
                for k, sl in self._slices.items():
                    block = ids[sl]  # a view: (n_k, 77)
                    block[block == self.base_ids[e]] = members[k].tokens.ids[e]
                ids = ids.to(encoder.device)
                self._ids.append(ids)
                out = encoder(ids, output_hidden_states=True)
                states.append(out.hidden_states[-2])  # (N, 77, d_e)
                if hasattr(encoder, "text_projection"):  # at end-of-text, as encode_prompts
                    pooled = text.eos_pooled(encoder, out.last_hidden_state, ids,
                                             tokenizer.eos_token_id)
        finally:
            self._capturing = False
        embeds = torch.cat(states, dim=-1)  # (N, 77, d1 + d2)
        return {k: (embeds[sl], pooled[sl]) for k, sl in self._slices.items()}

    def member_grads(self, members) -> dict[int, list[tuple[torch.Tensor, torch.Tensor]]]:
        """member index -> per encoder (its matrix gradient's used rows (u, d), learned row's
        gradient (1, d)), for the members whose prompts were encoded this step."""
        grads = {}
        for m in members:
            sl = self._slices.get(m.index)
            if sl is None or not self._outs:
                continue
            per_encoder = []
            for e, (out, ids) in enumerate(zip(self._outs, self._ids, strict=True)):
                g = out.grad[sl]  # (n, 77, d)
                g = g.reshape(-1, g.shape[-1])  # (n·77, d)
                used, inverse = torch.unique(ids[sl].reshape(-1), return_inverse=True)
                matrix = torch.zeros(used.shape[0], g.shape[1], dtype=g.dtype, device=g.device)
                matrix.index_add_(0, inverse, g)  # (u, d): the rows this member's prompts used
                per_encoder.append((matrix, matrix[used == m.tokens.ids[e]].clone()))
            grads[m.index] = per_encoder
        return grads

    def release(self) -> None:
        self._outs, self._ids, self._slices = [], [], {}
