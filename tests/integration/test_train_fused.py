"""Fused training (dcobench.train.group): K trainings in one process equal their separate runs.

Tolerances follow from the computation. A group of one member runs the very operations of a
separate run on the same batch (its clip-and-step through multi_adamw is torch's AdamW
arithmetic), so it is bit-exact. With K members the frozen matmuls and convolutions run on a
batch of all members' rows, the LoRA deltas of all rows are two batched matmuls (routed_lora),
and DCO reference rows may be shared, which reassociates fp32 sums: on the tiny SDXL the first step's gradients agree to ~1e-5 of their norm
(bound: 1e-4). AdamW then maps each gradient element to about lr·sign(g) when |g| ≫ eps, so an
element whose gradient sits at fp32 rounding level can move by ~lr differently: after 3 steps at
lr 1e-2 the saved weights agree to ~1e-3 of their norm (bound: 1e-2 per tensor), learned token
rows (renormalised each step) to ~3e-5 (bound: 1e-3).
"""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from dcobench.models.adapters import LORA_WEIGHT_NAME
from dcobench.models.text import EMBEDS_NAME
from dcobench.signals import EXIT_INTERRUPTED
from dcobench.train import resume
from dcobench.train.fused import FusedTrainer
from dcobench.train.group import GroupFailed, train_group
from dcobench.train.options import TrainOptions
from dcobench.train.trainer import Trainer, train

COMMON = dict(rank=4, lr=1e-2, ti_lr=1e-2, resolution=64, mixed_precision="fp32", steps=3)
SUBJECT = {"db": dict(objective="db"), "dbpp": dict(objective="db", prior=True),
           "dco": dict(objective="dco"), "dco_b05": dict(objective="dco", beta=0.5)}
STYLE = {"db": dict(objective="db"), "dco": dict(objective="dco")}
STYLE_OPTS = dict(textual_inversion=False, offset_noise=0.1)


@pytest.fixture(scope="module")
def prior_dir(model_cache, tmp_path_factory):
    from dcobench.train.priors import PriorOptions, generate_priors

    return generate_priors(PriorOptions(class_noun="robot", out_dir=tmp_path_factory.mktemp("p"),
                                        count=2, steps=2, resolution=64, batch_size=2))


def _opts(root, concept, out, spec, prior=None, **extra):
    spec = dict(spec)
    has_prior = spec.pop("prior", False)
    return TrainOptions(concept_dir=root / concept, out_dir=out, prior_dir=prior if has_prior else None,
                        **{**COMMON, **extra, **spec})


def _files(out):
    return {name: load_file(str(out / name)) for name in (LORA_WEIGHT_NAME, EMBEDS_NAME)
            if (out / name).exists()}


def _rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _first_step_grads_separate(opts):
    torch.manual_seed(0)
    trainer = Trainer(opts)
    seen = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: (seen.extend(
        p.grad.clone() for g in trainer.optimizer.param_groups for p in g["params"]), step(*a, **k))
    trainer.step()
    return seen


def _first_step_grads_fused(options):
    fused = FusedTrainer(options)
    seen = {}
    step = fused.adam.step  # one AdamW step for every member (multi_adamw)

    def spy(which):
        for k in which:
            seen[k] = [p.grad.clone() for g in fused.members[k].optimizer.param_groups
                       for p in g["params"]]
        step(which)

    fused.adam.step = spy
    fused.step()
    return [seen[m.index] for m in fused.members]


def _same_log_but_time(sep, fused):
    """The two train_log.csv have the same columns and every value but the wall time; the
    operating point (t, 1 − σ, β·T·d, grad_norm, clipped) is filled in."""
    import pandas as pd

    ours, theirs = (pd.read_csv(p / "train_log.csv") for p in (fused, sep))
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours.drop(columns="time"), theirs.drop(columns="time"),
                                  check_exact=True)
    for column in ("t", "grad_norm", "clipped", "one_minus_sigma", "beta_T_d"):
        assert ours[column].notna().all(), column
    return ours


