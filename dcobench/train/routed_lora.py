"""A LoRA layer holding several trainings' adapters, each batch row routed to one of them.

Fused training (dcobench.train.fused) runs one UNet call for the rows of K trainings. Every
targeted Linear becomes a `RoutedLoRALinear`:

    y[rows of member k] = W x + (B_k (A_k x)) · scale_k      (member k's contiguous rows)
    y[every row]        = W x                                 (reference pass: no adapter)

The rows of one member are contiguous (the fused step lays the batch out member by member). A
group of one runs its LoRA as a plain `F.linear` pair, the very operations of peft's
`lora.Linear` forward on a separate run's batch (bit-exact); only the frozen `W x` runs on the
whole batch. With several members, when all of them have a LoRA of one rank and scale on the
layer, every row gathers its member's factors and the deltas of all rows are two `torch.bmm`
calls (a handful of ops per layer instead of ~4 per member: at K = 10 on the world the chunk
loop's small ops were ~10 % of a step); otherwise (members' ranks or targets differ) each
member's chunk runs the `F.linear` pair.
This is a training layer of our own, not peft's inference-only mixed-batch path.

The adapters are created by peft itself (`adapters.add_lora`, one adapter per member, each under
its own seed), so their initial weights are exactly those of the separate runs; the peft layers
are then replaced by routed layers that take over the same Parameter objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer


@dataclass
class Router:
    """The routing of the next UNet call, shared by every routed layer: (start, stop, member)
    row segments; None = no adapter on any row (the reference pass φ)."""

    segments: list[tuple[int, int, int]] | None = None
    rows: int = field(default=0)
    _index: dict = field(default_factory=dict)  # device -> (rows,) segment of each row
    version: int = 0  # changes with every routing (layers cache per-routing plans by it)

    def route(self, counts: Sequence[tuple[int, int]]) -> None:
        """`counts`: (member, rows) in batch order; the segments follow."""
        segments, start = [], 0
        for member, n in counts:
            segments.append((start, start + n, member))
            start += n
        self.segments, self.rows, self._index = segments, start, {}
        self.version += 1

    def off(self) -> None:
        self.segments, self.rows, self._index = None, 0, {}
        self.version += 1

    def row_segments(self, device) -> torch.Tensor:
        """(rows,) the segment index of every row, on `device` (made once per routing)."""
        index = self._index.get(device)
        if index is None:
            sizes = torch.tensor([stop - start for start, stop, _ in self.segments])
            index = torch.repeat_interleave(torch.arange(len(sizes)), sizes).to(device)
            self._index[device] = index
        return index


class RoutedLoRALinear(torch.nn.Module):
    """A frozen Linear plus per-member LoRA factors: A (r_k, in), B (out, r_k), scale_k."""

    def __init__(self, base_layer: torch.nn.Linear, router: Router) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.router = router
        self.lora_A = torch.nn.ParameterDict()  # member index (str) -> (r_k, in)
        self.lora_B = torch.nn.ParameterDict()  # member index (str) -> (out, r_k)
        self.scaling: dict[int, float] = {}
        self._factors: dict[int, tuple[torch.nn.Parameter, torch.nn.Parameter]] = {}  # fast path
        self._plan: tuple[int, tuple | None] = (-1, None)  # (router version, batched plan)

    def add(self, member: int, a: torch.nn.Parameter, b: torch.nn.Parameter, scale: float) -> None:
        self.lora_A[str(member)], self.lora_B[str(member)] = a, b
        self.scaling[member] = scale
        self._factors[member] = (a, b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)  # (N, ..., out) for all rows at once
        segments = self.router.segments
        if not segments:
            return y
        if x.shape[0] != self.router.rows:
            raise ValueError(f"routed rows: {self.router.rows}, batch: {x.shape[0]}")
        if len(segments) > 1:
            delta = self._batched(x, segments)
            if delta is not None:
                return y + delta.reshape(y.shape)
        # one split and one cat per layer (not a slice per member: a slice's backward writes a
        # zero-filled gradient of the whole batch, K times per layer)
        chunks = x.split([stop - start for start, stop, _ in segments]) if len(segments) > 1 else (x,)
        deltas = []
        for xs, (_, _, k) in zip(chunks, segments, strict=True):
            key = str(k)
            if key not in self.lora_A:  # this member has no LoRA on this layer (targets)
                deltas.append(y.new_zeros((xs.shape[0], *y.shape[1:])))
                continue
            a, b = self.lora_A[key], self.lora_B[key]
            xs = xs.to(a.dtype)  # as peft: input cast to the LoRA dtype
            deltas.append(F.linear(F.linear(xs, a), b) * self.scaling[k])
        # y + Δ per element, as peft's `result + lora_B(lora_A(x)) * scaling`
        return y + (torch.cat(deltas) if len(deltas) > 1 else deltas[0])


    def _batched(self, x: torch.Tensor, segments) -> torch.Tensor | None:
        """Every row's ΔW x in two batched matmuls (each row gathers its member's factors),
        when every routed member has a LoRA of one rank and one scale on this layer; else None
        (the chunk loop). Per row the same products as the loop's, summed by another kernel:
        equal to rounding, so a group of one (a single segment) never takes this path."""
        version, plan = self._plan
        if version != self.router.version:  # once per routing (gradient checkpointing reuses it)
            plan = self._batch_plan(segments)
            self._plan = (self.router.version, plan)
        if plan is None:
            return None
        a_list, b_list, scale = plan
        index = self.router.row_segments(x.device)
        a = torch.stack(a_list)[index]  # (N, r, in)
        b = torch.stack(b_list)[index]  # (N, out, r)
        xs = x.to(a.dtype).reshape(x.shape[0], -1, x.shape[-1])  # (N, L, in), as peft's cast
        return torch.bmm(torch.bmm(xs, a.transpose(1, 2)), b.transpose(1, 2)) * scale

    def _batch_plan(self, segments) -> tuple | None:
        """(A per segment, B per segment, the common scale), or None when a routed member has
        no LoRA here or the members' ranks or scales differ."""
        factors, scales = [], set()
        for _, _, k in segments:
            pair = self._factors.get(k)
            if pair is None:
                return None
            factors.append(pair)
            scales.add(self.scaling[k])
        if len({a.shape for a, _ in factors}) > 1 or len(scales) > 1:
            return None
        return [a for a, _ in factors], [b for _, b in factors], scales.pop()


