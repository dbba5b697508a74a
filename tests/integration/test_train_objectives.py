"""Training objectives on the real tiny SDXL UNet: ΔW = 0 identities, precision, checkpointing."""

import math

import pytest
import torch

from dcobench.models import text
from dcobench.train import losses
from dcobench.train.options import TrainOptions
from dcobench.train.trainer import Trainer


def _opts(demo_root, tmp_path, **kw):
    base = dict(concept_dir=demo_root / "toy_robot", out_dir=tmp_path / "run", objective="dco",
                steps=4, rank=4, lr=1e-2, ti_lr=1e-2, resolution=64, mixed_precision="fp32")
    return TrainOptions(**{**base, **kw})


def _lora_grads(trainer):
    return [p.grad.detach().clone() for p in trainer.lora_parameters()]


def test_dco_is_log2_and_its_gradient_is_beta_T_over_2_times_db_at_zero_delta(
        model_cache, demo_root, tmp_path):
    """Fresh LoRA (B = 0) and no learned token: ε_θ = ε_φ exactly on the same x_t, t, ε."""
    torch.manual_seed(0)
    trainer = Trainer(_opts(demo_root, tmp_path, textual_inversion=False, beta=0.5))
    idx, latents = trainer._draw(trainer.data)
    x_t, t, target = trainer._noisy(latents)
    embeds, pooled = trainer.data.cond["embeds"][idx], trainer.data.cond["pooled"][idx]

    err = losses.per_sample_mse(trainer._unet(x_t, t, embeds, pooled), target)
    err_phi = losses.per_sample_mse(trainer._reference(x_t, t, idx), target)
    # Exact, not close: with B = 0 a LoRA layer returns base_layer(x) + 0, the very ops of the
    # LoRA-off pass on the same inputs, so the bits agree on any version.
    assert torch.equal(err.detach(), err_phi)
    dco = losses.dco_loss(err, err_phi, 0.5, trainer.T)
    assert dco.item() == pytest.approx(math.log(2), abs=2e-7)  # fp32 log σ(0): 2 ulps at 0.69
    dco.backward()
    g_dco = _lora_grads(trainer)

    trainer.optimizer.zero_grad(set_to_none=True)
    err = losses.per_sample_mse(trainer._unet(x_t, t, embeds, pooled), target)
    losses.db_loss(err).backward()
    g_db = _lora_grads(trainer)
    assert any(g.abs().max() > 0 for g in g_db)
    for a, b in zip(g_dco, g_db, strict=True):
        expected = 0.5 * trainer.T / 2 * b  # float32 sums differ in the last bits
        torch.testing.assert_close(a, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


def test_first_dco_step_logs_log2_without_a_learned_token(model_cache, demo_root, tmp_path):
    torch.manual_seed(0)
    row = Trainer(_opts(demo_root, tmp_path, textual_inversion=False)).step()
    assert row["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert row["d"] == 0.0 and row["sigma"] == pytest.approx(0.5)


def test_bf16_autocast_trains_fp32_lora_and_token_rows_only(model_cache, demo_root, tmp_path):
    """The official code's fp16 cast leaves token rows untrained; ours must move them."""
    torch.manual_seed(0)
    trainer = Trainer(_opts(demo_root, tmp_path, mixed_precision="bf16"))
    assert trainer.amp == torch.bfloat16
    unet_before = {k: v.clone() for k, v in trainer.pipe.unet.state_dict().items()}
    rows_before = [w.detach().clone() for w in trainer.tokens.tables(trainer.pipe)]
    for _ in range(3):
        trainer.step()
    after = trainer.pipe.unet.state_dict()
    for name, p in trainer.pipe.unet.named_parameters():
        if p.requires_grad:
            assert p.dtype == torch.float32, name
        else:
            assert p.dtype == torch.bfloat16, name
            assert torch.equal(after[name], unet_before[name]), name
    assert any(not torch.equal(after[k], unet_before[k]) for k in after if "lora_B" in k)
    for k, w in enumerate(trainer.tokens.tables(trainer.pipe)):
        assert w.dtype == torch.float32
        idx = trainer.tokens.ids[k]
        assert not torch.equal(w[idx], rows_before[k][idx])
        keep = torch.ones(w.shape[0], dtype=torch.bool)
        keep[idx] = False
        assert torch.equal(w[keep], rows_before[k][keep])


def test_learned_rows_step_as_the_whole_matrices_restored(model_cache, demo_root, tmp_path):
    """Only the learned rows are stepped; the weights are bit-for-bit those of the recipe it
    replaces: AdamW over the whole embedding matrices, the clipping norm over LoRA and matrix
    gradients, every other row restored and the learned row rescaled after each step."""
    opts = _opts(demo_root, tmp_path, objective="db", ti_lr=5e-2, max_grad_norm=1e-3)  # clips
    torch.manual_seed(0)
    fast = Trainer(opts)
    torch.manual_seed(0)
    ref = Trainer(opts)
    tables = ref.tokens.tables(ref.pipe)
    originals = [w.detach().clone() for w in tables]
    whole = torch.optim.AdamW([{"params": ref.lora_parameters(), "lr": opts.lr},
                               {"params": tables, "lr": opts.ti_lr, "weight_decay": 0.0}],
                              weight_decay=0.0)

    def whole_matrix_update(loss):
        whole.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in whole.param_groups for p in g["params"]],
                                       opts.max_grad_norm)
        whole.step()
        with torch.no_grad():
            for w, orig, i, norm in zip(tables, originals, ref.tokens.ids, ref.tokens.init_norms,
                                        strict=True):
                keep = torch.ones(w.shape[0], dtype=torch.bool)
                keep[i] = False
                w[keep] = orig[keep]
                w[i] = w[i] * (norm / w[i].norm().clamp_min(1e-12))
        return {}

    ref._update = whole_matrix_update
    for _ in range(4):
        fast.step()
        ref.step()
    # The same elementwise ops on the same values: exact, not close.
    for a, b in zip(fast.lora_parameters(), ref.lora_parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b, orig in zip(fast.tokens.tables(fast.pipe), tables, originals, strict=True):
        assert torch.equal(a, b)
        assert not torch.equal(a, orig)  # the learned rows moved
    assert all(fast.optimizer.state[r]["exp_avg"].shape == r.shape for r in fast.token_rows)


def test_fp16_needs_a_gpu():
    from dcobench.train.trainer import autocast_dtype

    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        autocast_dtype("fp16", torch.device("cpu"))
    assert autocast_dtype("auto", torch.device("cpu")) is None


def test_gradient_checkpointing_gives_the_same_weights(model_cache, demo_root, tmp_path):
    weights = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        trainer = Trainer(_opts(demo_root, tmp_path, gradient_checkpointing=checkpointing))
        assert trainer.pipe.unet.is_gradient_checkpointing == checkpointing
        for _ in range(2):
            trainer.step()
        weights.append([p.detach().clone() for p in trainer.lora_parameters()])
    for a, b in zip(*weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_compact_captions_learn_the_token_in_a_photo_of_token(model_cache, demo_root, tmp_path):
    """Fig 8a's compact caption (rebuttal: no rare identifier, textual embeddings learned as in
    §5.1): θ reads "a photo of <token>", φ "a photo of {class}"."""
    trainer = Trainer(_opts(demo_root, tmp_path, captions="compact"))
    assert trainer.tokens is not None
    assert set(trainer.data.captions) == {"a photo of <toy_robot>"}
    assert set(trainer.data.base_captions) == {"a photo of robot"}


def test_rare_token_captions_learn_no_token_and_use_sks(model_cache, demo_root, tmp_path):
    trainer = Trainer(_opts(demo_root, tmp_path, captions="rare_token", textual_inversion=False))
    assert trainer.tokens is None
    assert set(trainer.data.captions) == {"a photo of sks robot"}
    assert trainer.data.base_captions == trainer.data.captions
    with pytest.raises(ValueError, match="rare_token.*textual_inversion: false"):
        _opts(demo_root, tmp_path, captions="rare_token")


@pytest.mark.parametrize("variant", ["db", "dco"])
def test_style_run_from_config_trains_no_token_with_plain_style_words(model_cache, demo_root,
                                                                      tmp_path, variant):
    """§5.2: styles train no textual embedding. The demo config's options for a style give a
    run without a token whose θ and φ captions are the same text, with the style words where
    the placeholder token stood and no angle-bracket token left for CLIP to split."""
    from pathlib import Path

    import yaml

    from dcobench.config import train_options

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "tiny.yaml").read_text())
    fields = train_options(cfg, "style", variant)
    assert fields["textual_inversion"] is False
    fields.update(steps=2, resolution=64, mixed_precision="fp32", checkpoints=[])
    trainer = Trainer(TrainOptions(concept_dir=demo_root / "mosaic_style", out_dir=tmp_path / "run",
                                   objective=variant, **fields))
    assert trainer.tokens is None
    assert trainer.data.captions == trainer.data.base_captions
    assert all("<" not in c and ">" not in c and "mosaic" in c for c in trainer.data.captions)
    embeds, _ = text.encode_prompts(trainer.pipe, trainer.data.captions[:1])
    torch.testing.assert_close(trainer.data.cond["embeds"][:1], embeds)  # fixed θ text too
    trainer.step()
    trainer.save(tmp_path / "run")
    assert not list((tmp_path / "run").glob("learned_embeds*"))