def test_group_of_one_is_bit_exact_with_the_separate_run(model_cache, demo_root, tmp_path):
    """Same batch, same ops: routing, token-id swap, per-member clipping norm (LoRA + the
    embedding rows its prompt used) and the saved files reproduce the separate run exactly."""
    opts = dict(SUBJECT["dco"], max_grad_norm=1e-2)  # small enough to clip: the norm matters
    sep = train(_opts(demo_root, "toy_robot", tmp_path / "sep", opts))
    (fused,) = train_group([_opts(demo_root, "toy_robot", tmp_path / "fus", opts)])
    ours, theirs = _files(fused), _files(sep)
    assert ours.keys() == theirs.keys() == {LORA_WEIGHT_NAME, EMBEDS_NAME}
    for name in ours:
        assert ours[name].keys() == theirs[name].keys()
        for key in ours[name]:
            assert torch.equal(ours[name][key], theirs[name][key]), (name, key)
    _same_log_but_time(sep, fused)
    assert json.loads((fused / "manifest.json").read_text())["lora_config"] == \
        json.loads((sep / "manifest.json").read_text())["lora_config"]
    assert _same_log_but_time(sep, fused)["clipped"].iloc[0] == 1  # the first step clips


def test_a_frozen_token_member_is_its_separate_run(model_cache, demo_root, tmp_path):
    """ti_lr 0: a group of one equals the separate run bit for bit (files and log); beside a
    member that trains the token (listed first: it owns the tokenizer's row, which the frozen
    member's cached captions were encoded with), the frozen token is saved at its init."""
    frozen = dict(SUBJECT["dco"], ti_lr=0.0)
    sep = train(_opts(demo_root, "toy_robot", tmp_path / "sep", frozen))
    (fused,) = train_group([_opts(demo_root, "toy_robot", tmp_path / "fus", frozen)])
    ours, theirs = _files(fused), _files(sep)
    assert ours.keys() == theirs.keys() == {LORA_WEIGHT_NAME, EMBEDS_NAME}
    for name in theirs:
        for key in theirs[name]:
            assert torch.equal(ours[name][key], theirs[name][key]), (name, key)
    _same_log_but_time(sep, fused)
    init = FusedTrainer([_opts(demo_root, "toy_robot", tmp_path / "x", frozen)]).members[0]
    init_rows = {key: w[i].detach().clone() for key, w, i in
                 zip(("clip_l", "clip_g"), init.tokens.tables(init.group.pipe), init.tokens.ids,
                     strict=True)}
    trained, still = train_group([_opts(demo_root, "toy_robot", tmp_path / "t", SUBJECT["db"]),
                                  _opts(demo_root, "toy_robot", tmp_path / "f", frozen)])
    for key, row in init_rows.items():
        assert torch.equal(_files(still)[EMBEDS_NAME][key][0], row)
        assert not torch.equal(_files(trained)[EMBEDS_NAME][key][0], row)


@pytest.mark.slow
@pytest.mark.parametrize("concept,specs,extra", [("toy_robot", SUBJECT, {}),
                                                 ("mosaic_style", STYLE, STYLE_OPTS)])
