"""Every merger against hand-computed ΔW on small tensors; merge ids; LoRA column cosine."""

import pytest
import torch

from dcobench.analysis.lora_cosine import column_cosine, lora_cosine
from dcobench.merge.dense import dare, svd_factors, ties, trim
from dcobench.merge.ids import merge_id, parse_merge_id, weight_grid, with_weights
from dcobench.merge.lora import Lora, MergeOptions
from dcobench.merge.registry import MERGERS
from dcobench.registry import UnknownNameError


def _lora(rank, scale, seed, out_dim=5, in_dim=6):
    g = torch.Generator().manual_seed(seed)
    return Lora({"l": torch.randn(rank, in_dim, generator=g)},
                {"l": torch.randn(out_dim, rank, generator=g)}, scale, {"r": rank})


SUBJECT, STYLE = _lora(2, 0.5, 0), _lora(3, 2.0, 1)  # different ranks, like 32 vs 64
W = (0.7, 1.3)


def _close(got, expected, rel=1e-5):
    """fp32 ΔW arithmetic (the mergers compute in fp32): a handful of products and sums of O(1)
    factors, plus an SVD for some; rounding stays within ~100 eps (1.2e-5) of the largest entry."""
    torch.testing.assert_close(got, expected, rtol=rel, atol=rel * expected.abs().max().item())


def _expected_sum():
    return W[0] * SUBJECT.delta("l") + W[1] * STYLE.delta("l")


@pytest.mark.parametrize("name", ["arithmetic", "cat", "svd"])
def test_exact_mergers_equal_weighted_sum(name):
    merged = MERGERS[name]([SUBJECT, STYLE], MergeOptions(weights=W))
    assert merged.rank == 5 and merged.scale == 1.0
    _close(merged.delta("l"), _expected_sum())


def test_cat_balances_factors_and_keeps_negative_weights():
    merged = MERGERS["cat"]([SUBJECT, STYLE], MergeOptions(weights=(-0.5, 1.0)))
    expected = -0.5 * SUBJECT.delta("l") + STYLE.delta("l")
    _close(merged.delta("l"), expected)
    assert torch.allclose(merged.A["l"][:2], 0.5 * SUBJECT.A["l"])  # √|−0.5 · 0.5| = 0.5


def test_svd_truncation_is_the_best_rank_k_approximation():
    merged = MERGERS["svd"]([SUBJECT, STYLE], MergeOptions(weights=W, rank=2))
    U, S, Vh = torch.linalg.svd(_expected_sum())
    best = U[:, :2] @ torch.diag(S[:2]) @ Vh[:2]
    assert merged.rank == 2
    _close(merged.delta("l"), best)


def test_svd_factors_pad_to_the_requested_rank():
    A, B = svd_factors(torch.ones(2, 3), 4)
    assert A.shape == (4, 3) and B.shape == (2, 4)
    _close(B @ A, torch.ones(2, 3))


def test_trim_keeps_the_largest_magnitudes():
    d = torch.tensor([[1.0, -4.0], [0.5, 3.0]])
    assert torch.equal(trim(d, 0.5), torch.tensor([[0.0, -4.0], [0.0, 3.0]]))


def test_ties_by_hand():
    d1 = torch.tensor([[2.0, -1.0, 0.1, 3.0]])
    d2 = torch.tensor([[1.0, 4.0, -0.2, -1.0]])
    # density 0.75 keeps 3 of 4 entries: d1 -> [2, -1, 0, 3], d2 -> [1, 4, 0, -1]
    # weighted (1, 0.5): d2 -> [0.5, 2, 0, -0.5]; elected signs of the sum: [+, +, 0, +]
    # means over the agreeing entries: [(2 + 0.5) / 2, 2, 0, 3]
    out = ties([d1, d2], [1.0, 0.5], 0.75)
    assert torch.allclose(out, torch.tensor([[1.25, 2.0, 0.0, 3.0]]))