def test_reference_uses_base_captions_when_a_token_is_learned(model_cache, demo_root, tmp_path):
    trainer = Trainer(_opts(demo_root, tmp_path))
    token, noun = trainer.concept.token, trainer.concept.class_noun
    assert all(token in c for c in trainer.data.captions)
    assert trainer.data.base_captions == [c.replace(token, noun) for c in trainer.data.captions]
    embeds, _ = text.encode_prompts(trainer.pipe, trainer.data.base_captions[:1])
    torch.testing.assert_close(trainer.data.cond["base_embeds"][:1], embeds)


def test_flip_augmentation_caches_both_views_once(model_cache, demo_root, tmp_path):
    from dcobench.train.batches import encode_latents

    trainer = Trainer(_opts(demo_root, tmp_path, random_flip=True))
    n = len(trainer.concept.images)
    assert trainer.data.latents.shape == (n, 2, 4, 8, 8)
    plain = encode_latents(trainer.pipe, trainer.concept.images, 64)
    torch.testing.assert_close(trainer.data.latents[:, :1], plain)
    assert not torch.allclose(trainer.data.latents[:, 1], plain[:, 0])


def test_non_finite_loss_stops_and_writes_no_lora(model_cache, demo_root, tmp_path):
    from dcobench.train.trainer import train

    opts = _opts(demo_root, tmp_path, objective="db", lr=1e30, textual_inversion=False, steps=5)
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train(opts)
    assert not (tmp_path / "run" / "pytorch_lora_weights.safetensors").exists()
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_lora_targets_are_configurable(model_cache, demo_root, tmp_path):
    trainer = Trainer(_opts(demo_root, tmp_path, targets=("to_q",)))
    names = [n for n, p in trainer.pipe.unet.named_parameters() if p.requires_grad]
    assert names and all(".to_q.lora_" in n for n in names)
    with pytest.raises(ValueError, match="targets"):
        _opts(demo_root, tmp_path, targets=())


