"""Registries, prompt filling, CLI option parsing and the exact arithmetic merge."""

import pytest
import torch

from dcobench.cli import build_options
from dcobench.data import prompts
from dcobench.merge.lora import Lora, arithmetic
from dcobench.registry import Registry, UnknownNameError
from dcobench.train.objectives import OBJECTIVES, Terms, log_columns
from dcobench.train.options import TrainOptions


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match=r"did you mean 'dco'"):
        OBJECTIVES["dcoo"]


def test_objectives_declare_reference_and_logs():
    """The trainer runs the reference pass for objectives that declare it and logs their columns."""
    assert OBJECTIVES["dco"].reference and not OBJECTIVES["db"].reference
    err_theta, err_phi = torch.tensor([0.3, 0.5]), torch.tensor([0.3, 0.4])
    loss, logged = OBJECTIVES["dco"].loss(Terms(err_theta, err_phi, None, 1.0, 1000))
    # d = (0, 0.1): −log σ(0) = log 2 and −log σ(−100) ≈ 100
    assert loss.item() == pytest.approx((0.6931472 + 100.0) / 2, rel=1e-5)
    assert set(logged) == set(OBJECTIVES["dco"].logs) == {"loss_phi", "d", "sigma", "one_minus_sigma", "beta_T_d"}
    loss, logged = OBJECTIVES["db"].loss(Terms(err_theta, None, torch.tensor([1.0, 2.0]), 1.0, 1000))
    assert loss.item() == pytest.approx((0.3 + 1.0) / 2) and logged == {}
    assert log_columns() == ("step", "loss", "loss_theta", "loss_phi", "d", "sigma",
                             "one_minus_sigma", "beta_T_d", "loss_prior", "t", "grad_norm",
                             "clipped", "lr", "time")


def test_registry_rejects_duplicates():
    reg = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a", 2)


def test_prompt_fill_theta_and_base():
    [p] = prompts.fill(["a {subject} in {style} style"], {"subject": "<dog>", "style": "<wc>"},
                       {"subject": "dog", "style": "watercolor"})
    assert (p.theta, p.base) == ("a <dog> in <wc> style", "a dog in watercolor style")


def test_dreambooth_prompt_lists_have_25_each():
    assert len(prompts.OBJECT_PROMPTS) == 25 and len(prompts.LIVE_PROMPTS) == 25


def test_build_options_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown TrainOptions option"):
        build_options(TrainOptions, '{"stepz": 3}', concept_dir=tmp_path, out_dir=tmp_path,
                      objective="db")


def test_train_options_validate():
    with pytest.raises(ValueError, match="captions"):
        TrainOptions(concept_dir="x", out_dir="y", objective="db", captions="short")
    with pytest.raises(UnknownNameError, match="did you mean 'db'"):
        TrainOptions(concept_dir="x", out_dir="y", objective="dbb")


def _lora(rank, scale, seed):
    g = torch.Generator().manual_seed(seed)
    A = {"l": torch.randn(rank, 6, generator=g)}
    B = {"l": torch.randn(5, rank, generator=g)}
    return Lora(A, B, scale, {"r": rank})


def test_arithmetic_merge_is_exact_weighted_sum_of_deltas():
    a, b = _lora(2, 0.5, 0), _lora(3, 2.0, 1)
    merged = arithmetic([a, b], [0.7, 1.3])
    assert merged.rank == 5 and merged.scale == 1.0
    expected = 0.7 * a.delta("l") + 1.3 * b.delta("l")
    # fp32: two rank-≤3 products and a weighted sum, ≤ ~10 eps of the largest entry
    torch.testing.assert_close(merged.delta("l"), expected, rtol=1e-6,
                               atol=1e-6 * expected.abs().max().item())


def test_arithmetic_merge_missing_layer_counts_as_zero():
    a, b = _lora(2, 1.0, 0), _lora(2, 1.0, 1)
    b.A["only_b"], b.B["only_b"] = torch.ones(2, 6), torch.ones(5, 2)
    merged = arithmetic([a, b], [1.0, 1.0])
    assert torch.allclose(merged.delta("only_b"), b.delta("only_b"))