def test_dare_by_hand_and_full_density_is_the_sum():
    d1, d2 = torch.ones(3, 4), 2 * torch.ones(3, 4)
    g, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    keep1, keep2 = torch.rand(3, 4, generator=g2) < 0.5, torch.rand(3, 4, generator=g2) < 0.5
    expected = 0.5 * d1 * keep1 / 0.5 + 1.0 * d2 * keep2 / 0.5
    assert torch.allclose(dare([d1, d2], [0.5, 1.0], 0.5, g), expected)
    full = dare([d1, d2], [0.5, 1.0], 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(full, 0.5 * d1 + d2)


def test_ties_svd_and_dare_mergers_are_deterministic_and_rank_limited():
    opts = MergeOptions(weights=W, density=0.6, rank=3, seed=7)
    for name in ("ties_svd", "dare"):
        a = MERGERS[name]([SUBJECT, STYLE], opts)
        b = MERGERS[name]([SUBJECT, STYLE], opts)
        assert a.rank == 3 and torch.equal(a.A["l"], b.A["l"])
        assert torch.linalg.matrix_rank(a.delta("l")) <= 3
    dense = ties([SUBJECT.delta("l"), STYLE.delta("l")], list(W), 1.0)
    full = MERGERS["ties_svd"]([SUBJECT, STYLE], MergeOptions(weights=W, density=1.0))
    _close(full.delta("l"), dense)


def test_unknown_merger_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'ziplora'"):
        MERGERS["zip_lora"]


def test_merge_ids_round_trip_and_grid():
    assert merge_id("dco", "arithmetic") == "dco-arithmetic"
    assert merge_id("dco_b05", "ties_svd", (0.5, 1.25)) == "dco_b05-ties_svd_w0p5_1p25"
    assert merge_id("db", "ziplora", (0.5, 1.0)) == "db-ziplora"  # ziplora ignores λ
    assert parse_merge_id("dco_b05-ties_svd_w0p5_1p25") == ("dco_b05", "ties_svd", (0.5, 1.25))
    assert parse_merge_id("db-arithmetic") == ("db", "arithmetic", (1.0, 1.0))
    assert weight_grid([1, 2]) == [(1.0, 2.0)]
    grid = weight_grid([[1, 1], [0.5, 1]])
    assert with_weights("db-arithmetic", grid) == ["db-arithmetic", "db-arithmetic_w0p5_1"]
    assert with_weights("db-ziplora", grid) == ["db-ziplora"]
    assert with_weights("db-cat_w2_1", grid) == ["db-cat_w2_1"]
    with pytest.raises(ValueError, match="merge id"):
        parse_merge_id("arithmetic")


def test_merge_ids_may_take_each_side_from_its_own_variant():
    from dcobench.merge.ids import pair_variants

    assert merge_id("dco_b01+dbsv_r32", "ties_svd", (0.5, 1)) == "dco_b01+dbsv_r32-ties_svd_w0p5_1"
    assert parse_merge_id("dco_b01+dbsv_r32-ties_svd_w0p5_1") == ("dco_b01+dbsv_r32", "ties_svd", (0.5, 1.0))
    assert pair_variants("dco_b01+dbsv_r32") == ("dco_b01", "dbsv_r32")
    assert pair_variants("dco") == ("dco", "dco")
    for bad in ("a+b+c-arithmetic", "+db-arithmetic", "db+-arithmetic"):
        with pytest.raises(ValueError, match="merge id"):
            parse_merge_id(bad)


def test_column_cosine_matches_dense_columns():
    a, b = _lora(2, 0.5, 3), _lora(3, -2.0, 4)
    cos = column_cosine(a.A["l"], a.B["l"], a.scale, b.A["l"], b.B["l"], b.scale)
    expected = torch.cosine_similarity(a.delta("l"), b.delta("l"), dim=0)  # over out, per column
    assert torch.allclose(cos, expected, atol=1e-5)
    [row] = lora_cosine(a, a)
    assert row["mean_cos"] == pytest.approx(1.0) and row["columns"] == 6


def test_column_cosine_of_a_zero_column_is_zero():
    a = _lora(2, 1.0, 0)
    a.A["l"][:, 0] = 0
    cos = column_cosine(a.A["l"], a.B["l"], 1.0, a.A["l"], a.B["l"], 1.0)
    assert cos[0] == 0 and torch.allclose(cos[1:], torch.ones(5))


class _OneLinear(torch.nn.Module):
    """A stand-in UNet with one target layer `to_q` (W = I): ε = W x (+ ZipLoRA's hook)."""

    def __init__(self):
        super().__init__()
        self.to_q = torch.nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.to_q.weight.copy_(torch.eye(2))

    def forward(self, x, t, encoder_hidden_states=None, added_cond_kwargs=None):
        from types import SimpleNamespace

        return SimpleNamespace(sample=self.to_q(x))


@pytest.mark.parametrize(("similarity", "penalty"), [
    ("mean_abs", (2 * 1 + 0.5 * 3) / 2),  # public code: mean_i |m_s,i m_t,i| = 1.75
    ("dot", abs(2 * 1 + 0.5 * 3)),  # Shah et al.: |m_s · m_t| = 3.5
])
def test_ziplora_loss_equals_the_hand_computed_public_normalization(similarity, penalty):
    """ΔW_s = e1 e1ᵀ, ΔW_t = e2 e2ᵀ, m_s = (2, 0.5), m_t = (1, 3). Subject row x = (1, 2):
    target x + ΔW_s x = (2, 2); merged x + ΔW_s (m_s ⊙ x) + ΔW_t (m_t ⊙ x) = (3, 8);
    mse = (1² + 6²) / 2 = 18.5. Style row x = (3, −1): target (3, −2), merged (9, −4);
    mse = (6² + 2²) / 2 = 20. Loss = 18.5 + 20 + 0.01 · penalty. (The old per-row sum of
    squares gave 37 + 40: the same λ weighed twice as little here, C·h·w times at SDXL.)"""
    from dcobench.merge.ziplora import ZipLora, ZipLoraOptions, ziplora_step

    subject = Lora({"to_q": torch.tensor([[1.0, 0.0]])}, {"to_q": torch.tensor([[1.0], [0.0]])},
                   1.0, {"r": 1})
    style = Lora({"to_q": torch.tensor([[0.0, 1.0]])}, {"to_q": torch.tensor([[0.0], [1.0]])},
                 1.0, {"r": 1})
    zl = ZipLora(subject, style)
    with torch.no_grad():
        zl.m_subject[0].copy_(torch.tensor([2.0, 0.5]))
        zl.m_style[0].copy_(torch.tensor([1.0, 3.0]))
    unet = _OneLinear().requires_grad_(False)
    batch = {"x_t": torch.tensor([[1.0, 2.0], [3.0, -1.0]]), "t": torch.tensor([10, 10]),
             "embeds": None, "pooled": None, "time_ids": None, "n_subject": 1}
    with zl.attached(unet):
        stats = ziplora_step(unet, zl, batch, ZipLoraOptions(penalty=0.01, similarity=similarity))
    # exact in binary floating point: every product and sum here is of small dyadic numbers,
    # except 0.01 · penalty (one rounding)
    assert stats["loss_subject"] == 18.5 and stats["loss_style"] == 20.0
    assert stats["penalty"] == penalty
    assert stats["loss"] == pytest.approx(38.5 + 0.01 * penalty, rel=1e-7)
    # ∂/∂m_s of the subject term: merged₀ = 1 + 1·m_s,0, 2nd output has no m_s;
    # d mse/d m_s,0 = 2·(3 − 2)/2 · x₀ = 1 (+ style row: 2·(9 − 3)/2 · 3 = 18) + λ·∂penalty
    dpen = 1 / 2 * 1 if similarity == "mean_abs" else 1.0  # ∂/∂m_s,0 of mean|m_s m_t| or |m_s·m_t|
    assert zl.m_subject[0].grad[0].item() == pytest.approx(1 + 18 + 0.01 * dpen, rel=1e-6)


def test_ziplora_options_name_the_bad_similarity():
    from dcobench.merge.ziplora import ZipLoraOptions

    with pytest.raises(ValueError, match="mean_abs, dot, cosine"):
        ZipLoraOptions(similarity="l2")
