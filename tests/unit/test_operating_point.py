"""DCO's saturation rule, the β calibration and the report's operating-point part, on
synthetic train logs whose answers are known by construction."""

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest

from dcobench.train import operating_point as op


def _log(sigma, theta=0.1, t=None, d=None, beta_t=None):
    """A train_log.csv frame with steps 1..n, σ per row and ℓ(θ) (a number or per row)."""
    n = len(sigma)
    frame = pd.DataFrame({"step": np.arange(1, n + 1), "loss": 0.5, "sigma": sigma,
                          "loss_theta": np.broadcast_to(theta, n).astype(float)})
    if d is not None:
        frame["d"] = d
        frame["beta_T_d"] = beta_t * np.asarray(d)
        frame["one_minus_sigma"] = 1 - np.asarray(sigma)
    if t is not None:
        frame["t"] = t
    return frame


def _step_sigma(n, high_from, low=0.5, high=0.95):
    return np.where(np.arange(1, n + 1) >= high_from, high, low)


def test_hand_computed_saturation_step():
    """300 rows: window 10. σ = 0.95 from step 21: the mean of 10 rows exceeds 0.9 once 9 of
    them are high (0.5 + 0.045·9 = 0.905), i.e. at step 29, within the first 30 steps."""
    rule = op.saturation(_log(_step_sigma(300, 21)))
    assert op.window_size(300) == 10
    assert rule.saturated_at == 29 and rule.early_until == pytest.approx(30.0)
    assert rule.early and rule.theta_drop == 0.0 and rule.flat and rule.warn
    assert "step 29" in rule.message("subject/a/dco") and "fell 0.0%" in rule.message("x")
    theta = np.where(np.arange(1, 301) <= 100, 0.1, 0.125)  # rises 25 % after saturating
    rising = op.saturation(_log(_step_sigma(300, 21), theta=theta))
    assert rising.warn and "its median rose 25.0%" in rising.message("x")


def test_saturation_after_the_early_period_does_not_warn():
    rule = op.saturation(_log(_step_sigma(300, 24)))  # 9 high rows at step 32 > 30
    assert rule.saturated_at == 32 and not rule.early and not rule.warn


def test_theta_falling_after_saturation_does_not_warn():
    theta = np.where(np.arange(1, 301) <= 100, 0.1, 0.05)  # halves after step 100
    rule = op.saturation(_log(_step_sigma(300, 21), theta=theta))
    assert rule.early and rule.theta_drop == pytest.approx(0.5) and not rule.warn


def test_one_saturated_row_is_not_saturation():
    sigma = np.full(300, 0.6)
    sigma[5] = 1.0
    rule = op.saturation(_log(sigma))
    assert rule.saturated_at is None and not rule.warn and rule.max_sigma < op.SIGMA_SATURATED


def test_noisy_saturating_run_warns_and_unsaturating_one_does_not():
    """σ of single rows at random t around a margin that grows and then plateaus."""
    rng = np.random.default_rng(0)
    n, t = 2000, rng.integers(0, 1000, 2000)
    ramp = np.minimum(1.0, np.arange(1, n + 1) / 100)  # the margin is reached by step 100
    for beta_t, warns in ((1000.0, True), (50.0, False)):
        d = -0.01 * ramp + rng.normal(0, 0.002, n)
        sigma = 1 / (1 + np.exp(beta_t * d))
        theta = 0.2 + 0.02 * rng.standard_normal(n)  # flat: no learning the log shows
        rule = op.saturation(_log(sigma, theta=theta, t=t, d=d, beta_t=beta_t))
        assert rule.warn is warns, (beta_t, rule)


def test_db_log_has_no_rule():
    assert op.saturation(_log(np.full(50, np.nan))) is None


def _sweep_log(folder, beta_t, steps=100, margin=0.004, beta=None):
    """σ = sigmoid(β·T·margin·s/steps): saturates iff β·T·margin reaches ≈ 2.2 (σ = 0.9)."""
    s = np.arange(1, steps + 1)
    d = -margin * s / steps
    frame = _log(1 / (1 + np.exp(beta_t * d)), t=np.zeros(steps), d=d, beta_t=beta_t)
    folder.mkdir(parents=True)
    frame.to_csv(folder / "train_log.csv", index=False)
    if beta is not None:
        (folder / "manifest.json").write_text(json.dumps({"options": {"beta": beta}}))
    return folder / "train_log.csv"


