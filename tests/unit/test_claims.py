"""Pre-registered claims: CIs recomputed by hand from stored score tables, verdicts that can
fail, the hypervolume, and the committed claims file parses."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dcobench.analysis import claims as cl

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["exp", "group", "concept", "variant", "guide", "guidance", "w_rg", "w_text", "file",
           "prompt_index", "seed", "prompt_set", "metric", "value"]


def write_tables(root: Path, values: dict[tuple[str, str], dict[tuple[int, int], float]],
                 metric: str = "prompt_acc", guide: str = "cfg") -> None:
    """Score tables results/scores/subject/<concept>/<variant>/<guide>.csv, one row per image."""
    for (concept, variant), cells in values.items():
        rows = [["w", "subject", concept, variant, guide, guide, "", 7.5, f"p{p}_s{s}.png", p, s,
                 "world_novel", metric, v] for (p, s), v in cells.items()]
        path = root / "scores" / "subject" / concept / variant / f"{guide}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)


def protocol(path: Path, resamples: int = 400) -> cl.Protocol:
    path.write_text(yaml.safe_dump({
        "bootstrap": {"resamples": resamples, "seed": 3, "level": 0.9},
        "delta": {"prompt_acc": 0.02},
        "claims": [{"id": "dco_prompt", "statement": "DCO beats DB on prompt_acc", "group": "subject",
                    "prompt_sets": ["world_novel"],
                    "tests": [{"kind": "difference", "a": "dco", "b": "db", "guide": "cfg",
                               "metric": "prompt_acc"}]}]}))
    return cl.load_protocol(path)


def synthetic(shift: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for c in ("a_star", "b_circle", "c_heart"):
        base = {(p, s): float(rng.uniform(0.3, 0.7)) for p in range(4) for s in (0, 1)}
        out[(c, "db")] = base
        out[(c, "dco")] = {k: v + shift + float(rng.normal(0, 0.01)) for k, v in base.items()}
    return out


def test_ci_recomputed_by_hand_from_stored_tables(tmp_path):
    write_tables(tmp_path, synthetic(0.05))
    proto = protocol(tmp_path / "claims.yaml")
    res = cl.evaluate(proto, cl.read_world_scores(tmp_path))[0].rows[0]

    # by hand: read the csvs back, pair on (concept, prompt, seed), resample as documented
    diffs: dict[str, list[float]] = {}
    for concept in ("a_star", "b_circle", "c_heart"):
        a = pd.read_csv(tmp_path / f"scores/subject/{concept}/dco/cfg.csv")
        b = pd.read_csv(tmp_path / f"scores/subject/{concept}/db/cfg.csv")
        m = a.merge(b, on=["prompt_index", "seed"])
        diffs[concept] = list(m["value_x"] - m["value_y"])
    everything = [d for c in diffs for d in diffs[c]]
    assert res["effect"] == pytest.approx(sum(everything) / len(everything))
    rng = np.random.default_rng(3)
    concepts = list(diffs)
    means = []
    for _ in range(400):
        pooled = []
        for i in rng.integers(0, 3, 3):
            units = diffs[concepts[i]]
            pooled += [units[j] for j in rng.integers(0, len(units), len(units))]
        means.append(sum(pooled) / len(pooled))
    low, high = np.quantile(means, [0.05, 0.95])
    assert res["ci_low"] == pytest.approx(low) and res["ci_high"] == pytest.approx(high)
    assert res["verdict"] == cl.HELD and res["units"] == 24 and res["concepts"] == 3


def test_claim_flips_to_not_held_on_contradicting_scores(tmp_path):
    for shift, expected in ((0.05, cl.HELD), (-0.05, cl.NOT_HELD), (0.0, cl.NOT_HELD)):
        root = tmp_path / f"s{shift}"
        write_tables(root, synthetic(shift))
        result = cl.evaluate(protocol(tmp_path / "claims.yaml"), cl.read_world_scores(root))[0]
        assert result.verdict == expected, (shift, result.rows)


def test_noisy_small_effect_is_inconclusive(tmp_path):
    rng = np.random.default_rng(1)
    data = synthetic(0.0)
    for key in [k for k in data if k[1] == "dco"]:
        data[key] = {u: v + float(rng.normal(0.01, 0.3)) for u, v in data[key].items()}
    write_tables(tmp_path, data)
    assert cl.evaluate(protocol(tmp_path / "claims.yaml"), cl.read_world_scores(tmp_path))[0].verdict \
        == cl.INCONCLUSIVE


def test_unpaired_units_are_an_error_naming_them(tmp_path):
    data = synthetic(0.05)
    del data[("a_star", "dco")][(3, 1)]
    write_tables(tmp_path, data)
    with pytest.raises(ValueError, match=r"dco_prompt: 1 units .*a_star"):
        cl.evaluate(protocol(tmp_path / "claims.yaml"), cl.read_world_scores(tmp_path))


def test_verdict_rules_and_combination():
    assert cl.verdict(0.01, 0.2, 0.02) == cl.HELD
    assert cl.verdict(-0.2, -0.01, 0.02) == cl.NOT_HELD
    assert cl.verdict(-0.01, 0.015, 0.02) == cl.NOT_HELD  # inside (−δ, δ): no effect that matters
    assert cl.verdict(-0.01, 0.05, 0.02) == cl.INCONCLUSIVE
    assert cl.combine([cl.HELD, cl.HELD]) == cl.HELD
    assert cl.combine([cl.HELD, cl.INCONCLUSIVE]) == cl.INCONCLUSIVE
    assert cl.combine([cl.INCONCLUSIVE, cl.NOT_HELD]) == cl.NOT_HELD


def test_hypervolume_by_hand():
    # points (0.8, 0.2), (0.5, 0.5), (0.2, 0.9): 0.3·0.2 + 0.3·0.5 + 0.2·0.9 = 0.39
    assert cl.hypervolume(np.array([0.5, 0.8, 0.2]), np.array([0.5, 0.2, 0.9])) == pytest.approx(0.39)
    # a dominated point adds nothing
    assert cl.hypervolume(np.array([0.5, 0.4]), np.array([0.5, 0.4])) == pytest.approx(0.25)


def test_committed_world_claims_parse():
    proto = cl.load_protocol(REPO / "config" / "world_claims.yaml")
    ids = [c.id for c in proto.claims]
    assert {"frontier", "prior_preservation", "reward_guidance", "merge_order",
            "comprehensive_captions", "noise_distance_dco", "noise_distance_beta"} <= set(ids)
    assert proto.resamples == 10_000 and proto.level == 0.95


def test_bad_claim_names_the_file_and_claim(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"delta": {}, "claims": [
        {"id": "x", "statement": "s", "group": "subject", "tests": [{"kind": "ratio", "a": "dco"}]}]}))
    with pytest.raises(ValueError, match=r"c.yaml: claims\[0\] \(x\): test kind 'ratio'"):
        cl.load_protocol(path)


def test_claims_cli_writes_the_table_with_the_registration(tmp_path, capsys):
    from types import SimpleNamespace

    from dcobench.cli import claims as cli

    write_tables(tmp_path / "results", synthetic(-0.05))
    protocol(tmp_path / "claims.yaml")
    out = tmp_path / "claims.csv"
    cli.run(SimpleNamespace(claims=str(tmp_path / "claims.yaml"), results=str(tmp_path / "results"),
                            out=str(out)))
    table = pd.read_csv(out)
    assert list(table["claim_verdict"]) == [cl.NOT_HELD]
    assert table["registered"][0] == "uncommitted"  # tmp_path is outside any git repository
    assert "not held" in capsys.readouterr().out