def route_peft_layers(unet: torch.nn.Module, names: Sequence[str], router: Router
                      ) -> dict[str, RoutedLoRALinear]:
    """Replace every peft LoRA layer of `unet` by a routed layer holding adapters `names`
    (member k = names[k]) with the same Parameters; returns {module path: routed layer}."""
    routed = {}
    for path, module in list(unet.named_modules()):
        if not isinstance(module, LoraLayer):
            continue
        if not isinstance(module.base_layer, torch.nn.Linear):
            raise TypeError(f"{path}: fused training routes Linear LoRA layers only")
        layer = RoutedLoRALinear(module.base_layer, router)
        for k, name in enumerate(names):
            if name in module.lora_A:
                a, b = module.lora_A[name].weight, module.lora_B[name].weight
                layer.add(k, a.requires_grad_(True), b.requires_grad_(True), module.scaling[name])
        parent_path, _, child = path.rpartition(".")
        setattr(unet.get_submodule(parent_path) if parent_path else unet, child, layer)
        routed[path] = layer
    unet.peft_config = {}  # no peft adapter is left on the UNet
    unet._hf_peft_config_loaded = False
    return routed


def member_parameters(layers: dict[str, RoutedLoRALinear], member: int) -> list[torch.nn.Parameter]:
    """Member's LoRA factors in module order (A then B per layer: the separate run's order)."""
    out = []
    for layer in layers.values():
        if str(member) in layer.lora_A:
            out += [layer.lora_A[str(member)], layer.lora_B[str(member)]]
    return out


def member_state_dict(layers: dict[str, RoutedLoRALinear], member: int) -> dict[str, torch.Tensor]:
    """Member's LoRA in diffusers' key format, fp32 on CPU: the keys `adapters.lora_state_dict`
    gives for the same adapter in a separate run."""
    from diffusers.utils import convert_state_dict_to_diffusers

    state = {}
    for path, layer in layers.items():
        if str(member) in layer.lora_A:
            state[f"{path}.lora_A.weight"] = layer.lora_A[str(member)]
            state[f"{path}.lora_B.weight"] = layer.lora_B[str(member)]
    return {k: v.detach().float().cpu().clone()  # own storage: the factors are views of a
            for k, v in convert_state_dict_to_diffusers(state).items()}  # flat buffer (multi_adamw)
