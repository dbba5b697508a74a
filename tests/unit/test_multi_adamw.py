"""MultiAdamW (fused training's one clip-and-step for all members) equals torch, bit for bit.

The reference is what a separate run does per member: `get_total_norm` of its LoRA gradients
plus extra tensors (the embedding matrices' gradients), `clip_grads_with_norm_`, then
torch's AdamW `step()` and a LambdaLR schedule. Same elementwise arithmetic, so equality is
exact (torch.equal), not a tolerance.
"""

import io

import pytest
import torch

from dcobench.train.multi_adamw import MultiAdamW

LORA = [(64, 32), (32, 80), (32, 64)] * 4  # the world's LoRA factor shapes (multiples of 64)
TOKENS = [(1, 32), (1, 48)]  # learned rows: not flattened (48 is off the vector stride)


def _member(seed, lr, ti_lr, wd=0.0, lora=LORA):
    g = torch.Generator().manual_seed(seed)
    lora = [torch.nn.Parameter(torch.randn(s, generator=g) * 0.1) for s in lora]
    rows = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in TOKENS]
    opt = torch.optim.AdamW([{"params": lora, "lr": lr},
                             {"params": rows, "lr": ti_lr, "weight_decay": 0.0}], weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3))
    return lora, rows, opt, sched


def _grads(step, k, lora):
    g = torch.Generator().manual_seed(1000 * step + k)
    scale = 10.0 ** (k - 1)  # members far apart: one clips hard, one not at all
    return ([torch.randn(p.shape, generator=g) * scale for p in lora],
            [torch.randn(s, generator=g) * scale for s in TOKENS],
            [torch.randn(7, s[1], generator=g) * scale for s in TOKENS])  # "matrix" rows


SPECS = [dict(seed=0, lr=1e-2, ti_lr=5e-3), dict(seed=1, lr=3e-3, ti_lr=1e-2, wd=0.01),
         dict(seed=2, lr=1e-3, ti_lr=1e-3)]
MAX_NORM = 1.0


def _reference(steps, specs=SPECS):
    members = [_member(**s) for s in specs]
    for step in range(steps):
        for k, (lora, rows, opt, sched) in enumerate(members):
            gl, gr, gm = _grads(step, k, lora)
            for p, g in zip(lora + rows, gl + gr, strict=True):
                p.grad = g
            total = torch.nn.utils.get_total_norm([p.grad for p in lora] + gm)
            torch.nn.utils.clip_grads_with_norm_(lora + rows, MAX_NORM, total)
            opt.step()
            sched.step()
    return members


def _ours_steps(members, multi, steps, start=0):
    for step in range(start, start + steps):
        multi.zero_grad()
        extra = []
        for k, (lora, rows, _, _) in enumerate(members):
            gl, gr, gm = _grads(step, k, lora)
            for p, g in zip(lora, gl, strict=True):  # as autograd: into the zeroed flat
                if p.grad is None:  # gradient's views, or a fresh tensor when not flattened
                    p.grad = g
                else:
                    p.grad += g
            for p, g in zip(rows, gr, strict=True):
                p.grad = g
            extra.append(gm)
        which = list(range(len(members)))
        norms = multi.clip(which, [MAX_NORM] * len(members), extra)
        multi.step(which)
        for _, _, _, sched in members:
            sched.step()
    return norms


def _ours(steps, specs=SPECS):
    members = [_member(**s) for s in specs]
    multi = MultiAdamW([m[2] for m in members])
    _ours_steps(members, multi, steps)
    return members, multi


def _assert_equal(ours, theirs):
    for (l1, r1, o1, _), (l2, r2, o2, _) in zip(ours, theirs, strict=True):
        for a, b in zip(l1 + r1, l2 + r2, strict=True):
            assert torch.equal(a, b)
        s1, s2 = o1.state_dict()["state"], o2.state_dict()["state"]
        assert s1.keys() == s2.keys()
        for i in s1:
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(s1[i][key], s2[i][key]), (i, key)


def test_equals_torch_adamw_with_clipping_per_member():
    ours, multi = _ours(6)
    assert set(multi.flat) == {(0, 0), (1, 0), (2, 0)}  # every LoRA group flat, token rows not
    _assert_equal(ours, _reference(6))


def test_norms_are_get_total_norm_before_clipping():
    members = [_member(**s) for s in SPECS]
    multi = MultiAdamW([m[2] for m in members])
    norms = _ours_steps(members, multi, 1)
    for k, (lora, _, _, _) in enumerate(members):
        gl, _, gm = _grads(0, k, lora)
        assert torch.equal(norms[k], torch.nn.utils.get_total_norm(gl + gm))


def test_a_group_off_the_vector_stride_is_not_flattened_and_still_exact():
    specs = [dict(SPECS[0], lora=[(3, 5)] * 10), SPECS[1]]
    ours, multi = _ours(4, specs)
    assert set(multi.flat) == {(1, 0)}
    _assert_equal(ours, _reference(4, specs))


def test_resume_from_a_state_dict_continues_exactly():
    members, multi = _ours(3)
    saved = []
    for lora, rows, opt, sched in members:
        buf = io.BytesIO()
        torch.save({"p": [p.detach().clone() for p in lora + rows], "opt": opt.state_dict(),
                    "sched": sched.state_dict()}, buf)
        saved.append(buf.getvalue())
    fresh = [_member(**s) for s in SPECS]
    multi2 = MultiAdamW([m[2] for m in fresh])
    for (lora, rows, opt, sched), blob in zip(fresh, saved, strict=True):
        state = torch.load(io.BytesIO(blob), weights_only=True)
        with torch.no_grad():
            for p, v in zip(lora + rows, state["p"], strict=True):
                p.copy_(v)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
    for o in range(len(fresh)):
        multi2.adopt(o)
    _ours_steps(fresh, multi2, 3, start=3)
    _assert_equal(fresh, _reference(6))


def test_zero_grad_restores_a_replaced_gradient_view():
    members = [_member(**SPECS[0])]
    multi = MultiAdamW([members[0][2]])
    members[0][2].zero_grad(set_to_none=True)  # what a caller must not do; repaired
    multi.zero_grad()
    lora = members[0][0]
    assert lora[0].grad is not None and lora[0].grad.data_ptr() == multi.flat[(0, 0)].grad.data_ptr()


def test_unsupported_optimizers_step_themselves():
    p = torch.nn.Parameter(torch.ones(64))
    opt = torch.optim.AdamW([p], lr=0.1, amsgrad=True)
    multi = MultiAdamW([opt])
    assert multi.flat == {}
    p.grad = torch.ones(64)
    multi.step([0])
    assert p.detach().lt(1).all()


@pytest.mark.parametrize("bad", [dict(steps=[1, 2])])
def test_adopt_refuses_parameters_at_different_steps(bad):
    lora, rows, opt, _ = _member(**SPECS[0])
    multi = MultiAdamW([opt])
    state = opt.state_dict()
    state["state"] = {i: {"step": torch.tensor(float(bad["steps"][i % 2])),
                          "exp_avg": torch.zeros(p.shape), "exp_avg_sq": torch.zeros(p.shape)}
                      for i, p in enumerate(lora)}
    opt.load_state_dict(state)
    with pytest.raises(ValueError, match="one step"):
        multi.adopt(0)