def test_calibration_recommends_the_largest_unsaturated_beta(tmp_path):
    """β·T·margin at the end: 0.4, 1.2, 4, 12 → σ 0.60, 0.77, 0.98, 1.0: 300 is the answer."""
    logs = [_sweep_log(tmp_path / f"{c}_{bt}", bt, beta=bt / 1000)
            for bt in (100, 300, 1000, 3000) for c in ("a", "b")]
    sweep = op.read_sweep(logs)
    assert sweep["beta_T"].tolist() == pytest.approx([100, 100, 300, 300, 1000, 1000, 3000, 3000])
    table, best = op.calibrate(sweep)
    assert best == pytest.approx(300)
    assert table["saturated"].tolist() == [0, 0, 2, 2] and table["logs"].tolist() == [2] * 4
    assert table.loc[table["recommended"], "beta"].item() == pytest.approx(0.3)
    assert table["median_beta_T_d"].tolist() == pytest.approx(
        [-bt * 0.004 * 50.5 / 100 for bt in (100, 300, 1000, 3000)])


def test_calibration_reads_only_the_planned_early_period(tmp_path):
    """Planned 500 steps: the first 50 count; β·T = 1000 reaches σ 0.88 there: unsaturated."""
    logs = [_sweep_log(tmp_path / str(bt), bt) for bt in (300, 1000, 3000)]
    table, best = op.calibrate(op.read_sweep(logs, until=50))
    assert best == pytest.approx(1000) and table["beta"].isna().all()  # no manifests
    with pytest.raises(ValueError, match="before the calibration span"):
        op.read_sweep(logs, until=200)


def test_a_saturated_small_beta_stops_the_walk(tmp_path):
    """Saturated at 100 but not at 300 (noise): no recommendation rather than 300."""
    logs = [_sweep_log(tmp_path / "x", 100, margin=0.05), _sweep_log(tmp_path / "y", 300)]
    assert op.calibrate(op.read_sweep(logs))[1] is None


def test_calibrate_beta_command(tmp_path, capsys):
    from dcobench.__main__ import main

    logs = [str(_sweep_log(tmp_path / str(bt), bt, beta=bt / 1000)) for bt in (100, 300, 1000)]
    assert main(["calibrate-beta", "--logs", *logs, "--out", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "recommended β·T = 300 (β = 0.3)" in out
    assert pd.read_csv(tmp_path / "t.csv")["recommended"].tolist() == [False, True, False]
    assert main(["calibrate-beta", "--logs", str(tmp_path / "nope.csv")]) == 1


def test_report_warns_and_draws_every_dco_run(tmp_path, caplog):
    from dcobench.report.operating import operating_point_items

    rng = np.random.default_rng(1)
    runs = {("subject", "a", "dco"): _log(_step_sigma(300, 21), t=rng.integers(0, 1000, 300),
                                          d=np.full(300, -0.01), beta_t=1000.0),
            ("subject", "a", "dco_b01"): _log(np.full(300, 0.6)),  # an old log: no t, β·T·d
            ("subject", "a", "db"): _log(np.full(300, np.nan))}
    paths = {}
    for key, frame in runs.items():
        folder = tmp_path.joinpath("models", *key)
        folder.mkdir(parents=True)
        frame.to_csv(folder / "train_log.csv", index=False)
        paths[key] = folder / "train_log.csv"
    with caplog.at_level(logging.WARNING, logger="dcobench"):
        items = operating_point_items(paths, tmp_path / "figures", inline=1)
    texts = [c for c, _ in items if isinstance(c, str)]
    assert sum(t.startswith("Warning: subject/a/dco: DCO's σ saturated early") for t in texts) == 1
    assert "subject/a/dco:" in caplog.text and "dco_b01" not in caplog.text
    table = next(c for c, _ in items if isinstance(c, pd.DataFrame))
    assert table["run"].tolist() == ["subject/a/dco", "subject/a/dco_b01"]
    assert table["warning"].tolist() == ["σ saturated early, ℓ(θ) flat", ""]
    for variant in ("dco", "dco_b01"):
        assert (tmp_path / "figures" / "operating_point" / f"subject_a_{variant}.png").exists()
    assert not (tmp_path / "figures" / "operating_point" / "subject_a_db.png").exists()
    assert any("1 more operating-point figures" in t for t in texts)
    assert math.isnan(op.beta_t_of(runs[("subject", "a", "dco_b01")]))


def test_the_trainer_logs_the_warning_when_a_run_ends(caplog, tmp_path):
    from dcobench.train.trainer import _warn_if_saturated

    saturating = _log(_step_sigma(300, 21)).to_dict("records")
    with caplog.at_level(logging.WARNING, logger="dcobench"):
        _warn_if_saturated(saturating, tmp_path / "dco")
        _warn_if_saturated(_log(np.full(300, 0.6)).to_dict("records"), tmp_path / "calm")
        _warn_if_saturated(_log(np.full(300, np.nan)).to_dict("records"), tmp_path / "db")
    assert caplog.text.count("saturated early") == 1 and "dco: DCO's σ" in caplog.text