def test_group_equals_separate_runs(model_cache, demo_root, prior_dir, tmp_path, concept, specs,
                                    extra):
    """DB, DB + p.p., DCO at β 1 and 0.5 (subject, learned token) and a style (no token)."""
    build = [(v, lambda out, s=s: _opts(demo_root, concept, out, s, prior_dir, **extra))
             for v, s in specs.items()]
    fused_grads = _first_step_grads_fused([make(tmp_path / "g" / v) for v, make in build])
    for (v, make), ours in zip(build, fused_grads, strict=True):
        theirs = _first_step_grads_separate(make(tmp_path / "g1" / v))
        worst = max(_rel(a, b) for a, b in zip(ours, theirs, strict=True) if b.norm() > 0)
        assert worst < 1e-4, (v, worst)  # measured ≤ 1e-5
    outs = train_group([make(tmp_path / "fused" / v) for v, make in build])
    for (v, make), out in zip(build, outs, strict=True):
        sep = train(make(tmp_path / "sep" / v))
        ours, theirs = _files(out), _files(sep)
        assert ours.keys() == theirs.keys()
        assert (EMBEDS_NAME in ours) == (concept == "toy_robot")
        for name, bound in ((LORA_WEIGHT_NAME, 1e-2), (EMBEDS_NAME, 1e-3)):
            for key in theirs.get(name, {}):
                assert _rel(ours[name][key], theirs[name][key]) < bound, (v, name, key)
        log = (out / "train_log.csv").read_text().splitlines()
        assert log[0] == (sep / "train_log.csv").read_text().splitlines()[0] and len(log) == 4


def test_dco_members_with_one_seed_share_their_reference_rows(model_cache, demo_root, tmp_path):
    fused = FusedTrainer([_opts(demo_root, "toy_robot", tmp_path / v, SUBJECT[v])
                          for v in ("dco", "dco_b05", "db")])
    calls = []
    unet = fused._unet
    fused._unet = lambda x_t, *a: (calls.append((x_t.shape[0], torch.is_grad_enabled())),
                                   unet(x_t, *a))[1]
    fused.step()
    assert calls == [(1, False), (3, True)]  # one reference row for both βs, 3 θ rows


def test_a_non_finite_member_stops_alone(model_cache, demo_root, tmp_path):
    bad = _opts(demo_root, "toy_robot", tmp_path / "bad", dict(objective="db", lr=1e30))
    good = _opts(demo_root, "toy_robot", tmp_path / "good", SUBJECT["dco"], steps=4)
    with pytest.raises(GroupFailed, match=r"1 of 2 .*non-finite loss .*bad"):
        train_group([bad, good])
    assert not (tmp_path / "bad" / LORA_WEIGHT_NAME).exists()
    assert not (tmp_path / "bad" / "manifest.json").exists()
    assert (tmp_path / "good" / "manifest.json").exists()
    assert len((tmp_path / "good" / "train_log.csv").read_text().splitlines()) == 5


def test_members_must_share_the_pipeline(demo_root, tmp_path):
    a = _opts(demo_root, "toy_robot", tmp_path / "a", SUBJECT["db"])
    b = _opts(demo_root, "toy_robot", tmp_path / "b", SUBJECT["db"], resolution=32)
    with pytest.raises(ValueError, match="must share resolution"):
        train_group([a, b])
    with pytest.raises(ValueError, match="distinct out_dir"):
        train_group([a, a])


def _wait_for_states(works, after_step, proc, timeout=180):
    import time

    start = time.time()
    while time.time() - start < timeout:
        steps = []
        for work in works:
            try:
                steps.append(torch.load(work / resume.STATE_FILE, weights_only=True)["step"])
            except Exception:  # noqa: BLE001 - absent or being replaced
                steps.append(-1)
        if min(steps) > after_step:
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited early with {proc.returncode}")
        time.sleep(0.02)
    pytest.fail("no resume states were written")


