"""One optimizer step for every member of a fused group: clipping and AdamW over flat buffers.

A fused group of K members holds K `torch.optim.AdamW` optimizers of a few hundred small LoRA
tensors each (the world's: 272 tensors of 2,048–2,560 elements per member). torch's CPU AdamW
steps them one tensor at a time from Python (`_single_tensor_adam`: ~7 ops per tensor), and
`get_total_norm` takes one Python call per tensor's norm; at K = 10 that was ~23 % of a world
step. Here each member's LoRA parameters, gradients and Adam moments live in one flat buffer
per member (the parameters, their `.grad` and the optimizer's state entries are views into it),
and one step is a handful of `torch._foreach_*` calls over all members' buffers, each member
with its own lr (its schedule), clipping factor and step count.

Exactness: the arithmetic per element is that of torch's single-tensor AdamW (lerp, mul,
addcmul, sqrt, div, add, addcdiv with the same Python-float bias corrections) and of
`get_total_norm` / `clip_grads_with_norm_` (per-tensor norms of the same tensors — on the CPU
one row-wise norm per size class of the buffer, the kernel `_foreach_norm` runs per tensor —
the norm of their norms, one clamped factor), so a group of one is bit-identical to the separate `Trainer`
on the CPU. That holds because an elementwise kernel's result does not depend on where an element
sits in its buffer as long as no element falls into a kernel's scalar tail: every flattened
tensor's size must be a multiple of `ALIGN` elements (else the group is left as it is and steps
through its own optimizer). Tested against torch's AdamW in tests/unit/test_multi_adamw.py.

The optimizers stay ordinary `torch.optim.AdamW` objects (param groups, lr schedulers and
`state_dict` in torch's format); only their `step` is replaced by `MultiAdamW.step`. Their
`zero_grad` must not be called (it would detach the gradient views): `MultiAdamW.zero_grad`
zeroes the buffers. After `optimizer.load_state_dict`, call `MultiAdamW.adopt` to move the
loaded moments into the buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ALIGN = 64  # elements: a multiple of every CPU vector loop's stride (2 × 16 fp32 lanes)


@dataclass
class _Flat:
    """One param group's parameters as views of one buffer (and their grads, moments). The
    buffer holds them sorted by size (`layout`), so that the gradients of each size class form
    one (count, size) block whose row norms are the per-tensor norms in one call."""

    params: list[torch.nn.Parameter]  # the group's order
    layout: list[torch.nn.Parameter]  # the buffer's order
    param: torch.Tensor  # (n,) the parameters' storage
    grad: torch.Tensor  # (n,) their gradients' storage (each p.grad a view)
    grads: list[torch.Tensor]  # the per-parameter grad views, group order
    runs: list[tuple[int, int, int]]  # (offset, count, size) per size class, buffer order
    order: torch.Tensor  # (len(params),) each parameter's position in the buffer
    exp_avg: torch.Tensor | None = None
    exp_avg_sq: torch.Tensor | None = None
    step: torch.Tensor | None = None  # one 0-d step count shared by every parameter's state

    def row_norms(self) -> torch.Tensor:
        """(len(params),) the 2-norm of every parameter's gradient, group order: per size class
        one `vector_norm(dim=1)`, the CPU kernel that reduces each row as it reduces a whole
        contiguous tensor (what `torch._foreach_norm` runs per tensor on the CPU)."""
        parts = [torch.linalg.vector_norm(self.grad[o:o + c * n].view(c, n), 2, dim=1)
                 for o, c, n in self.runs]
        return torch.cat(parts)[self.order]


def _views(flat: torch.Tensor, params) -> list[torch.Tensor]:
    out, start = [], 0
    for p in params:
        out.append(flat[start:start + p.numel()].view(p.shape))
        start += p.numel()
    return out


def _flatten(params: list[torch.nn.Parameter]) -> _Flat | None:
    """Make `params` views of one buffer with persistent gradient views; None when they cannot
    be flattened exactly (mixed dtype/device, a size off `ALIGN`, non-contiguous)."""
    if not params or len({(p.dtype, p.device) for p in params}) > 1 or any(
            p.numel() % ALIGN or not p.is_contiguous() or p.grad is not None for p in params):
        return None
    rank = sorted(range(len(params)), key=lambda i: params[i].numel())  # stable
    layout = [params[i] for i in rank]
    with torch.no_grad():
        param = torch.cat([p.detach().reshape(-1) for p in layout])
    grad = torch.zeros_like(param)
    for p, view in zip(layout, _views(param, layout), strict=True):
        p.data = view
    for p, view in zip(layout, _views(grad, layout), strict=True):
        p.grad = view
    runs, start = [], 0
    for p in layout:
        if runs and runs[-1][2] == p.numel():
            o, c, n = runs[-1]
            runs[-1] = (o, c + 1, n)
        else:
            runs.append((start, 1, p.numel()))
        start += p.numel()
    order = torch.empty(len(params), dtype=torch.long)
    order[torch.tensor(rank)] = torch.arange(len(params))
    return _Flat(params, layout, param, grad, [p.grad for p in params], runs,
                 order.to(param.device))


class MultiAdamW:
    """Clip-and-step for several AdamW optimizers at once (see the module docstring)."""

    def __init__(self, optimizers: list[torch.optim.AdamW]) -> None:
        self.flat: dict[tuple[int, int], _Flat] = {}  # (optimizer, group index) -> buffers
        self.optimizers = list(optimizers)
        for o, opt in enumerate(self.optimizers):
            if not self._supported(opt):
                continue
            for g, group in enumerate(opt.param_groups):
                flat = _flatten(group["params"]) if len(group["params"]) > 8 else None
                if flat is not None:
                    self.flat[(o, g)] = flat

    @staticmethod
    def _supported(opt) -> bool:
        return type(opt) is torch.optim.AdamW and all(
            not (g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"]
                 or g["fused"] or torch.is_tensor(g["lr"])) for g in opt.param_groups)

    def zero_grad(self, which=None) -> None:
        """Zero the flat gradients (and drop the other parameters' grads) of optimizers `which`
        (indices; all by default). A gradient view that was replaced is put back."""
        for o in range(len(self.optimizers)) if which is None else which:
            for g, group in enumerate(self.optimizers[o].param_groups):
                flat = self.flat.get((o, g))
                if flat is None:
                    for p in group["params"]:
                        p.grad = None
                    continue
                flat.grad.zero_()
                if flat.params[0].grad is not flat.grads[0] or flat.params[-1].grad is not flat.grads[-1]:
                    for p, view in zip(flat.params, flat.grads, strict=True):
                        p.grad = view

    # --- clipping ------------------------------------------------------------------------

    def clip(self, which: list[int], max_norms: list[float], extra: list[list[torch.Tensor]],
             norm_groups: tuple[int, ...] = (0,)) -> list[torch.Tensor]:
        """Per optimizer in `which`: the total 2-norm of the gradients of its param groups
        `norm_groups` followed by the tensors `extra[i]` (as `torch.nn.utils.get_total_norm` of
        that list), then every group's gradients scaled by min(1, max_norm / (norm + 1e-6))
        (`clip_grads_with_norm_`). Returns the norms before clipping."""
        plans = [self._norm_parts(o, norm_groups, more)
                 for o, more in zip(which, extra, strict=True)]
        each = [t for parts in plans if parts for part in parts if isinstance(part, list)
                for t in part]
        normed = iter(torch._foreach_norm(each, 2) if each else [])
        totals = []
        for o, more, parts in zip(which, extra, plans, strict=True):
            if parts is None:  # mixed dtypes or devices: torch's grouping and order
                totals.append(torch.nn.utils.get_total_norm(self._grads(o, norm_groups) + list(more)))
                continue
            pieces = []  # the per-tensor norms, in get_total_norm's order
            for part in parts:
                if isinstance(part, _Flat):
                    pieces.append(part.row_norms())
                elif part:
                    pieces.append(torch.stack([next(normed) for _ in part]))
            totals.append(torch.linalg.vector_norm(torch.cat(pieces), 2) if pieces
                          else torch.tensor(0.0))
        for o, max_norm, total in zip(which, max_norms, totals, strict=True):
            clamped = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            grads = self._step_grads(o)
            by_kind: dict = {}
            for t in grads:
                by_kind.setdefault((t.device, t.dtype), []).append(t)
            for (device, _), ts in by_kind.items():
                torch._foreach_mul_(ts, clamped.to(device))
        return totals

    def _norm_parts(self, o: int, groups: tuple[int, ...], more) -> list | None:
        """Optimizer o's norm list in parts: a `_Flat` (its row norms, on the CPU) or a list
        of tensors to norm one by one; None when it mixes dtypes or devices."""
        parts, kinds = [], set()
        for g, group in enumerate(self.optimizers[o].param_groups):
            if g not in groups:
                continue
            flat = self.flat.get((o, g))
            if flat is not None:
                kinds.add((flat.grad.dtype, flat.grad.device))
                parts.append(flat if flat.grad.device.type == "cpu" else list(flat.grads))
            else:
                ts = [p.grad for p in group["params"] if p.grad is not None]
                kinds.update((t.dtype, t.device) for t in ts)
                parts.append(ts)
        kinds.update((t.dtype, t.device) for t in more)
        parts.append(list(more))
        return parts if len(kinds) <= 1 else None

    def _grads(self, o: int, groups: tuple[int, ...]) -> list[torch.Tensor]:
        """Gradients of optimizer o's param groups `groups`, per tensor (views when flat)."""
        out = []
        for g, group in enumerate(self.optimizers[o].param_groups):
            if g not in groups:
                continue
            flat = self.flat.get((o, g))
            out += flat.grads if flat is not None else [p.grad for p in group["params"]
                                                        if p.grad is not None]
        return out

    def _step_grads(self, o: int) -> list[torch.Tensor]:
        """The same gradients as `_grads`, flat groups as one buffer (one op to scale)."""
        out = []
        for g, group in enumerate(self.optimizers[o].param_groups):
            flat = self.flat.get((o, g))
            out += [flat.grad] if flat is not None else [p.grad for p in group["params"]
                                                         if p.grad is not None]
        return out

    # --- AdamW -----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, which: list[int]) -> None:
        """One AdamW step of optimizers `which`, as each one's `step()` would take it."""
        buckets: dict[tuple, dict[str, list]] = {}
        for o in which:
            opt = self.optimizers[o]
            if not self._supported(opt):
                opt.step()
                continue
            opt._opt_called = True  # as torch's step wrapper marks it (lr scheduler order check)
            for g, group in enumerate(opt.param_groups):
                beta1, beta2 = group["betas"]
                key = (beta1, beta2, group["eps"])
                b = buckets.setdefault(key, {k: [] for k in ("p", "g", "m", "v", "step", "lr",
                                                              "wd")})
                flat = self.flat.get((o, g))
                if flat is not None:
                    self._init_flat(opt, flat)
                    entries = [(flat.param, flat.grad, flat.exp_avg, flat.exp_avg_sq, flat.step)]
                else:
                    entries = []
                    for p in group["params"]:
                        if p.grad is None:
                            continue
                        state = opt.state[p]
                        if len(state) == 0:  # torch's lazy initialisation
                            state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
                            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                        entries.append((p, p.grad, state["exp_avg"], state["exp_avg_sq"],
                                        state["step"]))
                for p, grad, m, v, step in entries:
                    b["p"].append(p)
                    b["g"].append(grad)
                    b["m"].append(m)
                    b["v"].append(v)
                    b["step"].append(step)
                    b["lr"].append(group["lr"])
                    b["wd"].append(group["weight_decay"])
        for (beta1, beta2, eps), b in buckets.items():
            if not b["p"]:
                continue
            _adamw(b, beta1, beta2, eps)

    def _init_flat(self, opt, flat: _Flat) -> None:
        if flat.exp_avg is not None:
            return
        flat.exp_avg, flat.exp_avg_sq = torch.zeros_like(flat.param), torch.zeros_like(flat.param)
        flat.step = torch.tensor(0.0, dtype=_scalar_dtype())
        self._point(opt, flat)

    @staticmethod
    def _point(opt, flat: _Flat) -> None:
        """The optimizer's state entries as views of the flat moments (torch's state format)."""
        for p, m, v in zip(flat.layout, _views(flat.exp_avg, flat.layout),
                           _views(flat.exp_avg_sq, flat.layout), strict=True):
            opt.state[p] = {"step": flat.step, "exp_avg": m, "exp_avg_sq": v}

    @torch.no_grad()
    def adopt(self, o: int) -> None:
        """After optimizer o's `load_state_dict`: copy its loaded moments into the buffers."""
        opt = self.optimizers[o]
        for g, _ in enumerate(opt.param_groups):
            flat = self.flat.get((o, g))
            if flat is None:
                continue
            states = [opt.state.get(p, {}) for p in flat.layout]
            if not any(states):
                flat.exp_avg = flat.exp_avg_sq = flat.step = None  # not stepped yet
                continue
            steps = {float(s["step"]) for s in states}
            if len(steps) != 1 or not all(states):
                raise ValueError("a flattened parameter group's state must have every parameter "
                                 f"at one step; got steps {sorted(steps)}")
            flat.exp_avg = torch.cat([s["exp_avg"].reshape(-1) for s in states]).to(flat.param)
            flat.exp_avg_sq = torch.cat([s["exp_avg_sq"].reshape(-1) for s in states]).to(flat.param)
            flat.step = torch.tensor(steps.pop(), dtype=_scalar_dtype())
            self._point(opt, flat)


def _scalar_dtype():
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _adamw(b: dict[str, list], beta1: float, beta2: float, eps: float) -> None:
    """torch's `_single_tensor_adam` (decoupled weight decay, no amsgrad), for lists."""
    steps = list({id(s): s for s in b["step"]}.values())  # a shared flat step counts once
    torch._foreach_add_(steps, 1)
    values = dict(zip((id(s) for s in steps), torch.stack(steps).tolist(), strict=True))
    step_sizes, bc2_sqrts = [], []
    for s, lr in zip(b["step"], b["lr"], strict=True):
        step = values[id(s)]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_sizes.append(-(lr / bias_correction1))
        bc2_sqrts.append(bias_correction2**0.5)
    decay = [(p, 1 - lr * wd) for p, lr, wd in zip(b["p"], b["lr"], b["wd"], strict=True) if wd != 0]
    if decay:
        torch._foreach_mul_([p for p, _ in decay], [f for _, f in decay])
    torch._foreach_lerp_(b["m"], b["g"], 1 - beta1)
    torch._foreach_mul_(b["v"], beta2)
    torch._foreach_addcmul_(b["v"], b["g"], b["g"], 1 - beta2)
    denom = torch._foreach_sqrt(b["v"])
    torch._foreach_div_(denom, bc2_sqrts)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(b["p"], b["m"], denom, step_sizes)