def test_priors_are_generated_once_and_dbpp_logs_the_prior_term(model_cache, demo_root, tmp_path):
    from dcobench.train.priors import PriorOptions, generate_priors

    opts = PriorOptions(class_noun="robot", out_dir=tmp_path / "priors", count=2, steps=2,
                        resolution=64, batch_size=2)
    out = generate_priors(opts)
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(first) == 2 and "a photo of a robot" in (out / "index.csv").read_text()
    generate_priors(opts)  # cached: nothing is regenerated
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == first

    torch.manual_seed(0)
    trainer = Trainer(_opts(demo_root, tmp_path, objective="db", prior_dir=out, prior_weight=0.5))
    row = trainer.step()
    assert row["loss"] == pytest.approx(row["loss_theta"] + 0.5 * row["loss_prior"], rel=1e-5)
    assert "loss_phi" not in row


def test_a_step_logs_its_timestep_and_the_norm_before_clipping(model_cache, demo_root, tmp_path):
    """t is the timestep the step drew; grad_norm is the LoRA + embedding-matrix norm before
    clipping: with a bound no step reaches, the gradients left after the step are unclipped."""
    torch.manual_seed(0)
    trainer = Trainer(_opts(demo_root, tmp_path, max_grad_norm=1e9))
    drawn = []
    noisy = trainer._noisy
    trainer._noisy = lambda latents: (out := noisy(latents), drawn.append(out[1]))[0]
    row = trainer.step()
    assert row["t"] == drawn[0].item()
    grads = [p.grad for p in trainer.lora_parameters()]
    grads += [w.grad for w in trainer.tokens.tables(trainer.pipe)]
    assert row["grad_norm"] == pytest.approx(torch.nn.utils.get_total_norm(grads).item(), rel=1e-6)
    assert row["clipped"] == 0
    assert row["beta_T_d"] == pytest.approx(trainer.T * row["d"], rel=1e-5)  # β = 1
    assert row["one_minus_sigma"] == pytest.approx(1 - row["sigma"], abs=1e-6)


def test_token_lr_0_keeps_the_token_at_its_init(model_cache, demo_root, tmp_path):
    """ti_lr 0 (the official code's behaviour): the token is in θ's captions but never moves,
    no gradient reaches the text encoders, the norm is the LoRA's; its init is saved."""
    from safetensors.torch import load_file

    torch.manual_seed(0)
    trainer = Trainer(_opts(demo_root, tmp_path, ti_lr=0.0, max_grad_norm=1e9))
    assert trainer.tokens is not None and not trainer.trains_token
    assert all(trainer.concept.token in c for c in trainer.data.captions)
    assert len(trainer.optimizer.param_groups) == 1  # LoRA only
    before = [w.detach().clone() for w in trainer.tokens.tables(trainer.pipe)]
    lora_before = [p.detach().clone() for p in trainer.lora_parameters()]
    for _ in range(3):
        row = trainer.step()
        assert all(math.isfinite(row[k]) for k in ("loss", "grad_norm", "beta_T_d"))
    for w, b in zip(trainer.tokens.tables(trainer.pipe), before, strict=True):
        assert torch.equal(w, b) and w.grad is None
    assert any(not torch.equal(a, b) for a, b in zip(trainer.lora_parameters(), lora_before,
                                                       strict=True))
    lora_norm = torch.nn.utils.get_total_norm([p.grad for p in trainer.lora_parameters()])
    assert row["grad_norm"] == pytest.approx(lora_norm.item(), rel=1e-6)
    trainer.save(tmp_path / "run")
    saved = load_file(str(tmp_path / "run" / text.EMBEDS_NAME))
    for key, w, i in zip(("clip_l", "clip_g"), before, trainer.tokens.ids, strict=True):
        assert torch.equal(saved[key][0], w[i])
