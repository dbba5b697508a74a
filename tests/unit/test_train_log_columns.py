"""train_log.csv's operating-point columns against hand-computed tensors: DCO's 1 − σ and
β·T·d from a known d, and the clipping flag by torch's own rule."""

import math

import pytest
import torch

from dcobench.train.objectives import OBJECTIVES, STEP_LOGS, Terms, dco_logs, log_columns
from dcobench.train.trainer import clip_logged


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_dco_logs_from_a_known_margin():
    d = torch.tensor([-0.01, 0.002])  # θ beats φ on the first row, loses on the second
    logs = dco_logs(d, torch.tensor([0.3, 0.5]), beta_t=1000.0)
    assert logs["beta_T_d"] == pytest.approx((-10.0 + 2.0) / 2)
    assert logs["sigma"] == pytest.approx((_sigmoid(10.0) + _sigmoid(-2.0)) / 2, rel=1e-6)
    assert logs["one_minus_sigma"] == pytest.approx((_sigmoid(-10.0) + _sigmoid(2.0)) / 2, rel=1e-6)
    assert logs["d"] == pytest.approx(-0.004) and logs["loss_phi"] == pytest.approx(0.4)


def test_one_minus_sigma_keeps_its_digits_where_sigma_rounds_to_one():
    """β·T·d = −50: σ is 1.0 in fp32, 1 − σ is 2e-22, what the gradient weight really is."""
    logs = dco_logs(torch.tensor([-0.05]), torch.tensor([0.1]), beta_t=1000.0)
    assert logs["sigma"] == 1.0
    assert logs["one_minus_sigma"] == pytest.approx(_sigmoid(-50.0), rel=1e-5)
    assert logs["one_minus_sigma"] > 0


def test_dco_objective_logs_the_weighted_margin():
    """Min-SNR weights multiply d before β·T, as in the loss."""
    terms = Terms(err_theta=torch.tensor([0.20, 0.40]), err_phi=torch.tensor([0.21, 0.40]),
                  weights=torch.tensor([0.5, 1.0]), beta=0.5, num_train_timesteps=1000)
    loss, logs = OBJECTIVES["dco"].loss(terms)
    # d·w = [−0.005, 0]; β·T = 500 → β·T·d = [−2.5, 0]
    assert logs["beta_T_d"] == pytest.approx(-1.25, rel=1e-5)
    assert logs["one_minus_sigma"] == pytest.approx((_sigmoid(-2.5) + 0.5) / 2, rel=1e-5)
    assert loss.item() == pytest.approx((-math.log(_sigmoid(2.5)) + math.log(2)) / 2, rel=1e-5)


def test_every_logged_value_has_a_column_and_time_stays_last():
    columns = log_columns()
    assert set(OBJECTIVES["dco"].logs) | set(STEP_LOGS) <= set(columns)
    assert columns[-1] == "time" and len(set(columns)) == len(columns)


@pytest.mark.parametrize("scale,clipped", [(2.0, 1), (0.5, 0)])
def test_clip_logged_reports_the_norm_before_clipping(scale, clipped):
    g = torch.tensor([3.0, 4.0]) * scale / 5.0  # norm = scale
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = g.clone()
    logs = clip_logged([p], 1.0, torch.nn.utils.get_total_norm([p.grad]))
    assert logs == {"grad_norm": pytest.approx(scale), "clipped": clipped}
    expected = g / (scale + 1e-6) if clipped else g
    torch.testing.assert_close(p.grad, expected)


def test_clip_flag_follows_torch_at_the_boundary():
    """A norm equal to max_norm is scaled by 1/(1 + 1e-6) in torch: flagged as clipped."""
    p = torch.nn.Parameter(torch.zeros(1))
    p.grad = torch.tensor([1.0])
    assert clip_logged([p], 1.0, torch.tensor(1.0))["clipped"] == 1
    assert p.grad.item() < 1.0
