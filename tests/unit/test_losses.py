"""Losses and guidance against hand-computed tensors."""

import math

import pytest
import torch

from dcobench.sample import guidance
from dcobench.sample.guides import Guide
from dcobench.train import losses


def test_per_sample_mse_hand_computed():
    pred = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])  # (2, 1, 1, 2)
    target = torch.tensor([[[[0.0, 0.0]]], [[[3.0, 1.0]]]])
    assert torch.allclose(losses.per_sample_mse(pred, target), torch.tensor([2.5, 5.0]))


def test_db_loss_is_batch_mean():
    assert losses.db_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(2.0)


def test_dco_loss_hand_computed_with_beta_T():
    err_theta, err_phi = torch.tensor([0.010, 0.020]), torch.tensor([0.011, 0.020])
    # d = [-0.001, 0]; β·T = 0.5 · 1000 = 500 -> −log σ(0.5), −log σ(0)
    expected = (-math.log(1 / (1 + math.exp(-0.5))) + math.log(2)) / 2
    got = losses.dco_loss(err_theta, err_phi, beta=0.5, num_train_timesteps=1000)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_dco_loss_is_log2_when_theta_equals_phi():
    err = torch.tensor([0.3, 0.7, 1.1])
    assert losses.dco_loss(err, err.clone(), 1.0, 1000).item() == pytest.approx(math.log(2))


def test_dco_gradient_is_beta_T_over_2_times_db_gradient_at_equality():
    beta, T = 2.0, 1000
    err_phi = torch.tensor([0.4, 0.9])
    x_dco = err_phi.clone().requires_grad_(True)
    losses.dco_loss(x_dco, err_phi, beta, T).backward()
    x_db = err_phi.clone().requires_grad_(True)
    losses.db_loss(x_db).backward()
    assert torch.allclose(x_dco.grad, beta * T / 2 * x_db.grad)


def test_dco_reference_carries_no_gradient():
    err_theta = torch.tensor([0.5], requires_grad=True)
    err_phi = torch.tensor([0.4], requires_grad=True)
    losses.dco_loss(err_theta, err_phi, 1.0, 1000).backward()
    assert err_phi.grad is None


def test_prior_preservation_loss():
    db = losses.db_loss(torch.tensor([1.0, 3.0]))
    got = losses.prior_preservation_loss(db, torch.tensor([4.0]), 0.5)
    assert got.item() == pytest.approx(2.0 + 0.5 * 4.0)


def test_snr_weights():
    snr = torch.tensor([1.0, 10.0])
    assert torch.allclose(losses.snr_weights(snr, 5.0, "epsilon"), torch.tensor([1.0, 0.5]))
    assert torch.allclose(losses.snr_weights(snr, None, "epsilon"), torch.ones(2))


def test_cfg_and_reward_guidance_hand_computed():
    u, c, t = torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([4.0])
    assert guidance.cfg(u, c, 7.5).item() == pytest.approx(1 + 7.5 * 1)
    # ω_rg(θ − φc) + ω_text(φc − φ∅) + φ∅ = 3·2 + 7.5·1 + 1
    assert guidance.reward_guidance(u, c, t, 7.5, 3.0).item() == pytest.approx(14.5)


def test_reward_guidance_equals_cfg_when_theta_equals_phi():
    u, c = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    rg = guidance.reward_guidance(u, c, c.clone(), 7.5, 4.0)
    assert torch.allclose(rg, guidance.cfg(u, c, 7.5))


@pytest.mark.parametrize("name,parsed", [("cfg", Guide("cfg")), ("rg3", Guide("rg", 3.0)),
                                         ("rg2.5", Guide("rg", 2.5)), ("rg0.5", Guide("rg", 0.5))])
def test_guide_parse_and_name(name, parsed):
    assert Guide.parse(name) == parsed and parsed.name == name
    assert parsed.columns(7.5) == {"guide": name, "guidance": parsed.kind, "w_rg": parsed.w_rg,
                                   "w_text": 7.5}


def test_guide_parse_rejects_garbage():
    with pytest.raises(ValueError, match="rg<ω>"):
        Guide.parse("rgx")
    with pytest.raises(ValueError, match="needs w_rg"):
        Guide("rg")
    for zero in ("rg0", "rg0.0", "rg-1"):  # ω_rg ≤ 0 drops ε_θ: not reward guidance
        with pytest.raises(ValueError, match="ω_rg > 0"):
            Guide.parse(zero)