@pytest.mark.slow
def test_sigterm_then_rerun_equals_the_uninterrupted_group(model_cache, demo_root, prior_dir,
                                                           tmp_path):
    steps = 24
    specs = {"db": SUBJECT["db"], "dbpp": SUBJECT["dbpp"], "dco": dict(SUBJECT["dco"], steps=18)}
    common = dict(resume_every=3, steps=steps, checkpoints=(6,))
    reference = train_group([_opts(demo_root, "toy_robot", tmp_path / "ref" / v, s, prior_dir,
                                   **common) for v, s in specs.items()])
    members = []
    for v, s in specs.items():
        o = {**COMMON, **common, **{k: x for k, x in s.items() if k not in ("objective", "prior")}}
        o["checkpoints"] = list(o["checkpoints"])
        members.append({"objective": s["objective"], "out": str(tmp_path / "run" / v),
                        "prior": str(prior_dir) if s.get("prior") else None, "options": o})
    cmd = [sys.executable, "-m", "dcobench", "train", "--concept", str(demo_root / "toy_robot"),
           "--members", json.dumps(members)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    works = [resume.resume_dir(tmp_path / "run" / v) for v in specs]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_states(works, 3, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == EXIT_INTERRUPTED, err.decode()[-2000:]
    assert not (tmp_path / "run" / "db" / LORA_WEIGHT_NAME).exists()
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"resuming" in done.stderr
    for v, ref in zip(specs, reference, strict=True):
        out = tmp_path / "run" / v
        assert not resume.resume_dir(out).exists()
        for name in (LORA_WEIGHT_NAME, EMBEDS_NAME, f"checkpoints/step-6/{LORA_WEIGHT_NAME}"):
            ours, theirs = load_file(str(out / name)), load_file(str(ref / name))
            assert ours.keys() == theirs.keys()
            assert all(torch.equal(ours[k], theirs[k]) for k in ours), (v, name)
        rows = (out / "train_log.csv").read_text().splitlines()
        assert len(rows) == specs[v].get("steps", steps) + 1


def test_bf16_group_of_one_is_bit_exact_with_the_separate_trainer(model_cache, demo_root, tmp_path):
    """bf16 autocast: frozen weights bf16, LoRA and token rows fp32 masters, as `Trainer`."""
    opts = _opts(demo_root, "toy_robot", tmp_path / "m", SUBJECT["dco"], mixed_precision="bf16")
    trainer, fused = Trainer(opts), FusedTrainer([opts])
    for _ in range(2):
        trainer.step()
        fused.step()
    (member,) = fused.members
    assert (0, 0) in fused.adam.flat  # the LoRA group went through the flat clip-and-step
    assert all(p.dtype == torch.float32 for p in member.lora + member.token_rows)
    for a, b in zip(trainer.lora_parameters() + trainer.token_rows,
                    member.lora + member.token_rows, strict=True):
        assert torch.equal(a, b)


def test_gradient_checkpointing_keeps_each_rows_route(model_cache, demo_root, tmp_path):
    """Recomputed forwards in backward still see the step's routing (not the reference pass's)."""
    weights = []
    for checkpointing in (False, True):
        fused = FusedTrainer([_opts(demo_root, "toy_robot", tmp_path / v, SUBJECT[v],
                                    gradient_checkpointing=checkpointing) for v in ("db", "dco")])
        for _ in range(2):
            fused.step()
        weights.append([p.detach().clone() for m in fused.members for p in m.lora + m.token_rows])
    for a, b in zip(*weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)  # same ops; measured: identical


@pytest.mark.slow
def test_members_with_their_own_rank_and_targets(model_cache, demo_root, tmp_path):
    """A routed layer holds only the members that target it, each at its own rank."""
    specs = {"q": dict(objective="db", rank=2, targets=("to_q",)), "all": dict(objective="dco")}
    outs = train_group([_opts(demo_root, "toy_robot", tmp_path / "f" / v, s) for v, s in specs.items()])
    for (v, s), out in zip(specs.items(), outs, strict=True):
        theirs = _files(train(_opts(demo_root, "toy_robot", tmp_path / "s" / v, s)))
        ours = _files(out)
        assert ours[LORA_WEIGHT_NAME].keys() == theirs[LORA_WEIGHT_NAME].keys()
        for key, value in theirs[LORA_WEIGHT_NAME].items():
            assert ours[LORA_WEIGHT_NAME][key].shape == value.shape
            assert _rel(ours[LORA_WEIGHT_NAME][key], value) < 1e-2, (v, key)  # as above
    assert all(".to_q." in k for k in _files(outs[0])[LORA_WEIGHT_NAME])
